# cython: language_level=3
"""Dense layer kernels, forward and backward side by side.

Activations are feature-major: a block of n samples with f features is stored f × n
(feature j of sample i at [j*n + i]), so the hand-written loops of small layers run along
the batch and vectorise; large layers go to BLAS (`blas.pxd`), which takes either layout
for free through its transposition flags. Weights W are n_in × n_out, row-major.

Each operation is a `noexcept nogil` core over raw buffers (float32 and float64 from one
source), behind a thin `*_checked` wrapper that validates shapes for Python callers.
The small-layer loops live in fm_template.h, compiled for baseline x86-64, AVX2+FMA and
AVX-512 and chosen at run time (`set_isa`).
"""
from cython cimport floating

from fastdense._core.blas cimport asum, gemm_rm

import numpy as np

cdef extern from "fm_kernels.h" nogil:
    int FD_ISA_BASE, FD_ISA_AVX2, FD_ISA_AVX512
    int fd_set_isa(int isa)
    int fd_isa_best()
    int fd_isa
    int FD_ACT_LINEAR, FD_ACT_RELU, FD_ACT_LEAKY_RELU, FD_ACT_ELU, FD_ACT_TANH
    int FD_ACT_SIGMOID, FD_ACT_SOFTPLUS, FD_ACT_GELU, FD_ACT_GELU_TANH, FD_ACT_SOFTMAX
    int FD_LOSS_MSE, FD_LOSS_MAE, FD_LOSS_HUBER, FD_LOSS_BCE, FD_LOSS_CCE, FD_LOSS_SPARSE_CCE
    int FD_METRIC_MSE, FD_METRIC_MAE, FD_METRIC_BINARY_ACCURACY
    int FD_METRIC_CATEGORICAL_ACCURACY, FD_METRIC_SPARSE_CATEGORICAL_ACCURACY
    void fm_forward_f(const float* a, const float* w, const float* b, float* z,
                      Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out, int act, float alpha)
    void fm_forward_d(const double* a, const double* w, const double* b, double* z,
                      Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out, int act, double alpha)
    void fm_backward_f(const float* a, const float* w, const float* d, float* dw, float* db,
                       float* da, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out, int act_a,
                       float alpha_a)
    void fm_backward_d(const double* a, const double* w, const double* d, double* dw,
                       double* db, double* da, Py_ssize_t n, Py_ssize_t n_in,
                       Py_ssize_t n_out, int act_a, double alpha_a)
    void fm_backward1_f(const float* a, const float* w, const float* d, float* db, float* da,
                        Py_ssize_t n_in, Py_ssize_t n_out, int act_a, float alpha_a)
    void fm_backward1_d(const double* a, const double* w, const double* d, double* db,
                        double* da, Py_ssize_t n_in, Py_ssize_t n_out, int act_a,
                        double alpha_a)
    void fm_outer1_f(const float* a, const float* d, float* dw, Py_ssize_t n_in,
                     Py_ssize_t n_out)
    void fm_outer1_d(const double* a, const double* d, double* dw, Py_ssize_t n_in,
                     Py_ssize_t n_out)
    void sgd_outer1_f(float* w, float* b, const float* a, const float* d, float lr,
                      Py_ssize_t n_in, Py_ssize_t n_out)
    void sgd_outer1_d(double* w, double* b, const double* a, const double* d, double lr,
                      Py_ssize_t n_in, Py_ssize_t n_out)
    int FD_HAVE_MK, FD_MK_MAX_K
    void mk_forward_f(const float* a, const float* w, const float* b, float* z,
                      Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out, int act, float alpha)
    void mk_forward_d(const double* a, const double* w, const double* b, double* z,
                      Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out, int act, double alpha)
    void mk_backward_f(const float* a, const float* w, const float* d, float* dw, float* db,
                       float* da, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out, int act_a,
                       float alpha_a, int a_rows)
    void mk_backward_d(const double* a, const double* w, const double* d, double* dw,
                       double* db, double* da, Py_ssize_t n, Py_ssize_t n_in,
                       Py_ssize_t n_out, int act_a, double alpha_a, int a_rows)
    void mk_sgd_f(const float* a, const float* d, float* w, float lr, Py_ssize_t n,
                  Py_ssize_t n_in, Py_ssize_t n_out, int a_rows)
    void mk_sgd_d(const double* a, const double* d, double* w, double lr, Py_ssize_t n,
                  Py_ssize_t n_in, Py_ssize_t n_out, int a_rows)
    void fm_bias_act_f(float* z, const float* b, Py_ssize_t n, Py_ssize_t n_out, int act,
                       float alpha)
    void fm_bias_act_d(double* z, const double* b, Py_ssize_t n, Py_ssize_t n_out, int act,
                       double alpha)
    void act_apply_f(float* z, Py_ssize_t size, int act, float alpha)
    void act_apply_d(double* z, Py_ssize_t size, int act, double alpha)
    void act_grad_mul_f(float* d, const float* y, Py_ssize_t size, int act, float alpha)
    void act_grad_mul_d(double* d, const double* y, Py_ssize_t size, int act, double alpha)
    void gelu_grad_mul_f(float* d, const float* z, Py_ssize_t size, int approximate)
    void gelu_grad_mul_d(double* d, const double* z, Py_ssize_t size, int approximate)
    void softmax_fm_f(float* z, Py_ssize_t k, Py_ssize_t n, float* scratch)
    void softmax_fm_d(double* z, Py_ssize_t k, Py_ssize_t n, double* scratch)
    void head_exp_f(float* x, Py_ssize_t m)
    void head_exp_d(double* x, Py_ssize_t m)
    void head_f(int loss, int act, float alpha, float delta, const float* z, float* a,
                const float* y, const float* sw, float* dz, float* scratch, Py_ssize_t n,
                Py_ssize_t k, float scale, double* out)
    void head_d(int loss, int act, double alpha, double delta, const double* z, double* a,
                const double* y, const double* sw, double* dz, double* scratch, Py_ssize_t n,
                Py_ssize_t k, double scale, double* out)
    void metrics_f(const int* ids, int count, const float* a, const float* y, Py_ssize_t n,
                   Py_ssize_t k, float threshold, double* sums)
    void metrics_d(const int* ids, int count, const double* a, const double* y, Py_ssize_t n,
                   Py_ssize_t k, double threshold, double* sums)
    void regularize_f(const float* w, float* g, Py_ssize_t m, float l1, float l2,
                      double* penalty)
    void regularize_d(const double* w, double* g, Py_ssize_t m, double l1, double l2,
                      double* penalty)
    void fm_row_sums_f(const float* d, float* out, Py_ssize_t rows, Py_ssize_t n)
    void fm_row_sums_d(const double* d, double* out, Py_ssize_t rows, Py_ssize_t n)
    void relu_mask_f(float* d, const float* a, Py_ssize_t size)
    void relu_mask_d(double* d, const double* a, Py_ssize_t size)
    void gather_t_f(float* dst, const float* src, const Py_ssize_t* rows, Py_ssize_t count,
                    Py_ssize_t width, Py_ssize_t src_rows)
    void gather_t_d(double* dst, const double* src, const Py_ssize_t* rows, Py_ssize_t count,
                    Py_ssize_t width, Py_ssize_t src_rows)
    void all_finite_f(const float* x, Py_ssize_t size, int* ok)
    void all_finite_d(const double* x, Py_ssize_t size, int* ok)
    void abs_sum_f(const float* x, Py_ssize_t size, double* out)
    void abs_sum_d(const double* x, Py_ssize_t size, double* out)

from fastdense._core._isa import ISA_NAMES, name_of as _isa_name, select as _select_isa
from fastdense import activations as _act, losses as _losses, metrics as _metrics

if (FD_ISA_BASE, FD_ISA_AVX2, FD_ISA_AVX512) != tuple(ISA_NAMES.values()):
    raise ImportError("fd_isa.h's instruction set ids differ from fastdense._core._isa")
if (FD_ACT_LINEAR, FD_ACT_RELU, FD_ACT_LEAKY_RELU, FD_ACT_ELU, FD_ACT_TANH, FD_ACT_SIGMOID,
        FD_ACT_SOFTPLUS, FD_ACT_GELU, FD_ACT_GELU_TANH, FD_ACT_SOFTMAX) != tuple(range(10)) \
        or (_act.LINEAR, _act.SOFTMAX, _act.GELU_TANH) != (0, 9, 8):
    raise ImportError("fm_kernels.h's activation ids differ from fastdense.activations")
if (FD_LOSS_MSE, FD_LOSS_MAE, FD_LOSS_HUBER, FD_LOSS_BCE, FD_LOSS_CCE, FD_LOSS_SPARSE_CCE) \
        != (_losses.MSE, _losses.MAE, _losses.HUBER, _losses.BCE, _losses.CCE,
            _losses.SPARSE_CCE) \
        or (FD_METRIC_MSE, FD_METRIC_MAE, FD_METRIC_BINARY_ACCURACY,
            FD_METRIC_CATEGORICAL_ACCURACY, FD_METRIC_SPARSE_CATEGORICAL_ACCURACY) \
        != (_metrics.MSE, _metrics.MAE, _metrics.BINARY_ACCURACY,
            _metrics.CATEGORICAL_ACCURACY, _metrics.SPARSE_CATEGORICAL_ACCURACY):
    raise ImportError("fm_kernels.h's loss or metric ids differ from fastdense.losses/metrics")
fd_set_isa(-1)


def _set_isa_id(int isa):
    return fd_set_isa(isa)


def set_isa(name=None):
    """Select the instruction set of the hand-written loops ("base", "avx2", "avx512"; None
    for the best this CPU has); a request above what the CPU supports is lowered to it.
    Returns the name in force. For tests and benchmarks; not thread-safe."""
    return _select_isa(name, _set_isa_id)


def get_isa():
    """The instruction set of the hand-written loops now in force."""
    return _isa_name(fd_isa)


# When a layer's product goes to BLAS rather than the hand-written loops (measured with
# bench/kernel_sweep.py and whole fits, float32): the loops have no call overhead and need
# no packing, and win for narrow layers (fewer than BLAS_MIN_PARAMS weights) up to some
# 65 thousand multiply-adds per call, and for a single sample at any width; BLAS's
# blocked, packed products win beyond. (Fits, µs per update, loops vs BLAS: 10-10-10-1 at
# batch 32 0.81 vs 0.92 and at batch 256 4.28 vs 4.55; 10-16-16-1 at batch 128 3.65 vs
# 3.44 and at batch 1024 39.7 vs 32.4; 10-24-24-1 at batch 32 1.76 vs 1.68.)
cdef enum:
    BLAS_MIN_PARAMS = 256
    BLAS_MIN_WORK = 1 << 16
    MODE_AUTO = 0
    MODE_ALWAYS = 1
    MODE_NEVER = 2
    MODE_MICRO = 3
    PATH_HAND = 0
    PATH_MICRO = 1
    PATH_BLAS = 2

# Layers that the rule above sends to BLAS run fm_gemm.h's register-blocked products
# instead (bias and activation, or the activation's derivative, in their epilogue; db
# beside dW) while they beat OpenBLAS's calls on these shapes (bench/fm_profile.c):
# with AVX-512, both widths at most MK_MAX_K (their tails live on the stack) and at most
# MK_MAX_WORK multiply-adds per product, and batches of at least MK_MIN_BATCH samples:
# a tile is two vectors of samples wide (32 float32), so a smaller batch is mostly
# padding, and OpenBLAS won there (fits of 10-w-w-1, µs per update, micro vs BLAS:
# w=128 batch 8 67.7 vs 46.8, w=256 batch 8 239 vs 109, w=512 batch 8 1,197 vs 579,
# w=256 batch 16 202 vs 162, w=512 batch 16 772 vs 608). The most work is 3 M multiply-adds
# a product (it was 4 M): past it, OpenBLAS's two threads beat one thread's tiles, more so
# since plain SGD updates W inside the product (train.pyx's plan_deferred): 10-256-256-1 at
# batch 64 (a 4.2 M product) took 1.18–1.38× as long on these kernels as on BLAS in 8 of
# 11 runs of 7–9 alternating rounds (2026-12-06, 2-core EPYC), e.g. 277 against 224 µs;
# in the other three, busy minutes, BLAS's two threads were the slower (up to 1.47×).
# 10-128-128-1 at batch 256, the other 4.2 M product of the sweep, was even (median 0.97
# over 8 runs).
cdef Py_ssize_t MK_MAX_WORK = 3 << 20
cdef enum:
    MK_MIN_BATCH = 32

cdef int blas_mode = MODE_AUTO
_BLAS_MODES = {"auto": MODE_AUTO, "always": MODE_ALWAYS, "never": MODE_NEVER,
               "micro": MODE_MICRO}


def set_blas_mode(mode):
    """"auto" (the measured rule), "always" or "never" send layer products to BLAS;
    "micro" sends every product the register-blocked kernels can take (both widths at most
    512) to them, the rest to BLAS. For benchmarks and tests. Returns the previous mode.
    Not thread-safe: set it before use."""
    global blas_mode
    if mode not in _BLAS_MODES:
        raise ValueError(f"mode must be one of {list(_BLAS_MODES)}, got {mode!r}")
    previous = {v: k for k, v in _BLAS_MODES.items()}[blas_mode]
    blas_mode = _BLAS_MODES[mode]
    return previous


def set_micro_max_work(Py_ssize_t work):
    """Set the most multiply-adds per product that "auto" sends to the register-blocked
    kernels (0: none, the rule before them); returns the previous value. For benchmarks
    and tests; not thread-safe."""
    global MK_MAX_WORK
    previous = MK_MAX_WORK
    MK_MAX_WORK = max(0, work)
    return previous


def layer_path(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out):
    """Which kernels the products of an n-sample batch with an n_in × n_out layer run now:
    "hand" (fm_template.h's loops), "micro" (fm_gemm.h's) or "blas"."""
    return ("hand", "micro", "blas")[_path(n, n_in, n_out)]


cdef inline bint mk_fits(Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil:
    return FD_HAVE_MK != 0 and n_in <= FD_MK_MAX_K and n_out <= FD_MK_MAX_K


cdef int _path(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil:
    if blas_mode == MODE_NEVER:
        return PATH_HAND
    if blas_mode == MODE_ALWAYS:
        return PATH_BLAS
    if blas_mode == MODE_MICRO:
        return PATH_MICRO if n > 1 and mk_fits(n_in, n_out) else PATH_BLAS
    if n == 1 or (n_in * n_out < BLAS_MIN_PARAMS and n * n_in * n_out < BLAS_MIN_WORK):
        return PATH_HAND
    if (fd_isa == FD_ISA_AVX512 and mk_fits(n_in, n_out) and MK_MAX_WORK > 0
            and n >= MK_MIN_BATCH and n * n_in * n_out <= MK_MAX_WORK):
        return PATH_MICRO
    return PATH_BLAS


cdef bint use_blas(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil:
    """Whether the product of an n-sample batch with an n_in × n_out layer goes to BLAS."""
    return _path(n, n_in, n_out) == PATH_BLAS


cdef bint sgd_from_deltas(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil:
    """Whether dense_backward_nodw and sgd_weights serve an n-sample batch with an n_in ×
    n_out layer: its products go to BLAS or to the register-blocked kernels, whose weight
    gradient product can update W in place instead of storing the gradient."""
    cdef int path = _path(n, n_in, n_out)
    return n > 1 and (path == PATH_BLAS or path == PATH_MICRO)


cdef void dense_forward(const floating* a, const floating* w, const floating* b,
                        floating* z, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                        int act, double alpha, bint a_rows) noexcept nogil:
    """Z = act(Wᵀ·A + b): A n_in × n, Z n_out × n (feature-major); act an elementwise
    activation id (fastdense.activations; softmax is applied by the caller, not here) with
    its parameter alpha, fused into the loops' epilogue or the BLAS path's bias pass.

    a_rows: A is stored sample-major instead (n × n_in, the rows of X as given), which the
    BLAS path reads through its transposition flag; the caller sets it only where
    use_blas(n, n_in, n_out) holds or n == 1 (where both layouts are the same memory).
    """
    cdef int path = _path(n, n_in, n_out)
    if path == PATH_MICRO and not a_rows:
        if floating is float:
            mk_forward_f(a, w, b, z, n, n_in, n_out, act, <float>alpha)
        else:
            mk_forward_d(a, w, b, z, n, n_in, n_out, act, alpha)
    elif path != PATH_HAND or (a_rows and n > 1):
        if a_rows:
            gemm_rm(True, True, <int>n_out, <int>n, <int>n_in, 1, w, <int>n_out,
                    a, <int>n_in, 0, z, <int>n)
        else:
            gemm_rm(True, False, <int>n_out, <int>n, <int>n_in, 1, w, <int>n_out,
                    a, <int>n, 0, z, <int>n)
        if floating is float:
            fm_bias_act_f(z, b, n, n_out, act, <float>alpha)
        else:
            fm_bias_act_d(z, b, n, n_out, act, alpha)
    elif floating is float:
        fm_forward_f(a, w, b, z, n, n_in, n_out, act, <float>alpha)
    else:
        fm_forward_d(a, w, b, z, n, n_in, n_out, act, alpha)


cdef void gather_rows_t(floating* dst, const floating* src, const Py_ssize_t* rows,
                        Py_ssize_t count, Py_ssize_t width, Py_ssize_t src_rows) noexcept nogil:
    """dst[j·count + r] = src[rows[r]·width + j] for r < count, j < width: rows of the
    row-major src (src_rows × width; rows NULL: its first count rows, in order) gathered
    into the columns of the feature-major dst (width × count). Narrow rows go through
    vector loads and an in-register transpose."""
    if floating is float:
        gather_t_f(dst, src, rows, count, width, src_rows)
    else:
        gather_t_d(dst, src, rows, count, width, src_rows)


cdef void relu_backward(floating* d, const floating* a, Py_ssize_t size) noexcept nogil:
    """D ← D ⊙ [A > 0], where A is the ReLU's output (A > 0 exactly where its input was)."""
    if floating is float:
        relu_mask_f(d, a, size)
    else:
        relu_mask_d(d, a, size)


cdef void dense_backward(const floating* a, const floating* w, const floating* d,
                         floating* dw, floating* db, floating* da,
                         Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                         int act_a, double alpha_a, bint a_rows) noexcept nogil:
    """dW = A·Dᵀ, db = D·1, dA = (W·D) ⊙ f'(A) (no dA when NULL).

    D (n_out × n) is the gradient at this layer's pre-activation output; A (n_in × n) its
    input, the previous layer's output y = f(z), whose activation act_a (parameter
    alpha_a) has a derivative computable from y (ReLU: [A > 0]; linear: none; GELU and
    softmax: pass linear and apply it after). a_rows as in dense_forward (then no dA: A
    is the network's input).
    """
    cdef int path = _path(n, n_in, n_out)
    if path == PATH_MICRO:
        if floating is float:
            mk_backward_f(a, w, d, dw, db, da, n, n_in, n_out, act_a, <float>alpha_a, a_rows)
        else:
            mk_backward_d(a, w, d, dw, db, da, n, n_in, n_out, act_a, alpha_a, a_rows)
        return
    if path == PATH_HAND and not (a_rows and n > 1):
        if floating is float:
            fm_backward_f(a, w, d, dw, db, da, n, n_in, n_out, act_a, <float>alpha_a)
        else:
            fm_backward_d(a, w, d, dw, db, da, n, n_in, n_out, act_a, alpha_a)
        return
    if floating is float:
        fm_row_sums_f(d, db, n_out, n)
    else:
        fm_row_sums_d(d, db, n_out, n)
    if a_rows:
        gemm_rm(True, True, <int>n_in, <int>n_out, <int>n, 1, a, <int>n_in, d, <int>n,
                0, dw, <int>n_out)
        return
    gemm_rm(False, True, <int>n_in, <int>n_out, <int>n, 1, a, <int>n, d, <int>n,
            0, dw, <int>n_out)
    if da == NULL:
        return
    gemm_rm(False, False, <int>n_in, <int>n, <int>n_out, 1, w, <int>n_out, d, <int>n,
            0, da, <int>n)
    if act_a != FD_ACT_LINEAR:
        act_backward(da, a, n * n_in, act_a, alpha_a)


cdef void dense_backward_nodw(const floating* a, const floating* w, const floating* d,
                              floating* db, floating* da, Py_ssize_t n, Py_ssize_t n_in,
                              Py_ssize_t n_out, int act_a, double alpha_a) noexcept nogil:
    """dense_backward without the weight gradient, where sgd_from_deltas holds: db = D·1
    and dA = (W·D) ⊙ f'(A) (none when da is NULL), dA as dense_backward makes it (db by
    row sums, which on the register-blocked path may round otherwise than its transposed
    sums); sgd_weights or weight_product_blas make the weights' part later."""
    if floating is float:
        fm_row_sums_f(d, db, n_out, n)
    else:
        fm_row_sums_d(d, db, n_out, n)
    if da == NULL:
        return
    if _path(n, n_in, n_out) == PATH_MICRO:
        if floating is float:
            mk_backward_f(a, w, d, NULL, NULL, da, n, n_in, n_out, act_a, <float>alpha_a, 0)
        else:
            mk_backward_d(a, w, d, NULL, NULL, da, n, n_in, n_out, act_a, alpha_a, 0)
        return
    gemm_rm(False, False, <int>n_in, <int>n, <int>n_out, 1, w, <int>n_out, d, <int>n,
            0, da, <int>n)
    if act_a != FD_ACT_LINEAR:
        act_backward(da, a, n * n_in, act_a, alpha_a)


cdef void sgd_weights(floating* w, const floating* a, const floating* d, double lr,
                      Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out, bint a_rows) noexcept nogil:
    """Plain SGD on W from its layer's input A and output gradient D, where sgd_from_deltas
    holds, never storing the gradient: W ← W − lr·A·Dᵀ, by BLAS (alpha −lr, beta 1) or by
    the register-blocked product's epilogue (W − lr·Σ a chunk of samples at a time)."""
    if _path(n, n_in, n_out) == PATH_MICRO:
        if floating is float:
            mk_sgd_f(a, d, w, <float>lr, n, n_in, n_out, a_rows)
        else:
            mk_sgd_d(a, d, w, lr, n, n_in, n_out, a_rows)
    else:
        weight_product_blas(a, d, w, -lr, 1.0, n, n_in, n_out, a_rows)


cdef void weight_product_blas(const floating* a, const floating* d, floating* c,
                              double alpha, double beta, Py_ssize_t n, Py_ssize_t n_in,
                              Py_ssize_t n_out, bint a_rows) noexcept nogil:
    """C ← alpha·A·Dᵀ + beta·C (C n_in × n_out) through BLAS, A and D as dense_backward
    takes them: the weight gradient (alpha 1, beta 0: dense_backward's product) or plain
    SGD applied straight to W (alpha −lr, beta 1), never storing the gradient."""
    cdef floating al = <floating>alpha, be = <floating>beta
    if a_rows:
        gemm_rm(True, True, <int>n_in, <int>n_out, <int>n, al, a, <int>n_in, d, <int>n,
                be, c, <int>n_out)
    else:
        gemm_rm(False, True, <int>n_in, <int>n_out, <int>n, al, a, <int>n, d, <int>n,
                be, c, <int>n_out)


cdef void dense_backward1(const floating* a, const floating* w, const floating* d,
                          floating* db, floating* da, Py_ssize_t n_in, Py_ssize_t n_out,
                          int act_a, double alpha_a) noexcept nogil:
    """dense_backward of one sample without its weight gradient (outer1 gives it): db = d
    and dA = (W·d) ⊙ f'(A) (none when da is NULL), as fastdense's own batch-1 loops make
    them (dense_backward's at n = 1 unless BLAS is forced)."""
    if floating is float:
        fm_backward1_f(a, w, d, db, da, n_in, n_out, act_a, <float>alpha_a)
    else:
        fm_backward1_d(a, w, d, db, da, n_in, n_out, act_a, alpha_a)


cdef void outer1(const floating* a, const floating* d, floating* dw, Py_ssize_t n_in,
                 Py_ssize_t n_out) noexcept nogil:
    """dW = a ⊗ d: one sample's weight gradient (n_in × n_out)."""
    if floating is float:
        fm_outer1_f(a, d, dw, n_in, n_out)
    else:
        fm_outer1_d(a, d, dw, n_in, n_out)


cdef void sgd_outer1(floating* w, floating* b, const floating* a, const floating* d,
                     double lr, Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil:
    """W ← W − lr·(a ⊗ d), b ← b − lr·d: plain SGD on one sample's gradient without storing
    it; the values of outer1 then the optimizer's SGD step (a −0.0 weight in a row where
    a[k] = 0 excepted: it stays −0.0 instead of becoming +0.0)."""
    if floating is float:
        sgd_outer1_f(w, b, a, d, <float>lr, n_in, n_out)
    else:
        sgd_outer1_d(w, b, a, d, lr, n_in, n_out)


cdef void act_backward(floating* d, const floating* y, Py_ssize_t size, int act,
                       double alpha) noexcept nogil:
    """D ← D ⊙ f'(z) for an activation whose derivative follows from its output y = f(z)."""
    if floating is float:
        act_grad_mul_f(d, y, size, act, <float>alpha)
    else:
        act_grad_mul_d(d, y, size, act, alpha)


cdef void act_forward(floating* z, Py_ssize_t size, int act, double alpha) noexcept nogil:
    """Z ← f(Z) in place for an elementwise activation (softmax: see softmax_columns)."""
    if floating is float:
        act_apply_f(z, size, act, <float>alpha)
    else:
        act_apply_d(z, size, act, alpha)


cdef void gelu_backward(floating* d, const floating* z, Py_ssize_t size,
                        bint approximate) noexcept nogil:
    """D ← D ⊙ gelu'(Z), from the pre-activation Z."""
    if floating is float:
        gelu_grad_mul_f(d, z, size, approximate)
    else:
        gelu_grad_mul_d(d, z, size, approximate)


cdef void softmax_columns(floating* z, Py_ssize_t k, Py_ssize_t n,
                          floating* scratch) noexcept nogil:
    """Softmax over each sample (column) of the feature-major k × n block, in place."""
    if floating is float:
        softmax_fm_f(z, k, n, scratch)
    else:
        softmax_fm_d(z, k, n, scratch)


cdef double head_loss(int loss, int act, double alpha, double delta, const floating* z,
                      floating* a, const floating* y, const floating* sw, floating* dz,
                      floating* scratch, Py_ssize_t n, Py_ssize_t k,
                      double scale) noexcept nogil:
    """Σᵢ wᵢ lᵢ over n samples, with a ← f(z) (the output activation act) and, unless dz
    is NULL, dz ← scale·∂(Σᵢ wᵢ lᵢ)/∂z (fm_head.h)."""
    cdef double out = 0
    if floating is float:
        head_f(loss, act, <float>alpha, <float>delta, z, a, y, sw, dz, scratch, n, k,
               <float>scale, &out)
    else:
        head_d(loss, act, alpha, delta, z, a, y, sw, dz, scratch, n, k, scale, &out)
    return out


cdef void metric_sums(const int* ids, int count, const floating* a, const floating* y,
                      Py_ssize_t n, Py_ssize_t k, double threshold,
                      double* sums) noexcept nogil:
    """sums[m] += Σ over the n samples of metric ids[m] (fm_head.h)."""
    if floating is float:
        metrics_f(ids, count, a, y, n, k, <float>threshold, sums)
    else:
        metrics_d(ids, count, a, y, n, k, threshold, sums)


cdef double regularize(const floating* w, floating* g, Py_ssize_t m, double l1,
                       double l2) noexcept nogil:
    """g += l1·sign(w) + 2·l2·w; returns l1·Σ|w| + l2·Σw²."""
    cdef double pen = 0
    if floating is float:
        regularize_f(w, g, m, <float>l1, <float>l2, &pen)
    else:
        regularize_d(w, g, m, l1, l2, &pen)
    return pen


cdef bint all_finite(const floating* x, Py_ssize_t size) noexcept nogil:
    """True when no value is NaN or ±Inf."""
    cdef int ok
    if floating is float:
        all_finite_f(x, size, &ok)
    else:
        all_finite_d(x, size, &ok)
    return ok != 0


cdef double abs_sum(const floating* x, Py_ssize_t size) noexcept nogil:
    """Σ|x| in double: finite exactly when every value is (float x), or when every value
    is and the sum does not overflow (double x)."""
    cdef double s
    if floating is float:
        abs_sum_f(x, size, &s)
    else:
        abs_sum_d(x, size, &s)
    return s


def abs_sum_checked(const floating[::1] x not None):
    """abs_sum over x (for tests)."""
    cdef double s = 0
    if x.shape[0]:
        with nogil:
            s = abs_sum(&x[0], x.shape[0])
    return s


# ---------------------------------------------------------------- checked wrappers

def _check_dense(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out, w_shape, b_len):
    if w_shape[0] != n_in or w_shape[1] != n_out:
        raise ValueError(f"W has shape {tuple(w_shape)}, expected ({n_in}, {n_out})")
    if b_len != n_out:
        raise ValueError(f"b has length {b_len}, expected {n_out}")


def _act_code(relu, activation):
    """The kernels' (id, alpha) of `activation` (a name or Activation; None: by `relu`)."""
    if activation is None:
        return (FD_ACT_RELU if relu else FD_ACT_LINEAR), 0.0
    spec = _act.get(activation)
    if spec.kernel_id == FD_ACT_SOFTMAX:
        raise ValueError("softmax is not elementwise: the dense kernels do not apply it")
    return spec.kernel_id, spec.alpha


def dense_forward_checked(const floating[:, ::1] a not None, const floating[:, ::1] w not None,
                          const floating[::1] b not None, floating[:, ::1] z not None,
                          bint relu=False, activation=None):
    """Z = act(Wᵀ·A + b) into the preallocated Z; A is n_in × n and Z n_out × n
    (feature-major: one column per sample), all C-contiguous and of one dtype. act: ReLU
    when relu, else `activation` (a name or fastdense.activations.Activation) if given."""
    cdef int act
    cdef double alpha
    act, alpha = _act_code(relu, activation)
    cdef Py_ssize_t n_in = a.shape[0], n = a.shape[1], n_out = w.shape[1]
    _check_dense(n, n_in, n_out, (w.shape[0], w.shape[1]), b.shape[0])
    if z.shape[0] != n_out or z.shape[1] != n:
        raise ValueError(f"Z has shape {(z.shape[0], z.shape[1])}, expected {(n_out, n)}")
    if n == 0:
        return
    with nogil:
        dense_forward(&a[0, 0], &w[0, 0], &b[0], &z[0, 0], n, n_in, n_out, act, alpha, False)


def dense_backward_checked(const floating[:, ::1] a not None, const floating[:, ::1] w not None,
                           const floating[:, ::1] d not None, floating[:, ::1] dw not None,
                           floating[::1] db not None, floating[:, ::1] da=None,
                           bint relu_a=False, activation_a=None):
    """dW = A·Dᵀ, db = D·1, dA = (W·D) ⊙ f'(A) (dA skipped if None), f the activation
    whose output A is: ReLU when relu_a, else `activation_a` if given (one whose derivative
    follows from its output: not GELU). A is n_in × n, D n_out × n, dA n_in × n."""
    cdef int act
    cdef double alpha
    act, alpha = _act_code(relu_a, activation_a)
    if act in (FD_ACT_GELU, FD_ACT_GELU_TANH):
        raise ValueError("GELU's derivative needs its pre-activation: not from its output")
    cdef Py_ssize_t n_in = a.shape[0], n = a.shape[1], n_out = w.shape[1]
    _check_dense(n, n_in, n_out, (w.shape[0], w.shape[1]), db.shape[0])
    if d.shape[0] != n_out or d.shape[1] != n:
        raise ValueError(f"D has shape {(d.shape[0], d.shape[1])}, expected {(n_out, n)}")
    if dw.shape[0] != n_in or dw.shape[1] != n_out:
        raise ValueError(f"dW has shape {(dw.shape[0], dw.shape[1])}, expected {(n_in, n_out)}")
    if da is not None and (da.shape[0] != n_in or da.shape[1] != n):
        raise ValueError(f"dA has shape {(da.shape[0], da.shape[1])}, expected {(n_in, n)}")
    if n == 0:
        raise ValueError("the batch is empty")
    cdef floating* dap = NULL if da is None else &da[0, 0]
    with nogil:
        dense_backward(&a[0, 0], &w[0, 0], &d[0, 0], &dw[0, 0], &db[0], dap,
                       n, n_in, n_out, act, alpha, False)


# Large gradients are checked through BLAS's Σ|x| first: NaN and ±Inf carry through a
# sum, so a finite Σ|x| proves every value finite, and only a non-finite one (divergence,
# or finite values whose sum overflows) needs the exact pass. OpenBLAS spreads it over its
# threads: 669 k floats in 10.5 µs against 26 µs for the exact single-thread pass. That a
# NaN or Inf anywhere reaches the sum is checked once at import (asum_carries_non_finite);
# a BLAS that fails the check is never trusted with it.
cdef enum:
    ASUM_MIN = 1 << 16
cdef bint _asum_ok = False


cdef bint grads_finite(const floating* x, Py_ssize_t size) noexcept nogil:
    """all_finite(x, size), proved by a finite Σ|x| where that is quicker (see above)."""
    cdef double s
    if size >= ASUM_MIN and _asum_ok:
        s = asum(size, x)
        if s - s == 0:
            return True
    return all_finite(x, size)


def asum_checked(const floating[::1] x not None):
    """Σ|x| through BLAS (for the import-time check and tests)."""
    cdef double s = 0
    if x.shape[0]:
        with nogil:
            s = asum(x.shape[0], &x[0])
    return s


def asum_carries_non_finite():
    """Whether this BLAS's ?asum returns a non-finite sum for every placement of a NaN,
    +Inf or −Inf tried (both precisions, lengths past its unrolling and threading), and a
    finite one for finite data."""
    for dtype in (np.float32, np.float64):
        for n in (ASUM_MIN, 100003, 262144 + 17):
            x = np.ones(n, dtype)
            if not np.isfinite(asum_checked(x)):
                return False
            for bad in (np.nan, np.inf, -np.inf):
                for at in (0, 1, 15, n // 3, n // 2 + 1, n - 17, n - 1):
                    x[at] = bad
                    if np.isfinite(asum_checked(x)):
                        return False
                    x[at] = 1
    return True


def grads_finite_checked(const floating[::1] x not None):
    """grads_finite over x: the training loop's divergence check on a gradient (for tests)."""
    cdef bint ok
    with nogil:
        ok = grads_finite(&x[0], x.shape[0]) if x.shape[0] else True
    return ok


def use_blas_finite_check(on):
    """Enable (when the import-time check passed) or disable the Σ|x| shortcut; returns
    whether it was in use. For tests and benchmarks."""
    global _asum_ok
    previous = _asum_ok
    _asum_ok = bool(on) and _ASUM_TRUSTED
    return previous


_ASUM_TRUSTED = asum_carries_non_finite()
_asum_ok = _ASUM_TRUSTED


def all_finite_checked(const floating[::1] x not None):
    """True when the contiguous 1-D array x holds no NaN and no ±Inf: one vectorised pass
    with no temporary array (the GIL is released for large arrays)."""
    cdef Py_ssize_t n = x.shape[0]
    cdef bint ok
    if n == 0:
        return True
    if n < 65536:
        return all_finite(&x[0], n)
    with nogil:
        ok = all_finite(&x[0], n)
    return ok


def head_exp_checked(floating[::1] x not None):
    """x ← e^x in place by the exp of the softmax and cross-entropy head (fm_kernels.h's
    fd_expf for float32, libm's exp for float64), on the instruction set in force. For
    tests."""
    if x.shape[0] == 0:
        return
    if floating is float:
        head_exp_f(&x[0], x.shape[0])
    else:
        head_exp_d(&x[0], x.shape[0])


def head_checked(loss, activation, const floating[:, ::1] z not None,
                 const floating[:, ::1] y not None, const floating[::1] sw=None,
                 bint gradient=True):
    """The head kernel on a feature-major block: z (k × n) the output layer's
    pre-activation, y (k × n, or 1 × n labels for the sparse loss), sw (n) sample weights.
    Returns (Σᵢ wᵢ lᵢ, a = f(z), dz = ∂(Σᵢ wᵢ lᵢ / n)/∂z or None). For tests; `loss` a
    fastdense.losses.Loss or name, `activation` a name or Activation. Labels are checked."""
    spec = _losses.get(loss)
    act = _act.get(activation)
    cdef Py_ssize_t k = z.shape[0], n = z.shape[1], rows = 1 if spec.sparse else k
    if n == 0:
        raise ValueError("the batch is empty")
    if y.shape[0] != rows or y.shape[1] != n:
        raise ValueError(f"y has shape {(y.shape[0], y.shape[1])}, expected {(rows, n)}")
    if sw is not None and sw.shape[0] != n:
        raise ValueError(f"sw has length {sw.shape[0]}, expected {n}")
    if spec.sparse:
        labels = np.asarray(y)[0]
        if not np.all((labels >= 0) & (labels < k) & (labels == np.floor(labels))):
            raise ValueError(f"labels must be integers in [0, {k})")
    dtype = np.asarray(z).dtype
    a = np.empty((k, n), dtype)
    dz = np.empty((k, n), dtype) if gradient else None
    scratch = np.empty(n, dtype)
    cdef floating[:, ::1] av = a
    cdef floating[:, ::1] dzv
    cdef floating[::1] sv = scratch
    cdef floating* dzp = NULL
    cdef const floating* swp = NULL if sw is None else &sw[0]
    if gradient:
        dzv = dz
        dzp = &dzv[0, 0]
    cdef int lid = spec.kernel_id, aid = act.kernel_id
    cdef double alpha = act.alpha, delta = spec.param, total
    with nogil:
        total = head_loss(lid, aid, alpha, delta, &z[0, 0], &av[0, 0], &y[0, 0], swp, dzp,
                          &sv[0], n, k, 1.0 / n)
    return total, a, dz


def metrics_checked(ids, const floating[:, ::1] a not None, const floating[:, ::1] y not None,
                    double threshold=0.5):
    """Per-metric sums over the samples (columns) of the feature-major a (k × n) against
    y (k × n, or 1 × n labels): the kernel of fit's metrics. For tests."""
    cdef Py_ssize_t k = a.shape[0], n = a.shape[1]
    id_arr = np.ascontiguousarray(ids, dtype=np.intc)
    if id_arr.ndim != 1 or (id_arr.size and (id_arr.min() < 0 or id_arr.max() > 4)):
        raise ValueError("ids must be metric ids 0-4")
    sparse = bool(np.any(id_arr == FD_METRIC_SPARSE_CATEGORICAL_ACCURACY))
    if sparse and id_arr.size != 1:
        raise ValueError("the sparse accuracy takes labels: alone")
    if y.shape[1] != n or y.shape[0] != (1 if sparse else k):
        raise ValueError("y's shape does not match a's")
    sums = np.zeros(id_arr.size)
    cdef int[::1] iv = id_arr
    cdef double[::1] sv = sums
    if id_arr.size and n:
        metric_sums(&iv[0], <int>id_arr.size, &a[0, 0], &y[0, 0], n, k, threshold, &sv[0])
    return sums


def regularize_checked(const floating[::1] w not None, floating[::1] g not None,
                       double l1=0.0, double l2=0.0):
    """g += l1·sign(w) + 2·l2·w in place; returns the penalty l1·Σ|w| + l2·Σw². For tests."""
    if g.shape[0] != w.shape[0]:
        raise ValueError("w and g differ in length")
    if w.shape[0] == 0:
        return 0.0
    return regularize(&w[0], &g[0], w.shape[0], l1, l2)


def act_forward_checked(floating[::1] z not None, activation):
    """z ← f(z) in place (elementwise activations, GELU included). For tests."""
    cdef int act
    cdef double alpha
    act, alpha = _act_code(False, activation)
    if z.shape[0]:
        act_forward(&z[0], z.shape[0], act, alpha)


# ---------------------------------------------------------------- the GEMM floor

cdef void _floor_gemms(floating** bufs, const Py_ssize_t* sizes, int n_layers, Py_ssize_t n,
                       Py_ssize_t reps) noexcept nogil:
    """reps × the matrix products of one training update through BLAS (see gemm_floor)."""
    cdef Py_ssize_t r
    cdef int l, n_in, n_out, nn = <int>n
    cdef floating** p
    for r in range(reps):
        for l in range(n_layers):
            n_in = <int>sizes[l]
            n_out = <int>sizes[l + 1]
            p = bufs + 6 * l      # A, W, Z, D, dW, dA
            gemm_rm(True, False, n_out, nn, n_in, 1, p[1], n_out, p[0], nn, 0, p[2], nn)
            gemm_rm(False, True, n_in, n_out, nn, 1, p[0], nn, p[3], nn, 0, p[4], n_out)
            if l > 0:
                gemm_rm(False, False, n_in, nn, n_out, 1, p[1], n_out, p[3], nn, 0, p[5], nn)


cdef double _floor_run(size_t[::1] av, Py_ssize_t[::1] sz, int L, Py_ssize_t batch,
                       Py_ssize_t count, bint f32):
    import time
    t0 = time.perf_counter()
    with nogil:
        if f32:
            _floor_gemms(<float**>&av[0], &sz[0], L, batch, count)
        else:
            _floor_gemms(<double**>&av[0], &sz[0], L, batch, count)
    return time.perf_counter() - t0


def gemm_floor(sizes, Py_ssize_t batch, dtype=np.float32, double block_seconds=0.002,
               int blocks=7):
    """Median seconds of the matrix products of one training update of a dense network of
    widths `sizes` at batch size `batch`, through the BLAS the kernels call (SciPy's), on
    the shapes and feature-major layouts of the BLAS path: per layer the forward
    Z = Wᵀ·A (n_out × n), dW = A·Dᵀ and, past the first layer, dA = W·D. The floor a
    fit's update time is measured against (issue 12); the products alone, without bias,
    activation, head, gather or update. Each of `blocks` timed blocks repeats the update's
    products for about block_seconds."""
    sizes = [int(s) for s in sizes]
    cdef int L = len(sizes) - 1, l
    if L < 1 or batch < 1 or min(sizes) < 1:
        raise ValueError("need at least one layer, positive widths and batch")
    rng = np.random.default_rng(0)
    keep = []
    cdef Py_ssize_t[::1] sz = np.asarray(sizes, dtype=np.intp)
    cdef Py_ssize_t reps = 1, b
    addr = np.zeros(6 * L, dtype=np.uintp)
    for l in range(L):
        shapes = [(sizes[l], batch), (sizes[l], sizes[l + 1]), (sizes[l + 1], batch),
                  (sizes[l + 1], batch), (sizes[l], sizes[l + 1]), (sizes[l], batch)]
        for q, shape in enumerate(shapes):
            arr = (rng.random(shape) - 0.5).astype(dtype)
            keep.append(arr)
            addr[6 * l + q] = arr.ctypes.data
    cdef size_t[::1] av = addr
    f32 = np.dtype(dtype) == np.float32
    if not f32 and np.dtype(dtype) != np.float64:
        raise ValueError("dtype must be float32 or float64")

    while True:                     # calibrate (also warms BLAS)
        t = _floor_run(av, sz, L, batch, reps, f32)
        if t >= block_seconds / 4 or reps >= 1 << 24:
            break
        reps *= 4
    reps = max(1, int(reps * block_seconds / max(t, 1e-9)))
    times = sorted(_floor_run(av, sz, L, batch, reps, f32) / reps for b in range(blocks))
    return times[len(times) // 2]
