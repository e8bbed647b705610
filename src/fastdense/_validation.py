"""The checked boundary: every array a user passes is validated and converted here, once,
before any kernel sees it. Kernels below this layer trust shapes, dtypes and strides."""
from __future__ import annotations

import numbers

import numpy as np

from ._core import dense as _dense

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype) -> np.dtype:
    """The model dtype: float32 or float64, else TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def as_float_array(a, dtype: np.dtype, name: str, *, check_finite: bool = True) -> np.ndarray:
    """`a` as a C-contiguous array of `dtype` (copied at most once).

    Floats, integers and booleans are accepted; complex, object, string and other dtypes
    raise TypeError; NaN or Inf raise ValueError when `check_finite`.
    """
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers (float, int or bool), got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if check_finite and arr.size and not _dense.all_finite_checked(arr.reshape(-1)):
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def as_inputs(x, n_features: int, dtype: np.dtype, name: str = "X") -> np.ndarray:
    """Model inputs: 2-D (n, n_features)."""
    arr = as_float_array(x, dtype, name)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (samples, features), got shape {arr.shape}")
    if arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features per sample, the model expects {n_features}")
    return arr


def as_targets(y, n_samples: int, n_outputs: int, dtype: np.dtype,
               name: str = "y") -> np.ndarray:
    """Targets: (n, n_outputs), or (n,) when the model has one output."""
    arr = as_float_array(y, dtype, name)
    if arr.ndim == 1 and n_outputs == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (samples, outputs) or 1-D for one output, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"X and {name} differ in length: {n_samples} samples against {arr.shape[0]}")
    if arr.shape[1] != n_outputs:
        raise ValueError(
            f"{name} has {arr.shape[1]} outputs per sample, the model produces {n_outputs}")
    return arr


def count(value, name: str, minimum: int) -> int:
    """An integer option such as epochs or batch_size, at least `minimum`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def positive_float(value, name: str, *, allow_zero: bool = False) -> float:
    """A finite real hyper-parameter, > 0 (or ≥ 0 with allow_zero)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return v


def unit_interval(value, name: str, *, include_one: bool = False) -> float:
    """A finite real in [0, 1) (or [0, 1] with include_one), such as β or ρ."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not (0.0 <= v < 1.0 or (include_one and v == 1.0)):
        bound = "[0, 1]" if include_one else "[0, 1)"
        raise ValueError(f"{name} must be in {bound}, got {value!r}")
    return v


def flag(value, name: str) -> bool:
    """A boolean option (True/False only: 0 and 1 are refused as likely mistakes)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)
