"""pytest-benchmark of each kernel's checked wrapper on the shapes of the ``seed``
(10-10-10-1, batch 32) and ``wide`` (784-512-512-10, batch 128) workloads, float32.

Run: ``pytest bench/ --benchmark-only``. Absolute times; for the side-by-side ratios of
BENCHMARKS.md run ``python -m fastdense bench``. Activations are feature-major (features ×
batch), as the kernels take them.
"""
import numpy as np
import pytest

from fastdense._core import dense, losses, updates

SHAPES = {"seed": ((10, 10, 10, 1), 32), "wide": ((784, 512, 512, 10), 128)}
LAYERS = [(net, i) for net, (sizes, _) in SHAPES.items() for i in range(len(sizes) - 1)]


def _layer(net, i, seed=0):
    sizes, n = SHAPES[net]
    n_in, n_out = sizes[i], sizes[i + 1]
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return dict(
        a=rng.random((n_in, n), dtype=f32),
        w=(rng.random((n_in, n_out), dtype=f32) - f32(0.5)) * f32(0.1),
        b=np.zeros(n_out, f32),
        z=np.empty((n_out, n), f32),
        d=rng.standard_normal((n_out, n), dtype=f32),
        dw=np.empty((n_in, n_out), f32),
        db=np.empty(n_out, f32),
        da=np.empty((n_in, n), f32),
        relu=i < len(sizes) - 2,       # ReLU on hidden layers, linear output
        first=i == 0,                  # the first layer needs no dA
    )


def _ids(case):
    net, i = case
    sizes = SHAPES[net][0]
    return f"{net}-layer{i}-{sizes[i]}x{sizes[i + 1]}-batch{SHAPES[net][1]}"


@pytest.mark.parametrize("case", LAYERS, ids=_ids)
def test_dense_forward_checked(benchmark, case):
    x = _layer(*case)
    benchmark.group = f"dense_forward {case[0]}"
    benchmark(dense.dense_forward_checked, x["a"], x["w"], x["b"], x["z"], x["relu"])


@pytest.mark.parametrize("case", LAYERS, ids=_ids)
def test_dense_backward_checked(benchmark, case):
    x = _layer(*case)
    da = None if x["first"] else x["da"]
    benchmark.group = f"dense_backward {case[0]}"
    benchmark(dense.dense_backward_checked, x["a"], x["w"], x["d"], x["dw"], x["db"], da,
              not x["first"])


@pytest.mark.parametrize("net", SHAPES)
def test_mse_checked_with_gradient(benchmark, net):
    sizes, n = SHAPES[net]
    rng = np.random.default_rng(1)
    yhat = rng.random((sizes[-1], n), dtype=np.float32)
    y = rng.random((sizes[-1], n), dtype=np.float32)
    grad = np.empty_like(yhat)
    benchmark.group = "mse"
    loss = benchmark(losses.mse_checked, yhat, y, grad)
    assert np.isfinite(loss)


@pytest.mark.parametrize("net", SHAPES)
def test_sgd_update_checked_over_all_parameters(benchmark, net):
    sizes, _ = SHAPES[net]
    n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    rng = np.random.default_rng(2)
    p = rng.standard_normal(n_params, dtype=np.float32)
    g = rng.standard_normal(n_params, dtype=np.float32)
    benchmark.group = "sgd_update"
    benchmark.extra_info["n_params"] = n_params
    benchmark(updates.sgd_update_checked, p, g, 1e-6)
