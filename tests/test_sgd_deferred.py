"""Plain SGD on batches of more than one sample updates the weights of each layer whose
products go to BLAS or to the register-blocked kernels in the product that would have
made its gradient, W ← W − lr·A·Dᵀ (BLAS's alpha −lr and beta 1; the kernels' epilogue,
a chunk of samples at a time), from the layer's input A and output gradient D, never
storing the weight gradient (train.pyx's plan_deferred, sgd_deferred). Its values must be
the stored gradient's update up to rounding, which is checked against the gradient made
apart (compute_gradients) and p − lr·g in NumPy, and against the same fit with the
deferral switched off; a gradient the finiteness proof cannot bound must be made whole
and read, and a diverging fit must stop before the bad update."""
import numpy as np
import pytest

import fastdense as fd
from conftest import case_data, case_model
from fastdense._core import dense, train


@pytest.fixture
def blas_always():
    """Every product to BLAS, so small layers take the deferred path too."""
    previous = dense.set_blas_mode("always")
    yield
    dense.set_blas_mode(previous)


@pytest.fixture(params=["always", "micro"])
def forced(request):
    """Every product to BLAS, or (batches over one sample) to the register-blocked kernels."""
    previous = dense.set_blas_mode(request.param)
    yield request.param
    dense.set_blas_mode(previous)


@pytest.fixture
def deferral():
    """Restores the switch whatever a test sets."""
    previous = train.set_deferred_sgd(True)
    yield
    train.set_deferred_sgd(previous)


# (sizes, activations, loss): ReLU, odd widths (BLAS's edge tiles), a GELU layer (its
# derivative applied after the layer's backward), a softmax head, several outputs; each
# with as many weights as the finiteness proof needs at batch 8 (it reads 8·Σ(n_in + n_out)
# values, fewer than the gradient's)
CASES = {
    "relu": ((10, 24, 24, 1), ["relu", "relu", None], "mse"),
    "odd": ((13, 37, 29, 3), ["tanh", "leaky_relu", None], "huber"),
    "gelu_softmax": ((16, 40, 5), ["gelu", "softmax"], "categorical_crossentropy"),
    # 160 outputs: the register-blocked product takes 48 float32 samples (32 float64) a
    # chunk, so a batch of 64 is two chunks, each subtracted from W in turn
    "chunks": ((160, 160, 160, 1), ["relu", "relu", None], "mse"),
}
BATCHES = {"relu": (2, 7), "odd": (2, 7), "gelu_softmax": (2, 7), "chunks": (64,)}


def model_of(case, dtype, lr):
    return case_model(CASES[case], dtype, 5, fd.optimizers.SGD(learning_rate=lr))


def data_of(case, dtype, n, rng):
    return case_data(CASES[case], dtype, n, rng)


def numpy_sgd_epoch(model, x, y, batch, lr):
    """One epoch in order: compute_gradients on each batch, then p − lr·g in float64."""
    for i in range(0, len(x), batch):
        _, grads = model.compute_gradients(x[i:i + batch], y[i:i + batch])
        model.set_weights([w.astype(np.float64) - lr * g.astype(np.float64)
                           for w, g in zip(model.get_weights(), grads)])


def ulps(dtype):
    return float(np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "batch"), [(c, b) for c in sorted(CASES) for b in BATCHES[c]])
def test_one_deferred_step_is_the_gradients_sgd_step(case, batch, dtype, rng, forced,
                                                     deferral):
    lr = 0.05
    x, y = data_of(case, dtype, batch, rng)
    model = model_of(case, dtype, lr)
    model.compute_gradients(x, y)                   # builds the network
    deferred = model._net.deferred_layers(batch)
    # every layer with at least `batch` inputs goes this way (here: all but none)
    assert deferred == tuple(n_in >= batch for n_in in CASES[case][0][:-1])
    assert any(deferred)
    before = model.get_weights()
    _, grads = model.compute_gradients(x, y)
    model.train_on_batch(x, y)
    for w0, g, got in zip(before, grads, model.get_weights()):
        assert got.dtype == dtype
        want = w0.astype(np.float64) - lr * g.astype(np.float64)
        # W + (−lr)·Σ against W − lr·round(Σ): within a few units of the last place (of
        # the layer's largest step where chunks of samples are subtracted in turn)
        tol = 4 * ulps(dtype) * (np.abs(w0) + lr * np.abs(g)) + np.finfo(dtype).tiny
        if case == "chunks":
            tol += 8 * ulps(dtype) * lr * np.abs(g).max()
        assert np.all(np.abs(got - want) <= tol), np.max(np.abs(got - want) - tol)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_deferred_fit_follows_the_formula_in_numpy(case, dtype, rng, forced, deferral):
    lr, batch = 0.05, (64 if case == "chunks" else 8)
    x, y = data_of(case, dtype, 7 * batch + 5, rng)      # 7 whole batches and one of 5
    fused = model_of(case, dtype, lr)
    expect = model_of(case, dtype, lr)
    hist = fused.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    assert fused.optimizer.iterations == 8 and np.isfinite(hist.history["loss"][0])
    assert any(fused._net.deferred_layers(batch)) and any(fused._net.deferred_layers(5))
    numpy_sgd_epoch(expect, x, y, batch, lr)
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for got, want in zip(fused.get_weights(), expect.get_weights()):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("sizes", "batch"), [((10, 64, 64, 1), 8), ((10, 520, 520, 1), 32),
                                              ((10, 200, 200, 1), 32)])
def test_deferral_on_and_off_agree_where_the_default_rule_sends_layers_to_blas(
        sizes, batch, dtype, rng, deferral):
    # no forced mode: the default rule's BLAS layers (64 × 64 at batch 8, 520 × 520 at 32:
    # wider than the register-blocked kernels take) and, with AVX-512, register-blocked
    # ones (200 × 200 at 32)
    x = rng.standard_normal((6 * batch + 3, sizes[0])).astype(dtype)
    y = rng.standard_normal((len(x), 1)).astype(dtype)
    fits = []
    for on in (True, False):
        train.set_deferred_sgd(on)
        model = fd.Sequential([fd.Dense(sizes[1], activation="relu", input_dim=sizes[0]),
                               fd.Dense(sizes[2], activation="relu"), fd.Dense(1)],
                              dtype=dtype, seed=2)
        model.compile(optimizer=fd.optimizers.SGD(learning_rate=0.01), loss="mse")
        hist = model.fit(x, y, batch_size=batch, epochs=2, shuffle=False, verbose=0)
        fits.append((model, hist.history["loss"]))
        assert any(model._net.deferred_layers(batch)) == on
    (on_model, on_loss), (off_model, off_loss) = fits
    np.testing.assert_allclose(on_loss, off_loss, rtol=1e-5 if dtype == np.float32 else 1e-12)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for got, want in zip(on_model.get_weights(), off_model.get_weights()):
        np.testing.assert_allclose(got, want, **tol)


def test_only_plain_sgd_and_layers_that_hold_the_batch_are_deferred(blas_always, deferral):
    # 3-40-40-1: 1,841 values; the proof reads 164 a sample, so it applies up to batch 11
    model = fd.Sequential([fd.Dense(40, activation="relu", input_dim=3),
                           fd.Dense(40, activation="relu"), fd.Dense(1)], dtype=np.float32)
    model.compile(optimizer="sgd", loss="mse")
    model.compute_gradients(np.zeros((2, 3), np.float32), np.zeros((2, 1), np.float32))
    assert model._net.deferred_layers(1) == (False, False, False)   # batch 1: its own path
    assert model._net.deferred_layers(3) == (True, True, True)
    assert model._net.deferred_layers(4) == (False, True, True)     # D (40 × 4) > W (3 × 40)
    assert model._net.deferred_layers(11) == (False, True, True)
    assert model._net.deferred_layers(12) == (False, False, False)  # no proof: the gradient
    train.set_deferred_sgd(False)
    assert model._net.deferred_layers(3) == (False, False, False)
    # momentum is not plain SGD: the same batch takes the stored gradient's update
    train.set_deferred_sgd(True)
    x = np.random.default_rng(1).standard_normal((9, 13)).astype(np.float32)
    y = np.random.default_rng(2).standard_normal((9, 3)).astype(np.float32)
    for opt in (fd.optimizers.SGD(learning_rate=0.05, momentum=0.9),
                fd.optimizers.SGD(learning_rate=0.05, clipvalue=1e-3)):
        a, b = model_of("odd", np.float32, 0.05), model_of("odd", np.float32, 0.05)
        a.compile(optimizer=opt, loss="huber")
        b.compile(optimizer=type(opt).from_config(opt.get_config()), loss="huber")
        a.train_on_batch(x, y)
        train.set_deferred_sgd(False)
        b.train_on_batch(x, y)
        train.set_deferred_sgd(True)
        for got, want in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(got, want)


def test_a_finite_gradient_the_proof_cannot_bound_is_made_whole_and_applied(blas_always,
                                                                         deferral):
    # a linear layer of 1,000 inputs of 1e19 and 4 outputs at batch 2, output gradient
    # 5e16 a value (MSE: 2(ŷ − y)/(2·4) at ŷ = 0): Σ|a|·Σ|d| = 2e22·4e17 is past float32's
    # range, each gradient value is not, so the deferred layer's kept D must become dW and
    # be read before the update
    n_in, batch = 1000, 2

    def linear():
        model = fd.Sequential([fd.Dense(4, input_shape=(n_in,))], dtype=np.float32)
        model.compile(optimizer=fd.optimizers.SGD(learning_rate=1e-30), loss="mse")
        model.set_weights([np.zeros((n_in, 4), np.float32), np.zeros(4, np.float32)])
        return model

    x = np.full((batch, n_in), 1e19, np.float32)
    y = np.full((batch, 4), -2e17, np.float32)
    twin, model = linear(), linear()      # the fit's workspace holds no gradient before it
    assert model._net.deferred_layers(batch) == (True,)
    loss, grads = twin.compute_gradients(x, y)
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads)
    # dW = Σ_i x_i·d_i = 2 · 1e19 · 5e16 = 1e36 a weight, db = 2 · 5e16
    np.testing.assert_allclose(grads[0], np.full((n_in, 4), 1e36), rtol=1e-6)
    np.testing.assert_allclose(grads[1], np.full(4, 1e17), rtol=1e-6)
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    assert model.optimizer.iterations == 1
    w, b = model.get_weights()
    np.testing.assert_allclose(w, np.full((n_in, 4), -1e-30 * 1e36), rtol=1e-6)
    np.testing.assert_allclose(b, np.full(4, -1e-30 * 1e17), rtol=1e-6)


@pytest.mark.parametrize("on", [True, False])
def test_a_diverging_fit_stops_before_the_bad_update_either_way(on, rng, blas_always,
                                                               deferral):
    # a learning rate that overflows within a few steps: the fit stops at the first
    # non-finite loss or gradient and keeps the weights of the last finite update, with or
    # without the deferral (which must not update any layer before the proof): the same
    # weights as a fit over just the batches it applied
    train.set_deferred_sgd(on)
    x, y = data_of("relu", np.float32, 400, rng)
    x *= 10
    model = model_of("relu", np.float32, 10.0)
    with pytest.raises(fd.errors.DivergenceError):
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    done = model.optimizer.iterations
    assert 1 <= done < 50
    assert all(np.isfinite(w).all() for w in model.get_weights())
    again = model_of("relu", np.float32, 10.0)
    again.fit(x[:8 * done], y[:8 * done], batch_size=8, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isa", ["base", "avx2", "avx512"])
def test_the_register_blocked_update_on_every_instruction_set(isa, dtype, rng, deferral):
    # each instruction set's copy of the kernels' SGD epilogue (one and two chunks of
    # samples: batches 8 and 64 on 160 outputs), against p − lr·g in NumPy
    previous, best = dense.set_blas_mode("micro"), dense.set_isa(None)
    try:
        dense.set_isa(isa)
        lr = 0.05
        for batch in (8, 64):
            x, y = data_of("chunks", dtype, batch, rng)
            model = model_of("chunks", dtype, lr)
            before = model.get_weights()
            _, grads = model.compute_gradients(x, y)
            assert model._net.deferred_layers(batch) == (True, True, True)
            model.train_on_batch(x, y)
            for w0, g, got in zip(before, grads, model.get_weights()):
                want = w0.astype(np.float64) - lr * g.astype(np.float64)
                tol = (4 * ulps(dtype) * (np.abs(w0) + lr * np.abs(g))
                       + 8 * ulps(dtype) * lr * np.abs(g).max() + np.finfo(dtype).tiny)
                assert np.all(np.abs(got - want) <= tol)
    finally:
        dense.set_blas_mode(previous)
        dense.set_isa(best)
