"""fastdense against its NumPy reference, and learning on real and synthetic data."""
import numpy as np
import pytest

import fastdense as fd
from fastdense import reference as ref
from fastdense.datasets import load_diabetes, standardize, train_test_split

ARCHS = [
    ([10, 10, 10, 1], ["relu", "relu", None]),
    ([7, 1, 5, 3], ["relu", "relu", None]),
    ([30, 64, 48, 2], ["relu", "relu", "relu"]),        # BLAS-sized, ReLU on the output
]


def pair(sizes, acts, dtype, seed=0, lr=0.05):
    models = []
    for module in (fd, ref):
        layers = [module.Dense(sizes[1], activation=acts[0], input_dim=sizes[0])]
        layers += [module.Dense(u, activation=a) for u, a in zip(sizes[2:], acts[1:])]
        model = module.Sequential(layers, dtype=dtype, seed=seed)
        model.compile(optimizer=module.optimizers.SGD(learning_rate=lr)
                      if module is fd else ref.SGD(learning_rate=lr), loss="mse")
        models.append(model)
    return models


@pytest.mark.parametrize("sizes,acts", ARCHS)
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("batch_size", [16, 1, 70])
def test_training_follows_the_reference(rng, sizes, acts, dtype, rtol, batch_size):
    """Same seed → same initial weights and the same shuffles: after 5 epochs (with a
    partial last batch), both end with the same weights."""
    fast, slow = pair(sizes, acts, dtype, seed=11)
    for a, b in zip(fast.get_weights(), slow.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = rng.standard_normal((203, sizes[0]))
    y = rng.standard_normal((203, sizes[-1]))
    epochs = 2 if batch_size == 1 else 5
    hf = fast.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
    hs = slow.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
    np.testing.assert_allclose(hf.history["loss"], hs.history["loss"], rtol=rtol)
    for a, b in zip(fast.get_weights(), slow.get_weights()):
        scale = max(np.abs(b).max(), 1e-3)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(fast.predict(x), slow.predict(x), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradients_and_predictions_match_the_reference(rng, dtype):
    fast, slow = pair([12, 9, 4], ["relu", None], dtype, seed=2)
    x = rng.standard_normal((50, 12))
    y = rng.standard_normal((50, 4))
    lf, gf = fast.compute_gradients(x, y)
    ls, gs = slow.compute_gradients(x, y)
    rtol = 1e-12 if dtype == "float64" else 2e-5
    assert lf == pytest.approx(ls, rel=rtol)
    for a, b in zip(gf, gs):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


def test_learns_a_synthetic_function_well_below_the_mean_baseline(rng):
    x = rng.uniform(-1, 1, (2000, 10))
    y = np.sin(2 * x[:, :1]) + x[:, 1:2] * x[:, 2:3] + 0.5 * x[:, 3:4]
    model, _ = pair([10, 32, 32, 1], ["relu", "relu", None], "float32", seed=0, lr=0.05)
    model.fit(x[:1600], y[:1600], epochs=60, batch_size=32, verbose=0)
    baseline = np.mean((y[1600:] - y[:1600].mean()) ** 2)
    assert model.evaluate(x[1600:], y[1600:]) < 0.1 * baseline


def test_learns_the_diabetes_data_below_the_mean_baseline():
    X, y = load_diabetes()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
    X_train, X_test = standardize(X_train, X_test)
    y_train, y_test = standardize(y_train, y_test)
    model, _ = pair([10, 10, 10, 1], ["relu", "relu", None], "float32", seed=0, lr=0.01)
    model.fit(X_train, y_train, epochs=200, batch_size=32, verbose=0)
    baseline = np.mean((y_test - y_train.mean()) ** 2)
    assert model.evaluate(X_test, y_test) < 0.7 * baseline


@pytest.mark.parametrize("isa", ["base", "avx2", "avx512"])
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-10), ("float32", 1e-4)])
def test_every_instruction_set_follows_the_reference(rng, isa, dtype, rtol):
    """With the hand-written loops forced onto each instruction set the CPU has (lowered
    to the best it has): the shuffled batches' gather (in-register transposes for inputs
    up to a vector wide, element by element beyond), the forward and backward loops, and
    predict's chunk transpose all follow the reference, for input and output widths
    around each vector width and batches that leave partial blocks."""
    from fastdense._core import dense
    best = dense.set_isa(None)
    try:
        dense.set_isa(isa)
        for n_in, n_out, batch_size in [(3, 1, 32), (4, 2, 13), (10, 6, 32), (16, 3, 20),
                                        (20, 9, 7), (1, 5, 64)]:
            fast, slow = pair([n_in, 8, n_out], ["relu", None], dtype, seed=n_in)
            x = rng.standard_normal((157, n_in))
            y = rng.standard_normal((157, n_out))
            hf = fast.fit(x, y, epochs=3, batch_size=batch_size, verbose=0)
            hs = slow.fit(x, y, epochs=3, batch_size=batch_size, verbose=0)
            np.testing.assert_allclose(hf.history["loss"], hs.history["loss"], rtol=rtol)
            for a, b in zip(fast.get_weights(), slow.get_weights()):
                np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
            np.testing.assert_allclose(fast.predict(x), slow.predict(x), rtol=rtol,
                                       atol=rtol)
    finally:
        dense.set_isa(best)


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-10), ("float32", 1e-4)])
def test_a_large_plain_sgd_model_follows_the_reference(rng, dtype, rtol):
    """Over 65 536 parameters, plain SGD goes to BLAS's axpy and the divergence check
    through BLAS's Σ|g|: training still follows the reference."""
    fast, slow = pair([300, 256, 2], ["relu", None], dtype, seed=4, lr=0.01)
    assert sum(w.size for w in fast.get_weights()) > 65536
    x = rng.standard_normal((97, 300))
    y = rng.standard_normal((97, 2))
    hf = fast.fit(x, y, epochs=3, batch_size=32, verbose=0)
    hs = slow.fit(x, y, epochs=3, batch_size=32, verbose=0)
    np.testing.assert_allclose(hf.history["loss"], hs.history["loss"], rtol=rtol)
    for a, b in zip(fast.get_weights(), slow.get_weights()):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
