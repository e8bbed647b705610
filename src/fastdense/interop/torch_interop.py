"""PyTorch: a fastdense model from a ``torch.nn.Sequential`` of ``nn.Linear`` layers and
activation modules, and back.

| torch module | fastdense |
|---|---|
| ``nn.Linear(in, out, bias=True/False)`` | ``Dense(out)`` with W = weight.T (a Linear without bias: zero biases) |
| ``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid`` | relu, tanh, sigmoid |
| ``nn.LeakyReLU(negative_slope)`` | leaky_relu(negative_slope) |
| ``nn.ELU(alpha)`` | elu(alpha) |
| ``nn.Softplus(beta=1, threshold ≥ 20)`` | softplus (torch returns x itself above the threshold; fastdense x + log1p(e^−x): at most log1p(e^−20) ≈ 2.1e-9 apart, below float32's rounding there) |
| ``nn.GELU(approximate='none' / 'tanh')`` | gelu(approximate=False / True) |
| ``nn.Softmax(dim=-1 or 1)``, last | softmax |
| ``nn.Identity`` | (nothing) |

Each activation module follows the Linear whose outputs it transforms (one activation per
Linear). Anything else raises ValueError naming the module and its position.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import activations as _activations
from .._validation import float_dtype
from ._common import LayerWeights, build_model, model_layers, peer

# to_torch's Softplus threshold: above 40, x + log1p(e^−x) rounds to x in float64 too, so
# torch's linear shortcut is exact there (its default 20 is exact only in float32)
SOFTPLUS_THRESHOLD = 40.0


def _torch() -> Any:
    return peer("torch", "torch", "PyTorch interop")


def _activation_of(nn: Any, module: Any, where: str) -> _activations.Activation | None:
    """The fastdense activation of a torch activation module; None for nn.Identity."""
    kind = type(module)
    if kind is nn.Identity:
        return None
    try:
        if kind is nn.ReLU:
            return _activations.Activation("relu")
        if kind is nn.Tanh:
            return _activations.Activation("tanh")
        if kind is nn.Sigmoid:
            return _activations.Activation("sigmoid")
        if kind is nn.LeakyReLU:
            return _activations.Activation("leaky_relu",
                                           negative_slope=float(module.negative_slope))
        if kind is nn.ELU:
            return _activations.Activation("elu", alpha=float(module.alpha))
        if kind is nn.Softplus:
            if float(module.beta) != 1.0 or not float(module.threshold) >= 20.0:
                raise ValueError(f"{where}: fastdense's softplus is nn.Softplus(beta=1) with "
                                 f"a threshold of at least 20, got beta={module.beta}, "
                                 f"threshold={module.threshold}")
            return _activations.Activation("softplus")
        if kind is nn.GELU:
            if module.approximate not in ("none", "tanh"):
                raise ValueError(f"{where}: unknown GELU approximation "
                                 f"{module.approximate!r}")
            return _activations.Activation("gelu", approximate=module.approximate == "tanh")
        if kind is nn.Softmax:
            if module.dim not in (-1, 1):
                raise ValueError(f"{where}: fastdense's softmax is over a sample's outputs, "
                                 f"nn.Softmax(dim=-1) or dim=1; got dim={module.dim}")
            return _activations.Activation("softmax")
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where}: {exc}") from None
    raise ValueError(f"{where} is not supported: fastdense takes nn.Linear, nn.Identity and "
                     f"the activations ReLU, LeakyReLU, ELU, Tanh, Sigmoid, Softplus, GELU "
                     f"and (last) Softmax")


def from_torch(module: Any, dtype: Any = None) -> Any:
    """A fastdense ``Sequential`` with the layers and weights of ``module``, a
    ``torch.nn.Sequential`` of ``nn.Linear`` layers, each followed by at most one
    supported activation module (see this module's docstring).

    ``dtype``: the fastdense dtype ("float32" or "float64"); by default the Linear layers'
    own (which must then be float32 or float64). The result is not compiled.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"from_torch takes a torch.nn.Sequential, got {type(module).__name__}")
    layers: list[LayerWeights] = []
    found: set[Any] = set()
    softmax_at = None
    for i, (name, child) in enumerate(module.named_children()):
        where = f"module {i} ({name!r}: {child!r})" if name != str(i) \
            else f"module {i} ({child!r})"
        if type(child) is nn.Linear:
            if softmax_at is not None:
                raise ValueError(f"{where} follows the Softmax at module {softmax_at}: "
                                 f"fastdense allows softmax on the last layer only")
            found.add(child.weight.dtype)
            W = _numpy(torch, child.weight, where)
            b = np.zeros(W.shape[0], dtype=W.dtype) if child.bias is None \
                else _numpy(torch, child.bias, where)
            layers.append(LayerWeights(W.T, b, _activations.Activation("linear")))
            continue
        act = _activation_of(nn, child, where)
        if act is None:
            continue
        if not layers:
            raise ValueError(f"{where} comes before any nn.Linear: fastdense applies an "
                             f"activation to a Dense layer's outputs")
        if layers[-1].activation.name != "linear":
            raise ValueError(f"{where} follows another activation "
                             f"({layers[-1].activation.name}) of the same Linear: fastdense "
                             f"takes one activation per layer")
        if act.name == "softmax":
            softmax_at = i
        layers[-1] = layers[-1]._replace(activation=act)
    if not layers:
        raise ValueError("the nn.Sequential has no nn.Linear layer")
    if dtype is None:
        if len(found) > 1:
            raise ValueError(f"the Linear layers mix dtypes {sorted(map(str, found))}: pass "
                             f"dtype='float32' or 'float64'")
        (tdtype,) = found
        if tdtype not in (torch.float32, torch.float64):
            raise ValueError(f"the Linear layers hold {tdtype} weights; fastdense computes "
                             f"in float32 or float64: pass dtype='float32' or 'float64' to "
                             f"convert them")
        dtype = "float32" if tdtype == torch.float32 else "float64"
    return build_model(layers, float_dtype(dtype))


def _numpy(torch: Any, t: Any, where: str) -> np.ndarray:
    """A copy of a parameter as NumPy: float32 and float64 as they are, other floating
    types (float16, bfloat16) through float64, which holds them exactly."""
    t = t.detach().cpu()
    if not t.dtype.is_floating_point:
        raise ValueError(f"{where} holds {t.dtype} weights, not floating point")
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float64)
    return t.numpy().copy()


def _module_of(nn: Any, act: _activations.Activation) -> Any:
    name, params = act.name, act.params
    if name == "linear":
        return None
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope=params["negative_slope"])
    if name == "elu":
        return nn.ELU(alpha=params["alpha"])
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "softplus":
        return nn.Softplus(beta=1.0, threshold=SOFTPLUS_THRESHOLD)
    if name == "gelu":
        return nn.GELU(approximate="tanh" if params["approximate"] else "none")
    if name == "softmax":
        return nn.Softmax(dim=-1)
    raise ValueError(f"activation {name!r} has no torch module")   # pragma: no cover


def to_torch(model: Any) -> Any:
    """A ``torch.nn.Sequential`` computing ``model.predict``: per layer an ``nn.Linear``
    (weight = W.T, as torch stores it; the model's dtype) and its activation module
    (softplus as ``nn.Softplus(threshold=40)``, exact in float64 too). Regularisers are
    not carried over (torch modules hold none: use the optimizer's weight decay)."""
    torch = _torch()
    nn = torch.nn
    layers = model_layers(model)
    tdtype = {np.dtype(np.float32): torch.float32,
              np.dtype(np.float64): torch.float64}[np.dtype(model.dtype)]
    modules = []
    for layer in layers:
        n_in, n_out = layer.W.shape
        # skip_init: no random initialisation (nor a draw from torch's global generator)
        linear = nn.utils.skip_init(nn.Linear, n_in, n_out, dtype=tdtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.W.T)))
            linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(layer.b)))
        modules.append(linear)
        act = _module_of(nn, layer.activation)
        if act is not None:
            modules.append(act)
    return nn.Sequential(*modules)
