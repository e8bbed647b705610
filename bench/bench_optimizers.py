"""pytest-benchmark: one optimizer update over 10,000,000 float32 parameters, fastdense's
fused kernel and the NumPy reference (the `adam` workload of BENCHMARKS.md, plus SGD with
momentum and RMSprop). Run: ``pytest bench/ --benchmark-only``. For the side-by-side
ratio the benchmark contract asks for (A B A B, median of pairwise ratios), run
``python bench/optimizers.py``."""
import numpy as np
import pytest

import fastdense as fd
from fastdense import reference as ref

N = 10_000_000
WORKLOADS = {"adam": ("Adam", {}), "sgd_momentum": ("SGD", {"momentum": 0.9}),
             "rmsprop": ("RMSprop", {})}


@pytest.fixture(scope="module")
def buffers():
    rng = np.random.default_rng(0)
    return (rng.standard_normal(N, dtype=np.float32),
            rng.standard_normal(N, dtype=np.float32))


@pytest.mark.parametrize("system", ["numpy", "fastdense"])
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_update_10m_float32(benchmark, buffers, workload, system):
    name, kwargs = WORKLOADS[workload]
    opt = getattr(ref if system == "numpy" else fd.optimizers, name)(**kwargs)
    p, g = buffers[0].copy(), buffers[1]
    benchmark.group = workload
    benchmark.pedantic(opt.apply, args=(g, p), rounds=15, iterations=1, warmup_rounds=1)
    assert np.isfinite(p[:100]).all()
