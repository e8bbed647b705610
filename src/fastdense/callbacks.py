"""What ``fit`` reports: the per-epoch History and the Keras-style progress line.

Shared by the compiled model and the NumPy reference, so both report alike.
"""
from __future__ import annotations

__all__ = ["History", "progress_line"]


class History:
    """The record of one ``fit``: ``history`` maps a metric name ("loss", "val_loss") to
    one value per epoch, and ``epoch`` lists the epoch indices (0-based), as in Keras."""

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def record(self, epoch: int, logs: dict) -> None:
        """Append one epoch's metrics."""
        self.epoch.append(epoch)
        for name, value in logs.items():
            self.history.setdefault(name, []).append(float(value))

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, metrics={list(self.history)})"


def progress_line(epoch: int, epochs: int, logs: dict) -> str:
    """``Epoch 3/100 - loss: 0.1234 - val_loss: 0.2345`` (``epoch`` 0-based, shown 1-based)."""
    parts = [f"Epoch {epoch + 1}/{epochs}"]
    parts += [f"{name}: {_format_value(value)}" for name, value in logs.items()]
    return " - ".join(parts)


def _format_value(value: float) -> str:
    # Keras prints 4 decimals; tiny values keep their digits in exponent form
    value = float(value)
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4e}"
