"""Metrics named in ``compile(metrics=[...])``: names and how "accuracy" is resolved. The
values are computed in the compiled epoch loop (and by the NumPy reference).

Per sample i over its k outputs (ŷ the model's output, y the target), averaged over the
epoch's (or the evaluated) samples, unweighted (Keras's `metrics`, not `weighted_metrics`):

| metric | per sample |
|---|---|
| `mse` / `mean_squared_error` | mean_j (ŷ − y)² |
| `mae` / `mean_absolute_error` | mean_j \\|ŷ − y\\| |
| `binary_accuracy` | mean_j [ (ŷ > 0.5) = y ]  (ŷ > 0 on logits: from_logits=True) |
| `categorical_accuracy` | [ argmax ŷ = argmax y ]  (first maximum on ties) |
| `sparse_categorical_accuracy` | [ argmax ŷ = label ] |

``"accuracy"`` (or ``"acc"``) becomes one of the three accuracies, chosen from the loss:
binary for binary cross-entropy, sparse categorical for the sparse loss, categorical for
categorical cross-entropy; for a regression loss, binary with one output, categorical
with more. It is reported under the name given (``history["accuracy"]``,
``history["val_accuracy"]``), as Keras does.
"""
from __future__ import annotations

from typing import Any

from .losses import Loss

# Kernel ids (losses.pyx: keep in step).
MSE, MAE, BINARY_ACCURACY, CATEGORICAL_ACCURACY, SPARSE_CATEGORICAL_ACCURACY = range(5)

_IDS = {"mse": MSE, "mean_squared_error": MSE, "mae": MAE, "mean_absolute_error": MAE,
        "binary_accuracy": BINARY_ACCURACY, "categorical_accuracy": CATEGORICAL_ACCURACY,
        "sparse_categorical_accuracy": SPARSE_CATEGORICAL_ACCURACY}
NAMES = tuple(_IDS) + ("accuracy", "acc")


def resolve(names: Any, loss: Loss, units: int) -> list[tuple[str, int]]:
    """[(name as given, kernel id)] for compile's `metrics`; ValueError for an unknown or
    unusable one."""
    if names is None:
        return []
    if isinstance(names, str) or not hasattr(names, "__iter__"):
        raise TypeError(f"metrics must be a list of names, got {names!r}")
    out: list[tuple[str, int]] = []
    for name in names:
        if not isinstance(name, str) or name not in NAMES:
            raise ValueError(f"unknown metric {name!r}: expected one of {NAMES}")
        if name in ("accuracy", "acc"):
            if loss.name == "binary_crossentropy":
                mid = BINARY_ACCURACY
            elif loss.sparse:
                mid = SPARSE_CATEGORICAL_ACCURACY
            elif loss.name == "categorical_crossentropy":
                mid = CATEGORICAL_ACCURACY
            else:
                mid = BINARY_ACCURACY if units == 1 else CATEGORICAL_ACCURACY
        else:
            mid = _IDS[name]
        if loss.sparse and mid != SPARSE_CATEGORICAL_ACCURACY:
            raise ValueError(f"metric {name!r} compares outputs with one-hot or real "
                             f"targets, but sparse_categorical_crossentropy's targets are "
                             f"class labels; use 'accuracy'")
        if mid == SPARSE_CATEGORICAL_ACCURACY and not loss.sparse:
            raise ValueError("sparse_categorical_accuracy needs integer class labels as "
                             "targets: compile with sparse_categorical_crossentropy")
        if mid in (CATEGORICAL_ACCURACY, SPARSE_CATEGORICAL_ACCURACY) and units < 2:
            raise ValueError(f"{name!r} takes the largest of several outputs; the model has "
                             f"one output (use binary_accuracy)")
        if any(name == n for n, _ in out):
            raise ValueError(f"metric {name!r} is named twice")
        out.append((name, mid))
    return out
