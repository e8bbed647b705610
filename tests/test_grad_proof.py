"""The divergence check at small batches: a gradient's finiteness proved from the layers'
activations and output gradients (train.pyx's grads_proved_finite) must agree with the
gradient itself, read value by value, at every scale."""
import numpy as np
import pytest

import fastdense as fd
from fastdense._core import dense


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [0, 1, 7, 15, 16, 17, 31, 33, 64, 1000])
def test_abs_sum_is_the_sum_of_absolute_values_in_double(rng, dtype, size):
    x = (rng.standard_normal(size) * 1e3).astype(dtype)
    expect = float(np.abs(x.astype(np.float64)).sum())
    assert dense.abs_sum_checked(x) == pytest.approx(expect, rel=1e-12, abs=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_abs_sum_is_not_finite_when_a_value_is_not(rng, dtype, bad):
    for size in (1, 16, 17, 40):
        for at in {0, size // 2, size - 1}:
            x = rng.standard_normal(size).astype(dtype)
            x[at] = bad
            assert not np.isfinite(dense.abs_sum_checked(x))


def test_abs_sum_of_the_largest_floats_does_not_overflow():
    x = np.full(1000, np.finfo(np.float32).max, dtype=np.float32)
    assert dense.abs_sum_checked(x) == pytest.approx(1000 * float(np.finfo(np.float32).max))


def extreme_case(rng, dtype, sizes, batch):
    """A model and a batch whose inputs, targets and weights span many decades. The first
    layer ignores most of the huge input features (their rows of W are zero), so the loss
    often stays finite while those rows' gradient overflows."""
    model = fd.Sequential([fd.Dense(sizes[1], activation="relu", input_shape=(sizes[0],)),
                           fd.Dense(sizes[2], activation="relu"),
                           fd.Dense(sizes[3])], dtype=dtype)
    model.compile(optimizer=fd.optimizers.SGD(learning_rate=1e-30), loss="mse")
    decades = np.finfo(dtype).maxexp * np.log10(2)
    scale = rng.uniform(-3, 0.75 * decades, sizes[0])
    weights = []
    for w in model.get_weights():
        scaled = w * 10.0 ** rng.uniform(-3, 0.05 * decades)
        if w.shape[0] == sizes[0] and w.ndim == 2:
            scaled[(scale > 0.3 * decades) & (rng.random(sizes[0]) < 0.8)] = 0
        weights.append(scaled.astype(dtype))
    model.set_weights(weights)
    x = rng.standard_normal((batch, sizes[0])) * 10.0 ** scale
    y = rng.standard_normal((batch, sizes[-1])) * 10.0 ** rng.uniform(-3, 0.45 * decades)
    return model, x.astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_small_batch_update_diverges_exactly_when_its_gradient_is_not_finite(rng, dtype):
    # wide layers at batches of 1-3: fewer activation values than parameters, the case in
    # which the training loop proves the gradient finite instead of reading it
    seen = {"finite": 0, "loss finite, gradient not": 0, "loss not finite": 0}
    for _ in range(150):
        sizes = (int(rng.integers(2, 12)), int(rng.integers(24, 64)),
                 int(rng.integers(24, 64)), int(rng.integers(1, 4)))
        batch = int(rng.integers(1, 4))
        model, x, y = extreme_case(rng, dtype, sizes, batch)
        with np.errstate(all="ignore"):
            loss, grads = model.compute_gradients(x, y)
        finite = np.isfinite(loss) and all(np.isfinite(g).all() for g in grads)
        before = model.get_weights()
        if finite:
            seen["finite"] += 1
            model.train_on_batch(x, y)
            assert model.optimizer.iterations == 1
        else:
            seen["loss finite, gradient not" if np.isfinite(loss) else "loss not finite"] += 1
            with pytest.raises(fd.DivergenceError):
                model.train_on_batch(x, y)
            assert model.optimizer.iterations == 0
            for a, b in zip(before, model.get_weights()):
                np.testing.assert_array_equal(a, b)
    # both cases the proof must tell apart occurred
    assert seen["finite"] >= 5 and seen["loss finite, gradient not"] >= 5, seen


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_overflowing_weight_gradient_under_a_finite_loss_stops_fit(dtype):
    # feature 0 is huge but its weights are zero, so the forward never sees it; the targets
    # are far off, so the output gradient is large: dW's first row overflows, the loss not
    big = np.finfo(dtype).max
    model = fd.Sequential([fd.Dense(64, activation="relu", input_shape=(4,)),
                           fd.Dense(64, activation="relu"), fd.Dense(1)], dtype=dtype)
    model.compile(optimizer="sgd", loss="mse")
    w = model.get_weights()
    w[0][0] = 0
    model.set_weights(w)
    x = np.ones((2, 4), dtype=dtype)
    x[:, 0] = big / 2
    y = np.full((2, 1), 1e3, dtype=dtype)
    with np.errstate(all="ignore"):
        loss, grads = model.compute_gradients(x, y)
    assert np.isfinite(loss) and not np.isfinite(grads[0]).all()
    with pytest.raises(fd.DivergenceError):
        model.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(w, model.get_weights()):
        np.testing.assert_array_equal(a, b)
