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

#undef WG_NAME
#undef WG_NAME_
#undef WG_LANES
