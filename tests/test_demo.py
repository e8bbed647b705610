"""The demo, run the way a user runs it: ``python -m fastdense demo`` from any directory."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastdense
from fastdense.cli import demo_data, main

SRC = str(Path(fastdense.__file__).resolve().parent.parent)


def run_cli(args, cwd):
    env = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.run([sys.executable, "-m", "fastdense", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_demo_reports_both_test_errors_beside_the_baseline_and_the_speed_up(tmp_path):
    result = run_cli(["demo", "--epochs", "5"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    mse = {name: float(m) for name, m in
           re.findall(r"^\s+(fastdense|NumPy reference|predict-the-mean baseline)\s+"
                      r"([0-9.]+)$", out, re.M)}
    assert set(mse) == {"fastdense", "NumPy reference", "predict-the-mean baseline"}
    # same seed, same data: the two runs agree, and five epochs already beat the mean
    assert mse["fastdense"] == pytest.approx(mse["NumPy reference"], abs=1e-3)
    assert mse["fastdense"] < mse["predict-the-mean baseline"]
    assert "Epoch 5/5 - loss: " in out
    assert re.search(r"speed-up\s+[0-9.]+x", out)


def test_demo_verbose_1_shows_every_epoch(tmp_path):
    result = run_cli(["demo", "--epochs", "3", "--verbose", "1"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for epoch in (1, 2, 3):
        assert result.stdout.count(f"Epoch {epoch}/3 - loss: ") == 2


@pytest.mark.parametrize("args", [["demo", "--epochs", "0"], ["demo", "--lr", "-1"],
                                  ["demo", "--dtype", "int8"], []])
def test_bad_command_lines_exit_with_usage_error(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert "usage: fastdense" in capsys.readouterr().err


def test_demo_data_is_standardised_with_the_training_part_only():
    X_train, X_test, y_train, y_test = demo_data(seed=0)
    assert X_train.shape == (353, 10) and X_test.shape == (89, 10)
    np.testing.assert_allclose(X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(X_train.std(axis=0), 1, rtol=1e-12)
    assert abs(y_train.mean()) < 1e-12 and y_train.std() == pytest.approx(1)
    assert np.all(np.abs(X_test.mean(axis=0)) > 1e-6)    # test statistics were not used
