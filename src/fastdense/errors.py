"""The errors fastdense raises beyond ValueError and TypeError."""
from __future__ import annotations

from typing import Any


class DivergenceError(FloatingPointError):
    """Training met a non-finite loss or gradient and stopped before applying that update:
    the model keeps the weights of the last finite update.

    ``epoch`` and ``batch`` (0-based) say where; ``history`` holds the epochs completed
    before it."""

    def __init__(self, epoch: int, batch: int, history: Any = None) -> None:
        self.epoch = epoch
        self.batch = batch
        self.history = history
        super().__init__(
            f"training diverged: the loss or a gradient is not finite at epoch {epoch + 1}, "
            f"batch {batch + 1}; that update was not applied and the model keeps the "
            f"weights of the last finite update (try a smaller learning rate or clipping)")
