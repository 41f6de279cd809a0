"""Classic architectures, their registry and pre-trained weights."""
