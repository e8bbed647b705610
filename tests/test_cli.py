"""The command line's train, predict and bench commands, run as a user runs them: through
``main([...])`` and as ``python -m fastdense`` in a subprocess."""
import io
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import fastdense as fd
from fastdense.__main__ import _LineBar, main, progress_bar, read_csv, scaling_path
from fastdense.datasets import load_diabetes

SRC = str(Path(fd.__file__).resolve().parent.parent)
COLUMNS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "progression"]


def run_cli(args, cwd):
    path = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "fastdense", *args], cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=path), capture_output=True,
                          text=True, timeout=300)


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n"
                    + "".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


@pytest.fixture
def diabetes_csv(tmp_path):
    X, y = load_diabetes()
    return write_csv(tmp_path / "diabetes.csv", COLUMNS,
                     np.column_stack([X, y])[:120].tolist())


def train_args(csv_path, *extra):
    return ["train", str(csv_path), "--target", "progression", "--layers", "8",
            "--epochs", "3", *extra]


def mse_lines(out):
    return {label: (float(units), float(std)) for label, units, std in re.findall(
        r"^\s+(training|validation)\s+([0-9.e+]+) \(standardised: ([0-9.]+)\)$", out, re.M)}


def one_line_error(err, command, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"fastdense {command}: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


# ---------------------------------------------------------------- help
def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "bench", "train", "predict", "export"):
        assert re.search(rf"^\s+{command}\s", out, re.M)


@pytest.mark.parametrize("command, options", [
    ("train", ["--target", "--layers", "--activation", "--optimizer", "--lr", "--epochs",
               "--batch-size", "--validation-split", "--seed", "--dtype", "--out",
               "--no-save", "--plot", "DATA.csv"]),
    ("predict", ["MODEL.npz", "DATA.csv", "--out"]),
])
def test_each_command_documents_its_options(command, options, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in options:
        assert option in out


# ---------------------------------------------------------------- train
def test_train_prints_training_and_validation_mse(diabetes_csv, capsys):
    assert main(train_args(diabetes_csv, "--no-save")) == 0
    captured = capsys.readouterr()
    assert "120 rows, 10 features, target 'progression'; 96 training / 24 validation" \
        in captured.out
    mse = mse_lines(captured.out)
    assert set(mse) == {"training", "validation"}
    y = load_diabetes()[1][:120]
    for units, standardised in mse.values():
        # the two scales differ by the training part's target variance
        assert 0.3 * y.var() < units / standardised < 3 * y.var()
    assert "Epoch 3/3" in captured.err


def test_train_without_validation_reports_training_mse_only(diabetes_csv, capsys):
    assert main(train_args(diabetes_csv, "--no-save", "--validation-split", "0")) == 0
    assert set(mse_lines(capsys.readouterr().out)) == {"training"}


def test_train_is_reproducible_from_its_seed(diabetes_csv, capsys):
    outs = []
    for _ in range(2):
        main(train_args(diabetes_csv, "--no-save", "--seed", "3"))
        outs.append(mse_lines(capsys.readouterr().out))
    assert outs[0] == outs[1]


def test_train_runs_as_python_m_fastdense(diabetes_csv):
    result = run_cli(train_args(diabetes_csv.name, "--no-save", "--optimizer", "sgd",
                                "--lr", "0.05", "--layers", "4,4"), cwd=diabetes_csv.parent)
    assert result.returncode == 0, result.stderr
    assert "network 10 → 4 relu → 4 relu → 1; sgd lr=0.05" in result.stdout
    assert set(mse_lines(result.stdout)) == {"training", "validation"}
    assert "Traceback" not in result.stderr


def test_plot_draws_a_png_of_the_loss_curves(diabetes_csv, capsys):
    pytest.importorskip("matplotlib")
    plot = diabetes_csv.parent / "loss.png"
    assert main(train_args(diabetes_csv, "--no-save", "--plot", str(plot))) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_so_before_training(diabetes_csv, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import matplotlib fails
    assert main(train_args(diabetes_csv, "--no-save", "--plot", "loss.png")) == 1
    captured = capsys.readouterr()
    one_line_error(captured.err, "train", "--plot needs matplotlib")
    assert "Epoch" not in captured.err + captured.out


# ---------------------------------------------------------------- input errors
def test_missing_file_is_one_line_error(tmp_path, capsys):
    assert main(train_args(tmp_path / "absent.csv", "--no-save")) == 1
    one_line_error(capsys.readouterr().err, "train", "no such file", "absent.csv")


def test_missing_target_column_names_the_columns(diabetes_csv, capsys):
    args = train_args(diabetes_csv, "--no-save")
    args[args.index("progression")] = "price"
    assert main(args) == 1
    one_line_error(capsys.readouterr().err, "train", "no column 'price'", "age, sex, bmi")


def test_non_numeric_cell_names_line_and_column(tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", ["a", "b", "progression"],
                     [[1, 2, 3], [4, "five", 6], [7, 8, 9]])
    assert main(train_args(path, "--no-save")) == 1
    one_line_error(capsys.readouterr().err, "train", "line 3", "column 'b'", "'five'",
                   "not a number")


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("a,progression\n", "no data rows"),
    ("a,progression\n1,2\n3\n", "line 3: 1 field(s), the header has 2"),
    ("a,progression\n1,\n", "'' is not a number"),
    ("a,progression\n1,inf\n", "not a finite number"),
    ("a,a,progression\n1,2,3\n", "'a' appear more than once"),
    ("progression\n1\n2\n", "no feature columns"),
])
def test_malformed_csv_is_one_line_error(tmp_path, capsys, text, message):
    path = tmp_path / "d.csv"
    path.write_text(text)
    assert main(train_args(path, "--no-save")) == 1
    one_line_error(capsys.readouterr().err, "train", message)


def test_errors_from_python_m_fastdense_have_no_traceback(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["a", "progression"], [[1, "x"]])
    result = run_cli(train_args(path.name, "--no-save"), cwd=tmp_path)
    assert result.returncode == 1
    one_line_error(result.stderr, "train", "column 'progression'", "'x' is not a number")


@pytest.mark.parametrize("args", [["train", "d.csv"],                       # no --target
                                  ["train", "d.csv", "--target", "y", "--layers", "8,x"],
                                  ["train", "d.csv", "--target", "y", "--validation-split",
                                   "1"],
                                  ["train", "d.csv", "--target", "y", "--optimizer", "lbfgs"],
                                  ["predict", "m.npz"]])
def test_bad_options_exit_with_usage_error(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert "usage: fastdense" in capsys.readouterr().err


def test_read_csv_picks_named_columns_in_order_and_skips_blank_lines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,x,y\nA, 1.5,2\n\nB,3e2,-4\n")
    header, values = read_csv(path, columns=["y", "x"])
    assert header == ["id", "x", "y"]
    np.testing.assert_array_equal(values, [[2, 1.5], [-4, 300]])


# ---------------------------------------------------------------- progress bar
def test_builtin_bar_redraws_one_line_and_ends_it_on_close():
    stream = io.StringIO()
    bar = _LineBar(4, stream=stream)
    for i in range(4):
        bar.update({"loss": 1.0 / (i + 1), "val_loss": 2.0})
    assert "\n" not in stream.getvalue()
    bar.close()
    last = stream.getvalue().rstrip("\n").split("\r")[-1]
    assert last.startswith("Epoch 4/4 [") and "loss: 0.2500 - val_loss: 2.0000" in last
    assert stream.getvalue().endswith("\n")


def test_progress_bar_is_tqdm_when_installed_else_built_in(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    assert isinstance(progress_bar(3), _LineBar)
    updates = []

    class FakeTqdm:
        def __init__(self, total, **kwargs):
            updates.append(("total", total))

        def set_postfix(self, logs, refresh):
            updates.append(logs)

        def update(self, n):
            pass

        def close(self):
            updates.append("closed")

    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=FakeTqdm))
    bar = progress_bar(3)
    bar.update({"loss": 0.5})
    bar.close()
    assert updates == [("total", 3), {"loss": "0.5"}, "closed"]


# ---------------------------------------------------------------- bench
def test_bench_hands_the_rest_of_the_command_line_to_the_suite(monkeypatch):
    seen = []
    suite = types.ModuleType("fastdense.benchmarks")
    suite.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "fastdense.benchmarks", suite)
    assert main(["bench", "--quick", "-h"]) == 0
    assert seen == [["--quick", "-h"]]


def test_bench_without_the_suite_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastdense.benchmarks", None)
    assert main(["bench"]) == 1
    one_line_error(capsys.readouterr().err, "bench", "fastdense.benchmarks")


# ---------------------------------------------------------------- save and predict
def test_scaling_statistics_sit_beside_the_model():
    assert scaling_path("out/model.npz") == Path("out/model.scaling.json")
    assert scaling_path("model") == Path("model.scaling.json")


def test_output_in_a_missing_directory_is_refused_before_training(diabetes_csv, capsys):
    assert main(train_args(diabetes_csv, "--out", str(diabetes_csv.parent / "no/m.npz"))) == 1
    captured = capsys.readouterr()
    one_line_error(captured.err, "train", "--out", "does not exist")
    assert "Epoch" not in captured.err


def test_predict_refuses_a_file_that_is_not_a_model(diabetes_csv, capsys):
    fake = diabetes_csv.parent / "fake.npz"
    fake.write_bytes(b"not a zip")
    (diabetes_csv.parent / "fake.scaling.json").write_text(
        '{"features": ["age"], "target": "y", "x_mean": [0], "x_std": [1], "y_mean": [0], '
        '"y_std": [1]}')
    assert main(["predict", str(fake), str(diabetes_csv)]) == 1
    one_line_error(capsys.readouterr().err, "predict", "cannot load a fastdense model")


def test_predict_needs_the_statistics_beside_the_model(diabetes_csv, capsys):
    model = diabetes_csv.parent / "m.npz"
    assert main(train_args(diabetes_csv, "--out", str(model))) == 0
    scaling_path(model).unlink()
    capsys.readouterr()
    assert main(["predict", str(model), str(diabetes_csv)]) == 1
    one_line_error(capsys.readouterr().err, "predict", "m.scaling.json is missing")


def test_predict_missing_model_is_one_line_error(diabetes_csv, capsys):
    assert main(["predict", str(diabetes_csv.parent / "none.npz"), str(diabetes_csv)]) == 1
    one_line_error(capsys.readouterr().err, "predict", "no such file", "none.npz")


def test_train_saves_and_predict_reproduces_its_training_mse(diabetes_csv, capsys):
    model = diabetes_csv.parent / "m.npz"
    preds = diabetes_csv.parent / "preds.csv"
    assert main(train_args(diabetes_csv, "--validation-split", "0", "--out",
                           str(model))) == 0
    (train_mse, _), = mse_lines(capsys.readouterr().out).values()
    assert model.is_file() and scaling_path(model).is_file()
    assert main(["predict", str(model), str(diabetes_csv), "--out", str(preds)]) == 0
    lines = preds.read_text().splitlines()
    assert lines[0] == "progression" and len(lines) == 121
    y = load_diabetes()[1][:120]
    mse = np.mean((np.array(lines[1:], dtype=float) - y) ** 2)
    assert mse == pytest.approx(train_mse, rel=1e-4)


def test_predict_via_python_m_writes_csv_to_stdout_and_needs_the_features(diabetes_csv):
    cwd = diabetes_csv.parent
    assert run_cli(train_args(diabetes_csv.name, "--out", "m.npz"), cwd=cwd).returncode == 0
    result = run_cli(["predict", "m.npz", diabetes_csv.name], cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "progression"
    assert len(result.stdout.splitlines()) == 121
    write_csv(cwd / "no_bmi.csv", ["age", "sex"], [[50, 1]])
    result = run_cli(["predict", "m.npz", "no_bmi.csv"], cwd=cwd)
    assert result.returncode == 1
    one_line_error(result.stderr, "predict", "no column 'bmi'")


# ---------------------------------------------------------------- export
def test_export_writes_an_onnx_file_that_predicts_like_predict(diabetes_csv, tmp_path, capsys):
    """train, then export: onnxruntime on the raw features gives what `predict` writes
    (the standardisation folded into the graph)."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model_path, onnx_path = tmp_path / "m.npz", tmp_path / "m.onnx"
    assert main(train_args(diabetes_csv, "--out", str(model_path))) == 0
    assert main(["export", str(model_path), str(onnx_path)]) == 0
    assert main(["predict", str(model_path), str(diabetes_csv), "--out",
                 str(tmp_path / "p.csv")]) == 0
    capsys.readouterr()
    expected = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1).reshape(-1)
    X = np.loadtxt(diabetes_csv, delimiter=",", skiprows=1)[:, :-1].astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: X})[0].reshape(-1)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-3)


def test_export_of_a_missing_model_is_one_line_error(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope.npz"), str(tmp_path / "x.onnx")]) == 1
    one_line_error(capsys.readouterr().err, "export", "nope.npz")


def test_model_methods_reach_the_interop_functions(rng):
    torch = pytest.importorskip("torch")
    model = fd.Sequential([fd.Dense(5, activation="tanh", input_dim=3),
                           fd.Dense(2, activation="softmax")], dtype="float64", seed=0)
    net = model.to_torch()
    x = rng.normal(size=(7, 3))
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.from_numpy(x)).numpy(), model.predict(x),
                                   rtol=1e-12)
    back = fd.Sequential.from_torch(net)
    np.testing.assert_allclose(back.predict(x), model.predict(x), rtol=1e-12)
