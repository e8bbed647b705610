"""ONNX export: a graph that computes ``model.predict``.

Each layer is one ``Gemm`` (``X·W + b``, W stored as the model holds it, (in, out)) and its
activation; the input ``input`` is (batch, in) and the output ``output`` (batch, out), with
a dynamic batch dimension, in the model's dtype (float32 or float64).

The default opset is 13 (`DEFAULT_OPSET`): the first with ``Softmax`` over one axis and
every operator used here, supported by ONNX Runtime ≥ 1.6, TensorRT, OpenVINO and most other
runtimes; any opset from 13 to the installed onnx's newest can be asked for. The IR version
is the lowest that opset allows (7 for opset 13), so older runtimes load the file.

How each activation is exported (z: the layer's pre-activation; every form is the one
fastdense's kernels compute, chosen where the plain ONNX operator is less accurate or, in
float64, missing from ONNX Runtime's CPU kernels):

| activation | graph |
|---|---|
| relu | ``Relu`` |
| leaky_relu(s) | ``LeakyRelu(alpha=s)`` (float32); ``Where(z > 0, z, s·z)`` (float64: ONNX Runtime has no double LeakyRelu) |
| elu(α) | ``Where(z > 0, z, α·expm1(min(z, 0)))``, expm1 by Kahan's ``(u − 1)·x / log u``, u = eˣ (``Elu`` computes eᶻ − 1, which loses all precision near 0, and has no double kernel) |
| tanh | ``Tanh`` |
| sigmoid | ``1/(1 + e^−z)`` for z ≥ 0, ``e^z/(1 + e^z)`` below (ONNX Runtime's ``Sigmoid`` loses its relative precision for z < −15) |
| softplus | ``relu(z) + log1p(e^−|z|)``, log1p by Kahan's ``log(u)·x/(u − 1)``, u = 1 + x (the plain ``Softplus``, log(eᶻ + 1), overflows for large z in some runtimes and has no double kernel in ONNX Runtime) |
| gelu | ``z/2·(1 + Erf(z/√2))`` (float32); float64: ``z/2·(1 + erf(z/√2))`` with 1 + erf(x) from a piecewise Chebyshev erfc (`tools/erfc_coefficients.py`) accurate to float64's rounding of 1, since ONNX Runtime has no double ``Erf`` |
| gelu(approximate=True) | ``z/2·(1 + Tanh(√(2/π)·(z + 0.044715·z³)))`` |
| softmax | ``Softmax(axis=-1)`` |

Onnxruntime's outputs agree with ``model.predict`` to about 1e-7 (float32) and 1e-15
(float64) of the outputs' scale (tests/test_interop.py).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._common import LayerWeights, model_layers, peer

DEFAULT_OPSET = 13
MIN_OPSET = 13

# Chebyshev coefficients of erfc on [0, 2] (argument t − 1) and of erfcx(t) = e^(t²)·erfc(t)
# on [2, 6] (argument (t − 4)/2), from tools/erfc_coefficients.py: keep in step.
ERFC_0_2 = (0.3385123792107087, -0.4830484368747376, 0.17245578123826302,
            -0.017358168859481694, -0.008712277069831794, 0.002915406701855511,
            6.55044780024642e-05, -0.00017603136795846914, 1.8871035718822698e-05,
            6.214076184077787e-06, -1.453479625048576e-06, -1.1534347372751587e-07,
            6.404616115458675e-08, -1.002214392348587e-09, -2.0157043890971107e-09,
            1.6756571478132846e-10, 4.763980134617143e-11, -7.437882996341527e-12,
            -8.168781877616656e-13, 2.2747394904542494e-13, 7.681891022198983e-15,
            -5.491674206158647e-15, 8.780530917194009e-17, 1.114391752837288e-16)
ERFCX_2_6 = (0.15454893254411423, -0.07674006034821483, 0.01849487416970198,
             -0.004337233595514166, 0.0009916839077238056, -0.00022144890703087983,
             4.836760032122529e-05, -1.034609832664543e-05, 2.1698719431920526e-06,
             -4.4664937548784355e-07, 9.031674382673662e-08, -1.7955339488870227e-08,
             3.51208006247638e-09, -6.763532420163365e-10, 1.2831846446274902e-10,
             -2.399702370928085e-11, 4.425938007421285e-12, -8.054583659669477e-13,
             1.4469897082143768e-13, -2.567108363463012e-14, 4.495872680806143e-15,
             -7.568594318724443e-16)

SQRT_2_PI = 0.79788456080286535588       # √(2/π), as the kernels' FD_SQRT_2_PI
SQRT1_2 = 0.70710678118654752440         # 1/√2
GELU_C = 0.044715


class _Graph:
    """Nodes and initialisers of one graph, with scalar constants of the model's dtype."""

    def __init__(self, onnx: Any, dtype: np.dtype) -> None:
        self.helper = onnx.helper
        self.numpy_helper = onnx.numpy_helper
        self.dtype = dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._constants: dict[float, str] = {}
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def tensor(self, name: str, value: Any) -> str:
        self.initializers.append(
            self.numpy_helper.from_array(np.asarray(value, dtype=self.dtype), name))
        return name

    def const(self, value: float) -> str:
        """A scalar of the model's dtype (the value rounded once to it, as the kernels'
        (T) casts do)."""
        key = float(value)
        if key not in self._constants:
            self._constants[key] = self.tensor(f"c{len(self._constants)}", key)
        return self._constants[key]

    def op(self, op_type: str, *inputs: str, hint: str | None = None, **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    # shorthands
    def add(self, a: str, b: str) -> str:
        return self.op("Add", a, b)

    def sub(self, a: str, b: str) -> str:
        return self.op("Sub", a, b)

    def mul(self, a: str, b: str) -> str:
        return self.op("Mul", a, b)

    def div(self, a: str, b: str) -> str:
        return self.op("Div", a, b)

    def where(self, cond: str, a: str, b: str) -> str:
        return self.op("Where", cond, a, b)

    def clenshaw(self, coeffs: tuple[float, ...], u: str) -> str:
        """Σ c_k T_k(u) by Clenshaw's recurrence."""
        two_u = self.mul(self.const(2.0), u)
        b1, b2 = self.const(coeffs[-1]), None
        for c in coeffs[-2:0:-1]:
            t = self.mul(two_u, b1)
            if b2 is not None:
                t = self.sub(t, b2)
            b1, b2 = self.add(t, self.const(c)), b1
        t = self.mul(u, b1)
        if b2 is not None:
            t = self.sub(t, b2)
        return self.add(t, self.const(coeffs[0]))

    # accurate pieces
    def expm1_nonpositive(self, x: str) -> str:
        """eˣ − 1 for x ≤ 0 (Kahan): x where eˣ rounds to 1, −1 where eˣ − 1 does, else
        (eˣ − 1)·x / log eˣ."""
        u = self.op("Exp", x)
        um1 = self.sub(u, self.const(1.0))
        general = self.div(self.mul(um1, x), self.op("Log", u))
        minus_one = self.const(-1.0)
        inner = self.where(self.op("Equal", um1, minus_one), minus_one, general)
        return self.where(self.op("Equal", u, self.const(1.0)), x, inner)

    def log1p_nonnegative(self, x: str) -> str:
        """log(1 + x) for x ≥ 0 (Kahan): x where 1 + x rounds to 1, else
        log(u)·x / (u − 1), u = 1 + x."""
        one = self.const(1.0)
        u = self.add(one, x)
        general = self.div(self.mul(self.op("Log", u), x), self.sub(u, one))
        return self.where(self.op("Equal", u, one), x, general)

    def one_plus_erf(self, x: str) -> str:
        """1 + erf(x) in float64 from the Chebyshev erfc: erfc(|x|) for x < 0, 2 − erfc(x)
        above; exactly 0 / 2 beyond |x| = 6, where float64's erf is ∓1."""
        t_raw = self.op("Abs", x)
        t = self.op("Min", t_raw, self.const(6.0))
        small = self.clenshaw(ERFC_0_2, self.sub(self.op("Min", t, self.const(2.0)),
                                                 self.const(1.0)))
        t_large = self.op("Max", t, self.const(2.0))
        u_large = self.div(self.sub(t_large, self.const(4.0)), self.const(2.0))
        large = self.mul(self.op("Exp", self.op("Neg", self.mul(t_large, t_large))),
                         self.clenshaw(ERFCX_2_6, u_large))
        erfc = self.where(self.op("Less", t, self.const(2.0)), small, large)
        erfc = self.where(self.op("Greater", t_raw, self.const(6.0)), self.const(0.0), erfc)
        return self.where(self.op("Less", x, self.const(0.0)), erfc,
                          self.sub(self.const(2.0), erfc))

    def activation(self, z: str, spec: Any) -> str:
        name, params = spec.name, spec.params
        double = self.dtype == np.float64
        if name == "linear":
            return z
        if name == "relu":
            return self.op("Relu", z)
        if name == "leaky_relu":
            s = float(params["negative_slope"])
            if not double:
                return self.op("LeakyRelu", z, alpha=s)
            return self.where(self.op("Greater", z, self.const(0.0)), z,
                              self.mul(self.const(s), z))
        if name == "elu":
            negative = self.mul(self.const(float(params["alpha"])),
                                self.expm1_nonpositive(self.op("Min", z, self.const(0.0))))
            return self.where(self.op("Greater", z, self.const(0.0)), z, negative)
        if name == "tanh":
            return self.op("Tanh", z)
        if name == "sigmoid":
            e = self.op("Exp", self.op("Neg", self.op("Abs", z)))
            d = self.add(self.const(1.0), e)
            return self.where(self.op("Less", z, self.const(0.0)), self.div(e, d),
                              self.div(self.const(1.0), d))
        if name == "softplus":
            e = self.op("Exp", self.op("Neg", self.op("Abs", z)))
            return self.add(self.op("Relu", z), self.log1p_nonnegative(e))
        if name == "gelu":
            half_z = self.mul(self.const(0.5), z)
            if params["approximate"]:
                v3 = self.mul(self.mul(self.mul(self.const(GELU_C), z), z), z)
                inner = self.mul(self.const(SQRT_2_PI), self.add(z, v3))
                return self.mul(half_z, self.add(self.const(1.0), self.op("Tanh", inner)))
            x = self.mul(z, self.const(SQRT1_2))
            if double:
                return self.mul(half_z, self.one_plus_erf(x))
            return self.mul(half_z, self.add(self.const(1.0), self.op("Erf", x)))
        if name == "softmax":
            return self.op("Softmax", z, axis=-1)
        raise ValueError(f"activation {name!r} has no ONNX export")   # pragma: no cover


def _scaling_arrays(scaling: Mapping[str, Any] | None, n_in: int, n_out: int):
    if scaling is None:
        return None
    out = {}
    for key, width in (("x_mean", n_in), ("x_std", n_in), ("y_mean", n_out), ("y_std", n_out)):
        if key not in scaling:
            raise ValueError(f"scaling needs x_mean, x_std, y_mean and y_std; {key} is missing")
        a = np.asarray(scaling[key], dtype=np.float64).reshape(-1)
        if a.shape != (width,):
            raise ValueError(f"scaling[{key!r}] has {a.size} values, expected {width}")
        if not np.all(np.isfinite(a)) or (key.endswith("std") and np.any(a == 0)):
            raise ValueError(f"scaling[{key!r}] must be finite" +
                             (" and non-zero" if key.endswith("std") else ""))
        out[key] = a
    return out


def to_onnx(model: Any, opset: int | None = None, *,
            scaling: Mapping[str, Any] | None = None) -> Any:
    """An ``onnx.ModelProto`` computing ``model.predict`` (see the module's docstring),
    checked by ``onnx.checker.check_model``.

    ``opset``: the ONNX opset, 13 (the default) up to the installed onnx's newest.
    ``scaling``: optional standardisation statistics (``fastdense train``'s, a mapping with
    ``x_mean``, ``x_std``, ``y_mean``, ``y_std``) folded into the graph, so that it maps
    raw features to predictions in the target's units: ``((X − x_mean)/x_std → network)
    · y_std + y_mean``.
    """
    onnx = peer("onnx", "onnx", "ONNX export")
    layers: list[LayerWeights] = model_layers(model)
    dtype = np.dtype(model.dtype)
    newest = int(onnx.defs.onnx_opset_version())
    if opset is None:
        opset = DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) \
            or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {newest} (the "
                         f"installed onnx {onnx.__version__}'s newest), got {opset!r}")
    opset = int(opset)
    n_in, n_out = layers[0].W.shape[0], layers[-1].W.shape[1]
    stats = _scaling_arrays(scaling, n_in, n_out)

    g = _Graph(onnx, dtype)
    h = "input"
    if stats is not None:
        h = g.div(g.sub(h, g.tensor("x_mean", stats["x_mean"])),
                  g.tensor("x_std", stats["x_std"]))
    for i, layer in enumerate(layers):
        W = g.tensor(f"W{i}", layer.W)
        b = g.tensor(f"b{i}", layer.b)
        h = g.op("Gemm", h, W, b, hint=f"dense{i}")
        h = g.activation(h, layer.activation)
    if stats is not None:
        h = g.add(g.mul(h, g.tensor("y_std", stats["y_std"])),
                  g.tensor("y_mean", stats["y_mean"]))
    g.nodes.append(onnx.helper.make_node("Identity", [h], ["output"]))

    helper = onnx.helper
    elem = helper.np_dtype_to_tensor_dtype(dtype)
    graph = helper.make_graph(
        g.nodes, model.name or "fastdense",
        [helper.make_tensor_value_info("input", elem, ["batch", n_in])],
        [helper.make_tensor_value_info("output", elem, ["batch", n_out])],
        g.initializers)
    from .. import __version__

    proto = helper.make_model_gen_version(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="fastdense",
        producer_version=__version__,
        doc_string=f"fastdense {model!r}" + (" with the input and output standardisation"
                                             if stats is not None else ""))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: Any, path: str | os.PathLike[str], opset: int | None = None, *,
                scaling: Mapping[str, Any] | None = None) -> Any:
    """Write an ONNX file at ``path`` computing ``model.predict`` (`to_onnx`'s graph;
    default opset 13) and return its ``onnx.ModelProto``. Input ``input`` (batch, in),
    output ``output`` (batch, out), in the model's dtype."""
    proto = to_onnx(model, opset, scaling=scaling)
    onnx = peer("onnx", "onnx", "ONNX export")
    onnx.save(proto, os.fspath(path))
    return proto
