"""Optimizers: hyper-parameters, state arrays, and the exact rule in each docstring.

The arithmetic is one fused kernel per rule in ``fastdense._core.updates``.

Contract with the model (``fastdense.models``), which updates its flat parameter buffer
from inside the compiled training loop:

* ``_config()`` -> ``(rule, h, clipnorm, clipvalue, global_clipnorm, weight_decay)`` with
  ``rule`` an ``updates.RULE_*`` id and ``h`` a tuple of 8 floats (the rule's
  hyper-parameters, laid out as ``_core/updates.pyx`` documents); 0.0 switches an option off;
* ``_learning_rates(t_first, count)`` -> float64 array of the learning rate of updates
  ``t_first .. t_first + count - 1`` (a schedule is evaluated here, in Python);
* ``_model_state(n, dtype)`` -> list of 0–3 state arrays for a flat buffer of n values,
  created on first call and then kept (the model owns one optimizer);
* ``iterations``: the number of updates applied so far; the caller advances it.
"""
from __future__ import annotations

import numpy as np

from . import _validation as v
from ._core import updates as _updates

__all__ = ["Optimizer", "SGD"]


class Optimizer:
    """Base class: learning rate, iteration count, state arrays."""

    rule: int = -1
    n_state: int = 0

    def __init__(self, learning_rate=0.01):
        self.learning_rate = v.positive_float(learning_rate, "learning_rate")
        self.iterations = 0
        self._state = None

    def _config(self):
        return (self.rule, (0.0,) * 8, 0.0, 0.0, 0.0, 0.0)

    def _learning_rates(self, t_first: int, count: int) -> np.ndarray:
        return np.full(count, self.learning_rate, dtype=np.float64)

    def _model_state(self, n: int, dtype) -> list:
        if self._state is None:
            self._state = [np.zeros(n, dtype=dtype) for _ in range(self.n_state)]
        return self._state

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate}


class SGD(Optimizer):
    """Stochastic gradient descent: ``p ← p − lr·g``."""

    rule = _updates.RULES["sgd"]

    def __init__(self, learning_rate=0.01):
        super().__init__(learning_rate)


def get(name: str) -> Optimizer:
    """An optimizer with default hyper-parameters from its name ("sgd", …)."""
    table = {cls.__name__.lower(): cls for cls in Optimizer.__subclasses__()}
    key = name.lower()
    if key not in table:
        raise ValueError(f"unknown optimizer {name!r}: expected one of {sorted(table)}")
    return table[key]()
