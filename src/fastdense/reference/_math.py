"""The reference's arithmetic beyond matmul: activations and their derivatives, the loss
heads, the metrics. Plain NumPy ufuncs (and SciPy's ``erf``/``expit`` ufuncs) writing into
preallocated buffers (``out=``); every constant is a scalar of the model dtype, so a float32
model computes in float32 throughout. The formulas are those of ``fastdense.activations``,
``fastdense.losses`` and ``fastdense.metrics`` (their docstrings are the specification).

Each head works on a batch of ``n`` rows and ``k`` outputs and returns the batch loss
Σᵢ wᵢ·lᵢ / n; with ``grad`` it also writes ∂loss/∂(its input) into ``ws.deltas[-1]``:
∂/∂ŷ for the regression losses (the network then applies the output activation's
derivative), ∂/∂z, the last layer's logits, for the cross-entropies (fused: the output
activation is never applied in training). It leaves in ``ws.yhat`` the model's output for
the metrics (the probabilities a sigmoid/softmax output would give, or the output itself).

Measured choices (NumPy 2.4, float32, per call; 32×10 is the digits classifier's head,
32×64 its hidden layers, 128×512 ``wide``):

* no ``where=`` and no ``heaviside``/``putmask``: a masked ufunc costs 12.8 µs / 648 µs
  against 0.75 µs / 24 µs for a plain one, so leaky ReLU and ELU select with exact
  min/max/sign arithmetic instead;
* the row maximum of the softmax is ``argmax`` + a flat ``take`` (4.8 µs, the same value)
  rather than ``np.maximum.reduce(z, axis=1)`` (6.5 µs): reductions along short rows pay
  the iterator per row;
* sums are BLAS dots with a ones array (``np.vdot``: 1.3 µs, against 2.4 µs for
  ``np.add.reduce(t, axis=None)``); the probability rows are summed by a matmul with a ones
  column; the one-hot rows of class labels are gathered from an identity matrix with
  ``np.take`` (0.8 µs, against 1.9 µs for a broadcast ``np.equal``);
* constants are 0-d arrays of the model dtype (0.57 µs per multiply, against 0.83 µs with
  a NumPy scalar and 1.9 µs with a Python float).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import special as _special

from .. import activations as _acts
from .. import metrics as _metrics

LINEAR, RELU, LEAKY_RELU, ELU, TANH, SIGMOID, SOFTPLUS, GELU, GELU_TANH, SOFTMAX = (
    _acts.LINEAR, _acts.RELU, _acts.LEAKY_RELU, _acts.ELU, _acts.TANH, _acts.SIGMOID,
    _acts.SOFTPLUS, _acts.GELU, _acts.GELU_TANH, _acts.SOFTMAX)

_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_K = 0.044715


def const(value, dtype) -> np.ndarray:
    """A constant operand: a 0-d array of the model dtype (cheaper in a ufunc than a NumPy
    scalar, and never a float64 meeting a float32 buffer)."""
    return np.array(value, dtype)


class Consts:
    """The constants of the arithmetic, 0-d arrays of the model dtype."""

    def __init__(self, dtype: np.dtype):
        t = lambda value: const(value, dtype)  # noqa: E731
        self.zero, self.one, self.half = t(0), t(1), t(0.5)
        self.sqrt2 = t(math.sqrt(2.0))
        self.minus_half = t(-0.5)
        self.inv_sqrt_2pi = t(1.0 / math.sqrt(2.0 * math.pi))
        self.gelu_c = t(_GELU_C)
        self.gelu_k = t(_GELU_K)
        self.gelu_3k = t(3 * _GELU_K)
        self.set_loss(1.0, 0.5)

    def set_loss(self, delta: float, threshold: float) -> None:
        """Huber's ±δ and binary accuracy's threshold, in the model dtype."""
        dtype = self.zero.dtype
        self.delta, self.neg_delta = const(delta, dtype), const(-delta, dtype)
        self.threshold = const(threshold, dtype)


# ---------------------------------------------------------------- activations

# the activations whose forward uses ws.tmp
FORWARD_SCRATCH = (LEAKY_RELU, ELU, GELU, GELU_TANH)


def scratch_needed(kind: int, alpha: float) -> int:
    """How many scratch arrays of a layer's shape its activation needs (tmp, tmp2, tmp3)."""
    if kind == GELU_TANH:
        return 3
    if kind == GELU or (kind == ELU and alpha != 1) or (kind == LEAKY_RELU and alpha > 1):
        return 2
    return 1


def activate(kind: int, alpha, z: np.ndarray, dst: np.ndarray, ws, i: int, c: Consts) -> None:
    """``dst = f(z)`` for a layer whose pre-activation is ``z`` (``dst is z`` except for GELU,
    whose pre-activation is kept). ReLU and linear are handled inline by the caller."""
    if kind == TANH:
        np.tanh(z, out=dst)
    elif kind == SIGMOID:
        _special.expit(z, out=dst)                     # stable for every z
    elif kind == SOFTPLUS:
        # logaddexp(z, 0) = max(z, 0) + log1p(e^−|z|), as NumPy evaluates it
        np.logaddexp(z, ws.zeros[i], out=dst)
    elif kind == LEAKY_RELU:
        # z if z > 0 else s·z  is  max(z, s·z) for s ≤ 1, min(z, s·z) for s > 1 (exactly)
        t = ws.tmp[i]
        np.multiply(z, alpha, out=t)
        (np.maximum if alpha <= 1 else np.minimum)(z, t, out=dst)
    elif kind == ELU:
        # relu(z) + α·expm1(min(z, 0)): exactly z for z > 0 and α·expm1(z) otherwise
        t = ws.tmp[i]
        np.minimum(z, ws.zeros[i], out=t)
        np.expm1(t, out=t)
        if alpha != 1:
            np.multiply(t, alpha, out=t)
        np.maximum(z, ws.zeros[i], out=dst)
        np.add(dst, t, out=dst)
    elif kind == GELU:
        t = ws.tmp[i]                                  # Φ(z) = (1 + erf(z/√2))/2
        np.divide(z, c.sqrt2, out=t)
        _special.erf(t, out=t)
        np.add(t, c.one, out=t)
        np.multiply(t, c.half, out=t)
        np.multiply(z, t, out=dst)
    elif kind == GELU_TANH:
        t = ws.tmp[i]                                  # (1 + tanh(c·(z + κz³)))/2
        np.multiply(z, z, out=t)
        np.multiply(t, c.gelu_k, out=t)
        np.add(t, c.one, out=t)
        np.multiply(t, z, out=t)
        np.multiply(t, c.gelu_c, out=t)
        np.tanh(t, out=t)
        np.add(t, c.one, out=t)
        np.multiply(t, c.half, out=t)
        np.multiply(z, t, out=dst)
    elif kind == SOFTMAX:
        softmax(z, dst, ws)
    elif kind == RELU:
        np.maximum(z, ws.zeros[i], out=dst)
    elif kind != LINEAR:
        raise AssertionError(kind)


def row_max(z, ws) -> None:
    """``ws.r1`` (n, 1) ← the largest value of each row of z (n, k): the value at each
    row's argmax (NaN where the row has one, as a max reduction gives)."""
    i1 = ws.i1
    z.argmax(axis=1, out=i1)
    np.add(i1, ws.row_start, out=i1)
    np.take(ws.out_flat if z is ws.acts[-1] else z.reshape(-1), i1, out=ws.r1_flat,
            mode="clip")


def softmax(z, dst, ws) -> None:
    """``dst = e^(z − max z) / Σ e^(z − max z)`` row by row."""
    row_max(z, ws)
    np.subtract(z, ws.r1, out=dst)
    np.exp(dst, out=dst)
    np.matmul(dst, ws.ones_k, out=ws.r2)
    np.divide(dst, ws.r2, out=dst)


def derive(kind: int, alpha, d: np.ndarray, ws, i: int, c: Consts) -> None:
    """``d ← d ⊙ f'`` in place: ∂loss/∂a_i becomes ∂loss/∂z_i. The derivative comes from
    the layer's output ``a = ws.acts[i]`` (from its pre-activation ``ws.pre[i]`` for GELU),
    as activations.py's table gives it."""
    a = ws.acts[i]
    if kind == RELU:
        mask = ws.masks[i]
        np.greater(a, ws.zeros[i], out=mask)
        np.multiply(d, mask, out=d)
    elif kind == LEAKY_RELU:                           # 1 if a > 0 else s
        t = ws.tmp[i]
        np.sign(a, out=t)
        if alpha <= 1:                                 # max(sign(a), s)
            np.maximum(t, alpha, out=t)
        else:                                          # P·1 + (1 − P)·s, P = [a > 0]
            u = ws.tmp2[i]
            np.maximum(t, c.zero, out=t)
            np.subtract(c.one, t, out=u)
            np.multiply(u, alpha, out=u)
            np.add(u, t, out=t)
        np.multiply(d, t, out=d)
    elif kind == ELU:                                  # 1 if a ≥ 0 else a + α
        t = ws.tmp[i]
        np.minimum(a, ws.zeros[i], out=t)
        if alpha == 1:                                 # min(a, 0) + 1
            np.add(t, c.one, out=t)
        else:
            # with g = min(sign(a), 0) = −[a < 0] and t = min(a, 0) + α:
            # (1 + g) − t·g is exactly t where a < 0 and exactly 1 elsewhere
            g = ws.tmp2[i]
            np.add(t, alpha, out=t)
            np.sign(a, out=g)
            np.minimum(g, c.zero, out=g)
            np.multiply(t, g, out=t)
            np.add(g, c.one, out=g)
            np.subtract(g, t, out=t)
        np.multiply(d, t, out=d)
    elif kind == TANH:                                 # 1 − a²
        t = ws.tmp[i]
        np.multiply(a, a, out=t)
        np.subtract(c.one, t, out=t)
        np.multiply(d, t, out=d)
    elif kind == SIGMOID:                              # a·(1 − a)
        t = ws.tmp[i]
        np.subtract(c.one, a, out=t)
        np.multiply(t, a, out=t)
        np.multiply(d, t, out=d)
    elif kind == SOFTPLUS:                             # −expm1(−a)
        t = ws.tmp[i]
        np.negative(a, out=t)
        np.expm1(t, out=t)
        np.multiply(d, t, out=d)
        np.negative(d, out=d)
    elif kind == GELU:                                 # Φ(z) + z·φ(z)
        z, t, u = ws.pre[i], ws.tmp[i], ws.tmp2[i]
        np.divide(z, c.sqrt2, out=t)
        _special.erf(t, out=t)
        np.add(t, c.one, out=t)
        np.multiply(t, c.half, out=t)
        np.multiply(z, z, out=u)
        np.multiply(u, c.minus_half, out=u)
        np.exp(u, out=u)
        np.multiply(u, c.inv_sqrt_2pi, out=u)
        np.multiply(u, z, out=u)
        np.add(t, u, out=t)
        np.multiply(d, t, out=d)
    elif kind == GELU_TANH:
        # ½(1 + th) + ½z(1 − th²)·c(1 + 3κz²)
        #   = ½(1 + th)·(1 + (1 − th)·z·c(1 + 3κz²)),  th = tanh(c(z + κz³))
        z, t, u, v = ws.pre[i], ws.tmp[i], ws.tmp2[i], ws.tmp3[i]
        np.multiply(z, z, out=u)                       # u = z²
        np.multiply(u, c.gelu_k, out=t)
        np.add(t, c.one, out=t)
        np.multiply(t, z, out=t)
        np.multiply(t, c.gelu_c, out=t)
        np.tanh(t, out=t)                              # t = th
        np.multiply(u, c.gelu_3k, out=u)
        np.add(u, c.one, out=u)
        np.multiply(u, z, out=u)
        np.multiply(u, c.gelu_c, out=u)                # u = z·c(1 + 3κz²)
        np.subtract(c.one, t, out=v)
        np.multiply(u, v, out=u)
        np.add(u, c.one, out=u)
        np.add(t, c.one, out=v)
        np.multiply(v, c.half, out=v)
        np.multiply(u, v, out=u)
        np.multiply(d, u, out=d)
    elif kind == SOFTMAX:                              # p ⊙ (g − Σ_j p_j g_j)
        t = ws.tmp[i]
        np.multiply(a, d, out=t)
        np.matmul(t, ws.ones_k, out=ws.r1)
        np.subtract(d, ws.r1, out=d)
        np.multiply(d, a, out=d)
    elif kind != LINEAR:
        raise AssertionError(kind)


# ---------------------------------------------------------------- loss heads
#
# head(ws, out, y, w, grad, unit) -> Σᵢ wᵢ lᵢ / n
#   out  (n, k): the model output (regression) or the last layer's logits (cross-entropies)
#   y    (n, k) targets, or (n,) intp class labels for the sparse loss
#   w    None, or (n, 1) sample weights
#   unit every target row sums to exactly 1 (categorical cross-entropy only)
# ws.scale_nk = 1/(n·k), ws.scale_n = 1/n in the model dtype; ws.wcol: (n, 1) scratch.


def _weights(ws, w, scale):
    """The per-row gradient factor: the scalar ``scale`` or the column ``w·scale``."""
    if w is None:
        return scale
    np.multiply(w, scale, out=ws.wcol)
    return ws.wcol


def _total(ws, t) -> float:
    """Σ t for t of shape (n, k) or (n, 1): a BLAS dot with ones."""
    return float(np.vdot(t, ws.ones_nk if t.shape[1] != 1 else ws.ones_n1))


def mse(ws, out, y, w, grad, unit, loss):
    d = ws.deltas[-1] if grad else ws.h0
    np.subtract(out, y, out=d)
    ws.yhat = out
    if w is None:
        value = float(np.vdot(d, d)) / d.size
        if grad:
            np.multiply(d, ws.scale2_nk, out=d)        # 2(ŷ − y)/(n·k)
        return value
    t = ws.h1
    np.multiply(d, w, out=t)
    value = float(np.vdot(t, d)) / d.size
    if grad:
        np.multiply(t, ws.scale2_nk, out=d)
    return value


def mae(ws, out, y, w, grad, unit, loss):
    d, t = (ws.deltas[-1] if grad else ws.h0), ws.h1
    np.subtract(out, y, out=d)
    ws.yhat = out
    np.abs(d, out=t)
    if w is not None:
        np.multiply(t, w, out=t)
    value = _total(ws, t) / d.size
    if grad:
        np.sign(d, out=d)
        np.multiply(d, _weights(ws, w, ws.scale_nk), out=d)
    return value


def huber(ws, out, y, w, grad, unit, loss):
    # with c = clip(e, −δ, δ): ½e² if |e| ≤ δ else δ|e| − ½δ²  equals  c·(e − c/2)
    e, t = ws.h0, ws.h1
    cl = ws.deltas[-1] if grad else ws.h2
    np.subtract(out, y, out=e)
    ws.yhat = out
    np.minimum(e, ws.c.delta, out=cl)
    np.maximum(cl, ws.c.neg_delta, out=cl)
    np.multiply(cl, ws.c.half, out=t)
    np.subtract(e, t, out=t)
    if w is not None:
        np.multiply(t, w, out=t)
    value = float(np.vdot(cl, t)) / e.size
    if grad:
        np.multiply(cl, _weights(ws, w, ws.scale_nk), out=cl)
    return value


def binary_crossentropy(ws, z, y, w, grad, unit, loss):
    # lᵢ = mean_j max(z, 0) − z·y + log1p(e^−|z|);  ∂lᵢ/∂z = (sigmoid(z) − y)/k
    t, u, p = ws.h0, ws.h1, ws.prob
    np.logaddexp(z, ws.zeros[-1], out=t)
    np.multiply(z, y, out=u)
    np.subtract(t, u, out=t)
    if w is not None:
        np.multiply(t, w, out=t)
    value = _total(ws, t) / t.size
    if grad or not loss.from_logits:
        _special.expit(z, out=p)
    ws.yhat = z if loss.from_logits else p
    if grad:
        d = ws.deltas[-1]
        np.subtract(p, y, out=d)
        np.multiply(d, _weights(ws, w, ws.scale_nk), out=d)
    return value


def _log_softmax_parts(ws, z):
    """t = z − max z (ws.h0), p = softmax(z) (ws.prob), log Σ e^t (ws.r2): lse(z) − z_j is
    log Σ e^t − t_j, a difference of two non-negative numbers."""
    t, p, s = ws.h0, ws.prob, ws.r2
    row_max(z, ws)
    np.subtract(z, ws.r1, out=t)
    np.exp(t, out=p)
    np.matmul(p, ws.ones_k, out=s)
    np.divide(p, s, out=p)
    np.log(s, out=s)
    return t, p, s


def categorical_crossentropy(ws, z, y, w, grad, unit, loss):
    # lᵢ = Σ_j y_j (lse(z) − z_j) = (Σ_j y_j)·log Σe^t − Σ_j y_j t_j
    # ∂lᵢ/∂z = p·Σy − y
    t, p, s = _log_softmax_parts(ws, z)
    ws.yhat = z if loss.from_logits else p
    if unit and w is None:
        value = (_total(ws, s) - float(np.vdot(y, t))) / z.shape[0]
    else:
        ys = ws.r3
        if unit:
            ys = ws.ones_n1
        else:
            np.matmul(y, ws.ones_k, out=ys)
        u = ws.h1
        np.multiply(y, t, out=u)
        np.matmul(u, ws.ones_k, out=ws.r4)
        np.multiply(s, ys, out=s)
        np.subtract(s, ws.r4, out=s)                  # lᵢ
        value = (_total(ws, s) if w is None else float(np.vdot(s, w))) / z.shape[0]
    if grad:
        d = ws.deltas[-1]
        if unit:
            np.subtract(p, y, out=d)
        else:
            np.multiply(p, ys, out=d)
            np.subtract(d, y, out=d)
        np.multiply(d, _weights(ws, w, ws.scale_n), out=d)
    return value


def sparse_categorical_crossentropy(ws, z, labels, w, grad, unit, loss):
    # lᵢ = lse(z) − z_label = log Σe^t − t_label;  ∂/∂z = p − onehot(label)
    oh = ws.oh
    np.take(ws.eye, labels, axis=0, out=oh, mode="clip")   # labels are checked
    t, p, s = _log_softmax_parts(ws, z)
    ws.yhat = z if loss.from_logits else p
    n = z.shape[0]
    if w is None:
        value = (_total(ws, s) - float(np.vdot(t, oh))) / n
    else:
        np.multiply(oh, w, out=oh)                     # wᵢ·onehot
        value = (float(np.vdot(s, w)) - float(np.vdot(t, oh))) / n
    if grad:
        d = ws.deltas[-1]
        if w is None:
            np.subtract(p, oh, out=d)
        else:
            np.multiply(p, w, out=d)
            np.subtract(d, oh, out=d)
        np.multiply(d, ws.scale_n, out=d)
    return value


HEADS = {"mean_squared_error": mse, "mean_absolute_error": mae, "huber": huber,
         "binary_crossentropy": binary_crossentropy,
         "categorical_crossentropy": categorical_crossentropy,
         "sparse_categorical_crossentropy": sparse_categorical_crossentropy}


# ---------------------------------------------------------------- metrics

def metric_sums(ids, ws, yhat, y, threshold) -> list[float]:
    """Σ over the rows of each metric's per-sample value (metrics.py's table)."""
    out = []
    for mid in ids:
        if mid == _metrics.SPARSE_CATEGORICAL_ACCURACY:
            yhat.argmax(axis=1, out=ws.i1)
            np.equal(ws.i1, y, out=ws.bn)
            out.append(float(np.count_nonzero(ws.bn)))
        elif mid == _metrics.CATEGORICAL_ACCURACY:
            yhat.argmax(axis=1, out=ws.i1)
            y.argmax(axis=1, out=ws.i2)
            np.equal(ws.i1, ws.i2, out=ws.bn)
            out.append(float(np.count_nonzero(ws.bn)))
        elif mid == _metrics.BINARY_ACCURACY:
            np.greater(yhat, threshold, out=ws.bk)
            np.equal(ws.bk, y, out=ws.bk)
            out.append(float(np.count_nonzero(ws.bk)) / yhat.shape[1])
        elif mid == _metrics.MSE:
            np.subtract(yhat, y, out=ws.hm)
            out.append(float(np.vdot(ws.hm, ws.hm)) / yhat.shape[1])
        elif mid == _metrics.MAE:
            np.subtract(yhat, y, out=ws.hm)
            np.abs(ws.hm, out=ws.hm)
            out.append(_total(ws, ws.hm) / yhat.shape[1])
        else:
            raise AssertionError(mid)
    return out
