"""The bundled data sets and the split/standardise helpers."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastdense
from fastdense.datasets import load_diabetes, load_digits, standardize, train_test_split

SRC = str(Path(fastdense.__file__).resolve().parent.parent)


def test_diabetes_shapes_and_dtypes():
    X, y = load_diabetes()
    assert X.shape == (442, 10) and X.dtype == np.float64
    assert y.shape == (442,) and y.dtype == np.float64


def test_diabetes_first_rows_match_the_csv():
    X, y = load_diabetes()
    # the first lines of diabetes_data_raw.csv.gz and diabetes_target.csv.gz
    np.testing.assert_array_equal(X[0], [59, 2, 32.1, 101.0, 157, 93.2, 38.0, 4.0, 4.8598, 87])
    np.testing.assert_array_equal(X[1], [48, 1, 21.6, 87.0, 183, 103.2, 70.0, 3.0, 3.8918, 69])
    np.testing.assert_array_equal(y[:3], [151.0, 75.0, 141.0])
    assert 25 <= y.min() and y.max() <= 346


def test_digits_shapes_dtypes_and_first_row():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype.kind == "i"
    np.testing.assert_array_equal(X[0, :16], [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0])
    np.testing.assert_array_equal(y[:5], [0, 1, 2, 3, 4])
    assert X.min() == 0 and X.max() == 16
    assert set(np.unique(y)) == set(range(10))


def test_loaders_work_from_any_working_directory(tmp_path):
    code = ("from fastdense.datasets import load_diabetes, load_digits;"
            "print(load_diabetes()[0].shape, load_digits()[0].shape)")
    env = dict(os.environ, PYTHONPATH=SRC)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(442, 10) (1797, 64)"


def test_train_test_split_partitions_the_rows_by_a_seeded_permutation():
    X = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=3)
    order = np.random.default_rng(3).permutation(10)
    np.testing.assert_array_equal(y_test, order[:2])
    np.testing.assert_array_equal(y_train, order[2:])
    np.testing.assert_array_equal(X_test[:, 0], 2 * y_test)
    np.testing.assert_array_equal(X_train[:, 0], 2 * y_train)


def test_train_test_split_rounds_the_test_part_up_and_rejects_bad_sizes():
    X, y = np.zeros((442, 3)), np.zeros(442)
    assert len(train_test_split(X, y)[1]) == 89
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(X, y, test_size=1.5)
    with pytest.raises(ValueError, match="differ in length"):
        train_test_split(X, y[:5])


def test_standardize_uses_the_statistics_of_the_training_part_only():
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    test = np.array([[5.0, 7.0]])
    train_s, test_s = standardize(train, test)
    np.testing.assert_array_equal(train_s, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(test_s, [[3.0, 2.0]])     # constant column only centred


def test_standardize_handles_1d_targets():
    (y,) = standardize(np.array([1.0, 2.0, 3.0, 4.0]))
    assert y.mean() == pytest.approx(0) and y.std() == pytest.approx(1)
