"""What the exporters and importers share: a model as (W, b, activation) per layer, a model
from such a list, and importing an optional peer with a clear message."""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import activations as _activations


class LayerWeights(NamedTuple):
    W: np.ndarray                      # (in, out)
    b: np.ndarray                      # (out,)
    activation: _activations.Activation
    name: str | None = None
    kernel_regularizer: Any = None     # a fastdense.regularizers.Regularizer or None
    bias_regularizer: Any = None


def peer(module: str, extra: str, what: str) -> Any:
    """Import an optional peer (onnx, onnxruntime, torch, keras) or raise an ImportError
    that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{what} needs the {module!r} package, which is not installed "
                          f"or does not import ({exc}): pip install 'fastdense[{extra}]'"
                          ) from exc


def model_layers(model: Any) -> list[LayerWeights]:
    """The layers of a fastdense Sequential with copies of their weights (built first if
    the first layer names its input width; ValueError if the model cannot be built)."""
    from ..models import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"expected a fastdense.Sequential, got {type(model).__name__}")
    if not model.layers:
        raise ValueError("the model has no layers")
    weights = model.get_weights()
    return [LayerWeights(weights[2 * i], weights[2 * i + 1], layer.activation_spec,
                         layer.name, layer.kernel_regularizer, layer.bias_regularizer)
            for i, layer in enumerate(model.layers)]


def dtype_of(dtype: Any, found: np.dtype, where: str) -> np.dtype:
    """The fastdense dtype: ``dtype`` when given, else ``found`` if it is float32/float64."""
    if dtype is not None:
        from .._validation import float_dtype
        return float_dtype(dtype)
    found = np.dtype(found)
    if found not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{where} holds {found} weights; fastdense computes in float32 or "
                         f"float64: pass dtype='float32' or 'float64' to convert them")
    return found


def build_model(layers: Sequence[LayerWeights], dtype: np.dtype, name: str | None = None):
    """A fastdense Sequential with these layers and exactly these weights (cast to dtype)."""
    from ..layers import Dense
    from ..models import Sequential

    if not layers:
        raise ValueError("no Dense/Linear layer found: a fastdense model needs at least one")
    dense = []
    for i, layer in enumerate(layers):
        extra: dict[str, Any] = {"input_dim": int(layer.W.shape[0])} if i == 0 else {}
        dense.append(Dense(int(layer.W.shape[1]), activation=layer.activation,
                           kernel_regularizer=layer.kernel_regularizer,
                           bias_regularizer=layer.bias_regularizer, name=layer.name, **extra))
    model = Sequential(dense, dtype=dtype, name=name)
    flat: list[np.ndarray] = []
    for layer in layers:
        flat += [np.asarray(layer.W), np.asarray(layer.b)]
    model.set_weights(flat)
    return model
