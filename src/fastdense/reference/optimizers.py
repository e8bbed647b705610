"""Optimizer rules in plain NumPy, written independently of the kernels.

Each class takes the constructor arguments of its ``fastdense.optimizers`` namesake
(schedules included: any callable of the update count, called with the number of updates
applied before this one) and updates in place through ``apply(grads, params)``, a list of
arrays (or one array), state kept per list position. The user's gradients are never
modified.

Written as well as NumPy allows, since this is the yardstick of the benchmarks: the
parameters' dtype is kept throughout, every step is an in-place ufunc into preallocated
scratch (``out=``), no temporaries are created per update. A rule's dozen passes run block
by block (BLOCK values at a time, views of contiguous arrays), so each block's arrays stay
in cache from one pass to the next and main memory sees about one pass per update instead
of one per ufunc; the values are those of whole-array passes, bit for bit. Options run in
the order clipnorm (per array), clipvalue, global_clipnorm, weight decay
``p ← p − p·wd·lr``, then the rule. Norms are computed in float64.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["SGD", "RMSprop", "Adam", "AdamW", "Adagrad"]

# Values per block of the rule passes: a block's parameters, gradient, state and two
# scratch arrays (at most seven arrays of 256 KB in float32) stay in the L2/L3 caches,
# and the Python cost per block (a dozen ufunc calls, ~10 µs) is small next to its work.
BLOCK = 65536


class _Optimizer:
    """Learning rate, common options, iteration count, per-array state and scratch."""

    state_names: tuple = ()

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.name = name
        self.iterations = 0
        self._state = None       # per position: dict name -> array
        self._scratch = None     # per position: two arrays like the parameters
        self._clipped = None     # per position: the clipped gradient, when clipping

    def _initial(self, name: str) -> float:
        return 0.0

    def apply(self, grads, params):
        if isinstance(params, np.ndarray):
            grads, params = [grads], [params]
        if self._state is None:
            self._state = [{k: np.full(p.shape, self._initial(k), dtype=p.dtype)
                            for k in self.state_names} for p in params]
            self._scratch = [(np.empty(min(p.size, BLOCK), p.dtype),
                              np.empty(min(p.size, BLOCK), p.dtype)) for p in params]
        lr = self.learning_rate
        lr = float(lr(self.iterations)) if callable(lr) else float(lr)
        t = self.iterations + 1
        grads = self._clip(list(grads), params)
        for i, (g, p) in enumerate(zip(grads, params)):
            for g_b, p_b, state_b, s, u in self._blocks(g, p, self._state[i],
                                                         *self._scratch[i]):
                if self.weight_decay:
                    np.multiply(p_b, self.weight_decay, out=s)
                    s *= lr
                    p_b -= s
                self._update(g_b, p_b, state_b, s, u, lr, t)
        self.iterations += 1

    @staticmethod
    def _blocks(g, p, state, s, u):
        """(g, p, state, scratch, scratch) block by block: flat views of BLOCK values
        when p and its state are contiguous, else the whole arrays in one block."""
        if p.size <= BLOCK or not p.flags.c_contiguous:
            if s.size != p.size:                     # a large non-contiguous p: rare
                s, u = np.empty_like(p), np.empty_like(p)
            yield g, p, state, s.reshape(p.shape), u.reshape(p.shape)
            return
        g, p = g.reshape(-1), p.reshape(-1)          # p: a view (contiguous)
        state = {k: a.reshape(-1) for k, a in state.items()}
        for lo in range(0, p.size, BLOCK):
            hi = min(lo + BLOCK, p.size)
            yield (g[lo:hi], p[lo:hi], {k: a[lo:hi] for k, a in state.items()},
                   s[:hi - lo], u[:hi - lo])

    def _clip(self, grads, params):
        if not (self.clipnorm or self.clipvalue or self.global_clipnorm):
            return grads
        if self._clipped is None:
            self._clipped = [np.empty_like(p) for p in params]
        out = list(grads)
        if self.clipnorm:
            for i, g in enumerate(out):
                norm = math.sqrt(np.sum(np.square(g, dtype=np.float64)))
                if norm > self.clipnorm:
                    out[i] = np.multiply(g, self.clipnorm / norm, out=self._clipped[i])
        if self.clipvalue:
            for i, g in enumerate(out):
                out[i] = np.clip(g, -self.clipvalue, self.clipvalue, out=self._clipped[i])
        if self.global_clipnorm:
            norm = math.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in out))
            if norm > self.global_clipnorm:
                for i, g in enumerate(out):
                    out[i] = np.multiply(g, self.global_clipnorm / norm,
                                         out=self._clipped[i])
        return out

    def _update(self, g, p, state, s, u, lr, t):  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(_Optimizer):
    """with momentum: ``m ← μ·m − lr·g``, ``p ← p + μ·m − lr·g`` (Nesterov) or
    ``p ← p + m``;  without: ``p ← p − lr·g``"""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **options):
        super().__init__(learning_rate, **options)
        self.momentum = momentum
        self.nesterov = nesterov
        self.state_names = ("m",) if momentum else ()

    def _update(self, g, p, state, s, u, lr, t):
        np.multiply(g, lr, out=s)                   # s = lr·g
        if not self.momentum:
            p -= s
            return
        m = state["m"]
        m *= self.momentum
        m -= s
        if self.nesterov:
            np.multiply(m, self.momentum, out=u)
            u -= s
            p += u
        else:
            p += m


class RMSprop(_Optimizer):
    """``v ← ρ·v + (1−ρ)·g²``; centered: ``a ← ρ·a + (1−ρ)·g``, ``d = v − a² + ε``, else
    ``d = v + ε``; ``u = lr·g/√d``; momentum: ``m ← μ·m + u``, ``p ← p − m``; else
    ``p ← p − u``"""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **options):
        super().__init__(learning_rate, **options)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered
        self.state_names = ("v",) + (("a",) if centered else ()) + (("m",) if momentum else ())

    def _update(self, g, p, state, s, u, lr, t):
        v = state["v"]
        v *= self.rho
        np.square(g, out=s)
        s *= 1 - self.rho
        v += s
        if self.centered:
            a = state["a"]
            a *= self.rho
            np.multiply(g, 1 - self.rho, out=s)
            a += s
            np.square(a, out=s)
            np.subtract(v, s, out=s)
            s += self.epsilon
        else:
            np.add(v, self.epsilon, out=s)
        np.sqrt(s, out=s)
        np.multiply(g, lr, out=u)
        u /= s                                      # u = lr·g/√d
        if self.momentum:
            m = state["m"]
            m *= self.momentum
            m += u
            p -= m
        else:
            p -= u


class Adam(_Optimizer):
    """``α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ)``; ``m ← m + (g − m)(1−β₁)``; ``v ← v + (g² − v)(1−β₂)``;
    amsgrad: ``v̂ ← max(v̂, v)``, used for v; ``p ← p − α·m/(√v + ε)``"""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **options):
        super().__init__(learning_rate, **options)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad
        self.state_names = ("m", "v", "vhat") if amsgrad else ("m", "v")

    def _update(self, g, p, state, s, u, lr, t):
        alpha = lr * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        m, v = state["m"], state["v"]
        np.subtract(g, m, out=s)
        s *= 1 - self.beta_1
        m += s
        np.square(g, out=s)
        s -= v
        s *= 1 - self.beta_2
        v += s
        if self.amsgrad:
            np.maximum(state["vhat"], v, out=state["vhat"])
            v = state["vhat"]
        np.sqrt(v, out=s)
        s += self.epsilon
        np.multiply(m, alpha, out=u)
        u /= s
        p -= u


class AdamW(Adam):
    """Adam with decoupled weight decay ``p ← p − p·wd·lr`` (default wd 0.004)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **options):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay=weight_decay, **options)


class Adagrad(_Optimizer):
    """``acc ← acc + g²`` (acc starts at initial_accumulator_value);
    ``p ← p − lr·g/√(acc + ε)``"""

    state_names = ("acc",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **options):
        super().__init__(learning_rate, **options)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def _initial(self, name):
        return self.initial_accumulator_value

    def _update(self, g, p, state, s, u, lr, t):
        acc = state["acc"]
        np.square(g, out=s)
        acc += s
        np.add(acc, self.epsilon, out=s)
        np.sqrt(s, out=s)
        np.multiply(g, lr, out=u)
        u /= s
        p -= u
