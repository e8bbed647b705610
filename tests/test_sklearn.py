"""fastdense.sklearn.FastDenseRegressor: scikit-learn's estimator checks and our contract."""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastdense as fd

pytest.importorskip("sklearn")

from sklearn.base import clone                                          # noqa: E402
from sklearn.model_selection import cross_val_score                     # noqa: E402
from sklearn.pipeline import make_pipeline                              # noqa: E402
from sklearn.preprocessing import StandardScaler                        # noqa: E402
from sklearn.utils.estimator_checks import (check_estimator,               # noqa: E402
                                           parametrize_with_checks)

from fastdense.sklearn import FastDenseRegressor                        # noqa: E402

SRC = str(Path(fd.__file__).resolve().parent.parent)


@parametrize_with_checks([FastDenseRegressor(), FastDenseRegressor(dtype="float64")])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_check_estimator_passes_as_a_whole():
    check_estimator(FastDenseRegressor())


def data(n=60, d=4, k=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, k or 1))
    y = np.tanh(X @ W)
    return X, (y[:, 0] if k is None else y)


def small(**params):
    return FastDenseRegressor(**{"hidden_layer_sizes": (8,), "epochs": 5, "random_state": 0,
                                 **params})


def test_import_fastdense_does_not_import_sklearn():
    code = "import sys, fastdense; assert 'sklearn' not in sys.modules"
    env = dict(os.environ, PYTHONPATH=SRC)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_1d_targets_give_1d_float64_predictions():
    X, y = data()
    pred = small().fit(X, y).predict(X.astype(np.float32))
    assert pred.shape == (60,) and pred.dtype == np.float64


@pytest.mark.parametrize("k", [1, 3])
def test_2d_targets_give_2d_predictions_one_output_unit_each(k):
    X, y = data(k=k)
    est = small().fit(X, y)
    assert est.predict(X).shape == (60, k)
    assert est.n_outputs_ == k and est.model_.output_dim == k
    assert est.n_features_in_ == 4


def test_architecture_follows_the_parameters():
    X, y = data()
    est = FastDenseRegressor(hidden_layer_sizes=(7, 5), activation="linear", epochs=1,
                             dtype="float64").fit(X, y)
    assert [w.shape for w in est.model_.get_weights()] == [(4, 7), (7,), (7, 5), (5,),
                                                           (5, 1), (1,)]
    assert [layer.activation for layer in est.model_.layers] == ["linear"] * 3
    assert est.model_.dtype == np.float64
    linear = FastDenseRegressor(hidden_layer_sizes=(), epochs=1).fit(X, y)
    assert [w.shape for w in linear.model_.get_weights()] == [(4, 1), (1,)]


def test_an_int_random_state_trains_the_same_network_as_that_sequential_seed():
    X, y = data()
    est = FastDenseRegressor(hidden_layer_sizes=(8,), optimizer="sgd", learning_rate=0.05,
                             epochs=3, batch_size=16, random_state=7).fit(X, y)
    model = fd.Sequential([fd.Dense(8, activation="relu", input_dim=4), fd.Dense(1)],
                          seed=7)
    model.compile(optimizer=fd.optimizers.SGD(learning_rate=0.05), loss="mse")
    model.fit(X.astype(np.float32), y, epochs=3, batch_size=16, verbose=0)
    np.testing.assert_array_equal(est.predict(X), model.predict(X)[:, 0])


def test_random_state_none_draws_a_fresh_network_each_fit():
    X, y = data()
    est = FastDenseRegressor(hidden_layer_sizes=(8,), epochs=1)
    first = est.fit(X, y).predict(X)
    assert not np.array_equal(first, est.fit(X, y).predict(X))


def test_learning_rate_none_keeps_the_optimizers_default_and_params_reach_it():
    X, y = data()
    opt = small(optimizer="sgd", optimizer_params={"momentum": 0.9}).fit(X, y).model_.optimizer
    assert type(opt) is fd.optimizers.SGD
    assert opt.learning_rate == 0.01 and opt.momentum == 0.9
    assert small(learning_rate=0.1).fit(X, y).model_.optimizer.learning_rate == 0.1


@pytest.mark.parametrize("params", [{"hidden_layer_sizes": (0,)}, {"activation": "swish"}, {"activation": "softmax"},
                                    {"optimizer": "lbfgs"}, {"epochs": 0},
                                    {"batch_size": 0}, {"dtype": "float16"},
                                    {"optimizer_params": {"momentun": 0.9}}])
def test_bad_parameters_raise_value_error_in_fit_not_in_init(params):
    est = small(**params)
    X, y = data()
    with pytest.raises(ValueError):
        est.fit(X, y)


def test_partial_fit_runs_one_epoch_and_continues_where_it_stopped():
    X, y = data()
    est = small()
    for _ in range(3):
        est.partial_fit(X, y)
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3
    # three single epochs are exactly one fit of three epochs
    np.testing.assert_array_equal(est.predict(X), small(epochs=3).fit(X, y).predict(X))


def test_partial_fit_refuses_another_target_shape():
    X, y = data()
    est = small().partial_fit(X, y)
    with pytest.raises(ValueError, match="output"):
        est.partial_fit(X, np.column_stack([y, y]))


def test_fit_starts_over_after_partial_fit():
    X, y = data()
    est = small().partial_fit(X, y).partial_fit(X, y)
    est.fit(X, y)
    assert est.n_iter_ == 5
    np.testing.assert_array_equal(est.predict(X), small().fit(X, y).predict(X))


def test_pickle_keeps_predictions_and_training_resumes_identically():
    X, y = data()
    est = small(optimizer="adam").fit(X, y)
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))
    # the optimizer's moments and the shuffling generator travel with it
    est.partial_fit(X, y)
    copy.partial_fit(X, y)
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))
    assert copy.model_.optimizer.iterations == est.model_.optimizer.iterations


def test_get_params_set_params_and_clone():
    est = small(optimizer_params={"beta_1": 0.8})
    assert est.get_params()["hidden_layer_sizes"] == (8,)
    est.set_params(epochs=2, optimizer="rmsprop")
    assert est.epochs == 2 and est.optimizer == "rmsprop"
    twin = clone(est)
    assert twin.get_params() == est.get_params() and not hasattr(twin, "model_")


def test_works_inside_a_pipeline_and_cross_validation():
    from fastdense.datasets import load_diabetes

    X, y = load_diabetes()
    y = (y - y.mean()) / y.std()
    pipe = make_pipeline(StandardScaler(), FastDenseRegressor(hidden_layer_sizes=(16,),
                                                              epochs=50, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.35         # linear regression reaches about 0.49 here
