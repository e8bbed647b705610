# Fused, in-place optimizer updates over flat parameter buffers.
#
# Contract used by the training loop (train.pyx) and by fastdense.optimizers:
#   * `p` (n values) is updated in place; `g` is only read (never modified, so a user's
#     gradient arrays survive `Optimizer.apply`);
#   * `state[0..2]` are the rule's state buffers (n values each, NULL where unused);
#   * `seg` holds nseg+1 offsets: variable i is p[seg[i]:seg[i+1]] (used by clipnorm);
#   * cfg.lr is this update's learning rate (a schedule is evaluated by the caller) and
#     cfg.t the 1-based update count.
from cython cimport floating

cdef enum:
    RULE_SGD = 0
    RULE_SGD_MOMENTUM = 1
    RULE_SGD_NESTEROV = 2
    RULE_RMSPROP = 3
    RULE_ADAM = 4
    RULE_ADAGRAD = 5
    N_HYPER = 8

ctypedef struct StepConfig:
    int rule
    double lr
    long long t
    double h[8]              # the rule's hyper-parameters; layout documented per rule
    double clipnorm          # 0 = off
    double clipvalue         # 0 = off
    double global_clipnorm   # 0 = off
    double weight_decay      # 0 = off

cdef void sgd_update(floating* p, const floating* g, floating lr,
                     Py_ssize_t n) noexcept nogil

cdef int optimizer_step(const StepConfig* cfg, floating* p, const floating* g,
                        floating** state, Py_ssize_t n,
                        const Py_ssize_t* seg, Py_ssize_t nseg) noexcept nogil
