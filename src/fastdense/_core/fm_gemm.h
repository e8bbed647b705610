/* Register-blocked products for medium feature-major layers, for one vector width;
 * included by fm_template.h once per width with MK_BYTES, MK_VT (the vector type) and
 * MK_TRANS (its in-register square transpose) defined.
 *
 * One micro-kernel serves the three products of a layer:
 *   C[r, i] = Σ_c M[r·rs + c·cs] · B[c·ldb + i]    (r < R, i < N, c < K)
 * a tile of MR rows × two vectors of columns is kept in registers across the whole sum
 * over c: per c, two vector loads of B and MR broadcasts of M feed 2·MR independent
 * multiply-add chains. No packing: the shapes it serves are small enough for L1/L2.
 *   forward  Z = Wᵀ·A (+ b, activation):  M = W (rs 1, cs n_out), B = A, K = n_in
 *   dA = (W·D) ⊙ f'(A):                   M = W (rs n_out, cs 1), B = D, K = n_out
 *   dW = A·Dᵀ:                            M = A (rs n, cs 1), B = Dᵀ (transposed in
 *                                         registers, a chunk of samples at a time, its
 *                                         column sums giving db), K = the samples
 * The bias, the activation (forward) and its derivative (dA) are the tile's epilogue.
 * Sums run in a fixed order (c ascending), whatever the width. */
#define MK_L (MK_BYTES / (ptrdiff_t)sizeof(T))
#define MK_MR (MK_BYTES == 64 ? 8 : 4)
#define MK_N_(name, b) FD(name##_##b)
#define MK_N(name, b) MK_N_(name, b)
#define MK_TILE MK_N(mk_tile, MK_BYTES)
#define MK_RUN MK_N(mk_run, MK_BYTES)
#define MK_DW MK_N(mk_dw, MK_BYTES)

#ifndef FD_MK_EPI_DEFINED
#define FD_MK_EPI_DEFINED
enum { MK_EPI_STORE = 0, MK_EPI_FWD = 1, MK_EPI_DGRAD = 2, MK_EPI_SGD = 3 };
#endif

/* One tile: rows r0 … r0 + mr − 1 of C, columns [i, i + ncols) (ncols ≤ nv·MK_L), B's
 * columns read as whole vectors from B + i (readable: the caller pads a partial tile).
 * epi: MK_EPI_STORE (C = sum, or C += sum when accumulate), MK_EPI_FWD (C = act(sum +
 * bias[r])), MK_EPI_DGRAD (C = sum ⊙ f'(Y[r, i]), Y row stride ldy), MK_EPI_SGD (C = C −
 * alpha·sum: plain SGD's step on W from the weight gradient's sum). mr and nv are
 * constants at every call, so each shape's loops are fully unrolled. */
FD_INLINE void
MK_TILE(const T *restrict m, ptrdiff_t rs, ptrdiff_t cs, const T *restrict b, ptrdiff_t ldb,
        ptrdiff_t k, T *restrict c, ptrdiff_t ldc, ptrdiff_t ncols, int epi, int accumulate,
        const T *restrict bias, int act, T alpha, const T *restrict y, ptrdiff_t ldy,
        const int mr, const int nv)
{
    MK_VT acc[MK_MR][2];
    T buf[2 * MK_L];
    ptrdiff_t q, v, u;
    for (q = 0; q < mr; q++)
        for (v = 0; v < nv; v++) {
            if (epi == MK_EPI_FWD) {
                for (u = 0; u < MK_L; u++) buf[u] = bias[q];
                memcpy(&acc[q][v], buf, sizeof(MK_VT));
            } else
                acc[q][v] = (MK_VT){0};
        }
    for (ptrdiff_t p = 0; p < k; p++) {
        MK_VT b0, b1;
        const T *restrict bp = b + p * ldb;
        const T *restrict mp = m + p * cs;
        memcpy(&b0, bp, sizeof(MK_VT));
        if (nv > 1) memcpy(&b1, bp + MK_L, sizeof(MK_VT));
        for (q = 0; q < mr; q++) {
            const T mq = mp[q * rs];
            acc[q][0] += mq * b0;
            if (nv > 1) acc[q][1] += mq * b1;
        }
    }
    const ptrdiff_t width = nv * MK_L;
    for (q = 0; q < mr; q++) {
        T *restrict cq = c + q * ldc;
        memcpy(buf, &acc[q][0], sizeof(MK_VT));
        if (nv > 1) memcpy(buf + MK_L, &acc[q][1], sizeof(MK_VT));
        if (epi == MK_EPI_STORE) {
            if (ncols == width && !accumulate) memcpy(cq, buf, width * sizeof(T));
            else if (ncols == width)
                for (u = 0; u < width; u++) cq[u] += buf[u];
            else if (accumulate)
                for (u = 0; u < ncols; u++) cq[u] += buf[u];
            else
                for (u = 0; u < ncols; u++) cq[u] = buf[u];
        } else if (epi == MK_EPI_FWD) {
            /* `< 0` rather than `> 0`: a NaN stays NaN, so divergence shows */
            if (act == FD_ACT_RELU)
                for (u = 0; u < width; u++) buf[u] = buf[u] < 0 ? (T)0 : buf[u];
            if (ncols == width) memcpy(cq, buf, width * sizeof(T));
            else
                for (u = 0; u < ncols; u++) cq[u] = buf[u];
            if (act > FD_ACT_RELU) FD(act_apply_body)(cq, ncols, act, alpha);
        } else if (epi == MK_EPI_SGD) {
            for (u = 0; u < ncols; u++) cq[u] = cq[u] - alpha * buf[u];
        } else {
            const T *restrict yq = y + q * ldy;
            if (act == FD_ACT_RELU && ncols == width)
                for (u = 0; u < width; u++) cq[u] = yq[u] > 0 ? buf[u] : (T)0;
            else if (act == FD_ACT_RELU)
                for (u = 0; u < ncols; u++) cq[u] = yq[u] > 0 ? buf[u] : (T)0;
            else {
                for (u = 0; u < ncols; u++) cq[u] = buf[u];
                if (act > FD_ACT_RELU) FD(act_grad_mul_body)(cq, yq, ncols, act, alpha);
            }
        }
    }
}

/* Every tile of the R × N product (see MK_TILE; bias advances with the rows, y with C).
 * Columns past the last whole vector are read from a zero-padded copy of B's columns
 * (at most MK_TAIL_K rows of it; the caller sends longer sums elsewhere), unless
 * b_padded: B's rows are readable up to whole vectors. */
#define MK_TAIL_K FD_MK_MAX_K
FD_INLINE void
MK_RUN(const T *restrict m, ptrdiff_t rs, ptrdiff_t cs, const T *restrict b, ptrdiff_t ldb,
       ptrdiff_t k, T *restrict c, ptrdiff_t ldc, ptrdiff_t rows, ptrdiff_t cols, int epi,
       int accumulate, const T *restrict bias, int act, T alpha, const T *restrict y,
       ptrdiff_t ldy, int b_padded)
{
    ptrdiff_t i = 0, r;
#define MK_ROWS(nv_, bb, ldbb, ncols_)                                                 \
    for (r = 0; r + MK_MR <= rows; r += MK_MR)                                         \
        MK_TILE(m + r * rs, rs, cs, bb, ldbb, k, c + r * ldc + i, ldc, ncols_, epi,     \
                accumulate, bias + (bias ? r : 0), act, alpha, y + (y ? r * ldy + i : 0), \
                ldy, MK_MR, nv_);                                                      \
    for (; r + 4 <= rows; r += 4)                                                      \
        MK_TILE(m + r * rs, rs, cs, bb, ldbb, k, c + r * ldc + i, ldc, ncols_, epi,     \
                accumulate, bias + (bias ? r : 0), act, alpha, y + (y ? r * ldy + i : 0), \
                ldy, 4, nv_);                                                          \
    for (; r < rows; r++)                                                              \
        MK_TILE(m + r * rs, rs, cs, bb, ldbb, k, c + r * ldc + i, ldc, ncols_, epi,     \
                accumulate, bias + (bias ? r : 0), act, alpha, y + (y ? r * ldy + i : 0), \
                ldy, 1, nv_);
    for (; i + 2 * MK_L <= cols; i += 2 * MK_L) { MK_ROWS(2, b + i, ldb, 2 * MK_L) }
    for (; i + MK_L <= cols; i += MK_L) { MK_ROWS(1, b + i, ldb, MK_L) }
    if (i < cols && b_padded) { MK_ROWS(1, b + i, ldb, cols - i) }
    else if (i < cols) {
        T pad[MK_TAIL_K * MK_L];
        const ptrdiff_t rem = cols - i;
        for (ptrdiff_t p = 0; p < k; p++)
            for (ptrdiff_t u = 0; u < MK_L; u++)
                pad[p * MK_L + u] = u < rem ? b[p * ldb + i + u] : (T)0;
        MK_ROWS(1, pad, MK_L, rem)
    }
#undef MK_ROWS
}

/* dW = A·Dᵀ and db = D·1 (A n_in × n, or sample-major n × n_in when a_rows; D n_out × n):
 * chunks of samples of D are transposed in registers into a stack buffer (one row per
 * sample, n_out rounded up to whole vectors, zero-padded), their columns summed into db
 * on the way (none when db is NULL), and multiplied by the matching columns of A, dW
 * accumulating over chunks. sgd: dw is W itself, and each chunk's product is applied to
 * it as plain SGD, W ← W − lr·(that chunk's sum): W − lr·A·Dᵀ for a batch of one chunk,
 * the gradient never stored. */
#define MK_DW_BUF 8192
FD_INLINE void
MK_DW(const T *restrict a, const T *restrict d, T *restrict dw, T *restrict db, ptrdiff_t n,
      ptrdiff_t n_in, ptrdiff_t n_out, int a_rows, T lr, int sgd)
{
    const int epi = sgd ? MK_EPI_SGD : MK_EPI_STORE;
    T tb[MK_DW_BUF];
    T one[MK_L];
    const ptrdiff_t ldb = (n_out + MK_L - 1) / MK_L * MK_L;
    ptrdiff_t kc = (MK_DW_BUF / ldb) / MK_L * MK_L;       /* samples a chunk */
    MK_VT rowv[MK_L];
    if (kc > 4 * MK_L) kc = 4 * MK_L;
    /* db: the transposed rows (one vector of outputs per sample) added up, sample after
     * sample: the same order on every instruction set */
    T dbs[FD_MK_MAX_K + 64];
    for (ptrdiff_t j = 0; j < ldb; j++) dbs[j] = 0;
    for (ptrdiff_t i0 = 0; i0 < n; i0 += kc) {
        const ptrdiff_t kk = n - i0 < kc ? n - i0 : kc;
        for (ptrdiff_t j0 = 0; j0 < ldb; j0 += MK_L)
            for (ptrdiff_t s0 = 0; s0 < kk; s0 += MK_L) {
                const ptrdiff_t cnt = kk - s0 < MK_L ? kk - s0 : MK_L;
                for (ptrdiff_t q = 0; q < MK_L; q++) {
                    if (j0 + q < n_out && cnt == MK_L)
                        memcpy(&rowv[q], d + (j0 + q) * n + i0 + s0, sizeof(MK_VT));
                    else {
                        for (ptrdiff_t u = 0; u < MK_L; u++)
                            one[u] = (j0 + q < n_out && u < cnt)
                                     ? d[(j0 + q) * n + i0 + s0 + u] : (T)0;
                        memcpy(&rowv[q], one, sizeof(MK_VT));
                    }
                }
                MK_TRANS(rowv);             /* rowv[u]: sample i0 + s0 + u, its outputs */
                MK_VT acc;
                memcpy(&acc, dbs + j0, sizeof(MK_VT));
                for (ptrdiff_t u = 0; u < cnt; u++) {
                    memcpy(tb + (s0 + u) * ldb + j0, &rowv[u], sizeof(MK_VT));
                    acc += rowv[u];
                }
                memcpy(dbs + j0, &acc, sizeof(MK_VT));
            }
        if (a_rows)
            MK_RUN(a + i0 * n_in, 1, n_in, tb, ldb, kk, dw, n_out, n_in, n_out, epi,
                   !sgd && i0 > 0, NULL, 0, lr, NULL, 0, 1);
        else
            MK_RUN(a + i0, n, 1, tb, ldb, kk, dw, n_out, n_in, n_out, epi, !sgd && i0 > 0,
                   NULL, 0, lr, NULL, 0, 1);
    }
    if (db)
        for (ptrdiff_t j = 0; j < n_out; j++) db[j] = dbs[j];
}

#undef MK_DW_BUF
#undef MK_DW
#undef MK_RUN
#undef MK_TILE
#undef MK_N
#undef MK_N_
#undef MK_MR
#undef MK_L
