"""The NumPy reference: the same network, loss and optimizers as fastdense in plain NumPy,
written as well as NumPy allows. It is the yardstick of the tests and benchmarks."""
from .optimizers import SGD, RMSprop, Adam, AdamW, Adagrad  # noqa: F401
from .network import Dense, Sequential  # noqa: F401
