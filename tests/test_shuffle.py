"""The compiled epoch shuffle against NumPy's own Generator.permutation."""
import numpy as np
import pytest

import fastdense as fd
from fastdense import models
from fastdense._core import train


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [0, 1, 2, 3, 31, 32, 33, 1000, 65537])
def test_shuffled_range_draws_what_numpy_permutation_draws(seed, n):
    ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
    order = np.full(n, -1, dtype=np.intp)
    for _ in range(3):                          # and keeps doing so, epoch after epoch
        train.shuffled_range(order, ours)
        np.testing.assert_array_equal(order, theirs.permutation(n))
    assert ours.bit_generator.state == theirs.bit_generator.state
    assert ours.random() == theirs.random()


@pytest.mark.parametrize("bit_generator", [np.random.MT19937, np.random.Philox, np.random.SFC64])
def test_shuffled_range_follows_other_bit_generators(bit_generator):
    ours, theirs = np.random.Generator(bit_generator(5)), np.random.Generator(bit_generator(5))
    order = np.empty(777, dtype=np.intp)
    train.shuffled_range(order, ours)
    np.testing.assert_array_equal(order, theirs.permutation(777))
    np.testing.assert_array_equal(ours.integers(1 << 62, size=9), theirs.integers(1 << 62, size=9))


def test_the_installed_numpy_is_matched():
    assert models.shuffle_matches_numpy()


@pytest.mark.parametrize("order", [np.empty(5, np.int32), np.empty((2, 3), np.intp),
                                   np.empty(10, np.intp)[::2]])
def test_shuffled_range_refuses_other_arrays(order):
    with pytest.raises(ValueError, match="intp"):
        train.shuffled_range(order, np.random.default_rng(0))


def test_read_only_order_is_refused():
    order = np.empty(4, np.intp)
    order.flags.writeable = False
    with pytest.raises(ValueError):
        train.shuffled_range(order, np.random.default_rng(0))


def test_fit_with_numpys_shuffle_is_bitwise_the_same(monkeypatch, rng):
    """The fallback (rng.shuffle, used if a NumPy release changed its draws) and the
    compiled shuffle train identically."""
    x = rng.standard_normal((101, 4)).astype(np.float32)
    y = rng.standard_normal((101, 1)).astype(np.float32)
    weights = []
    for matches in (True, False):
        monkeypatch.setattr(models, "_SHUFFLE_CHECKED", [matches])
        model = fd.Sequential([fd.Dense(6, activation="relu", input_dim=4), fd.Dense(1)],
                              seed=3)
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x, y, epochs=4, batch_size=16, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
