# cython: language_level=3
"""The training loop: forward, loss, backward and update for every batch of an epoch inside
one nogil call, over the model's flat parameter buffer and preallocated workspaces.

Activations, targets and deltas are stored feature-major (features × batch, see dense.pyx):
each batch's rows are gathered from X and y straight into that layout.

`Network` holds a model's layout (widths, activations, offsets into the flat buffers) and
its workspaces; its methods check every array they are handed (dtype, contiguity, shape,
index range) before the unchecked cores run.
"""
from cython cimport floating
from libc.string cimport memcpy
from cpython.exc cimport PyErr_CheckSignals
from cpython.pythread cimport PyThread_get_thread_ident
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport uint32_t, uint64_t
cimport numpy as cnp
import os

import numpy as np

from libc.float cimport DBL_MAX, FLT_MAX

from fastdense._core.dense cimport (abs_sum, act_forward, all_finite, dense_forward, dense_backward,
                                    dense_backward1, dense_backward_nodw, gather_rows_t,
                                    gelu_backward, grads_finite, head_loss, metric_sums, outer1,
                                    regularize, relu_backward, sgd_from_deltas, sgd_outer1,
                                    sgd_weights, softmax_columns, use_blas, weight_product_blas)
from fastdense._core.losses cimport mse_forward_backward
from fastdense._core.updates cimport (RULE_SGD, StepConfig, elementwise_step, make_config,
                                      optimizer_step, rule_update)

cdef extern from "fd_fpenv.h" nogil:
    unsigned int fd_fp_enter(int flush)
    void fd_fp_leave(unsigned int saved)
    int fd_fp_flushing()

cnp.import_array()

# Training calls run with denormals flushed to zero (fd_fpenv.h) unless this is 0.
cdef int _flush_denormals = 1


def set_flush_denormals(flag):
    """Whether training (fit, train_on_batch, the gradient and update calls of the data-
    parallel fit) flushes subnormal floats to zero: FTZ and DAZ set on the training thread
    (and the update pool's) for each compiled call, restored after; True by default, as
    TensorFlow and XLA train. Subnormal values cost x86 cores a slow micro-code path each
    time they are made or read; a long Adam fit whose moments decay into that range ran
    40 % slower without the flush. False gives IEEE gradual underflow throughout. predict
    and evaluate never flush. Returns the previous setting."""
    global _flush_denormals
    if not isinstance(flag, (bool, np.bool_)):
        raise TypeError(f"set_flush_denormals takes True or False, not {flag!r}")
    previous = bool(_flush_denormals)
    _flush_denormals = 1 if flag else 0
    return previous


def get_flush_denormals():
    """True when training flushes subnormal floats to zero (see set_flush_denormals)."""
    return bool(_flush_denormals)


def flushing_in_training():
    """(For the tests.) Whether a compiled training call sees FTZ/DAZ set: enters and
    leaves as the training calls do and reports the register in between; False where the
    CPU has no SSE control register."""
    cdef unsigned int saved = fd_fp_enter(_flush_denormals)
    cdef int on = fd_fp_flushing()
    fd_fp_leave(saved)
    return bool(on)


def flushing_now():
    """(For the tests.) Whether the calling thread's register flushes now."""
    return bool(fd_fp_flushing())


# Activation ids (fastdense.activations; fm_kernels.h's FD_ACT_*).
cdef enum:
    ACT_LINEAR = 0
    ACT_RELU = 1
    ACT_GELU = 7
    ACT_GELU_TANH = 8
    ACT_SOFTMAX = 9
    LOSS_MSE = 0


ctypedef struct Layout:
    int n_layers
    const Py_ssize_t* sizes     # n_layers + 1 widths: the input, then each layer's units
    const int* act              # layer l's activation id (fastdense.activations)
    const double* alpha         # and its parameter (leaky ReLU's slope, ELU's α)
    const Py_ssize_t* w_off     # offset of layer l's W (sizes[l] × sizes[l+1]) in the buffer
    const Py_ssize_t* b_off     # offset of layer l's b (sizes[l+1])
    const Py_ssize_t* act_off   # activation l starts at ws + cap·act_off[l]
    const Py_ssize_t* pre_off   # layer l's pre-activation at ws + cap·pre_off[l] (GELU
                                # layers and the last layer), or −1
    const double* reg           # per layer: kernel l1, l2, bias l1, l2
    bint any_reg
    Py_ssize_t y_off, d0_off, d1_off   # target rows and the two delta buffers, likewise
    Py_ssize_t scratch_off      # two rows of scratch (the head's per-sample sums)
    # The head (set by Network.set_head): loss id and Huber's δ; the fused MSE path (MSE on
    # a linear or ReLU output, unweighted) writes the output in the forward's epilogue
    int loss
    double delta
    bint fast_mse
    Py_ssize_t t_rows           # target rows: the outputs, or 1 (class labels)
    bint weighted               # a row of sample weights follows the targets
    const int* metric_ids
    int n_metrics
    double threshold            # binary accuracy's


cdef inline floating* _act(const Layout* lay, floating* ws, Py_ssize_t cap, int l) noexcept nogil:
    return ws + cap * lay.act_off[l]


cdef inline bint _is_gelu(int act) noexcept nogil:
    return act == ACT_GELU or act == ACT_GELU_TANH


cdef void forward_train(const Layout* lay, const floating* params, floating* ws,
                        Py_ssize_t cap, Py_ssize_t nb, bint head) noexcept nogil:
    """The forward pass of the nb rows in the workspace, keeping what the backward needs:
    every layer's output, GELU layers' pre-activations and, when `head`, the last layer's
    pre-activation only (the head kernel then applies its activation); otherwise the last
    layer's output (the fused MSE path)."""
    cdef int l, L = lay.n_layers, code
    cdef floating* a
    cdef floating* a_next
    cdef floating* z
    cdef bint rows0 = input_rows(lay, nb)
    cdef Py_ssize_t n_out
    for l in range(L):
        a = _act(lay, ws, cap, l)
        a_next = _act(lay, ws, cap, l + 1)
        code = lay.act[l]
        n_out = lay.sizes[l + 1]
        if (l == L - 1 and head) or (l < L - 1 and _is_gelu(code)):
            z = ws + cap * lay.pre_off[l]
            dense_forward(a, params + lay.w_off[l], params + lay.b_off[l], z,
                          nb, lay.sizes[l], n_out, ACT_LINEAR, 0.0, l == 0 and rows0)
            if l < L - 1:
                memcpy(a_next, z, nb * n_out * sizeof(floating))
                act_forward(a_next, nb * n_out, code, lay.alpha[l])
        else:
            dense_forward(a, params + lay.w_off[l], params + lay.b_off[l], a_next,
                          nb, lay.sizes[l], n_out, code, lay.alpha[l], l == 0 and rows0)


cdef double penalty(const Layout* lay, const floating* params, floating* grads) noexcept nogil:
    """The regularisers' penalty; with grads, their gradient is added into it."""
    cdef int l, part
    cdef const double* r
    cdef double total = 0, s1, s2
    cdef Py_ssize_t i, m
    cdef const floating* w
    for l in range(lay.n_layers):
        r = lay.reg + 4 * l
        for part in range(2):
            if r[2 * part] == 0 and r[2 * part + 1] == 0:
                continue
            if part == 0:
                w = params + lay.w_off[l]
                m = lay.sizes[l] * lay.sizes[l + 1]
            else:
                w = params + lay.b_off[l]
                m = lay.sizes[l + 1]
            if grads != NULL:
                total += regularize(w, grads + (w - params), m, r[2 * part], r[2 * part + 1])
            else:
                s1 = 0
                s2 = 0
                for i in range(m):
                    s1 += w[i] if w[i] > 0 else -w[i]
                    s2 += <double>w[i] * w[i]
                total += r[2 * part] * s1 + r[2 * part + 1] * s2
    return total


cdef double forward_backward(const Layout* lay, const floating* params, floating* grads,
                             floating* ws, Py_ssize_t cap, Py_ssize_t nb,
                             double* msums, double* dsums, bint no_dw=False,
                             const bint* defer=NULL) noexcept nogil:
    """Loss of the nb rows in the workspace (inputs in activation 0, targets — and a row of
    sample weights when weighted — at y_off) and its gradient with respect to every
    parameter, written into `grads`; the metrics' per-sample sums added into msums (NULL:
    none); dsums[l] = Σ|D_l|, the sum of the absolute values of layer l's output gradient
    (NULL: none; for grads_proved_finite).

    no_dw (one sample, no regulariser, no layer on BLAS: the caller checks): the weights'
    gradients are not written, only the biases' — which at one sample are each layer's
    output gradient D_l, from which weight_grads1 or sgd_step1 take the rest.

    defer (NULL: none; see plan_deferred): layer l's weight gradient is not made where
    defer[l] (its products go to BLAS or the register-blocked kernels), and its output
    gradient D_l (n_out × nb) is kept in that gradient's place instead, for sgd_deferred
    or deferred_grads."""
    cdef int l, L = lay.n_layers, pc
    cdef Py_ssize_t k = lay.sizes[L]
    cdef floating* d = ws + cap * lay.d0_off
    cdef floating* d_prev = ws + cap * lay.d1_off
    cdef floating* y = ws + cap * lay.y_off
    cdef floating* tmp
    cdef double loss
    cdef floating* a
    cdef bint rows0 = input_rows(lay, nb)
    if defer != NULL and defer[L - 1]:
        d = grads + lay.w_off[L - 1]
    forward_train(lay, params, ws, cap, nb, not lay.fast_mse)
    a = _act(lay, ws, cap, L)
    if lay.fast_mse:
        loss = mse_forward_backward(a, y, d, nb, k)
        if lay.act[L - 1] == ACT_RELU:
            relu_backward(d, a, nb * k)
    else:
        loss = head_loss(lay.loss, lay.act[L - 1], lay.alpha[L - 1], lay.delta,
                         ws + cap * lay.pre_off[L - 1], a, y,
                         y + lay.t_rows * nb if lay.weighted else NULL, d,
                         ws + cap * lay.scratch_off, nb, k, 1.0 / nb) / nb
    if msums != NULL and lay.n_metrics:
        metric_sums(lay.metric_ids, lay.n_metrics, a, y, nb, k, lay.threshold, msums)
    for l in range(L - 1, -1, -1):
        a = _act(lay, ws, cap, l)
        pc = lay.act[l - 1] if l > 0 else ACT_LINEAR
        if defer != NULL:
            # D_(l−1) goes where it is kept, or to the delta buffer d does not occupy
            if l > 0 and defer[l - 1]:
                d_prev = grads + lay.w_off[l - 1]
            elif d == ws + cap * lay.d0_off:
                d_prev = ws + cap * lay.d1_off
            else:
                d_prev = ws + cap * lay.d0_off
        if dsums != NULL:
            dsums[l] = abs_sum(d, nb * lay.sizes[l + 1])
        if no_dw:
            dense_backward1(a, params + lay.w_off[l], d, grads + lay.b_off[l],
                            d_prev if l > 0 else NULL, lay.sizes[l], lay.sizes[l + 1],
                            ACT_LINEAR if _is_gelu(pc) else pc,
                            lay.alpha[l - 1] if l > 0 else 0.0)
        elif defer != NULL and defer[l]:
            dense_backward_nodw(a, params + lay.w_off[l], d, grads + lay.b_off[l],
                                d_prev if l > 0 else NULL, nb, lay.sizes[l],
                                lay.sizes[l + 1], ACT_LINEAR if _is_gelu(pc) else pc,
                                lay.alpha[l - 1] if l > 0 else 0.0)
        else:
            dense_backward(a, params + lay.w_off[l], d,
                           grads + lay.w_off[l], grads + lay.b_off[l],
                           d_prev if l > 0 else NULL,
                           nb, lay.sizes[l], lay.sizes[l + 1],
                           ACT_LINEAR if _is_gelu(pc) else pc,
                           lay.alpha[l - 1] if l > 0 else 0.0, l == 0 and rows0)
        if l > 0 and _is_gelu(pc):
            gelu_backward(d_prev, ws + cap * lay.pre_off[l - 1], nb * lay.sizes[l],
                          pc == ACT_GELU_TANH)
        tmp = d
        d = d_prev
        d_prev = tmp
    if lay.any_reg:
        loss += penalty(lay, params, grads)
    return loss


cdef enum:
    FD_MAX_LAYERS = 64          # deeper networks check their gradient directly


cdef bint grads_proved_finite(const Layout* lay, floating* ws, Py_ssize_t cap,
                              Py_ssize_t nb, const double* dsums) noexcept nogil:
    """Whether every value of the gradient forward_backward just wrote (dsums given, no
    regularisers) is finite, proved from the activations and output gradients instead of
    read off the gradient: a pass over nb·(n_in + n_out) values per layer instead of
    n_in·n_out, so quicker at small batches. False: not proved (then check the gradient).

    Layer l's gradient is dW = A·Dᵀ and db = D·1 (A its input, D its output gradient), so
    every partial sum of every entry, in any order and with or without fused multiply-adds,
    is at most Σ|A|·Σ|D| (or Σ|D|) times (1 + ε)ⁿ for a batch of n samples: finite when
    those sums are finite and their product is under an eighth of the largest finite value
    ((1 + ε)ⁿ < e for any batch under 2²⁴ samples in float32)."""
    cdef int l
    cdef double sa, sd
    cdef double limit = FLT_MAX / 8 if floating is float else DBL_MAX / 8
    if nb >= (1 << 24):
        return False
    for l in range(lay.n_layers):
        sa = abs_sum(_act(lay, ws, cap, l), nb * lay.sizes[l])
        sd = dsums[l]
        if not (sa <= limit and sd <= limit and (sa if sa > 1 else 1.0) * sd <= limit):
            return False
    return True


cdef void weight_grads1(const Layout* lay, floating* grads, floating* ws,
                        Py_ssize_t cap) noexcept nogil:
    """The weights' gradients forward_backward(…, no_dw=True) left out: dW_l = a_l ⊗ D_l
    (D_l in the bias slots), which completes the gradient."""
    cdef int l
    for l in range(lay.n_layers):
        outer1(_act(lay, ws, cap, l), grads + lay.b_off[l], grads + lay.w_off[l],
               lay.sizes[l], lay.sizes[l + 1])


cdef void sgd_step1(const Layout* lay, floating* params, const floating* grads,
                    floating* ws, Py_ssize_t cap, double lr) noexcept nogil:
    """Plain SGD after forward_backward(…, no_dw=True), its gradient proved finite: every
    layer's W −= lr·(a_l ⊗ D_l) and b −= lr·D_l in one pass over the weights, the values
    optimizer_step gives from the whole gradient (dense.sgd_outer1)."""
    cdef int l
    for l in range(lay.n_layers):
        sgd_outer1(params + lay.w_off[l], params + lay.b_off[l], _act(lay, ws, cap, l),
                   grads + lay.b_off[l], lr, lay.sizes[l], lay.sizes[l + 1])


cdef bint _defer_sgd = True


def set_deferred_sgd(on):
    """Whether plain SGD on batches of more than one sample may update the weights of
    layers whose products go to BLAS or to the register-blocked kernels straight from
    their input and output gradient (W ← W − lr·A·Dᵀ in the product, the gradient never
    stored; see plan_deferred). On by default; returns the previous setting. For tests and
    benchmarks; not thread-safe."""
    global _defer_sgd
    previous = bool(_defer_sgd)
    _defer_sgd = bool(on)
    return previous


cdef bint plan_deferred(const Layout* lay, Py_ssize_t nb, bint* defer) noexcept nogil:
    """Which layers plain SGD on nb > 1 samples updates straight from A_l and D_l: those
    whose products go to BLAS or to the register-blocked kernels (dense.sgd_from_deltas:
    the product that made the gradient updates W instead, at the same cost, and the
    gradient's write, its read and the update's pass are saved), and whose output
    gradient fits where the weight gradient would be (nb ≤ n_in), where it is kept until
    the update. Returns whether there is one. (The hand-written loops' layers are small:
    their gradients stay in cache.)"""
    cdef int l
    cdef bint some = False
    for l in range(lay.n_layers):
        defer[l] = (_defer_sgd and nb > 1 and nb <= lay.sizes[l]
                    and sgd_from_deltas(nb, lay.sizes[l], lay.sizes[l + 1]))
        some = some or defer[l]
    return some


cdef void deferred_grads(const Layout* lay, floating* grads, floating* ws, Py_ssize_t cap,
                         Py_ssize_t nb, const bint* defer) noexcept nogil:
    """The weight gradients forward_backward(…, defer) left out, for when the gradient
    must be checked or another rule applied: each deferred layer's D_l is copied from its
    weight gradient's place to the delta buffer, then dW_l = A_l·D_lᵀ is made there (the
    values dense_backward gives), which completes the gradient."""
    cdef int l
    cdef floating* buf = ws + cap * lay.d0_off
    for l in range(lay.n_layers):
        if defer[l]:
            memcpy(buf, grads + lay.w_off[l], nb * lay.sizes[l + 1] * sizeof(floating))
            weight_product_blas(_act(lay, ws, cap, l), buf, grads + lay.w_off[l], 1.0, 0.0,
                                nb, lay.sizes[l], lay.sizes[l + 1], l == 0 and input_rows(lay, nb))


cdef void sgd_deferred(const Layout* lay, floating* params, const floating* grads,
                       floating* ws, Py_ssize_t cap, Py_ssize_t nb, const bint* defer,
                       const StepConfig* cfg, floating** state) noexcept nogil:
    """Plain SGD after forward_backward(…, defer), the gradient proved finite: each
    deferred layer's W ← W − lr·A_l·D_lᵀ in one product (dense.sgd_weights) and its bias
    from db; every other layer's W and b from their gradient, as optimizer_step does.
    The values are the stored gradient's update up to rounding: BLAS's epilogue makes
    W + (−lr)·Σ where the update adds −lr·rounded(Σ), and the register-blocked product
    subtracts each chunk of samples' sum (64 float32 samples, fewer for layers over 128
    outputs) in turn; db is a row sum, which may round otherwise than the transposed
    sums that make it on the stored gradient's register-blocked path."""
    cdef int l
    for l in range(lay.n_layers):
        if defer[l]:
            sgd_weights(params + lay.w_off[l], _act(lay, ws, cap, l), grads + lay.w_off[l],
                        cfg.lr, nb, lay.sizes[l], lay.sizes[l + 1],
                        l == 0 and input_rows(lay, nb))
            rule_update(cfg, params, grads + lay.b_off[l], state, lay.b_off[l],
                        lay.b_off[l] + lay.sizes[l + 1], 1.0, 1.0)
        else:
            rule_update(cfg, params, grads + lay.w_off[l], state, lay.w_off[l],
                        lay.b_off[l] + lay.sizes[l + 1], 1.0, 1.0)


cdef enum:
    SPAN_DOUBLES = 1024     # the stack buffer rule_step1 makes the gradient in (8 KiB)
    # rule_step1 from gradients of this many bytes: below, the stored gradient stays in
    # cache and the pieces' calls cost more than they save (fits of 10-w-w-1 at batch 1,
    # 2-core Xeon, 2026-12-03, unfused over fused, momentum / Adam: 428 KiB 1.10 / 0.99,
    # 610 KiB 1.27 / 1.17, 1 MiB 1.43 / 1.11; 64 KiB 0.92 / 0.96)
    STEP1_MIN_BYTES = 1 << 19


cdef void outer_span(const floating* a, const floating* d, floating* out, Py_ssize_t n_out,
                     Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """out[i − lo] = a[i // n_out]·d[i % n_out] for lo ≤ i < hi: values lo … hi − 1 of the
    row-major a ⊗ d (a part row, whole rows, a part row)."""
    cdef Py_ssize_t k = lo // n_out, j = lo - k * n_out, m, rows
    if j > 0:
        m = n_out - j if n_out - j < hi - lo else hi - lo
        outer1(a + k, d + j, out, 1, m)
        out += m
        lo += m
        k += 1
    rows = (hi - lo) // n_out
    if rows > 0:
        outer1(a + k, d, out, rows, n_out)
        out += rows * n_out
        lo += rows * n_out
        k += rows
    if lo < hi:
        outer1(a + k, d, out, 1, hi - lo)


cdef void rule_step1(const Layout* lay, floating* params, const floating* grads,
                     floating* ws, Py_ssize_t cap, const StepConfig* cfg,
                     floating** state) noexcept nogil:
    """Any elementwise rule (elementwise_step) after forward_backward(…, no_dw=True), its
    gradient proved finite: each bias from D_l itself, each W from a_l ⊗ D_l made a piece
    at a time in a small buffer that stays in L1 and never written to the gradient: the
    values optimizer_step gives from the whole gradient (the rules are elementwise)."""
    cdef double store[SPAN_DOUBLES]
    cdef floating* buf = <floating*>store
    cdef Py_ssize_t span = SPAN_DOUBLES * sizeof(double) // sizeof(floating), lo, hi, w0, size
    cdef int l
    for l in range(lay.n_layers):
        rule_update(cfg, params, grads + lay.b_off[l], state, lay.b_off[l],
                    lay.b_off[l] + lay.sizes[l + 1], 1.0, 1.0)
        w0 = lay.w_off[l]
        size = lay.sizes[l] * lay.sizes[l + 1]
        lo = 0
        while lo < size:
            hi = lo + span if size - lo > span else size
            outer_span(_act(lay, ws, cap, l), grads + lay.b_off[l], buf, lay.sizes[l + 1],
                       lo, hi)
            rule_update(cfg, params, buf, state, w0 + lo, w0 + hi, 1.0, 1.0)
            lo = hi


cdef inline bint plain_sgd(const StepConfig* cfg) noexcept nogil:
    """Whether cfg is SGD without momentum, clipping or weight decay: p ← p − lr·g."""
    return (cfg.rule == RULE_SGD and cfg.clipnorm <= 0 and cfg.clipvalue <= 0
            and cfg.global_clipnorm <= 0 and cfg.weight_decay == 0)


cdef inline bint proof_pays(const Layout* lay, Py_ssize_t nb, Py_ssize_t per_sample,
                            Py_ssize_t n_params) noexcept nogil:
    """Whether grads_proved_finite applies to a step on nb samples and reads fewer values
    than the gradient (per_sample: Σ over the layers of n_in + n_out)."""
    return not lay.any_reg and lay.n_layers <= FD_MAX_LAYERS and nb * per_sample <= n_params


cdef bint any_blas(const Layout* lay, Py_ssize_t nb) noexcept nogil:
    """Whether some product of a training step on nb samples goes through BLAS."""
    cdef int l
    for l in range(lay.n_layers):
        if use_blas(nb, lay.sizes[l], lay.sizes[l + 1]):
            return True
    return False


cdef void evaluate_core(const Layout* lay, const floating* params, const floating* x,
                        const floating* y, Py_ssize_t n, floating* ws, Py_ssize_t cap,
                        double* loss_sum, double* msums) noexcept nogil:
    """Σᵢ wᵢ lᵢ over the n rows of x and y (targets, and weights when weighted, as fit
    takes them) into *loss_sum, and the metrics' sums into msums: cap rows at a time
    through the training forward and the head kernel (no gradient)."""
    cdef Py_ssize_t start = 0, nb, k = lay.sizes[lay.n_layers]
    cdef floating* yb = ws + cap * lay.y_off
    cdef floating* a = _act(lay, ws, cap, lay.n_layers)
    cdef floating* a0 = _act(lay, ws, cap, 0)
    cdef Py_ssize_t n_in = lay.sizes[0], ycols = lay.t_rows + lay.weighted
    loss_sum[0] = 0
    while start < n:
        nb = cap if n - start > cap else n - start
        if input_rows(lay, nb):
            memcpy(a0, x + start * n_in, nb * n_in * sizeof(floating))
        else:
            gather_rows_t(a0, x + start * n_in, NULL, nb, n_in, n - start)
        gather_rows_t(yb, y + start * ycols, NULL, nb, ycols, n - start)
        forward_train(lay, params, ws, cap, nb, True)
        loss_sum[0] += head_loss(lay.loss, lay.act[lay.n_layers - 1],
                                 lay.alpha[lay.n_layers - 1], lay.delta,
                                 ws + cap * lay.pre_off[lay.n_layers - 1], a, yb,
                                 yb + lay.t_rows * nb if lay.weighted else NULL, NULL,
                                 ws + cap * lay.scratch_off, nb, k, 1.0)
        if lay.n_metrics:
            metric_sums(lay.metric_ids, lay.n_metrics, a, yb, nb, k, lay.threshold, msums)
        start += nb


cdef bint batch_targets_ok(const Layout* lay, const floating* ws, Py_ssize_t cap,
                           Py_ssize_t nb) noexcept nogil:
    """The gathered batch's class labels (the sparse head) whole and in [0, outputs), and
    its sample weights finite and ≥ 0 (the head indexes by the label)."""
    cdef const floating* yb = ws + cap * lay.y_off
    cdef const floating* wb = yb + lay.t_rows * nb
    cdef Py_ssize_t i, k = lay.sizes[lay.n_layers]
    cdef bint bad = False
    cdef double v
    for i in range(nb):
        if lay.loss == 5:
            v = yb[i]
            bad |= not (v >= 0 and v < k and v == <double><Py_ssize_t>v)
        if lay.weighted:
            v = wb[i]
            bad |= not (v >= 0 and v - v == 0)
    return not bad


cdef void scale_into(floating* out, Py_ssize_t P, double scale, double loss,
                     const double* msums, Py_ssize_t M) noexcept nogil:
    """out[:P] ×= scale (1: left as is); out[P] = scale × loss; out[P + 1 + j] = msums[j]."""
    cdef Py_ssize_t i
    cdef floating s = <floating>scale
    if scale != 1:
        for i in range(P):
            out[i] *= s
    out[P] = <floating>(scale * loss)
    for i in range(M):
        out[P + 1 + i] = <floating>msums[i]


cdef inline bint input_rows(const Layout* lay, Py_ssize_t nb) noexcept nogil:
    """Whether a batch of nb samples enters the first layer sample-major (as X's rows are:
    its BLAS path reads them through a transposition flag) rather than feature-major."""
    return use_blas(nb, lay.sizes[0], lay.sizes[1])


cdef void gather_batch(const Layout* lay, floating* ws, Py_ssize_t cap,
                       const floating* x, const floating* y, Py_ssize_t x_rows,
                       const Py_ssize_t* rows, Py_ssize_t nb) noexcept nogil:
    """The batch's inputs (rows `rows` of x, which has x_rows rows) into activation 0, in
    the layout input_rows chooses, and its targets, feature-major, into the target buffer."""
    cdef Py_ssize_t r, n_in = lay.sizes[0]
    cdef floating* a0 = _act(lay, ws, cap, 0)
    if input_rows(lay, nb):
        for r in range(nb):
            memcpy(a0 + r * n_in, x + rows[r] * n_in, n_in * sizeof(floating))
    else:
        gather_rows_t(a0, x, rows, nb, n_in, x_rows)
    gather_rows_t(ws + cap * lay.y_off, y, rows, nb, lay.t_rows + lay.weighted, x_rows)


cdef void transpose(floating* dst, const floating* src, Py_ssize_t rows,
                    Py_ssize_t cols) noexcept nogil:
    """dst (cols × rows) = srcᵀ, src rows × cols, both C-contiguous."""
    cdef Py_ssize_t r, c
    if rows == 1 or cols == 1:
        memcpy(dst, src, rows * cols * sizeof(floating))
        return
    for r in range(rows):
        for c in range(cols):
            dst[c * rows + r] = src[r * cols + c]


cdef enum:
    # How train_epoch_core ended.
    EPOCH_DONE = 0          # every batch trained
    EPOCH_DIVERGED = 1      # batch `done` had a non-finite loss or gradient; not applied
    EPOCH_INTERRUPTED = 2   # a signal handler raised (Ctrl-C) after `done` updates
    EPOCH_REFUSED = 3       # the optimizer refused its configuration; nothing applied
    # Between two looks for signals (Ctrl-C), at least this much work (samples ×
    # parameters) is done: about a millisecond, so a look (taking the GIL) costs nothing.
    POLL_WORK = 2000000

# The exception a signal handler raised during an epoch (only the main thread runs
# signal handlers, so one slot is enough).
_pending_signal = []
# Set by request_stop(): a deferred Ctrl-C (see fastdense.models' fit), seen by the loop.
cdef int _stop_requested = 0


def request_stop():
    """Ask the running epoch loop to stop after its current update (a deferred Ctrl-C)."""
    global _stop_requested
    _stop_requested = 1


def clear_stop():
    global _stop_requested
    _stop_requested = 0


def stop_requested():
    return _stop_requested != 0


cdef int poll_signals() noexcept with gil:
    """Run Python's signal handlers now; 1 when one raised (the exception is kept in
    _pending_signal), as Ctrl-C's does, or when request_stop() was called."""
    try:
        PyErr_CheckSignals()
    except BaseException as exc:
        _pending_signal.append(exc)
        return 1
    return _stop_requested != 0


cdef Py_ssize_t train_epoch_core(const Layout* lay, floating* params, floating* grads,
                                 Py_ssize_t n_params, const Py_ssize_t* seg, Py_ssize_t nseg,
                                 floating* ws, Py_ssize_t cap,
                                 const floating* x, const floating* y,
                                 const Py_ssize_t* order, Py_ssize_t n, Py_ssize_t batch_size,
                                 StepConfig* cfg, floating** state, const double* lrs,
                                 Py_ssize_t lr_stride, long long t_first, double* losses,
                                 double* mean_loss, int* status, double* msums) noexcept nogil:
    """For each batch of `order` (the last may be partial): gather its rows, forward, loss,
    backward, one optimizer update. losses[b] = batch b's loss before its update.

    Batch b's learning rate is lrs[b·lr_stride] (stride 0: one rate for all); *mean_loss
    is the mean over the trained samples of each batch's loss; msums (NULL: none) gains
    the metrics' per-sample sums of each trained batch.

    Returns the number of updates applied, and in *status how the epoch ended (EPOCH_*):
    a non-finite loss or gradient stops it before that batch's update, so the weights are
    those after the last finite one; a signal handler that raises (Ctrl-C) stops it
    between two updates."""
    cdef Py_ssize_t b, start, nb, work = 0, per_sample = 0
    cdef double loss, total = 0
    cdef double dsums[FD_MAX_LAYERS]
    cdef double* ds
    cdef int l
    cdef bint fuse, proved, deferred
    cdef bint defer[FD_MAX_LAYERS]
    for l in range(lay.n_layers):
        per_sample += lay.sizes[l] + lay.sizes[l + 1]
    # every batch but perhaps the last is whole: its two rules are worked out once
    cdef bint proof_whole = proof_pays(lay, batch_size, per_sample, n_params)
    cdef bint cold_whole = not any_blas(lay, batch_size)
    # one sample, its gradient proved finite, an elementwise rule: the weights are updated
    # from the activations and output gradients, and the weight gradient is never stored
    cdef bint sgd1 = plain_sgd(cfg)
    cdef bint step1 = (elementwise_step(cfg) and not any_blas(lay, 1)
                       and (sgd1 or n_params * <Py_ssize_t>sizeof(floating) >= STEP1_MIN_BYTES))
    b = 0
    start = 0
    status[0] = EPOCH_DONE
    mean_loss[0] = 0
    while start < n:
        nb = batch_size if n - start > batch_size else n - start
        gather_batch(lay, ws, cap, x, y, n, order + start, nb)
        # the gradient's finiteness proved from activations and output gradients where they
        # are fewer values than the gradient (small batches), else read off the gradient
        if nb == batch_size:
            ds = dsums if proof_whole else NULL
        else:
            ds = dsums if proof_pays(lay, nb, per_sample, n_params) else NULL
        fuse = step1 and nb == 1 and ds != NULL
        # plain SGD on a batch whose proof applies: the BLAS and register-blocked layers
        # update W from A and D inside their products, after the proof (plan_deferred)
        deferred = sgd1 and nb > 1 and ds != NULL and plan_deferred(lay, nb, defer)
        loss = forward_backward(lay, params, grads, ws, cap, nb, msums, ds, fuse,
                                defer if deferred else NULL)
        losses[b] = loss
        proved = loss - loss == 0 and ds != NULL and grads_proved_finite(lay, ws, cap, nb, ds)
        if fuse and not proved:
            weight_grads1(lay, grads, ws, cap)      # not proved: check the whole gradient
        if deferred and not proved:
            deferred_grads(lay, grads, ws, cap, nb, defer)
        # Diverged: stop before the update (one cheap vectorised pass over the gradient).
        if loss - loss != 0 or not (proved or grads_finite(grads, n_params)):
            status[0] = EPOCH_DIVERGED
            return b
        cfg.blas_cold = cold_whole if nb == batch_size else not any_blas(lay, nb)
        cfg.lr = lrs[b * lr_stride]
        cfg.t = t_first + b
        if fuse and proved:
            if sgd1:
                sgd_step1(lay, params, grads, ws, cap, cfg.lr)
            else:
                rule_step1(lay, params, grads, ws, cap, cfg, state)
        elif deferred and proved:
            sgd_deferred(lay, params, grads, ws, cap, nb, defer, cfg, state)
        elif optimizer_step(cfg, params, grads, state, n_params, seg, nseg) != 0:
            status[0] = EPOCH_REFUSED
            return b
        total += loss * nb
        b += 1
        start += nb
        mean_loss[0] = total / start
        work += nb * n_params
        if work >= POLL_WORK and start < n:
            work = 0
            if poll_signals():
                status[0] = EPOCH_INTERRUPTED
                return b
    return b


cdef void forward_core(const Layout* lay, const floating* params, const floating* x,
                       floating* out, Py_ssize_t n, floating* ws, Py_ssize_t cap,
                       Py_ssize_t widest) noexcept nogil:
    """out (n × outputs, row-major) = the network's output for the rows of x, cap rows at a
    time: each chunk is transposed into ws, then passes through two ping-pong buffers of
    widest × cap values (ws must hold cap × (inputs + 2·widest + 1) values: the last cap
    are softmax's scratch)."""
    cdef int l, L = lay.n_layers
    cdef Py_ssize_t start, nb, n_in = lay.sizes[0], k = lay.sizes[L]
    cdef floating* buf0 = ws + cap * n_in
    cdef floating* buf1 = buf0 + cap * widest
    cdef floating* scratch = buf1 + cap * widest
    cdef const floating* src
    cdef floating* dst
    cdef bint rows0
    cdef int code
    start = 0
    while start < n:
        nb = cap if n - start > cap else n - start
        rows0 = input_rows(lay, nb)
        if rows0:
            src = x + start * n_in
        else:
            gather_rows_t(ws, x + start * n_in, NULL, nb, n_in, n - start)
            src = ws
        for l in range(L):
            dst = buf0 if l % 2 == 0 else buf1
            code = lay.act[l]
            dense_forward(src, params + lay.w_off[l], params + lay.b_off[l], dst,
                          nb, lay.sizes[l], lay.sizes[l + 1],
                          ACT_LINEAR if code == ACT_SOFTMAX else code, lay.alpha[l],
                          l == 0 and rows0)
            if code == ACT_SOFTMAX:
                softmax_columns(dst, lay.sizes[l + 1], nb, scratch)
            src = dst
        transpose(out + start * k, src, k, nb)
        start += nb


cdef enum:
    # Rows per chunk of `forward`: bounds its workspace while keeping BLAS calls large.
    DEF_PREDICT_ROWS = 1024
    # A `forward` workspace up to this many doubles lives on the stack.
    STACK_WS = 2048
    # Below this many multiply-adds (rows × parameters) `forward` keeps the GIL: releasing
    # and taking it back costs more than the work.
    NOGIL_MIN_WORK = 100000


cdef extern from "numpy/random/bitgen.h":
    # NumPy's C interface to a bit generator (BitGenerator.capsule), numpy/random/bitgen.h
    ctypedef struct bitgen_t:
        void* state
        uint64_t (*next_uint64)(void* st) noexcept nogil
        uint32_t (*next_uint32)(void* st) noexcept nogil


cdef inline uint64_t draw_interval(bitgen_t* bg, uint64_t top) noexcept nogil:
    """A uniform integer in [0, top], drawn as NumPy's Generator draws the indices of its
    shuffle (random_interval): the smallest all-ones mask covering top, then rejection of
    masked draws above top; 32-bit draws while top fits in 32 bits."""
    cdef uint64_t mask = top, value
    if top == 0:
        return 0
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    mask |= mask >> 32
    if top <= 0xffffffffUL:
        while True:
            value = bg.next_uint32(bg.state) & mask
            if value <= top:
                return value
    while True:
        value = bg.next_uint64(bg.state) & mask
        if value <= top:
            return value


def shuffled_range(cnp.ndarray order not None, rng not None):
    """order[:] = a permutation of 0 … len(order) − 1 drawn from the NumPy Generator `rng`,
    equal to what rng.permutation(len(order)) returns and leaving rng in the same state:
    Fisher–Yates from the last position down, each index drawn as NumPy draws it, straight
    from the bit generator (under its lock, as NumPy's own methods take it).

    fastdense.models checks once per process that this matches the installed NumPy
    (`shuffle_matches_numpy`) and otherwise uses rng.shuffle."""
    if not (cnp.PyArray_NDIM(order) == 1 and cnp.PyArray_TYPE(order) == cnp.NPY_INTP
            and cnp.PyArray_IS_C_CONTIGUOUS(order) and cnp.PyArray_ISWRITEABLE(order)):
        raise ValueError("order must be a writable contiguous 1-D intp array")
    bit_generator = rng.bit_generator
    capsule = bit_generator.capsule
    cdef bitgen_t* bg = <bitgen_t*>PyCapsule_GetPointer(capsule, "BitGenerator")
    cdef Py_ssize_t n = cnp.PyArray_DIM(order, 0), i, j, t
    cdef Py_ssize_t* p = <Py_ssize_t*>cnp.PyArray_DATA(order)
    with bit_generator.lock:
        with nogil:
            for i in range(n):
                p[i] = i
            for i in range(n - 1, 0, -1):
                j = <Py_ssize_t>draw_interval(bg, <uint64_t>i)
                t = p[i]
                p[i] = p[j]
                p[j] = t


def _physical_memory():
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _human(nbytes):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{nbytes} B"
        nbytes /= 1024


def check_fits(nbytes, what):
    """MemoryError, before anything is allocated, when `what` needs more bytes than the
    machine has (allocating first could 'succeed' under overcommit and fail on touch)."""
    total = _physical_memory()
    if total is not None and nbytes > total:
        raise MemoryError(f"{what} needs {_human(nbytes)}, more than this machine's "
                          f"{_human(total)} of memory")


cdef object aligned_empty(Py_ssize_t count, dtype):
    """An uninitialised 1-D array of `count` elements of dtype whose data start on a 64-byte
    boundary: blocks of a feature-major buffer whose offsets are whole vectors then load
    and store without splitting cache lines (numpy itself only promises 16 bytes, so
    where a buffer fell varied from run to run, and so did the speed of the kernels)."""
    cdef Py_ssize_t itemsize = np.dtype(dtype).itemsize
    raw = np.empty(count * itemsize + 64, dtype=np.uint8)
    cdef size_t addr = <size_t>cnp.PyArray_DATA(<cnp.ndarray>raw)
    cdef Py_ssize_t off = <Py_ssize_t>((64 - addr % 64) % 64)
    return raw[off:off + count * itemsize].view(dtype)


cdef inline bint _is_matrix(obj, int typenum, Py_ssize_t width):
    """obj is an exact ndarray of typenum, C-contiguous, 2-D, with `width` columns."""
    if not cnp.PyArray_CheckExact(obj):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>obj
    return (cnp.PyArray_NDIM(a) == 2 and cnp.PyArray_TYPE(a) == typenum
            and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_DIM(a, 1) == width)


cdef bint indices_below(const Py_ssize_t* idx, Py_ssize_t count,
                        Py_ssize_t bound) noexcept nogil:
    """Every idx[i] in [0, bound) (one unsigned compare each)."""
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(count):
        bad |= <size_t>idx[i] >= <size_t>bound
    return not bad


cdef class Network:
    """A dense network's layout, flat parameter and gradient buffers, and workspaces."""

    cdef readonly object params       # all W and b, laid out W0, b0, W1, b1, ...
    cdef readonly object grads        # same layout
    cdef readonly object dtype
    cdef readonly object segments     # 2L + 1 offsets: variable i is params[seg[i]:seg[i+1]]
    cdef readonly Py_ssize_t n_params
    cdef Py_ssize_t[::1] _sizes, _w_off, _b_off, _act_off, _pre_off, _seg
    cdef int[::1] _acts, _metric_ids
    cdef double[::1] _alphas, _reg
    cdef readonly object head      # (loss id, δ, metric ids, t_rows, weighted, threshold)
    cdef bint _fast_y              # train_batch may take y as given (unweighted regression)
    cdef Layout _lay
    cdef object _ws
    cdef object _identity      # 0, 1, 2, …: the order of a batch trained as given
    cdef int _busy             # claims held by the training thread (taken with the GIL held)
    cdef long _owner           # that thread's id
    cdef object _config_key    # the optimizer config tuple _cfg was made from
    cdef StepConfig _cfg
    cdef Py_ssize_t _cap, _widest
    cdef int _typenum
    cdef bint _single

    def __init__(self, sizes, acts, dtype, alphas=None, regularizers=None):
        """sizes: the input width, then each layer's units; acts: each layer's activation
        id (fastdense.activations; True/False mean ReLU/linear) and alphas its parameter;
        regularizers: per layer (kernel l1, kernel l2, bias l1, bias l2) or None."""
        sizes = [int(s) for s in sizes]
        acts = [int(a) for a in acts]
        cdef int L = len(sizes) - 1
        if L < 1 or len(acts) != L or min(sizes) < 1 \
                or not all(0 <= a <= ACT_SOFTMAX for a in acts):
            raise ValueError(f"bad layout: sizes {sizes}, activations {acts}")
        if ACT_SOFTMAX in acts[:L - 1]:
            raise ValueError("softmax can only be the last layer's activation")
        if acts[L - 1] == ACT_SOFTMAX and sizes[L] < 2:
            raise ValueError("a softmax output needs at least 2 units")
        alphas = [0.0] * L if alphas is None else [float(a) for a in alphas]
        regularizers = [(0.0, 0.0, 0.0, 0.0)] * L if regularizers is None \
            else [tuple(float(v) for v in r) for r in regularizers]
        if len(alphas) != L or len(regularizers) != L \
                or any(len(r) != 4 or min(r) < 0 for r in regularizers):
            raise ValueError("alphas and regularizers need one entry per layer")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self._single = self.dtype == np.dtype(np.float32)
        self._typenum = cnp.NPY_FLOAT32 if self._single else cnp.NPY_FLOAT64
        self._widest = max(sizes)
        self._sizes = np.asarray(sizes, dtype=np.intp)
        self._acts = np.asarray(acts, dtype=np.intc)
        self._alphas = np.asarray(alphas, dtype=np.float64)
        self._reg = np.asarray(regularizers, dtype=np.float64).reshape(-1)
        w_off, b_off, seg = [], [], [0]
        off = 0
        for l in range(L):
            w_off.append(off)
            off += sizes[l] * sizes[l + 1]
            seg.append(off)
            b_off.append(off)
            off += sizes[l + 1]
            seg.append(off)
        self.n_params = off
        if max(sizes) > 2**31 - 1:
            raise ValueError(f"a layer of {max(sizes)} units is wider than BLAS can index")
        check_fits(2 * off * self.dtype.itemsize,
                   f"a network of {off} parameters ({self.dtype}, with its gradient)")
        self._w_off = np.asarray(w_off, dtype=np.intp)
        self._b_off = np.asarray(b_off, dtype=np.intp)
        self._seg = np.asarray(seg, dtype=np.intp)
        self.segments = np.asarray(self._seg)
        self.segments.flags.writeable = False
        act_off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        self._act_off = act_off
        widest = max(sizes)
        self._lay.n_layers = L
        self._lay.sizes = &self._sizes[0]
        self._lay.act = &self._acts[0]
        self._lay.alpha = &self._alphas[0]
        self._lay.reg = &self._reg[0]
        self._lay.any_reg = any(v > 0 for r in regularizers for v in r)
        self._lay.w_off = &self._w_off[0]
        self._lay.b_off = &self._b_off[0]
        self._lay.act_off = &self._act_off[0]
        total = int(act_off[L + 1])   # end of the last activation
        self._lay.y_off = total
        self._lay.d0_off = total + sizes[L] + 1          # targets and a weight row
        self._lay.d1_off = self._lay.d0_off + widest
        pre, end = [], self._lay.d1_off + widest
        for l in range(L):
            if l == L - 1 or acts[l] in (ACT_GELU, ACT_GELU_TANH):
                pre.append(end)
                end += sizes[l + 1]
            else:
                pre.append(-1)
        self._pre_off = np.asarray(pre, dtype=np.intp)
        self._lay.pre_off = &self._pre_off[0]
        self._lay.scratch_off = end
        self._metric_ids = np.zeros(1, dtype=np.intc)
        self._lay.metric_ids = &self._metric_ids[0]
        self.set_head(LOSS_MSE)
        self.params = aligned_empty(self.n_params, self.dtype)
        self.grads = aligned_empty(self.n_params, self.dtype)
        self.params[...] = 0
        self.grads[...] = 0
        self._ws = None
        self._busy = 0
        self._owner = 0
        self._config_key = None
        self._identity = None
        self._cap = 0

    @property
    def busy(self):
        """Whether a thread is training this network right now."""
        return self._busy > 0

    cdef _claim(self):
        """Mark the network as being trained by this thread; refuse if another thread is.
        Claims nest (fit holds one for all its epochs, each epoch takes another), and are
        checked and taken while holding the GIL, so two threads cannot both succeed."""
        cdef long me = PyThread_get_thread_ident()
        if self._busy and self._owner != me:
            raise RuntimeError(
                "this model is being trained by another thread; train one model per "
                "thread, or wait for the other fit to finish")
        self._owner = me
        self._busy += 1

    cdef _release(self):
        self._busy -= 1

    def deferred_layers(self, Py_ssize_t nb):
        """Which layers plain SGD on a batch of nb samples updates straight from their input
        and output gradient, never storing their weight gradient, when the gradient's
        finiteness is proved: where the proof applies (proof_pays) and plan_deferred picks
        them; the proof itself is worked out per batch. For tests."""
        cdef bint defer[FD_MAX_LAYERS]
        cdef int l, L = self._lay.n_layers
        cdef Py_ssize_t per_sample = 0
        for l in range(L):
            per_sample += self._lay.sizes[l] + self._lay.sizes[l + 1]
        if not proof_pays(&self._lay, nb, per_sample, self.n_params):
            return (False,) * L
        plan_deferred(&self._lay, nb, defer)
        return tuple(bool(defer[l]) for l in range(L))

    def busy_elsewhere(self):
        """Whether another thread than this one is training the network."""
        return self._busy > 0 and self._owner != PyThread_get_thread_ident()

    def claim(self):
        """Hold the network for this thread until release() (fit does, across epochs)."""
        self._claim()

    def release(self):
        self._release()

    def views(self, buffer):
        """[W0, b0, W1, b1, ...] as views into `buffer` (params or grads)."""
        out = []
        for l in range(self._lay.n_layers):
            i, o = self._sizes[l], self._sizes[l + 1]
            out.append(buffer[self._w_off[l]:self._w_off[l] + i * o].reshape(i, o))
            out.append(buffer[self._b_off[l]:self._b_off[l] + o])
        return out

    def set_head(self, int loss, double delta=1.0, metrics=(), bint labels=False,
                 bint weighted=False, double threshold=0.5):
        """The loss (fastdense.losses' id, Huber's δ), the metrics (ids) computed in the
        epoch loop, whether targets are class labels (one row) and whether a sample weight
        column follows them in the y that train_epoch, gradients and evaluate take."""
        cdef int L = self._lay.n_layers, out_act = self._acts[L - 1]
        if not 0 <= loss <= 5 or not delta > 0:
            raise ValueError(f"bad loss {loss} or delta {delta}")
        ids = np.asarray(list(metrics), dtype=np.intc).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() > 4):
            raise ValueError(f"bad metric ids {list(metrics)}")
        if labels and (loss != 5 or self._sizes[L] < 2):
            raise ValueError("class labels go with the sparse loss and several outputs")
        if loss == 5 and not labels:
            raise ValueError("the sparse loss takes class labels")
        if self._busy and self._owner != PyThread_get_thread_ident():
            raise RuntimeError("cannot change the loss while another thread trains the model")
        self._metric_ids = ids if ids.size else np.zeros(1, dtype=np.intc)
        self._lay.metric_ids = &self._metric_ids[0]
        self._lay.n_metrics = <int>ids.size
        self._lay.loss = loss
        self._lay.delta = delta
        self._lay.t_rows = 1 if labels else self._sizes[L]
        self._lay.weighted = weighted
        self._lay.threshold = threshold
        self._lay.fast_mse = loss == LOSS_MSE and not weighted \
            and (out_act == ACT_LINEAR or out_act == ACT_RELU)
        self._fast_y = loss <= 2 and not weighted
        self.head = (loss, delta, tuple(int(i) for i in ids), int(self._lay.t_rows),
                     bool(weighted), threshold)

    @property
    def y_columns(self):
        """Columns of the y that train_epoch, gradients and evaluate take: the targets (or
        one of labels), then one of sample weights when the head is weighted."""
        return self._lay.t_rows + self._lay.weighted

    @property
    def n_metrics(self):
        return self._lay.n_metrics

    cdef Py_ssize_t _per_row(self):
        return self._lay.scratch_off + 2

    cdef void _reserve(self, Py_ssize_t cap) except *:
        """Make the training workspace hold batches of `cap` rows (kept and reused)."""
        if cap > self._cap:
            check_fits(cap * self._per_row() * self.dtype.itemsize,
                       f"the training workspace for batches of {cap}")
            self._ws = aligned_empty(cap * self._per_row(), self.dtype)
            self._cap = cap

    cdef _check_xy(self, x, y):
        """X and y as train_epoch needs them: exact ndarrays of the model's dtype,
        C-contiguous, 2-D, of the model's widths and one non-zero length."""
        cdef Py_ssize_t L = self._lay.n_layers, ycols = self._lay.t_rows + self._lay.weighted
        if _is_matrix(x, self._typenum, self._sizes[0]) \
                and _is_matrix(y, self._typenum, ycols) \
                and cnp.PyArray_DIM(<cnp.ndarray>x, 0) == cnp.PyArray_DIM(<cnp.ndarray>y, 0) \
                and cnp.PyArray_DIM(<cnp.ndarray>x, 0) > 0:
            return
        for name, a, width in (("X", x, self._sizes[0]), ("y", y, ycols)):
            if not isinstance(a, np.ndarray) or a.dtype != self.dtype or a.ndim != 2 \
                    or not a.flags.c_contiguous:
                raise TypeError(f"{name} must be a C-contiguous 2-D {self.dtype} array")
            if a.shape[1] != width:
                raise ValueError(f"{name} has {a.shape[1]} columns, expected {width}")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"X and y differ in length: {x.shape[0]} != {y.shape[0]}")
        raise ValueError("no samples")

    def train_epoch(self, x, y, order, Py_ssize_t batch_size, config, state, lrs,
                    long long t_first, losses=None, metrics=None):
        """One epoch of minibatch updates in one nogil call. Returns (loss, done, stop):
        the mean over the epoch's samples of each batch's loss before its update, the
        number of updates applied, and why training stopped early: None (it did not),
        "diverged" (batch `done` had a non-finite loss or gradient; its update was not
        applied) or the exception a signal handler raised (Ctrl-C's KeyboardInterrupt)
        after `done` updates, for the caller to re-raise once its own state is up to date.

        `order`: the sample indices in training order (intp, each in [0, n));
        `config`: the optimizer's `_config()` tuple; `state`: its state arrays for the flat
        buffer; `lrs`: one learning rate (a float) or a float64 array of each batch's;
        `t_first`: the first update's t; `losses`: an optional float64 array receiving
        each batch's loss; `metrics`: an optional float64 array of n_metrics values to
        which each trained batch's per-sample metric sums are added (set_head's metrics,
        computed on each batch's output before its update). Everything is checked here,
        cheaply: this runs once an epoch.
        """
        self._check_xy(x, y)
        cdef Py_ssize_t n = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        cdef Py_ssize_t n_batches = (n + batch_size - 1) // batch_size
        if not (cnp.PyArray_CheckExact(order) and cnp.PyArray_NDIM(<cnp.ndarray>order) == 1
                and cnp.PyArray_TYPE(<cnp.ndarray>order) == cnp.NPY_INTP
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>order)
                and cnp.PyArray_DIM(<cnp.ndarray>order, 0) == n):
            raise ValueError(f"order must be a contiguous intp array of length {n}")
        cdef Py_ssize_t* op = <Py_ssize_t*>cnp.PyArray_DATA(<cnp.ndarray>order)
        cdef bint in_range
        with nogil:
            in_range = indices_below(op, n, n)
        if not in_range:
            raise ValueError(f"order holds indices outside [0, {n})")
        cdef double lr_value
        cdef double* lp
        cdef Py_ssize_t lr_stride = 1
        if isinstance(lrs, float):
            lr_value = lrs
            lp = &lr_value
            lr_stride = 0
        else:
            if not (cnp.PyArray_CheckExact(lrs) and cnp.PyArray_NDIM(<cnp.ndarray>lrs) == 1
                    and cnp.PyArray_TYPE(<cnp.ndarray>lrs) == cnp.NPY_FLOAT64
                    and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>lrs)
                    and cnp.PyArray_DIM(<cnp.ndarray>lrs, 0) >= n_batches):
                raise ValueError(f"lrs must be a float or a contiguous float64 array of "
                                 f"at least {n_batches} learning rates")
            lp = <double*>cnp.PyArray_DATA(<cnp.ndarray>lrs)
        if losses is None:
            losses = np.empty(n_batches, dtype=np.float64)
        elif not (cnp.PyArray_CheckExact(losses)
                  and cnp.PyArray_NDIM(<cnp.ndarray>losses) == 1
                  and cnp.PyArray_TYPE(<cnp.ndarray>losses) == cnp.NPY_FLOAT64
                  and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>losses)
                  and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>losses)
                  and cnp.PyArray_DIM(<cnp.ndarray>losses, 0) >= n_batches):
            raise ValueError(f"losses must be a writable contiguous float64 array of at "
                             f"least {n_batches} values")
        cdef double* msp = NULL
        if metrics is not None:
            if not (cnp.PyArray_CheckExact(metrics)
                    and cnp.PyArray_NDIM(<cnp.ndarray>metrics) == 1
                    and cnp.PyArray_TYPE(<cnp.ndarray>metrics) == cnp.NPY_FLOAT64
                    and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>metrics)
                    and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>metrics)
                    and cnp.PyArray_DIM(<cnp.ndarray>metrics, 0) == self._lay.n_metrics):
                raise ValueError(f"metrics must be a writable contiguous float64 array of "
                                 f"{self._lay.n_metrics} values")
            if self._lay.n_metrics:
                msp = <double*>cnp.PyArray_DATA(<cnp.ndarray>metrics)
        self._check_labels(y)
        if config is not self._config_key:
            self._cfg = self._make_config(config)
            self._config_key = config
        cdef StepConfig cfg = self._cfg
        self._check_state(state)
        cdef Py_ssize_t done
        cdef int status, i
        cdef double mean_loss
        cdef void* st[3]
        cdef Py_ssize_t bs = min(batch_size, n)
        cdef void* pp
        cdef void* gp
        cdef void* wp
        cdef void* xp = cnp.PyArray_DATA(<cnp.ndarray>x)
        cdef void* yp = cnp.PyArray_DATA(<cnp.ndarray>y)
        cdef double* outp = <double*>cnp.PyArray_DATA(<cnp.ndarray>losses)
        for i in range(3):
            st[i] = cnp.PyArray_DATA(<cnp.ndarray>state[i]) if i < len(state) else NULL
        cdef unsigned int csr
        self._claim()           # before the workspace may be reallocated
        try:
            self._reserve(bs)
            pp = cnp.PyArray_DATA(self.params)
            gp = cnp.PyArray_DATA(self.grads)
            wp = cnp.PyArray_DATA(self._ws)
            csr = fd_fp_enter(_flush_denormals)
            with nogil:
                if self._single:
                    done = train_epoch_core(
                        &self._lay, <float*>pp, <float*>gp, self.n_params, &self._seg[0],
                        2 * self._lay.n_layers, <float*>wp, self._cap, <float*>xp,
                        <float*>yp, op, n, bs, &cfg, <float**>st, lp, lr_stride, t_first,
                        outp, &mean_loss, &status, msp)
                else:
                    done = train_epoch_core(
                        &self._lay, <double*>pp, <double*>gp, self.n_params, &self._seg[0],
                        2 * self._lay.n_layers, <double*>wp, self._cap, <double*>xp,
                        <double*>yp, op, n, bs, &cfg, <double**>st, lp, lr_stride, t_first,
                        outp, &mean_loss, &status, msp)
            fd_fp_leave(csr)
        finally:
            self._release()
        return mean_loss, done, self._stop_reason(status, cfg.rule)

    cdef object _stop_reason(self, int status, int rule):
        if status == EPOCH_REFUSED:
            raise ValueError(f"the optimizer kernel refused rule {rule}")
        if status == EPOCH_DIVERGED:
            return "diverged"
        if status == EPOCH_INTERRUPTED:
            return _pending_signal.pop() if _pending_signal else KeyboardInterrupt()
        return None

    def train_batch(self, x, y, config, state, double lr, long long t):
        """One update on (x, y) as a single batch: returns (loss, done) as train_epoch does
        for one batch — or None when x or y is not already a finite, C-contiguous array of
        the model's dtype and shape (an ndarray exactly; y may be 1-D for one output): the
        caller then validates and converts, and calls train_epoch."""
        cdef Py_ssize_t L = self._lay.n_layers, n_in = self._sizes[0], k = self._sizes[L]
        if not (self._fast_y and cnp.PyArray_CheckExact(x) and cnp.PyArray_CheckExact(y)):
            return None
        cdef cnp.ndarray xa = <cnp.ndarray>x, ya = <cnp.ndarray>y
        if cnp.PyArray_NDIM(xa) != 2 or cnp.PyArray_TYPE(xa) != self._typenum \
                or not cnp.PyArray_IS_C_CONTIGUOUS(xa) or cnp.PyArray_DIM(xa, 1) != n_in:
            return None
        cdef Py_ssize_t n = cnp.PyArray_DIM(xa, 0)
        if n == 0 or cnp.PyArray_TYPE(ya) != self._typenum \
                or not cnp.PyArray_IS_C_CONTIGUOUS(ya) or cnp.PyArray_DIM(ya, 0) != n:
            return None
        if not ((cnp.PyArray_NDIM(ya) == 2 and cnp.PyArray_DIM(ya, 1) == k)
                or (cnp.PyArray_NDIM(ya) == 1 and k == 1)):
            return None
        cdef void* xp = cnp.PyArray_DATA(xa)
        cdef void* yp = cnp.PyArray_DATA(ya)
        cdef bint finite
        if self._single:
            finite = all_finite(<float*>xp, n * n_in) and all_finite(<float*>yp, n * k)
        else:
            finite = all_finite(<double*>xp, n * n_in) and all_finite(<double*>yp, n * k)
        if not finite:
            return None
        if config is not self._config_key:
            self._cfg = self._make_config(config)
            self._config_key = config
        cdef StepConfig cfg = self._cfg
        self._check_state(state)
        cdef void* st[3]
        cdef int i, status
        for i in range(3):
            st[i] = cnp.PyArray_DATA(state[i]) if i < len(state) else NULL
        cdef void* pp
        cdef void* gp
        cdef void* wp
        cdef Py_ssize_t* op
        cdef double loss = 0
        cdef Py_ssize_t done
        cdef unsigned int csr
        self._claim()           # before the workspace may be reallocated
        try:
            self._reserve(n)
            if self._identity is None or self._identity.shape[0] < n:
                self._identity = np.arange(self._cap, dtype=np.intp)
            pp = cnp.PyArray_DATA(self.params)
            gp = cnp.PyArray_DATA(self.grads)
            wp = cnp.PyArray_DATA(self._ws)
            op = <Py_ssize_t*>cnp.PyArray_DATA(self._identity)
            csr = fd_fp_enter(_flush_denormals)
            if n * self.n_params < NOGIL_MIN_WORK:     # too little work to repay a GIL release
                done = self._train_batch(pp, gp, wp, xp, yp, op, n, &cfg, st, &lr, t, &loss,
                                         &status)
            else:
                with nogil:
                    done = self._train_batch(pp, gp, wp, xp, yp, op, n, &cfg, st, &lr, t,
                                             &loss, &status)
            fd_fp_leave(csr)
        finally:
            self._release()
        self._stop_reason(status, cfg.rule)
        return loss, done

    cdef Py_ssize_t _train_batch(self, void* pp, void* gp, void* wp, void* xp, void* yp,
                                 Py_ssize_t* op, Py_ssize_t n, StepConfig* cfg, void** st,
                                 double* lr, long long t, double* loss,
                                 int* status) noexcept nogil:
        cdef double mean
        if self._single:
            return train_epoch_core(&self._lay, <float*>pp, <float*>gp, self.n_params,
                                    &self._seg[0], 2 * self._lay.n_layers, <float*>wp,
                                    self._cap, <float*>xp, <float*>yp, op, n, n, cfg,
                                    <float**>st, lr, 0, t, loss, &mean, status, NULL)
        return train_epoch_core(&self._lay, <double*>pp, <double*>gp, self.n_params,
                                &self._seg[0], 2 * self._lay.n_layers, <double*>wp,
                                self._cap, <double*>xp, <double*>yp, op, n, n, cfg,
                                <double**>st, lr, 0, t, loss, &mean, status, NULL)

    cdef _check_labels(self, y):
        """Class labels (the sparse head) must be whole numbers in [0, outputs) and sample
        weights finite and ≥ 0: the head indexes by the label. One pass over y, in C."""
        cdef Py_ssize_t k = self._sizes[self._lay.n_layers], n = y.shape[0], i
        cdef Py_ssize_t cols = self._lay.t_rows + self._lay.weighted
        cdef bint labels = self._lay.loss == 5, weighted = self._lay.weighted, bad = False
        cdef double v
        cdef float* fp
        cdef double* dp
        if not (labels or weighted):
            return
        if self._single:
            fp = <float*>cnp.PyArray_DATA(<cnp.ndarray>y)
            with nogil:
                for i in range(n):
                    if labels:
                        v = fp[i * cols]
                        bad |= not (v >= 0 and v < k and v == <double><Py_ssize_t>v)
                    if weighted:
                        v = fp[i * cols + cols - 1]
                        bad |= not (v >= 0 and v - v == 0)
        else:
            dp = <double*>cnp.PyArray_DATA(<cnp.ndarray>y)
            with nogil:
                for i in range(n):
                    if labels:
                        v = dp[i * cols]
                        bad |= not (v >= 0 and v < k and v == <double><Py_ssize_t>v)
                    if weighted:
                        v = dp[i * cols + cols - 1]
                        bad |= not (v >= 0 and v - v == 0)
        if bad:
            raise ValueError(f"y holds a class label outside [0, {k}) or not whole, or a "
                             f"negative or non-finite sample weight")

    def evaluate(self, x, y):
        """(Σᵢ wᵢ lᵢ / n + the regularisers' penalty, [metric means]) over the rows of x and
        y (as train_epoch takes them), through the compiled forward and head, in chunks,
        with a workspace of its own (so it may run beside predict)."""
        self._check_xy(x, y)
        self._check_labels(y)
        cdef Py_ssize_t n = x.shape[0], cap = min(n, DEF_PREDICT_ROWS)
        check_fits(cap * self._per_row() * self.dtype.itemsize, "the evaluation workspace")
        ws = aligned_empty(cap * self._per_row(), self.dtype)
        sums = np.zeros(max(self._lay.n_metrics, 1))
        cdef double[::1] sv = sums
        cdef void* wp = cnp.PyArray_DATA(ws)
        cdef void* pp = cnp.PyArray_DATA(self.params)
        cdef void* xp = cnp.PyArray_DATA(x)
        cdef void* yp = cnp.PyArray_DATA(y)
        cdef double total, pen = 0
        with nogil:
            if self._single:
                evaluate_core(&self._lay, <float*>pp, <float*>xp, <float*>yp, n, <float*>wp,
                              cap, &total, &sv[0])
                if self._lay.any_reg:
                    pen = penalty(&self._lay, <float*>pp, <float*>NULL)
            else:
                evaluate_core(&self._lay, <double*>pp, <double*>xp, <double*>yp, n,
                              <double*>wp, cap, &total, &sv[0])
                if self._lay.any_reg:
                    pen = penalty(&self._lay, <double*>pp, <double*>NULL)
        return total / n + pen, [float(v) / n for v in sums[:self._lay.n_metrics]]

    cdef _check_state(self, state):
        cdef cnp.ndarray a
        if len(state) > 3:
            raise ValueError("at most 3 state buffers")
        for s in state:
            if cnp.PyArray_CheckExact(s):
                a = <cnp.ndarray>s
                if cnp.PyArray_NDIM(a) == 1 and cnp.PyArray_TYPE(a) == self._typenum \
                        and cnp.PyArray_DIM(a, 0) == self.n_params \
                        and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISWRITEABLE(a):
                    continue
            if not isinstance(s, np.ndarray) or s.dtype != self.dtype \
                    or s.shape != (self.n_params,) or not s.flags.c_contiguous \
                    or not s.flags.writeable:
                raise ValueError(
                    f"optimizer state must be writable contiguous {self.dtype} arrays "
                    f"of {self.n_params} values")

    cdef StepConfig _make_config(self, config) except *:
        """The optimizer's `_config()` tuple as a checked StepConfig (updates.make_config);
        lr and t are set per update by the loop."""
        rule, h, clipnorm, clipvalue, global_clipnorm, weight_decay = config
        return make_config(rule, h, 0.0, 1, clipnorm, clipvalue, global_clipnorm,
                           weight_decay)

    def gradients(self, x, y):
        """(loss, gradient) of (x, y): the gradient a copy of `grads`, taken before another
        thread may train; parameters unchanged."""
        self._check_xy(x, y)
        self._check_labels(y)
        cdef Py_ssize_t n = x.shape[0]
        order = np.arange(n, dtype=np.intp)
        cdef Py_ssize_t* op = <Py_ssize_t*>cnp.PyArray_DATA(order)
        cdef void* pp = cnp.PyArray_DATA(self.params)
        cdef void* gp = cnp.PyArray_DATA(self.grads)
        cdef void* wp
        cdef void* xp = cnp.PyArray_DATA(x)
        cdef void* yp = cnp.PyArray_DATA(y)
        cdef double loss
        cdef unsigned int csr
        self._claim()           # the workspace and the gradient buffer are shared
        try:
            self._reserve(n)
            wp = cnp.PyArray_DATA(self._ws)
            csr = fd_fp_enter(_flush_denormals)
            with nogil:
                if self._single:
                    gather_batch(&self._lay, <float*>wp, self._cap, <float*>xp, <float*>yp,
                                 n, op, n)
                    loss = forward_backward(&self._lay, <float*>pp, <float*>gp, <float*>wp,
                                            self._cap, n, NULL, NULL)
                else:
                    gather_batch(&self._lay, <double*>wp, self._cap, <double*>xp,
                                 <double*>yp, n, op, n)
                    loss = forward_backward(&self._lay, <double*>pp, <double*>gp,
                                            <double*>wp, self._cap, n, NULL, NULL)
            fd_fp_leave(csr)
            grads = self.grads.copy()
        finally:
            self._release()
        return loss, grads

    def step_gradients(self, x, y, order, Py_ssize_t start, Py_ssize_t nb, out,
                       double scale):
        """The local part of one data-parallel update (fastdense.distributed): for the
        batch of rows order[start:start + nb] of (x, y) (as train_epoch takes them),
        out[:n_params] = scale × the gradient of its loss (regularisers included),
        out[n_params] = scale × that loss, and out[n_params + 1 + j] = the batch's sum of
        metric j (set_head's metrics, on the output before the update). nb = 0 (a rank
        whose shard is used up) writes zeros. Parameters unchanged. `out` is a writable
        contiguous array of the model's dtype of n_params + 1 + n_metrics values (or
        more): the buffer the ranks then sum."""
        self._check_xy(x, y)
        cdef Py_ssize_t n = cnp.PyArray_DIM(<cnp.ndarray>x, 0), i
        cdef Py_ssize_t P = self.n_params, M = self._lay.n_metrics
        if not (cnp.PyArray_CheckExact(out) and cnp.PyArray_NDIM(<cnp.ndarray>out) == 1
                and cnp.PyArray_TYPE(<cnp.ndarray>out) == self._typenum
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>out)
                and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out)
                and cnp.PyArray_DIM(<cnp.ndarray>out, 0) >= P + 1 + M):
            raise ValueError(f"out must be a writable contiguous {self.dtype} array of at "
                             f"least {P + 1 + M} values")
        if not (cnp.PyArray_CheckExact(order) and cnp.PyArray_NDIM(<cnp.ndarray>order) == 1
                and cnp.PyArray_TYPE(<cnp.ndarray>order) == cnp.NPY_INTP
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>order)
                and cnp.PyArray_DIM(<cnp.ndarray>order, 0) == n):
            raise ValueError(f"order must be a contiguous intp array of length {n}")
        if not (0 <= nb and 0 <= start and start + nb <= n):
            raise ValueError(f"rows [{start}, {start + nb}) are outside the {n} samples")
        if not (scale == scale and scale - scale == 0):
            raise ValueError(f"scale must be finite, got {scale}")
        cdef void* op_ = cnp.PyArray_DATA(<cnp.ndarray>out)
        if nb == 0:
            out[:P + 1 + M] = 0
            return
        cdef Py_ssize_t* op = <Py_ssize_t*>cnp.PyArray_DATA(<cnp.ndarray>order) + start
        cdef bint in_range
        with nogil:
            in_range = indices_below(op, nb, n)
        if not in_range:
            raise ValueError(f"order holds indices outside [0, {n})")
        cdef double msums[8]
        for i in range(8):
            msums[i] = 0
        if M > 8:
            raise ValueError("at most 8 metrics")
        cdef void* pp = cnp.PyArray_DATA(self.params)
        cdef void* wp
        cdef void* xp = cnp.PyArray_DATA(x)
        cdef void* yp = cnp.PyArray_DATA(y)
        cdef double loss
        cdef bint labels_ok = True
        cdef unsigned int csr
        self._claim()           # the workspace is shared
        try:
            self._reserve(nb)
            wp = cnp.PyArray_DATA(self._ws)
            csr = fd_fp_enter(_flush_denormals)
            with nogil:
                if self._single:
                    gather_batch(&self._lay, <float*>wp, self._cap, <float*>xp, <float*>yp,
                                 n, op, nb)
                    labels_ok = batch_targets_ok(&self._lay, <float*>wp, self._cap, nb)
                    if labels_ok:
                        loss = forward_backward(&self._lay, <float*>pp, <float*>op_,
                                                <float*>wp, self._cap, nb, msums, NULL)
                        scale_into(<float*>op_, P, scale, loss, msums, M)
                else:
                    gather_batch(&self._lay, <double*>wp, self._cap, <double*>xp,
                                 <double*>yp, n, op, nb)
                    labels_ok = batch_targets_ok(&self._lay, <double*>wp, self._cap, nb)
                    if labels_ok:
                        loss = forward_backward(&self._lay, <double*>pp, <double*>op_,
                                                <double*>wp, self._cap, nb, msums, NULL)
                        scale_into(<double*>op_, P, scale, loss, msums, M)
            fd_fp_leave(csr)
        finally:
            self._release()
        if not labels_ok:
            raise ValueError(f"y holds a class label outside [0, {self._sizes[self._lay.n_layers]}) "
                             f"or not whole, or a negative or non-finite sample weight")

    def apply_gradients(self, g, config, state, double lr, long long t):
        """One optimizer update of the parameters with the gradient g[:n_params] (a
        contiguous array of the model's dtype, such as the ranks' summed step_gradients
        buffer). Returns False, applying nothing, when that gradient is not finite (the
        divergence check of the epoch loop); True after the update."""
        if not (cnp.PyArray_CheckExact(g) and cnp.PyArray_NDIM(<cnp.ndarray>g) == 1
                and cnp.PyArray_TYPE(<cnp.ndarray>g) == self._typenum
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>g)
                and cnp.PyArray_DIM(<cnp.ndarray>g, 0) >= self.n_params):
            raise ValueError(f"g must be a contiguous {self.dtype} array of at least "
                             f"{self.n_params} values")
        if config is not self._config_key:
            self._cfg = self._make_config(config)
            self._config_key = config
        cdef StepConfig cfg = self._cfg
        self._check_state(state)
        cdef void* st[3]
        cdef int i, rc = 0
        for i in range(3):
            st[i] = cnp.PyArray_DATA(state[i]) if i < len(state) else NULL
        cdef void* pp = cnp.PyArray_DATA(self.params)
        cdef void* gp = cnp.PyArray_DATA(<cnp.ndarray>g)
        cdef bint finite
        cfg.lr = lr
        cfg.t = t
        cdef unsigned int csr
        self._claim()
        try:
            csr = fd_fp_enter(_flush_denormals)
            with nogil:
                if self._single:
                    finite = grads_finite(<float*>gp, self.n_params)
                    if finite:
                        rc = optimizer_step(&cfg, <float*>pp, <float*>gp, <float**>st,
                                            self.n_params, &self._seg[0],
                                            2 * self._lay.n_layers)
                else:
                    finite = grads_finite(<double*>gp, self.n_params)
                    if finite:
                        rc = optimizer_step(&cfg, <double*>pp, <double*>gp, <double**>st,
                                            self.n_params, &self._seg[0],
                                            2 * self._lay.n_layers)
            fd_fp_leave(csr)
        finally:
            self._release()
        if rc != 0:
            raise ValueError(f"the optimizer kernel refused rule {cfg.rule}")
        return bool(finite)

    def forward(self, x):
        """The network's output for the rows of x, as a new n × outputs array; or None when
        x is not already a finite, C-contiguous, 2-D array of the model's dtype and input
        width (an ndarray exactly, not a subclass): the caller then validates and
        converts it. So a well-formed input costs no conversion and no Python-level check.
        """
        if not cnp.PyArray_CheckExact(x):
            return None
        cdef cnp.ndarray arr = <cnp.ndarray>x
        cdef Py_ssize_t L = self._lay.n_layers, n_in = self._sizes[0]
        if cnp.PyArray_NDIM(arr) != 2 or cnp.PyArray_TYPE(arr) != self._typenum \
                or not cnp.PyArray_IS_C_CONTIGUOUS(arr) or cnp.PyArray_DIM(arr, 1) != n_in:
            return None
        cdef Py_ssize_t n = cnp.PyArray_DIM(arr, 0)
        cdef void* xp = cnp.PyArray_DATA(arr)
        cdef bint finite
        if self._single:
            finite = all_finite(<float*>xp, n * n_in)
        else:
            finite = all_finite(<double*>xp, n * n_in)
        if not finite:
            return None
        cdef cnp.npy_intp dims[2]
        dims[0] = n
        dims[1] = self._sizes[L]
        out = cnp.PyArray_EMPTY(2, dims, self._typenum, 0)
        if n == 0:
            return out
        cdef Py_ssize_t cap = min(n, DEF_PREDICT_ROWS), widest = self._widest
        cdef Py_ssize_t ws_size = cap * (n_in + 2 * widest + 1)
        # The workspace is local to the call (on the stack when small), so concurrent
        # predictions on one model share nothing mutable.
        cdef double stack_ws[STACK_WS + 8]        # + 64 bytes to start it on a 64-byte line
        cdef void* wp = <void*>((<size_t>stack_ws + 63) & ~(<size_t>63))
        if ws_size > STACK_WS:
            ws = aligned_empty(ws_size, self.dtype)
            wp = cnp.PyArray_DATA(ws)
        cdef void* pp = cnp.PyArray_DATA(self.params)
        cdef void* op = cnp.PyArray_DATA(out)
        if n * self.n_params < NOGIL_MIN_WORK:     # too little work to repay a GIL release
            self._forward(pp, xp, op, n, wp, cap)
        else:
            with nogil:
                self._forward(pp, xp, op, n, wp, cap)
        return out

    cdef void _forward(self, void* pp, void* xp, void* op, Py_ssize_t n, void* wp,
                       Py_ssize_t cap) noexcept nogil:
        if self._single:
            forward_core(&self._lay, <float*>pp, <float*>xp, <float*>op, n, <float*>wp,
                         cap, self._widest)
        else:
            forward_core(&self._lay, <double*>pp, <double*>xp, <double*>op, n,
                         <double*>wp, cap, self._widest)
