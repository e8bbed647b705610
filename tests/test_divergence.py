"""A non-finite loss or gradient stops training before its update, with a clear error."""
import numpy as np
import pytest

import fastdense as fd
from conftest import make_model


def exploding(dtype="float32", lr=5.0):
    model = make_model([4, 8, 1], dtype=dtype, seed=0)
    model.compile(optimizer=fd.optimizers.SGD(learning_rate=lr), loss="mse")
    return model


def data(rng, n=64):
    x = rng.standard_normal((n, 4)) * 10
    return x, x.sum(axis=1, keepdims=True) * 100


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_stops_at_the_first_non_finite_loss_and_keeps_the_last_finite_weights(rng, dtype):
    x, y = data(rng)
    model, twin = exploding(dtype), exploding(dtype)
    with pytest.raises(fd.DivergenceError) as info:
        model.fit(x, y, epochs=50, batch_size=8, shuffle=False, verbose=0)
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert f"epoch {err.epoch + 1}, batch {err.batch + 1}" in str(err)
    weights = model.get_weights()
    assert all(np.isfinite(w).all() for w in weights)
    applied = model.optimizer.iterations
    assert applied == err.epoch * 8 + err.batch
    # the same updates one by one: the diverging batch is exactly the next one
    for t in range(applied):
        b = t % 8
        twin.train_on_batch(x[8 * b:8 * b + 8], y[8 * b:8 * b + 8])
    for a, b in zip(weights, twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    b = applied % 8
    with pytest.raises(fd.DivergenceError):
        twin.train_on_batch(x[8 * b:8 * b + 8], y[8 * b:8 * b + 8])
    for a, b in zip(weights, twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len(err.history.history.get("loss", [])) == err.epoch
    assert model.history is err.history


def test_a_finite_run_raises_nothing(rng):
    x, y = data(rng)
    model = exploding(lr=1e-6)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert model.optimizer.iterations == 24
