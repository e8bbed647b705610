"""Layers: descriptions of a network's parts. No arithmetic lives here."""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

ACTIVATIONS = ("linear", "relu")


class Dense:
    """A fully connected layer: ``y = activation(x·W + b)``.

    ``units`` is the output width, ``activation`` ``"relu"`` or ``"linear"``/``None``.
    The first layer of a model names its input width with ``input_dim=`` or
    ``input_shape=(d,)`` as in Keras.
    """

    def __init__(self, units: int, activation: str | None = None, *,
                 input_dim: int | None = None, input_shape: Sequence[int] | None = None,
                 name: str | None = None) -> None:
        self.units = _positive_int(units, "units")
        if activation is None:
            activation = "linear"
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}: expected one of {ACTIVATIONS} or None")
        self.activation = activation
        if input_dim is not None and input_shape is not None:
            raise ValueError("give input_dim or input_shape, not both")
        if input_shape is not None:
            shape: tuple[Any, ...] = tuple(input_shape) \
                if not isinstance(input_shape, numbers.Integral) else (input_shape,)
            if len(shape) != 1:
                raise ValueError(
                    f"Dense takes 1-D inputs: input_shape must be (d,), got {input_shape!r}")
            input_dim = shape[0]
        self.input_dim = None if input_dim is None else _positive_int(input_dim, "input_dim")
        self.name = name

    def get_config(self) -> dict[str, Any]:
        return {"units": self.units, "activation": self.activation,
                "input_dim": self.input_dim, "name": self.name}

    def __repr__(self) -> str:
        extra = f", input_dim={self.input_dim}" if self.input_dim is not None else ""
        return f"Dense({self.units}, activation={self.activation!r}{extra})"


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int,
                   dtype: npt.DTypeLike) -> np.ndarray:
    """Glorot (Xavier) uniform: U(−l, l) with l = √(6 / (fan_in + fan_out)), as Keras.

    Drawn in float64 from ``rng`` and cast, so float32 and float64 models of one seed
    start from the same weights (up to rounding).
    """
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)
