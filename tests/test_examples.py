"""Every script in examples/ runs as a user runs it (python examples/NAME.py), with tiny
settings so the suite stays fast, and prints what it promises."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastdense

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SRC = str(Path(fastdense.__file__).resolve().parent.parent)

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="examples/ is not here")


def run_example(name, *args):
    path = os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=path), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def number(pattern, text):
    return float(re.search(pattern, text).group(1))


def test_every_example_has_a_test():
    tested = {"classic.py", "diabetes_regression.py", "digits_classification.py",
              "background_training.py", "optimizers_numpy.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_classic_network():
    out = run_example("classic.py", "--epochs", "2")
    assert number(r"evaluate ([0-9.]+)", out) < 0.5


def test_diabetes_regression_beats_the_mean():
    out = run_example("diabetes_regression.py", "--epochs", "3")
    assert number(r"test MSE ([0-9.]+)", out) < number(r"training mean: ([0-9.]+)", out)


def test_digits_classification_with_softmax_and_cross_entropy(tmp_path):
    out = run_example("digits_classification.py", "--epochs", "30",
                      "--plot", str(tmp_path / "digits.png"))
    assert number(r"test accuracy ([0-9.]+)", out) >= 0.96
    rows = [line.split() for line in out.splitlines() if re.match(r"^\s+\d+(\s+\d+){10}$", line)]
    assert len(rows) == 10 and sum(int(c) for r in rows for c in r[1:]) == 450
    assert (tmp_path / "digits.png").stat().st_size > 0


def test_background_training_serves_predictions_from_published_snapshots():
    out = run_example("background_training.py", "--epochs", "5")
    assert re.search(r"served \d+ requests while training 5 epochs", out)
    assert "epochs 0…5" in out or re.search(r"epochs \d+…5\)", out)


def test_optimizers_on_numpy_arrays_reach_the_least_squares_solution():
    out = run_example("optimizers_numpy.py", "--steps", "300")
    distances = [float(d) for d in re.findall(r"exact solution ([0-9.e+-]+)", out)]
    assert len(distances) == 2 and max(distances) < 1e-3
    assert "restored optimizer takes the same step: True" in out
