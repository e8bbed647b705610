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


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# CI explores a fixed set of generated cases (reproducible from run to run); a developer's
# runs explore new ones each time.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if __import__("os").environ.get("CI"):
    _hypothesis_settings.load_profile("ci")
