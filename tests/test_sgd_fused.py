"""At batch 1 the weights are updated straight from each layer's input and output gradient,
without storing the weight gradient: plain SGD in one pass (train.pyx's sgd_step1,
dense.sgd_outer1), every other elementwise rule from the gradient made a piece at a time
(rule_step1). Each must give the values of the unfused path: the whole gradient
(compute_gradients), then the optimizer's step on it; and plain SGD also follows the
formula p − lr·g written again in NumPy."""
import numpy as np
import pytest

import fastdense as fd
from conftest import case_data, case_model
from fastdense._core import updates

SGD = updates.RULES["sgd"]

# every rule, and the options: clipvalue and weight decay are elementwise (fused), clipnorm
# and global_clipnorm need norms of the gradient (the whole gradient is made as before)
OPTIMIZERS = {
    "sgd": lambda: fd.optimizers.SGD(learning_rate=0.05),
    "momentum": lambda: fd.optimizers.SGD(learning_rate=0.005, momentum=0.9),
    "nesterov": lambda: fd.optimizers.SGD(learning_rate=0.005, momentum=0.9, nesterov=True),
    "rmsprop_centered_momentum": lambda: fd.optimizers.RMSprop(
        learning_rate=0.01, rho=0.8, momentum=0.5, centered=True),
    "rmsprop": lambda: fd.optimizers.RMSprop(learning_rate=0.01),
    "adam": lambda: fd.optimizers.Adam(learning_rate=0.01),
    "amsgrad": lambda: fd.optimizers.Adam(learning_rate=0.01, amsgrad=True),
    "adamw": lambda: fd.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1),
    "adagrad": lambda: fd.optimizers.Adagrad(learning_rate=0.05),
    "sgd_clipvalue_decay": lambda: fd.optimizers.SGD(learning_rate=0.05, clipvalue=0.01,
                                                     weight_decay=0.1),
    "scheduled": lambda: fd.optimizers.SGD(learning_rate=fd.schedules.ExponentialDecay(
        0.05, decay_steps=3, decay_rate=0.5)),
    "clipnorm": lambda: fd.optimizers.Adam(learning_rate=0.01, clipnorm=0.1),
    "global_clipnorm": lambda: fd.optimizers.SGD(learning_rate=0.05, global_clipnorm=0.1),
}

# (sizes, activations, loss): ReLU rows of zeros (skipped by the fused update), tails of
# every vector width, a one-unit layer, one-output and several-output heads, GELU (whose
# derivative is applied after the layer's backward) and a softmax head
CASES = {
    "relu": ((10, 64, 64, 1), ["relu", "relu", None], "mse"),
    "tails": ((7, 33, 17, 3), ["tanh", "leaky_relu", None], "mse"),
    "one_unit": ((12, 1, 9, 2), ["elu", "sigmoid", None], "huber"),
    "gelu_softmax": ((5, 20, 4), ["gelu", "softmax"], "categorical_crossentropy"),
    "wide": ((3, 130, 1), ["relu", None], "mae"),
    # 131,681 values (514 KiB in float32): past train.pyx's STEP1_MIN_BYTES, so the rules
    # other than plain SGD are fused too (below it they take the unfused step)
    "big": ((3, 370, 350, 1), ["relu", "relu", None], "mse"),
}


def model_of(case, dtype, lr=0.05, optimizer=None):
    return case_model(CASES[case], dtype, 3, optimizer or fd.optimizers.SGD(learning_rate=lr))


def data_of(case, dtype, n, rng):
    return case_data(CASES[case], dtype, n, rng)


def unfused(model, x, y, lr):
    """One epoch at batch 1 in order, by the whole gradient and the optimizer's own step
    per variable (each under BLAS axpy's threshold, so fastdense's SGD loop)."""
    for i in range(len(x)):
        _, grads = model.compute_gradients(x[i:i + 1], y[i:i + 1])
        weights = model.get_weights()
        for w, g in zip(weights, grads):
            updates.optimizer_step_checked(w.reshape(-1), g.reshape(-1), [], SGD, (), lr,
                                           i + 1)
        model.set_weights(weights)


def unfused_flat(model, x, y, opt):
    """One epoch at batch 1 in order with any optimizer: the whole gradient, then one
    optimizer step over the flat parameters (its variables as segments), as the model's
    own loop takes it when nothing is fused."""
    shapes = [w.shape for w in model.get_weights()]
    sizes = [int(np.prod(s)) for s in shapes]
    seg = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
    flat = np.concatenate([w.ravel() for w in model.get_weights()])
    rule, h, clipnorm, clipvalue, gcn, wd = opt._config()
    # plain SGD from 65,536 values would go to BLAS's axpy here (a fit at batch 1 never does)
    assert flat.size < 1 << 16 or rule != SGD or clipvalue or wd or gcn or clipnorm
    state = opt._model_state(flat.size, flat.dtype)
    lrs = opt._learning_rates(1, len(x))
    for t in range(1, len(x) + 1):
        _, grads = model.compute_gradients(x[t - 1:t], y[t - 1:t])
        gflat = np.concatenate([g.ravel() for g in grads])
        updates.optimizer_step_checked(flat, gflat, state, rule, h, lrs[t - 1], t,
                                       clipnorm, clipvalue, gcn, wd, seg)
        model.set_weights([flat[a:b].reshape(s) for a, b, s in zip(seg[:-1], seg[1:], shapes)])


def numpy_sgd(model, x, y, lr):
    """The same epoch with p − lr·g in float64 NumPy on compute_gradients' gradient."""
    for i in range(len(x)):
        _, grads = model.compute_gradients(x[i:i + 1], y[i:i + 1])
        model.set_weights([w.astype(np.float64) - lr * g.astype(np.float64)
                           for w, g in zip(model.get_weights(), grads)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(set(CASES) - {"big"}))
def test_batch_one_sgd_fit_gives_the_unfused_steps_values_exactly(case, dtype, rng):
    lr = 0.05
    x, y = data_of(case, dtype, 40, rng)
    fused = model_of(case, dtype, lr)
    expect = model_of(case, dtype, lr)
    hist = fused.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0)
    unfused(expect, x, y, lr)
    assert fused.optimizer.iterations == len(x)
    assert np.isfinite(hist.history["loss"][0])
    for got, want in zip(fused.get_weights(), expect.get_weights()):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
    # and the weights moved: a fit that skipped updates would not match by accident
    start = model_of(case, dtype, lr).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(start, fused.get_weights()))


RULE_CASES = [(case, opt) for case in ("relu", "tails", "gelu_softmax", "wide", "big")
              for opt in sorted(OPTIMIZERS)
              if case != "big" or opt not in ("sgd", "scheduled")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "opt"), RULE_CASES)
def test_batch_one_fit_gives_each_rules_unfused_values_exactly(case, opt, dtype, rng):
    x, y = data_of(case, dtype, 30, rng)
    fused = model_of(case, dtype, optimizer=OPTIMIZERS[opt]())
    expect, reference = model_of(case, dtype), OPTIMIZERS[opt]()
    fused.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0)
    unfused_flat(expect, x, y, reference)
    assert fused.optimizer.iterations == len(x)
    for got, want in zip(fused.get_weights(), expect.get_weights()):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
    # the optimizer's state too (the rules that keep one)
    assert len(fused.optimizer._state or []) == len(reference._state or [])
    for got, want in zip(fused.optimizer._state or [], reference._state or []):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["relu", "gelu_softmax"])
def test_batch_one_sgd_fit_follows_the_formula_in_numpy(case, dtype, rng):
    lr = 0.05
    x, y = data_of(case, dtype, 25, rng)
    fused = model_of(case, dtype, lr)
    expect = model_of(case, dtype, lr)
    fused.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0)
    numpy_sgd(expect, x, y, lr)
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for got, want in zip(fused.get_weights(), expect.get_weights()):
        np.testing.assert_allclose(got, want, **tol)


def test_a_finite_gradient_the_proof_cannot_bound_is_still_applied():
    # one linear layer, 1,000 inputs of 1e19 and an output gradient of 2e17: the proof's
    # bound Σ|a|·Σ|d| = 2e39 is past float32's range, each gradient value (2e36) is not,
    # so the update must come from the gradient read value by value
    n_in = 1000
    model = fd.Sequential([fd.Dense(1, input_shape=(n_in,))], dtype=np.float32)
    model.compile(optimizer=fd.optimizers.SGD(learning_rate=1e-30), loss="mse")
    model.set_weights([np.zeros((n_in, 1), np.float32), np.zeros(1, np.float32)])
    x = np.full((1, n_in), 1e19, np.float32)
    y = np.full((1, 1), -1e17, np.float32)
    a_sum, d_sum = float(np.abs(x).sum()), 2 * 1e17       # MSE: d = 2(ŷ − y) at ŷ = 0
    assert a_sum * d_sum > float(np.finfo(np.float32).max)
    loss, grads = model.compute_gradients(x, y)
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads)
    model.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0)
    assert model.optimizer.iterations == 1
    w, b = model.get_weights()
    np.testing.assert_allclose(w, -1e-30 * (1e19 * 2e17) * np.ones((n_in, 1)), rtol=1e-6)
    np.testing.assert_allclose(b, -1e-30 * 2e17 * np.ones(1), rtol=1e-6)
