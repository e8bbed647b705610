"""fastdense: dense neural networks trained on the CPU by Cython kernels."""
from . import optimizers
from . import activations, losses, metrics, regularizers
from .layers import Dense
from .errors import DivergenceError
from .models import Sequential, load_model
from . import callbacks, distributed
from ._threads import get_num_threads, set_num_threads
from ._core.train import get_flush_denormals, set_flush_denormals

__version__ = "0.1.0"

__all__ = ["Dense", "Sequential", "DivergenceError", "optimizers", "set_num_threads", "get_num_threads",
           "__version__"]
__all__ += ["set_flush_denormals", "get_flush_denormals"]
__all__ += ["load_model", "callbacks", "distributed", "activations", "losses", "metrics", "regularizers"]
