# cython: language_level=3
"""Fused in-place optimizer updates: one pass over p, g and the state per update.

Every rule kernel reads p, g and its state once and writes p and its state once, for
float32 and float64 from one source. The gradient each rule sees is

    ĝ = clamp(pre·g, −cv, cv)·post

with `pre` the variable's clipnorm factor, `cv` the clipvalue (∞ when off) and `post` the
global_clipnorm factor (all exactly 1 when off, so the identity costs no rounding). Every
rule starts with decoupled weight decay `p ← p − p·wd·lr` (wd = 0 when off).

The elementwise loops live in update_template.h, compiled for baseline x86-64, AVX2+FMA
and AVX-512 and chosen at run time (`set_isa`); this module drives them: rule choice,
clipnorm passes, threads, and the checks that make the unchecked cores safe.
"""
from cython cimport floating
from fastdense._core.blas cimport axpy
from libc.math cimport sqrt, pow, INFINITY
import operator
import os

import numpy as np

cdef extern from "fd_pool.h" nogil:
    ctypedef void (*fd_pool_fn)(void* arg, Py_ssize_t chunk) noexcept nogil
    int FD_POOL_MAX_THREADS
    int fd_pool_supported()
    int fd_pool_cpu_count()
    int fd_pool_run(int nthreads, Py_ssize_t nchunks, fd_pool_fn fn, void* arg)
    int fd_pool_workers()
    long long fd_pool_jobs()

# The rule ids of updates.pxd, for Python callers (cdef enums are not visible there).
RULES = {
    "sgd": RULE_SGD, "sgd_momentum": RULE_SGD_MOMENTUM, "sgd_nesterov": RULE_SGD_NESTEROV,
    "rmsprop": RULE_RMSPROP, "rmsprop_centered": RULE_RMSPROP_CENTERED,
    "adam": RULE_ADAM, "adam_amsgrad": RULE_ADAM_AMSGRAD, "adagrad": RULE_ADAGRAD,
}
PARALLEL_MIN_VALUES = PARALLEL_MIN
CHUNK_VALUES = CHUNK

# Plain SGD over at least this many values goes to BLAS's axpy (OpenBLAS threads it):
# 669 k floats in 28 µs against 54 µs for the single-thread loop, with the threads the
# step's GEMMs have just woken. Where none woke them (cfg.blas_cold: every product of the
# step ran fastdense's own kernels) waking them costs more than the loop: a 10-256-256-1
# fit at batch 1 took 53.8 µs per update through axpy and asum against 37.9 with BLAS on
# one thread.
cdef enum:
    AXPY_MIN = 1 << 16


# Threads for updates of at least PARALLEL_MIN values: by default every core this process
# may use (at most FD_POOL_MAX_THREADS), or fewer where OPENBLAS_NUM_THREADS or
# OMP_NUM_THREADS says so (an MPI rank started with one BLAS thread gets one update
# thread), and 1 where fd_pool.h has no threads (MSVC). The pool's workers sleep in the
# kernel between updates, so in a fit they never hold a core while the BLAS threads of
# the next GEMM run: libgomp's spinning workers made the `wide` fit with Adam 3.4-4.4x
# slower, which is why the OpenMP split of earlier versions was off by default.
# Measured figures: README's benchmark section and bench/optimizers.py.
THREADS_SUPPORTED = bool(fd_pool_supported())


def _env_threads():
    """The first of OPENBLAS_NUM_THREADS, OMP_NUM_THREADS that is a positive integer
    (OpenBLAS's own order), else None."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def default_num_threads():
    """The thread count updates use by default: the cores this process may run on (its
    CPU affinity on Linux, at most 64), capped by OPENBLAS_NUM_THREADS or OMP_NUM_THREADS
    when set; 1 without a thread pool."""
    if not fd_pool_supported():
        return 1
    cores = fd_pool_cpu_count()
    env = _env_threads()
    return cores if env is None else min(cores, env)


cdef int _num_threads = default_num_threads()


def get_num_threads():
    """The number of threads (the calling one included) an update of at least
    PARALLEL_MIN_VALUES values is split over."""
    return _num_threads


def set_num_threads(k):
    """Split updates of at least PARALLEL_MIN_VALUES values over k threads (k ≥ 1; capped
    at 64, and 1 where the build has no thread pool); 1 runs every update serially on
    the calling thread. Smaller updates always run on the calling thread."""
    global _num_threads
    try:
        if isinstance(k, bool):
            raise TypeError
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"the number of threads must be an integer, got {k!r}") from None
    if k < 1:
        raise ValueError(f"the number of threads must be at least 1, got {k}")
    _num_threads = min(k, FD_POOL_MAX_THREADS) if fd_pool_supported() else 1


def pool_info():
    """{'workers': worker threads created so far, 'jobs': updates (or pieces of a
    clipnorm update) run on more than one thread since the module loaded}, for tests."""
    return {"workers": fd_pool_workers(), "jobs": fd_pool_jobs()}


# ---------------------------------------------------------------------------------------
# Elementwise helpers
# ---------------------------------------------------------------------------------------

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
# Rule kernels: one pass each, p and state in place. The loops live in update_template.h,
# compiled for baseline x86-64, AVX2+FMA and AVX-512 and chosen at run time (set_isa).
# ---------------------------------------------------------------------------------------

cdef extern from "update_kernels.h" nogil:
    int FD_ISA_BASE, FD_ISA_AVX2, FD_ISA_AVX512
    int fd_set_isa(int isa)
    int fd_isa
    # p ← p − p·wd·lr;  p ← p − lr·ĝ
    void sgd_step_f(float* p, const float* g, Py_ssize_t n, float lr,
                    float wd, float pre, float cv, float post)
    void sgd_step_d(double* p, const double* g, Py_ssize_t n, double lr,
                    double wd, double pre, double cv, double post)
    # m ← μ·m − lr·ĝ;  p ← p + μ·m − lr·ĝ (Nesterov) or p ← p + m  (after weight decay)
    void sgd_momentum_step_f(float* p, const float* g, float* m, Py_ssize_t n, float lr,
                             float mu, int nesterov, float wd, float pre, float cv,
                             float post)
    void sgd_momentum_step_d(double* p, const double* g, double* m, Py_ssize_t n,
                             double lr, double mu, int nesterov, double wd, double pre,
                             double cv, double post)
    # v ← ρ·v + (1−ρ)·ĝ²;  [a ← ρ·a + (1−ρ)·ĝ (a ≠ NULL)];  u = lr·ĝ/√(v [− a²] + ε);
    # m ← μ·m + u, p ← p − m (m ≠ NULL) or p ← p − u   (omr = 1−ρ)
    void rmsprop_step_f(float* p, const float* g, float* v, float* a, float* m,
                        Py_ssize_t n, float lr, float rho, float omr, float mu, float eps,
                        float wd, float pre, float cv, float post)
    void rmsprop_step_d(double* p, const double* g, double* v, double* a, double* m,
                        Py_ssize_t n, double lr, double rho, double omr, double mu,
                        double eps, double wd, double pre, double cv, double post)
    # m ← m + (ĝ − m)(1−β₁);  v ← v + (ĝ² − v)(1−β₂);  [v̂ ← max(v̂, v), v := v̂];
    # p ← p − α·m/(√v + ε)   (b1c = 1−β₁, b2c = 1−β₂; vhat NULL: no AMSGrad)
    void adam_step_f(float* p, const float* g, float* m, float* v, float* vhat,
                     Py_ssize_t n, float alpha, float b1c, float b2c, float eps, float lr,
                     float wd, float pre, float cv, float post)
    void adam_step_d(double* p, const double* g, double* m, double* v, double* vhat,
                     Py_ssize_t n, double alpha, double b1c, double b2c, double eps,
                     double lr, double wd, double pre, double cv, double post)
    # acc ← acc + ĝ²;  p ← p − lr·ĝ/√(acc + ε)
    void adagrad_step_f(float* p, const float* g, float* acc, Py_ssize_t n, float lr,
                        float eps, float wd, float pre, float cv, float post)
    void adagrad_step_d(double* p, const double* g, double* acc, Py_ssize_t n, double lr,
                        double eps, double wd, double pre, double cv, double post)

from fastdense._core._isa import ISA_NAMES, name_of as _isa_name, select as _select_isa

if (FD_ISA_BASE, FD_ISA_AVX2, FD_ISA_AVX512) != tuple(ISA_NAMES.values()):
    raise ImportError("fd_isa.h's instruction set ids differ from fastdense._core._isa")
fd_set_isa(-1)


def _set_isa_id(int isa):
    return fd_set_isa(isa)


def set_isa(name=None):
    """Select the instruction set of the update loops ("base", "avx2", "avx512"; None for
    the best this CPU has); a request above what the CPU supports is lowered to it.
    Returns the name in force. Separate from dense.set_isa. For tests and benchmarks; not
    thread-safe."""
    return _select_isa(name, _set_isa_id)


def get_isa():
    """The instruction set of the update loops now in force."""
    return _isa_name(fd_isa)


cdef void sgd_update(floating* p, const floating* g, floating lr,
                     Py_ssize_t n) noexcept nogil:
    """p ← p − lr·g"""
    cdef Py_ssize_t i
    for i in range(n):
        p[i] -= lr * g[i]


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
    """The rule of cfg on p[lo:hi] and its state from the gradient g[0:hi − lo] (scaled by
    pre_d before and post_d after the clipvalue clamp); the caller has checked the rule
    id. g points at the gradient of p[lo] itself, so it may be a span stored apart."""
    cdef Py_ssize_t n = hi - lo
    cdef floating lr = <floating>cfg.lr
    cdef floating wd = <floating>cfg.weight_decay
    cdef floating cv = <floating>cfg.clipvalue if cfg.clipvalue > 0 else <floating>INFINITY
    cdef floating pre = <floating>pre_d, post = <floating>post_d
    cdef double b1, b2, t = <double>cfg.t
    cdef int rule = cfg.rule
    cdef floating* m = NULL
    cdef floating* a = NULL
    cdef floating alpha
    p += lo
    if rule == RULE_SGD:
        if floating is float:
            sgd_step_f(p, g, n, lr, wd, pre, cv, post)
        else:
            sgd_step_d(p, g, n, lr, wd, pre, cv, post)
    elif rule == RULE_SGD_MOMENTUM or rule == RULE_SGD_NESTEROV:
        if floating is float:
            sgd_momentum_step_f(p, g, at(state, 0, lo), n, lr, <float>cfg.h[0],
                                rule == RULE_SGD_NESTEROV, wd, pre, cv, post)
        else:
            sgd_momentum_step_d(p, g, at(state, 0, lo), n, lr, cfg.h[0],
                                rule == RULE_SGD_NESTEROV, wd, pre, cv, post)
    elif rule == RULE_RMSPROP or rule == RULE_RMSPROP_CENTERED:
        # state: [v, (a,) (m)] — see updates.pxd
        if rule == RULE_RMSPROP_CENTERED:
            a = at(state, 1, lo)
            if cfg.h[1] > 0:
                m = at(state, 2, lo)
        elif cfg.h[1] > 0:
            m = at(state, 1, lo)
        if floating is float:
            rmsprop_step_f(p, g, at(state, 0, lo), a, m, n, lr, <float>cfg.h[0],
                           <float>(1 - cfg.h[0]), <float>cfg.h[1], <float>cfg.h[2],
                           wd, pre, cv, post)
        else:
            rmsprop_step_d(p, g, at(state, 0, lo), a, m, n, lr, cfg.h[0], 1 - cfg.h[0],
                           cfg.h[1], cfg.h[2], wd, pre, cv, post)
    elif rule == RULE_ADAM or rule == RULE_ADAM_AMSGRAD:
        b1 = cfg.h[0]
        b2 = cfg.h[1]
        if rule == RULE_ADAM_AMSGRAD:
            m = at(state, 2, lo)
        alpha = <floating>(cfg.lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t)))
        if floating is float:
            adam_step_f(p, g, at(state, 0, lo), at(state, 1, lo), m, n, alpha,
                        <float>(1 - b1), <float>(1 - b2), <float>cfg.h[2], lr, wd, pre,
                        cv, post)
        else:
            adam_step_d(p, g, at(state, 0, lo), at(state, 1, lo), m, n, alpha,
                        1 - b1, 1 - b2, cfg.h[2], lr, wd, pre, cv, post)
    elif rule == RULE_ADAGRAD:
        if floating is float:
            adagrad_step_f(p, g, at(state, 0, lo), n, lr, <float>cfg.h[0], wd, pre, cv,
                           post)
        else:
            adagrad_step_d(p, g, at(state, 0, lo), n, lr, cfg.h[0], wd, pre, cv, post)


cdef int threads_for(Py_ssize_t n) noexcept nogil:
    """1 below PARALLEL_MIN values, else the set_num_threads setting."""
    if n < PARALLEL_MIN:
        return 1
    return _num_threads


ctypedef struct RuleTask:
    # rule_update over p[lo:hi] in pieces of `chunk` values: the job fd_pool_run hands out
    const StepConfig* cfg
    void* p
    const void* g
    void** state
    Py_ssize_t lo, hi, chunk
    double pre, post
    bint is_double


cdef void rule_chunk(void* arg, Py_ssize_t c) noexcept nogil:
    """Piece c of a RuleTask (fd_pool_fn)."""
    cdef RuleTask* t = <RuleTask*>arg
    cdef Py_ssize_t a = t.lo + c * t.chunk
    cdef Py_ssize_t b = a + t.chunk
    if b > t.hi:
        b = t.hi
    if t.is_double:
        rule_update(t.cfg, <double*>t.p, <const double*>t.g + a, <double**>t.state, a, b,
                    t.pre, t.post)
    else:
        rule_update(t.cfg, <float*>t.p, <const float*>t.g + a, <float**>t.state, a, b,
                    t.pre, t.post)


cdef void run_rule(const StepConfig* cfg, floating* p, const floating* g,
                   floating** state, Py_ssize_t lo, Py_ssize_t hi,
                   double pre, double post) noexcept nogil:
    """rule_update over p[lo:hi]: the values before p's first 64-byte boundary on their
    own, the rest in CHUNK-sized pieces spread over the pool's threads when large."""
    cdef Py_ssize_t head = ((64 - <size_t>(p + lo) % 64) % 64) // sizeof(floating)
    cdef int nt
    cdef RuleTask task
    # NumPy's large arrays start 16 bytes past a cache line, and p, g and the state
    # alike, so starting the vector loops at p's first cache line aligns every stream:
    # the AVX-512 loops lose ~10 % to loads split across cache lines otherwise.
    if head > 0 and hi - lo > head:
        rule_update(cfg, p, g + lo, state, lo, lo + head, pre, post)
        lo += head
    nt = threads_for(hi - lo)
    if nt <= 1:
        rule_update(cfg, p, g + lo, state, lo, hi, pre, post)
        return
    # Many small pieces (whole cache lines, starting at p's first one) handed out on
    # demand, not one half per thread: on a shared machine a thread that wakes late or
    # loses its core leaves its remaining pieces to the other instead of holding up the
    # whole update. The per-value arithmetic does not depend on the split.
    task.cfg = cfg
    task.p = p
    task.g = g
    task.state = <void**>state
    task.lo = lo
    task.hi = hi
    task.chunk = CHUNK
    task.pre = pre
    task.post = post
    task.is_double = floating is double
    fd_pool_run(nt, (hi - lo + CHUNK - 1) // CHUNK, rule_chunk, &task)


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
    if (cfg.rule == RULE_SGD and n >= AXPY_MIN and not cfg.blas_cold
            and cfg.clipnorm <= 0 and cfg.clipvalue <= 0
            and cfg.global_clipnorm <= 0 and cfg.weight_decay == 0):
        # plain SGD is p ← p + (−lr)·g, BLAS's axpy: the same fused multiply-add per value
        # as rule_update, spread over the BLAS threads a fit's GEMMs have just woken
        axpy(n, -<floating>cfg.lr, g, p)
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


cdef inline bint overlap(const void* x, const void* y, Py_ssize_t nbytes) noexcept:
    """[x, x + nbytes) and [y, y + nbytes) share a byte"""
    return <const char*>x < <const char*>y + nbytes and <const char*>y < <const char*>x + nbytes


cdef int gather_state(const StepConfig* cfg, floating[::1] p, const floating[::1] g,
                      list state, floating** ptrs) except -1:
    """Check the state list against the rule and fill ptrs[0..2] (NULL where unused).
    The kernels take every buffer as `restrict`: no state buffer may overlap another, p
    or g (check_pair has checked p against g)."""
    cdef int k, j, need = state_count(cfg.rule, cfg.h)
    cdef Py_ssize_t n = p.shape[0], nbytes = p.shape[0] * sizeof(floating)
    cdef floating[::1] s
    dtype = np.float32 if floating is float else np.float64
    ptrs[0] = ptrs[1] = ptrs[2] = NULL
    if len(state) != need:
        raise ValueError(f"rule {cfg.rule} uses {need} state buffers, got {len(state)}")
    for k in range(need):
        a = state[k]
        if not isinstance(a, np.ndarray) or a.dtype != dtype or a.ndim != 1 \
                or a.shape[0] != n or not a.flags.c_contiguous \
                or not a.flags.writeable:
            raise ValueError(
                f"state[{k}] must be a writable contiguous 1-D {np.dtype(dtype)} array of "
                f"{n} values, got "
                f"{getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}")
        s = a
        if n:
            ptrs[k] = &s[0]
    if n == 0:
        return 0
    for k in range(need):
        for j in range(k):
            if overlap(ptrs[j], ptrs[k], nbytes):
                raise ValueError(f"state[{j}] and state[{k}] overlap in memory")
        if overlap(ptrs[k], &p[0], nbytes):
            raise ValueError(f"state[{k}] overlaps the parameter buffer")
        if overlap(ptrs[k], &g[0], nbytes):
            raise ValueError(f"state[{k}] overlaps the gradient")
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
    gather_state(&cfg, p, g, state, ptrs)
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
    gather_state(&cfg, p, g, state, ptrs)
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
