"""Another project's Cython can cimport fastdense's kernel cores (fastdense/kernels.pxd):
a tiny extension is compiled against the fastdense these tests import, and its answers are
checked against NumPy."""
import importlib
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastdense

pytest.importorskip("Cython")
pytest.importorskip("setuptools")

PACKAGE_ROOT = Path(fastdense.__file__).resolve().parent.parent

EXTENSION = '''
# cython: language_level=3, boundscheck=False, wraparound=False
from fastdense.kernels cimport (dense_forward, dense_backward, mse_forward_backward,
                                StepConfig, step_config_init, optimizer_step, RULE_SGD)


def forward(const double[:, ::1] a, const double[:, ::1] w, const double[::1] b,
            double[:, ::1] z, bint relu):
    with nogil:
        dense_forward(&a[0, 0], &w[0, 0], &b[0], &z[0, 0],
                      a.shape[1], a.shape[0], w.shape[1], relu, 0.0, False)


def forward_f(const float[:, ::1] a, const float[:, ::1] w, const float[::1] b,
              float[:, ::1] z, bint relu):
    with nogil:
        dense_forward(&a[0, 0], &w[0, 0], &b[0], &z[0, 0],
                      a.shape[1], a.shape[0], w.shape[1], relu, 0.0, False)


def backward(const double[:, ::1] a, const double[:, ::1] w, const double[:, ::1] d,
             double[:, ::1] dw, double[::1] db, double[:, ::1] da):
    with nogil:
        dense_backward(&a[0, 0], &w[0, 0], &d[0, 0], &dw[0, 0], &db[0], &da[0, 0],
                       a.shape[1], a.shape[0], w.shape[1], 0, 0.0, False)


def mse(const double[:, ::1] yhat, const double[:, ::1] y, double[:, ::1] grad):
    cdef double loss
    with nogil:
        loss = mse_forward_backward(&yhat[0, 0], &y[0, 0], &grad[0, 0],
                                    yhat.shape[0], yhat.shape[1])
    return loss


def sgd_step(double[::1] p, const double[::1] g, double lr):
    cdef StepConfig cfg
    cdef double* state[3]
    cdef int status
    step_config_init(&cfg)
    cfg.rule = RULE_SGD
    cfg.lr = lr
    cfg.t = 1
    state[0] = state[1] = state[2] = NULL
    with nogil:
        status = optimizer_step(&cfg, &p[0], &g[0], state, p.shape[0], NULL, 0)
    return status
'''

SETUP = '''
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    name="fd_outside",
    ext_modules=cythonize([Extension("fd_outside", ["fd_outside.pyx"])],
                          include_path=[{root!r}], quiet=True),
    script_args=["build_ext", "--inplace"],
)
'''


def have_compiler():
    if os.name == "nt":
        return True          # MSVC is found by setuptools itself; a failure says so
    cc = sysconfig.get_config_var("CC")
    return bool(cc) and shutil.which(cc.split()[0]) is not None


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    if not have_compiler():
        pytest.skip("no C compiler")
    work = tmp_path_factory.mktemp("outside")
    (work / "fd_outside.pyx").write_text(textwrap.dedent(EXTENSION))
    (work / "setup.py").write_text(SETUP.format(root=str(PACKAGE_ROOT)))
    env = dict(os.environ)
    # the extension imports fastdense._core.* at run time: the same fastdense as ours
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "setup.py"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module("fd_outside")
    finally:
        sys.path.remove(str(work))


def test_the_package_ships_the_kernel_pxd_files():
    assert (PACKAGE_ROOT / "fastdense" / "kernels.pxd").is_file()
    for name in ("dense", "losses", "updates", "blas"):
        assert (PACKAGE_ROOT / "fastdense" / "_core" / f"{name}.pxd").is_file()


@pytest.mark.parametrize("relu", [False, True])
def test_dense_forward_cimported_from_outside_matches_numpy(outside, rng, relu):
    a = rng.standard_normal((3, 7))              # 3 features × 7 samples (feature-major)
    w = rng.standard_normal((3, 4))
    b = rng.standard_normal(4)
    z = np.empty((4, 7))
    outside.forward(a, w, b, z, relu)
    expected = w.T @ a + b[:, None]
    np.testing.assert_allclose(z, np.maximum(expected, 0) if relu else expected,
                               rtol=1e-12, atol=1e-12)


def test_the_float32_specialisation_is_reached_too(outside, rng):
    a = rng.standard_normal((5, 33)).astype(np.float32)
    w = rng.standard_normal((5, 2)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    z = np.empty((2, 33), np.float32)
    outside.forward_f(a, w, b, z, False)
    np.testing.assert_allclose(z, w.T @ a + b[:, None], rtol=1e-5, atol=1e-5)


def test_dense_backward_cimported_from_outside_matches_numpy(outside, rng):
    a = rng.standard_normal((3, 9))
    w = rng.standard_normal((3, 2))
    d = rng.standard_normal((2, 9))
    dw, db, da = np.empty((3, 2)), np.empty(2), np.empty((3, 9))
    outside.backward(a, w, d, dw, db, da)
    np.testing.assert_allclose(dw, a @ d.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, d.sum(axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(da, w @ d, rtol=1e-12, atol=1e-12)


def test_mse_and_optimizer_step_cimported_from_outside_match_numpy(outside, rng):
    yhat, y = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    grad = np.empty((6, 2))
    loss = outside.mse(yhat, y, grad)
    assert loss == pytest.approx(np.mean((yhat - y) ** 2), rel=1e-12)
    np.testing.assert_allclose(grad, 2 * (yhat - y) / yhat.size, rtol=1e-12)

    p, g = rng.standard_normal(10), rng.standard_normal(10)
    expected = p - 0.1 * g
    assert outside.sgd_step(p, g, 0.1) == 0
    np.testing.assert_allclose(p, expected, rtol=1e-15)
