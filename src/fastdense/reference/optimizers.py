"""Optimizer rules in plain NumPy, written independently of the kernels.

``apply(grads, params)`` updates a list of arrays (or one array) in place.
"""
from __future__ import annotations

import numpy as np


class SGD:
    """``p ← p − lr·g``"""

    def __init__(self, learning_rate=0.01):
        self.learning_rate = float(learning_rate)
        self.iterations = 0

    def apply(self, grads, params):
        if isinstance(params, np.ndarray):
            grads, params = [grads], [params]
        for g, p in zip(grads, params):
            # one temporary-free pass pair: scale into a scratch buffer, subtract in place
            p -= p.dtype.type(self.learning_rate) * g
        self.iterations += 1
