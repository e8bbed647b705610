/* The network's head: the output layer's activation, the loss and its gradient in one
 * pass, and the metrics; plus the weight regularisers' penalty and gradient. Written once
 * for T with the suffix SUF (included by fm_template.h, which defines FD, FDM and the
 * activation helpers). Ids: fastdense/losses.py and fastdense/metrics.py.
 *
 * Feature-major as the dense kernels: a block of n samples with k outputs is k × n. Each
 * sample's loss lᵢ is summed in double; the cross-entropies work on the logits z
 * (log-sum-exp with the column maximum subtracted; log1p(e^−|z|)), so extreme logits give
 * finite losses and exact gradients. */

/* a ← f(z) for the output activation act (any id, softmax included); scratch: n values. */
FD_INLINE void
FD(head_activate)(const T *restrict z, T *restrict a, ptrdiff_t n, ptrdiff_t k, int act,
                  T alpha, T *restrict scratch)
{
    memcpy(a, z, (size_t)(n * k) * sizeof(T));
    if (act == FD_ACT_SOFTMAX) FD(softmax_fm_body)(a, k, n, scratch);
    else FD(act_apply_body)(a, n * k, act, alpha);
}

/* The loss of n samples and, when dz is not NULL, its gradient w.r.t. the output layer's
 * pre-activation z:
 *   z (k × n) the pre-activation; a (k × n) ← f(z), the model's output;
 *   y (k × n, or 1 × n of labels for the sparse loss) the targets; sw (n) the sample
 *   weights, or NULL for 1;
 *   dz (k × n) ← scale · ∂(Σᵢ wᵢ lᵢ)/∂z;  *out ← Σᵢ wᵢ lᵢ.
 * The cross-entropies are called only with act = sigmoid/softmax (on probabilities) or
 * linear (from logits): their gradient w.r.t. z is then the same fused form. */
/* Samples per block of the cross-entropy head (its per-sample rows live on the stack). */
#define HEAD_B 64

FD_INLINE void
FD(head_body)(int loss, int act, T alpha, T delta, const T *restrict z, T *restrict a,
              const T *restrict y, const T *restrict sw, T *restrict dz, T *restrict scratch,
              ptrdiff_t n, ptrdiff_t k, T scale, double *restrict out)
{
    ptrdiff_t i, j;
    double total = 0;
    const T inv_k = (T)1 / (T)k;
    const int ce = loss == FD_LOSS_CCE || loss == FD_LOSS_SPARSE_CCE;
    if (!(ce && act == FD_ACT_SOFTMAX))     /* (else the loop below writes a = softmax(z)) */
        FD(head_activate)(z, a, n, k, act, alpha, scratch);
    if (loss == FD_LOSS_BCE) {
        /* By blocks of HEAD_B samples along the batch: e = e^−|z| once per value by
         * fd_exp_row (vectorised for float), for log1p(e) and the sigmoid, σ(z) = 1/(1 + e)
         * for z ≥ 0 and e/(1 + e) below (fd_sigmoid's two forms); each sample's loss
         * summed over the outputs in order, in double. */
        for (ptrdiff_t i0 = 0; i0 < n; i0 += HEAD_B) {
            const ptrdiff_t bn = n - i0 < HEAD_B ? n - i0 : HEAD_B;
            double li[HEAD_B];
            T e[HEAD_B], g[HEAD_B];
            ptrdiff_t u;
            for (u = 0; u < bn; u++) {
                li[u] = 0;
                g[u] = (sw ? sw[i0 + u] : (T)1) * scale * inv_k;
            }
            for (j = 0; j < k; j++) {
                const T *restrict zj = z + j * n + i0;
                const T *restrict yj = y + j * n + i0;
                for (u = 0; u < bn; u++) e[u] = -FDM(fabs)(zj[u]);
                FD(fd_exp_row)(e, e, NULL, bn);
                for (u = 0; u < bn; u++) {
                    const T v = zj[u];
                    li[u] += (double)((v > 0 ? v : (T)0) - v * yj[u] + FDM(log1p)(e[u]));
                }
                if (dz) {
                    T *restrict dj = dz + j * n + i0;
                    for (u = 0; u < bn; u++) {
                        const T sig = zj[u] >= 0 ? (T)1 / ((T)1 + e[u]) : e[u] / ((T)1 + e[u]);
                        dj[u] = (sig - yj[u]) * g[u];
                    }
                }
            }
            for (u = 0; u < bn; u++)
                total += (double)(sw ? sw[i0 + u] : (T)1) * li[u] / (double)k;
        }
    } else if (loss == FD_LOSS_CCE || loss == FD_LOSS_SPARSE_CCE) {
        /* By blocks of HEAD_B samples, each step a loop along the samples (contiguous for
         * a fixed output j), so the exponentials vectorise: per sample the column maximum
         * top, e^(z − top) once per output, kept in p (the softmax output when that is
         * the layer's activation, else dz), their sum s in the order j = 0 … k−1, then
         * p /= s: softmax_fm_body's operations, so a equals predict's softmax. */
        const int sparse = loss == FD_LOSS_SPARSE_CCE;
        T *p = act == FD_ACT_SOFTMAX ? a : dz;     /* (p may be dz: not restrict) */
        for (ptrdiff_t i0 = 0; i0 < n; i0 += HEAD_B) {
            const ptrdiff_t bn = n - i0 < HEAD_B ? n - i0 : HEAD_B;
            const T *restrict zb = z + i0;
            T top[HEAD_B], s[HEAD_B], ws[HEAD_B];
            ptrdiff_t u;
            for (u = 0; u < bn; u++) top[u] = zb[u];
            for (j = 1; j < k; j++)
                for (u = 0; u < bn; u++) top[u] = zb[j * n + u] > top[u] ? zb[j * n + u] : top[u];
            for (u = 0; u < bn; u++) s[u] = 0;
            if (p) {
                T *pb = p + i0;
                for (j = 0; j < k; j++) {
                    FD(fd_exp_row)(pb + j * n, zb + j * n, top, bn);
                    for (u = 0; u < bn; u++) s[u] += pb[j * n + u];
                }
                for (j = 0; j < k; j++)
                    for (u = 0; u < bn; u++) pb[j * n + u] /= s[u];
            } else {
                T e[HEAD_B];
                for (j = 0; j < k; j++) {
                    FD(fd_exp_row)(e, zb + j * n, top, bn);
                    for (u = 0; u < bn; u++) s[u] += e[u];
                }
            }
            for (u = 0; u < bn; u++) ws[u] = (sw ? sw[i0 + u] : (T)1) * scale;
            if (sparse) {
                for (u = 0; u < bn; u++) {
                    const ptrdiff_t c = (ptrdiff_t)y[i0 + u];
                    const double li = (double)(top[u] - zb[c * n + u]) + (double)FDM(log)(s[u]);
                    total += (double)(sw ? sw[i0 + u] : (T)1) * li;
                }
                if (dz) {
                    T *db = dz + i0;
                    const T *pb = p + i0;
                    for (j = 0; j < k; j++)
                        for (u = 0; u < bn; u++) db[j * n + u] = pb[j * n + u] * ws[u];
                    for (u = 0; u < bn; u++) db[(ptrdiff_t)y[i0 + u] * n + u] -= ws[u];
                }
            } else {
                T sy_t[HEAD_B];
                for (u = 0; u < bn; u++) {
                    double sy = 0, syz = 0;
                    for (j = 0; j < k; j++) {
                        const T t = y[j * n + i0 + u];
                        sy += (double)t;
                        syz += (double)t * (double)(top[u] - zb[j * n + u]);
                    }
                    const double li = syz + sy * (double)FDM(log)(s[u]);
                    total += (double)(sw ? sw[i0 + u] : (T)1) * li;
                    sy_t[u] = (T)sy;
                }
                if (dz) {
                    T *db = dz + i0;
                    const T *pb = p + i0;
                    const T *restrict yb = y + i0;
                    for (j = 0; j < k; j++)
                        for (u = 0; u < bn; u++)
                            db[j * n + u] = (pb[j * n + u] * sy_t[u] - yb[j * n + u]) * ws[u];
                }
            }
        }
    } else {                    /* regression: ∂l/∂a, then back through the activation */
        for (i = 0; i < n; i++) {
            const T w = sw ? sw[i] : (T)1;
            const T gs = w * scale * inv_k;
            double li = 0;
            for (j = 0; j < k; j++) {
                const T e = a[j * n + i] - y[j * n + i];
                T g;
                if (loss == FD_LOSS_MSE) {
                    li += (double)e * (double)e;
                    g = (T)2 * e;
                } else if (loss == FD_LOSS_MAE) {
                    li += (double)FDM(fabs)(e);
                    g = (T)((e > 0) - (e < 0));
                } else {
                    const T ae = FDM(fabs)(e);
                    li += ae <= delta ? (double)0.5 * (double)e * (double)e
                                      : (double)delta * (double)ae - 0.5 * (double)delta * (double)delta;
                    g = e > delta ? delta : (e < -delta ? -delta : e);
                }
                if (dz) dz[j * n + i] = g * gs;
            }
            total += (double)w * li / (double)k;
        }
        if (dz) {
            if (act == FD_ACT_SOFTMAX) {        /* dz_j = p_j (g_j − Σ p g), per sample */
                T *restrict dot = scratch;
                for (i = 0; i < n; i++) dot[i] = 0;
                for (j = 0; j < k; j++)
                    for (i = 0; i < n; i++) dot[i] += a[j * n + i] * dz[j * n + i];
                for (j = 0; j < k; j++)
                    for (i = 0; i < n; i++) dz[j * n + i] = a[j * n + i] * (dz[j * n + i] - dot[i]);
            } else if (act == FD_ACT_GELU || act == FD_ACT_GELU_TANH) {
                FD(gelu_grad_mul_body)(dz, z, n * k, act == FD_ACT_GELU_TANH);
            } else {
                FD(act_grad_mul_body)(dz, a, n * k, act, alpha);
            }
        }
    }
    *out = total;
}

#undef HEAD_B

/* The first row of the largest value in column i of the k × n block (np.argmax's rule). */
FD_INLINE ptrdiff_t
FD(fd_argmax_col)(const T *restrict x, ptrdiff_t i, ptrdiff_t n, ptrdiff_t k)
{
    ptrdiff_t best = 0;
    for (ptrdiff_t j = 1; j < k; j++)
        if (x[j * n + i] > x[best * n + i]) best = j;
    return best;
}

/* sums[m] += Σᵢ (metric ids[m] of sample i), over the n samples of the output a (k × n)
 * and targets y (k × n, or 1 × n labels); binary accuracy thresholds a at `threshold`. */
FD_INLINE void
FD(metrics_body)(const int *restrict ids, int count, const T *restrict a, const T *restrict y,
                 ptrdiff_t n, ptrdiff_t k, T threshold, double *restrict sums)
{
    ptrdiff_t i, j;
    for (int m = 0; m < count; m++) {
        double s = 0;
        switch (ids[m]) {
        case FD_METRIC_MSE:
        case FD_METRIC_MAE:
            for (i = 0; i < n; i++) {
                double si = 0;
                for (j = 0; j < k; j++) {
                    const double e = (double)a[j * n + i] - (double)y[j * n + i];
                    si += ids[m] == FD_METRIC_MSE ? e * e : (e < 0 ? -e : e);
                }
                s += si / (double)k;
            }
            break;
        case FD_METRIC_BINARY_ACCURACY:
            for (i = 0; i < n; i++) {
                double si = 0;
                for (j = 0; j < k; j++)
                    si += (a[j * n + i] > threshold ? (T)1 : (T)0) == y[j * n + i];
                s += si / (double)k;
            }
            break;
        case FD_METRIC_CATEGORICAL_ACCURACY:
            for (i = 0; i < n; i++)
                s += FD(fd_argmax_col)(a, i, n, k) == FD(fd_argmax_col)(y, i, n, k);
            break;
        case FD_METRIC_SPARSE_CATEGORICAL_ACCURACY:
            for (i = 0; i < n; i++)
                s += (T)FD(fd_argmax_col)(a, i, n, k) == y[i];
            break;
        default:
            break;
        }
        sums[m] += s;
    }
}

/* The regulariser of one variable w (m values): *penalty += l1·Σ|w| + l2·Σw², and its
 * gradient l1·sign(w) + 2·l2·w added to g. */
FD_INLINE void
FD(regularize_body)(const T *restrict w, T *restrict g, ptrdiff_t m, T l1, T l2,
                    double *restrict penalty)
{
    T s1[LANES], s2[LANES];
    ptrdiff_t i, u;
    const T l2x2 = (T)2 * l2;
    for (u = 0; u < LANES; u++) s1[u] = s2[u] = 0;
    for (i = 0; i + LANES <= m; i += LANES)
        for (u = 0; u < LANES; u++) {
            const T v = w[i + u];
            s1[u] += FDM(fabs)(v);
            s2[u] += v * v;
            g[i + u] += l1 * (T)((v > 0) - (v < 0)) + l2x2 * v;
        }
    T t1 = 0, t2 = 0;
    for (; i < m; i++) {
        const T v = w[i];
        t1 += FDM(fabs)(v);
        t2 += v * v;
        g[i] += l1 * (T)((v > 0) - (v < 0)) + l2x2 * v;
    }
    *penalty += (double)l1 * (double)(FD(fd_fold)(s1) + t1)
              + (double)l2 * (double)(FD(fd_fold)(s2) + t2);
}

FD_DISPATCHED(head,
              (int loss, int act, T alpha, T delta, const T *restrict z, T *restrict a,
               const T *restrict y, const T *restrict sw, T *restrict dz,
               T *restrict scratch, ptrdiff_t n, ptrdiff_t k, T scale, double *restrict out),
              (loss, act, alpha, delta, z, a, y, sw, dz, scratch, n, k, scale, out))

FD_DISPATCHED(metrics,
              (const int *restrict ids, int count, const T *restrict a, const T *restrict y,
               ptrdiff_t n, ptrdiff_t k, T threshold, double *restrict sums),
              (ids, count, a, y, n, k, threshold, sums))

FD_DISPATCHED(regularize,
              (const T *restrict w, T *restrict g, ptrdiff_t m, T l1, T l2,
               double *restrict penalty),
              (w, g, m, l1, l2, penalty))
