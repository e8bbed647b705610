"""The benchmark harness (fastdense.bench): structure and bookkeeping only.

Nothing here asserts a speed: timings on shared machines are noise; the harness's job is to
measure under the contract of BENCHMARKS.md and record honestly what it measured.
"""
import importlib
import json
import statistics
import subprocess
import sys

import pytest

import fastdense as fd
from fastdense import bench as bm
from fastdense import reference

WORKLOADS = ["seed", "wide", "adam", "predict1", "predict1k", "digits"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    json_path, png_path = tmp / "results.json", tmp / "results.png"
    rc = bm.main(["--quick", "--json", str(json_path), "--plot", str(png_path)])
    return rc, json.loads(json_path.read_text()), png_path


def _adam_exists():
    return hasattr(fd.optimizers, "Adam") and hasattr(reference, "Adam")


def test_quick_run_succeeds_and_says_it_is_quick(quick_run):
    rc, report, _ = quick_run
    assert rc == 0
    assert report["quick"] is True
    assert report["pairs"] == 2


def test_every_workload_is_reported(quick_run):
    _, report, _ = quick_run
    assert list(report["workloads"]) == WORKLOADS
    for wid, result in report["workloads"].items():
        assert result["target"] == bm.WORKLOADS[wid].target
        assert result["unit"] in ("µs", "ms")


def test_every_workload_is_measured_for_fastdense_and_the_reference(quick_run):
    _, report, _ = quick_run
    for wid, result in report["workloads"].items():
        if wid == "adam" and "skipped" in result:
            assert not _adam_exists(), "Adam exists in both, yet the adam workload was skipped"
            continue
        assert {"fastdense", "reference"} <= set(result["systems"]), wid
        assert result["order"][:2] == ["fastdense", "reference"]


def test_times_are_positive_and_one_per_pair(quick_run):
    _, report, _ = quick_run
    for result in report["workloads"].values():
        for entry in result.get("systems", {}).values():
            assert len(entry["raw_seconds"]) == report["pairs"]
            assert all(t > 0 for t in entry["raw_seconds"])
            assert entry["count"] > 0
            assert entry["median"] == pytest.approx(statistics.median(entry["per_unit"]))


def test_ratio_is_the_median_of_pairwise_ratios_of_the_raw_times(quick_run):
    _, report, _ = quick_run
    for result in report["workloads"].values():
        if "systems" not in result:
            continue
        ref = result["systems"]["reference"]["raw_seconds"]
        fast = result["systems"]["fastdense"]["raw_seconds"]
        expected = statistics.median(r / f for r, f in zip(ref, fast))
        assert result["ratio"] == pytest.approx(expected, rel=1e-12)
        assert result["target_met"] == (result["ratio"] >= result["target"])


def test_the_machine_and_the_blas_set_up_are_recorded(quick_run):
    _, report, _ = quick_run
    machine = report["machine"]
    assert machine["logical_cpus"] >= 1
    assert "cpu_model" in machine
    assert report["versions"]["numpy"]
    assert report["versions"]["fastdense"] == fd.__version__
    assert isinstance(report["openblas_env"], dict)
    assert all(k.startswith("OPENBLAS_") for k in report["openblas_env"])
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        assert report["threadpools"] is None
    else:
        assert isinstance(report["threadpools"], list)


def test_the_chart_is_drawn(quick_run):
    pytest.importorskip("matplotlib")
    _, _, png_path = quick_run
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_only_selects_workloads(tmp_path):
    path = tmp_path / "r.json"
    bm.main(["--quick", "--only", "seed,predict1", "--peers", "none", "--json", str(path),
             "--plot", ""])
    assert list(json.loads(path.read_text())["workloads"]) == ["seed", "predict1"]


def test_an_unknown_workload_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="nosuch"):
        bm.main(["--quick", "--only", "nosuch", "--json", str(tmp_path / "r.json")])


def test_the_sweep_grid_has_every_width_at_batch_32_and_every_batch_at_width_128():
    points = bm.sweep_points()
    assert sorted(w for _, w, b in points if b == 32) == list(bm.SWEEP_WIDTHS)
    assert sorted(b for _, w, b in points if w == 128) == list(bm.SWEEP_BATCHES)
    assert len(set((w, b) for _, w, b in points)) == len(points)


def test_wide_records_its_gemm_floor_beside_fastdenses_time(tmp_path):
    path = tmp_path / "r.json"
    bm.main(["--quick", "--only", "wide", "--peers", "none", "--json", str(path),
             "--plot", ""])
    wide = json.loads(path.read_text())["workloads"]["wide"]
    # one floor per round (quick: 2 rounds), paired with that round's fastdense time
    floors = wide["gemm_floor_samples"]
    times = wide["systems"]["fastdense"]["per_unit"]
    assert len(floors) == len(times) == 2 and all(f > 0 for f in floors)
    assert wide["gemm_floor"] == pytest.approx(statistics.median(floors))
    assert wide["over_floor_pairs"] == pytest.approx([t / f for t, f in zip(times, floors)])
    assert wide["over_floor"] == pytest.approx(
        statistics.median([t / f for t, f in zip(times, floors)]))


def test_the_cross_grid_adds_every_width_at_every_batch_once():
    points = bm.sweep_points((8, 128), (1, 32), cross_widths=(64, 128), cross_batches=(8, 32))
    assert points == [("width", 8, 32), ("width", 128, 32), ("batch", 128, 1),
                      ("cross", 64, 8), ("cross", 64, 32), ("cross", 128, 8)]


@pytest.mark.parametrize("peer", ["torch", "jax"])
def test_quick_sweep_times_a_peer_in_the_same_rounds(tmp_path, peer):
    pytest.importorskip(peer)
    path = tmp_path / "r.json"
    # in a child process: JAX's and PyTorch's threads stay out of this one (a later test
    # forks, which a process running JAX's threads must not)
    subprocess.run([sys.executable, "-m", "fastdense", "bench", "--quick", "--only", "sweep",
                    "--sweep-widths", "8", "--sweep-batches", "1", "--sweep-cross",
                    "--sweep-cross-widths", "16", "--sweep-cross-batches", "4", "--peers",
                    peer, "--json", str(path), "--plot", "", "--sweep-plot", ""],
                   check=True, capture_output=True, timeout=600)
    sweep = json.loads(path.read_text())["sweep"]
    assert sweep["peers"] == [peer]
    assert [(p["axis"], p["width"], p["batch"]) for p in sweep["points"]] == [
        ("width", 8, 32), ("batch", 128, 1), ("cross", 16, 4)]
    for p in sweep["points"]:
        theirs, ours = p["raw_seconds"][peer], p["raw_seconds"]["fastdense"]
        assert len(theirs) == len(ours) == 2
        assert p[f"{peer}_over_fastdense"] == pytest.approx(
            statistics.median(t / f for t, f in zip(theirs, ours)))
        assert p[f"{peer}_us"] == pytest.approx(statistics.median(theirs) / p["updates"] * 1e6)


def test_quick_sweep_records_each_point_with_its_pairs(tmp_path):
    # small widths only: the full grid's 2048-wide GEMMs are slow under the OPENBLAS_*
    # overrides some test machines set
    path = tmp_path / "r.json"
    bm.main(["--quick", "--only", "sweep", "--sweep-widths", "8,128", "--sweep-batches",
             "1,32", "--json", str(path), "--plot", "",
             "--sweep-plot", str(tmp_path / "sweep.png")])
    points = json.loads(path.read_text())["sweep"]["points"]
    assert [(p["width"], p["batch"]) for p in points] == [(8, 32), (128, 32), (128, 1)]
    for p in points:
        ref, fast = p["raw_seconds"]["reference"], p["raw_seconds"]["fastdense"]
        assert p["ratio"] == pytest.approx(statistics.median(r / f for r, f in zip(ref, fast)))
        # a floor after every round, each paired with that round's fastdense time
        floors = p["floor_samples_us"]
        over = [f_s / p["updates"] * 1e6 / fl for f_s, fl in zip(fast, floors)]
        assert len(floors) == len(fast) == 2 and all(fl > 0 for fl in floors)
        assert p["over_floor_pairs"] == pytest.approx(over)
        assert p["over_floor"] == pytest.approx(statistics.median(over))


def _recording_cases(calls, *names):
    """Cases that append their name to calls each time they run."""
    def case(name):
        def prepare():
            return lambda: calls.append(name)
        return bm.Case(1, prepare)
    return {name: case(name) for name in names}


def test_systems_run_in_turn_after_one_untimed_run_each():
    calls = []
    raw, _ = bm.time_in_turn(_recording_cases(calls, "a", "b"), pairs=3)
    assert calls == ["a", "b"] * 4          # the warm round, then 3 timed rounds
    assert [len(v) for v in raw.values()] == [3, 3]


def test_after_round_runs_once_after_each_timed_round():
    calls = []
    bm.time_in_turn(_recording_cases(calls, "a", "b"), pairs=2,
                    after_round=lambda: calls.append("floor"))
    assert calls == ["a", "b", "a", "b", "floor", "a", "b", "floor"]


def test_a_failing_peer_is_dropped_and_its_error_kept():
    def ok():
        return lambda: None

    def broken():
        def run():
            raise RuntimeError("no")
        return run

    errors = {}
    raw, _ = bm.time_in_turn({"fastdense": bm.Case(1, ok), "reference": bm.Case(1, ok),
                              "torch": bm.Case(1, broken)}, pairs=2, errors=errors)
    assert set(raw) == {"fastdense", "reference"}
    assert "RuntimeError" in errors["torch"]


def test_pytorch_runs_beside_when_importable(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "r.json"
    bm.main(["--quick", "--only", "predict1", "--peers", "torch", "--json", str(path),
             "--plot", ""])
    result = json.loads(path.read_text())["workloads"]["predict1"]
    assert result["order"] == ["fastdense", "reference", "torch"]
    assert len(result["systems"]["torch"]["ratio_pairs"]) == 2


def test_the_former_module_still_runs_the_suite():
    # fastdense.benchmarks is what `python -m fastdense bench` imports
    import fastdense.benchmarks as old
    assert old.main is bm.main
    assert old.WORKLOADS is bm.WORKLOADS
    assert set(bm.__all__) <= set(vars(old))


@pytest.mark.parametrize("module", ["fastdense.bench", "fastdense.benchmarks"])
def test_both_module_names_run_as_scripts(module):
    import subprocess
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m fastdense bench")
    assert "--sweep" in done.stdout


def _table_rows(out):
    """The workload table of a run's printed output: {first cell: cells}, header included
    (under "workload"); "pair ratios" is the one header cell with a space, after the
    system columns."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("workload "))
    rows = {}
    for line in [lines[start]] + lines[start + 2:]:
        if not line.strip() or line.startswith(("noisy", "peers'", "  ", "results:")):
            break
        cells = line.split()
        rows[cells[0]] = cells
    return rows


def test_onnxruntime_runs_beside_on_the_predict_workloads_when_importable(tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    path = tmp_path / "r.json"
    bm.main(["--quick", "--only", "seed,predict1,predict1k", "--peers", "onnxruntime",
             "--json", str(path), "--plot", ""])
    report = json.loads(path.read_text())
    assert report["peers_missing"] == {}
    for wid in ("predict1", "predict1k"):
        result = report["workloads"][wid]
        assert result["order"] == ["fastdense", "reference", "onnxruntime"], wid
        ort = result["systems"]["onnxruntime"]
        assert len(ort["raw_seconds"]) == len(ort["ratio_pairs"]) == 2
        assert all(t > 0 for t in ort["raw_seconds"])
        ref = result["systems"]["reference"]["raw_seconds"]
        assert ort["ratio"] == pytest.approx(
            statistics.median(r / o for r, o in zip(ref, ort["raw_seconds"])))
        # the same model: the outputs of the last timed call sum as fastdense's do
        fast_sum = result["systems"]["fastdense"]["facts"]["checksum"]
        assert ort["facts"]["checksum"] == pytest.approx(fast_sum, rel=1e-5, abs=1e-6)
        assert ort["notes"]["intra_op_num_threads"] == 1
        assert ort["notes"]["inter_op_num_threads"] == 1
        assert ort["notes"]["providers"] == ["CPUExecutionProvider"]
        assert ort["notes"]["checked_max_abs_diff"] <= 1e-5
    assert "onnxruntime" not in report["workloads"]["seed"]["systems"]   # fit: not a peer
    assert report["versions"]["onnxruntime"]
    rows = _table_rows(capsys.readouterr().out)
    column = rows["workload"].index("onnxruntime")
    assert rows["workload"][:column] == ["workload", "unit", "fastdense", "reference"]
    assert rows["seed"][column] == "–"
    for wid in ("predict1", "predict1k"):
        shown = float(rows[wid][column].replace(",", ""))
        median = report["workloads"][wid]["systems"]["onnxruntime"]["median"]
        assert shown == pytest.approx(median, rel=0.01)


@pytest.mark.parametrize("missing", ["onnxruntime", "onnx"])
def test_no_onnxruntime_column_when_it_cannot_be_imported(tmp_path, capsys, monkeypatch,
                                                          missing):
    monkeypatch.setitem(sys.modules, missing, None)     # import raises ImportError
    path = tmp_path / "r.json"
    bm.main(["--quick", "--only", "predict1", "--peers", "onnxruntime", "--json", str(path),
             "--plot", ""])
    report = json.loads(path.read_text())
    why = report["peers_missing"]["onnxruntime"]
    assert why.startswith(("ImportError", "ModuleNotFoundError"))
    other = "onnx" if missing == "onnxruntime" else "onnxruntime"
    try:                        # the reason names the blocked module when the other imports
        importlib.import_module(other)
        assert missing in why
    except ImportError:         # (where neither is installed, the first one looked for)
        assert "onnx" in why
    result = report["workloads"]["predict1"]
    assert result["order"] == ["fastdense", "reference"]
    assert "peer_errors" not in result
    out = capsys.readouterr().out
    assert "peers: none" in out
    assert _table_rows(out)["workload"][2:4] == ["fastdense", "reference"]
    assert "onnxruntime" not in _table_rows(out)["workload"]


def test_an_onnx_model_that_predicts_otherwise_is_not_timed(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import fastdense.interop
    from onnx import numpy_helper
    real = fastdense.interop.to_onnx

    def off_by_a_bias(model, *args, **kwargs):
        proto = real(model, *args, **kwargs)
        last = next(t for t in proto.graph.initializer if t.name == "b2")
        last.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(last) + 0.5, "b2"))
        onnx.checker.check_model(proto)
        return proto

    monkeypatch.setattr(fastdense.interop, "to_onnx", off_by_a_bias)
    path = tmp_path / "r.json"
    bm.main(["--quick", "--only", "predict1", "--peers", "onnxruntime", "--json", str(path),
             "--plot", ""])
    result = json.loads(path.read_text())["workloads"]["predict1"]
    assert result["order"] == ["fastdense", "reference"]
    assert "onnxruntime" not in result["systems"]
    assert result["peer_errors"]["onnxruntime"].startswith("AssertionError")
    assert "differ from fastdense's predict" in result["peer_errors"]["onnxruntime"]
