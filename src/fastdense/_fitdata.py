"""The checked boundary for what fit/evaluate take beside X and y: class labels, sample and
class weights, the validation split. Shared by fastdense.Sequential and the NumPy reference,
so both refuse the same inputs with the same words."""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from . import _validation as v
from .losses import Loss


def as_labels(y: Any, n_samples: int, n_classes: int, dtype: np.dtype,
              name: str = "y") -> np.ndarray:
    """Integer class labels for sparse_categorical_crossentropy: (n,) or (n, 1) of any
    integer dtype, or floats holding whole numbers; each in [0, n_classes). Returned as an
    (n, 1) C-contiguous array of the model's float dtype (exact: n_classes < 2**24)."""
    arr = np.asarray(y)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must hold one class label per sample, shape (n,) or (n, 1), "
                         f"got shape {arr.shape} (one-hot targets go with "
                         f"categorical_crossentropy)")
    if arr.shape[0] != n_samples:
        raise ValueError(f"X and {name} differ in length: {n_samples} samples against "
                         f"{arr.shape[0]}")
    if arr.size:
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} contains NaN or Inf; class labels must be integers")
            if not np.all(arr == np.floor(arr)):
                raise ValueError(f"{name} holds non-integer values; class labels must be "
                                 f"whole numbers")
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi >= n_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} holds class label {bad!r} outside [0, {n_classes}): the "
                             f"output layer has {n_classes} units")
    return np.ascontiguousarray(arr, dtype=dtype).reshape(-1, 1)


def as_targets(loss: Loss, y: Any, n_samples: int, n_outputs: int, dtype: np.dtype,
               name: str = "y") -> np.ndarray:
    """The targets as the loss takes them: labels (n, 1) for the sparse loss, else
    (n, n_outputs) values (binary cross-entropy: each in [0, 1])."""
    if loss.sparse:
        return as_labels(y, n_samples, n_outputs, dtype, name)
    arr = v.as_targets(y, n_samples, n_outputs, dtype, name)
    if loss.name in ("binary_crossentropy", "categorical_crossentropy") and arr.size:
        if arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"{name} must hold probabilities in [0, 1] for {loss.name}, "
                             f"found values in [{arr.min()!r}, {arr.max()!r}]")
    return arr


def as_sample_weight(sw: Any, n_samples: int, dtype: np.dtype,
                     name: str = "sample_weight") -> np.ndarray:
    """Per-sample weights: (n,) or (n, 1), finite and ≥ 0, as a (n,) array of dtype."""
    arr = v.as_float_array(sw, dtype, name)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.reshape(-1)
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise ValueError(f"{name} must hold one weight per sample, shape ({n_samples},), got "
                         f"shape {arr.shape}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} holds a negative weight ({arr.min()!r})")
    return arr


def class_weight_to_sample_weight(class_weight: Any, targets: np.ndarray, loss: Loss,
                                  dtype: np.dtype) -> np.ndarray:
    """Keras's rule: each sample weighs class_weight[its class] (1 for a class not named);
    its class is the label (sparse loss), the argmax of a one-hot row (several outputs) or
    the rounded target (one output). `targets` as as_targets returns them."""
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be a dict {{class: weight}}, got "
                        f"{type(class_weight).__name__}")
    table: dict[int, float] = {}
    for key, w in class_weight.items():
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, numbers.Integral):
            raise TypeError(f"class_weight's keys must be integer classes, got {key!r}")
        if isinstance(w, (bool, np.bool_)) or not isinstance(w, numbers.Real) \
                or not (0 <= float(w) < math.inf):
            raise ValueError(f"class_weight[{key}] must be a finite weight ≥ 0, got {w!r}")
        table[int(key)] = float(w)
    if targets.shape[1] > 1:
        classes = np.argmax(targets, axis=1)
    else:
        classes = np.round(targets[:, 0]).astype(np.int64)
    out = np.ones(targets.shape[0], dtype=dtype)
    for c, w in table.items():
        out[classes == c] = w
    return out


def validation_split(fraction: Any, n_samples: int) -> int:
    """Where Keras splits: the first floor(n·(1 − fraction)) samples train, the rest (the
    last ones, before any shuffling) validate. 0 means no split."""
    if isinstance(fraction, (bool, np.bool_)) or not isinstance(fraction, numbers.Real):
        raise TypeError(f"validation_split must be a number in [0, 1), got {fraction!r}")
    f = float(fraction)
    if not 0 <= f < 1:
        raise ValueError(f"validation_split must be in [0, 1), got {fraction!r}")
    if f == 0:
        return n_samples
    split_at = int(math.floor(n_samples * (1.0 - f)))
    if split_at == 0 or split_at == n_samples:
        raise ValueError(f"{n_samples} samples are too few to hold out validation_split="
                         f"{fraction!r}: it leaves {split_at} for training and "
                         f"{n_samples - split_at} for validation")
    return split_at
