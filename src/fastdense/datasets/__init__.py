"""Small real data sets bundled with fastdense, and the two helpers a demo needs.

The files sit beside this module (see README.md here for their provenance) and are read
through ``importlib.resources``, so they load from any working directory after install.
"""
from __future__ import annotations

import gzip
import numbers
from importlib import resources

import numpy as np

__all__ = ["load_diabetes", "load_digits", "standardize", "train_test_split"]


def _read(name: str, delimiter=None) -> np.ndarray:
    with resources.files(__name__).joinpath(name).open("rb") as raw, \
            gzip.open(raw, "rt") as text:
        return np.loadtxt(text, delimiter=delimiter, dtype=np.float64, ndmin=2)


def load_diabetes():
    """``(X, y)``: X float64 (442, 10), the raw baseline variables (age, sex, bmi, bp,
    s1–s6); y float64 (442,), disease progression one year later."""
    X = _read("diabetes_data_raw.csv.gz")
    y = _read("diabetes_target.csv.gz")[:, 0]
    return X, y


def load_digits():
    """``(X, y)``: X float64 (1797, 64), 8×8 images with pixels 0–16 row by row;
    y int64 (1797,), the digit 0–9."""
    data = _read("digits.csv.gz", delimiter=",")
    return data[:, :-1], data[:, -1].astype(np.int64)


def standardize(train, *others):
    """Scale columns to mean 0 and standard deviation 1 using the statistics of ``train``
    only: ``(a − mean(train)) / std(train)`` for ``train`` and each array of ``others``.
    Constant columns (std 0) are only centred. Returns the scaled arrays as a tuple."""
    train = np.asarray(train, dtype=np.float64)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    arrays = (train,) + tuple(np.asarray(a, dtype=np.float64) for a in others)
    for i, a in enumerate(arrays):
        if a.shape[1:] != train.shape[1:]:
            raise ValueError(
                f"array {i} has shape {a.shape}, incompatible with the training shape "
                f"{train.shape}")
    return tuple((a - mean) / std for a in arrays)


def train_test_split(X, y, test_size=0.2, seed=0):
    """``(X_train, X_test, y_train, y_test)`` from one seeded permutation
    (``np.random.default_rng(seed).permutation(n)``): the first ``ceil(test_size·n)``
    rows of it are the test part (``test_size`` a fraction in (0, 1) or a row count)."""
    X, y = np.asarray(X), np.asarray(y)
    n = X.shape[0] if X.ndim else 0
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"X and y differ in length: {X.shape} against {y.shape}")
    if isinstance(test_size, (bool, np.bool_)) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"test_size must be a fraction or a row count, got {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
    elif 0 < test_size < 1:
        n_test = int(np.ceil(test_size * n))
    else:
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
    if not 0 < n_test < n:
        raise ValueError(f"test_size={test_size!r} leaves no rows for training or testing "
                         f"({n} rows)")
    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]
