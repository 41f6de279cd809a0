"""deepkit: Keras/Lasagne-style layers, models and training on deepkit_engine."""
from deepkit_engine import Context, cpu, gpu, nd

__version__ = "0.1.0"

__all__ = ["nd", "cpu", "gpu", "Context", "__version__"]
