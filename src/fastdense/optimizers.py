"""Optimizers: hyper-parameters, state arrays, and the exact rule in each docstring.

The arithmetic is one fused kernel per rule in ``fastdense._core.updates`` (float32 and
float64, all arithmetic in the parameters' dtype). Every optimizer takes Keras's common
options, applied in this order before its rule (each off when None):

1. ``clipnorm``: each variable's gradient (each W and each b separately) is scaled by
   ``min(1, clipnorm/‖g_var‖)``;
2. ``clipvalue``: each element is clamped to ``[−clipvalue, clipvalue]``;
3. ``global_clipnorm``: all gradients together are scaled by ``min(1, gcn/‖g_all‖)``, the
   norm taken after steps 1–2;
4. ``weight_decay`` (decoupled): ``p ← p − p·wd·lr`` for every variable.

(Keras applies only one of the three clippings when several are set; fastdense applies
all that are set, in the order above. Norms are computed in double.)

``learning_rate`` is a float or a schedule: a callable of the update count, such as
``schedules.ExponentialDecay``. As in Keras, update ``t`` (1-based) uses
``learning_rate(t − 1)``: the schedule sees the number of updates applied before it.

Contract with the model (``fastdense.models``), which updates its flat parameter buffer
from inside the compiled training loop:

* ``_config()`` -> ``(rule, h, clipnorm, clipvalue, global_clipnorm, weight_decay)`` with
  ``rule`` an ``updates.RULES`` id and ``h`` a tuple of 8 floats (the rule's
  hyper-parameters, laid out as ``_core/updates.pxd`` documents); 0.0 switches an option
  off. Rule ids added to the scaffold's: ``rmsprop_centered`` and ``adam_amsgrad``;
* ``_learning_rates(t_first, count)`` -> float64 array of the learning rate of updates
  ``t_first .. t_first + count - 1`` (a schedule is evaluated here, in Python, at
  ``t − 1``; a schedule value that is negative or not finite raises ValueError);
* ``_model_state(n, dtype)`` -> list of 0–3 state arrays for a flat buffer of n values
  (laid out per rule as ``updates.pxd`` documents; Adagrad's accumulator starts at
  ``initial_accumulator_value``), created on first call and then kept; a later call with
  another n or dtype raises ValueError (the model owns one optimizer);
* ``iterations``: the number of updates applied so far; the caller advances it.
* Buffers of at least ``updates.PARALLEL_MIN_VALUES`` values are split over every core
  by fastdense's own worker pool (``_core/fd_pool.h``; bitwise the serial result);
  ``fd.set_num_threads(1)`` or ``updates.set_num_threads(1)`` keeps updates on the
  calling thread.

Standalone use: ``opt.apply(grads, params)`` (see ``Optimizer.apply``). State is plain
arrays: ``opt.variables`` lists them live; ``get_state()`` / ``set_state()`` save and
restore them with ``iterations``; ``get_config()`` / ``from_config()`` round-trip the
hyper-parameters.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _validation as v
from . import schedules
from ._core import updates as _updates

# `fastdense.optimizers.schedules` importable by name, as in Keras
sys.modules[__name__ + ".schedules"] = schedules

__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "schedules", "get"]

_RULES = _updates.RULES


class Optimizer:
    """Base class: learning rate, common options, iteration count, state arrays."""

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.01, *,
                 weight_decay: float | None = None, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None,
                 name: str | None = None) -> None:
        self.learning_rate = _learning_rate(learning_rate)
        self.weight_decay = _option(weight_decay, "weight_decay", allow_zero=True)
        self.clipnorm = _option(clipnorm, "clipnorm")
        self.clipvalue = _option(clipvalue, "clipvalue")
        self.global_clipnorm = _option(global_clipnorm, "global_clipnorm")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r}")
        self.name = name or type(self).__name__
        self.iterations = 0
        self._state: list[np.ndarray] | None = None      # the model's flat-buffer state
        # apply(): per list position, (shape, dtype, [state arrays])
        self._slots: list[tuple[tuple[int, ...], np.dtype[Any], list[np.ndarray]]] = []

    # ------------------------------------------------------------ the rule (subclasses)
    def _rule(self) -> int:
        return _RULES["sgd"]

    def _hyper(self) -> tuple[float, ...]:
        return ()

    def _hyper_config(self) -> dict[str, Any]:
        return {}

    def _initial_value(self, k: int) -> float:
        """The starting value of state buffer k (0 unless the rule says otherwise)."""
        return 0.0

    # ------------------------------------------------------------ the model's contract
    def _config(self) -> tuple[int, tuple[float, ...], float, float, float, float]:
        h = tuple(float(x) for x in self._hyper())
        h = h + (0.0,) * (8 - len(h))
        return (self._rule(), h, self.clipnorm or 0.0, self.clipvalue or 0.0,
                self.global_clipnorm or 0.0, self.weight_decay or 0.0)

    @property
    def n_state(self) -> int:
        """The number of state arrays per variable (or per flat buffer)."""
        return _updates.state_count_checked(self._rule(), self._hyper())

    def _learning_rate_at(self, t: int) -> float:
        """The learning rate of update t (1-based): `_learning_rates(t, 1)`, without an
        array for a constant rate."""
        lr = self.learning_rate
        if not callable(lr):
            return lr
        return float(self._learning_rates(t, 1)[0])

    def _learning_rates(self, t_first: int, count: int) -> np.ndarray:
        lr = self.learning_rate
        if not callable(lr):
            return np.full(count, lr, dtype=np.float64)
        steps = np.arange(t_first - 1, t_first - 1 + count, dtype=np.int64)
        if isinstance(lr, schedules.LearningRateSchedule):
            rates = np.asarray(lr(steps), dtype=np.float64).reshape(count)
        else:
            rates = np.array([float(lr(int(s))) for s in steps], dtype=np.float64)
        bad = ~np.isfinite(rates) | (rates < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"the learning-rate schedule gave {rates[i]!r} at step {int(steps[i])}: "
                "a learning rate must be finite and ≥ 0")
        return rates

    def _new_state(self, shape: tuple[int, ...], dtype: npt.DTypeLike) -> list[np.ndarray]:
        return [np.full(shape, self._initial_value(k), dtype=dtype)
                for k in range(self.n_state)]

    def _model_state(self, n: int, dtype: npt.DTypeLike) -> list[np.ndarray]:
        dtype = np.dtype(dtype)
        if self._state is None:
            self._state = self._new_state((n,), dtype)
        elif any(s.shape != (n,) or s.dtype != dtype for s in self._state):
            have = self._state[0]
            raise ValueError(
                f"this optimizer already holds state for {have.shape[0]} {have.dtype} "
                f"parameters, not {n} {dtype}: use a new optimizer for another model")
        return self._state

    # ------------------------------------------------------------ standalone use
    def apply(self, grads: np.ndarray | Sequence[np.ndarray],
              params: np.ndarray | Sequence[np.ndarray]) -> None:
        """Update ``params`` in place from ``grads``, one update (``iterations`` += 1).

        ``params`` is a float32/float64 array or a list of them; ``grads`` matches it
        (same count, shapes and dtypes; only read). State is kept per list position:
        a later call must pass the same shapes and dtypes. Non-contiguous parameters are
        updated correctly through a contiguous copy that is written back (slower).
        Everything is checked before any array changes: a bad call raises TypeError or
        ValueError and modifies nothing. Gradients are not checked for NaN/Inf (they
        propagate, as in Keras).
        """
        if isinstance(params, np.ndarray):
            params, grads = [params], [grads]  # type: ignore[list-item]
        elif isinstance(params, (list, tuple)):
            params = list(params)
            if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
                raise TypeError("params is a list: grads must be a list of the same length")
            grads = list(grads)
        else:
            raise TypeError(
                f"params must be a float array or a list of them, got {type(params).__name__}")
        if len(grads) != len(params):
            raise ValueError(f"{len(grads)} gradients for {len(params)} parameter arrays")
        if self._slots and len(params) != len(self._slots):
            raise ValueError(
                f"this optimizer updates {len(self._slots)} arrays (its first call); "
                f"got {len(params)}")
        grads = [self._check_pair(i, g, p) for i, (g, p) in enumerate(zip(grads, params))]
        _refuse_overlap(params, grads)
        lr = float(self._learning_rates(self.iterations + 1, 1)[0])
        t = self.iterations + 1

        for i, p in enumerate(params[len(self._slots):], start=len(self._slots)):
            self._slots.append((p.shape, p.dtype, self._new_state(p.shape, p.dtype)))
        flat_g = [g.reshape(-1) for g in grads]
        cv = self.clipvalue or 0.0
        pre = [1.0] * len(params)
        if self.clipnorm:
            for i, g in enumerate(flat_g):
                norm = math.sqrt(_updates.clipped_sumsq_checked(g))
                pre[i] = self.clipnorm / norm if norm > self.clipnorm else 1.0
        post = 1.0
        if self.global_clipnorm:
            total = sum(_updates.clipped_sumsq_checked(g, pre[i], cv)
                        for i, g in enumerate(flat_g))
            norm = math.sqrt(total)
            post = self.global_clipnorm / norm if norm > self.global_clipnorm else 1.0
        rule, h, wd = self._rule(), self._hyper(), self.weight_decay or 0.0
        for i, (p, g) in enumerate(zip(params, flat_g)):
            state = [s.reshape(-1) for s in self._slots[i][2]]
            if p.flags.c_contiguous:
                _updates.rule_update_checked(p.reshape(-1), g, state, rule, h, lr, t,
                                             cv, wd, pre[i], post)
            else:
                work = np.ascontiguousarray(p).reshape(-1)
                _updates.rule_update_checked(work, g, state, rule, h, lr, t,
                                             cv, wd, pre[i], post)
                p[...] = work.reshape(p.shape)
        self.iterations += 1

    def _check_pair(self, i: int, g: npt.ArrayLike, p: np.ndarray) -> np.ndarray:
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{i}] must be a NumPy array, got {type(p).__name__}")
        if p.dtype not in v.FLOAT_DTYPES:
            raise TypeError(f"params[{i}] has dtype {p.dtype}: expected float32 or float64")
        if not p.flags.writeable:
            raise ValueError(f"params[{i}] is read-only")
        g = np.asarray(g)
        if g.dtype != p.dtype:
            raise TypeError(
                f"grads[{i}] has dtype {g.dtype}, its parameters {p.dtype}: they must match")
        if g.shape != p.shape:
            raise ValueError(f"grads[{i}] has shape {g.shape}, its parameters {p.shape}")
        if i < len(self._slots):
            shape, dtype, _ = self._slots[i]
            if p.shape != shape or p.dtype != dtype:
                raise ValueError(
                    f"params[{i}] is {p.dtype} {p.shape}, but this optimizer's state for "
                    f"position {i} is {dtype} {shape} (from its first call)")
        return np.ascontiguousarray(g)

    # ------------------------------------------------------------ state and config
    @property
    def variables(self) -> list[np.ndarray]:
        """The state arrays, live: the model's flat-buffer state, then apply()'s per array."""
        out = list(self._state or [])
        for _, _, arrays in self._slots:
            out.extend(arrays)
        return out

    def get_state(self) -> dict[str, Any]:
        """A copy of everything an update depends on besides the hyper-parameters."""
        return {"iterations": int(self.iterations),
                "model": None if self._state is None else [s.copy() for s in self._state],
                "slots": [[s.copy() for s in arrays] for _, _, arrays in self._slots]}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what get_state() returned (copied in); the next update resumes there."""
        try:
            iterations = v.count(state["iterations"], "iterations", 0)
            model, slots = state["model"], state["slots"]
        except (KeyError, TypeError) as exc:
            raise ValueError("state must be a dict from get_state()") from exc
        k = self.n_state

        def arrays(lst, what):
            lst = [np.asarray(a) for a in lst]
            if len(lst) != k:
                raise ValueError(f"{what}: {len(lst)} arrays, this optimizer keeps {k}")
            first = lst[0] if lst else None
            for a in lst:
                if a.dtype not in v.FLOAT_DTYPES or a.shape != first.shape \
                        or a.dtype != first.dtype:
                    raise ValueError(f"{what}: arrays of one float dtype and shape expected")
            return [np.array(a, order="C", copy=True) for a in lst]

        new_model = None if model is None else arrays(model, "model state")
        if new_model is not None and new_model and new_model[0].ndim != 1:
            raise ValueError("model state: 1-D arrays expected")
        new_slots = []
        for i, lst in enumerate(slots):
            got = arrays(lst, f"slots[{i}]")
            if got:
                new_slots.append((got[0].shape, got[0].dtype, got))
        # a stateless rule (plain SGD) keeps no per-array record: any arrays may follow
        self.iterations = iterations
        self._state = new_model
        self._slots = new_slots

    def get_config(self) -> dict[str, Any]:
        lr = self.learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            lr = schedules.serialize(lr)
        return {"name": self.name, "learning_rate": lr, **self._hyper_config(),
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={val!r}" for k, val in self.get_config().items()
                         if k != "name" and val is not None)
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    With momentum μ > 0:  ``m ← μ·m − lr·g``, then ``p ← p + μ·m − lr·g`` (Nesterov)
    or ``p ← p + m``;  without:  ``p ← p − lr·g``.  State: ``[m]`` (none without
    momentum). ``momentum`` in [0, 1].
    """

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, **options: Any) -> None:
        super().__init__(learning_rate, **options)
        self.momentum = v.unit_interval(momentum, "momentum", include_one=True)
        self.nesterov = v.flag(nesterov, "nesterov")

    def _rule(self):
        if self.momentum == 0:
            return _RULES["sgd"]
        return _RULES["sgd_nesterov" if self.nesterov else "sgd_momentum"]

    def _hyper(self):
        return (self.momentum,) if self.momentum else ()

    def _hyper_config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum.

    ``v ← ρ·v + (1−ρ)·g²``;  centered: ``a ← ρ·a + (1−ρ)·g``, ``d = v − a² + ε``;
    else ``d = v + ε``;  ``u = lr·g/√d``;  with momentum μ > 0: ``m ← μ·m + u``,
    ``p ← p − m``;  else ``p ← p − u``.  State: ``[v]``, ``[v, m]``, ``[v, a]`` or
    ``[v, a, m]``. ``rho`` in [0, 1), ``momentum`` in [0, 1], ``epsilon`` > 0.
    """

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.001, rho: float = 0.9,
                 momentum: float = 0.0, epsilon: float = 1e-7, centered: bool = False,
                 **options: Any) -> None:
        super().__init__(learning_rate, **options)
        self.rho = v.unit_interval(rho, "rho")
        self.momentum = v.unit_interval(momentum, "momentum", include_one=True)
        self.epsilon = v.positive_float(epsilon, "epsilon")
        self.centered = v.flag(centered, "centered")

    def _rule(self):
        return _RULES["rmsprop_centered" if self.centered else "rmsprop"]

    def _hyper(self):
        return (self.rho, self.momentum, self.epsilon)

    def _hyper_config(self):
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}


class Adam(Optimizer):
    """Adam, optionally AMSGrad.

    ``α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ)``;  ``m ← m + (g − m)(1−β₁)``;  ``v ← v + (g² − v)(1−β₂)``;
    amsgrad: ``v̂ ← max(v̂, v)`` and ``v̂`` is used for ``v`` below;
    ``p ← p − α·m/(√v + ε)``.  State: ``[m, v]`` or ``[m, v, v̂]``.
    β₁, β₂ in [0, 1), ``epsilon`` > 0.
    """

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 **options: Any) -> None:
        super().__init__(learning_rate, **options)
        self.beta_1 = v.unit_interval(beta_1, "beta_1")
        self.beta_2 = v.unit_interval(beta_2, "beta_2")
        self.epsilon = v.positive_float(epsilon, "epsilon")
        self.amsgrad = v.flag(amsgrad, "amsgrad")

    def _rule(self):
        return _RULES["adam_amsgrad" if self.amsgrad else "adam"]

    def _hyper(self):
        return (self.beta_1, self.beta_2, self.epsilon)

    def _hyper_config(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.004).

    ``p ← p − p·wd·lr``, then Adam:  ``α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ)``;
    ``m ← m + (g − m)(1−β₁)``;  ``v ← v + (g² − v)(1−β₂)``;  amsgrad: ``v̂ ← max(v̂, v)``
    used for ``v``;  ``p ← p − α·m/(√v + ε)``.
    """

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.001,
                 weight_decay: float = 0.004, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **options: Any) -> None:
        if weight_decay is None:
            raise TypeError("AdamW needs a weight_decay (a float ≥ 0), got None")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad,
                         weight_decay=weight_decay, **options)


class Adagrad(Optimizer):
    """Adagrad.

    The accumulator starts at ``initial_accumulator_value``;  ``acc ← acc + g²``;
    ``p ← p − lr·g/√(acc + ε)``.  State: ``[acc]``.
    ``initial_accumulator_value`` ≥ 0, ``epsilon`` > 0.
    """

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.001,
                 initial_accumulator_value: float = 0.1, epsilon: float = 1e-7,
                 **options: Any) -> None:
        super().__init__(learning_rate, **options)
        self.initial_accumulator_value = v.positive_float(
            initial_accumulator_value, "initial_accumulator_value", allow_zero=True)
        self.epsilon = v.positive_float(epsilon, "epsilon")

    def _rule(self):
        return _RULES["adagrad"]

    def _hyper(self):
        return (self.epsilon, self.initial_accumulator_value)

    def _initial_value(self, k):
        return self.initial_accumulator_value

    def _hyper_config(self):
        return {"initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


_BY_NAME: dict[str, type[Optimizer]] = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam,
                                        "adamw": AdamW, "adagrad": Adagrad}


def get(name: str) -> Optimizer:
    """An optimizer with default hyper-parameters from its name ("sgd", "adam", …)."""
    if not isinstance(name, str):
        raise TypeError(f"an optimizer name must be a string, got {name!r}")
    key = name.lower()
    if key not in _BY_NAME:
        raise ValueError(f"unknown optimizer {name!r}: expected one of {sorted(_BY_NAME)}")
    return _BY_NAME[key]()


def _learning_rate(value):
    if callable(value):
        return value
    return v.positive_float(value, "learning_rate")


def _option(value, name, *, allow_zero=False):
    """A common option: None (off) or a finite float > 0 (≥ 0 with allow_zero)."""
    if value is None:
        return None
    return v.positive_float(value, name, allow_zero=allow_zero)


def _byte_bounds(a: np.ndarray):
    lo = hi = a.__array_interface__["data"][0]
    for n, s in zip(a.shape, a.strides):
        if s < 0:
            lo += (n - 1) * s
        else:
            hi += (n - 1) * s
    return lo, hi + a.itemsize


def _refuse_overlap(params, grads):
    """Raise if a parameter array shares memory with another parameter or any gradient
    (the update would change what is still to be read)."""
    spans = [(*_byte_bounds(a), True, f"params[{i}]") for i, a in enumerate(params) if a.size]
    spans += [(*_byte_bounds(a), False, f"grads[{i}]") for i, a in enumerate(grads) if a.size]
    spans.sort(key=lambda s: s[0])
    end_any = end_param = -1
    name_any = name_param = ""
    for lo, hi, is_param, name in spans:
        if lo < end_param or (is_param and lo < end_any):
            other = name_param if lo < end_param else name_any
            raise ValueError(f"{name} and {other} overlap in memory: the parameters must be "
                             "separate from each other and from the gradients")
        if hi > end_any:
            end_any, name_any = hi, name
        if is_param and hi > end_param:
            end_param, name_param = hi, name
