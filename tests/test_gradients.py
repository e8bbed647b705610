"""Every analytic gradient against central finite differences, float64."""
import numpy as np
import pytest

from conftest import make_model

ARCHITECTURES = [
    ([3, 1], [None]),                                   # linear regression
    ([1, 1, 1], ["relu", None]),                        # width 1 everywhere
    ([5, 4, 1], ["relu", None]),
    ([4, 1, 3], ["relu", None]),                        # width-1 hidden layer
    ([10, 10, 10, 1], ["relu", "relu", None]),          # the classic network
    ([7, 5, 3, 6, 2, 2], ["relu"] * 4 + [None]),        # five layers, odd sizes
    ([6, 4, 3], ["relu", "relu"]),                      # ReLU on the output
    ([40, 64, 48, 2], ["relu", "relu", None]),          # BLAS-sized layers
]


def finite_difference_gradients(model, x, y, eps=1e-6):
    weights = model.get_weights()
    grads = []
    for i, w in enumerate(weights):
        g = np.empty_like(w)
        for idx in np.ndindex(w.shape):
            trial = [a.copy() for a in weights]
            trial[i][idx] = w[idx] + eps
            model.set_weights(trial)
            up = model.evaluate(x, y)
            trial[i][idx] = w[idx] - eps
            model.set_weights(trial)
            down = model.evaluate(x, y)
            g[idx] = (up - down) / (2 * eps)
        grads.append(g)
    model.set_weights(weights)
    return grads


@pytest.mark.parametrize("sizes,acts", ARCHITECTURES)
@pytest.mark.parametrize("batch", [1, 9])
def test_gradients_match_finite_differences(rng, sizes, acts, batch):
    model = make_model(sizes, acts, dtype="float64", seed=3)
    if sizes[0] == 40 and batch == 1:
        batch = 13
    x = rng.standard_normal((batch, sizes[0]))
    y = rng.standard_normal((batch, sizes[-1]))
    loss, analytic = model.compute_gradients(x, y)
    assert loss == pytest.approx(model.evaluate(x, y), rel=1e-12)
    numeric = finite_difference_gradients(model, x, y)
    for a, f in zip(analytic, numeric):
        assert a.shape == f.shape
        scale = max(np.linalg.norm(f), np.linalg.norm(a))
        if scale == 0:
            continue                                    # a dead ReLU unit: both exactly zero
        assert np.linalg.norm(a - f) / scale < 1e-6
