# cython: language_level=3
"""Fused in-place optimizer updates: one pass over p, g and the state per update.

Every rule kernel reads p, g and its state once and writes p and its state once, for
float32 and float64 from one source. The gradient each rule sees is

    ĝ = clamp(pre·g, −cv, cv)·post

with `pre` the variable's clipnorm factor, `cv` the clipvalue (∞ when off) and `post` the
global_clipnorm factor (all exactly 1 when off, so the identity costs no rounding). Every
rule starts with decoupled weight decay `p ← p − p·wd·lr` (wd = 0 when off).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf, pow, INFINITY
import numpy as np

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int fd_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int fd_max_threads(void) { return 1; }
    #endif
    """
    int fd_max_threads() noexcept nogil

# The rule ids of updates.pxd, for Python callers (cdef enums are not visible there).
RULES = {
    "sgd": RULE_SGD, "sgd_momentum": RULE_SGD_MOMENTUM, "sgd_nesterov": RULE_SGD_NESTEROV,
    "rmsprop": RULE_RMSPROP, "rmsprop_centered": RULE_RMSPROP_CENTERED,
    "adam": RULE_ADAM, "adam_amsgrad": RULE_ADAM_AMSGRAD, "adagrad": RULE_ADAGRAD,
}
PARALLEL_MIN_VALUES = PARALLEL_MIN


# Threads for updates of at least PARALLEL_MIN values. Serial by default: on the 2-core
# machines this targets, a second thread wins ~10 % when the other core is idle and loses
# 2-4x when it is busy (bench/optimizers.py --threads 1 2), so it is an opt-in.
cdef int _num_threads = 1


def get_num_threads():
    """The number of threads an update of at least PARALLEL_MIN values uses."""
    return _num_threads


def set_num_threads(int k):
    """Use k threads for updates of at least PARALLEL_MIN values (capped at OpenMP's
    maximum, 1 when built without OpenMP); smaller updates always run on one thread."""
    global _num_threads
    if k < 1:
        raise ValueError(f"the number of threads must be at least 1, got {k}")
    _num_threads = min(k, fd_max_threads())


# ---------------------------------------------------------------------------------------
# Elementwise helpers
# ---------------------------------------------------------------------------------------

cdef inline floating fsqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating clipped(floating gi, floating pre, floating cv,
                             floating post) noexcept nogil:
    """ĝ = clamp(pre·g, −cv, cv)·post  (a NaN passes through unchanged)"""
    gi = gi * pre
    if gi > cv:
        gi = cv
    if gi < -cv:
        gi = -cv
    return gi * post


# ---------------------------------------------------------------------------------------
# Rule kernels: one pass each, p and state in place
# ---------------------------------------------------------------------------------------

cdef void sgd_update(floating* p, const floating* g, floating lr,
                     Py_ssize_t n) noexcept nogil:
    """p ← p − lr·g"""
    cdef Py_ssize_t i
    for i in range(n):
        p[i] -= lr * g[i]


cdef void sgd_step(floating* p, const floating* g, Py_ssize_t n, floating lr,
                   floating wd, floating pre, floating cv, floating post) noexcept nogil:
    """p ← p − p·wd·lr;  p ← p − lr·ĝ"""
    cdef Py_ssize_t i
    cdef floating gi, pi
    for i in range(n):
        gi = clipped(g[i], pre, cv, post)
        pi = p[i]
        if wd != 0:      # (an Inf weight must stay Inf, not become Inf·0 = NaN)
            pi = pi - pi * wd * lr
        p[i] = pi - lr * gi


cdef void sgd_momentum_step(floating* p, const floating* g, floating* m, Py_ssize_t n,
                            floating lr, floating mu, bint nesterov, floating wd,
                            floating pre, floating cv, floating post) noexcept nogil:
    """m ← μ·m − lr·ĝ;  p ← p + μ·m − lr·ĝ (Nesterov) or p ← p + m  (after weight decay)"""
    cdef Py_ssize_t i
    cdef floating gi, pi, mi
    if nesterov:
        for i in range(n):
            gi = clipped(g[i], pre, cv, post)
            pi = p[i]
            if wd != 0:      # (an Inf weight must stay Inf, not become Inf·0 = NaN)
                pi = pi - pi * wd * lr
            mi = mu * m[i] - lr * gi
            m[i] = mi
            p[i] = pi + (mu * mi - lr * gi)
    else:
        for i in range(n):
            gi = clipped(g[i], pre, cv, post)
            pi = p[i]
            if wd != 0:      # (an Inf weight must stay Inf, not become Inf·0 = NaN)
                pi = pi - pi * wd * lr
            mi = mu * m[i] - lr * gi
            m[i] = mi
            p[i] = pi + mi


cdef void rmsprop_step(floating* p, const floating* g, floating* v, floating* m,
                       Py_ssize_t n, floating lr, floating rho, floating omr, floating mu,
                       floating eps, floating wd, floating pre, floating cv,
                       floating post) noexcept nogil:
    """v ← ρ·v + (1−ρ)·ĝ²;  u = lr·ĝ/√(v + ε);  m ← μ·m + u, p ← p − m (m ≠ NULL) or p ← p − u
    (omr = 1−ρ)"""
    cdef Py_ssize_t i
    cdef floating gi, pi, vi, u, mi
    if m == NULL:
        for i in range(n):
            gi = clipped(g[i], pre, cv, post)
            pi = p[i]
            if wd != 0:      # (an Inf weight must stay Inf, not become Inf·0 = NaN)
                pi = pi - pi * wd * lr
            vi = rho * v[i] + omr * (gi * gi)
            v[i] = vi
            u = lr * gi / fsqrt(vi + eps)
            p[i] = pi - u
    else:
        for i in range(n):
            gi = clipped(g[i], pre, cv, post)
            pi = p[i]
            if wd != 0:      # (an Inf weight must stay Inf, not become Inf·0 = NaN)
                pi = pi - pi * wd * lr
            vi = rho * v[i] + omr * (gi * gi)
            v[i] = vi
            u = lr * gi / fsqrt(vi + eps)
            mi = mu * m[i] + u
            m[i] = mi
            p[i] = pi - mi


cdef void rmsprop_centered_step(floating* p, const floating* g, floating* v, floating* a,
                                floating* m, Py_ssize_t n, floating lr, floating rho,
                                floating omr, floating mu, floating eps, floating wd,
                                floating pre, floating cv, floating post) noexcept nogil:
    """v ← ρ·v + (1−ρ)·ĝ²;  a ← ρ·a + (1−ρ)·ĝ;  u = lr·ĝ/√(v − a² + ε);  then as rmsprop_step"""
    cdef Py_ssize_t i
    cdef floating gi, pi, vi, ai, u, mi
    if m == NULL:
        for i in range(n):
            gi = clipped(g[i], pre, cv, post)
            pi = p[i]
            if wd != 0:      # (an Inf weight must stay Inf, not become Inf·0 = NaN)
                pi = pi - pi * wd * lr
            vi = rho * v[i] + omr * (gi * gi)
            ai = rho * a[i] + omr * gi
            v[i] = vi
            a[i] = ai
            u = lr * gi / fsqrt(vi - ai * ai + eps)
            p[i] = pi - u
    else:
        for i in range(n):
            gi = clipped(g[i], pre, cv, post)
            pi = p[i]
            if wd != 0:      # (an Inf weight must stay Inf, not become Inf·0 = NaN)
                pi = pi - pi * wd * lr
            vi = rho * v[i] + omr * (gi * gi)
            ai = rho * a[i] + omr * gi
            v[i] = vi
            a[i] = ai
            u = lr * gi / fsqrt(vi - ai * ai + eps)
            mi = mu * m[i] + u
            m[i] = mi
            p[i] = pi - mi


cdef void adam_step(floating* p, const floating* g, floating* m, floating* v,
                    floating* vhat, Py_ssize_t n, floating alpha, floating b1c,
                    floating b2c, floating eps, floating lr, floating wd,
                    floating pre, floating cv, floating post) noexcept nogil:
    """m ← m + (ĝ − m)(1−β₁);  v ← v + (ĝ² − v)(1−β₂);  [v̂ ← max(v̂, v), v := v̂];
    p ← p − α·m/(√v + ε)   with α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ), b1c = 1−β₁, b2c = 1−β₂"""
    cdef Py_ssize_t i
    cdef floating gi, pi, mi, vi, vh
    if vhat == NULL:
        for i in range(n):
            gi = clipped(g[i], pre, cv, post)
            pi = p[i]
            if wd != 0:      # (an Inf weight must stay Inf, not become Inf·0 = NaN)
                pi = pi - pi * wd * lr
            mi = m[i]
            vi = v[i]
            mi = mi + (gi - mi) * b1c
            vi = vi + (gi * gi - vi) * b2c
            m[i] = mi
            v[i] = vi
            p[i] = pi - alpha * mi / (fsqrt(vi) + eps)
    else:
        for i in range(n):
            gi = clipped(g[i], pre, cv, post)
            pi = p[i]
            if wd != 0:      # (an Inf weight must stay Inf, not become Inf·0 = NaN)
                pi = pi - pi * wd * lr
            mi = m[i]
            vi = v[i]
            mi = mi + (gi - mi) * b1c
            vi = vi + (gi * gi - vi) * b2c
            m[i] = mi
            v[i] = vi
            vh = vhat[i]
            if not (vi <= vh):      # max(v̂, v), a NaN in v propagates
                vh = vi
            vhat[i] = vh
            p[i] = pi - alpha * mi / (fsqrt(vh) + eps)


cdef void adagrad_step(floating* p, const floating* g, floating* acc, Py_ssize_t n,
                       floating lr, floating eps, floating wd, floating pre, floating cv,
                       floating post) noexcept nogil:
    """acc ← acc + ĝ²;  p ← p − lr·ĝ/√(acc + ε)"""
    cdef Py_ssize_t i
    cdef floating gi, pi, ai
    for i in range(n):
        gi = clipped(g[i], pre, cv, post)
        pi = p[i]
        if wd != 0:      # (an Inf weight must stay Inf, not become Inf·0 = NaN)
            pi = pi - pi * wd * lr
        ai = acc[i] + gi * gi
        acc[i] = ai
        p[i] = pi - lr * gi / fsqrt(ai + eps)


cdef double clipped_sumsq(const floating* g, Py_ssize_t n, floating pre,
                          floating cv) noexcept nogil:
    """Σ clamp(pre·gᵢ, −cv, cv)², accumulated in double (four accumulators)"""
    cdef Py_ssize_t i = 0
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0, x0, x1, x2, x3
    cdef floating one = 1
    while i + 4 <= n:
        x0 = clipped(g[i], pre, cv, one)
        x1 = clipped(g[i + 1], pre, cv, one)
        x2 = clipped(g[i + 2], pre, cv, one)
        x3 = clipped(g[i + 3], pre, cv, one)
        s0 += x0 * x0
        s1 += x1 * x1
        s2 += x2 * x2
        s3 += x3 * x3
        i += 4
    while i < n:
        x0 = clipped(g[i], pre, cv, one)
        s0 += x0 * x0
        i += 1
    return (s0 + s1) + (s2 + s3)


# ---------------------------------------------------------------------------------------
# Dispatch: rule id → kernel, chunks → threads, variables → clipnorm factors
# ---------------------------------------------------------------------------------------

cdef int state_count(int rule, const double* h) noexcept nogil:
    """The number of state buffers rule `rule` with hyper-parameters h uses (-1: unknown)."""
    if rule == RULE_SGD:
        return 0
    if rule == RULE_SGD_MOMENTUM or rule == RULE_SGD_NESTEROV:
        return 1
    if rule == RULE_RMSPROP:
        return 2 if h[1] > 0 else 1
    if rule == RULE_RMSPROP_CENTERED:
        return 3 if h[1] > 0 else 2
    if rule == RULE_ADAM:
        return 2
    if rule == RULE_ADAM_AMSGRAD:
        return 3
    if rule == RULE_ADAGRAD:
        return 1
    return -1


cdef inline floating* at(floating** state, int k, Py_ssize_t lo) noexcept nogil:
    return state[k] + lo


cdef void rule_update(const StepConfig* cfg, floating* p, const floating* g,
                      floating** state, Py_ssize_t lo, Py_ssize_t hi,
                      double pre_d, double post_d) noexcept nogil:
    """The rule of cfg on p[lo:hi] (its gradient scaled by pre_d before and post_d after
    the clipvalue clamp); the caller has checked the rule id."""
    cdef Py_ssize_t n = hi - lo
    cdef floating lr = <floating>cfg.lr
    cdef floating wd = <floating>cfg.weight_decay
    cdef floating cv = <floating>cfg.clipvalue if cfg.clipvalue > 0 else <floating>INFINITY
    cdef floating pre = <floating>pre_d, post = <floating>post_d
    cdef double b1, b2, t = <double>cfg.t
    cdef int rule = cfg.rule
    cdef floating* m = NULL
    p += lo
    g += lo
    if rule == RULE_SGD:
        sgd_step(p, g, n, lr, wd, pre, cv, post)
    elif rule == RULE_SGD_MOMENTUM or rule == RULE_SGD_NESTEROV:
        sgd_momentum_step(p, g, at(state, 0, lo), n, lr, <floating>cfg.h[0],
                          rule == RULE_SGD_NESTEROV, wd, pre, cv, post)
    elif rule == RULE_RMSPROP:
        if cfg.h[1] > 0:
            m = at(state, 1, lo)
        rmsprop_step(p, g, at(state, 0, lo), m, n, lr, <floating>cfg.h[0],
                     <floating>(1 - cfg.h[0]), <floating>cfg.h[1], <floating>cfg.h[2],
                     wd, pre, cv, post)
    elif rule == RULE_RMSPROP_CENTERED:
        if cfg.h[1] > 0:
            m = at(state, 2, lo)
        rmsprop_centered_step(p, g, at(state, 0, lo), at(state, 1, lo), m, n, lr,
                              <floating>cfg.h[0], <floating>(1 - cfg.h[0]),
                              <floating>cfg.h[1], <floating>cfg.h[2], wd, pre, cv, post)
    elif rule == RULE_ADAM or rule == RULE_ADAM_AMSGRAD:
        b1 = cfg.h[0]
        b2 = cfg.h[1]
        if rule == RULE_ADAM_AMSGRAD:
            m = at(state, 2, lo)
        adam_step(p, g, at(state, 0, lo), at(state, 1, lo), m, n,
                  <floating>(cfg.lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t))),
                  <floating>(1 - b1), <floating>(1 - b2), <floating>cfg.h[2],
                  lr, wd, pre, cv, post)
    elif rule == RULE_ADAGRAD:
        adagrad_step(p, g, at(state, 0, lo), n, lr, <floating>cfg.h[0], wd, pre, cv, post)


cdef int threads_for(Py_ssize_t n) noexcept nogil:
    """1 below PARALLEL_MIN values, else the set_num_threads setting."""
    if n < PARALLEL_MIN:
        return 1
    return _num_threads


cdef void run_rule(const StepConfig* cfg, floating* p, const floating* g,
                   floating** state, Py_ssize_t lo, Py_ssize_t hi,
                   double pre, double post) noexcept nogil:
    """rule_update over p[lo:hi], split into one contiguous chunk per thread when large."""
    cdef int nt = threads_for(hi - lo)
    cdef Py_ssize_t c, a, b, nchunks
    if nt <= 1:
        rule_update(cfg, p, g, state, lo, hi, pre, post)
        return
    # Many small chunks handed out on demand, not one half per thread: on a shared
    # machine a thread that loses its core leaves its remaining chunks to the other
    # instead of holding up the whole update. CHUNK is a whole number of cache lines.
    nchunks = (hi - lo + CHUNK - 1) // CHUNK
    for c in prange(nchunks, num_threads=nt, schedule="dynamic"):
        a = lo + c * CHUNK
        b = a + CHUNK
        if b > hi:
            b = hi
        rule_update(cfg, p, g, state, a, b, pre, post)


cdef double clipnorm_factor(double clipnorm, const floating* g,
                            Py_ssize_t n) noexcept nogil:
    """min(1, clipnorm/‖g‖) (exactly 1 when ‖g‖ ≤ clipnorm or clipnorm is off)"""
    cdef double norm
    if clipnorm <= 0:
        return 1.0
    norm = sqrt(clipped_sumsq(g, n, <floating>1, <floating>INFINITY))
    return clipnorm / norm if norm > clipnorm else 1.0


cdef int optimizer_step(const StepConfig* cfg, floating* p, const floating* g,
                        floating** state, Py_ssize_t n,
                        const Py_ssize_t* seg, Py_ssize_t nseg) noexcept nogil:
    """Apply one update of rule cfg.rule to p in place; returns 0, or -1 for an unknown rule.

    ĝ = global_clip(clamp(clipnorm_var(g), ±clipvalue));  p ← p − p·wd·lr;  p ← rule(p, ĝ)
    """
    cdef Py_ssize_t whole[2]
    cdef Py_ssize_t s, lo, hi
    cdef double post = 1.0, pre, total, gnorm
    cdef floating cv = <floating>cfg.clipvalue if cfg.clipvalue > 0 else <floating>INFINITY
    if cfg.rule < 0 or cfg.rule >= N_RULES:
        return -1
    if n <= 0:
        return 0
    if seg == NULL or nseg <= 0:
        whole[0] = 0
        whole[1] = n
        seg = whole
        nseg = 1
    if cfg.global_clipnorm > 0:
        # one cheap pass before the update: the norm of the clipped gradient, in double
        total = 0.0
        for s in range(nseg):
            lo = seg[s]
            hi = seg[s + 1]
            pre = clipnorm_factor(cfg.clipnorm, g + lo, hi - lo)
            total += clipped_sumsq(g + lo, hi - lo, <floating>pre, cv)
        gnorm = sqrt(total)
        if gnorm > cfg.global_clipnorm:
            post = cfg.global_clipnorm / gnorm
    if cfg.clipnorm > 0:
        for s in range(nseg):
            lo = seg[s]
            hi = seg[s + 1]
            pre = clipnorm_factor(cfg.clipnorm, g + lo, hi - lo)
            run_rule(cfg, p, g, state, lo, hi, pre, post)
    else:
        run_rule(cfg, p, g, state, 0, n, 1.0, post)
    return 0


# ---------------------------------------------------------------------------------------
# Checked wrappers: the checks that make the unchecked cores safe, nothing more
# ---------------------------------------------------------------------------------------

cdef StepConfig make_config(int rule, h, double lr, long long t, double clipnorm,
                            double clipvalue, double global_clipnorm,
                            double weight_decay) except *:
    cdef StepConfig cfg
    cdef int k
    step_config_init(&cfg)
    if rule < 0 or rule >= N_RULES:
        raise ValueError(f"unknown rule id {rule}")
    h = tuple(h)
    if len(h) > N_HYPER:
        raise ValueError(f"h holds at most {N_HYPER} values, got {len(h)}")
    if t < 1:
        raise ValueError(f"t is the 1-based update count, got {t}")
    cfg.rule = rule
    cfg.lr = lr
    cfg.t = t
    for k in range(len(h)):
        cfg.h[k] = h[k]
    cfg.clipnorm = clipnorm
    cfg.clipvalue = clipvalue
    cfg.global_clipnorm = global_clipnorm
    cfg.weight_decay = weight_decay
    return cfg


cdef int gather_state(const StepConfig* cfg, floating[::1] p, list state,
                      floating** ptrs) except -1:
    """Check the state list against the rule and fill ptrs[0..2] (NULL where unused)."""
    cdef int k, need = state_count(cfg.rule, cfg.h)
    cdef floating[::1] s
    dtype = np.float32 if floating is float else np.float64
    ptrs[0] = ptrs[1] = ptrs[2] = NULL
    if len(state) != need:
        raise ValueError(f"rule {cfg.rule} uses {need} state buffers, got {len(state)}")
    for k in range(need):
        a = state[k]
        if not isinstance(a, np.ndarray) or a.dtype != dtype or a.ndim != 1 \
                or a.shape[0] != p.shape[0] or not a.flags.c_contiguous \
                or not a.flags.writeable:
            raise ValueError(
                f"state[{k}] must be a writable contiguous 1-D {np.dtype(dtype)} array of "
                f"{p.shape[0]} values, got "
                f"{getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}")
        s = a
        if p.shape[0]:
            ptrs[k] = &s[0]
    for k in range(need):
        for j in range(need):
            if j != k and p.shape[0] and ptrs[j] == ptrs[k]:
                raise ValueError(f"state[{j}] and state[{k}] are the same buffer")
        if p.shape[0] and <void*>ptrs[k] == <void*>&p[0]:
            raise ValueError(f"state[{k}] is the parameter buffer itself")
    return 0


cdef int check_pair(floating[::1] p, const floating[::1] g) except -1:
    cdef Py_ssize_t n = p.shape[0]
    if n != g.shape[0]:
        raise ValueError(f"p and g differ in size: {n} != {g.shape[0]}")
    if n and <const void*>&g[0] < <const void*>(&p[0] + n) \
            and <const void*>&p[0] < <const void*>(&g[0] + n):
        raise ValueError("p and g overlap in memory: g must stay unmodified")
    return 0


def optimizer_step_checked(floating[::1] p not None, const floating[::1] g not None,
                           list state not None, int rule, h, double lr, long long t,
                           double clipnorm=0.0, double clipvalue=0.0,
                           double global_clipnorm=0.0, double weight_decay=0.0,
                           seg=None):
    """optimizer_step on a flat buffer p (in place) from g, with the rule's state list and
    optional variable offsets seg (int64, seg[0] = 0, seg[-1] = len(p), non-decreasing)."""
    cdef StepConfig cfg = make_config(rule, h, lr, t, clipnorm, clipvalue,
                                      global_clipnorm, weight_decay)
    cdef floating* ptrs[3]
    cdef const Py_ssize_t[::1] sv
    cdef const Py_ssize_t* sp = NULL
    cdef Py_ssize_t nseg = 0, n = p.shape[0]
    cdef int rc
    check_pair(p, g)
    gather_state(&cfg, p, state, ptrs)
    if seg is not None:
        seg_arr = np.ascontiguousarray(seg, dtype=np.intp)
        if seg_arr.ndim != 1 or seg_arr.shape[0] < 2 or seg_arr[0] != 0 \
                or seg_arr[seg_arr.shape[0] - 1] != n or (np.diff(seg_arr) < 0).any():
            raise ValueError(
                f"seg must run non-decreasing from 0 to {n}, got {seg_arr!r}")
        sv = seg_arr
        sp = &sv[0]
        nseg = seg_arr.shape[0] - 1
    if n == 0:
        return
    with nogil:
        rc = optimizer_step(&cfg, &p[0], &g[0], ptrs, n, sp, nseg)
    if rc != 0:
        raise ValueError(f"unknown rule id {rule}")


def rule_update_checked(floating[::1] p not None, const floating[::1] g not None,
                        list state not None, int rule, h, double lr, long long t,
                        double clipvalue=0.0, double weight_decay=0.0,
                        double pre=1.0, double post=1.0):
    """One rule update of p in place from ĝ = clamp(pre·g, ±clipvalue)·post, after weight
    decay: the per-array step of Optimizer.apply, whose caller computes pre and post."""
    cdef StepConfig cfg = make_config(rule, h, lr, t, 0.0, clipvalue, 0.0, weight_decay)
    cdef floating* ptrs[3]
    check_pair(p, g)
    gather_state(&cfg, p, state, ptrs)
    if p.shape[0] == 0:
        return
    with nogil:
        run_rule(&cfg, &p[0], &g[0], ptrs, 0, p.shape[0], pre, post)


def clipped_sumsq_checked(const floating[::1] g not None, double pre=1.0,
                          double clipvalue=0.0):
    """Σ clamp(pre·gᵢ, ±clipvalue)² in double (clipvalue 0 = no clamp)."""
    cdef floating cv = <floating>clipvalue if clipvalue > 0 else <floating>INFINITY
    cdef double s
    if g.shape[0] == 0:
        return 0.0
    with nogil:
        s = clipped_sumsq(&g[0], g.shape[0], <floating>pre, cv)
    return s


def state_count_checked(int rule, h):
    """The number of state buffers a rule uses with hyper-parameters h (layout: updates.pxd)."""
    cdef StepConfig cfg = make_config(rule, h, 0.0, 1, 0.0, 0.0, 0.0, 0.0)
    return state_count(cfg.rule, cfg.h)


def sgd_update_checked(floating[::1] p not None, const floating[::1] g not None,
                       double lr):
    """p ← p − lr·g, in place, for 1-D contiguous arrays of one float dtype."""
    if p.shape[0] != g.shape[0]:
        raise ValueError(f"p and g differ in size: {p.shape[0]} != {g.shape[0]}")
    with nogil:
        sgd_update(&p[0] if p.shape[0] else NULL, &g[0] if g.shape[0] else NULL,
                   <floating>lr, p.shape[0])
