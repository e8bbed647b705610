# cython: language_level=3
"""Fused in-place optimizer updates: one pass over p, g and the state per update."""
from cython cimport floating
import numpy as np

# The rule ids of updates.pxd, for Python callers (cdef enums are not visible there).
RULES = {
    "sgd": RULE_SGD, "sgd_momentum": RULE_SGD_MOMENTUM, "sgd_nesterov": RULE_SGD_NESTEROV,
    "rmsprop": RULE_RMSPROP, "adam": RULE_ADAM, "adagrad": RULE_ADAGRAD,
}


cdef void sgd_update(floating* p, const floating* g, floating lr,
                     Py_ssize_t n) noexcept nogil:
    """p ← p − lr·g"""
    cdef Py_ssize_t i
    for i in range(n):
        p[i] -= lr * g[i]


cdef int optimizer_step(const StepConfig* cfg, floating* p, const floating* g,
                        floating** state, Py_ssize_t n,
                        const Py_ssize_t* seg, Py_ssize_t nseg) noexcept nogil:
    """Apply one update of rule cfg.rule to p in place; returns 0, or -1 for an unknown rule."""
    if cfg.rule == RULE_SGD:
        sgd_update(p, g, <floating>cfg.lr, n)
        return 0
    return -1


def sgd_update_checked(floating[::1] p not None, const floating[::1] g not None,
                       double lr):
    """p ← p − lr·g, in place, for 1-D contiguous arrays of one float dtype."""
    if p.shape[0] != g.shape[0]:
        raise ValueError(f"p and g differ in size: {p.shape[0]} != {g.shape[0]}")
    with nogil:
        sgd_update(&p[0] if p.shape[0] else NULL, &g[0] if g.shape[0] else NULL,
                   <floating>lr, p.shape[0])
