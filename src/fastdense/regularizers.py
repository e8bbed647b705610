"""Weight regularisers, as Keras 3's: `L1(l1)`, `L2(l2)`, `L1L2(l1, l2)` on a Dense layer's
`kernel_regularizer` / `bias_regularizer`.

The penalty l1·Σ|w| + l2·Σw² is added to the loss (training, validation and `evaluate`
alike), and its gradient l1·sign(w) + 2·l2·w (sign(0) = 0) is folded into the layer's
gradient inside the compiled step, before the update.
"""
from __future__ import annotations

import numbers
from typing import Any


class Regularizer:
    """l1·Σ|w| + l2·Σw²."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _factor(l1, "l1")
        self.l2 = _factor(l2, "l2")

    def get_config(self) -> dict[str, float]:
        return {"l1": self.l1, "l2": self.l2}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Regularizer) and (self.l1, self.l2) == (other.l1, other.l2)

    def __hash__(self) -> int:
        return hash((self.l1, self.l2))

    def __repr__(self) -> str:
        return f"L1L2(l1={self.l1!r}, l2={self.l2!r})"


class L1(Regularizer):
    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)


class L2(Regularizer):
    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)


class L1L2(Regularizer):
    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        super().__init__(l1=l1, l2=l2)


def _factor(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not (0 <= v < float("inf")):
        raise ValueError(f"{name} must be finite and ≥ 0, got {value!r}")
    return v


def get(spec: Any) -> Regularizer | None:
    """None, "l1", "l2", "l1_l2", a config dict {"l1": …, "l2": …} or a Regularizer."""
    if spec is None or isinstance(spec, Regularizer):
        return spec
    if spec == "l1":
        return L1()
    if spec == "l2":
        return L2()
    if spec == "l1_l2":
        return L1L2()
    if isinstance(spec, dict) and set(spec) <= {"l1", "l2"}:
        return Regularizer(**spec)
    raise ValueError(f"unknown regularizer {spec!r}: expected None, 'l1', 'l2', 'l1_l2' "
                     f"or fastdense.regularizers.L1/L2/L1L2(...)")
