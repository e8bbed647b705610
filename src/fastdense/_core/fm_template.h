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

static inline __attribute__((always_inline)) T
FD(fd_dot)(const T *restrict x, const T *restrict y, ptrdiff_t n)
{
    T acc[64 / sizeof(T)];
    ptrdiff_t i, u;
    for (u = 0; u < LANES; u++) acc[u] = 0;
    for (i = 0; i + LANES <= n; i += LANES)
        for (u = 0; u < LANES; u++) acc[u] += x[i + u] * y[i + u];
    for (u = 0; i < n; i++, u++) acc[u] += x[i] * y[i];
    for (ptrdiff_t w = LANES / 2; w > 0; w /= 2)
        for (u = 0; u < w; u++) acc[u] += acc[u + w];
    return acc[0];
}

static inline __attribute__((always_inline)) T
FD(fd_sum)(const T *restrict x, ptrdiff_t n)
{
    T acc[64 / sizeof(T)];
    ptrdiff_t i, u;
    for (u = 0; u < LANES; u++) acc[u] = 0;
    for (i = 0; i + LANES <= n; i += LANES)
        for (u = 0; u < LANES; u++) acc[u] += x[i + u];
    for (u = 0; i < n; i++, u++) acc[u] += x[i];
    for (ptrdiff_t w = LANES / 2; w > 0; w /= 2)
        for (u = 0; u < w; u++) acc[u] += acc[u + w];
    return acc[0];
}

/* Z = act(Wᵀ·A + b): A n_in × n, W n_in × n_out (row-major), Z n_out × n. */
static inline __attribute__((always_inline)) void
FD(fm_forward_body)(const T *restrict a, const T *restrict w, const T *restrict b,
                    T *restrict z, ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out, int relu)
{
    for (ptrdiff_t j = 0; j < n_out; j++) {
        T *restrict zj = z + j * n;
        const T bj = b[j];
        for (ptrdiff_t i = 0; i < n; i++) zj[i] = bj;
        for (ptrdiff_t k = 0; k < n_in; k++) {
            const T wkj = w[k * n_out + j];
            const T *restrict ak = a + k * n;
            for (ptrdiff_t i = 0; i < n; i++) zj[i] += wkj * ak[i];
        }
        if (relu)   /* `< 0` rather than `> 0`: a NaN stays NaN, so divergence shows */
            for (ptrdiff_t i = 0; i < n; i++) zj[i] = zj[i] < 0 ? (T)0 : zj[i];
    }
}

/* dW = A·Dᵀ, db = D·1, dA = (W·D) ⊙ [A > 0] (mask when relu_a; skipped when da is NULL).
 * D n_out × n is the gradient at this layer's pre-activation; A its input. */
static inline __attribute__((always_inline)) void
FD(fm_backward_body)(const T *restrict a, const T *restrict w, const T *restrict d,
                     T *restrict dw, T *restrict db, T *restrict da,
                     ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out, int relu_a)
{
    for (ptrdiff_t j = 0; j < n_out; j++) db[j] = FD(fd_sum)(d + j * n, n);
    for (ptrdiff_t k = 0; k < n_in; k++)
        for (ptrdiff_t j = 0; j < n_out; j++)
            dw[k * n_out + j] = FD(fd_dot)(a + k * n, d + j * n, n);
    if (!da) return;
    for (ptrdiff_t k = 0; k < n_in; k++) {
        T *restrict dak = da + k * n;
        const T *restrict ak = a + k * n;
        for (ptrdiff_t i = 0; i < n; i++) dak[i] = 0;
        for (ptrdiff_t j = 0; j < n_out; j++) {
            const T wkj = w[k * n_out + j];
            const T *restrict dj = d + j * n;
            for (ptrdiff_t i = 0; i < n; i++) dak[i] += wkj * dj[i];
        }
        if (relu_a)
            for (ptrdiff_t i = 0; i < n; i++) dak[i] = ak[i] > 0 ? dak[i] : (T)0;
    }
}


/* Z[j, :] = act(Z[j, :] + b[j]) for the n_out rows of Z (after a BLAS product). */
static inline __attribute__((always_inline)) void
FD(fm_bias_act_body)(T *restrict z, const T *restrict b, ptrdiff_t n, ptrdiff_t n_out, int relu)
{
    for (ptrdiff_t j = 0; j < n_out; j++) {
        T *restrict zj = z + j * n;
        const T bj = b[j];
        if (relu)
            for (ptrdiff_t i = 0; i < n; i++) { T v = zj[i] + bj; zj[i] = v < 0 ? (T)0 : v; }
        else
            for (ptrdiff_t i = 0; i < n; i++) zj[i] += bj;
    }
}

/* out[j] = Σ_i D[j, i] for the rows of D (rows × n). */
static inline __attribute__((always_inline)) void
FD(fm_row_sums_body)(const T *restrict d, T *restrict out, ptrdiff_t rows, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < rows; j++) out[j] = FD(fd_sum)(d + j * n, n);
}

/* D ← D ⊙ [A > 0] elementwise (A a ReLU's output, so A > 0 exactly where it passed). */
static inline __attribute__((always_inline)) void
FD(relu_mask_body)(T *restrict d, const T *restrict a, ptrdiff_t size)
{
    for (ptrdiff_t i = 0; i < size; i++) d[i] = a[i] > 0 ? d[i] : (T)0;
}

/* One instantiation per instruction set (x86-64; elsewhere the portable body only). */
#if defined(__GNUC__) && defined(__x86_64__)
#define FD_VARIANTS(ret, name, params, args)                                         \
    static ret FD(name##_base) params { FD(name##_body) args; }                \
    __attribute__((target("avx2,fma"))) static ret FD(name##_avx2) params              \
        { FD(name##_body) args; }                                              \
    __attribute__((target("avx512f,avx512vl,avx2,fma,prefer-vector-width=512")))       \
    static ret FD(name##_avx512) params { FD(name##_body) args; }               \
    static ret FD(name) params {                                                      \
        switch (fd_isa) {                                                             \
        case FD_ISA_AVX512: FD(name##_avx512) args; return;                            \
        case FD_ISA_AVX2: FD(name##_avx2) args; return;                                \
        default: FD(name##_base) args; return;                                         \
        }                                                                             \
    }
#else
#define FD_VARIANTS(ret, name, params, args)                                         \
    static ret FD(name) params { FD(name##_body) args; }
#endif

FD_VARIANTS(void, fm_forward,
            (const T *restrict a, const T *restrict w, const T *restrict b, T *restrict z,
             ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out, int relu),
            (a, w, b, z, n, n_in, n_out, relu))

FD_VARIANTS(void, fm_backward,
            (const T *restrict a, const T *restrict w, const T *restrict d,
             T *restrict dw, T *restrict db, T *restrict da,
             ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out, int relu_a),
            (a, w, d, dw, db, da, n, n_in, n_out, relu_a))

FD_VARIANTS(void, fm_bias_act,
            (T *restrict z, const T *restrict b, ptrdiff_t n, ptrdiff_t n_out, int relu),
            (z, b, n, n_out, relu))

FD_VARIANTS(void, fm_row_sums,
            (const T *restrict d, T *restrict out, ptrdiff_t rows, ptrdiff_t n),
            (d, out, rows, n))

FD_VARIANTS(void, relu_mask, (T *restrict d, const T *restrict a, ptrdiff_t size),
            (d, a, size))

#undef FD_VARIANTS
#undef LANES
#undef FD
#undef FD_CAT
#undef FD_CAT_
