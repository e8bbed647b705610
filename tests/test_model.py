"""The Sequential API: dtypes, shapes, batching, determinism and input checking."""
import numpy as np
import pytest

import fastdense as fd
from conftest import make_model

CLASSIC = [10, 10, 10, 1]


def data(rng, n=64, d=10, k=1, dtype=np.float32):
    return rng.random((n, d)).astype(dtype), rng.random((n, k)).astype(dtype)


def compiled(sizes=CLASSIC, dtype="float32", lr=0.01, seed=0, acts=None):
    model = make_model(sizes, acts, dtype=dtype, seed=seed)
    model.compile(optimizer=fd.optimizers.SGD(learning_rate=lr), loss="mse")
    return model


def manual_sgd(model, batches, lr):
    """SGD written out by hand over the model's own (finite-difference-tested) gradients."""
    for xb, yb in batches:
        _, grads = model.compute_gradients(xb, yb)
        model.set_weights([w - lr * g for w, g in zip(model.get_weights(), grads)])


# ---------------------------------------------------------------- construction
def test_glorot_uniform_initialisation_and_zero_biases():
    model = make_model([300, 200, 1], seed=1)
    W0, b0, W1, b1 = model.get_weights()
    limit = np.sqrt(6 / (300 + 200))
    assert np.all(np.abs(W0) <= limit) and np.abs(W0).max() > 0.95 * limit
    assert abs(W0.std() - limit / np.sqrt(3)) < 0.01 * limit       # U(-l, l) has sd l/√3
    assert not b0.any() and not b1.any()


def test_input_shape_is_accepted_like_input_dim():
    a = fd.Sequential([fd.Dense(3, input_dim=4)], seed=0)
    b = fd.Sequential([fd.Dense(3, input_shape=(4,))], seed=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_count_params_and_layout():
    model = make_model(CLASSIC)
    assert model.count_params() == 10 * 10 + 10 + 10 * 10 + 10 + 10 + 1
    assert [w.shape for w in model.get_weights()] == [(10, 10), (10,), (10, 10), (10,),
                                                      (10, 1), (1,)]


def test_model_without_input_dim_builds_on_first_fit(rng):
    model = fd.Sequential([fd.Dense(4, activation="relu"), fd.Dense(1)], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    x, y = data(rng, d=6)
    model.fit(x, y, epochs=1, verbose=0)
    assert model.get_weights()[0].shape == (6, 4)


# ---------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_end_to_end(rng, dtype):
    model = compiled(dtype=dtype)
    x, y = data(rng, dtype=np.float64)              # float64 data into a float32 model too
    model.fit(x, y, epochs=2, verbose=0)
    assert all(w.dtype == dtype for w in model.get_weights())
    assert model.predict(x).dtype == dtype
    assert all(g.dtype == dtype for g in model.compute_gradients(x, y)[1])


def test_integer_and_boolean_inputs_are_converted(rng):
    model = compiled()
    xi = rng.integers(0, 3, size=(16, 10))
    np.testing.assert_array_equal(model.predict(xi), model.predict(xi.astype(np.float32)))
    xb = xi > 0
    np.testing.assert_array_equal(model.predict(xb), model.predict(xb.astype(np.float32)))


@pytest.mark.parametrize("layout", ["fortran", "strided", "readonly"])
def test_any_memory_layout_gives_the_same_result(rng, layout):
    x, y = data(rng, n=40)
    if layout == "fortran":
        xl, yl = np.asfortranarray(x), np.asfortranarray(y)
    elif layout == "strided":
        big = np.zeros((40, 20), np.float32)
        big[:, ::2] = x
        xl, yl = big[:, ::2], np.repeat(y, 2, axis=1)[:, :1]
    else:
        xl, yl = x.copy(), y.copy()
        xl.flags.writeable = yl.flags.writeable = False
    a, b = compiled(seed=5), compiled(seed=5)
    a.fit(x, y, epochs=3, batch_size=8, verbose=0)
    b.fit(xl, yl, epochs=3, batch_size=8, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.predict(x), b.predict(xl))


# ---------------------------------------------------------------- shapes
def test_one_dimensional_and_column_targets_train_alike(rng):
    x, y = data(rng)
    a, b = compiled(), compiled()
    a.fit(x, y, epochs=3, verbose=0)
    b.fit(x, y.ravel(), epochs=3, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert a.evaluate(x, y) == b.evaluate(x, y.ravel())


def test_predict_on_zero_rows_returns_an_empty_array():
    out = compiled().predict(np.empty((0, 10)))
    assert out.shape == (0, 1) and out.dtype == np.float32


def test_predict_matches_the_forward_pass_in_numpy(rng):
    model = compiled(dtype="float64")
    x = rng.standard_normal((2500, 10))               # more rows than one predict chunk
    W0, b0, W1, b1, W2, b2 = model.get_weights()
    h = np.maximum(x @ W0 + b0, 0)
    h = np.maximum(h @ W1 + b1, 0)
    np.testing.assert_allclose(model.predict(x), h @ W2 + b2, rtol=1e-12, atol=1e-14)


def test_multiple_outputs(rng):
    model = compiled(sizes=[5, 8, 3])
    x, y = data(rng, d=5, k=3)
    before = model.evaluate(x, y)
    model.fit(x, y, epochs=20, batch_size=8, verbose=0)
    assert model.evaluate(x, y) < before
    assert model.predict(x).shape == (64, 3)


# ---------------------------------------------------------------- training semantics
def test_partial_last_batch_is_trained(rng):
    x, y = data(rng, n=33, dtype=np.float64)
    model, by_hand = compiled(dtype="float64", lr=0.1), compiled(dtype="float64", lr=0.1)
    model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    manual_sgd(by_hand, [(x[:32], y[:32]), (x[32:], y[32:])], 0.1)
    for a, b in zip(model.get_weights(), by_hand.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_shuffling_draws_a_permutation_per_epoch_from_the_seed(rng):
    x, y = data(rng, n=20, dtype=np.float64)
    model, by_hand = compiled(dtype="float64", seed=7), compiled(dtype="float64", seed=7)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    gen = np.random.default_rng(7)
    for w in by_hand.get_weights()[::2]:               # the initial draws come first
        gen.uniform(size=w.shape)
    for _ in range(2):
        order = gen.permutation(20)
        manual_sgd(by_hand, [(x[order[i:i + 8]], y[order[i:i + 8]]) for i in (0, 8, 16)],
                   0.01)
    for a, b in zip(model.get_weights(), by_hand.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_same_seed_same_run_other_seed_other_run(rng):
    x, y = data(rng)
    runs = []
    for seed in (3, 3, 4):
        model = compiled(seed=seed)
        model.fit(x, y, epochs=3, verbose=0)
        runs.append(model.get_weights()[0])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_train_on_batch_returns_the_loss_before_its_update(rng):
    x, y = data(rng, n=16)
    model = compiled()
    before = model.evaluate(x, y)
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(before, rel=1e-5)
    assert model.evaluate(x, y) < before
    assert model.optimizer.iterations == 1


def test_history_records_loss_and_validation_loss(rng):
    x, y = data(rng)
    xv, yv = data(rng, n=20)
    model = compiled(dtype="float64")
    hist = model.fit(x, y, epochs=4, batch_size=16, validation_data=(xv, yv), verbose=0)
    assert hist.epoch == [0, 1, 2, 3]
    assert len(hist.history["loss"]) == len(hist.history["val_loss"]) == 4
    assert hist.history["val_loss"][-1] == pytest.approx(model.evaluate(xv, yv), rel=1e-12)
    assert model.optimizer.iterations == 4 * 4


def test_epoch_loss_is_the_sample_weighted_mean_of_batch_losses(rng):
    x, y = data(rng, n=10, dtype=np.float64)
    model, probe = compiled(dtype="float64"), compiled(dtype="float64")
    hist = model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    first = probe.train_on_batch(x[:8], y[:8])
    second = probe.train_on_batch(x[8:], y[8:])
    assert hist.history["loss"][0] == pytest.approx((8 * first + 2 * second) / 10, rel=1e-12)


def test_zero_epochs_changes_nothing(rng):
    x, y = data(rng)
    model = compiled()
    before = model.get_weights()
    hist = model.fit(x, y, epochs=0, verbose=0)
    assert hist.history == {}
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_verbose_prints_one_line_per_epoch(rng, capsys):
    x, y = data(rng)
    compiled().fit(x, y, epochs=3, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("Epoch 3/3") and "loss:" in lines[-1]
    compiled().fit(x, y, epochs=3, verbose=0)
    assert capsys.readouterr().out == ""


def test_set_weights_round_trips_and_copies():
    model = compiled()
    ws = model.get_weights()
    ws[0][0, 0] = 123.0
    assert model.get_weights()[0][0, 0] != 123.0      # get_weights returned a copy
    model.set_weights(ws)
    assert model.get_weights()[0][0, 0] == 123.0


# ---------------------------------------------------------------- bad input
def bad_calls(rng):
    x, y = data(rng)
    xnan = x.copy()
    xnan[3, 2] = np.nan
    yinf = y.copy()
    yinf[5] = np.inf
    return {
        "wrong feature count": (ValueError, lambda m: m.fit(x[:, :9], y, verbose=0)),
        "length mismatch": (ValueError, lambda m: m.fit(x, y[:-1], verbose=0)),
        "output width": (ValueError, lambda m: m.fit(x, np.hstack([y, y]), verbose=0)),
        "NaN in X": (ValueError, lambda m: m.fit(xnan, y, verbose=0)),
        "Inf in y": (ValueError, lambda m: m.fit(x, yinf, verbose=0)),
        "complex X": (TypeError, lambda m: m.fit(x.astype(complex), y, verbose=0)),
        "object X": (TypeError, lambda m: m.fit(x.astype(object), y, verbose=0)),
        "string X": (TypeError, lambda m: m.fit(x.astype(str), y, verbose=0)),
        "empty X": (ValueError, lambda m: m.fit(x[:0], y[:0], verbose=0)),
        "batch_size 0": (ValueError, lambda m: m.fit(x, y, batch_size=0, verbose=0)),
        "epochs -1": (ValueError, lambda m: m.fit(x, y, epochs=-1, verbose=0)),
        "float epochs": (TypeError, lambda m: m.fit(x, y, epochs=1.5, verbose=0)),
        "1-D X": (ValueError, lambda m: m.fit(x[:, 0], y, verbose=0)),
        "3-D X": (ValueError, lambda m: m.predict(x[None])),
        "bad validation": (ValueError, lambda m: m.fit(x, y, validation_data=(x[:, :3], y),
                                                       verbose=0)),
        "train_on_batch NaN": (ValueError, lambda m: m.train_on_batch(xnan, y)),
        "set_weights shape": (ValueError, lambda m: m.set_weights(
            [w.T if w.ndim == 2 else w for w in m.get_weights()][::-1])),
        "set_weights count": (ValueError, lambda m: m.set_weights(m.get_weights()[:-1])),
        "set_weights NaN": (ValueError, lambda m: m.set_weights(
            [np.full_like(w, np.nan) for w in m.get_weights()])),
        "set_weights last bad": (ValueError, lambda m: m.set_weights(
            [w + 1 for w in m.get_weights()[:-1]] + [np.zeros(2)])),
    }


@pytest.mark.parametrize("case", sorted(bad_calls(np.random.default_rng(0))))
def test_bad_input_raises_and_leaves_the_model_unchanged(case):
    error, call = bad_calls(np.random.default_rng(0))[case]
    model = compiled()
    before = model.get_weights()
    with pytest.raises(error):
        call(model)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == 0


@pytest.mark.parametrize("make", [
    lambda: fd.Dense(0),
    lambda: fd.Dense(-3),
    lambda: fd.Dense(4, activation="swish"),
    lambda: fd.Dense(4, activation=fd.activations.Activation("gelu", alpha=1.0)),
    lambda: fd.Dense(4, kernel_regularizer="l3"),
    lambda: fd.Dense(4, input_shape=(3, 2)),
    lambda: fd.Sequential([fd.Dense(4, input_dim=3)], dtype="float16"),
    lambda: fd.Sequential([fd.Dense(4, input_dim=3)], dtype="int32"),
    lambda: fd.Sequential([fd.Dense(4, input_dim=3)]).compile(loss="hinge"),
    lambda: fd.Sequential([fd.Dense(4, input_dim=3)]).compile(optimizer="nope"),
    lambda: fd.Sequential(["dense"]),
    lambda: fd.optimizers.SGD(learning_rate=-1),
    lambda: fd.optimizers.SGD(learning_rate=float("nan")),
])
def test_bad_construction_is_refused(make):
    with pytest.raises((ValueError, TypeError)):
        make()


def test_fit_before_compile_is_refused(rng):
    x, y = data(rng)
    with pytest.raises(ValueError, match="compile"):
        make_model(CLASSIC).fit(x, y, verbose=0)


def test_error_messages_name_the_problem(rng):
    x, y = data(rng)
    model = compiled()
    with pytest.raises(ValueError, match="9 features"):
        model.predict(x[:, :9])
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.predict(np.full((2, 10), np.nan))
    with pytest.raises(TypeError, match="complex"):
        model.predict(x.astype(np.complex64))
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, y, batch_size=0)


@pytest.mark.parametrize("rows", [1, 2, 31, 33, 1500])
@pytest.mark.parametrize("sizes", [[40, 64, 3], [3, 5, 2], [100, 1]])
def test_predict_matches_numpy_for_every_kernel_path(rng, rows, sizes):
    """Narrow and wide (BLAS) layers, one sample, partial and several chunks."""
    model = make_model(sizes, dtype="float64", seed=1)
    x = rng.standard_normal((rows, sizes[0]))
    h = x
    weights = model.get_weights()
    for i in range(0, len(weights), 2):
        h = h @ weights[i] + weights[i + 1]
        if i + 2 < len(weights):
            h = np.maximum(h, 0)
    np.testing.assert_allclose(model.predict(x), h, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_train_on_batch_takes_any_target_shape_and_layout_alike(rng, dtype):
    """The compiled fast path (exact dtype, contiguous, 1-D or 2-D y) and the converting
    path give the same update."""
    x, y = data(rng, n=24, dtype=dtype)
    runs = []
    for xa, ya in ((x, y), (x, y.ravel()), (np.asfortranarray(x), np.asfortranarray(y)),
                   (x.tolist(), y.tolist())):
        model = compiled(dtype=dtype, seed=4)
        loss = model.train_on_batch(xa, ya)
        runs.append((loss, model.get_weights()))
    for loss, weights in runs[1:]:
        assert loss == pytest.approx(runs[0][0], rel=1e-6)
        for a, b in zip(weights, runs[0][1]):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
