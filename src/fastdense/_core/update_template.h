/* The elementwise loops of the optimizer rules, written once for the type T (float or
 * double) with the name suffix SUF and square root SQRT; included twice by
 * update_kernels.h. updates.pyx drives them (norm passes, threads, rule choice).
 *
 * Each loop reads p, g and the rule's state once and writes p and the state once. The
 * gradient a rule sees is ĝ = clamp(pre·g, −cv, cv)·post, and every rule starts with
 * decoupled weight decay p ← p − p·wd·lr. When no option is on (pre = post = 1, cv = ∞,
 * wd = 0) both are the identity, and a second copy of each loop without them is used:
 * the same values without the clamp's and the decay's arithmetic (which matters most on
 * baseline SSE2, where the loops are closest to compute-bound).
 *
 * Each loop is an always-inline body whose mode flags are compile-time constants at every
 * call, instantiated below once per instruction set (baseline x86-64, AVX2+FMA, AVX-512)
 * with GCC target attributes; fd_isa picks one at run time. The results differ between
 * instruction sets only by fused multiply-add rounding. Every buffer is `restrict`: the
 * callers guarantee that p, g and the state buffers do not overlap.
 */
#define FD_CAT_(a, b) a##_##b
#define FD_CAT(a, b) FD_CAT_(a, b)
#define FD(name) FD_CAT(name, SUF)
#define FD_INLINE static inline __attribute__((always_inline))

/* ĝ = clamp(pre·g, −cv, cv)·post  (a NaN passes through unchanged); g when !opts */
FD_INLINE T FD(upd_clipped)(T gi, T pre, T cv, T post, const int opts)
{
    if (!opts)
        return gi;
    gi = gi * pre;
    gi = gi > cv ? cv : gi;
    gi = gi < -cv ? -cv : gi;
    return gi * post;
}

/* p − p·wd·lr;  p when !opts */
FD_INLINE T FD(upd_decayed)(T pi, T wd, T lr, const int opts)
{
    /* wd == 0 skips the product: an infinite weight must stay infinite, not Inf·0 = NaN */
    return (opts && wd != 0) ? pi - pi * wd * lr : pi;
}

/* 1 when every option is off, so the loops without clamp and decay give the same values */
FD_INLINE int FD(upd_plain)(T wd, T pre, T cv, T post)
{
    return wd == 0 && pre == 1 && post == 1 && cv == (T)INFINITY;
}

#define UPD_OPTS T wd, T pre, T cv, T post
#define UPD_CLIP(x) FD(upd_clipped)(x, pre, cv, post, opts)
#define UPD_DECAY(x) FD(upd_decayed)(x, wd, lr, opts)

/* ---- SGD: p ← p − lr·ĝ ------------------------------------------------------------ */
FD_INLINE void FD(sgd_loop)(T *restrict p, const T *restrict g, ptrdiff_t n, T lr,
                             UPD_OPTS, const int opts)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        T gi = UPD_CLIP(g[i]);
        T pi = UPD_DECAY(p[i]);
        p[i] = pi - lr * gi;
    }
}

FD_INLINE void FD(sgd_step_body)(T *restrict p, const T *restrict g, ptrdiff_t n, T lr,
                                  UPD_OPTS)
{
    if (FD(upd_plain)(wd, pre, cv, post))
        FD(sgd_loop)(p, g, n, lr, wd, pre, cv, post, 0);
    else
        FD(sgd_loop)(p, g, n, lr, wd, pre, cv, post, 1);
}

/* ---- SGD with momentum: m ← μ·m − lr·ĝ;  p ← p + μ·m − lr·ĝ (Nesterov) or p ← p + m -- */
FD_INLINE void FD(sgd_momentum_loop)(T *restrict p, const T *restrict g, T *restrict m,
                                      ptrdiff_t n, T lr, T mu, UPD_OPTS,
                                      const int nesterov, const int opts)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        T gi = UPD_CLIP(g[i]);
        T pi = UPD_DECAY(p[i]);
        T mi = mu * m[i] - lr * gi;
        m[i] = mi;
        p[i] = nesterov ? pi + (mu * mi - lr * gi) : pi + mi;
    }
}

FD_INLINE void FD(sgd_momentum_step_body)(T *restrict p, const T *restrict g,
                                           T *restrict m, ptrdiff_t n, T lr, T mu,
                                           int nesterov, UPD_OPTS)
{
    int plain = FD(upd_plain)(wd, pre, cv, post);
#define CALL(nes, o) FD(sgd_momentum_loop)(p, g, m, n, lr, mu, wd, pre, cv, post, nes, o)
    if (nesterov) { if (plain) CALL(1, 0); else CALL(1, 1); }
    else          { if (plain) CALL(0, 0); else CALL(0, 1); }
#undef CALL
}

/* ---- RMSprop: v ← ρ·v + (1−ρ)·ĝ²;  [a ← ρ·a + (1−ρ)·ĝ;]  u = lr·ĝ/√(v [− a²] + ε);
 *      m ← μ·m + u, p ← p − m (m ≠ NULL) or p ← p − u   (omr = 1−ρ) ---------------- */
FD_INLINE void FD(rmsprop_loop)(T *restrict p, const T *restrict g, T *restrict v,
                                 T *restrict a, T *restrict m, ptrdiff_t n, T lr, T rho,
                                 T omr, T mu, T eps, UPD_OPTS, const int centered,
                                 const int momentum, const int opts)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        T gi = UPD_CLIP(g[i]);
        T pi = UPD_DECAY(p[i]);
        T vi = rho * v[i] + omr * (gi * gi);
        T d;
        v[i] = vi;
        if (centered) {
            T ai = rho * a[i] + omr * gi;
            a[i] = ai;
            d = vi - ai * ai + eps;
        } else {
            d = vi + eps;
        }
        T u = lr * gi / SQRT(d);
        if (momentum) {
            T mi = mu * m[i] + u;
            m[i] = mi;
            p[i] = pi - mi;
        } else {
            p[i] = pi - u;
        }
    }
}

/* a == NULL: plain RMSprop; m == NULL: without momentum */
FD_INLINE void FD(rmsprop_step_body)(T *restrict p, const T *restrict g, T *restrict v,
                                      T *restrict a, T *restrict m, ptrdiff_t n, T lr,
                                      T rho, T omr, T mu, T eps, UPD_OPTS)
{
    int plain = FD(upd_plain)(wd, pre, cv, post);
#define CALL(c, mo, o) FD(rmsprop_loop)(p, g, v, a, m, n, lr, rho, omr, mu, eps,         \
                                        wd, pre, cv, post, c, mo, o)
    if (a == NULL) {
        if (m == NULL) { if (plain) CALL(0, 0, 0); else CALL(0, 0, 1); }
        else           { if (plain) CALL(0, 1, 0); else CALL(0, 1, 1); }
    } else {
        if (m == NULL) { if (plain) CALL(1, 0, 0); else CALL(1, 0, 1); }
        else           { if (plain) CALL(1, 1, 0); else CALL(1, 1, 1); }
    }
#undef CALL
}

/* ---- Adam: m ← m + (ĝ − m)(1−β₁);  v ← v + (ĝ² − v)(1−β₂);  [v̂ ← max(v̂, v), v := v̂];
 *      p ← p − α·m/(√v + ε)   (b1c = 1−β₁, b2c = 1−β₂) ------------------------------ */
FD_INLINE void FD(adam_loop)(T *restrict p, const T *restrict g, T *restrict m,
                              T *restrict v, T *restrict vhat, ptrdiff_t n, T alpha, T b1c,
                              T b2c, T eps, T lr, UPD_OPTS, const int amsgrad,
                              const int opts)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        T gi = UPD_CLIP(g[i]);
        T pi = UPD_DECAY(p[i]);
        T mi = m[i], vi = v[i];
        mi = mi + (gi - mi) * b1c;
        vi = vi + (gi * gi - vi) * b2c;
        m[i] = mi;
        v[i] = vi;
        if (amsgrad) {
            T vh = vhat[i];
            vh = vi <= vh ? vh : vi;        /* max(v̂, v); a NaN in v propagates */
            vhat[i] = vh;
            vi = vh;
        }
        p[i] = pi - alpha * mi / (SQRT(vi) + eps);
    }
}

/* vhat == NULL: without AMSGrad */
FD_INLINE void FD(adam_step_body)(T *restrict p, const T *restrict g, T *restrict m,
                                   T *restrict v, T *restrict vhat, ptrdiff_t n, T alpha,
                                   T b1c, T b2c, T eps, T lr, UPD_OPTS)
{
    int plain = FD(upd_plain)(wd, pre, cv, post);
#define CALL(ams, o) FD(adam_loop)(p, g, m, v, vhat, n, alpha, b1c, b2c, eps, lr,           \
                                   wd, pre, cv, post, ams, o)
    if (vhat == NULL) { if (plain) CALL(0, 0); else CALL(0, 1); }
    else              { if (plain) CALL(1, 0); else CALL(1, 1); }
#undef CALL
}

/* ---- Adagrad: acc ← acc + ĝ²;  p ← p − lr·ĝ/√(acc + ε) ----------------------------- */
FD_INLINE void FD(adagrad_loop)(T *restrict p, const T *restrict g, T *restrict acc,
                                 ptrdiff_t n, T lr, T eps, UPD_OPTS, const int opts)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        T gi = UPD_CLIP(g[i]);
        T pi = UPD_DECAY(p[i]);
        T ai = acc[i] + gi * gi;
        acc[i] = ai;
        p[i] = pi - lr * gi / SQRT(ai + eps);
    }
}

FD_INLINE void FD(adagrad_step_body)(T *restrict p, const T *restrict g, T *restrict acc,
                                      ptrdiff_t n, T lr, T eps, UPD_OPTS)
{
    if (FD(upd_plain)(wd, pre, cv, post))
        FD(adagrad_loop)(p, g, acc, n, lr, eps, wd, pre, cv, post, 0);
    else
        FD(adagrad_loop)(p, g, acc, n, lr, eps, wd, pre, cv, post, 1);
}


FD_DISPATCHED(sgd_step,
            (T *restrict p, const T *restrict g, ptrdiff_t n, T lr, UPD_OPTS),
            (p, g, n, lr, wd, pre, cv, post))
FD_DISPATCHED(sgd_momentum_step,
            (T *restrict p, const T *restrict g, T *restrict m, ptrdiff_t n, T lr, T mu,
             int nesterov, UPD_OPTS),
            (p, g, m, n, lr, mu, nesterov, wd, pre, cv, post))
FD_DISPATCHED(rmsprop_step,
            (T *restrict p, const T *restrict g, T *restrict v, T *restrict a,
             T *restrict m, ptrdiff_t n, T lr, T rho, T omr, T mu, T eps, UPD_OPTS),
            (p, g, v, a, m, n, lr, rho, omr, mu, eps, wd, pre, cv, post))
FD_DISPATCHED(adam_step,
            (T *restrict p, const T *restrict g, T *restrict m, T *restrict v,
             T *restrict vhat, ptrdiff_t n, T alpha, T b1c, T b2c, T eps, T lr, UPD_OPTS),
            (p, g, m, v, vhat, n, alpha, b1c, b2c, eps, lr, wd, pre, cv, post))
FD_DISPATCHED(adagrad_step,
            (T *restrict p, const T *restrict g, T *restrict acc, ptrdiff_t n, T lr, T eps,
             UPD_OPTS),
            (p, g, acc, n, lr, eps, wd, pre, cv, post))

#undef UPD_OPTS
#undef UPD_CLIP
#undef UPD_DECAY
#undef FD_INLINE
#undef FD
#undef FD_CAT
#undef FD_CAT_
