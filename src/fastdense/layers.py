"""Layers: descriptions of a network's parts. No arithmetic lives here."""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import activations as _activations
from . import regularizers as _regularizers

ACTIVATIONS = _activations.NAMES


class Dense:
    """A fully connected layer: ``y = activation(x·W + b)``.

    ``units`` is the output width; ``activation`` a name of `ACTIVATIONS`, None (linear)
    or a `fastdense.activations.Activation` with parameters (``Activation("gelu",
    approximate=True)``); ``kernel_regularizer`` / ``bias_regularizer`` a
    `fastdense.regularizers` L1/L2/L1L2 (or "l1", "l2"). The first layer of a model names
    its input width with ``input_dim=`` or ``input_shape=(d,)`` as in Keras.
    """

    def __init__(self, units: int, activation: str | _activations.Activation | None = None,
                 *, input_dim: int | None = None, input_shape: Sequence[int] | None = None,
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 name: str | None = None) -> None:
        self.units = _positive_int(units, "units")
        self.activation_spec = _activations.get(activation)
        self.activation = self.activation_spec.name
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        self.bias_regularizer = _regularizers.get(bias_regularizer)
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

    @property
    def activation_params(self) -> dict[str, Any]:
        """The activation's parameters ({} for most; e.g. {"approximate": False})."""
        return dict(self.activation_spec.params)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"units": self.units, "activation": self.activation,
                                  "input_dim": self.input_dim, "name": self.name}
        if self.activation_spec.params:
            config["activation_params"] = self.activation_params
        for key in ("kernel_regularizer", "bias_regularizer"):
            reg = getattr(self, key)
            if reg is not None:
                config[key] = reg.get_config()
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Dense:
        config = dict(config)
        params = config.pop("activation_params", None) or {}
        act = config.pop("activation", None)
        activation = _activations.Activation(act, **params) if isinstance(act, str) else act
        return cls(activation=activation, **config)

    def __repr__(self) -> str:
        extra = f", input_dim={self.input_dim}" if self.input_dim is not None else ""
        act = repr(self.activation) if not self.activation_spec.params or \
            self.activation_spec == _activations.Activation(self.activation) \
            else repr(self.activation_spec)
        for key in ("kernel_regularizer", "bias_regularizer"):
            if getattr(self, key) is not None:
                extra += f", {key}={getattr(self, key)!r}"
        return f"Dense({self.units}, activation={act}{extra})"


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
