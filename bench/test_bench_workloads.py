"""pytest-benchmark of the BENCHMARKS.md workloads, fastdense and the NumPy reference
(``python -m fastdense bench`` is the measurement under the contract: side by side, A B A B,
median of pairwise ratios; this file gives pytest-benchmark's statistics of each alone).

Each round of a training workload is one whole ``fit`` of a fresh model (built untimed in
the round's set-up). Scaled down where a full run would make a round too long, and named
for it: ``wide`` runs 1 epoch on 2,048 of its 8,192 rows (16 of its 128 updates), ``adam``
times one of its updates per round; ``seed``, ``predict1`` and ``predict1k`` are full
(one ``predict`` call per iteration for the predict workloads; onnxruntime, when
importable, runs beside them there on fastdense's model exported to ONNX).
"""
import numpy as np
import pytest

import fastdense as fd
from fastdense.bench import workloads as bm
from fastdense import reference

SYSTEMS = ["fastdense", "reference"]


def _fit_rounds(benchmark, system, sizes, X, y, epochs, batch_size, rounds):
    def setup():
        return (bm._model(system, sizes),), {}

    def fit(model):
        return model.fit(X, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)

    history = benchmark.pedantic(fit, setup=setup, rounds=rounds, iterations=1,
                                 warmup_rounds=1)
    assert np.isfinite(history.history["loss"][-1])


@pytest.mark.parametrize("system", SYSTEMS)
def test_seed_fit_3200_updates(benchmark, system):
    X, y = bm.seed_data()
    benchmark.group = "seed: whole fit, 3,200 updates"
    _fit_rounds(benchmark, system, bm.SEED_SIZES, X, y, 100, 32, rounds=7)


@pytest.mark.parametrize("system", SYSTEMS)
def test_wide_fit_scaled_down_to_16_updates(benchmark, system):
    X, y = bm.wide_data(2048)
    benchmark.group = "wide (scaled down): 1 epoch of 2,048 rows, 16 updates"
    _fit_rounds(benchmark, system, bm.WIDE_SIZES, X, y, 1, 128, rounds=5)


@pytest.mark.parametrize("system", SYSTEMS)
def test_adam_one_update_of_10m_float32(benchmark, system):
    module = fd.optimizers if system == "fastdense" else reference
    if not hasattr(module, "Adam"):
        pytest.skip(f"{module.__name__}.Adam does not exist yet")
    rng = np.random.default_rng(2)
    p = rng.standard_normal(10_000_000, dtype=np.float32)
    g = rng.standard_normal(10_000_000, dtype=np.float32)
    opt = module.Adam(learning_rate=0.001)
    benchmark.group = "adam: one update over 10,000,000 float32"
    benchmark.pedantic(opt.apply, args=([g], [p]), rounds=15, iterations=1, warmup_rounds=1)
    assert np.isfinite(p[:100]).all()


def _predict(system):
    """The timed call of a predict workload: ``predict`` of fastdense or of the reference
    (fastdense's weights), or onnxruntime's session running fastdense's model exported."""
    if system == "onnxruntime":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
        session, _ = bm.onnxruntime_session(bm._model("fastdense", bm.SEED_SIZES))
        return lambda x: session.run(["output"], {"input": x})[0]
    model = bm._model(system, bm.SEED_SIZES)
    if system == "reference":
        model.set_weights(bm._model("fastdense", bm.SEED_SIZES).get_weights())
    return model.predict


@pytest.mark.parametrize("system", SYSTEMS + ["onnxruntime"])
def test_predict1_one_call_on_1x10(benchmark, system):
    x = bm.seed_data()[0][:1].copy()
    benchmark.group = "predict1: one call on 1×10"
    out = benchmark(_predict(system), x)
    assert out.shape == (1, 1)
    expected = bm._model("fastdense", bm.SEED_SIZES).predict(x)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("system", SYSTEMS + ["onnxruntime"])
def test_predict1k_one_call_on_1000x10(benchmark, system):
    X = bm.seed_data()[0]
    benchmark.group = "predict1k: one call on 1000×10"
    out = benchmark(_predict(system), X)
    assert out.shape == (1000, 1)
    expected = bm._model("fastdense", bm.SEED_SIZES).predict(X)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
