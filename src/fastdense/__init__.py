"""fastdense: dense neural networks trained on the CPU by Cython kernels."""
from . import optimizers
from .layers import Dense
from .models import Sequential

__version__ = "0.1.0"

__all__ = ["Dense", "Sequential", "optimizers", "__version__"]
