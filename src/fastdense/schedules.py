"""Learning-rate schedules: plain callables of the update count, Keras 3's formulas.

Reached as ``fastdense.optimizers.schedules``. As in Keras, an optimizer calls its
schedule with the number of updates applied *before* the current one: the first update
uses ``schedule(0)``, update ``t`` (1-based) uses ``schedule(t − 1)``.

A schedule accepts an integer or an integer array (one learning rate per step, computed
elementwise by the same float64 NumPy expression either way, so both agree exactly).
"""
from __future__ import annotations

import math
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from . import _validation as v

__all__ = ["LearningRateSchedule", "ExponentialDecay", "CosineDecay", "serialize",
           "deserialize"]


class LearningRateSchedule:
    """Base class: ``schedule(step) -> learning rate``, with get_config / from_config."""

    @overload
    def __call__(self, step: int | np.integer[Any]) -> float: ...
    @overload
    def __call__(self, step: npt.NDArray[Any]) -> np.ndarray: ...

    def __call__(self, step: int | np.integer[Any] | npt.NDArray[Any]) -> float | np.ndarray:
        steps = np.asarray(step, dtype=np.float64)
        out = self._rates(steps)
        return float(out) if out.ndim == 0 else out

    def _rates(self, steps: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={val!r}" for k, val in self.get_config().items())
        return f"{type(self).__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """``lr(step) = initial_learning_rate · decay_rate ^ (step / decay_steps)``, the exponent
    floored when ``staircase``."""

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False) -> None:
        self.initial_learning_rate = v.positive_float(initial_learning_rate,
                                                      "initial_learning_rate")
        self.decay_steps = v.positive_float(decay_steps, "decay_steps")
        self.decay_rate = v.positive_float(decay_rate, "decay_rate")
        self.staircase = v.flag(staircase, "staircase")

    def _rates(self, steps):
        p = steps / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return self.initial_learning_rate * np.power(self.decay_rate, p)

    def get_config(self) -> dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class CosineDecay(LearningRateSchedule):
    """Cosine decay with optional linear warm-up, as Keras 3.

    Without ``warmup_target``: ``s = min(step, decay_steps)``,
    ``lr = initial_learning_rate · ((1 − alpha)·½(1 + cos(π·s/decay_steps)) + alpha)``.
    With it: ``s = min(step, warmup_steps + decay_steps)``; while ``s < warmup_steps``,
    ``lr = initial_learning_rate + (warmup_target − initial_learning_rate)·s/warmup_steps``;
    afterwards the decay above from ``warmup_target`` over ``s − warmup_steps``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, alpha: float = 0.0,
                 warmup_target: float | None = None, warmup_steps: float = 0) -> None:
        self.initial_learning_rate = v.positive_float(
            initial_learning_rate, "initial_learning_rate", allow_zero=True)
        self.decay_steps = v.positive_float(decay_steps, "decay_steps")
        self.alpha = v.positive_float(alpha, "alpha", allow_zero=True)
        if self.alpha > 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        self.warmup_target = None if warmup_target is None else v.positive_float(
            warmup_target, "warmup_target")
        self.warmup_steps = v.positive_float(warmup_steps, "warmup_steps", allow_zero=True)

    def _decay(self, s, start_lr):
        cosine = 0.5 * (1.0 + np.cos(math.pi * (s / self.decay_steps)))
        return start_lr * ((1.0 - self.alpha) * cosine + self.alpha)

    def _rates(self, steps):
        if self.warmup_target is None:
            return self._decay(np.minimum(steps, self.decay_steps), self.initial_learning_rate)
        s = np.minimum(steps, self.decay_steps + self.warmup_steps)
        with np.errstate(divide="ignore", invalid="ignore"):
            warm = self.initial_learning_rate + (
                self.warmup_target - self.initial_learning_rate) * (s / self.warmup_steps)
        return np.where(s < self.warmup_steps, warm,
                        self._decay(s - self.warmup_steps, self.warmup_target))

    def get_config(self) -> dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


_SCHEDULES: dict[str, type[LearningRateSchedule]] = {"ExponentialDecay": ExponentialDecay,
                                                     "CosineDecay": CosineDecay}


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """``{"class_name": ..., "config": {...}}`` of a fastdense schedule."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"not a fastdense schedule: {schedule!r}")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict[str, Any]) -> LearningRateSchedule:
    """The schedule ``serialize`` described."""
    try:
        cls = _SCHEDULES[config["class_name"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a serialized fastdense schedule: {config!r}") from exc
    return cls.from_config(config["config"])
