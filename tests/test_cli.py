"""The command line (`fastdense.cli`): train (regression and classification), predict,
export and bench, run as a user runs them: through ``main([...])`` and as ``python -m
fastdense`` in a subprocess."""
import io
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import fastdense as fd
from fastdense.cli import (AUTO_MAX_CLASSES, _LineBar, choose_task, main, progress_bar,
                           read_csv, scaling_path)
from fastdense.datasets import load_diabetes, load_digits

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


# ---------------------------------------------------------------- entry points
def test_main_module_and_script_run_fastdense_cli_main():
    """``python -m fastdense`` and the ``fastdense`` script (``fastdense.__main__:main``)
    reach the one ``main`` of fastdense.cli."""
    import fastdense.__main__ as dunder_main
    import fastdense.cli as cli

    assert dunder_main.main is cli.main is main


def test_export_errors_via_python_m_fastdense_have_no_traceback(tmp_path):
    """export's errors are the CLI's one-line errors under ``python -m`` too (the command
    line and fastdense.interop share one CommandError)."""
    result = run_cli(["export", "nope.npz", "x.onnx"], cwd=tmp_path)
    assert result.returncode == 1
    one_line_error(result.stderr, "export", "no such file: nope.npz")


# ---------------------------------------------------------------- help
def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "bench", "train", "predict", "export"):
        assert re.search(rf"^\s+{command}\s", out, re.M)


@pytest.mark.parametrize("command, options", [
    ("train", ["--target", "--task", "--layers", "--activation", "--optimizer", "--lr", "--epochs",
               "--batch-size", "--validation-split", "--seed", "--dtype", "--out",
               "--no-save", "--plot", "DATA.csv"]),
    ("predict", ["MODEL.npz", "DATA.csv", "--out", "--proba"]),
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
    result = run_cli(train_args(path.name, "--no-save", "--task", "regress"), cwd=tmp_path)
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


# ---------------------------------------------------------------- classification
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
PIXELS = [f"p{i}" for i in range(64)]


@pytest.fixture
def digits_csv(tmp_path):
    """The bundled digits, 1797 rows: 64 pixel columns and 'digit' (0-9)."""
    X, y = load_digits()
    return write_csv(tmp_path / "digits.csv", PIXELS + ["digit"],
                     np.column_stack([X.astype(int), y.astype(int)]).tolist())


@pytest.fixture
def named_digits_csv(tmp_path):
    """The digits with their labels written as words ('zero' … 'nine')."""
    X, y = load_digits()
    rows = [list(map(int, x)) + [DIGIT_NAMES[int(t)]] for x, t in zip(X, y)]
    return write_csv(tmp_path / "named.csv", PIXELS + ["digit"], rows)


def classify_args(csv_path, *extra):
    return ["train", str(csv_path), "--target", "digit", "--layers", "32", "--epochs", "5",
            *extra]


def accuracy_lines(out):
    """{"training": (accuracy, correct, rows, loss), "validation": ...} from train's report."""
    return {label: (float(acc), int(k), int(n), float(loss))
            for label, acc, k, n, loss in re.findall(
                r"^\s+(training|validation)\s+([0-9.]+) \((\d+) of (\d+) rows\), "
                r"loss ([0-9.]+)$", out, re.M)}


def printed_confusion(out):
    """(title, column names, row names, counts) of the confusion matrix train prints."""
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("confusion matrix"))
    columns = lines[i + 1].split()
    rows = [lines[i + 2 + k].split() for k in range(len(columns))]
    return (lines[i], columns, [row[0] for row in rows],
            np.array([[int(v) for v in row[1:]] for row in rows]))


def read_predictions(path):
    """(header, columns as lists of text) of a CSV written by predict."""
    lines = Path(path).read_text().splitlines()
    table = [line.split(",") for line in lines[1:]]
    return lines[0].split(","), list(zip(*table))


def test_classify_digits_reaches_a_clear_accuracy(digits_csv, capsys):
    assert main(classify_args(digits_csv, "--no-save")) == 0
    out = capsys.readouterr().out
    assert "target 'digit' (10 classes); 1437 training / 360 validation rows" in out
    assert "network 64 → 32 relu → 10 softmax, sparse_categorical_crossentropy; adam" in out
    scores = accuracy_lines(out)
    assert set(scores) == {"training", "validation"}
    (train_acc, train_k, train_n, _), (val_acc, val_k, val_n, _) = \
        scores["training"], scores["validation"]
    assert (train_n, val_n) == (1437, 360)            # ceil(0.2 · 1797) held out
    assert train_acc == pytest.approx(train_k / train_n, abs=5e-5)
    assert val_acc == pytest.approx(val_k / val_n, abs=5e-5)
    assert train_acc >= 0.9 and val_acc >= 0.85
    # the printed matrix is the validation part's: its diagonal is the validation hits
    title, columns, rows, matrix = printed_confusion(out)
    assert "validation rows" in title
    assert columns == rows == [str(d) for d in range(10)]
    assert matrix.sum() == 360 and np.trace(matrix) == val_k


def test_confusion_matrix_equals_one_recomputed_from_predict(named_digits_csv, capsys):
    """train's matrix of the validation rows equals one counted in NumPy from predict's
    labels on the rows the documented split holds out (the first ceil(0.2 n) of the
    seed's permutation)."""
    model, preds = named_digits_csv.parent / "m.npz", named_digits_csv.parent / "p.csv"
    assert main(classify_args(named_digits_csv, "--seed", "4", "--out", str(model))) == 0
    _, columns, rows, matrix = printed_confusion(capsys.readouterr().out)
    assert columns == rows == sorted(DIGIT_NAMES)
    assert main(["predict", str(model), str(named_digits_csv), "--out", str(preds)]) == 0
    _, (predicted,) = read_predictions(preds)
    true = [DIGIT_NAMES[int(t)] for t in load_digits()[1]]
    held_out = np.random.default_rng(4).permutation(len(true))[:360]
    expected = np.zeros((10, 10), dtype=int)
    for i in held_out:
        expected[columns.index(true[i]), columns.index(predicted[i])] += 1
    np.testing.assert_array_equal(matrix, expected)


def test_string_labels_round_trip_through_predict(named_digits_csv, capsys):
    model, preds = named_digits_csv.parent / "m.npz", named_digits_csv.parent / "p.csv"
    assert main(classify_args(named_digits_csv, "--validation-split", "0", "--out",
                              str(model))) == 0
    out = capsys.readouterr().out
    assert "task: classification (auto-detected: 'digit' holds text such as 'zero'" in out
    (_, correct, n, _), = accuracy_lines(out).values()
    assert main(["predict", str(model), str(named_digits_csv), "--out", str(preds)]) == 0
    assert "wrote 1797 predictions of 'digit' to" in capsys.readouterr().out
    header, (predicted,) = read_predictions(preds)
    assert header == ["digit"] and len(predicted) == n == 1797
    assert set(predicted) <= set(DIGIT_NAMES)
    true = [DIGIT_NAMES[int(t)] for t in load_digits()[1]]
    # the same network on the same rows: predict's hits are the training report's
    assert sum(p == t for p, t in zip(predicted, true)) == correct
    side = json.loads(scaling_path(model).read_text())
    assert side["task"] == "classify" and side["classes"] == sorted(DIGIT_NAMES)


def test_integer_labels_come_back_as_written(tmp_path, capsys):
    """Numeric labels are classes by value and are written back as integers, sorted by
    value (not as text: 10 after 9)."""
    rng = np.random.default_rng(1)
    y = np.repeat([-1, 9, 10], 40)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    X = centres[np.repeat([0, 1, 2], 40)] + rng.normal(scale=0.3, size=(120, 2))
    path = write_csv(tmp_path / "d.csv", ["a", "b", "y"],
                     [[a, b, f"{t}.0" if i % 2 else t] for i, (a, b, t) in
                      enumerate(zip(X[:, 0], X[:, 1], y))])
    model = tmp_path / "m.npz"
    assert main(["train", str(path), "--target", "y", "--layers", "8", "--epochs", "30",
                 "--lr", "0.01", "--out", str(model)]) == 0
    _, columns, _, _ = printed_confusion(capsys.readouterr().out)
    assert columns == ["-1", "9", "10"]
    assert json.loads(scaling_path(model).read_text())["classes"] == [-1, 9, 10]
    assert main(["predict", str(model), str(path), "--out", str(tmp_path / "p.csv")]) == 0
    _, (predicted,) = read_predictions(tmp_path / "p.csv")
    assert np.mean(np.array(predicted, dtype=int) == y) >= 0.95


def standardised(X):
    """The features as train standardises them with --validation-split 0: every row's
    mean and (population) standard deviation."""
    return (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)


def test_proba_columns_sum_to_one_and_equal_model_predict(named_digits_csv, capsys):
    model_path = named_digits_csv.parent / "m.npz"
    preds = named_digits_csv.parent / "p.csv"
    assert main(classify_args(named_digits_csv, "--validation-split", "0", "--out",
                              str(model_path))) == 0
    assert main(["predict", str(model_path), str(named_digits_csv), "--proba", "--out",
                 str(preds)]) == 0
    assert "with the probabilities of its 10 classes" in capsys.readouterr().out
    header, columns = read_predictions(preds)
    names = sorted(DIGIT_NAMES)
    assert header == ["digit"] + [f"p_{name}" for name in names]
    proba = np.array(columns[1:], dtype=np.float64).T
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    X = load_digits()[0]
    expected = fd.load_model(model_path).predict(standardised(X).astype(np.float32))
    np.testing.assert_allclose(proba, expected, rtol=1e-5, atol=1e-7)
    assert list(columns[0]) == [names[k] for k in np.argmax(expected, axis=1)]


def two_blobs(n=200, seed=0):
    """Two classes, 'ham' and 'spam', a Gaussian blob each in 3 features."""
    rng = np.random.default_rng(seed)
    spam = rng.random(n) < 0.5
    X = rng.normal(size=(n, 3)) + np.where(spam[:, None], 1.5, -1.5)
    return X, np.where(spam, "spam", "ham")


def test_binary_text_labels_use_one_sigmoid_unit(tmp_path, capsys):
    X, y = two_blobs()
    path = write_csv(tmp_path / "mail.csv", ["f1", "f2", "f3", "kind"],
                     [[*map(float, x), t] for x, t in zip(X, y)])
    model_path, preds = tmp_path / "m.npz", tmp_path / "p.csv"
    assert main(["train", str(path), "--target", "kind", "--layers", "8", "--epochs", "20",
                 "--lr", "0.01", "--validation-split", "0", "--out", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "target 'kind' (2 classes)" in out
    assert "network 3 → 8 relu → 1 sigmoid, binary_crossentropy;" in out
    assert accuracy_lines(out)["training"][0] >= 0.95
    _, columns, rows, matrix = printed_confusion(out)
    assert columns == rows == ["ham", "spam"]
    assert matrix.sum() == 200 and np.trace(matrix) == accuracy_lines(out)["training"][1]

    assert main(["predict", str(model_path), str(path), "--proba", "--out", str(preds)]) == 0
    header, (labels, p_ham, p_spam) = read_predictions(preds)
    assert header == ["kind", "p_ham", "p_spam"]
    p_ham, p_spam = np.array(p_ham, dtype=float), np.array(p_spam, dtype=float)
    model = fd.load_model(model_path)
    assert model.layers[-1].units == 1
    sigmoid = model.predict(standardised(X).astype(np.float32))[:, 0]
    np.testing.assert_allclose(p_spam, sigmoid, rtol=1e-6)
    np.testing.assert_allclose(p_ham + p_spam, 1.0, rtol=1e-7)
    assert list(labels) == np.where(sigmoid > 0.5, "spam", "ham").tolist()
    assert np.mean(np.array(labels) == y) >= 0.95


@pytest.mark.parametrize("values, task, why", [
    ([0, 1, 1, 0], "classify", "integers only, 2 distinct values"),
    (list(range(AUTO_MAX_CLASSES)) * 2, "classify", f"integers only, {AUTO_MAX_CLASSES} "
                                                    f"distinct values"),
    ([f"{v}.0" for v in range(3)], "classify", "integers only, 3 distinct values"),
    (["cat", "3", "dog"], "classify", "text such as 'cat'"),
    (list(range(AUTO_MAX_CLASSES + 1)), "regress", f"{AUTO_MAX_CLASSES + 1} distinct integers"),
    ([1, 2.5, 3], "regress", "not integers, such as '2.5'"),
])
def test_auto_detection_rule(values, task, why):
    chosen, reason = choose_task("auto", [str(v) for v in values], "y")
    assert chosen == task
    assert why in reason


def test_explicit_task_is_taken_as_given():
    assert choose_task("regress", ["0", "1"], "y") == ("regress", "")
    assert choose_task("classify", ["0.5", "1.5"], "y") == ("classify", "")


def test_auto_detection_regresses_diabetes_and_says_why(diabetes_csv, capsys):
    assert main(train_args(diabetes_csv, "--no-save")) == 0
    out = capsys.readouterr().out
    distinct = len(np.unique(load_diabetes()[1][:120]))
    assert (f"task: regression (auto-detected: 'progression' holds {distinct} distinct "
            f"integers (more than {AUTO_MAX_CLASSES}); --task classify to override)") in out
    assert set(mse_lines(out)) == {"training", "validation"}


def test_explicit_task_prints_no_detection_line(digits_csv, capsys):
    assert main(classify_args(digits_csv, "--no-save", "--task", "classify")) == 0
    assert "task:" not in capsys.readouterr().out
    assert main(classify_args(digits_csv, "--no-save", "--task", "regress")) == 0
    out = capsys.readouterr().out
    assert "task:" not in out and "network 64 → 32 relu → 1; adam" in out
    assert set(mse_lines(out)) == {"training", "validation"}


def test_regression_statistics_keep_their_format(diabetes_csv, capsys):
    model = diabetes_csv.parent / "m.npz"
    assert main(train_args(diabetes_csv, "--out", str(model))) == 0
    side = json.loads(scaling_path(model).read_text())
    assert set(side) == {"format", "version", "features", "target", "x_mean", "x_std",
                         "y_mean", "y_std"}
    assert side["version"] == 1


def test_classification_plot_has_loss_and_accuracy_panels(digits_csv, capsys):
    pytest.importorskip("matplotlib")
    plot = digits_csv.parent / "curves.png"
    assert main(classify_args(digits_csv, "--no-save", "--plot", str(plot))) == 0
    assert "loss and accuracy curves:" in capsys.readouterr().out
    png = plot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width >= 2 * height          # two panels side by side (10 × 4 inches)


def test_classifier_exports_to_onnx_as_its_probabilities(digits_csv, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model, onnx_path = tmp_path / "m.npz", tmp_path / "m.onnx"
    assert main(classify_args(digits_csv, "--out", str(model))) == 0
    assert main(["export", str(model), str(onnx_path)]) == 0
    assert main(["predict", str(model), str(digits_csv), "--proba", "--out",
                 str(tmp_path / "p.csv")]) == 0
    capsys.readouterr()
    _, columns = read_predictions(tmp_path / "p.csv")
    expected = np.array(columns[1:], dtype=np.float64).T
    X = load_digits()[0].astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: X})[0]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- classification errors
@pytest.mark.parametrize("labels, fragments", [
    (["a"] * 6, ["the target 'y' has one class only ('a'); classification needs two"]),
    (["a", "a", "b", "b", "c", "a"], ["1 of the 3 classes of 'y' has one row only ('c')"]),
    (["a", "", "b", "b", "a", "a"], ["line 3, column 'y': empty label"]),
    (["1", "2", "1", "2", "nan", "1"], ["line 6, column 'y'", "not a finite number"]),
])
def test_unusable_classes_are_one_line_errors(tmp_path, capsys, labels, fragments):
    path = write_csv(tmp_path / "d.csv", ["x", "y"], [[i, t] for i, t in enumerate(labels)])
    assert main(["train", str(path), "--target", "y", "--task", "classify", "--no-save",
                 "--validation-split", "0"]) == 1
    captured = capsys.readouterr()
    one_line_error(captured.err, "train", *fragments)
    assert "Epoch" not in captured.err


def test_class_held_out_entirely_is_a_one_line_error(tmp_path, capsys):
    n, n_val = 20, 4                                  # --validation-split 0.2 of 20 rows
    held_out = np.random.default_rng(0).permutation(n)[:2]
    labels = ["rare" if i in held_out else ("a" if i % 2 else "b") for i in range(n)]
    path = write_csv(tmp_path / "d.csv", ["x", "y"], [[i, t] for i, t in enumerate(labels)])
    assert main(["train", str(path), "--target", "y", "--no-save"]) == 1
    one_line_error(capsys.readouterr().err, "train", "class(es) 'rare' of 'y' has no row in "
                   "the training part", "--validation-split")
    assert n_val > 2


def test_many_single_row_classes_suggest_an_identifier(tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", ["x", "id"], [[i, f"row{i}"] for i in range(30)])
    assert main(["train", str(path), "--target", "id", "--no-save"]) == 1
    one_line_error(capsys.readouterr().err, "train", "30 of the 30 classes of 'id' have one "
                   "row only ('row0', 'row1', 'row10', 'row11', 'row12' and 25 more)",
                   "identifier")


def test_proba_of_a_regression_model_is_a_one_line_error(diabetes_csv, capsys):
    model = diabetes_csv.parent / "m.npz"
    assert main(train_args(diabetes_csv, "--out", str(model))) == 0
    capsys.readouterr()
    assert main(["predict", str(model), str(diabetes_csv), "--proba"]) == 1
    one_line_error(capsys.readouterr().err, "predict", "--proba needs a classifier",
                   "regression model of 'progression'")


@pytest.mark.parametrize("change, message", [
    ({"classes": ["only"]}, "'classes' must list two or more distinct labels"),
    ({"classes": ["a", "a", "b"]}, "'classes' must list two or more distinct labels"),
    ({"task": "cluster"}, "unknown task 'cluster'"),
    ({"classes": ["a", "b", "c"]}, "lists 3 classes, for which the network needs 3 "
                                   "output(s); "),
])
def test_predict_refuses_class_lists_that_do_not_fit(tmp_path, capsys, change, message):
    X, y = two_blobs(40)
    path = write_csv(tmp_path / "mail.csv", ["f1", "f2", "f3", "kind"],
                     [[*map(float, x), t] for x, t in zip(X, y)])
    model = tmp_path / "m.npz"
    assert main(["train", str(path), "--target", "kind", "--epochs", "1", "--out",
                 str(model)]) == 0
    side = scaling_path(model)
    side.write_text(json.dumps({**json.loads(side.read_text()), **change}))
    capsys.readouterr()
    assert main(["predict", str(model), str(path)]) == 1
    one_line_error(capsys.readouterr().err, "predict", message)
