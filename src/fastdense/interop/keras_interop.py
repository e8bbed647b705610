"""Keras 3: a fastdense model from a ``keras.Sequential`` of ``Dense`` layers, and back.

Keras must import with a working back end (``KERAS_BACKEND=torch``, ``jax`` or
``tensorflow``, set before Keras is first imported); fastdense never sets it.

| Keras | fastdense |
|---|---|
| ``Dense(units, activation=name, use_bias=…)`` | ``Dense(units, activation=name)``; use_bias=False: zero biases |
| activations linear/None, relu, leaky_relu, elu, tanh, sigmoid, softplus, gelu, softmax | the same name with Keras's defaults (leaky_relu 0.2, elu 1.0, gelu exact) |
| a following ``LeakyReLU(negative_slope)`` / ``ELU(alpha)`` / ``ReLU()`` / ``Softmax(axis=-1)`` / ``Activation(name)`` layer on a linear Dense | that Dense's activation with those parameters |
| ``fastdense>gelu_tanh`` (`keras_custom_objects`) | gelu(approximate=True), which Keras has as a function argument only |
| ``kernel_regularizer`` / ``bias_regularizer`` L1, L2, L1L2 | the same regulariser |

Anything else (another layer, activation or regulariser, constraints, an activity
regulariser, LoRA or quantised layers, mixed precision) raises ValueError naming it.
`to_keras` writes a leaky_relu or elu with non-default parameters as a linear Dense and a
``LeakyReLU`` / ``ELU`` layer, and gelu(approximate=True) as ``fastdense>gelu_tanh``; a model
saved with it loads with ``keras.saving.load_model(path, custom_objects=
keras_custom_objects())``. (Keras's softplus on the torch back end returns x itself above 20,
at most 2.1e-9 from fastdense's; see `fastdense.interop.torch_interop`.)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import activations as _activations
from .. import regularizers as _regularizers
from ._common import LayerWeights, build_model, dtype_of, model_layers, peer

_GELU_TANH: dict[str, Any] = {}


def _keras() -> Any:
    return peer("keras", "keras", "Keras interop")


def keras_custom_objects() -> dict[str, Any]:
    """Keras objects that `to_keras` may use, for ``keras.saving.load_model(...,
    custom_objects=...)``: ``{"fastdense>gelu_tanh": gelu with approximate=True}``."""
    keras = _keras()
    if "fn" not in _GELU_TANH:
        @keras.saving.register_keras_serializable(package="fastdense", name="gelu_tanh")
        def gelu_tanh(x: Any) -> Any:
            """GELU, tanh approximation (fastdense's gelu(approximate=True))."""
            return keras.activations.gelu(x, approximate=True)

        _GELU_TANH["fn"] = gelu_tanh
    return {"fastdense>gelu_tanh": _GELU_TANH["fn"]}


def _activation_of_function(keras: Any, fn: Any, where: str) -> _activations.Activation:
    gelu_tanh = keras_custom_objects()["fastdense>gelu_tanh"]
    if fn is gelu_tanh:
        return _activations.Activation("gelu", approximate=True)
    for name in _activations.NAMES:
        if fn is keras.activations.get(name):
            return _activations.Activation(name)    # Keras's defaults are fastdense's
    try:
        label = keras.activations.serialize(fn)
    except Exception:       # noqa: BLE001  (any object: name it as it prints)
        label = fn
    raise ValueError(f"{where}: activation {label!r} is not supported: fastdense takes "
                     f"{', '.join(_activations.NAMES)} and gelu(approximate=True) as "
                     f"'fastdense>gelu_tanh'")


def _activation_of_layer(keras: Any, layer: Any, where: str) -> _activations.Activation | None:
    """The activation an activation layer applies; None if ``layer`` is not one."""
    L = keras.layers
    kind = type(layer)
    try:
        if kind is L.Activation:
            return _activation_of_function(keras, layer.activation, where)
        if kind is L.LeakyReLU:
            return _activations.Activation(
                "leaky_relu", negative_slope=float(layer.get_config()["negative_slope"]))
        if kind is L.ELU:
            return _activations.Activation("elu", alpha=float(layer.get_config()["alpha"]))
        if kind is L.ReLU:
            config = layer.get_config()
            if config["max_value"] is not None or float(config["threshold"]) != 0:
                raise ValueError(f"{where}: ReLU with max_value or threshold is not "
                                 f"supported")
            slope = float(config["negative_slope"])
            return _activations.Activation("relu") if slope == 0 else \
                _activations.Activation("leaky_relu", negative_slope=slope)
        if kind is L.Softmax:
            if layer.get_config()["axis"] not in (-1, 1, [-1], [1]):
                raise ValueError(f"{where}: fastdense's softmax is over a sample's outputs "
                                 f"(axis=-1), got axis={layer.get_config()['axis']}")
            return _activations.Activation("softmax")
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where}: {exc}") from None
    return None


def _regularizer_of(keras: Any, reg: Any, where: str) -> _regularizers.Regularizer | None:
    if reg is None:
        return None
    R = keras.regularizers
    if type(reg) not in (R.L1, R.L2, R.L1L2):
        raise ValueError(f"{where}: regulariser {type(reg).__name__} is not supported "
                         f"(fastdense takes L1, L2 and L1L2)")
    config = reg.get_config()
    return _regularizers.L1L2(l1=float(config.get("l1", 0.0)), l2=float(config.get("l2", 0.0)))


def _dense(keras: Any, layer: Any, where: str) -> LayerWeights:
    for attr in ("kernel_constraint", "bias_constraint", "activity_regularizer"):
        if getattr(layer, attr, None) is not None:
            raise ValueError(f"{where}: {attr} is not supported by fastdense")
    if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
        raise ValueError(f"{where}: LoRA and quantised Dense layers are not supported")
    if str(layer.compute_dtype) != str(layer.variable_dtype):
        raise ValueError(f"{where}: mixed precision ({layer.dtype_policy.name}) is not "
                         f"supported: fastdense computes in its weights' dtype")
    weights = layer.get_weights()
    if len(weights) != (2 if layer.use_bias else 1):
        raise ValueError(f"{where}: expected a kernel{' and a bias' if layer.use_bias else ''}"
                         f", found {len(weights)} weight arrays")
    W = np.asarray(weights[0])
    b = np.asarray(weights[1]) if layer.use_bias else np.zeros(W.shape[1], dtype=W.dtype)
    return LayerWeights(W, b, _activation_of_function(keras, layer.activation, where),
                        layer.name, _regularizer_of(keras, layer.kernel_regularizer, where),
                        _regularizer_of(keras, layer.bias_regularizer, where))


def from_keras(keras_model: Any, dtype: Any = None) -> Any:
    """A fastdense ``Sequential`` with the layers, weights, names and regularisers of a
    built Keras 3 ``keras.Sequential`` of ``Dense`` layers (and activation layers after a
    linear Dense; see this module's docstring). ``dtype``: "float32" or "float64"; by
    default the Keras weights' own. The result is not compiled."""
    keras = _keras()
    if not isinstance(keras_model, keras.Sequential):
        raise TypeError(f"from_keras takes a keras.Sequential, got "
                        f"{type(keras_model).__name__}")
    if not keras_model.built:
        raise ValueError("the Keras model is not built (its weights do not exist yet): "
                         "start it with keras.Input(shape=(d,)) or call build()")
    layers: list[LayerWeights] = []
    softmax_at = None
    for i, layer in enumerate(keras_model.layers):
        where = f"layer {i} ({type(layer).__name__} {layer.name!r})"
        if type(layer) is keras.layers.InputLayer:
            continue
        if type(layer) is keras.layers.Dense:
            if softmax_at is not None:
                raise ValueError(f"{where} follows the softmax of layer {softmax_at}: "
                                 f"fastdense allows softmax on the last layer only")
            layers.append(_dense(keras, layer, where))
            if layers[-1].activation.name == "softmax":
                softmax_at = i
            continue
        act = _activation_of_layer(keras, layer, where)
        if act is None:
            raise ValueError(f"{where} is not supported: fastdense takes Dense layers and "
                             f"the activation layers Activation, LeakyReLU, ELU, ReLU and "
                             f"Softmax")
        if not layers:
            raise ValueError(f"{where} comes before any Dense layer")
        if layers[-1].activation.name != "linear":
            raise ValueError(f"{where} follows a Dense with an activation "
                             f"({layers[-1].activation.name}): fastdense takes one "
                             f"activation per layer")
        if act.name == "softmax":
            softmax_at = i
        layers[-1] = layers[-1]._replace(activation=act)
    if not layers:
        raise ValueError("the Keras model has no Dense layer")
    found = {lw.W.dtype for lw in layers}
    if dtype is None and len(found) > 1:
        raise ValueError(f"the Dense layers mix dtypes {sorted(map(str, found))}: pass "
                         f"dtype='float32' or 'float64'")
    return build_model(layers, dtype_of(dtype, layers[0].W.dtype, "the Keras model"),
                       name=keras_model.name)


def to_keras(model: Any) -> Any:
    """A built Keras 3 ``keras.Sequential`` computing ``model.predict``: an ``Input`` of the
    model's width and dtype, and per layer a ``Dense`` (kernel W, bias b, the layer's name
    and regularisers) with its activation (see this module's docstring)."""
    keras = _keras()
    layers = model_layers(model)
    dtype = np.dtype(model.dtype).name
    stack: list[Any] = [keras.Input(shape=(int(layers[0].W.shape[0]),), dtype=dtype)]
    dense_layers = []
    for layer in layers:
        act = layer.activation
        name, params = act.name, act.params
        after = None
        activation: Any = None if name == "linear" else name
        if name == "leaky_relu" and params["negative_slope"] != 0.2:
            activation, after = None, keras.layers.LeakyReLU(
                negative_slope=params["negative_slope"], dtype=dtype)
        elif name == "elu" and params["alpha"] != 1.0:
            activation, after = None, keras.layers.ELU(alpha=params["alpha"], dtype=dtype)
        elif name == "gelu" and params["approximate"]:
            activation = keras_custom_objects()["fastdense>gelu_tanh"]
        regs = {}
        for key in ("kernel_regularizer", "bias_regularizer"):
            reg = getattr(layer, key)
            if reg is not None:
                regs[key] = keras.regularizers.L1L2(l1=reg.l1, l2=reg.l2)
        dense = keras.layers.Dense(int(layer.W.shape[1]), activation=activation, dtype=dtype,
                                   name=layer.name, **regs)
        stack.append(dense)
        dense_layers.append((dense, layer))
        if after is not None:
            stack.append(after)
    keras_model = keras.Sequential(stack, name=model.name)
    for dense, layer in dense_layers:
        dense.set_weights([layer.W, layer.b])
    return keras_model
