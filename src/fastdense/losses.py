"""Losses: names, options and how each pairs with the output layer. No arithmetic lives here
(the compiled head kernel and the NumPy reference implement the formulas).

Per sample i, with model output ŷ (k values), pre-activation z of the last layer, targets y:

| loss | lᵢ | ∂lᵢ |
|---|---|---|
| `mse` | mean_j (ŷ − y)² | 2(ŷ − y)/k w.r.t. ŷ |
| `mae` | mean_j \\|ŷ − y\\| | sign(ŷ − y)/k (0 at 0) |
| `huber` (delta δ = 1) | mean_j (½e² if \\|e\\| ≤ δ else δ\\|e\\| − ½δ²), e = ŷ − y | clip(e, −δ, δ)/k |
| `binary_crossentropy` | mean_j max(z, 0) − z·y + log1p(e^−\\|z\\|) | (sigmoid(z) − y)/k w.r.t. z |
| `categorical_crossentropy` | Σ_j y_j·(lse(z) − z_j) | softmax(z)·Σ_j y_j − y w.r.t. z |
| `sparse_categorical_crossentropy` | lse(z) − z_label | softmax(z) − onehot(label) |

The batch loss is Σᵢ wᵢ·lᵢ / n (Keras 3's "sum_over_batch_size": wᵢ the sample weight, 1
without; n the batch's size), plus the weight regularisers' penalty.

The cross-entropies always work on the logits z, stably (log-sum-exp, log1p): with
``from_logits=True`` the output layer must be linear (z is the output); with
``from_logits=False`` it must end in the matching probability (``sigmoid`` for binary,
``softmax`` for the categorical ones), whose logits the loss then uses — as Keras's
TensorFlow back end does for such outputs (a value identical to Keras's clipped formula
``−Σ y·log(clip(p, ε, 1 − ε))`` wherever ε = 1e-7 does not clip, and finite, with a useful
gradient, where it would). The regression losses take any output activation; their
gradient then passes back through it.
"""
from __future__ import annotations

import numbers
from typing import Any

# Kernel ids (losses.pyx: keep in step).
MSE, MAE, HUBER, BCE, CCE, SPARSE_CCE = range(6)

_ALIASES = {
    "mse": "mean_squared_error", "mean_squared_error": "mean_squared_error",
    "mae": "mean_absolute_error", "mean_absolute_error": "mean_absolute_error",
    "huber": "huber", "huber_loss": "huber",
    "binary_crossentropy": "binary_crossentropy", "bce": "binary_crossentropy",
    "categorical_crossentropy": "categorical_crossentropy",
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
}
_IDS = {"mean_squared_error": MSE, "mean_absolute_error": MAE, "huber": HUBER,
        "binary_crossentropy": BCE, "categorical_crossentropy": CCE,
        "sparse_categorical_crossentropy": SPARSE_CCE}
NAMES = tuple(_ALIASES)
CROSSENTROPIES = ("binary_crossentropy", "categorical_crossentropy",
                  "sparse_categorical_crossentropy")


class Loss:
    """A loss and its options. Use the named classes (`MeanSquaredError`, `Huber(delta=)`,
    `BinaryCrossentropy(from_logits=)`, …) or a name in `compile(loss=...)`."""

    name = ""
    from_logits: bool
    delta: float

    def __init__(self, *, from_logits: bool = False, delta: float = 1.0) -> None:
        if not isinstance(from_logits, bool):
            raise TypeError(f"from_logits must be True or False, got {from_logits!r}")
        if from_logits and self.name not in CROSSENTROPIES:
            raise ValueError(f"{self.name} takes no from_logits")
        if isinstance(delta, bool) or not isinstance(delta, numbers.Real) \
                or not (0 < float(delta) < float("inf")):
            raise ValueError(f"delta must be a finite number > 0, got {delta!r}")
        self.from_logits = from_logits
        self.delta = float(delta)

    @property
    def kernel_id(self) -> int:
        return _IDS[self.name]

    @property
    def sparse(self) -> bool:
        """Targets are integer class labels, one per sample."""
        return self.name == "sparse_categorical_crossentropy"

    @property
    def param(self) -> float:
        """The kernels' one real parameter (Huber's δ)."""
        return self.delta if self.name == "huber" else 0.0

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"name": self.name}
        if self.name in CROSSENTROPIES:
            config["from_logits"] = self.from_logits
        if self.name == "huber":
            config["delta"] = self.delta
        return config

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Loss) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(tuple(self.get_config().items()))

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({opts})"


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def __init__(self) -> None:
        super().__init__()


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def __init__(self) -> None:
        super().__init__()


class Huber(Loss):
    name = "huber"

    def __init__(self, delta: float = 1.0) -> None:
        super().__init__(delta=delta)


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"

    def __init__(self, from_logits: bool = False) -> None:
        super().__init__(from_logits=from_logits)


class CategoricalCrossentropy(Loss):
    name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False) -> None:
        super().__init__(from_logits=from_logits)


class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits: bool = False) -> None:
        super().__init__(from_logits=from_logits)


_CLASSES = {cls.name: cls for cls in (MeanSquaredError, MeanAbsoluteError, Huber,
                                      BinaryCrossentropy, CategoricalCrossentropy,
                                      SparseCategoricalCrossentropy)}


def get(spec: Any) -> Loss:
    """A `Loss` from a name (``"mse"``, ``"sparse_categorical_crossentropy"``, …), a config
    dict (``get_config()``'s) or a Loss."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str) and spec in _ALIASES:
        return _CLASSES[_ALIASES[spec]]()
    if isinstance(spec, dict) and spec.get("name") in _IDS:
        opts = {k: v for k, v in spec.items() if k != "name"}
        return _CLASSES[spec["name"]](**opts)
    raise ValueError(f"unknown loss {spec!r}: expected one of {NAMES} or a "
                     f"fastdense.losses.Loss")


def check_output(loss: Loss, activation_name: str, units: int) -> None:
    """ValueError unless `loss` can be computed on an output layer of `units` outputs
    ending in `activation_name` (see the module's docstring)."""
    if loss.name in CROSSENTROPIES:
        wanted = "sigmoid" if loss.name == "binary_crossentropy" else "softmax"
        if loss.from_logits and activation_name != "linear":
            raise ValueError(
                f"{loss.name} with from_logits=True needs a linear output layer (the "
                f"logits), but the last layer's activation is {activation_name!r}: drop the "
                f"activation, or use from_logits=False with a {wanted} output")
        if not loss.from_logits and activation_name != wanted:
            raise ValueError(
                f"{loss.name} on probabilities needs a {wanted} output layer, but the last "
                f"layer's activation is {activation_name!r} (not a probability): use "
                f"activation={wanted!r}, or from_logits=True with a linear output")
        if loss.name != "binary_crossentropy" and units < 2:
            raise ValueError(f"{loss.name} needs at least 2 output units (one per class), "
                             f"the last layer has {units}; for two classes use one sigmoid "
                             f"unit and binary_crossentropy")
    elif activation_name == "softmax" and units < 2:
        raise ValueError("a softmax output needs at least 2 units (one unit's softmax is "
                         "always 1)")
