"""fastdense.sklearn.FastDenseRegressor and FastDenseClassifier: scikit-learn's estimator
checks and our contract."""
import inspect
import os
import pickle
import warnings
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

from sklearn.exceptions import DataConversionWarning                     # noqa: E402
from fastdense.sklearn import FastDenseClassifier, FastDenseRegressor   # noqa: E402
from fastdense.sklearn import _CLASSIFIER_EXPECTED_FAILED_CHECKS        # noqa: E402

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


# ---------------------------------------------------------------------- the classifier
# scikit-learn >= 1.6 takes the expected failures as an argument (before, the estimator's
# _xfail_checks tag names them)
XFAIL = ({"expected_failed_checks": lambda est: _CLASSIFIER_EXPECTED_FAILED_CHECKS}
         if "expected_failed_checks" in inspect.signature(parametrize_with_checks).parameters
         else {})


@parametrize_with_checks([FastDenseClassifier(), FastDenseClassifier(dtype="float64")],
                         **XFAIL)
def test_scikit_learn_estimator_checks_on_the_classifier(estimator, check):
    check(estimator)


@pytest.mark.skipif(not XFAIL, reason="check_estimator reports results from scikit-learn 1.6")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_check_estimator_on_the_classifier_fails_only_the_expected_check():
    results = check_estimator(FastDenseClassifier(), on_fail=None,
                              expected_failed_checks=_CLASSIFIER_EXPECTED_FAILED_CHECKS)
    failed = {r["check_name"]: r["exception"] for r in results if r["status"] == "failed"}
    assert not failed
    xfailed = {r["check_name"] for r in results if r["status"] == "xfail"}
    # the one check the weighting's design fails does fail (the reason stays true)
    assert xfailed == {"check_sample_weight_equivalence_on_dense_data"}
    assert sum(r["status"] == "passed" for r in results) > 50


def clf(**params):
    return FastDenseClassifier(**{"hidden_layer_sizes": (8,), "epochs": 30,
                                  "learning_rate": 0.01, "random_state": 0, **params})


def blobs(n=60, d=4, k=3, seed=0):
    """k well separated classes 0..k-1 (y int64)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = 3 * rng.standard_normal((k, d))
    return centres[y] + rng.standard_normal((n, d)), y


@pytest.fixture(scope="module")
def digits():
    from fastdense.datasets import load_digits, standardize, train_test_split

    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=0)
    X_train, X_test = standardize(X_train, X_test)
    return X_train, X_test, y_train, y_test


def digits_labels(y):
    """Three labels of each digit: odd, ≥ 5, prime (a multilabel indicator matrix)."""
    return np.column_stack([y % 2, y >= 5, np.isin(y, [2, 3, 5, 7])]).astype(np.int64)


def test_multiclass_digits_held_out_accuracy(digits):
    X_train, X_test, y_train, y_test = digits
    est = FastDenseClassifier(hidden_layer_sizes=(32,), epochs=20, random_state=0)
    est.fit(X_train, y_train)
    np.testing.assert_array_equal(est.classes_, np.arange(10))
    assert est.out_activation_ == "softmax" and est.n_outputs_ == 10
    assert est.model_.loss == "sparse_categorical_crossentropy"
    assert est.score(X_test, y_test) >= 0.9
    assert len(est.loss_curve_) == 20 and est.loss_curve_[-1] < est.loss_curve_[0]


def test_binary_digits_held_out_accuracy_with_one_sigmoid_unit(digits):
    X_train, X_test, y_train, y_test = digits
    est = FastDenseClassifier(hidden_layer_sizes=(32,), epochs=20, random_state=0)
    est.fit(X_train, y_train >= 5)
    np.testing.assert_array_equal(est.classes_, [False, True])
    assert est.out_activation_ == "sigmoid" and est.n_outputs_ == 1
    assert est.model_.output_dim == 1 and est.model_.layers[-1].activation == "sigmoid"
    assert est.model_.loss == "binary_crossentropy"
    assert est.predict(X_test).dtype == bool
    assert est.score(X_test, y_test >= 5) >= 0.9


def test_multilabel_digits_one_sigmoid_per_label(digits):
    X_train, X_test, y_train, y_test = digits
    Y_train, Y_test = digits_labels(y_train), digits_labels(y_test)
    est = FastDenseClassifier(hidden_layer_sizes=(32,), epochs=20, random_state=0)
    est.fit(X_train, Y_train)
    # classes_ as MLPClassifier's: the column indices
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    assert est.out_activation_ == "sigmoid" and est.n_outputs_ == 3
    assert est.model_.loss == "binary_crossentropy"
    pred = est.predict(X_test)
    assert pred.shape == Y_test.shape and pred.dtype == Y_test.dtype
    assert set(np.unique(pred)) <= {0, 1}
    assert (pred == Y_test).mean() >= 0.9          # each label
    assert est.score(X_test, Y_test) >= 0.8        # all three right (subset accuracy)
    proba = est.predict_proba(X_test)
    np.testing.assert_array_equal(proba, est.model_.predict(X_test.astype(np.float32)))
    np.testing.assert_array_equal(pred, proba > 0.5)
    # a boolean indicator matrix gives boolean predictions of the same network
    as_bool = FastDenseClassifier(hidden_layer_sizes=(32,), epochs=20, random_state=0)
    pred_bool = as_bool.fit(X_train, Y_train.astype(bool)).predict(X_test)
    assert pred_bool.dtype == bool
    np.testing.assert_array_equal(pred_bool, pred.astype(bool))


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog", "emu"]),
    np.array(["b", "a"], dtype=object),
    np.array([10, -3, 7]),
    np.array([2.0, 0.5 + 0.5]),
    np.array([True, False]),
])
def test_any_label_type_round_trips_and_encodes_as_its_sorted_index(labels):
    X, idx = blobs(k=len(labels))
    y = labels[idx]
    est = clf().fit(X, y)
    np.testing.assert_array_equal(est.classes_, np.sort(labels))
    pred = est.predict(X)
    assert pred.dtype == est.classes_.dtype and set(pred) <= set(labels)
    assert est.score(X, y) > 0.9
    # the same network as training on the positions in classes_
    position = np.searchsorted(np.sort(labels), y)
    by_index = clf().fit(X, position)
    np.testing.assert_array_equal(est.predict_proba(X), by_index.predict_proba(X))
    np.testing.assert_array_equal(pred, est.classes_[by_index.predict(X)])


@pytest.mark.parametrize("k", [2, 3, 5])
def test_predict_proba_rows_sum_to_one_and_argmax_is_predict(k):
    X, y = blobs(k=k)
    est = clf().fit(X, y)
    proba = est.predict_proba(X)
    assert proba.shape == (60, k) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_array_equal(est.predict(X), est.classes_[np.argmax(proba, axis=1)])
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(est.predict_log_proba(X), np.log(proba))


def test_predict_proba_is_the_networks_output_binary_as_two_columns():
    X, y = blobs(k=3)
    est = clf().fit(X, y)
    X32 = X.astype(np.float32)
    np.testing.assert_array_equal(est.predict_proba(X), est.model_.predict(X32))
    binary = clf().fit(X, y == 1)
    p = binary.model_.predict(X32)[:, 0]
    proba = binary.predict_proba(X)
    np.testing.assert_array_equal(proba[:, 1], p)
    np.testing.assert_array_equal(proba[:, 0], np.float32(1) - p)


@pytest.mark.parametrize("k", [2, 3])
def test_an_int_random_state_trains_the_same_network_as_that_sequential_seed(k):
    X, y = blobs(k=k)
    sw = np.random.default_rng(1).uniform(0.5, 2, len(y))
    est = FastDenseClassifier(hidden_layer_sizes=(8,), optimizer="sgd", learning_rate=0.05,
                              epochs=3, batch_size=16, random_state=7)
    est.fit(X, y, sample_weight=sw)
    out = fd.Dense(1, activation="sigmoid") if k == 2 else fd.Dense(k, activation="softmax")
    model = fd.Sequential([fd.Dense(8, activation="relu", input_dim=4), out], seed=7)
    model.compile(optimizer=fd.optimizers.SGD(learning_rate=0.05),
                  loss="binary_crossentropy" if k == 2 else "sparse_categorical_crossentropy")
    model.fit(X.astype(np.float32), y, epochs=3, batch_size=16, sample_weight=sw, verbose=0)
    np.testing.assert_array_equal(est.model_.predict(X), model.predict(X))
    assert est.loss_curve_ == model.history.history["loss"]


def test_float32_by_default_float64_on_request():
    X, y = blobs()
    est = clf().fit(X, y)
    assert est.model_.dtype == np.float32
    assert est.predict_proba(X).dtype == est.predict_log_proba(X).dtype == np.float32
    est64 = clf(dtype="float64").fit(X.astype(np.float32), y)
    assert est64.model_.dtype == np.float64 and est64.predict_proba(X).dtype == np.float64


def test_classifier_pickle_keeps_predictions_and_training_resumes_identically():
    X, labels = blobs(k=3)
    y = np.array(["a", "b", "c"])[labels]
    est = clf(optimizer="adam").fit(X, y)
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.classes_, est.classes_)
    np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))
    est.partial_fit(X, y)
    copy.partial_fit(X, y)
    np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    assert copy.model_.optimizer.iterations == est.model_.optimizer.iterations


def test_partial_fit_needs_classes_first_and_runs_one_epoch_each():
    X, y = blobs(k=3)
    est = clf()
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, y)
    assert not hasattr(est, "model_")
    # the first batch need not hold every class
    est.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])
    assert est.n_outputs_ == 3 and est.n_iter_ == 1
    est.partial_fit(X, y)
    est.partial_fit(X, y, classes=np.array([2, 1, 0]))     # the same set, in any order
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3
    # single epochs are exactly one fit of as many epochs
    twin = clf()
    for _ in range(3):
        twin.partial_fit(X, y, classes=[0, 1, 2])
    np.testing.assert_array_equal(twin.predict_proba(X), clf(epochs=3).fit(X, y).predict_proba(X))


def test_partial_fit_continues_a_fit_and_refuses_other_classes():
    X, y = blobs(k=3)
    est = clf().fit(X, y)
    est.partial_fit(X, y)
    assert est.n_iter_ == 31
    with pytest.raises(ValueError, match=r"not in classes_"):
        est.partial_fit(X, np.where(y == 2, 3, y))
    with pytest.raises(ValueError, match="differs from classes_"):
        est.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="multilabel"):
        est.partial_fit(X, digits_labels(y))
    with pytest.raises(ValueError, match="not in classes_"):      # strings against ints
        est.partial_fit(X, np.array(["a", "b", "c"])[y])
    ml = clf().partial_fit(X, digits_labels(y))                  # multilabel: no classes
    np.testing.assert_array_equal(ml.classes_, [0, 1, 2])
    with pytest.raises(ValueError, match="3 columns"):
        ml.partial_fit(X, digits_labels(y)[:, :2])
    with pytest.raises(ValueError, match="one label per sample"):
        clf().partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X, digits_labels(y))
    with pytest.raises(ValueError, match="column indices"):
        clf().partial_fit(X, digits_labels(y), classes=[0, 1])


def test_a_failed_first_partial_fit_leaves_the_estimator_unfitted():
    X, y = blobs(k=3)
    est = clf()
    with pytest.raises(ValueError, match="not in classes_"):
        est.partial_fit(X, y, classes=[0, 1])
    assert not hasattr(est, "model_") and not hasattr(est, "classes_")


def test_fit_starts_over_after_partial_fit_with_other_classes():
    X, y = blobs(k=3)
    est = clf().partial_fit(X, y, classes=[0, 1, 2, 3])
    est.fit(X, y == 0)
    np.testing.assert_array_equal(est.classes_, [False, True])
    assert est.n_outputs_ == 1 and est.n_iter_ == 30


def test_sample_weight_of_ones_is_no_weight():
    X, y = blobs(k=3)
    np.testing.assert_array_equal(clf().fit(X, y, sample_weight=np.ones(60)).predict_proba(X),
                                  clf().fit(X, y).predict_proba(X))


def test_sample_weight_changes_the_fit():
    X, y = blobs(k=3)
    sw = np.where(y == 0, 5.0, 1.0)
    assert not np.array_equal(clf().fit(X, y, sample_weight=sw).predict_proba(X),
                              clf().fit(X, y).predict_proba(X))


@pytest.mark.parametrize("shuffle", [False, True])
def test_zero_weights_on_a_class_equal_training_without_its_rows(shuffle):
    # With one batch of all n samples and plain SGD, a step is lr·Σᵢ wᵢ ∇lᵢ / n: weighing
    # the kept k rows by n/k and the others by 0 takes exactly the steps of training on
    # the k rows alone (lr·Σ ∇lᵢ / k), up to the order of the sums.
    X, y = blobs(n=90, k=3)
    drop = y == 2
    n, k = len(y), int((~drop).sum())
    params = dict(hidden_layer_sizes=(8,), optimizer="sgd", learning_rate=0.1,
                  batch_size=1000, shuffle=shuffle, random_state=3, dtype="float64")
    weighted = FastDenseClassifier(epochs=10, **params)
    weighted.fit(X, y, sample_weight=np.where(drop, 0.0, n / k))
    without = FastDenseClassifier(**params)
    for _ in range(10):     # the same 3-class network, never shown class 2
        without.partial_fit(X[~drop], y[~drop], classes=[0, 1, 2])
    np.testing.assert_allclose(weighted.predict_proba(X), without.predict_proba(X),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(weighted.loss_curve_, without.loss_curve_, rtol=1e-12)


def test_column_vector_y_warns_and_trains_as_1d():
    X, y = blobs(k=3)
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        est = clf().fit(X, y[:, None])
    assert est.predict(X).shape == (60,)
    np.testing.assert_array_equal(est.predict_proba(X), clf().fit(X, y).predict_proba(X))


@pytest.mark.parametrize("y, match", [
    (np.ones(60), "only one class"),
    (np.array(["a"] * 60), "only one class"),
    (np.r_[np.nan, np.arange(59) % 2], "NaN"),
    (np.array(["a", "b"] * 29 + ["a", np.nan], dtype=object), "NaN"),
    (np.array(["a", "b"] * 29 + ["a", None], dtype=object), "cannot be ordered"),
    (np.array(["a", 1] * 30, dtype=object), "cannot be ordered"),
    (np.linspace(0, 1, 60), "continuous"),
    (np.arange(120).reshape(60, 2) % 3, "indicator matrix"),
    (np.arange(120).reshape(60, 2) % 2 * 2 - 1, "0/1 indicator"),
])
def test_bad_labels_raise_clear_value_errors(y, match):
    X, _ = blobs()
    with pytest.raises(ValueError, match=match):
        clf().fit(X, y)


@pytest.mark.parametrize("sw, match", [
    (np.zeros(60), "zero for every sample"),
    (-np.ones(60), "negative"),
    (np.full(60, np.nan), "NaN"),
    (np.ones(59), "one weight per sample"),
])
def test_bad_sample_weights_raise_value_errors(sw, match):
    X, y = blobs()
    est = clf()
    with pytest.raises(ValueError, match=match):
        est.fit(X, y, sample_weight=sw)
    assert not hasattr(est, "model_")


def test_partial_fit_classes_must_hold_two():
    X, y = blobs()
    with pytest.raises(ValueError, match="only one class"):
        clf().partial_fit(X, y * 0, classes=[0])


@pytest.mark.parametrize("params", [{"hidden_layer_sizes": (0,)}, {"activation": "softmax"},
                                    {"optimizer": "lbfgs"}, {"epochs": 0},
                                    {"dtype": "float16"},
                                    {"optimizer_params": {"momentun": 0.9}}])
def test_classifier_bad_parameters_raise_value_error_in_fit(params):
    est = clf(**params)
    X, y = blobs()
    with pytest.raises(ValueError):
        est.fit(X, y)
    with pytest.raises(ValueError):
        est.partial_fit(X, y, classes=[0, 1, 2])


def test_classifier_shares_the_regressors_parameters():
    assert FastDenseClassifier().get_params() == FastDenseRegressor().get_params()
    twin = clone(clf(epochs=2))
    assert twin.get_params() == clf(epochs=2).get_params() and not hasattr(twin, "model_")


def test_classifier_in_a_pipeline_and_cross_validation(digits):
    X_train, _, y_train, _ = digits
    pipe = make_pipeline(StandardScaler(), FastDenseClassifier(hidden_layer_sizes=(32,),
                                                               epochs=20, random_state=0))
    assert cross_val_score(pipe, X_train, y_train, cv=3).mean() > 0.9
