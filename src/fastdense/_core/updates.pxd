# Fused, in-place optimizer updates over flat parameter buffers.
#
# Contract used by the training loop (train.pyx) and by fastdense.optimizers:
#   * `p` (n values) is updated in place; `g` is only read (never modified, so a user's
#     gradient arrays survive `Optimizer.apply`);
#   * `state[0..2]` are the rule's state buffers (n values each), laid out per rule below;
#   * p, g and the state buffers do not overlap one another (the kernels take them as
#     `restrict`; the Python wrappers check it);
#   * `seg` holds nseg+1 offsets: variable i is p[seg[i]:seg[i+1]] (used by clipnorm), with
#     seg[0] = 0 and seg[nseg] = n; seg may be NULL (nseg = 0): the buffer is one variable;
#   * cfg.lr is this update's learning rate (a schedule is evaluated by the caller) and
#     cfg.t the 1-based update count;
#   * options run in this order before the rule: clipnorm (per variable), clipvalue,
#     global_clipnorm (over the whole buffer, after the previous two), weight decay
#     `p ← p − p·wd·lr`; 0 switches an option off;
#   * `optimizer_step` returns 0, or -1 for an unknown rule (nothing is then modified).
#
# Extensions of the scaffold's contract (keep train.pyx in step with them):
#   * rule ids RULE_RMSPROP_CENTERED and RULE_ADAM_AMSGRAD;
#   * a buffer of at least PARALLEL_MIN values is split over the threads of fd_pool.h
#     (every core by default; `updates.set_num_threads(1)` forces serial), in CHUNK-value
#     pieces, with the same per-value arithmetic and so the same bits as one thread; a
#     smaller buffer always runs on the calling thread, where waking a worker would cost
#     more than the second core wins;
#   * `step_config_init(&cfg)` zeroes a StepConfig (every option off), so a field added
#     later can never hold garbage in a caller that does not know it yet.
#
# Hyper-parameter layout h[8] and state buffers, per rule (unused h entries are 0):
#   RULE_SGD               h = []                        state = []
#   RULE_SGD_MOMENTUM      h = [momentum]                state = [m]
#   RULE_SGD_NESTEROV      h = [momentum]                state = [m]
#   RULE_RMSPROP           h = [rho, momentum, epsilon]  state = [v] or [v, m] if momentum > 0
#   RULE_RMSPROP_CENTERED  h = [rho, momentum, epsilon]  state = [v, a] or [v, a, m]
#   RULE_ADAM              h = [beta_1, beta_2, epsilon] state = [m, v]
#   RULE_ADAM_AMSGRAD      h = [beta_1, beta_2, epsilon] state = [m, v, v̂]
#   RULE_ADAGRAD           h = [epsilon, initial_accumulator_value]  state = [acc]
#     (acc starts at initial_accumulator_value; every other state starts at zero)
from cython cimport floating
from libc.string cimport memset

cdef enum:
    RULE_SGD = 0
    RULE_SGD_MOMENTUM = 1
    RULE_SGD_NESTEROV = 2
    RULE_RMSPROP = 3
    RULE_ADAM = 4
    RULE_ADAGRAD = 5
    RULE_RMSPROP_CENTERED = 6
    RULE_ADAM_AMSGRAD = 7
    N_RULES = 8
    N_HYPER = 8
    # below this many values an update runs on one thread: with the threshold lowered to
    # measure it (bench/optimizers.py --sizes, Adam, 2 cores, 2026-12-03), 2 threads won
    # 1.06x at 131,072 values (noise), 1.11x at 262,144, 1.51x at 524,288, 1.8-1.9x from 1 M
    PARALLEL_MIN = 262144
    CHUNK = 65536            # values per unit of parallel work (a multiple of 16)

ctypedef struct StepConfig:
    int rule
    double lr
    long long t
    double h[8]              # the rule's hyper-parameters; layout above
    double clipnorm          # 0 = off
    double clipvalue         # 0 = off
    double global_clipnorm   # 0 = off
    double weight_decay      # 0 = off
    int blas_cold            # 1: no BLAS call of this update's step has woken BLAS's threads
                             # (plain SGD then runs fastdense's own loop, not BLAS's axpy)


cdef inline void step_config_init(StepConfig* cfg) noexcept nogil:
    """cfg := all zero (rule SGD, every option off)"""
    memset(cfg, 0, sizeof(StepConfig))


cdef void sgd_update(floating* p, const floating* g, floating lr,
                     Py_ssize_t n) noexcept nogil

# The rule of cfg on p[lo:hi] and its state, from g[0:hi − lo]: the gradient of p[lo]
# onwards, which may be stored apart from any whole gradient (pre/post: optimizer_step's
# clipnorm scales; 1 when off). The caller has checked the rule id.
cdef void rule_update(const StepConfig* cfg, floating* p, const floating* g,
                      floating** state, Py_ssize_t lo, Py_ssize_t hi,
                      double pre_d, double post_d) noexcept nogil


cdef inline bint elementwise_step(const StepConfig* cfg) noexcept nogil:
    """Whether cfg's update of each value needs only that value's gradient (no norm of a
    variable's or the whole gradient): rule_update on any span of p gives optimizer_step's
    values there."""
    return cfg.clipnorm <= 0 and cfg.global_clipnorm <= 0


cdef int optimizer_step(const StepConfig* cfg, floating* p, const floating* g,
                        floating** state, Py_ssize_t n,
                        const Py_ssize_t* seg, Py_ssize_t nseg) noexcept nogil

# A checked StepConfig (known rule id, at most N_HYPER values in h, t ≥ 1; options 0 = off).
cdef StepConfig make_config(int rule, h, double lr, long long t, double clipnorm,
                            double clipvalue, double global_clipnorm,
                            double weight_decay) except *
