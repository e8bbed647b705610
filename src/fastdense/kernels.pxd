# fastdense's kernel cores, for another project's Cython:
#
#     from fastdense.kernels cimport dense_forward, mse_forward_backward, optimizer_step
#
# Each is a `noexcept nogil` function over raw buffers, for float and double from one
# source (the fused type `floating`): it checks nothing, so the caller owns the shapes.
# The Python-facing `*_checked` wrappers in fastdense._core show each call checked. Build the
# cimporting extension against an installed fastdense (its .pxd files are found on
# sys.path); no headers or libraries are needed, and fastdense._core.* is imported at run
# time to reach the functions.
#
# Layout. Activations are feature-major: a block of n samples with f features is stored
# f × n, feature j of sample i at [j*n + i] (one column per sample). Weights W are
# n_in × n_out and row-major, biases b have n_out values. Every buffer is contiguous.
#
# Dense layers (fastdense/_core/dense.pxd):
#   dense_forward(a, w, b, z, n, n_in, n_out, act, alpha, a_rows)
#       Z = act(Wᵀ·A + b); A n_in × n, Z n_out × n; act an activation id of
#       fastdense.activations (0 linear, 1 ReLU, …; not softmax) with its parameter alpha
#       (leaky ReLU's slope, ELU's α; else 0).
#       a_rows = True: A is sample-major (n × n_in) instead; allowed only where
#       use_blas(n, n_in, n_out) holds or n == 1. Pass False otherwise.
#   dense_backward(a, w, d, dw, db, da, n, n_in, n_out, act_a, alpha_a, a_rows)
#       dW = A·Dᵀ (n_in × n_out), db = D·1, dA = (W·D) ⊙ f'(A), A = f(Z_prev) the output
#       of activation act_a (one whose derivative follows from its output: linear, ReLU,
#       leaky ReLU, ELU, tanh, sigmoid, softplus); D n_out × n is the gradient at the
#       layer's pre-activation; da may be NULL.
#   relu_backward(d, a, size)       D ← D ⊙ [A > 0], A a ReLU's output.
#   act_forward(z, size, act, alpha), act_backward(d, y, size, act, alpha),
#   gelu_backward(d, z, size, approximate), softmax_columns(z, k, n, scratch)
#       the activations alone (in place; act_backward from the output y).
#   head_loss(loss, act, alpha, delta, z, a, y, sw, dz, scratch, n, k, scale) -> double
#       the output activation a = f(z), Σᵢ wᵢ lᵢ (returned) and dz = scale·∂/∂z of it
#       (fastdense.losses' ids and formulas; sw and dz may be NULL; scratch n values).
#   all_finite(x, size)             True when no value is NaN or ±Inf.
#   use_blas(n, n_in, n_out)        whether a layer's product goes to BLAS.
#
# Loss (fastdense/_core/losses.pxd):
#   mse_forward_backward(yhat, y, grad, n, k) -> double
#       L = Σ(ŷ − y)²/(n·k) (returned), ∂L/∂ŷ = 2(ŷ − y)/(n·k) written into grad.
#   mse_value(yhat, y, size) -> double    Σ(ŷ − y)², in double (the caller divides).
#
# Optimizer updates (fastdense/_core/updates.pxd, where the contract is spelled out):
#   StepConfig, step_config_init(&cfg)    the rule id, lr, t, hyper-parameters, clipping
#   optimizer_step(&cfg, p, g, state, n, seg, nseg) -> 0, or -1 for an unknown rule
#       one fused in-place update of p (n values) by g, with the rule's state buffers.
#   sgd_update(p, g, lr, n)               p ← p − lr·g
#   RULE_SGD, RULE_SGD_MOMENTUM, RULE_SGD_NESTEROV, RULE_RMSPROP, RULE_RMSPROP_CENTERED,
#   RULE_ADAM, RULE_ADAM_AMSGRAD, RULE_ADAGRAD, N_HYPER   (rule ids and sizes)

from fastdense._core.dense cimport (
    dense_forward, dense_backward, relu_backward, all_finite, use_blas,
    act_forward, act_backward, gelu_backward, softmax_columns, head_loss,
)
from fastdense._core.losses cimport mse_forward_backward, mse_value
from fastdense._core.updates cimport (
    StepConfig, step_config_init, optimizer_step, sgd_update,
    RULE_SGD, RULE_SGD_MOMENTUM, RULE_SGD_NESTEROV, RULE_RMSPROP, RULE_RMSPROP_CENTERED,
    RULE_ADAM, RULE_ADAM_AMSGRAD, RULE_ADAGRAD, N_RULES, N_HYPER,
)
