"""Type stubs for the compiled fastdense._core.dense (dense.pyx): the Python-visible
functions. The nogil cores are for Cython only: `from fastdense.kernels cimport ...`."""
from typing import Literal

import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64

ISA_NAMES: dict[str, int]

def set_isa(name: Literal["base", "avx2", "avx512"] | None = None) -> str: ...
def get_isa() -> str: ...
def set_blas_mode(mode: Literal["auto", "always", "never"]) -> str: ...
def dense_forward_checked(a: npt.NDArray[_Float], w: npt.NDArray[_Float],
                          b: npt.NDArray[_Float], z: npt.NDArray[_Float],
                          relu: bool = False) -> None: ...
def dense_backward_checked(a: npt.NDArray[_Float], w: npt.NDArray[_Float],
                           d: npt.NDArray[_Float], dw: npt.NDArray[_Float],
                           db: npt.NDArray[_Float], da: npt.NDArray[_Float] | None = None,
                           relu_a: bool = False) -> None: ...
def all_finite_checked(x: npt.NDArray[_Float]) -> bool: ...
