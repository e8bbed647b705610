/* The weight and bias gradients of a feature-major layer, for one vector width; included
 * by fm_template.h once per width with WG_BYTES, WG_VT (the vector type) and WG_TSUM (its
 * transposing sum) defined.
 *
 * [dW; dbᵀ] = [A; 1]·Dᵀ: entry q of the (n_in + 1) × n_out result is a sum over the batch.
 * WG_LANES entries are taken at a time, each into its own vector of partial sums (one per
 * lane), and the group is folded by one transposing sum; samples past the last full
 * vector are added one by one. */
#define WG_LANES (WG_BYTES / (ptrdiff_t)sizeof(T))
#define WG_NAME_(b) FD(fm_param_grads_##b)
#define WG_NAME(b) WG_NAME_(b)

FD_INLINE void
WG_NAME(WG_BYTES)(const T *restrict a, const T *restrict d, T *restrict dw, T *restrict db,
                  ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out)
{
    const ptrdiff_t n_w = n_in * n_out, total = n_w + n_out, full = n - n % WG_LANES;
    ptrdiff_t k = 0, j = 0;                   /* entry q is row k (n_in: the ones), column j */
    WG_VT acc[WG_BYTES / sizeof(T)];
    T tail[WG_BYTES / sizeof(T)], out[WG_BYTES / sizeof(T)];
    for (ptrdiff_t q0 = 0; q0 < total; q0 += WG_LANES) {
        const ptrdiff_t m = total - q0 < WG_LANES ? total - q0 : WG_LANES;
        ptrdiff_t q, i;
        for (q = 0; q < m; q++) {
            const T *restrict dj = d + j * n;
            WG_VT s = {0}, s2 = {0}, x, x2, y, y2;
            T t = 0;
            /* two vectors a step, into two sums: half the loop overhead and latency */
            if (k < n_in) {
                const T *restrict ak = a + k * n;
                for (i = 0; i + 2 * WG_LANES <= full; i += 2 * WG_LANES) {
                    memcpy(&x, ak + i, sizeof(WG_VT));
                    memcpy(&y, dj + i, sizeof(WG_VT));
                    memcpy(&x2, ak + i + WG_LANES, sizeof(WG_VT));
                    memcpy(&y2, dj + i + WG_LANES, sizeof(WG_VT));
                    s += x * y;
                    s2 += x2 * y2;
                }
                if (i < full) {
                    memcpy(&x, ak + i, sizeof(WG_VT));
                    memcpy(&y, dj + i, sizeof(WG_VT));
                    s += x * y;
                    i += WG_LANES;
                }
                for (; i < n; i++) t += ak[i] * dj[i];
            } else {
                for (i = 0; i + 2 * WG_LANES <= full; i += 2 * WG_LANES) {
                    memcpy(&y, dj + i, sizeof(WG_VT));
                    memcpy(&y2, dj + i + WG_LANES, sizeof(WG_VT));
                    s += y;
                    s2 += y2;
                }
                if (i < full) {
                    memcpy(&y, dj + i, sizeof(WG_VT));
                    s += y;
                    i += WG_LANES;
                }
                for (; i < n; i++) t += dj[i];
            }
            acc[q] = s + s2;
            tail[q] = t;
            if (++j == n_out) { j = 0; k++; }
        }
        for (; q < WG_LANES; q++) acc[q] = acc[0];      /* spare lanes: ignored */
        WG_VT sum = WG_TSUM(acc);
        memcpy(out, &sum, sizeof(WG_VT));
        for (q = 0; q < m; q++) {
            const ptrdiff_t e = q0 + q;
            if (e < n_w) dw[e] = out[q] + tail[q];
            else db[e - n_w] = out[q] + tail[q];
        }
    }
}

/* The same by outer products, for layers with few outputs: no horizontal sums.
 * For each block of WG_LANES samples and WG_LANES outputs, the block of D is transposed in
 * registers (one vector of outputs per sample), then row k of dW gains
 * Σ_s A[k, i0 + s] · Dᵀ[s]: broadcast multiply-adds, in four independent chains (by s mod 4)
 * joined by a fixed tree. Rows of dW are done WG_KROWS at a time, their sums kept in a
 * stack array across the batch. */
#define WG_KROWS 64
#define WG_OUTER_(b) FD(fm_param_grads_outer_##b)
#define WG_OUTER(b) WG_OUTER_(b)

FD_INLINE void
WG_OUTER(WG_BYTES)(const T *restrict a, const T *restrict d, T *restrict dw, T *restrict db,
                   ptrdiff_t n, ptrdiff_t n_in, ptrdiff_t n_out)
{
    WG_VT acc[WG_KROWS], accb, dt[WG_LANES];
    T buf[WG_LANES];
    ptrdiff_t q, s, k;
    for (ptrdiff_t j0 = 0; j0 < n_out; j0 += WG_LANES) {
        const ptrdiff_t nj = n_out - j0 < WG_LANES ? n_out - j0 : WG_LANES;
        const T *rowp[WG_LANES];
        for (q = 0; q < WG_LANES; q++) rowp[q] = d + (j0 + (q < nj ? q : 0)) * n;
        for (ptrdiff_t k0 = 0; k0 < n_in; k0 += WG_KROWS) {
            const ptrdiff_t nk = n_in - k0 < WG_KROWS ? n_in - k0 : WG_KROWS;
            const int with_db = k0 == 0;
            accb = (WG_VT){0};
            for (ptrdiff_t i0 = 0; i0 < n; i0 += WG_LANES) {
                const ptrdiff_t cnt = n - i0 < WG_LANES ? n - i0 : WG_LANES;
                /* rows j0 … j0 + nj − 1 of D (missing rows repeat row j0: their lanes are
                 * never stored), samples i0 … i0 + cnt − 1 (missing samples are 0) */
                if (cnt == WG_LANES) {
                    for (q = 0; q < WG_LANES; q++)
                        memcpy(&dt[q], rowp[q] + i0, sizeof(WG_VT));
                } else {
                    for (q = 0; q < WG_LANES; q++) {
                        for (s = 0; s < WG_LANES; s++)  /* constant trip: no memcpy call */
                            buf[s] = s < cnt ? rowp[q][i0 + s] : (T)0;
                        memcpy(&dt[q], buf, sizeof(WG_VT));
                    }
                }
                WG_TRANS(dt);                   /* dt[s]: sample i0 + s, one lane per output */
                if (with_db)
                    for (s = 0; s < WG_LANES; s++) accb += dt[s];
                if (cnt == WG_LANES) {
                    for (k = 0; k < nk; k++) {
                        const T *restrict ak = a + (k0 + k) * n + i0;
                        WG_VT p0 = {0}, p1 = {0}, p2 = {0}, p3 = {0};
                        for (s = 0; s + 4 <= WG_LANES; s += 4) {
                            p0 += dt[s] * ak[s];
                            p1 += dt[s + 1] * ak[s + 1];
                            p2 += dt[s + 2] * ak[s + 2];
                            p3 += dt[s + 3] * ak[s + 3];
                        }
                        for (; s < WG_LANES; s++) p0 += dt[s] * ak[s];  /* 2 lanes (SSE2 double) */
                        p0 = (p0 + p1) + (p2 + p3);
                        acc[k] = i0 ? acc[k] + p0 : p0;
                    }
                } else {
                    for (k = 0; k < nk; k++) {
                        const T *restrict ak = a + (k0 + k) * n + i0;
                        if (!i0) acc[k] = (WG_VT){0};
                        for (s = 0; s < cnt; s++) acc[k] += dt[s] * ak[s];
                    }
                }
            }
            for (k = 0; k < nk; k++) {
                T *restrict dwk = dw + (k0 + k) * n_out + j0;
                memcpy(buf, &acc[k], sizeof(WG_VT));
                for (q = 0; q < WG_LANES; q++)   /* (a loop to nj would become a memcpy call) */
                    if (q < nj) dwk[q] = buf[q];
            }
            if (with_db) {
                memcpy(buf, &accb, sizeof(WG_VT));
                for (q = 0; q < WG_LANES; q++)
                    if (q < nj) db[j0 + q] = buf[q];
            }
        }
    }
}

/* dst[j·count + r] = src[rows[r]·width + j] (rows NULL: row r) for r < count, j < width:
 * rows of the row-major src (src_rows × width) gathered into the columns of the
 * feature-major dst (width × count). WG_LANES rows × WG_LANES features at a time are
 * loaded one vector a row, transposed in registers, and stored one vector a feature. */
#define WG_GATHER_(b) FD(fm_gather_t_##b)
#define WG_GATHER(b) WG_GATHER_(b)

FD_INLINE void
WG_GATHER(WG_BYTES)(T *restrict dst, const T *restrict src, const ptrdiff_t *restrict rows,
                    ptrdiff_t count, ptrdiff_t width, ptrdiff_t src_rows)
{
    /* a whole vector read from offset o stays inside src when o ≤ last */
    const ptrdiff_t last = src_rows * width - WG_LANES;
    WG_VT v[WG_LANES];
    T buf[WG_LANES];
    ptrdiff_t r0 = 0, q, s;
    for (; r0 + WG_LANES <= count; r0 += WG_LANES)
        for (ptrdiff_t f0 = 0; f0 < width; f0 += WG_LANES) {
            const ptrdiff_t nf = width - f0 < WG_LANES ? width - f0 : WG_LANES;
            for (s = 0; s < WG_LANES; s++) {
                const ptrdiff_t o = (rows ? rows[r0 + s] : r0 + s) * width + f0;
                if (o <= last) {
                    memcpy(&v[s], src + o, sizeof(WG_VT));  /* lanes past nf: ignored */
                } else {
                    for (q = 0; q < WG_LANES; q++)
                        buf[q] = q < nf ? src[o + q] : (T)0;
                    memcpy(&v[s], buf, sizeof(WG_VT));
                }
            }
            WG_TRANS(v);                        /* v[j]: feature f0 + j of these rows */
            for (q = 0; q < WG_LANES; q++)
                if (q < nf) memcpy(dst + (f0 + q) * count + r0, &v[q], sizeof(WG_VT));
        }
    for (; r0 < count; r0++) {
        const T *restrict row = src + (rows ? rows[r0] : r0) * width;
        for (q = 0; q < width; q++) dst[q * count + r0] = row[q];
    }
}

#undef WG_GATHER
#undef WG_GATHER_
#undef WG_OUTER
#undef WG_OUTER_
#undef WG_KROWS
#undef WG_NAME
#undef WG_NAME_
#undef WG_LANES
