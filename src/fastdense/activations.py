"""Activations: names, parameters and kernel ids. No arithmetic lives here (the compiled
kernels and the NumPy reference each implement the formulas below).

| name         | f(z)                                            | f' (as the kernels compute it)        |
|--------------|-------------------------------------------------|---------------------------------------|
| `linear`     | z                                               | 1                                     |
| `relu`       | max(z, 0)                                       | [a > 0], from the output a            |
| `leaky_relu` | z if z > 0 else s·z (s = negative_slope, 0.2)   | 1 if a > 0 else s                     |
| `elu`        | z if z > 0 else α·expm1(z) (α = alpha, 1.0)     | 1 if a ≥ 0 else a + α                 |
| `tanh`       | tanh(z)                                         | 1 − a²                                |
| `sigmoid`    | 1 / (1 + e^−z), evaluated stably                | a·(1 − a)                             |
| `softplus`   | max(z, 0) + log1p(e^−|z|)                       | −expm1(−a)  (= sigmoid(z))            |
| `gelu`       | z·Φ(z) = z/2·(1 + erf(z/√2))  (approximate=False) | Φ(z) + z·φ(z), from the pre-activation |
|              | z/2·(1 + tanh(√(2/π)·(z + 0.044715 z³)))  (approximate=True) | its derivative, from z     |
| `softmax`    | e^(z − max z) / Σ e^(z − max z) over a sample's outputs (last layer only) | Jacobian product: p ⊙ (g − Σ p g) |

The derivatives of ReLU, leaky ReLU, ELU, tanh, sigmoid and softplus are taken from the
layer's output, so training keeps no pre-activation for them; GELU keeps its
pre-activation. Defaults follow Keras 3 (`keras.activations`).
"""
from __future__ import annotations

import numbers
from typing import Any

# Kernel ids (fd_act.h's FD_ACT_*: keep in step).
LINEAR, RELU, LEAKY_RELU, ELU, TANH, SIGMOID, SOFTPLUS, GELU, GELU_TANH, SOFTMAX = range(10)

NAMES = ("linear", "relu", "leaky_relu", "elu", "tanh", "sigmoid", "softplus", "gelu",
         "softmax")
# The parameter each name takes, with its Keras default.
PARAMS: dict[str, dict[str, Any]] = {
    "leaky_relu": {"negative_slope": 0.2},
    "elu": {"alpha": 1.0},
    "gelu": {"approximate": False},
}


class Activation:
    """An activation and its parameters: ``Activation("leaky_relu", negative_slope=0.1)``,
    ``Activation("gelu", approximate=True)``. ``Dense(activation=...)`` takes one of these,
    a name from `NAMES`, or None (linear)."""

    __slots__ = ("name", "params")

    def __init__(self, name: str, **params: Any) -> None:
        if not isinstance(name, str) or name not in NAMES:
            raise ValueError(f"unknown activation {name!r}: expected one of {NAMES} or None")
        allowed = PARAMS.get(name, {})
        unknown = set(params) - set(allowed)
        if unknown:
            what = f"takes {sorted(allowed)}" if allowed else "takes no parameters"
            raise ValueError(f"activation {name!r} {what}, got {sorted(unknown)}")
        full = dict(allowed)
        for key, value in params.items():
            if key == "approximate":
                if not isinstance(value, bool):
                    raise TypeError(f"approximate must be True or False, got {value!r}")
            else:
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise TypeError(f"{key} must be a real number, got {value!r}")
                value = float(value)
                if not value == value or value in (float("inf"), float("-inf")):
                    raise ValueError(f"{key} must be finite, got {value!r}")
                if key == "alpha" and value <= 0:
                    raise ValueError(f"alpha must be > 0, got {value!r}")
                if key == "negative_slope" and value < 0:
                    raise ValueError(f"negative_slope must be ≥ 0, got {value!r}")
            full[key] = value
        self.name = name
        self.params = full

    @property
    def kernel_id(self) -> int:
        """The id of this activation in the compiled kernels."""
        if self.name == "gelu":
            return GELU_TANH if self.params["approximate"] else GELU
        return {"linear": LINEAR, "relu": RELU, "leaky_relu": LEAKY_RELU, "elu": ELU,
                "tanh": TANH, "sigmoid": SIGMOID, "softplus": SOFTPLUS,
                "softmax": SOFTMAX}[self.name]

    @property
    def alpha(self) -> float:
        """The kernels' one real parameter: leaky ReLU's slope, ELU's α, else 0."""
        return float(self.params.get("negative_slope", self.params.get("alpha", 0.0)))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, **self.params}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and (self.name, self.params) == \
            (other.name, other.params)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.params.items()))))

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.params.items()
                        if v != PARAMS[self.name][k])
        return f"Activation({self.name!r}{extra})"


def get(spec: Any) -> Activation:
    """An `Activation` from a name, None (linear), a config dict or an Activation."""
    if spec is None:
        return Activation("linear")
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        return Activation(spec)
    if isinstance(spec, dict) and isinstance(spec.get("name"), str):
        params = {k: v for k, v in spec.items() if k != "name"}
        return Activation(spec["name"], **params)
    raise ValueError(f"unknown activation {spec!r}: expected one of {NAMES}, None, or "
                     f"fastdense.activations.Activation(name, ...)")
