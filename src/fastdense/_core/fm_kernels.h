/* Run-time dispatch of the feature-major kernels (see fm_template.h). */
#ifndef FASTDENSE_FM_KERNELS_H
#define FASTDENSE_FM_KERNELS_H
#include <stddef.h>
#include <string.h>

/* Portability. GCC on x86-64 gets everything below: GCC vector extensions for the weight
 * gradients and one copy of each loop per instruction set, picked at run time. Elsewhere
 * the loops are plain C99 (on MSVC with __restrict and __forceinline), compiled once:
 *   FD_VECTOR_EXT    GCC's vector_size types and __builtin_shuffle (Clang has no
 *                    __builtin_shuffle, MSVC neither); without them the weight gradients
 *                    are one dot product per entry (fm_param_grads_plain);
 *   FD_X86_DISPATCH  GCC target attributes and __builtin_cpu_supports on x86-64.
 * Either can be forced to 0 with -D to build and test the portable path on any machine. */
#ifndef FD_VECTOR_EXT
#if defined(__GNUC__) && !defined(__clang__)
#define FD_VECTOR_EXT 1
#else
#define FD_VECTOR_EXT 0
#endif
#endif
/* (FD_X86_DISPATCH is defined in fd_isa.h.) */
/* Layers with at least this many outputs get their weight gradients by outer products
 * (fm_param_grads_outer_*), the others by transposing sums (fm_param_grads_*). */
/* Width lists for switch statements that give narrow float layers code compiled for their
 * exact number of outputs (loops fully unrolled, addresses folded): shape specialisation,
 * as a JIT would do, for the widths where it measured worth it (2-16). */
#define FD_WIDTHS_2_4(X) X(2) X(3) X(4)
#define FD_WIDTHS_5_8(X) X(5) X(6) X(7) X(8)
#define FD_WIDTHS_9_16(X) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16)
#define FD_WIDTHS_5_16(X) FD_WIDTHS_5_8(X) FD_WIDTHS_9_16(X)
/* fm_gemm.h's register-blocked products exist (they need the vector extensions); the
 * longest sum they take (their padded tails live on the stack). */
#define FD_HAVE_MK FD_VECTOR_EXT
#define FD_MK_MAX_K 512
#ifndef FD_OUTER_MIN_OUT
#define FD_OUTER_MIN_OUT 5
#endif
#if defined(__GNUC__) || defined(__clang__)
#define FD_INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define FD_INLINE static __forceinline
#else
#define FD_INLINE static inline
#endif
/* MSVC's C has `restrict` only under /std:c11; __restrict means the same. Defined after
 * the system headers (whose __declspec(restrict) it would break) and undefined at the end. */
#if defined(_MSC_VER) && !defined(__clang__)
#define restrict __restrict
#define FD_UNDEF_RESTRICT
#endif

#include "fd_isa.h"
#include <math.h>

/* Activation ids: fastdense/activations.py's (checked at import by dense.pyx). */
enum { FD_ACT_LINEAR = 0, FD_ACT_RELU = 1, FD_ACT_LEAKY_RELU = 2, FD_ACT_ELU = 3,
       FD_ACT_TANH = 4, FD_ACT_SIGMOID = 5, FD_ACT_SOFTPLUS = 6, FD_ACT_GELU = 7,
       FD_ACT_GELU_TANH = 8, FD_ACT_SOFTMAX = 9 };
/* Loss and metric ids: fastdense/losses.py's and metrics.py's (fm_head.h). */
enum { FD_LOSS_MSE = 0, FD_LOSS_MAE = 1, FD_LOSS_HUBER = 2, FD_LOSS_BCE = 3, FD_LOSS_CCE = 4,
       FD_LOSS_SPARSE_CCE = 5 };
enum { FD_METRIC_MSE = 0, FD_METRIC_MAE = 1, FD_METRIC_BINARY_ACCURACY = 2,
       FD_METRIC_CATEGORICAL_ACCURACY = 3, FD_METRIC_SPARSE_CATEGORICAL_ACCURACY = 4 };


#if FD_VECTOR_EXT
/* Vectors of 16, 32 and 64 bytes (GCC vector extensions): the native width of SSE, AVX2
 * and AVX-512. Sums over the batch are kept in them lane by lane. */
typedef float fd_f4 __attribute__((vector_size(16)));
typedef float fd_f8 __attribute__((vector_size(32)));
typedef float fd_f16 __attribute__((vector_size(64)));
typedef double fd_d2 __attribute__((vector_size(16)));
typedef double fd_d4 __attribute__((vector_size(32)));
typedef double fd_d8 __attribute__((vector_size(64)));
typedef int fd_i4 __attribute__((vector_size(16)));
typedef int fd_i8 __attribute__((vector_size(32)));
typedef int fd_i16 __attribute__((vector_size(64)));
typedef long long fd_l2 __attribute__((vector_size(16)));
typedef long long fd_l4 __attribute__((vector_size(32)));
typedef long long fd_l8 __attribute__((vector_size(64)));

/* One level of a transposing sum: out[p] = lo(in[2p], in[2p+1]) + hi(in[2p], in[2p+1]),
 * where lo takes the first and hi the second half of each block of partial sums. */
#define FD_TSUM_LEVEL(out, in, count, lo, hi)                                        \
    for (int p_ = 0; p_ < (count); p_++)                                             \
        out[p_] = __builtin_shuffle(in[2 * p_], in[2 * p_ + 1], lo)                    \
                + __builtin_shuffle(in[2 * p_], in[2 * p_ + 1], hi);

/* fd_tsum_X(v): v holds L vectors of L partial sums (L lanes each); returns one vector
 * whose lane q is the total of v[q]. log2(L) levels of shuffles and adds replace L
 * separate horizontal reductions. */
FD_INLINE fd_f16 fd_tsum_f16(const fd_f16 *v)
{
    const fd_i16 a1 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
    const fd_i16 b1 = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
    const fd_i16 a2 = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
    const fd_i16 b2 = {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};
    const fd_i16 a3 = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
    const fd_i16 b3 = {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31};
    const fd_i16 a4 = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
    const fd_i16 b4 = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
    fd_f16 w[8], x[4], y[2], z[1];
    FD_TSUM_LEVEL(w, v, 8, a1, b1)
    FD_TSUM_LEVEL(x, w, 4, a2, b2)
    FD_TSUM_LEVEL(y, x, 2, a3, b3)
    FD_TSUM_LEVEL(z, y, 1, a4, b4)
    return z[0];
}

#define FD_TSUM8(name, VT, VI)                                                       \
    FD_INLINE VT name(const VT *v)               \
    {                                                                                \
        const VI a1 = {0, 1, 2, 3, 8, 9, 10, 11}, b1 = {4, 5, 6, 7, 12, 13, 14, 15};   \
        const VI a2 = {0, 1, 4, 5, 8, 9, 12, 13}, b2 = {2, 3, 6, 7, 10, 11, 14, 15};   \
        const VI a3 = {0, 2, 4, 6, 8, 10, 12, 14}, b3 = {1, 3, 5, 7, 9, 11, 13, 15};   \
        VT w[4], x[2], y[1];                                                         \
        FD_TSUM_LEVEL(w, v, 4, a1, b1)                                               \
        FD_TSUM_LEVEL(x, w, 2, a2, b2)                                               \
        FD_TSUM_LEVEL(y, x, 1, a3, b3)                                               \
        return y[0];                                                                 \
    }
#define FD_TSUM4(name, VT, VI)                                                       \
    FD_INLINE VT name(const VT *v)               \
    {                                                                                \
        const VI a1 = {0, 1, 4, 5}, b1 = {2, 3, 6, 7};                                 \
        const VI a2 = {0, 2, 4, 6}, b2 = {1, 3, 5, 7};                                 \
        VT w[2], x[1];                                                               \
        FD_TSUM_LEVEL(w, v, 2, a1, b1)                                               \
        FD_TSUM_LEVEL(x, w, 1, a2, b2)                                               \
        return x[0];                                                                 \
    }
FD_TSUM8(fd_tsum_f8, fd_f8, fd_i8)
FD_TSUM8(fd_tsum_d8, fd_d8, fd_l8)
FD_TSUM4(fd_tsum_f4, fd_f4, fd_i4)
FD_TSUM4(fd_tsum_d4, fd_d4, fd_l4)

FD_INLINE fd_d2 fd_tsum_d2(const fd_d2 *v)
{
    const fd_l2 a1 = {0, 2}, b1 = {1, 3};
    fd_d2 w[1];
    FD_TSUM_LEVEL(w, v, 1, a1, b1)
    return w[0];
}

/* fd_transpose_X(v): v holds L vectors of L lanes, a square block (row p in v[p]);
 * transposes it in place. log2(L) rounds of the perfect shuffle: round out[2p] =
 * zip_lo(v[p], v[p + L/2]) and out[2p+1] = zip_hi(…), L two-source shuffles a round. */
#define FD_TRANSPOSE_ROUNDS(VT, L)                                                   \
    for (int r_ = 1; r_ < (L); r_ *= 2) {                                            \
        VT w_[L];                                                                    \
        for (int p_ = 0; p_ < (L) / 2; p_++) {                                       \
            w_[2 * p_] = __builtin_shuffle(v[p_], v[p_ + (L) / 2], lo);              \
            w_[2 * p_ + 1] = __builtin_shuffle(v[p_], v[p_ + (L) / 2], hi);          \
        }                                                                            \
        for (int p_ = 0; p_ < (L); p_++) v[p_] = w_[p_];                             \
    }
/* Rounds of the in-lane transposes below: shuffles of pairs of vectors from `src` into
 * `dst` with the masks lo and hi (L vectors of L lanes):
 *   ADJ: vectors 2p and 2p+1;  QUAD: b and b+2, b+1 and b+3 in each group of four;
 *   HALF(d): b+i and b+d+i in each group of 2d. */
#define FD_ROUND_ADJ(dst, src, L, lo, hi)                                            \
    for (int p_ = 0; p_ < (L) / 2; p_++) {                                          \
        dst[2 * p_] = __builtin_shuffle(src[2 * p_], src[2 * p_ + 1], lo);          \
        dst[2 * p_ + 1] = __builtin_shuffle(src[2 * p_], src[2 * p_ + 1], hi);      \
    }
#define FD_ROUND_QUAD(dst, src, L, lo, hi)                                           \
    for (int b_ = 0; b_ < (L); b_ += 4) {                                           \
        dst[b_] = __builtin_shuffle(src[b_], src[b_ + 2], lo);                      \
        dst[b_ + 1] = __builtin_shuffle(src[b_], src[b_ + 2], hi);                  \
        dst[b_ + 2] = __builtin_shuffle(src[b_ + 1], src[b_ + 3], lo);              \
        dst[b_ + 3] = __builtin_shuffle(src[b_ + 1], src[b_ + 3], hi);              \
    }
#define FD_ROUND_HALF(dst, src, L, d, lo, hi)                                        \
    for (int b_ = 0; b_ < (L); b_ += 2 * (d))                                       \
        for (int i_ = 0; i_ < (d); i_++) {                                          \
            dst[b_ + i_] = __builtin_shuffle(src[b_ + i_], src[b_ + (d) + i_], lo);  \
            dst[b_ + (d) + i_] = __builtin_shuffle(src[b_ + i_], src[b_ + (d) + i_], hi); \
        }

/* Square blocks of 16 floats (AVX-512), 8 floats (AVX2) and 8 or 4 doubles: in-lane
 * unpacks first, then 128-bit block shuffles: masks the compiler emits as vunpck*,
 * vshuff*x* and vperm2f128 rather than the slower two-source lane permutes. */
FD_INLINE void fd_transpose_f16(fd_f16 *v)
{
    const fd_i16 ulps = {0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29};
    const fd_i16 uhps = {2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31};
    const fd_i16 ulpd = {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29};
    const fd_i16 uhpd = {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31};
    const fd_i16 s88 = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
    const fd_i16 sdd = {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};
    fd_f16 t[16];
    FD_ROUND_ADJ(t, v, 16, ulps, uhps)
    FD_ROUND_QUAD(v, t, 16, ulpd, uhpd)
    FD_ROUND_HALF(t, v, 16, 4, s88, sdd)
    FD_ROUND_HALF(v, t, 16, 8, s88, sdd)
}
FD_INLINE void fd_transpose_f8(fd_f8 *v)
{
    const fd_i8 ulps = {0, 8, 1, 9, 4, 12, 5, 13}, uhps = {2, 10, 3, 11, 6, 14, 7, 15};
    const fd_i8 ulpd = {0, 1, 8, 9, 4, 5, 12, 13}, uhpd = {2, 3, 10, 11, 6, 7, 14, 15};
    const fd_i8 p20 = {0, 1, 2, 3, 8, 9, 10, 11}, p31 = {4, 5, 6, 7, 12, 13, 14, 15};
    fd_f8 t[8];
    FD_ROUND_ADJ(t, v, 8, ulps, uhps)
    FD_ROUND_QUAD(v, t, 8, ulpd, uhpd)
    FD_ROUND_HALF(t, v, 8, 4, p20, p31)
    for (int i = 0; i < 8; i++) v[i] = t[i];
}
FD_INLINE void fd_transpose_f4(fd_f4 *v)
{
    const fd_i4 lo = {0, 4, 1, 5}, hi = {2, 6, 3, 7};
    FD_TRANSPOSE_ROUNDS(fd_f4, 4)
}
FD_INLINE void fd_transpose_d8(fd_d8 *v)
{
    const fd_l8 ulpd = {0, 8, 2, 10, 4, 12, 6, 14}, uhpd = {1, 9, 3, 11, 5, 13, 7, 15};
    const fd_l8 s88 = {0, 1, 8, 9, 4, 5, 12, 13}, sdd = {2, 3, 10, 11, 6, 7, 14, 15};
    const fd_l8 h_lo = {0, 1, 2, 3, 8, 9, 10, 11}, h_hi = {4, 5, 6, 7, 12, 13, 14, 15};
    fd_d8 t[8];
    FD_ROUND_ADJ(t, v, 8, ulpd, uhpd)
    FD_ROUND_HALF(v, t, 8, 2, s88, sdd)
    FD_ROUND_HALF(t, v, 8, 4, h_lo, h_hi)
    for (int i = 0; i < 8; i++) v[i] = t[i];
}
FD_INLINE void fd_transpose_d4(fd_d4 *v)
{
    const fd_l4 ulpd = {0, 4, 2, 6}, uhpd = {1, 5, 3, 7};
    const fd_l4 h_lo = {0, 1, 4, 5}, h_hi = {2, 3, 6, 7};
    fd_d4 t[4];
    FD_ROUND_ADJ(t, v, 4, ulpd, uhpd)
    FD_ROUND_HALF(v, t, 4, 2, h_lo, h_hi)
}
FD_INLINE void fd_transpose_d2(fd_d2 *v)
{
    const fd_l2 lo = {0, 2}, hi = {1, 3};
    FD_TRANSPOSE_ROUNDS(fd_d2, 2)
}
#endif /* FD_VECTOR_EXT */

/* fd_expf(x): e^x for float, at most 1 ulp from the correctly rounded value over the
 * whole float range (tests/test_head_exp.py), with libm's results at the edges: +inf and
 * x > 88.72… give +inf, -inf and x < -103.97… give 0 (subnormals between, rounded once),
 * NaN gives NaN. The exp of the head's softmax and cross-entropy (fm_head.h) and of
 * softmax_fm_body, by rows (fd_exp_row_f: 16 samples at a time in vectors; doubles keep
 * libm's exp, fd_exp_row_d).
 * Computed in double: Cody-Waite reduction x = k·ln2 + r, |r| ≤ ln2/2 (k by the 1.5·2^52
 * rounding trick, whose low bits then hold k; ln2 in two parts, k·hi exact), e^r by a
 * degree-8 minimax polynomial 1 + r + r²·q(r) (relative error 2^-39.7 on the interval,
 * Remez), 2^k by building the exponent bits, and one rounding of the double result to
 * float: the correctly rounded value except within ~2^-39 of a halfway case. The clamp to
 * [-110, 100] keeps k in double's normal range (e^-110 rounds to 0 as a float, e^100 to
 * +inf) and lets a NaN through (its comparisons are false). The clamp is written with
 * masks on GCC's vectors: as scalar selects GCC threads it into branches, and a loop with
 * branches does not vectorise. */
#define FD_EXPF_LO (-110.0)
#define FD_EXPF_HI 100.0
#define FD_EXPF_SHIFT 6755399441055744.0               /* 1.5·2^52 */
#define FD_EXPF_LOG2E 1.4426950408889634074
#define FD_EXPF_LN2HI 0.693147180369123816490          /* ln2's first 32 bits */
#define FD_EXPF_LN2LO 1.90821492927058770002e-10       /* ln2 − hi */
/* e^r on |r| ≤ ln2/2 as 1 + r + r²·q(r) (the form for a scalar or vector r) */
#define FD_EXPF_POLY(r, q, p)                                                        \
    q = (r) * 2.470828934082065e-05 + 1.9908938928043756e-04;                       \
    q = q * (r) + 1.3889197128697781e-03;                                            \
    q = q * (r) + 8.3332818081085400e-03;                                            \
    q = q * (r) + 4.1666664405090340e-02;                                            \
    q = q * (r) + 1.6666666784441747e-01;                                            \
    q = q * (r) + 5.0000000004268070e-01;                                            \
    p = 1.0 + ((r) + ((r) * (r)) * q);

FD_INLINE float fd_expf(float x)
{
    double xd = (double)x, q, p, s;
    xd = xd < FD_EXPF_LO ? FD_EXPF_LO : xd;
    xd = xd > FD_EXPF_HI ? FD_EXPF_HI : xd;
    double kd = xd * FD_EXPF_LOG2E + FD_EXPF_SHIFT;
    unsigned long long kbits, sbits;
    memcpy(&kbits, &kd, sizeof kd);
    kd -= FD_EXPF_SHIFT;
    const double r = (xd - kd * FD_EXPF_LN2HI) - kd * FD_EXPF_LN2LO;
    FD_EXPF_POLY(r, q, p)
    sbits = (kbits << 52) + (1023ULL << 52);        /* 2^k: k's bits into the exponent */
    memcpy(&s, &sbits, sizeof s);
    return (float)(p * s);
}

#if FD_VECTOR_EXT
typedef unsigned long long fd_u8 __attribute__((vector_size(64)));
/* fd_expf on 8 floats widened to doubles, the same operations lane by lane */
FD_INLINE fd_d8 fd_expf_d8(fd_d8 xd)
{
    const fd_d8 zero = {0, 0, 0, 0, 0, 0, 0, 0};
    const fd_d8 lo = zero + FD_EXPF_LO, hi = zero + FD_EXPF_HI;
    fd_u8 m = (fd_u8)(xd < lo);
    xd = (fd_d8)(((fd_u8)xd & ~m) | ((fd_u8)lo & m));
    m = (fd_u8)(xd > hi);
    xd = (fd_d8)(((fd_u8)xd & ~m) | ((fd_u8)hi & m));
    fd_d8 kd = xd * FD_EXPF_LOG2E + FD_EXPF_SHIFT, q, p;
    const fd_u8 kbits = (fd_u8)kd;
    kd -= FD_EXPF_SHIFT;
    const fd_d8 r = (xd - kd * FD_EXPF_LN2HI) - kd * FD_EXPF_LN2LO;
    FD_EXPF_POLY(r, q, p)
    return p * (fd_d8)((kbits << 52) + (1023ULL << 52));
}

/* e^x of 16 floats */
FD_INLINE fd_f16 fd_expf_f16(fd_f16 x)
{
    fd_f8 h[2];
    memcpy(h, &x, sizeof x);
    const fd_f8 a = __builtin_convertvector(fd_expf_d8(__builtin_convertvector(h[0], fd_d8)), fd_f8);
    const fd_f8 b = __builtin_convertvector(fd_expf_d8(__builtin_convertvector(h[1], fd_d8)), fd_f8);
    fd_f16 out;
    memcpy(&out, &a, sizeof a);
    memcpy((char *)&out + sizeof a, &b, sizeof b);
    return out;
}
#endif

/* dst[i] = e^(x[i] − sub[i]) for i < m (sub NULL: e^x[i]); dst may be x. */
FD_INLINE void fd_exp_row_f(float *dst, const float *x, const float *sub, ptrdiff_t m)
{
    ptrdiff_t i = 0;
#if FD_VECTOR_EXT
    for (; i < m; i += 16) {
        fd_f16 v, t;
        if (i + 16 <= m) {
            memcpy(&v, x + i, sizeof v);
            if (sub) {
                memcpy(&t, sub + i, sizeof t);
                v -= t;
            }
            v = fd_expf_f16(v);
            memcpy(dst + i, &v, sizeof v);
        } else {                        /* the last, partial vector: through a copy */
            float buf[16] = {0};
            for (ptrdiff_t u = 0; u < m - i; u++) buf[u] = sub ? x[i + u] - sub[i + u] : x[i + u];
            memcpy(&v, buf, sizeof v);
            v = fd_expf_f16(v);
            memcpy(buf, &v, sizeof v);
            for (ptrdiff_t u = 0; u < m - i; u++) dst[i + u] = buf[u];
        }
    }
#else
    for (; i < m; i++) dst[i] = fd_expf(sub ? x[i] - sub[i] : x[i]);
#endif
}

/* The same for doubles: libm's exp. */
FD_INLINE void fd_exp_row_d(double *dst, const double *x, const double *sub, ptrdiff_t m)
{
    for (ptrdiff_t i = 0; i < m; i++) dst[i] = exp(sub ? x[i] - sub[i] : x[i]);
}
#undef FD_EXPF_LO
#undef FD_EXPF_HI
#undef FD_EXPF_SHIFT
#undef FD_EXPF_LOG2E
#undef FD_EXPF_LN2HI
#undef FD_EXPF_LN2LO
#undef FD_EXPF_POLY

#define T float
#define SUF f
#define FDM(fn) fn##f
#define VT16 fd_f4
#define VT32 fd_f8
#define VT64 fd_f16
#define TSUM16 fd_tsum_f4
#define TSUM32 fd_tsum_f8
#define TSUM64 fd_tsum_f16
#define TRANS16 fd_transpose_f4
#define TRANS32 fd_transpose_f8
#define TRANS64 fd_transpose_f16
#include "fm_template.h"
#undef T
#undef SUF
#undef FDM
#undef VT16
#undef VT32
#undef VT64
#undef TSUM16
#undef TSUM32
#undef TSUM64
#undef TRANS16
#undef TRANS32
#undef TRANS64
#define T double
#define SUF d
#define FDM(fn) fn
#define VT16 fd_d2
#define VT32 fd_d4
#define VT64 fd_d8
#define TSUM16 fd_tsum_d2
#define TSUM32 fd_tsum_d4
#define TSUM64 fd_tsum_d8
#define TRANS16 fd_transpose_d2
#define TRANS32 fd_transpose_d4
#define TRANS64 fd_transpose_d8
#include "fm_template.h"
#undef T
#undef SUF
#undef FDM
#undef VT16
#undef VT32
#undef VT64
#undef TSUM16
#undef TSUM32
#undef TSUM64
#undef TRANS16
#undef TRANS32
#undef TRANS64

#ifdef FD_UNDEF_RESTRICT
#undef restrict
#undef FD_UNDEF_RESTRICT
#endif

#endif
