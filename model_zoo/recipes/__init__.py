"""Scripts that made the shipped weights: run them to reproduce every file."""
