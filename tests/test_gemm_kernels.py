"""fm_gemm.h's register-blocked products (dense.set_blas_mode("micro")) against NumPy, on
every instruction set, in float32 and float64, on sizes around every block edge (tiles
of 4 and 8 rows, one and two vectors of 2, 4, 8 or 16 lanes, the transposed chunks of
dW), with the fused epilogues (bias, activations, their derivatives) and NaN passing
through; and the wide gather, and gemm_floor."""
import numpy as np
import pytest

from fastdense._core import dense

DTYPES = [np.float32, np.float64]
ISAS = ["base", "avx2", "avx512"]
# batch sizes and widths around the vector widths (2 to 16 lanes), the two-vector tiles,
# the row tiles (4, 8) and the dW chunks (up to 64 samples)
EDGES_N = [2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 64, 65, 100, 129]
EDGES_W = [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 31, 33, 64, 65]


def tol(dtype, scale=1.0):
    return dict(rtol=3e-5 * scale, atol=3e-5 * scale) if dtype == np.float32 \
        else dict(rtol=1e-11, atol=1e-11)


def shapes():
    rng = np.random.default_rng(12)
    out = [(32, 64, 64), (32, 64, 10), (128, 64, 64), (32, 10, 512), (16, 512, 1)]
    for n in EDGES_N:
        out.append((n, int(rng.choice(EDGES_W)), int(rng.choice(EDGES_W))))
    for w in EDGES_W:
        out.append((int(rng.choice(EDGES_N)), w, int(rng.choice(EDGES_W))))
        out.append((int(rng.choice(EDGES_N)), int(rng.choice(EDGES_W)), w))
    return out


@pytest.fixture
def micro():
    previous, best = dense.set_blas_mode("micro"), dense.set_isa(None)
    yield best
    dense.set_blas_mode(previous)
    dense.set_isa(best)


def numpy_act(name, z):
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.2 * z)   # fastdense's default slope: checked below
    if name == "tanh":
        return np.tanh(z)
    return z


def numpy_act_grad(name, y):
    if name == "relu":
        return (y > 0).astype(y.dtype)
    if name == "tanh":
        return 1 - y * y
    return np.ones_like(y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,n_in,n_out", shapes())
def test_micro_kernels_equal_numpy_on_every_isa(micro, dtype, n, n_in, n_out):
    rng = np.random.default_rng(n * 10007 + n_in * 101 + n_out)
    x = rng.standard_normal((n, n_in))
    w = rng.standard_normal((n_in, n_out))
    b = rng.standard_normal(n_out)
    dy = rng.standard_normal((n, n_out))
    assert dense.layer_path(n, n_in, n_out) == "micro"
    for isa in ISAS:
        dense.set_isa(isa)
        for act in ("linear", "relu", "tanh"):
            xa = numpy_act(act, x)          # the layer's input: the previous activation's
            z = np.full((n_out, n), np.nan, dtype)
            dense.dense_forward_checked(np.ascontiguousarray(xa.T, dtype), w.astype(dtype),
                                        b.astype(dtype), z, activation=act)
            want = numpy_act(act, xa.astype(dtype).astype(np.float64)
                             @ w.astype(dtype).astype(np.float64) + b.astype(dtype))
            np.testing.assert_allclose(z.T, want, **tol(dtype, np.sqrt(n_in)),
                                       err_msg=f"forward {isa} {act}")
            dw = np.full((n_in, n_out), np.nan, dtype)
            db = np.full(n_out, np.nan, dtype)
            da = np.full((n_in, n), np.nan, dtype)
            a_t = np.ascontiguousarray(xa.T, dtype)
            d_t = np.ascontiguousarray(dy.T, dtype)
            dense.dense_backward_checked(a_t, w.astype(dtype), d_t, dw, db, da,
                                         activation_a=act)
            a64, d64, w64 = (v.astype(np.float64) for v in (a_t, d_t, w.astype(dtype)))
            np.testing.assert_allclose(dw, a64 @ d64.T, **tol(dtype, np.sqrt(n)),
                                       err_msg=f"dW {isa} {act}")
            np.testing.assert_allclose(db, d64.sum(axis=1), **tol(dtype, np.sqrt(n)),
                                       err_msg=f"db {isa} {act}")
            np.testing.assert_allclose(da, (w64 @ d64) * numpy_act_grad(act, a64),
                                       **tol(dtype, np.sqrt(n_out)),
                                       err_msg=f"dA {isa} {act}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_micro_leaky_relu_matches_the_hand_loops(micro, dtype):
    rng = np.random.default_rng(5)
    n, n_in, n_out = 33, 17, 20
    a = rng.standard_normal((n_in, n)).astype(dtype)
    w, b = rng.standard_normal((n_in, n_out)).astype(dtype), rng.standard_normal(n_out).astype(dtype)
    d = rng.standard_normal((n_out, n)).astype(dtype)
    outs = {}
    for mode in ("micro", "never"):
        dense.set_blas_mode(mode)
        z = np.empty((n_out, n), dtype)
        dense.dense_forward_checked(a, w, b, z, activation="leaky_relu")
        dw, db, da = np.empty((n_in, n_out), dtype), np.empty(n_out, dtype), np.empty((n_in, n), dtype)
        dense.dense_backward_checked(np.maximum(a, 0) - 0.1, w, d, dw, db, da,
                                     activation_a="leaky_relu")
        outs[mode] = (z, dw, db, da)
    for got, want in zip(outs["micro"], outs["never"]):
        np.testing.assert_allclose(got, want, **tol(dtype, 10))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_micro_kernels_let_nan_through(micro, dtype, isa):
    dense.set_isa(isa)
    n, n_in, n_out = 40, 24, 20
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n_in, n)).astype(dtype)
    a[3, 5] = np.nan
    w = rng.standard_normal((n_in, n_out)).astype(dtype)
    b = np.zeros(n_out, dtype)
    z = np.empty((n_out, n), dtype)
    dense.dense_forward_checked(a, w, b, z, relu=True)
    assert np.isnan(z[:, 5]).all() and np.isfinite(np.delete(z, 5, axis=1)).all()
    d = rng.standard_normal((n_out, n)).astype(dtype)
    d[2, 7] = np.nan
    dw, db, da = np.empty((n_in, n_out), dtype), np.empty(n_out, dtype), np.empty((n_in, n), dtype)
    dense.dense_backward_checked(np.abs(a), w, d, dw, db, da)
    assert np.isnan(db[2]) and np.isnan(dw[:, 2]).all() and np.isnan(da[:, 7]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("width", [1, 2, 5, 16, 17, 33, 64, 100])
def test_gather_of_wide_rows(dtype, isa, width):
    """Training inputs of any width reach the first layer feature-major (via fit on a
    model whose first layer runs the micro-kernels: compared with BLAS's sample-major)."""
    import fastdense as fd
    best = dense.set_isa(None)
    dense.set_isa(isa)
    rng = np.random.default_rng(width)
    X = rng.standard_normal((70, width)).astype(dtype)
    y = rng.standard_normal((70, 1)).astype(dtype)
    weights = {}
    try:
        for mode in ("micro", "always"):
            previous = dense.set_blas_mode(mode)
            try:
                model = fd.Sequential([fd.Dense(24, activation="relu", input_shape=(width,)),
                                       fd.Dense(1)], dtype=dtype, seed=3)
                model.compile(optimizer="sgd", loss="mse")
                model.fit(X, y, epochs=2, batch_size=32, shuffle=True, verbose=0)
                weights[mode] = model.get_weights()
            finally:
                dense.set_blas_mode(previous)
    finally:
        dense.set_isa(best)
    for got, want in zip(weights["micro"], weights["always"]):
        np.testing.assert_allclose(got, want, **tol(dtype, 30))


def test_auto_sends_medium_layers_to_the_micro_kernels_only_on_avx512():
    previous, best = dense.set_blas_mode("auto"), dense.set_isa(None)
    try:
        assert dense.layer_path(1, 64, 64) == "hand"
        assert dense.layer_path(32, 8, 8) == "hand"
        assert dense.layer_path(32, 64, 64) == ("micro" if best == "avx512" else "blas")
        assert dense.layer_path(32, 1024, 64) == "blas"
        # below two vectors of samples a tile is mostly padding: BLAS
        assert dense.layer_path(31, 64, 64) == "blas"
        assert dense.layer_path(8, 256, 256) == "blas"
        # up to 3 M multiply-adds a product; past it, BLAS's threads win
        assert dense.layer_path(32, 256, 256) == ("micro" if best == "avx512" else "blas")
        assert dense.layer_path(64, 256, 256) == "blas"
        dense.set_isa("avx2")
        assert dense.layer_path(32, 64, 64) == "blas"
    finally:
        dense.set_blas_mode(previous)
        dense.set_isa(best)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_floor_times_something(dtype):
    t = dense.gemm_floor((10, 64, 64, 1), 32, dtype, block_seconds=0.0005, blocks=3)
    assert 0 < t < 0.1
    with pytest.raises(ValueError):
        dense.gemm_floor((10,), 32)


def test_micro_max_work_bounds_the_auto_rule():
    previous, best = dense.set_blas_mode("auto"), dense.set_isa(None)
    old = dense.set_micro_max_work(0)
    try:
        assert dense.layer_path(32, 64, 64) == "blas"
        dense.set_micro_max_work(32 * 64 * 64)
        assert dense.layer_path(32, 64, 64) == ("micro" if best == "avx512" else "blas")
        assert dense.layer_path(33, 64, 64) == "blas"
    finally:
        dense.set_micro_max_work(old)
        dense.set_blas_mode(previous)
        dense.set_isa(best)
