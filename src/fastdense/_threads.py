"""How many threads fastdense's kernels use: SciPy's OpenBLAS for the matrix products of
wide layers, and fastdense's own pool for the optimizer updates of large buffers
(fastdense._core.updates, fd_pool.h). The two take turns: an update runs between two
GEMMs, and the pool's workers sleep in the kernel as soon as it is done, so they never
hold a core the BLAS threads need (libgomp's spinning OpenMP workers did: see
_core/updates.pyx). So set_num_threads(n) gives n threads to each.

SciPy ships its own OpenBLAS; its thread count is set through the library's exported
functions, found among the shared objects this process has loaded (no dependency on
threadpoolctl). Where no such library is found (another BLAS, another platform), the BLAS
part is left alone and reported as None.
"""
from __future__ import annotations

import ctypes
import os


_SETTERS = ("scipy_openblas_set_num_threads", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads", "openblas_get_num_threads")

_requested = None


def _loaded_openblas():
    """(get, set) C functions of the OpenBLAS that scipy.linalg.cython_blas uses, or None."""
    import scipy.linalg.cython_blas  # noqa: F401  (make sure SciPy's BLAS is loaded)

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        if "scipy" not in path or not os.path.exists(path):
            continue
        lib = ctypes.CDLL(path)
        get = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        put = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        if get is not None and put is not None:
            get.restype = ctypes.c_int
            put.argtypes = [ctypes.c_int]
            return get, put
    return None


_blas = None
_blas_probed = False


def _blas_functions():
    global _blas, _blas_probed
    if not _blas_probed:
        _blas = _loaded_openblas()
        _blas_probed = True
    return _blas


def set_num_threads(n: int) -> None:
    """Use n threads (n ≥ 1) for BLAS products and for the optimizer updates of large
    buffers (1: both serial on the calling thread); the two take turns."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"the number of threads must be an integer, got {n!r}")
    if n < 1:
        raise ValueError(f"the number of threads must be at least 1, got {n}")
    global _requested
    from ._core import updates
    blas = _blas_functions()
    if blas is not None:
        blas[1](n)
    updates.set_num_threads(n)
    _requested = n


def get_num_threads() -> int:
    """The thread count in force: the last set_num_threads, else the BLAS's own (all cores
    by default), else the number of cores."""
    if _requested is not None:
        return _requested
    blas = _blas_functions()
    if blas is not None:
        return int(blas[0]())
    return os.cpu_count() or 1


def blas_num_threads() -> int | None:
    """The BLAS library's own thread count, or None where it could not be reached."""
    blas = _blas_functions()
    return None if blas is None else int(blas[0]())
