"""fastdense.distributed: data-parallel fit over MPI.

The multi-rank tests launch tests/mpi_worker.py under ``mpiexec -n 2`` and ``-n 3`` (an
uneven shard) and compare what the ranks wrote with one process trained here on the same
global batches. They skip when mpi4py or mpiexec is missing (``pip install
"fastdense[mpi]"``).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastdense as fd

MPI = pytest.importorskip("mpi4py.MPI")
from fastdense import distributed  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import mpi_worker as W  # noqa: E402

WORKER = Path(__file__).parent / "mpi_worker.py"
MPIEXEC = shutil.which("mpiexec", path=os.pathsep.join(
    [str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
needs_mpiexec = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec on PATH")
TIMEOUT = 120   # seconds: a hang fails the test instead of the run


def launch(case, ranks, tmp_path, expect_ok=True):
    out = tmp_path / case
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, str(WORKER), case,
                             str(out)], capture_output=True, text=True, timeout=TIMEOUT,
                            env=env, stdin=subprocess.DEVNULL)
    if expect_ok:
        assert result.returncode == 0, result.stderr[-3000:]
    return result, [dict(np.load(f"{out}.rank{r}.npz")) for r in range(ranks)
                    if Path(f"{out}.rank{r}.npz").exists()]


def shards(arrays, ranks):
    return [tuple(np.array_split(a, ranks)[r] for a in arrays) for r in range(ranks)]


def global_batches(parts, orders, batch):
    """One process's rows for N ranks' steps: rank 0's batch, rank 1's, … at each step."""
    steps = max(-(-len(o) // batch) for o in orders)
    rows = [[p[o[k * batch:(k + 1) * batch]] for p, o in zip(parts, orders)]
            for k in range(steps)]
    return np.concatenate([np.concatenate(step) for step in rows])


def tolerance(dtype):
    return dict(rtol=1e-9, atol=1e-12) if dtype == "float64" else dict(rtol=2e-4, atol=2e-6)


# ---------------------------------------------------------------- one process, no mpiexec
def test_one_rank_fit_is_bitwise_the_plain_fit():
    """size 1: the same kernels in the same order, so the same bits."""
    for dtype in ("float32", "float64"):
        for name in W.OPTIMIZERS:
            X, y = W.data(dtype)
            a, b = W.model(name, dtype), W.model(name, dtype)
            ha = a.fit(X, y, epochs=3, batch_size=5, shuffle=False, verbose=0)
            hb = b.fit(X, y, epochs=3, batch_size=5, shuffle=False, verbose=0,
                       distributed=distributed.MPI(MPI.COMM_SELF))
            for wa, wb in zip(a.get_weights(), b.get_weights()):
                np.testing.assert_array_equal(wa, wb)
            # float32 models sum their loss in the float32 buffer the ranks reduce
            np.testing.assert_allclose(ha.history["loss"], hb.history["loss"],
                                       rtol=1e-6 if dtype == "float32" else 1e-15)
            assert a.optimizer.iterations == b.optimizer.iterations


def test_shard_range_is_array_split():
    d = distributed.MPI(MPI.COMM_SELF)
    for size in (1, 2, 3, 7):
        for n in (0, 1, 5, 6, 100, 101):
            expected = np.array_split(np.arange(n), size)
            for rank in range(size):
                d.rank, d.size = rank, size
                start, stop = d.shard_range(n)
                np.testing.assert_array_equal(np.arange(n)[start:stop], expected[rank])
    d.rank, d.size = 1, 3
    X, y = np.arange(20).reshape(10, 2), np.arange(10)
    xs, ys = d.shard(X, y)
    np.testing.assert_array_equal(ys, [4, 5, 6])
    np.testing.assert_array_equal(xs, X[4:7])
    with pytest.raises(ValueError, match="differ in length"):
        d.shard(X, y[:5])
    with pytest.raises(ValueError, match="scalar"):
        d.shard(3.0)


def test_bad_arguments_are_refused():
    X, y = W.data("float32")
    m = W.model("sgd", "float32")
    before = m.get_weights()
    with pytest.raises(TypeError, match="fastdense.distributed.MPI"):
        m.fit(X, y, distributed="mpi")
    with pytest.raises(TypeError, match="communicator"):
        distributed.MPI(comm=42)
    with pytest.raises(ValueError, match="features"):     # a single rank's own error
        m.fit(X[:, :3], y, verbose=0, distributed=distributed.MPI(MPI.COMM_SELF))
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_step_gradients_checks_its_arguments():
    X, y = W.data("float64")
    m = W.model("sgd", "float64")
    net = m._net
    order = np.arange(len(X), dtype=np.intp)
    out = np.empty(net.n_params + 1 + net.n_metrics, dtype=np.float64)
    with pytest.raises(ValueError, match="outside"):
        net.step_gradients(X, y, order, 100, 5, out, 1.0)
    with pytest.raises(ValueError, match="out must be"):
        net.step_gradients(X, y, order, 0, 5, out[:-1], 1.0)
    with pytest.raises(ValueError, match="order"):
        net.step_gradients(X, y, order[:-1], 0, 5, out, 1.0)
    bad = order.copy()
    bad[2] = len(X)
    with pytest.raises(ValueError, match="indices outside"):
        net.step_gradients(X, y, bad, 0, 5, out, 1.0)
    # and what it computes: compute_gradients of those rows, scaled
    net.step_gradients(X, y, order[::-1].copy(), 3, 6, out, 0.25)
    rows = order[::-1][3:9]
    loss, grads = m.compute_gradients(X[rows], y[rows])
    np.testing.assert_allclose(out[:net.n_params], 0.25 * np.concatenate(
        [g.ravel() for g in grads]), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(out[net.n_params], 0.25 * loss, rtol=1e-13)
    np.testing.assert_allclose(out[net.n_params + 1], np.abs(m.predict(X[rows]) - y[rows]).mean(
        axis=1).sum(), rtol=1e-12)      # the mae metric's sum over the rows
    net.step_gradients(X, y, order, 0, 0, out, 1.0)
    assert not out.any()


# ---------------------------------------------------------------- under mpiexec
@needs_mpiexec
@pytest.mark.parametrize("ranks", [2, 3])
def test_n_ranks_equal_one_process_with_the_global_batch(ranks, tmp_path):
    """N ranks with batch b = one process with batch N·b over the same rows, for SGD,
    Nesterov momentum and Adam, float32 and float64, ≥ 50 updates; every rank ends with
    the same bits."""
    _, results = launch("equal", ranks, tmp_path)
    assert len(results) == ranks
    for r in range(1, ranks):
        for key in results[0]:
            np.testing.assert_array_equal(results[0][key], results[r][key], err_msg=key)
    got = results[0]
    for dtype in ("float32", "float64"):
        X, y = W.data(dtype)
        parts = shards((X, y), ranks)
        orders = [np.arange(len(p[0])) for p in parts]
        Xg = global_batches([p[0] for p in parts], orders, W.BATCH)
        yg = global_batches([p[1] for p in parts], orders, W.BATCH)
        for name in W.OPTIMIZERS:
            one = W.model(name, dtype, seed=100)     # rank 0's initial weights
            h = one.fit(Xg, yg, epochs=W.EPOCHS, batch_size=ranks * W.BATCH,
                        shuffle=False, verbose=0)
            assert int(got[f"{dtype}_{name}_iterations"]) == one.optimizer.iterations >= 50
            for i, w in enumerate(one.get_weights()):
                np.testing.assert_allclose(got[f"{dtype}_{name}_w{i}"], w,
                                           **tolerance(dtype), err_msg=f"{dtype} {name} w{i}")
            np.testing.assert_allclose(got[f"{dtype}_{name}_loss"], h.history["loss"],
                                       rtol=1e-9 if dtype == "float64" else 1e-5)
            np.testing.assert_allclose(got[f"{dtype}_{name}_mae"], h.history["mae"],
                                       rtol=1e-9 if dtype == "float64" else 1e-5)
    # shuffled: each rank's permutation from the documented generator
    X, y = W.data("float64")
    one = W.model("adam", "float64", seed=100)
    seed = int(one._rng.integers(2**63))
    gens = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(r,)))
            for r in range(ranks)]
    parts = shards((X, y), ranks)
    for _ in range(3):
        orders = [g.permutation(len(p[0])) for g, p in zip(gens, parts)]
        one.fit(global_batches([p[0] for p in parts], orders, W.BATCH),
                global_batches([p[1] for p in parts], orders, W.BATCH), epochs=1,
                batch_size=ranks * W.BATCH, shuffle=False, verbose=0)
    for i, w in enumerate(one.get_weights()):
        np.testing.assert_allclose(got[f"shuffled_w{i}"], w, **tolerance("float64"))


@needs_mpiexec
@pytest.mark.parametrize("ranks", [2, 3])
def test_validation_metrics_and_early_stopping_agree(ranks, tmp_path):
    _, results = launch("classify", ranks, tmp_path)
    for r in range(1, ranks):
        for key in results[0]:
            np.testing.assert_array_equal(results[0][key], results[r][key], err_msg=key)
    got = results[0]
    assert 1 <= int(got["epochs"]) < 20       # EarlyStopping (min_delta 10) stopped every rank
    # the last epoch's validation figures are those of every rank's validation rows together
    X, y = W.data("float32", classes=3)
    val = [(xs[int(len(xs) * 0.75):], ys[int(len(ys) * 0.75):])
           for xs, ys in shards((X, y), ranks)]
    m = W.model("adam", "float32", classes=3)
    m.set_weights([got[f"w{i}"] for i in range(6)])
    loss, acc = m.evaluate(np.concatenate([v[0] for v in val]),
                           np.concatenate([v[1] for v in val]))
    np.testing.assert_allclose(got["val_loss"][-1], loss, rtol=1e-5)
    np.testing.assert_allclose(got["val_accuracy"][-1], acc, rtol=1e-12)
    assert got["accuracy"].dtype == np.float64 and 0 <= got["accuracy"].min()


@needs_mpiexec
def test_one_ranks_stop_stops_every_rank(tmp_path):
    _, results = launch("stop_one_rank", 3, tmp_path)
    assert [int(r["epochs"]) for r in results] == [2, 2, 2]
    for key in results[0]:
        if key.startswith("w"):
            np.testing.assert_array_equal(results[0][key], results[2][key])


@needs_mpiexec
def test_divergence_stops_every_rank_at_the_same_update(tmp_path):
    _, results = launch("diverge", 2, tmp_path)
    assert int(results[0]["iterations"]) == int(results[1]["iterations"])
    assert all(bool(r["finite"]) for r in results)
    assert "diverged" in str(results[1]["message"])


@needs_mpiexec
def test_bad_input_on_one_rank_raises_on_every_rank(tmp_path):
    _, results = launch("bad_input", 3, tmp_path)
    assert [str(r["kind"]) for r in results] == ["RuntimeError", "RuntimeError", "ValueError"]
    assert "label" in str(results[2]["message"])
    assert "rank 2" in str(results[0]["message"])
    assert all(bool(r["unchanged"]) for r in results)


@needs_mpiexec
def test_the_all_reduce_releases_the_gil(tmp_path):
    _, results = launch("gil", 2, tmp_path)
    assert float(results[0]["elapsed"]) >= 0.45          # rank 0 did wait for rank 1
    # a thread that could not take the GIL would leave no time stamp while rank 0 waited;
    # a free one leaves thousands
    assert int(results[0]["inside"]) > 100


@needs_mpiexec
def test_save_writes_once_and_every_rank_loads(tmp_path):
    _, results = launch("save", 2, tmp_path)
    assert all(bool(r["same"]) for r in results)
    np.testing.assert_array_equal(results[0]["predict"], results[1]["predict"])
    assert sorted(p.name for p in tmp_path.iterdir() if "model" in p.name) == ["save.model.npz"]


@needs_mpiexec
@pytest.mark.parametrize("case, words", [
    ("kill", []),
    ("raise", ["rank 2", "callback failed on purpose"]),
    ("uncaught", ["rank 2", "uncaught on purpose"]),
])
def test_a_failing_rank_ends_the_job_instead_of_hanging(case, words, tmp_path):
    """SIGKILL, an exception inside fit, an uncaught exception: the job ends, non-zero,
    well within the timeout (the other ranks would otherwise wait forever)."""
    result, _ = launch(case, 3, tmp_path, expect_ok=False)
    assert result.returncode != 0
    for word in words:
        assert word in result.stderr


@needs_mpiexec
def test_command_line_train_under_mpiexec(tmp_path):
    """``mpiexec -n 2 fastdense train``: one report (rank 0's), one saved model, trained
    data-parallel, whose reported training MSE is the saved model's."""
    from fastdense.datasets import load_diabetes
    X, y = load_diabetes()
    names = [f"x{i}" for i in range(X.shape[1])]
    data = tmp_path / "d.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", header=",".join(names + ["y"]),
               comments="")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "fastdense", "train",
                           str(data), "--target", "y", "--task", "regress", "--epochs", "3",
                           "--validation-split", "0",
                           "--out", str(tmp_path / "m.npz")], capture_output=True, text=True,
                          timeout=TIMEOUT, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("fastdense train:") == 1
    assert "data-parallel on 2 MPI ranks: batch 32 per rank, 64 per update" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "m.npz", "m.scaling.json"]
    import json
    stats = json.loads((tmp_path / "m.scaling.json").read_text())
    model = fd.load_model(tmp_path / "m.npz")
    assert model.optimizer.iterations == 3 * 7   # shards of 221 rows, batches of 32
    # no validation rows: the training report is over every row
    Xs = (X - np.array(stats["x_mean"])) / np.array(stats["x_std"])
    ys = (y.reshape(-1, 1) - np.array(stats["y_mean"])) / np.array(stats["y_std"])
    mse = model.evaluate(Xs.astype(np.float32), ys.astype(np.float32))
    line = next(ln for ln in done.stdout.splitlines() if ln.strip().startswith("training"))
    assert f"{mse:.4f}" in line


def test_scaling_model_formula():
    from fastdense.bench.distributed import predicted_efficiency
    # 1 ms of compute, 1e6 float32 parameters, 4 machines on 10 Gbit/s (1.25e9 B/s):
    # 2·3/4 · 4e6 B = 6e6 B → 4.8 ms
    assert predicted_efficiency(1e-3, 10**6, 4, 10) == pytest.approx(1 / 5.8, rel=1e-12)
    assert predicted_efficiency(1e-3, 10**6, 1, 10) == 1.0
    assert predicted_efficiency(2e-3, 10**6, 2, 100) == pytest.approx(2 / (2 + 0.32), rel=1e-12)


@needs_mpiexec
def test_bench_distributed_quick(tmp_path):
    import json
    from fastdense.bench.distributed import MACHINES, predicted_efficiency
    env = dict(os.environ)
    done = subprocess.run([sys.executable, "-m", "fastdense", "bench", "--distributed",
                           "--quick", "--json", str(tmp_path / "d.json")], capture_output=True,
                          text=True, timeout=TIMEOUT * 3, env=env, cwd=tmp_path,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "d.json").read_text())
    assert result["params"] == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10
    t1 = result["medians"]["1"]["update_s"]
    for m in MACHINES:
        assert result["predicted_efficiency"]["10 Gbit/s"][str(m)] == pytest.approx(
            predicted_efficiency(t1, result["params"], m, 10))
    r2 = result["runs"]["2"][0]
    assert r2["samples_per_s"] == pytest.approx(2 * 128 * r2["updates"] / (
        r2["update_s"] * r2["updates"]), rel=1e-9)
    assert "samples/s" in done.stdout and "all-reduce" in done.stdout
    probe = r2["overlap_probe"]
    assert set(probe) == {"compute_s", "allreduce_s", "sequential_s", "overlapped_s"}
    assert all(v > 0 for v in probe.values()) and result["runs"]["1"][0]["overlap_probe"] is None
    assert "overlap probe on 2 ranks" in done.stdout
