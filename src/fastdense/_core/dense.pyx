# cython: language_level=3
"""Dense layer kernels, forward and backward side by side, row-major (samples × features).

Each operation is a `noexcept nogil` core over raw buffers (float32 and float64 from one
source), behind a thin `*_checked` wrapper that validates shapes for Python callers.
"""
from cython cimport floating

from fastdense._core.blas cimport gemm_rm

# Below this many multiply-adds a product runs in the hand-written loops: a BLAS call costs
# a fixed overhead (argument checks, dispatch, packing) that small layers cannot amortise.
cdef enum:
    BLAS_MIN_WORK = 32768


cdef bint use_blas(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    return m * n * k >= BLAS_MIN_WORK


cdef void dense_forward(const floating* x, const floating* w, const floating* b,
                        floating* y, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                        bint relu) noexcept nogil:
    """Y = act(X·W + b), act = ReLU or identity; X n×n_in, W n_in×n_out, Y n×n_out."""
    cdef Py_ssize_t i, j, k
    cdef floating xk, v
    cdef floating* row
    cdef const floating* wrow
    if use_blas(n, n_out, n_in):
        gemm_rm(False, False, <int>n, <int>n_out, <int>n_in, 1, x, <int>n_in,
                w, <int>n_out, 0, y, <int>n_out)
        for i in range(n):
            row = y + i * n_out
            for j in range(n_out):
                v = row[j] + b[j]
                # `v < 0` (not `v > 0`) keeps NaN as NaN, so divergence stays visible
                row[j] = 0 if (relu and v < 0) else v
        return
    for i in range(n):
        row = y + i * n_out
        for j in range(n_out):
            row[j] = b[j]
        for k in range(n_in):
            xk = x[i * n_in + k]
            wrow = w + k * n_out
            for j in range(n_out):
                row[j] += xk * wrow[j]
        if relu:
            for j in range(n_out):
                if row[j] < 0:
                    row[j] = 0


cdef void relu_backward(floating* d, const floating* a, Py_ssize_t size) noexcept nogil:
    """D ← D ⊙ [A > 0], where A is the ReLU's output (A > 0 exactly where its input was)."""
    cdef Py_ssize_t i
    for i in range(size):
        if a[i] <= 0:
            d[i] = 0


cdef void dense_backward(const floating* x, const floating* w, const floating* dy,
                         floating* dw, floating* db, floating* dx,
                         Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                         bint relu_x) noexcept nogil:
    """dW = Xᵀ·dY, db = Σ_rows dY, dX = (dY·Wᵀ) ⊙ [X > 0] (mask when relu_x; no dX if NULL).

    dY is the gradient at this layer's pre-activation output; X its input, which is the
    previous layer's ReLU output when relu_x, so [X > 0] is that ReLU's derivative.
    """
    cdef Py_ssize_t i, j, k
    cdef floating xk, s
    cdef const floating* dyrow
    cdef floating* dwrow
    cdef floating* dxrow
    cdef const floating* wrow

    for j in range(n_out):
        db[j] = 0
    for i in range(n):
        dyrow = dy + i * n_out
        for j in range(n_out):
            db[j] += dyrow[j]

    if use_blas(n_in, n_out, n):
        gemm_rm(True, False, <int>n_in, <int>n_out, <int>n, 1, x, <int>n_in,
                dy, <int>n_out, 0, dw, <int>n_out)
    else:
        for k in range(n_in * n_out):
            dw[k] = 0
        for i in range(n):
            dyrow = dy + i * n_out
            for k in range(n_in):
                xk = x[i * n_in + k]
                dwrow = dw + k * n_out
                for j in range(n_out):
                    dwrow[j] += xk * dyrow[j]

    if dx == NULL:
        return
    if use_blas(n, n_in, n_out):
        gemm_rm(False, True, <int>n, <int>n_in, <int>n_out, 1, dy, <int>n_out,
                w, <int>n_out, 0, dx, <int>n_in)
    else:
        for i in range(n):
            dyrow = dy + i * n_out
            dxrow = dx + i * n_in
            for k in range(n_in):
                wrow = w + k * n_out
                s = 0
                for j in range(n_out):
                    s += dyrow[j] * wrow[j]
                dxrow[k] = s
    if relu_x:
        relu_backward(dx, x, n * n_in)


# ---------------------------------------------------------------- checked wrappers

def _check_dense(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out, w_shape, b_len):
    if w_shape[0] != n_in or w_shape[1] != n_out:
        raise ValueError(f"W has shape {tuple(w_shape)}, expected ({n_in}, {n_out})")
    if b_len != n_out:
        raise ValueError(f"b has length {b_len}, expected {n_out}")


def dense_forward_checked(const floating[:, ::1] x not None, const floating[:, ::1] w not None,
                          const floating[::1] b not None, floating[:, ::1] y not None,
                          bint relu=False):
    """Y = act(X·W + b) into the preallocated Y (C-contiguous, one dtype for all)."""
    cdef Py_ssize_t n = x.shape[0], n_in = x.shape[1], n_out = w.shape[1]
    _check_dense(n, n_in, n_out, (w.shape[0], w.shape[1]), b.shape[0])
    if y.shape[0] != n or y.shape[1] != n_out:
        raise ValueError(f"Y has shape {(y.shape[0], y.shape[1])}, expected {(n, n_out)}")
    if n == 0:
        return
    with nogil:
        dense_forward(&x[0, 0], &w[0, 0], &b[0], &y[0, 0], n, n_in, n_out, relu)


def dense_backward_checked(const floating[:, ::1] x not None, const floating[:, ::1] w not None,
                           const floating[:, ::1] dy not None, floating[:, ::1] dw not None,
                           floating[::1] db not None, floating[:, ::1] dx=None,
                           bint relu_x=False):
    """dW = Xᵀ·dY, db = Σ dY, dX = (dY·Wᵀ) ⊙ [X > 0] (mask when relu_x; dX skipped if None)."""
    cdef Py_ssize_t n = x.shape[0], n_in = x.shape[1], n_out = w.shape[1]
    _check_dense(n, n_in, n_out, (w.shape[0], w.shape[1]), db.shape[0])
    if dy.shape[0] != n or dy.shape[1] != n_out:
        raise ValueError(f"dY has shape {(dy.shape[0], dy.shape[1])}, expected {(n, n_out)}")
    if dw.shape[0] != n_in or dw.shape[1] != n_out:
        raise ValueError(f"dW has shape {(dw.shape[0], dw.shape[1])}, expected {(n_in, n_out)}")
    if dx is not None and (dx.shape[0] != n or dx.shape[1] != n_in):
        raise ValueError(f"dX has shape {(dx.shape[0], dx.shape[1])}, expected {(n, n_in)}")
    if n == 0:
        raise ValueError("the batch is empty")
    cdef floating* dxp = NULL if dx is None else &dx[0, 0]
    with nogil:
        dense_backward(&x[0, 0], &w[0, 0], &dy[0, 0], &dw[0, 0], &db[0], dxp,
                       n, n_in, n_out, relu_x)
