/* Feature-major dense kernels, written once for the type T (float or double) with the
 * name suffix SUF; included twice by fm_kernels.h.
 *
 * "Feature-major": an activation block of n samples and f features is stored f × n
 * (feature j of sample i at [j*n + i]), so every inner loop runs along the batch,
 * contiguous, and vectorises without reassociating any sum. Where a sum over the batch
 * is needed (dW, db), it is kept in FD_LANES(T) independent partial sums, one per vector
 * lane, combined at the end by a fixed tree: the result does not depend on the ISA the
 * loop was compiled for, apart from fused multiply-adds.
 *
 * Each kernel body is an always-inline function, instantiated below once per instruction
 * set (baseline x86-64, AVX2+FMA, AVX-512) with GCC target attributes; fm_kernels.h picks
 * one at run time. No -march flag is needed, so the build stays portable.
 */
#define FD_CAT_(a, b) a##_##b
#define FD_CAT(a, b) FD_CAT_(a, b)
#define FD(name) FD_CAT(name, SUF)
#define LANES (64 / (ptrdiff_t)sizeof(T))

/* acc[0] + … + acc[LANES-1] by a fixed tree (halves added lane-wise), unrolled so the
 * partial sums never leave the vector registers. */
FD_INLINE T
FD(fd_fold)(T *acc)
{
    ptrdiff_t u;
    if (LANES > 8)
        for (u = 0; u < 8; u++) acc[u] += acc[u + 8];
    for (u = 0; u < 4; u++) acc[u] += acc[u + 4];
    for (u = 0; u < 2; u++) acc[u] += acc[u + 2];
    return acc[0] + acc[1];
}

FD_INLINE T
FD(fd_dot)(const T *restrict x, const T *restrict y, ptrdiff_t n)
{
    T acc[64 / sizeof(T)], tail = 0;
    ptrdiff_t i, u;
    for (u = 0; u < LANES; u++) acc[u] = 0;
    for (i = 0; i + LANES <= n; i += LANES)
        for (u = 0; u < LANES; u++) acc[u] += x[i + u] * y[i + u];
    for (; i < n; i++) tail += x[i] * y[i];
    return FD(fd_fold)(acc) + tail;
}

FD_INLINE T
FD(fd_sum)(const T *restrict x, ptrdiff_t n)
{
    T acc[64 / sizeof(T)], tail = 0;
    ptrdiff_t i, u;
    for (u = 0; u < LANES; u++) acc[u] = 0;
    for (i = 0; i + LANES <= n; i += LANES)
        for (u = 0; u < LANES; u++) acc[u] += x[i + u];
    for (; i < n; i++) tail += x[i];
    return FD(fd_fold)(acc) + tail;
}

/* ------------------------------------------------------------------ activations
 * Ids as fastdense/activations.py (FD_ACT_* in fm_kernels.h). Elementwise forms in place;
 * the derivatives of ReLU … softplus come from the output y = f(z), GELU's from z.
 * libm's functions of the type (FDM), scalar: exact, and no fast-math. */
#define FD_SQRT_2_PI ((T)0.79788456080286535588)       /* √(2/π) */
#define FD_INV_SQRT_2PI ((T)0.39894228040143267794)    /* 1/√(2π) */
#define FD_SQRT1_2 ((T)0.70710678118654752440)         /* 1/√2 */
#define FD_GELU_C ((T)0.044715)

FD_INLINE T
FD(fd_sigmoid)(T z)
{
    if (z >= 0) return (T)1 / ((T)1 + FDM(exp)(-z));
    const T e = FDM(exp)(z);
    return e / ((T)1 + e);
}

/* z[i] ← f(z[i]) for the elementwise activations (softmax is not elementwise: none). */
FD_INLINE void
FD(act_apply_body)(T *restrict z, ptrdiff_t m, int act, T alpha)
{
    ptrdiff_t i;
    switch (act) {
    case FD_ACT_RELU:
        for (i = 0; i < m; i++) z[i] = z[i] < 0 ? (T)0 : z[i];
        break;
    case FD_ACT_LEAKY_RELU:
        for (i = 0; i < m; i++) z[i] = z[i] > 0 ? z[i] : alpha * z[i];
        break;
    case FD_ACT_ELU:
        for (i = 0; i < m; i++) z[i] = z[i] > 0 ? z[i] : alpha * FDM(expm1)(z[i]);
        break;
    case FD_ACT_TANH:
        for (i = 0; i < m; i++) z[i] = FDM(tanh)(z[i]);
        break;
    case FD_ACT_SIGMOID:
        for (i = 0; i < m; i++) z[i] = FD(fd_sigmoid)(z[i]);
        break;
    case FD_ACT_SOFTPLUS:
        for (i = 0; i < m; i++) {
            const T v = z[i];
            z[i] = (v > 0 ? v : (T)0) + FDM(log1p)(FDM(exp)(-FDM(fabs)(v)));
        }
        break;
    case FD_ACT_GELU:
        for (i = 0; i < m; i++) z[i] = (T)0.5 * z[i] * ((T)1 + FDM(erf)(z[i] * FD_SQRT1_2));
        break;
    case FD_ACT_GELU_TANH:
        for (i = 0; i < m; i++) {
            const T v = z[i];
            z[i] = (T)0.5 * v * ((T)1 + FDM(tanh)(FD_SQRT_2_PI * (v + FD_GELU_C * v * v * v)));
        }
        break;
    default:
        break;
    }
}

/* d[i] ← d[i]·f'(z[i]) where y[i] = f(z[i]) is the activation's output (ReLU, leaky ReLU,
 * ELU, tanh, sigmoid, softplus; the others: unchanged). ReLU's `> 0` keeps a NaN's
 * gradient NaN-free only where y is NaN: the mask then zeroes it, as the forward passed it. */
FD_INLINE void
FD(act_grad_mul_body)(T *restrict d, const T *restrict y, ptrdiff_t m, int act, T alpha)
{
    ptrdiff_t i;
    switch (act) {
    case FD_ACT_RELU:
        for (i = 0; i < m; i++) d[i] = y[i] > 0 ? d[i] : (T)0;
        break;
    case FD_ACT_LEAKY_RELU:
        for (i = 0; i < m; i++) d[i] = y[i] > 0 ? d[i] : alpha * d[i];
        break;
    case FD_ACT_ELU:
        for (i = 0; i < m; i++) d[i] = y[i] < 0 ? d[i] * (y[i] + alpha) : d[i];
        break;
    case FD_ACT_TANH:
        for (i = 0; i < m; i++) d[i] *= (T)1 - y[i] * y[i];
        break;
    case FD_ACT_SIGMOID:
        for (i = 0; i < m; i++) d[i] *= y[i] * ((T)1 - y[i]);
        break;
    case FD_ACT_SOFTPLUS:
        for (i = 0; i < m; i++) d[i] *= -FDM(expm1)(-y[i]);
        break;
    default:
        break;
    }
}

/* d[i] ← d[i]·gelu'(z[i]) from the pre-activation z (exact erf form, or the tanh one). */
FD_INLINE void
FD(gelu_grad_mul_body)(T *restrict d, const T *restrict z, ptrdiff_t m, int approximate)
{
    ptrdiff_t i;
    if (!approximate) {
        for (i = 0; i < m; i++) {
            const T v = z[i];
            const T cdf = (T)0.5 * ((T)1 + FDM(erf)(v * FD_SQRT1_2));
            d[i] *= cdf + v * FD_INV_SQRT_2PI * FDM(exp)((T)-0.5 * v * v);
        }
        return;
    }
    for (i = 0; i < m; i++) {
        const T v = z[i];
        const T t = FDM(tanh)(FD_SQRT_2_PI * (v + FD_GELU_C * v * v * v));
        d[i] *= (T)0.5 * ((T)1 + t)
              + (T)0.5 * v * ((T)1 - t * t) * FD_SQRT_2_PI * ((T)1 + (T)3 * FD_GELU_C * v * v);
    }
}

/* x[i] ← e^x[i] by the head's exp (fd_exp_row_f / fd_exp_row_d). For tests
 * (dense.head_exp_checked). */
FD_INLINE void
FD(head_exp_body)(T *restrict x, ptrdiff_t m)
{
    FD(fd_exp_row)(x, x, NULL, m);
}

/* Softmax over each column of the feature-major Z (k × n) in place, stably (the column's
 * maximum subtracted first); scratch: n values. The exponentials are fd_exp_row's, as the
 * cross-entropy head's (fm_head.h), which does the same operations in the same order: fit's
 * softmax output equals predict's. */
FD_INLINE void
FD(softmax_fm_body)(T *restrict z, ptrdiff_t k, ptrdiff_t n, T *restrict scratch)
{
    ptrdiff_t i, j;
    T *restrict top = scratch;
    for (i = 0; i < n; i++) top[i] = z[i];
    for (j = 1; j < k; j++)
        for (i = 0; i < n; i++) top[i] = z[j * n + i] > top[i] ? z[j * n + i] : top[i];
    for (j = 0; j < k; j++)
        FD(fd_exp_row)(z + j * n, z + j * n, top, n);
    for (i = 0; i < n; i++) top[i] = z[i];
    for (j = 1; j < k; j++)
        for (i = 0; i < n; i++) top[i] += z[j * n + i];
    for (j = 0; j < k; j++)
        for (i = 0; i < n; i++) z[j * n + i] /= top[i];
}

/* Samples per register block: two 512-bit vectors (four AVX2, eight SSE registers). */
#define CHUNK (128 / (ptrdiff_t)sizeof(T))

/* The forward's whole blocks of CHUNK samples: samples [0, end) of A (row stride n). */
FD_INLINE void
FD(fm_forward_blocks)(const T *restrict a, const T *restrict w, const T *restrict b,
                      T *restrict z, ptrdiff_t n, ptrdiff_t end, ptrdiff_t n_in,
                      ptrdiff_t n_out, int act, T alpha)
{
    ptrdiff_t i0 = 0, u;
    for (; i0 < end; i0 += CHUNK) {
        ptrdiff_t j = 0;
        /* eight outputs at a time (then four, then one): each input row loaded once per
         * block feeds eight independent chains of multiply-adds */
        for (; j + 8 <= n_out; j += 8) {
            T acc[8][128 / sizeof(T)];
            for (int q = 0; q < 8; q++)
                for (u = 0; u < CHUNK; u++) acc[q][u] = b[j + q];
            for (ptrdiff_t k = 0; k < n_in; k++) {
                const T *restrict wk = w + k * n_out + j;
                const T *restrict ak = a + k * n + i0;
                for (int q = 0; q < 8; q++) {
                    const T wq = wk[q];
                    for (u = 0; u < CHUNK; u++) acc[q][u] += wq * ak[u];
                }
            }
            for (int q = 0; q < 8; q++) {
                T *restrict zq = z + (j + q) * n + i0;
                if (act == FD_ACT_RELU)
                    for (u = 0; u < CHUNK; u++) zq[u] = acc[q][u] < 0 ? (T)0 : acc[q][u];
                else {
                    for (u = 0; u < CHUNK; u++) zq[u] = acc[q][u];
                    if (act > FD_ACT_RELU) FD(act_apply_body)(zq, CHUNK, act, alpha);
                }
            }
        }
        for (; j + 4 <= n_out; j += 4) {
            T acc0[128 / sizeof(T)], acc1[128 / sizeof(T)];
            T acc2[128 / sizeof(T)], acc3[128 / sizeof(T)];
            for (u = 0; u < CHUNK; u++) {
                acc0[u] = b[j];
                acc1[u] = b[j + 1];
                acc2[u] = b[j + 2];
                acc3[u] = b[j + 3];
            }
            for (ptrdiff_t k = 0; k < n_in; k++) {
                const T *restrict wk = w + k * n_out + j;
                const T w0 = wk[0], w1 = wk[1], w2 = wk[2], w3 = wk[3];
                const T *restrict ak = a + k * n + i0;
                for (u = 0; u < CHUNK; u++) {
                    acc0[u] += w0 * ak[u];
                    acc1[u] += w1 * ak[u];
                    acc2[u] += w2 * ak[u];
                    acc3[u] += w3 * ak[u];
                }
            }
            T *restrict z0 = z + j * n + i0;
            T *restrict z1 = z0 + n;
            T *restrict z2 = z1 + n;
            T *restrict z3 = z2 + n;
            if (act == FD_ACT_RELU)
                for (u = 0; u < CHUNK; u++) {
                    z0[u] = acc0[u] < 0 ? (T)0 : acc0[u];
                    z1[u] = acc1[u] < 0 ? (T)0 : acc1[u];
                    z2[u] = acc2[u] < 0 ? (T)0 : acc2[u];
                    z3[u] = acc3[u] < 0 ? (T)0 : acc3[u];
                }
            else
                for (u = 0; u < CHUNK; u++) {
                    z0[u] = acc0[u];
                    z1[u] = acc1[u];
                    z2[u] = acc2[u];
                    z3[u] = acc3[u];
                }
            if (act > FD_ACT_RELU)
                for (int q = 0; q < 4; q++) FD(act_apply_body)(z0 + q * n, CHUNK, act, alpha);
        }
        for (; j < n_out; j++) {
            T acc[128 / sizeof(T)];
            for (u = 0; u < CHUNK; u++) acc[u] = b[j];
            for (ptrdiff_t k = 0; k < n_in; k++) {
                const T wkj = w[k * n_out + j];
                const T *restrict ak = a + k * n + i0;
                for (u = 0; u < CHUNK; u++) acc[u] += wkj * ak[u];
            }
            T *restrict zj = z + j * n + i0;
            /* `< 0` rather than `> 0`: a NaN stays NaN, so divergence shows */
            if (act == FD_ACT_RELU)
                for (u = 0; u < CHUNK; u++) zj[u] = acc[u] < 0 ? (T)0 : acc[u];
            else {
                for (u = 0; u < CHUNK; u++) zj[u] = acc[u];
                if (act > FD_ACT_RELU) FD(act_apply_body)(zj, CHUNK, act, alpha);
            }
        }
    }
}

/* Rows and outputs up to this many take a partial last block through zero-padded copies,
 * so it runs the whole-block loops; wider layers add it sample by sample. */
#define TAIL_MAX 32

/* One sample, outputs [j0, j0 + width): held in registers across the whole sum over the
 * inputs (one load and one multiply-add per vector of W, no load or store of z); width
 * is a constant at each call (at most four vectors), so the loops unroll. */
FD_INLINE void
FD(fm_forward1_block)(const T *restrict a, const T *restrict w, const T *restrict b,
                      T *restrict z, ptrdiff_t n_in, ptrdiff_t n_out, ptrdiff_t j0,
                      const ptrdiff_t width)
{
    T acc[4 * LANES];
    ptrdiff_t u;
    for (u = 0; u < width; u++) acc[u] = b[j0 + u];
    for (ptrdiff_t k = 0; k < n_in; k++) {
        const T ak = a[k];
        const T *restrict wk = w + k * n_out + j0;
        for (u = 0; u < width; u++) acc[u] += ak * wk[u];
    }
    for (u = 0; u < width; u++) z[j0 + u] = acc[u];
}

/* Z = act(Wᵀ·A + b): A n_in × n, W n_in × n_out (row-major), Z n_out × n.
 * Blocks of CHUNK samples are accumulated in registers across the whole sum over k. */
FD_INLINE void
FD(fm_forward_body)(const T *restrict a, const T *restrict w, const T *restrict b,
                    T *restrict z, ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out, int act, T alpha)
{
    ptrdiff_t i0 = 0, u;
    if (n == 1) {               /* one sample: vectorise along the outputs instead */
        ptrdiff_t j0 = 0;
        for (; j0 + 4 * LANES <= n_out; j0 += 4 * LANES)
            FD(fm_forward1_block)(a, w, b, z, n_in, n_out, j0, 4 * LANES);
        for (; j0 + LANES <= n_out; j0 += LANES)
            FD(fm_forward1_block)(a, w, b, z, n_in, n_out, j0, LANES);
        if (j0 < n_out) {
            for (ptrdiff_t j = j0; j < n_out; j++) z[j] = b[j];
            for (ptrdiff_t k = 0; k < n_in; k++) {
                const T ak = a[k];
                const T *restrict wk = w + k * n_out;
                for (ptrdiff_t j = j0; j < n_out; j++) z[j] += ak * wk[j];
            }
        }
        if (act == FD_ACT_RELU)
            for (ptrdiff_t j = 0; j < n_out; j++) z[j] = z[j] < 0 ? (T)0 : z[j];
        else if (act > FD_ACT_RELU)
            FD(act_apply_body)(z, n_out, act, alpha);
        return;
    }
    const ptrdiff_t full = n - n % CHUNK;
    FD(fm_forward_blocks)(a, w, b, z, n, full, n_in, n_out, act, alpha);
    i0 = full;
    if (i0 == n) return;
    if (n_in <= TAIL_MAX && n_out <= TAIL_MAX) {
        T ta[TAIL_MAX * (128 / sizeof(T))], tz[TAIL_MAX * (128 / sizeof(T))];
        const ptrdiff_t r = n - i0;
        for (ptrdiff_t k = 0; k < n_in; k++)
            for (u = 0; u < CHUNK; u++) ta[k * CHUNK + u] = u < r ? a[k * n + i0 + u] : (T)0;
        FD(fm_forward_blocks)(ta, w, b, tz, CHUNK, CHUNK, n_in, n_out, act, alpha);
        for (ptrdiff_t j = 0; j < n_out; j++)
            for (u = 0; u < CHUNK; u++)
                if (u < r) z[j * n + i0 + u] = tz[j * CHUNK + u];
        return;
    }
    for (ptrdiff_t j = 0; j < n_out; j++) {          /* the last, partial block */
        T *restrict zj = z + j * n;
        const T bj = b[j];
        for (ptrdiff_t i = i0; i < n; i++) zj[i] = bj;
        for (ptrdiff_t k = 0; k < n_in; k++) {
            const T wkj = w[k * n_out + j];
            const T *restrict ak = a + k * n;
            for (ptrdiff_t i = i0; i < n; i++) zj[i] += wkj * ak[i];
        }
        if (act == FD_ACT_RELU)
            for (ptrdiff_t i = i0; i < n; i++) zj[i] = zj[i] < 0 ? (T)0 : zj[i];
        else if (act > FD_ACT_RELU)
            FD(act_apply_body)(zj + i0, n - i0, act, alpha);
    }
}

#if FD_VECTOR_EXT
#define WG_BYTES 16
#define WG_VT VT16
#define WG_TSUM TSUM16
#define WG_TRANS TRANS16
#include "fm_param_grads.h"
#undef WG_BYTES
#undef WG_VT
#undef WG_TSUM
#undef WG_TRANS
#define WG_BYTES 32
#define WG_VT VT32
#define WG_TSUM TSUM32
#define WG_TRANS TRANS32
#include "fm_param_grads.h"
#undef WG_BYTES
#undef WG_VT
#undef WG_TSUM
#undef WG_TRANS
#define WG_BYTES 64
#define WG_VT VT64
#define WG_TSUM TSUM64
#define WG_TRANS TRANS64
#include "fm_param_grads.h"
#undef WG_BYTES
#undef WG_VT
#undef WG_TSUM
#undef WG_TRANS
#else
/* [dW; dbᵀ] = [A; 1]·Dᵀ, one dot product (or sum) over the batch per entry: the portable
 * body, for compilers without GCC's vector extensions. */
FD_INLINE void
FD(fm_param_grads_plain)(const T *restrict a, const T *restrict d, T *restrict dw,
                         T *restrict db, ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out)
{
    for (ptrdiff_t k = 0; k < n_in; k++)
        for (ptrdiff_t j = 0; j < n_out; j++)
            dw[k * n_out + j] = FD(fd_dot)(a + k * n, d + j * n, n);
    for (ptrdiff_t j = 0; j < n_out; j++) db[j] = FD(fd_sum)(d + j * n, n);
}
#endif

#if FD_VECTOR_EXT
#define MK_BYTES 16
#define MK_VT VT16
#define MK_TRANS TRANS16
#include "fm_gemm.h"
#undef MK_BYTES
#undef MK_VT
#undef MK_TRANS
#define MK_BYTES 32
#define MK_VT VT32
#define MK_TRANS TRANS32
#include "fm_gemm.h"
#undef MK_BYTES
#undef MK_VT
#undef MK_TRANS
#define MK_BYTES 64
#define MK_VT VT64
#define MK_TRANS TRANS64
#include "fm_gemm.h"
#undef MK_BYTES
#undef MK_VT
#undef MK_TRANS

/* The register-blocked products of fm_gemm.h for one layer (the caller keeps n_in and
 * n_out ≤ FD_MK_MAX_K): Z = act(Wᵀ·A + b); dA = (W·D) ⊙ f'(A); dW = A·Dᵀ with db = D·1
 * (A sample-major when a_rows). vbytes: the instruction set's vector width. */
FD_INLINE void
FD(mk_forward_body)(const T *restrict a, const T *restrict w, const T *restrict b,
                    T *restrict z, ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out, int act,
                    T alpha, int vbytes)
{
    if (vbytes == 64)
        FD(mk_run_64)(w, 1, n_out, a, n, n_in, z, n, n_out, n, MK_EPI_FWD, 0, b, act, alpha,
                      NULL, 0, 0);
    else if (vbytes == 32)
        FD(mk_run_32)(w, 1, n_out, a, n, n_in, z, n, n_out, n, MK_EPI_FWD, 0, b, act, alpha,
                      NULL, 0, 0);
    else
        FD(mk_run_16)(w, 1, n_out, a, n, n_in, z, n, n_out, n, MK_EPI_FWD, 0, b, act, alpha,
                      NULL, 0, 0);
}

FD_INLINE void
FD(mk_backward_body)(const T *restrict a, const T *restrict w, const T *restrict d,
                     T *restrict dw, T *restrict db, T *restrict da, ptrdiff_t n,
                     ptrdiff_t n_in, ptrdiff_t n_out, int act_a, T alpha_a, int a_rows,
                     int vbytes)
{
    if (!dw) {}                 /* no weight gradient (its update comes later: mk_sgd) */
    else if (vbytes == 64) FD(mk_dw_64)(a, d, dw, db, n, n_in, n_out, a_rows, 0, 0);
    else if (vbytes == 32) FD(mk_dw_32)(a, d, dw, db, n, n_in, n_out, a_rows, 0, 0);
    else FD(mk_dw_16)(a, d, dw, db, n, n_in, n_out, a_rows, 0, 0);
    if (!da) return;
    if (vbytes == 64)
        FD(mk_run_64)(w, n_out, 1, d, n, n_out, da, n, n_in, n, MK_EPI_DGRAD, 0, NULL, act_a,
                      alpha_a, a, n, 0);
    else if (vbytes == 32)
        FD(mk_run_32)(w, n_out, 1, d, n, n_out, da, n, n_in, n, MK_EPI_DGRAD, 0, NULL, act_a,
                      alpha_a, a, n, 0);
    else
        FD(mk_run_16)(w, n_out, 1, d, n, n_out, da, n, n_in, n, MK_EPI_DGRAD, 0, NULL, act_a,
                      alpha_a, a, n, 0);
}

/* Plain SGD on W from A and D without storing the gradient: W ← W − lr·A·Dᵀ, one chunk of
 * samples at a time (mk_dw's sgd; the bias is the caller's). */
FD_INLINE void
FD(mk_sgd_body)(const T *restrict a, const T *restrict d, T *restrict w, T lr, ptrdiff_t n,
                ptrdiff_t n_in, ptrdiff_t n_out, int a_rows, int vbytes)
{
    if (vbytes == 64) FD(mk_dw_64)(a, d, w, NULL, n, n_in, n_out, a_rows, lr, 1);
    else if (vbytes == 32) FD(mk_dw_32)(a, d, w, NULL, n, n_in, n_out, a_rows, lr, 1);
    else FD(mk_dw_16)(a, d, w, NULL, n, n_in, n_out, a_rows, lr, 1);
}
#else
/* Without GCC's vector extensions: the products go to BLAS (FD_HAVE_MK is 0). */
FD_INLINE void
FD(mk_forward_body)(const T *restrict a, const T *restrict w, const T *restrict b,
                    T *restrict z, ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out, int act,
                    T alpha, int vbytes)
{
    (void)vbytes;
    FD(fm_forward_body)(a, w, b, z, n, n_in, n_out, act, alpha);
}

FD_INLINE void
FD(mk_backward_body)(const T *restrict a, const T *restrict w, const T *restrict d,
                     T *restrict dw, T *restrict db, T *restrict da, ptrdiff_t n,
                     ptrdiff_t n_in, ptrdiff_t n_out, int act_a, T alpha_a, int a_rows,
                     int vbytes)
{
    (void)a; (void)w; (void)d; (void)dw; (void)db; (void)da; (void)n; (void)n_in;
    (void)n_out; (void)act_a; (void)alpha_a; (void)a_rows; (void)vbytes;
}

FD_INLINE void
FD(mk_sgd_body)(const T *restrict a, const T *restrict d, T *restrict w, T lr, ptrdiff_t n,
                ptrdiff_t n_in, ptrdiff_t n_out, int a_rows, int vbytes)
{
    (void)a; (void)d; (void)w; (void)lr; (void)n; (void)n_in; (void)n_out; (void)a_rows;
    (void)vbytes;
}
#endif

/* D ← D ⊙ [A > 0] elementwise (A a ReLU's output, so A > 0 exactly where it passed). */
FD_INLINE void
FD(relu_mask_body)(T *restrict d, const T *restrict a, ptrdiff_t size)
{
    for (ptrdiff_t i = 0; i < size; i++) d[i] = a[i] > 0 ? d[i] : (T)0;
}

/* dA = (W·D) ⊙ [A > 0] (mask when relu_a) for the whole blocks of CHUNK samples in
 * [0, end) (row stride n): per input k, a sum over the outputs along the batch. */
FD_INLINE void
FD(fm_dgrad_blocks)(const T *restrict a, const T *restrict w, const T *restrict d,
                    T *restrict da, ptrdiff_t n, ptrdiff_t end, ptrdiff_t n_in,
                    ptrdiff_t n_out, int act_a, T alpha_a)
{
    ptrdiff_t i0, u;
    for (i0 = 0; i0 < end; i0 += CHUNK) {
        for (ptrdiff_t k = 0; k < n_in; k++) {
            T acc[128 / sizeof(T)];
            for (u = 0; u < CHUNK; u++) acc[u] = 0;
            for (ptrdiff_t j = 0; j < n_out; j++) {
                const T wkj = w[k * n_out + j];
                const T *restrict dj = d + j * n + i0;
                for (u = 0; u < CHUNK; u++) acc[u] += wkj * dj[u];
            }
            T *restrict dak = da + k * n + i0;
            const T *restrict ak = a + k * n + i0;
            if (act_a == FD_ACT_RELU)
                for (u = 0; u < CHUNK; u++) dak[u] = ak[u] > 0 ? acc[u] : (T)0;
            else {
                for (u = 0; u < CHUNK; u++) dak[u] = acc[u];
                if (act_a > FD_ACT_RELU) FD(act_grad_mul_body)(dak, ak, CHUNK, act_a, alpha_a);
            }
        }
    }
}

/* One sample: db = d and dA = (W·d) ⊙ f'(A) (none when da is NULL), by dots along the
 * outputs; everything of the batch-1 backward but the weight gradient (fm_outer1). */
FD_INLINE void
FD(fm_backward1_body)(const T *restrict a, const T *restrict w, const T *restrict d,
                      T *restrict db, T *restrict da, ptrdiff_t n_in, ptrdiff_t n_out,
                      int act_a, T alpha_a)
{
    for (ptrdiff_t j = 0; j < n_out; j++) db[j] = d[j];
    if (!da) return;
    if (n_out == 1) {           /* one output: dA = w·d₀, no sums */
        const T d0 = d[0];
        for (ptrdiff_t k = 0; k < n_in; k++) {
            const T s = w[k] * d0;
            da[k] = (act_a == FD_ACT_RELU && !(a[k] > 0)) ? (T)0 : s;
        }
        if (act_a > FD_ACT_RELU) FD(act_grad_mul_body)(da, a, n_in, act_a, alpha_a);
        return;
    }
    for (ptrdiff_t k = 0; k < n_in; k++) {
        const T s = FD(fd_dot)(w + k * n_out, d, n_out);
        da[k] = (act_a == FD_ACT_RELU && !(a[k] > 0)) ? (T)0 : s;
    }
    if (act_a > FD_ACT_RELU) FD(act_grad_mul_body)(da, a, n_in, act_a, alpha_a);
}

/* One sample's weight gradient: dW = a ⊗ d (n_in × n_out). */
FD_INLINE void
FD(fm_outer1_body)(const T *restrict a, const T *restrict d, T *restrict dw,
                   ptrdiff_t n_in, ptrdiff_t n_out)
{
    if (n_out == 1) {           /* one output: one vector pass along the inputs */
        const T d0 = d[0];
        for (ptrdiff_t k = 0; k < n_in; k++) dw[k] = a[k] * d0;
        return;
    }
    for (ptrdiff_t k = 0; k < n_in; k++) {
        const T ak = a[k];
        T *restrict dwk = dw + k * n_out;
        for (ptrdiff_t j = 0; j < n_out; j++) dwk[j] = ak * d[j];
    }
}

/* Plain SGD fused with one sample's gradient, never stored: W ← W − lr·(a ⊗ d) and
 * b ← b − lr·d. Each value is what fm_outer1 then the update's SGD loop give (the product
 * a[k]·d[j] rounded, then p − lr·g, fused or not as that loop is on the same instruction
 * set), except that the rows where a[k] == 0 (a ReLU's zeros) are left alone: their
 * products are ±0, which change no weight but a −0.0 one (to +0.0; equal values). A
 * one-output layer updates every row in one vector pass (its rows are single values). */
FD_INLINE void
FD(sgd_outer1_body)(T *restrict w, T *restrict b, const T *restrict a, const T *restrict d,
                    T lr, ptrdiff_t n_in, ptrdiff_t n_out)
{
    for (ptrdiff_t j = 0; j < n_out; j++) b[j] = b[j] - lr * d[j];
    if (n_out == 1) {           /* one output: one vector pass, no row worth a branch */
        const T d0 = d[0];
        for (ptrdiff_t k = 0; k < n_in; k++) {
            const T g = a[k] * d0;
            w[k] = w[k] - lr * g;
        }
        return;
    }
    for (ptrdiff_t k = 0; k < n_in; k++) {
        const T ak = a[k];
        if (ak == 0) continue;
        T *restrict wk = w + k * n_out;
        for (ptrdiff_t j = 0; j < n_out; j++) {
            const T g = ak * d[j];
            wk[j] = wk[j] - lr * g;
        }
    }
}

/* dW = A·Dᵀ, db = D·1, dA = (W·D) ⊙ [A > 0] (mask when relu_a; skipped when da is NULL).
 * D n_out × n is the gradient at this layer's pre-activation; A its input. */
FD_INLINE void
FD(fm_backward_body)(const T *restrict a, const T *restrict w, const T *restrict d,
                     T *restrict dw, T *restrict db, T *restrict da,
                     ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out, int act_a, T alpha_a, int vbytes)
{
    if (n == 1) {               /* one sample: outer product and dot along the outputs */
        FD(fm_outer1_body)(a, d, dw, n_in, n_out);
        FD(fm_backward1_body)(a, w, d, db, da, n_in, n_out, act_a, alpha_a);
        return;
    }
    if (n_out == 1) {           /* one output (a regression head): one pass over the inputs */
        db[0] = FD(fd_sum)(d, n);
        for (ptrdiff_t k = 0; k < n_in; k++) {
            const T *restrict ak = a + k * n;
            dw[k] = FD(fd_dot)(ak, d, n);
            if (!da) continue;
            const T wk = w[k];
            T *restrict dak = da + k * n;
            if (act_a == FD_ACT_RELU && vbytes == 64) {  /* one pass of masked multiplies */
                for (ptrdiff_t i = 0; i < n; i++) {
                    const T v = wk * d[i];
                    dak[i] = ak[i] > 0 ? v : (T)0;
                }
            } else {                    /* (without AVX-512 the select would stay scalar) */
                for (ptrdiff_t i = 0; i < n; i++) dak[i] = wk * d[i];
                if (act_a != FD_ACT_LINEAR) FD(act_grad_mul_body)(dak, ak, n, act_a, alpha_a);
            }
        }
        return;
    }
    /* vbytes, the instruction set's vector width, is a constant in each instantiation */
#if FD_VECTOR_EXT
    /* outer products: on AVX-512 for any width from FD_OUTER_MIN_OUT outputs; on narrower
     * vectors while the outputs fit in two (float) or one (double) of them (beyond, the
     * transposing sums measured faster) */
    if (n_out >= FD_OUTER_MIN_OUT
        && (vbytes == 64 || n_out * (ptrdiff_t)sizeof(T) <= (sizeof(T) == 4 ? 2 : 1) * vbytes)) {
        /* float layers up to a vector of outputs run code compiled for their exact width */
#define FD_OUTER_CASE(c) case c: FD(fm_param_grads_outer_64)(a, d, dw, db, n, n_in, c); break;
#define FD_OUTER_CASE32(c) case c: FD(fm_param_grads_outer_32)(a, d, dw, db, n, n_in, c); break;
        if (vbytes == 64 && sizeof(T) == 4) {
            switch (n_out) {
            FD_WIDTHS_5_16(FD_OUTER_CASE)
            default: FD(fm_param_grads_outer_64)(a, d, dw, db, n, n_in, n_out);
            }
        }
        else if (vbytes == 64) FD(fm_param_grads_outer_64)(a, d, dw, db, n, n_in, n_out);
        else if (vbytes == 32 && sizeof(T) == 4) {
            switch (n_out) {
            FD_WIDTHS_5_16(FD_OUTER_CASE32)
            default: FD(fm_param_grads_outer_32)(a, d, dw, db, n, n_in, n_out);
            }
        }
        else if (vbytes == 32) FD(fm_param_grads_outer_32)(a, d, dw, db, n, n_in, n_out);
        else FD(fm_param_grads_outer_16)(a, d, dw, db, n, n_in, n_out);
#undef FD_OUTER_CASE
#undef FD_OUTER_CASE32
    }
    else if (vbytes == 64) FD(fm_param_grads_64)(a, d, dw, db, n, n_in, n_out);
    else if (vbytes == 32) FD(fm_param_grads_32)(a, d, dw, db, n, n_in, n_out);
    else FD(fm_param_grads_16)(a, d, dw, db, n, n_in, n_out);
#else
    (void)vbytes;
    FD(fm_param_grads_plain)(a, d, dw, db, n, n_in, n_out);
#endif
    if (!da) return;
    ptrdiff_t i0 = n - n % CHUNK, u;
#define FD_DGRAD_CASE(c) case c: FD(fm_dgrad_blocks)(a, w, d, da, n, i0, n_in, c, act_a, alpha_a); break;
    if (sizeof(T) == 4) {       /* float, 2 to 16 outputs: compiled for the exact width */
        switch (n_out) {
        FD_WIDTHS_2_4(FD_DGRAD_CASE)
        FD_WIDTHS_5_8(FD_DGRAD_CASE)
        FD_WIDTHS_9_16(FD_DGRAD_CASE)
        default: FD(fm_dgrad_blocks)(a, w, d, da, n, i0, n_in, n_out, act_a, alpha_a);
        }
    }
    else FD(fm_dgrad_blocks)(a, w, d, da, n, i0, n_in, n_out, act_a, alpha_a);
#undef FD_DGRAD_CASE
    if (i0 == n) return;
    if (n_in <= TAIL_MAX && n_out <= TAIL_MAX) {        /* the last block, zero-padded */
        T ta[TAIL_MAX * (128 / sizeof(T))], td[TAIL_MAX * (128 / sizeof(T))];
        T tda[TAIL_MAX * (128 / sizeof(T))];
        const ptrdiff_t r = n - i0;
        for (ptrdiff_t j = 0; j < n_out; j++)
            for (u = 0; u < CHUNK; u++) td[j * CHUNK + u] = u < r ? d[j * n + i0 + u] : (T)0;
        if (act_a != FD_ACT_LINEAR)
            for (ptrdiff_t k = 0; k < n_in; k++)
                for (u = 0; u < CHUNK; u++) ta[k * CHUNK + u] = u < r ? a[k * n + i0 + u] : (T)0;
        FD(fm_dgrad_blocks)(ta, w, td, tda, CHUNK, CHUNK, n_in, n_out, act_a, alpha_a);
        for (ptrdiff_t k = 0; k < n_in; k++)
            for (u = 0; u < CHUNK; u++)
                if (u < r) da[k * n + i0 + u] = tda[k * CHUNK + u];
        return;
    }
    for (ptrdiff_t k = 0; k < n_in; k++) {              /* the last, partial block */
        T *restrict dak = da + k * n;
        const T *restrict ak = a + k * n;
        for (ptrdiff_t i = i0; i < n; i++) dak[i] = 0;
        for (ptrdiff_t j = 0; j < n_out; j++) {
            const T wkj = w[k * n_out + j];
            const T *restrict dj = d + j * n;
            for (ptrdiff_t i = i0; i < n; i++) dak[i] += wkj * dj[i];
        }
        if (act_a == FD_ACT_RELU)
            for (ptrdiff_t i = i0; i < n; i++) dak[i] = ak[i] > 0 ? dak[i] : (T)0;
        else if (act_a > FD_ACT_RELU)
            FD(act_grad_mul_body)(dak + i0, ak + i0, n - i0, act_a, alpha_a);
    }
}

/* Z[j, :] = act(Z[j, :] + b[j]) for the n_out rows of Z (after a BLAS product). */
FD_INLINE void
FD(fm_bias_act_body)(T *restrict z, const T *restrict b, ptrdiff_t n, ptrdiff_t n_out, int act, T alpha)
{
    for (ptrdiff_t j = 0; j < n_out; j++) {
        T *restrict zj = z + j * n;
        const T bj = b[j];
        if (act == FD_ACT_RELU)
            for (ptrdiff_t i = 0; i < n; i++) { T v = zj[i] + bj; zj[i] = v < 0 ? (T)0 : v; }
        else {
            for (ptrdiff_t i = 0; i < n; i++) zj[i] += bj;
            if (act > FD_ACT_RELU) FD(act_apply_body)(zj, n, act, alpha);
        }
    }
}

/* out[j] = Σ_i D[j, i] for the rows of D (rows × n). */
FD_INLINE void
FD(fm_row_sums_body)(const T *restrict d, T *restrict out, ptrdiff_t rows, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < rows; j++) out[j] = FD(fd_sum)(d + j * n, n);
}


/* *out = Σ|x[i]| summed in double, in LANES independent lanes (so it vectorises without
 * reassociation): finite exactly when every x[i] is (no double sum of float values can
 * overflow; a double x with Σ|x| > DBL_MAX gives +Inf, which callers treat as unproved). */
FD_INLINE void
FD(abs_sum_body)(const T *restrict x, ptrdiff_t size, double *restrict out)
{
    double acc[64 / sizeof(T)], tail = 0;
    ptrdiff_t i, u;
    for (u = 0; u < LANES; u++) acc[u] = 0;
    for (i = 0; i + LANES <= size; i += LANES)
        for (u = 0; u < LANES; u++) acc[u] += (double)FDM(fabs)(x[i + u]);
    for (; i < size; i++) tail += (double)FDM(fabs)(x[i]);
    for (u = 1; u < LANES; u++) acc[0] += acc[u];
    *out = acc[0] + tail;
}

/* *ok = 1 when no value of x is NaN or ±Inf (v − v is 0 exactly for finite v), else 0.
 * An integer OR of the tests, so the loop vectorises without reassociating a float sum. */
FD_INLINE void
FD(all_finite_body)(const T *restrict x, ptrdiff_t size, int *restrict ok)
{
    int bad = 0;
    for (ptrdiff_t i = 0; i < size; i++) bad |= (x[i] - x[i]) != 0;
    *ok = !bad;
}


FD_DISPATCHED(fm_forward,
            (const T *restrict a, const T *restrict w, const T *restrict b, T *restrict z,
             ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out, int act, T alpha),
            (a, w, b, z, n, n_in, n_out, act, alpha))

FD_DISPATCHED(fm_backward1,
            (const T *restrict a, const T *restrict w, const T *restrict d, T *restrict db,
             T *restrict da, ptrdiff_t n_in, ptrdiff_t n_out, int act_a, T alpha_a),
            (a, w, d, db, da, n_in, n_out, act_a, alpha_a))

FD_DISPATCHED(fm_outer1,
            (const T *restrict a, const T *restrict d, T *restrict dw, ptrdiff_t n_in,
             ptrdiff_t n_out),
            (a, d, dw, n_in, n_out))

FD_DISPATCHED(sgd_outer1,
            (T *restrict w, T *restrict b, const T *restrict a, const T *restrict d, T lr,
             ptrdiff_t n_in, ptrdiff_t n_out),
            (w, b, a, d, lr, n_in, n_out))

/* fm_backward and gather_t: like FD_DISPATCHED, but each copy also gets its vector width. */
#define FD_BWD_PARAMS (const T *restrict a, const T *restrict w, const T *restrict d,     \
                       T *restrict dw, T *restrict db, T *restrict da,                    \
                       ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out, int act_a, T alpha_a)
#define FD_BWD_ARGS(vb) (a, w, d, dw, db, da, n, n_in, n_out, act_a, alpha_a, vb)
#define FD_BWD_CALL (a, w, d, dw, db, da, n, n_in, n_out, act_a, alpha_a)
FD_DISPATCHED_VB(fm_backward, FD_BWD_PARAMS, FD_BWD_CALL, FD_BWD_ARGS)
#undef FD_BWD_PARAMS
#undef FD_BWD_ARGS
#undef FD_BWD_CALL

#define FD_MKF_PARAMS (const T *restrict a, const T *restrict w, const T *restrict b,      \
                       T *restrict z, ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out, int act, \
                       T alpha)
#define FD_MKF_ARGS(vb) (a, w, b, z, n, n_in, n_out, act, alpha, vb)
#define FD_MKF_CALL (a, w, b, z, n, n_in, n_out, act, alpha)
FD_DISPATCHED_VB(mk_forward, FD_MKF_PARAMS, FD_MKF_CALL, FD_MKF_ARGS)
#undef FD_MKF_PARAMS
#undef FD_MKF_ARGS
#undef FD_MKF_CALL
#define FD_MKB_PARAMS (const T *restrict a, const T *restrict w, const T *restrict d,     \
                       T *restrict dw, T *restrict db, T *restrict da, ptrdiff_t n,       \
                       ptrdiff_t n_in, ptrdiff_t n_out, int act_a, T alpha_a, int a_rows)
#define FD_MKB_ARGS(vb) (a, w, d, dw, db, da, n, n_in, n_out, act_a, alpha_a, a_rows, vb)
#define FD_MKB_CALL (a, w, d, dw, db, da, n, n_in, n_out, act_a, alpha_a, a_rows)
FD_DISPATCHED_VB(mk_backward, FD_MKB_PARAMS, FD_MKB_CALL, FD_MKB_ARGS)
#undef FD_MKB_PARAMS
#undef FD_MKB_ARGS
#undef FD_MKB_CALL
#define FD_MKS_PARAMS (const T *restrict a, const T *restrict d, T *restrict w, T lr,      \
                       ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out, int a_rows)
#define FD_MKS_ARGS(vb) (a, d, w, lr, n, n_in, n_out, a_rows, vb)
#define FD_MKS_CALL (a, d, w, lr, n, n_in, n_out, a_rows)
FD_DISPATCHED_VB(mk_sgd, FD_MKS_PARAMS, FD_MKS_CALL, FD_MKS_ARGS)
#undef FD_MKS_PARAMS
#undef FD_MKS_ARGS
#undef FD_MKS_CALL

/* dst (width × count, feature-major) = the rows `rows` (NULL: 0 … count − 1) of the
 * row-major src (src_rows × width): the shuffled batch's inputs, or predict's chunk. */
FD_INLINE void
FD(gather_t_body)(T *restrict dst, const T *restrict src, const ptrdiff_t *restrict rows,
                  ptrdiff_t count, ptrdiff_t width, ptrdiff_t src_rows, int vbytes)
{
#if FD_VECTOR_EXT
    if (width > 1 && (width * (ptrdiff_t)sizeof(T) <= vbytes || count >= vbytes / (ptrdiff_t)sizeof(T))) {
        if (vbytes == 64) FD(fm_gather_t_64)(dst, src, rows, count, width, src_rows);
        else if (vbytes == 32) FD(fm_gather_t_32)(dst, src, rows, count, width, src_rows);
        else FD(fm_gather_t_16)(dst, src, rows, count, width, src_rows);
        return;
    }
#else
    (void)vbytes;
#endif
    (void)src_rows;
    for (ptrdiff_t r = 0; r < count; r++) {
        const T *restrict row = src + (rows ? rows[r] : r) * width;
        for (ptrdiff_t q = 0; q < width; q++) dst[q * count + r] = row[q];
    }
}

#define FD_GT_PARAMS (T *restrict dst, const T *restrict src, const ptrdiff_t *restrict rows, \
                      ptrdiff_t count, ptrdiff_t width, ptrdiff_t src_rows)
#define FD_GT_ARGS(vb) (dst, src, rows, count, width, src_rows, vb)
#define FD_GT_CALL (dst, src, rows, count, width, src_rows)
FD_DISPATCHED_VB(gather_t, FD_GT_PARAMS, FD_GT_CALL, FD_GT_ARGS)
#undef FD_GT_PARAMS
#undef FD_GT_ARGS
#undef FD_GT_CALL

FD_DISPATCHED(fm_bias_act,
            (T *restrict z, const T *restrict b, ptrdiff_t n, ptrdiff_t n_out, int act, T alpha),
            (z, b, n, n_out, act, alpha))

FD_DISPATCHED(fm_row_sums,
            (const T *restrict d, T *restrict out, ptrdiff_t rows, ptrdiff_t n),
            (d, out, rows, n))

FD_DISPATCHED(all_finite, (const T *restrict x, ptrdiff_t size, int *restrict ok),
            (x, size, ok))

FD_DISPATCHED(abs_sum, (const T *restrict x, ptrdiff_t size, double *restrict out),
            (x, size, out))

FD_DISPATCHED(relu_mask, (T *restrict d, const T *restrict a, ptrdiff_t size),
            (d, a, size))

FD_DISPATCHED(act_grad_mul,
            (T *restrict d, const T *restrict y, ptrdiff_t size, int act, T alpha),
            (d, y, size, act, alpha))

FD_DISPATCHED(act_apply, (T *restrict z, ptrdiff_t size, int act, T alpha),
            (z, size, act, alpha))

FD_DISPATCHED(softmax_fm, (T *restrict z, ptrdiff_t k, ptrdiff_t n, T *restrict scratch),
            (z, k, n, scratch))

FD_DISPATCHED(head_exp, (T *restrict x, ptrdiff_t m), (x, m))

FD_DISPATCHED(gelu_grad_mul,
            (T *restrict d, const T *restrict z, ptrdiff_t size, int approximate),
            (d, z, size, approximate))

#include "fm_head.h"

#undef FD_SQRT_2_PI
#undef FD_INV_SQRT_2PI
#undef FD_SQRT1_2
#undef FD_GELU_C
#undef CHUNK
#undef TAIL_MAX
#undef LANES
#undef FD
#undef FD_CAT
#undef FD_CAT_
