"""Callbacks: what ``fit`` reports and what a user can hook into it, with Keras's names.

``fit(callbacks=[...])`` calls, in list order: ``set_model(model)`` and ``set_params(...)``
once, ``on_train_begin(None)``, then for each epoch ``on_epoch_begin(epoch, None)`` and
``on_epoch_end(epoch, logs)``, and ``on_train_end(logs of the last epoch)``. ``logs`` is
one dict per epoch, ``{"loss": …}`` plus ``"val_loss"`` with validation data, shared by
the callbacks in order (as in Keras, a callback may add to it for those after it and for
the History, which records it last). A callback stops training by setting
``model.stop_training = True``; fit finishes the epoch's callbacks and stops.

The compiled loop enters Python once per epoch, never per batch, so there are no batch
hooks: a callback that defines ``on_train_batch_end`` or the like gets a warning.

Shared by the compiled model and the NumPy reference (History, progress_line).
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _validation as v

__all__ = ["Callback", "History", "EarlyStopping", "TerminateOnNaN", "progress_line"]

_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin",
                "on_train_batch_end")


class Callback:
    """Base class: every hook does nothing; override the ones you need.

    ``self.model`` is the model being trained and ``self.params`` a dict
    ``{"epochs", "steps", "verbose"}`` (steps: batches per epoch), both set by ``fit``."""

    def __init__(self) -> None:
        self.model: Any = None        # the model being trained (set_model)
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        pass

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        pass


class History(Callback):
    """The record of one ``fit``: ``history`` maps a metric name ("loss", "val_loss") to
    one value per epoch, and ``epoch`` lists the epoch indices (0-based), as in Keras."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def record(self, epoch: int, logs: dict[str, float]) -> None:
        """Append one epoch's metrics."""
        self.epoch.append(epoch)
        for name, value in logs.items():
            self.history.setdefault(name, []).append(float(value))

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.record(epoch, logs or {})

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, metrics={list(self.history)})"


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving (Keras 3's rule).

    At each epoch end from ``start_from_epoch`` on, with ``c`` the monitored value:
    ``wait += 1``; an improvement is ``c + min_delta < best`` in "min" mode
    (``c − min_delta > best`` in "max"); on one, ``best = c`` and — if there is no
    ``baseline`` or ``c`` improves on it too — ``wait = 0``. Otherwise, once
    ``wait ≥ patience`` (and the epoch is not the first), training stops:
    ``stopped_epoch = epoch`` and ``model.stop_training = True``.

    ``mode="auto"`` minimises "loss" and "val_loss" (fastdense's only metrics; any other
    monitor needs mode "min" or "max"). A monitor missing from the logs (e.g. "val_loss"
    without validation data) warns and skips the epoch. With ``restore_best_weights``,
    the weights of the best epoch (those of the first monitored epoch if none improved)
    are put back at the end of training, whether or not it stopped early; the optimizer's
    state is not rewound.

    Differences from Keras, on purpose: an unknown ``mode`` raises ValueError (Keras
    warns and falls back to "auto"), and ``best`` is reset when training begins, so one
    instance can serve several fits. ``stopped_epoch`` is 0 when training was not stopped.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric name (str), got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            if monitor.removeprefix("val_") != "loss":
                raise ValueError(
                    f"EarlyStopping cannot tell whether {monitor!r} should be minimised or "
                    "maximised: pass mode='min' or mode='max'")
            mode = "min"
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(_real(min_delta, "min_delta"))
        self.patience = v.count(patience, "patience", 0)
        self.verbose = v.count(int(verbose) if isinstance(verbose, bool) else verbose,
                               "verbose", 0)
        self.baseline = None if baseline is None else _real(baseline, "baseline")
        self.restore_best_weights = v.flag(restore_best_weights, "restore_best_weights")
        self.start_from_epoch = v.count(start_from_epoch, "start_from_epoch", 0)
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights = None
        self.best_epoch = 0

    def _improves(self, current: float, reference: float) -> bool:
        if self.mode == "min":
            return current + self.min_delta < reference
        return current - self.min_delta > reference

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"EarlyStopping conditioned on metric {self.monitor!r}, which is not "
                f"available; available metrics are: {', '.join(logs) or 'none'}",
                stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        current = float(current)
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", flush=True)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print("Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.", flush=True)
            self.model.set_weights(self.best_weights)


class TerminateOnNaN(Callback):
    """Stop training when an epoch's ``loss`` is NaN or Inf (Keras's callback, per epoch).

    fastdense's ``fit`` already checks every batch: a non-finite loss or gradient raises
    ``fd.DivergenceError`` before that update is applied, keeping the last finite
    weights. So with fastdense's own losses this callback finds nothing to do; it is here
    so Keras code runs unchanged, and it acts on what it is given: a non-finite
    ``logs["loss"]`` (e.g. one set by a callback earlier in the list) stops training
    after the epoch (``model.stop_training = True``), or raises RuntimeError with
    ``raise_error=True``. Keras checks after each batch; fastdense has no batch hooks,
    and its per-batch guard is the DivergenceError above.
    """

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = v.flag(raise_error, "raise_error")

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss at epoch {epoch + 1}: {loss}; "
                               "terminating training")
        print(f"Epoch {epoch + 1}: invalid loss, terminating training", flush=True)
        self.model.stop_training = True


def checked(callbacks: Sequence[Callback] | None) -> list[Callback]:
    """The ``callbacks`` argument of fit as a list of Callback instances (TypeError
    otherwise); warns for batch hooks, which fit never calls."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError("callbacks must be a list of fastdense Callback instances, got "
                        f"{type(callbacks).__name__}")
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks[{i}] must be a fastdense Callback instance, got "
                            f"{cb!r} ({type(cb).__name__})")
        hooks = [name for name in _BATCH_HOOKS if hasattr(cb, name)]
        if hooks:
            warnings.warn(
                f"{type(cb).__name__}.{hooks[0]} is never called: fastdense calls "
                "callbacks once per epoch (on_epoch_begin / on_epoch_end)", stacklevel=3)
    return list(callbacks)


def progress_line(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    """``Epoch 3/100 - loss: 0.1234 - val_loss: 0.2345`` (``epoch`` 0-based, shown 1-based)."""
    parts = [f"Epoch {epoch + 1}/{epochs}"]
    parts += [f"{name}: {_format_value(value)}" for name, value in logs.items()]
    return " - ".join(parts)


def _real(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def _format_value(value: float) -> str:
    # Keras prints 4 decimals; tiny values keep their digits in exponent form
    value = float(value)
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4e}"
