"""Property-based tests of the checked boundary: whatever array a user passes to a public
entry point — any dtype, shape, memory layout, NaN or Inf — the result equals an
independent NumPy computation or a ValueError/TypeError is raised, and a failed call
leaves the model (or the arrays) exactly as it was."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastdense as fd
from fastdense import reference as ref
from fastdense._core import dense, losses

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
DTYPES = ["bool", "int8", "int64", "uint16", "float16", "float32", "float64",
          "complex64", "object", "U4"]
LAYOUTS = ["C", "F", "strided", "readonly"]


@st.composite
def arrays(draw, shapes):
    """An array of a drawn dtype, shape and layout, values normal-ish, maybe NaN/Inf."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(shapes)
    layout = draw(st.sampled_from(LAYOUTS))
    poison = draw(st.sampled_from([None, None, None, np.nan, np.inf, -np.inf]))
    seed = draw(st.integers(0, 2**32 - 1))
    values = np.asarray(np.random.default_rng(seed).standard_normal(shape) * 3)
    if poison is not None and values.size:
        values.flat[seed % values.size] = poison
    if dtype == "object":
        a = np.asarray(values.astype(object))
    elif dtype == "U4":
        a = values.astype("U4")
    elif dtype == "bool":
        a = values > 0
    elif np.dtype(dtype).kind in "iu":
        a = np.nan_to_num(values, nan=0, posinf=9, neginf=-9).astype(dtype)
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            a = values.astype(dtype)
    a = np.asarray(a)
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "strided" and a.ndim:
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        wide[..., ::2] = a
        a = wide[..., ::2]
    elif layout == "readonly":
        a.flags.writeable = False
    return a


def shapes_around(width):
    """Mostly (n, width); sometimes a wrong width, 1-D, 3-D, empty."""
    good = st.tuples(st.integers(0, 40), st.just(width))
    bad = st.one_of(st.tuples(st.integers(0, 5), st.integers(0, 14)),
                    st.tuples(st.integers(0, 9)),
                    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
                    st.just(()))
    return st.one_of(good, good, bad)


def acceptable(a, width, dtype):
    """Whether a is valid model input of that width, and its converted form."""
    if a.dtype.kind not in "biuf" or a.ndim != 2 or a.shape[1] != width:
        return False, None
    with np.errstate(over="ignore"):
        conv = np.ascontiguousarray(a, dtype=dtype)
    return bool(np.isfinite(conv).all()), conv


def numpy_forward(weights, x):
    h = x.astype(np.float64)
    for i in range(0, len(weights), 2):
        h = h @ weights[i] + weights[i + 1]
        if i + 2 < len(weights):
            h = np.maximum(h, 0)
    return h


def classic(dtype, module=fd, seed=0):
    model = module.Sequential([module.Dense(10, activation="relu", input_dim=10),
                               module.Dense(10, activation="relu"), module.Dense(1)],
                              dtype=dtype, seed=seed)
    model.compile(optimizer=module.optimizers.SGD(learning_rate=0.01), loss="mse")
    return model


def same(a, b):
    """Equal arrays: NaN equal to NaN; object arrays hold the very same objects."""
    if a.dtype.kind == "O":
        return a.shape == b.shape and all(u is w for u, w in zip(a.flat, b.flat))
    return np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def unchanged(model, before):
    return all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@SETTINGS
@given(x=arrays(shapes_around(10)), dtype=st.sampled_from(["float32", "float64"]))
def test_predict_is_right_or_refuses(x, dtype):
    model = classic(dtype)
    before = model.get_weights()
    ok, conv = acceptable(x, 10, dtype)
    if ok:
        out = model.predict(x)
        assert out.dtype == dtype and out.shape == (x.shape[0], 1)
        tol = 1e-4 if dtype == "float32" else 1e-10
        np.testing.assert_allclose(out, numpy_forward(before, conv), rtol=tol, atol=tol)
    else:
        with pytest.raises((ValueError, TypeError)):
            model.predict(x)
    assert unchanged(model, before)


@SETTINGS
@given(x=arrays(shapes_around(10)), y=arrays(st.one_of(
           st.tuples(st.integers(0, 40), st.just(1)), st.tuples(st.integers(0, 40)),
           st.tuples(st.integers(0, 5), st.integers(0, 3)))),
       batch_size=st.integers(-1, 50), epochs=st.integers(-1, 2),
       dtype=st.sampled_from(["float32", "float64"]))
def test_fit_trains_like_the_reference_or_refuses_and_changes_nothing(x, y, batch_size,
                                                                     epochs, dtype):
    model = classic(dtype)
    before = model.get_weights()
    x_ok, xc = acceptable(x, 10, dtype)
    y_ok = y.dtype.kind in "biuf" and (
        (y.ndim == 2 and y.shape[1] == 1) or y.ndim == 1)
    if y_ok:
        with np.errstate(over="ignore"):
            yc = np.ascontiguousarray(y, dtype=dtype).reshape(-1, 1)
        y_ok = bool(np.isfinite(yc).all())
    valid = (x_ok and y_ok and xc.shape[0] == yc.shape[0] and xc.shape[0] > 0
             and batch_size >= 1 and epochs >= 0)
    if not valid:
        with pytest.raises((ValueError, TypeError)):
            model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
        assert unchanged(model, before)
        assert model.optimizer.iterations == 0
        return
    slow = classic(dtype, ref)
    with np.errstate(all="ignore"):
        history = slow.fit(xc, yc, epochs=epochs, batch_size=batch_size, verbose=0)
    diverged = not (np.isfinite(history.history.get("loss", [])).all()
                    and all(np.isfinite(w).all() for w in slow.get_weights())
                    and all(np.abs(w).max(initial=0) < 1e4 for w in slow.get_weights()))
    if diverged:
        # Targets like 65535 blow the reference up; past that point the two runs are
        # chaotic. fastdense must then either stop cleanly or end finite.
        try:
            model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
        except fd.DivergenceError:
            pass
        assert all(np.isfinite(w).all() for w in model.get_weights())
        return
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
    tol = 1e-4 if dtype == "float32" else 1e-9
    for a, b in zip(model.get_weights(), slow.get_weights()):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@SETTINGS
@given(ws=st.lists(arrays(st.one_of(st.tuples(st.integers(0, 11), st.integers(0, 11)),
                                    st.tuples(st.integers(0, 11)))),
                   min_size=0, max_size=7))
def test_set_weights_takes_only_the_right_shapes_and_values(ws):
    model = classic("float32")
    before = model.get_weights()
    shapes = [w.shape for w in before]
    ok = len(ws) == len(shapes) and all(
        w.dtype.kind in "biuf" and w.shape == s for w, s in zip(ws, shapes))
    if ok:
        with np.errstate(over="ignore"):
            conv = [np.asarray(w, dtype=np.float32) for w in ws]
        ok = all(np.isfinite(c).all() for c in conv)
    if ok:
        model.set_weights(ws)
        for got, want in zip(model.get_weights(), conv):
            np.testing.assert_array_equal(got, want)
    else:
        with pytest.raises((ValueError, TypeError)):
            model.set_weights(ws)
        assert unchanged(model, before)


@SETTINGS
@given(a=arrays(st.tuples(st.integers(0, 9), st.integers(0, 40))),
       w=arrays(st.tuples(st.integers(0, 9), st.integers(0, 9))),
       b=arrays(st.tuples(st.integers(0, 9))),
       relu=st.booleans())
def test_dense_forward_wrapper_is_right_or_refuses(a, w, b, relu):
    """The kernel wrapper takes only C-contiguous float arrays of one dtype with matching
    shapes (it converts nothing); anything else is refused before any C runs."""
    fine = (a.dtype == w.dtype == b.dtype and a.dtype.kind == "f" and a.dtype.itemsize >= 4
            and all(v.flags.c_contiguous for v in (a, w, b))
            and a.shape[0] == w.shape[0] and w.shape[1] == b.shape[0])
    z = np.zeros((w.shape[1], a.shape[1]), dtype=a.dtype if fine else np.float64)
    if fine:
        dense.dense_forward_checked(a, w, b, z, relu)
        with np.errstate(all="ignore"):
            want = w.astype(np.float64).T @ a + b[:, None]
            if relu:
                want = np.where(want < 0, 0, want)
        np.testing.assert_allclose(z, want, rtol=1e-4, atol=1e-4, equal_nan=True)
    else:
        with pytest.raises((ValueError, TypeError)):
            dense.dense_forward_checked(a, w, b, z, relu)


@SETTINGS
@given(p=arrays(st.tuples(st.integers(0, 6), st.integers(0, 6))),
       q=arrays(st.tuples(st.integers(0, 6), st.integers(0, 6))))
def test_mse_wrapper_is_right_or_refuses(p, q):
    fine = (p.dtype == q.dtype and p.dtype.kind == "f" and p.dtype.itemsize >= 4
            and p.flags.c_contiguous and q.flags.c_contiguous and p.shape == q.shape
            and p.size > 0)
    if fine:
        with np.errstate(all="ignore"):
            want = np.mean((p.astype(np.float64) - q) ** 2)
        np.testing.assert_allclose(losses.mse_checked(p, q), want, rtol=1e-5,
                                   equal_nan=True)
    else:
        with pytest.raises((ValueError, TypeError)):
            losses.mse_checked(p, q)


@SETTINGS
@given(g=arrays(st.tuples(st.integers(0, 8), st.integers(0, 5))),
       p=arrays(st.tuples(st.integers(0, 8), st.integers(0, 5))),
       name=st.sampled_from(["SGD", "RMSprop", "Adam", "Adagrad"]))
def test_optimizer_apply_follows_the_reference_or_refuses_and_changes_nothing(g, p, name):
    opt = getattr(fd.optimizers, name)(learning_rate=0.01)
    slow = getattr(ref, name)(learning_rate=0.01)
    p_before = p.copy()
    g_before = g.copy()
    fine = (p.dtype == g.dtype and p.dtype.kind == "f" and p.dtype.itemsize >= 4
            and p.shape == g.shape and p.flags.writeable
            and np.isfinite(p).all() and np.isfinite(g).all())
    try:
        opt.apply(g, p)
    except (ValueError, TypeError):
        assert same(p, p_before)
        assert not fine, "a valid call was refused"
        return
    assert same(g, g_before)                                   # gradients untouched
    assert p.dtype.kind == "f" and p.shape == g.shape
    want = np.ascontiguousarray(p_before)
    slow.apply([np.ascontiguousarray(g)], [want])
    np.testing.assert_allclose(p, want, rtol=1e-5, atol=1e-6, equal_nan=True)
