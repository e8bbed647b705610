import numpy as np
import pytest

import fastdense as fd

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def make_model(sizes, activations=None, dtype="float64", seed=0):
    """A Sequential of Dense layers of widths sizes[1:], input width sizes[0]."""
    if activations is None:
        activations = ["relu"] * (len(sizes) - 2) + [None]
    layers = [fd.Dense(sizes[1], activation=activations[0], input_dim=sizes[0])]
    layers += [fd.Dense(u, activation=a) for u, a in zip(sizes[2:], activations[1:])]
    return fd.Sequential(layers, dtype=dtype, seed=seed)


def case_model(case, dtype, seed, optimizer):
    """A Sequential for case = (sizes, activations, loss), compiled with optimizer."""
    sizes, acts, loss = case
    layers = [fd.Dense(sizes[1], activation=acts[0], input_shape=(sizes[0],))]
    layers += [fd.Dense(u, activation=a) for u, a in zip(sizes[2:], acts[1:])]
    model = fd.Sequential(layers, dtype=dtype, seed=seed)
    model.compile(optimizer=optimizer, loss=loss)
    return model


def case_data(case, dtype, n, rng):
    """n samples for case = (sizes, activations, loss): normal inputs, and normal targets
    or (categorical cross-entropy) one-hot labels."""
    sizes, _, loss = case
    x = rng.standard_normal((n, sizes[0])).astype(dtype)
    if loss == "categorical_crossentropy":
        y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]
    else:
        y = rng.standard_normal((n, sizes[-1])).astype(dtype)
    return x, y


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# CI explores a fixed set of generated cases (reproducible from run to run); a developer's
# runs explore new ones each time.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if __import__("os").environ.get("CI"):
    _hypothesis_settings.load_profile("ci")
