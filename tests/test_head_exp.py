"""The exp of the softmax / cross-entropy head (fm_kernels.h's fd_expf, vectorised along
the samples; float64 keeps libm's exp) on every instruction set: at most 1 ulp from the
correctly rounded float32 value over a dense sweep of [-104, 89] and the edges, libm's
results for ±inf, overflow, underflow and NaN; and the head built on it: the softmax it
writes equals predict's bit for bit, NaN propagates, huge negative logits give 0, and the
loss and gradient match NumPy for batches around the head's block and vector edges."""
import math

import numpy as np
import pytest

import fastdense as fd
from fastdense._core import dense

ISAS = ["base", "avx2", "avx512"]


@pytest.fixture
def isa_restored():
    best = dense.set_isa(None)
    yield best
    dense.set_isa(best)


def kernel_exp(x, isa):
    dense.set_isa(isa)
    out = np.array(x, copy=True)
    dense.head_exp_checked(out)
    return out


def correctly_rounded(x):
    """e^x rounded once to float32, from an extended-precision exp (x86-64's long double:
    64 bits of mantissa, so wrong only within ~2^-40 of a halfway case)."""
    with np.errstate(over="ignore"):
        return np.exp(x.astype(np.longdouble)).astype(np.float32)


def ulps_apart(a, b):
    """|a − b| in float32 ulps for non-negative finite-or-inf a, b (bit patterns are
    ordered like the values for x ≥ 0)."""
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


def sweep():
    rng = np.random.default_rng(7)
    parts = [
        np.linspace(-104.0, 89.0, 2_000_001, dtype=np.float64).astype(np.float32),
        rng.uniform(-104.0, 89.0, 1_000_000).astype(np.float32),
        # every float around 0, and small magnitudes: results 1 ± a few ulps
        np.nextafter(np.float32(0), np.float32(1)) * np.arange(-2000, 2001, dtype=np.float32),
        np.float32(2.0) ** -np.arange(1, 126, dtype=np.float32),
        -(np.float32(2.0) ** -np.arange(1, 126, dtype=np.float32)),
    ]
    # every float within 4096 ulps of the overflow, underflow and subnormal thresholds
    for t in (88.72283935546875, -87.33654022216797, -103.27892303466797, -103.97208404541016,
              -1.0, 1.0, -0.5 * math.log(2), 0.5 * math.log(2)):
        c = np.float32(t).view(np.int32)
        parts.append((c + np.arange(-4096, 4097, dtype=np.int32)).view(np.float32))
    return np.concatenate(parts)


@pytest.mark.parametrize("isa", ISAS)
def test_float32_exp_within_one_ulp_of_correctly_rounded(isa_restored, isa):
    x = sweep()
    got = kernel_exp(x, isa)
    want = correctly_rounded(x)
    assert not np.isnan(got).any()
    over = np.isinf(want)
    np.testing.assert_array_equal(np.isinf(got), over)      # overflow exactly where libm's
    d = ulps_apart(got[~over], want[~over])
    worst = int(d.max())
    assert worst <= 1, f"{isa}: {worst} ulps at x = {x[~over][d.argmax()]!r}"
    # within ~2^-39 of the true value before its one rounding: almost always exact
    assert (d == 0).mean() > 0.9999, f"{isa}: {(d == 0).mean()} correctly rounded"


@pytest.mark.parametrize("isa", ISAS)
def test_float32_exp_edges_as_libm(isa_restored, isa):
    f32 = np.finfo(np.float32)
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 89.0, 88.8, 1e30, f32.max,
                  -104.0, -110.0, -1e4, -1e30, -f32.max, f32.tiny, -f32.tiny,
                  f32.smallest_subnormal, 88.72283, -103.97207, -103.972084, 1.0, -1.0],
                 dtype=np.float32)
    got = kernel_exp(x, isa)
    with np.errstate(over="ignore"):
        want = np.array([math.exp(v) if v < 709 else math.inf for v in x.astype(float)]
                        ).astype(np.float32)
    nan = np.isnan(x)
    assert np.isnan(got[nan]).all()                         # NaN stays NaN
    assert (ulps_apart(got[~nan], want[~nan]) <= 1).all(), (x[~nan], got[~nan], want[~nan])
    for v, g in zip(x, got):
        if v == np.inf or v > 88.73:
            assert g == np.inf
        if v == -np.inf or v < -104:
            assert g == 0 and not np.signbit(g)
        if v == 0:
            assert g == 1


@pytest.mark.parametrize("isa", ISAS)
def test_float32_exp_any_length(isa_restored, isa):
    """Whole vectors of 16 and the partial last one give the same values."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-30, 10, 80).astype(np.float32)
    x[5] = np.nan
    whole = kernel_exp(x, isa)
    for m in range(1, 80):
        part = kernel_exp(x[:m], isa)
        np.testing.assert_array_equal(part, whole[:m])


@pytest.mark.parametrize("isa", ISAS)
def test_float64_keeps_libm_exp(isa_restored, isa):
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(-750, 710, 2000), [0.0, -np.inf, np.inf, np.nan, -1e300]])
    got = kernel_exp(x, isa)
    want = np.array([v if v != v else math.exp(v) if v < 709.78 else math.inf for v in x])
    np.testing.assert_array_equal(got, want)


def numpy_softmax(z):
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=0))
    return e / e.sum(axis=0)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 5, 16, 17, 32, 63, 64, 65, 130])
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_head_softmax_and_cross_entropy(isa_restored, isa, dtype, n, loss):
    dense.set_isa(isa)
    rng = np.random.default_rng(n)
    k = 10
    z = (3 * rng.standard_normal((k, n))).astype(dtype)
    z[3, :: 7] = -1e30                  # huge negative logits: probability 0
    labels = rng.integers(0, k, n)
    labels[:: 7] = 0
    onehot = np.zeros((k, n), dtype)
    onehot[labels, np.arange(n)] = 1
    y = labels.astype(dtype)[None, :] if loss.startswith("sparse") else onehot
    sw = rng.uniform(0.5, 2, n).astype(dtype)
    total, a, dz = dense.head_checked(loss, "softmax", z, y, sw)
    p = numpy_softmax(z)
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(a, p, rtol=rtol, atol=1e-7 if dtype == np.float32 else 1e-16)
    assert (a[3, :: 7] == 0).all()
    zz = z.astype(np.float64)
    lse = np.log(np.exp(zz - zz.max(axis=0)).sum(axis=0)) + zz.max(axis=0)
    li = lse - zz[labels, np.arange(n)]
    assert total == pytest.approx((sw * li).sum(), rel=rtol)
    # (p − 1 at the label cancels: an absolute bound of a few ulps of 1, times w/n)
    atol = (4e-7 if dtype == np.float32 else 1e-15) / n
    np.testing.assert_allclose(dz, (p - onehot) * sw / n, rtol=rtol, atol=atol)
    # from logits (linear output): the same loss and gradient, dz holding the exps first
    total_l, a_l, dz_l = dense.head_checked(
        fd.losses.get(loss).__class__(from_logits=True), "linear", z, y, sw)
    assert total_l == total
    np.testing.assert_array_equal(dz_l, dz)
    np.testing.assert_array_equal(a_l, z)
    # and without the gradient (the exps summed, not kept)
    total_n, a_n, dz_n = dense.head_checked(
        fd.losses.get(loss).__class__(from_logits=True), "linear", z, y, sw, gradient=False)
    assert total_n == total and dz_n is None


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_head_lets_nan_through(isa_restored, isa, dtype):
    dense.set_isa(isa)
    k, n = 4, 40
    z = np.random.default_rng(1).standard_normal((k, n)).astype(dtype)
    z[2, 17] = np.nan
    y = np.zeros((1, n), dtype)
    total, a, dz = dense.head_checked("sparse_categorical_crossentropy", "softmax", z, y)
    assert math.isnan(total)
    assert np.isnan(a[:, 17]).all() and np.isnan(dz[:, 17]).all()
    assert np.isfinite(np.delete(a, 17, axis=1)).all()


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_softmax_equals_predict(isa_restored, isa, dtype):
    """The head writes softmax(z) as fit's output; predict's softmax (softmax_fm) is the same
    function: a one-layer identity model's predictions equal the head's a bit for bit."""
    dense.set_isa(isa)
    k, n = 10, 77
    rng = np.random.default_rng(9)
    z = (4 * rng.standard_normal((k, n))).astype(dtype)
    z[1, ::5] = -200.0
    model = fd.Sequential([fd.Dense(k, activation="softmax", input_dim=k)], dtype=dtype)
    model.set_weights([np.eye(k, dtype=dtype), np.zeros(k, dtype=dtype)])
    predicted = model.predict(z.T)
    y = rng.integers(0, k, n).astype(dtype)[None, :]
    _, a, _ = dense.head_checked("sparse_categorical_crossentropy", "softmax", z, y)
    np.testing.assert_array_equal(predicted, a.T)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 5, 17, 64, 65, 130])
def test_head_binary_cross_entropy(isa_restored, isa, dtype, n):
    """The BCE head's e^−|z| is the same exp: loss and gradient against NumPy (extreme
    logits included), NaN through."""
    dense.set_isa(isa)
    rng = np.random.default_rng(n + 1)
    k = 3
    z = (4 * rng.standard_normal((k, n))).astype(dtype)
    z[0, ::5] = 120.0
    z[1, ::6] = -150.0
    y = rng.integers(0, 2, (k, n)).astype(dtype)
    sw = rng.uniform(0.5, 2, n).astype(dtype)
    total, a, dz = dense.head_checked("binary_crossentropy", "sigmoid", z, y, sw)
    zz = z.astype(np.float64)
    li = (np.maximum(zz, 0) - zz * y + np.log1p(np.exp(-np.abs(zz)))).mean(axis=0)
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    assert total == pytest.approx((sw * li).sum(), rel=rtol)
    sig = 1 / (1 + np.exp(-zz))
    atol = (4e-7 if dtype == np.float32 else 1e-15) / n
    np.testing.assert_allclose(dz, (sig - y) * sw / (k * n), rtol=rtol, atol=atol)
    z[2, n // 2] = np.nan
    total, a, dz = dense.head_checked("binary_crossentropy", "sigmoid", z, y, sw)
    assert math.isnan(total) and math.isnan(dz[2, n // 2])
    assert np.isfinite(np.delete(dz, n // 2, axis=1)).all()
