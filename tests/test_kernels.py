"""Each kernel against its formula written again in NumPy, float32 and float64."""
import numpy as np
import pytest

from fastdense._core import dense, losses, updates

DTYPES = [np.float32, np.float64]
# (n, n_in, n_out): tiny, odd, width 1, and shapes above the BLAS threshold
SHAPES = [(1, 1, 1), (3, 5, 2), (7, 1, 9), (32, 10, 10), (32, 10, 1), (17, 64, 128),
          (130, 33, 257), (256, 300, 3)]


def tol(dtype, scale=1.0):
    return dict(rtol=3e-5 * scale, atol=3e-5 * scale) if dtype == np.float32 \
        else dict(rtol=1e-11, atol=1e-11)


def arrays(rng, dtype, *shapes):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
@pytest.mark.parametrize("relu", [False, True])
def test_dense_forward_matches_numpy(rng, dtype, n, n_in, n_out, relu):
    x, w, b = arrays(rng, dtype, (n, n_in), (n_in, n_out), (n_out,))
    z = np.full((n_out, n), np.nan, dtype=dtype)          # feature-major: one column a sample
    dense.dense_forward_checked(np.ascontiguousarray(x.T), w, b, z, relu)
    expected = x.astype(np.float64) @ w + b
    if relu:
        expected = np.maximum(expected, 0)
    np.testing.assert_allclose(z.T, expected, **tol(dtype, np.sqrt(n_in)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
@pytest.mark.parametrize("relu_x", [False, True])
def test_dense_backward_matches_numpy(rng, dtype, n, n_in, n_out, relu_x):
    x, w, dy = arrays(rng, dtype, (n, n_in), (n_in, n_out), (n, n_out))
    if relu_x:
        x = np.maximum(x, 0)          # the input is a ReLU output
    dw = np.full((n_in, n_out), np.nan, dtype=dtype)
    db = np.full(n_out, np.nan, dtype=dtype)
    dxt = np.full((n_in, n), np.nan, dtype=dtype)
    dense.dense_backward_checked(np.ascontiguousarray(x.T), w, np.ascontiguousarray(dy.T),
                                 dw, db, dxt, relu_x)
    dx = dxt.T
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    np.testing.assert_allclose(dw, x64.T @ dy64, **tol(dtype, np.sqrt(n)))
    np.testing.assert_allclose(db, dy64.sum(axis=0), **tol(dtype, np.sqrt(n)))
    expected_dx = dy64 @ w64.T
    if relu_x:
        expected_dx = expected_dx * (x64 > 0)
    np.testing.assert_allclose(dx, expected_dx, **tol(dtype, np.sqrt(n_out)))


def test_dense_backward_without_dx(rng):
    x, w, dy = arrays(rng, np.float64, (4, 3), (3, 2), (4, 2))
    dw, db = np.empty((3, 2)), np.empty(2)
    dense.dense_backward_checked(np.ascontiguousarray(x.T), w, np.ascontiguousarray(dy.T),
                                 dw, db, None)
    np.testing.assert_allclose(dw, x.T @ dy, rtol=1e-12)


def test_relu_keeps_nan_visible():
    for isa in ("base", "avx2", "avx512"):
        dense.set_isa(isa)
        for n in (3, 40):                                   # hand loops and BLAS path
            a = np.ones((1000, n))
            a[:, 0], a[:, 1], a[:, 2] = np.nan, -1.0, 2.0
            z = np.empty((1, n))
            dense.dense_forward_checked(a, np.ones((1000, 1)), np.zeros(1), z, True)
            assert np.isnan(z[0, 0]) and z[0, 1] == 0 and z[0, 2] == 2000
    dense.set_isa(None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,k", [(1, 1), (32, 1), (33, 3), (1000, 10)])
def test_mse_value_and_gradient(rng, dtype, n, k):
    yhat, y = arrays(rng, dtype, (n, k), (n, k))
    grad = np.empty_like(yhat)
    loss = losses.mse_checked(yhat, y, grad)
    d = yhat.astype(np.float64) - y
    np.testing.assert_allclose(loss, np.mean(d ** 2), rtol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(grad, 2 * d / (n * k), **tol(dtype))
    assert losses.mse_checked(yhat, y) == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_update_in_place(rng, dtype):
    p, g = arrays(rng, dtype, (1001,), (1001,))
    expected = p.astype(np.float64) - 0.05 * g
    updates.sgd_update_checked(p, g, 0.05)
    np.testing.assert_allclose(p, expected, **tol(dtype))


@pytest.mark.parametrize("call", [
    lambda: dense.dense_forward_checked(np.ones((3, 2)), np.ones((4, 2)), np.ones(2),
                                        np.ones((2, 2))),
    lambda: dense.dense_forward_checked(np.ones((3, 2)), np.ones((3, 2)), np.ones(3),
                                        np.ones((2, 2))),
    lambda: dense.dense_forward_checked(np.ones((3, 2)), np.ones((3, 2)), np.ones(2),
                                        np.ones((2, 3))),
    lambda: dense.dense_backward_checked(np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 2)),
                                         np.ones((3, 2)), np.ones(2)),
    lambda: losses.mse_checked(np.ones((2, 1)), np.ones((3, 1))),
    lambda: updates.sgd_update_checked(np.ones(3), np.ones(4), 0.1),
])
def test_wrappers_refuse_wrong_shapes(call):
    with pytest.raises(ValueError):
        call()


def test_wrappers_refuse_mixed_dtypes_and_strides():
    with pytest.raises((TypeError, ValueError)):
        dense.dense_forward_checked(np.ones((2, 3), np.float32), np.ones((3, 2)), np.ones(2),
                                    np.ones((2, 2)))
    with pytest.raises((TypeError, ValueError)):
        dense.dense_forward_checked(np.ones((2, 3)).T, np.ones((3, 2)), np.ones(2),
                                    np.ones((2, 2)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_dispatched_instruction_sets_agree(rng, dtype):
    """The hand-written loops give the same results on every instruction set the CPU has
    (up to fused multiply-add rounding)."""
    best = dense.set_isa(None)
    x, w, b, dy = arrays(rng, dtype, (37, 11), (11, 6), (6,), (37, 6))
    a, d = np.ascontiguousarray(x.T), np.ascontiguousarray(dy.T)
    results = {}
    try:
        for isa in ("base", "avx2", "avx512"):
            got = dense.set_isa(isa)
            z = np.empty((6, 37), dtype)
            dw, db, da = np.empty((11, 6), dtype), np.empty(6, dtype), np.empty((11, 37), dtype)
            dense.dense_forward_checked(a, w, b, z, True)
            dense.dense_backward_checked(np.maximum(a, 0), w, d, dw, db, da, True)
            results[got] = (z, dw, db, da)
    finally:
        dense.set_isa(best)
    assert best in results
    base = results["base"]
    for isa, res in results.items():
        for got, want in zip(res, base):
            np.testing.assert_allclose(got, want, **tol(dtype))


def test_set_isa_refuses_unknown_names_and_reports_the_choice():
    with pytest.raises(ValueError):
        dense.set_isa("sse9")
    best = dense.set_isa(None)
    assert dense.get_isa() == best and best in ("base", "avx2", "avx512")


def check_hand_loops_on_every_isa(rng, dtype, n, n_in, n_out):
    """Forward (bias, ReLU) and backward of an n_in × n_out layer over n samples through
    the hand-written loops (BLAS off), on each instruction set, against NumPy in float64."""
    x, w, dy = arrays(rng, dtype, (n, n_in), (n_in, n_out), (n, n_out))
    x = np.maximum(x, 0)
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    previous, best = dense.set_blas_mode("never"), dense.set_isa(None)
    try:
        for isa in ("base", "avx2", "avx512"):
            dense.set_isa(isa)
            z = np.full((n_out, n), np.nan, dtype=dtype)
            dw = np.full((n_in, n_out), np.nan, dtype=dtype)
            db = np.full(n_out, np.nan, dtype=dtype)
            dxt = np.full((n_in, n), np.nan, dtype=dtype)
            dense.dense_forward_checked(np.ascontiguousarray(x.T), w, w[0], z, True)
            np.testing.assert_allclose(z.T, np.maximum(x64 @ w64 + w64[0], 0),
                                       **tol(dtype, np.sqrt(n_in)))
            dense.dense_backward_checked(np.ascontiguousarray(x.T), w,
                                         np.ascontiguousarray(dy.T), dw, db, dxt, True)
            np.testing.assert_allclose(dw, x64.T @ dy64, **tol(dtype, np.sqrt(n)))
            np.testing.assert_allclose(db, dy64.sum(axis=0), **tol(dtype, np.sqrt(n)))
            np.testing.assert_allclose(dxt.T, (dy64 @ w64.T) * (x64 > 0),
                                       **tol(dtype, np.sqrt(n_out)))
    finally:
        dense.set_blas_mode(previous)
        dense.set_isa(best)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,n_in,n_out", [(37, 70, 20), (16, 3, 4), (5, 2, 33), (64, 130, 17),
                                          (9, 10, 3), (48, 7, 16), (40, 32, 32), (71, 33, 5),
                                          (33, 10, 1), (5, 3, 1)])
def test_hand_loops_match_numpy_on_every_isa(rng, dtype, n, n_in, n_out):
    """The hand-written loops forced for every shape: forward and input gradients over
    whole blocks of samples and a partial last block (zero-padded up to 32 rows and
    outputs, sample by sample beyond); weight gradients by outer products of transposed
    blocks (several blocks of rows, outputs and samples, partial ones included), by
    transposing sums (few outputs) and in one pass (one output)."""
    check_hand_loops_on_every_isa(rng, dtype, n, n_in, n_out)


@pytest.mark.parametrize("n_out", range(1, 18))
def test_every_narrow_width_matches_numpy_on_every_isa(rng, n_out):
    """Float layers of 2 to 16 outputs run code compiled for their exact width, and the
    forward takes outputs eight, four and one at a time: each width, over whole and
    partial blocks of samples."""
    check_hand_loops_on_every_isa(rng, np.float32, 37, 7, n_out)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 15, 16, 17, 1000, 70001])
def test_all_finite_checked_finds_every_nan_and_inf(dtype, size):
    """The compiled finiteness check (X and y's validation) against np.isfinite, with the
    bad value at each end and in the middle, below and above the size that releases the
    GIL."""
    x = np.linspace(-1e30, 1e30, size).astype(dtype)
    assert dense.all_finite_checked(x) is True
    for bad in (np.nan, np.inf, -np.inf):
        for at in {0, size // 2, size - 1}:
            y = x.copy()
            y[at] = bad
            assert dense.all_finite_checked(y) is bool(np.isfinite(y).all()) is False
    assert dense.all_finite_checked(np.empty(0, dtype)) is True


def test_the_blas_sum_shortcut_is_used_only_where_it_carries_nan_and_inf():
    """The divergence check's shortcut (a finite Σ|g| through BLAS proves g finite) can be
    switched on only where the import-time check finds NaN and ±Inf reaching that sum."""
    trusted = dense.asum_carries_non_finite()
    previous = dense.use_blas_finite_check(True)
    try:
        assert dense.use_blas_finite_check(True) is trusted
        assert dense.use_blas_finite_check(False) is trusted
        assert dense.use_blas_finite_check(True) is False
    finally:
        dense.use_blas_finite_check(previous)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shortcut", [True, False])
def test_gradient_check_is_exact_with_or_without_the_blas_sum(dtype, shortcut):
    """Below and above the size where BLAS's Σ|g| comes first: every NaN or ±Inf is found,
    and finite values whose sum overflows are still finite."""
    previous = dense.use_blas_finite_check(shortcut)
    try:
        for n in (1000, 70000, 1 << 17):
            g = np.linspace(-1, 1, n).astype(dtype)
            assert dense.grads_finite_checked(g) is True
            for bad in (np.nan, np.inf, -np.inf):
                for at in (0, n // 2, n - 1):
                    h = g.copy()
                    h[at] = bad
                    assert dense.grads_finite_checked(h) is False
            huge = np.full(n, np.finfo(dtype).max / 4, dtype)
            assert np.isinf(dense.asum_checked(huge))       # the sum overflows …
            assert dense.grads_finite_checked(huge) is True  # … the values are finite
    finally:
        dense.use_blas_finite_check(previous)
