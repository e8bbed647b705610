# cython: language_level=3
"""Loss kernels: value and gradient in one pass."""
from cython cimport floating


cdef double mse_forward_backward(const floating* yhat, const floating* y, floating* grad,
                                 Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    """L = Σ(ŷ − y)² / (n·k);  ∂L/∂ŷ = 2(ŷ − y)/(n·k). The sum is kept in double, in eight
    lane-wise partial sums joined by a fixed tree (no serial chain of additions)."""
    cdef Py_ssize_t i = 0, u, size = n * k
    cdef floating scale = <floating>(2.0 / <double>size)
    cdef floating d
    cdef double acc[8]
    cdef double tail = 0
    for u in range(8):
        acc[u] = 0
    while i + 8 <= size:
        for u in range(8):
            d = yhat[i + u] - y[i + u]
            acc[u] += <double>d * d
            grad[i + u] = scale * d
        i += 8
    while i < size:
        d = yhat[i] - y[i]
        tail += <double>d * d
        grad[i] = scale * d
        i += 1
    return (((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
            + tail) / <double>size


cdef double mse_value(const floating* yhat, const floating* y, Py_ssize_t size) noexcept nogil:
    """Σ(ŷ − y)², in double (the caller divides)."""
    cdef Py_ssize_t i
    cdef floating d
    cdef double s = 0
    for i in range(size):
        d = yhat[i] - y[i]
        s += <double>d * d
    return s


def mse_checked(const floating[:, ::1] yhat not None, const floating[:, ::1] y not None,
                floating[:, ::1] grad=None):
    """MSE of ŷ against y; with `grad`, also writes ∂L/∂ŷ = 2(ŷ − y)/(n·k) into it."""
    cdef Py_ssize_t n = yhat.shape[0], k = yhat.shape[1]
    if y.shape[0] != n or y.shape[1] != k:
        raise ValueError(f"y has shape {(y.shape[0], y.shape[1])}, ŷ has {(n, k)}")
    if n * k == 0:
        raise ValueError("MSE of an empty array is undefined")
    if grad is not None and (grad.shape[0] != n or grad.shape[1] != k):
        raise ValueError(f"grad has shape {(grad.shape[0], grad.shape[1])}, expected {(n, k)}")
    cdef double loss
    with nogil:
        if grad is None:
            loss = mse_value(&yhat[0, 0], &y[0, 0], n * k) / <double>(n * k)
        else:
            loss = mse_forward_backward(&yhat[0, 0], &y[0, 0], &grad[0, 0], n, k)
    return loss
