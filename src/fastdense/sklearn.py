"""scikit-learn estimators around `fastdense.Sequential`: ``FastDenseRegressor`` and
``FastDenseClassifier``.

Requires scikit-learn (``pip install "fastdense[sklearn]"``); ``import fastdense`` alone
never imports it. The estimators follow scikit-learn's conventions: ``__init__`` only
stores its parameters, everything is validated in ``fit``/``partial_fit``, fitted state
lives in attributes ending in ``_``, and both pass
``sklearn.utils.estimator_checks.check_estimator`` (see tests/test_sklearn.py). They
pickle through `Sequential`'s own pickling (the checked `.npz` bytes of `model.save`).

The two share their hyper-parameters, their checks, the network they build (hidden
Dense layers, then an output layer) and the training loop (`_FastDenseEstimator`); they
differ in the output layer and loss, and in how targets are encoded and predictions
decoded.

Tags. The regressor: multi-output (from ``MultiOutputMixin``), nothing else, no expected
failure. The classifier: multilabel (a 2-D 0/1 indicator ``y``), as ``MLPClassifier``;
one check is an expected failure, ``check_sample_weight_equivalence_on_dense_data``
(``_CLASSIFIER_EXPECTED_FAILED_CHECKS`` says why). Every other check passes with
``dtype="float32"`` (the default) and ``"float64"`` alike.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin, MultiOutputMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target, \
    unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d

from . import _fitdata
from . import optimizers as _optimizers
from .layers import ACTIVATIONS, Dense
from .models import Sequential

try:                                    # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:                     # scikit-learn 1.3 - 1.5: the private method
    def _sk_validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

__all__ = ["FastDenseClassifier", "FastDenseRegressor"]

_SEED_BOUND = 2**31 - 1

# The estimator checks FastDenseClassifier fails by design, with the reason (given to
# check_estimator / parametrize_with_checks as expected_failed_checks; scikit-learn < 1.6
# reads them from the _xfail_checks tag).
_CLASSIFIER_EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data":
        "the loss weighs each batch as Keras does, Σᵢ wᵢ·lᵢ / n over the batch's n samples "
        "(not over Σᵢ wᵢ), and training runs in shuffled minibatches: an integer weight "
        "is not the same as repeating the sample, nor a zero weight as dropping it",
    "check_sample_weights_invariance":      # its name before scikit-learn 1.6
        "a zero weight is not the same as dropping the sample (see above)",
}

_PARAMETERS = """\
    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Widths of the hidden layers; ``()`` gives a linear model.
    activation : {"relu", "linear", "tanh", "sigmoid", "leaky_relu", "elu", "softplus", "gelu"}, default="relu"
        The hidden layers' activation.
    optimizer : {"adam", "sgd", "rmsprop", "adamw", "adagrad"}, default="adam"
        The update rule (`fastdense.optimizers`).
    learning_rate : float or None, default=None
        The optimizer's learning rate; None means that optimizer's default (0.001 for
        Adam, 0.01 for SGD, as in Keras).
    optimizer_params : dict or None, default=None
        Further keyword arguments of the optimizer, e.g. ``{"momentum": 0.9}`` for SGD or
        ``{"beta_2": 0.99, "clipnorm": 1.0}`` for Adam.
    epochs : int, default=200
        Passes over the data made by ``fit`` (``partial_fit`` makes one).
    batch_size : int, default=32
        Samples per update (capped at the number of samples).
    shuffle : bool, default=True
        Reshuffle the samples before every epoch.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initial weights and the shuffles. An int is used as the model's seed
        directly, so ``random_state=0`` trains the same network as
        ``fd.Sequential(..., seed=0)``.
    dtype : {"float32", "float64"}, default="float32"
        The precision of the weights and of all training arithmetic.
    verbose : int, default=0
        1 prints Keras's one line per epoch.
"""


def _with_parameters(cls):
    """Put the shared Parameters section where a docstring says {parameters}."""
    if cls.__doc__:                     # (None under python -OO)
        cls.__doc__ = cls.__doc__.replace("    {parameters}\n", _PARAMETERS + "\n")
    return cls


class _FastDenseEstimator(BaseEstimator):
    """What the regressor and the classifier share: the hyper-parameters and their checks,
    the network (``hidden_layer_sizes`` Dense layers of ``activation``, then the output
    layer a subclass chooses), the optimizer, the seed, the training loop, and the
    validation of X at prediction time."""

    def __init__(self, hidden_layer_sizes: Sequence[int] = (100,),
                 activation: str | None = "relu",
                 optimizer: str = "adam",
                 learning_rate: float | None = None,
                 optimizer_params: dict[str, Any] | None = None, epochs: int = 200,
                 batch_size: int = 32, shuffle: bool = True,
                 random_state: int | np.random.RandomState | None = None,
                 dtype: npt.DTypeLike = "float32", verbose: int = 0) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.optimizer_params = optimizer_params
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose

    def _check_params(self) -> None:
        sizes: list[Any]
        if isinstance(self.hidden_layer_sizes, numbers.Integral):
            sizes = [self.hidden_layer_sizes]
        else:
            try:
                sizes = list(self.hidden_layer_sizes)
            except TypeError:
                raise ValueError(f"hidden_layer_sizes must be an int or a sequence of ints, "
                                 f"got {self.hidden_layer_sizes!r}") from None
        if any(isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral)
               or s < 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must hold positive integers, "
                             f"got {self.hidden_layer_sizes!r}")
        hidden = tuple(a for a in ACTIVATIONS if a != "softmax")
        if self.activation not in hidden:
            raise ValueError(f"activation must be one of {hidden}, got {self.activation!r}")
        if not isinstance(self.optimizer, str) \
                or self.optimizer.lower() not in _optimizers._BY_NAME:
            raise ValueError(f"optimizer must be one of {sorted(_optimizers._BY_NAME)}, "
                             f"got {self.optimizer!r}")
        if self.optimizer_params is not None and not isinstance(self.optimizer_params, dict):
            raise ValueError(f"optimizer_params must be a dict or None, "
                             f"got {self.optimizer_params!r}")
        for name, minimum in (("epochs", 1), ("batch_size", 1), ("verbose", 0)):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
                    or value < minimum:
                raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
        if not isinstance(self.shuffle, (bool, np.bool_)):
            raise ValueError(f"shuffle must be True or False, got {self.shuffle!r}")
        if self.dtype not in ("float32", "float64", np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        self._sizes = [int(s) for s in sizes]

    def _x_dtype(self, reset: bool) -> np.dtype:
        """The dtype X is converted to: the parameter's on a new network, else the one the
        network was built with."""
        return np.dtype(self.dtype) if reset else self.model_.dtype

    def _validated_x(self, X: Any) -> np.ndarray:
        """X for prediction: fitted, the features seen in fit, the network's dtype."""
        check_is_fitted(self, "model_")
        return _sk_validate_data(self, X, reset=False, dtype=self.model_.dtype, order="C")

    def _seed(self) -> int:
        rs = self.random_state
        if isinstance(rs, numbers.Integral) and not isinstance(rs, (bool, np.bool_)):
            return int(rs)
        if isinstance(rs, np.random.Generator):
            return int(rs.integers(_SEED_BOUND))
        return int(check_random_state(rs).randint(_SEED_BOUND))

    def _build(self, n_features: int, units: int, output_activation: str | None,
               loss: str) -> None:
        """A new network and optimizer: the hidden layers, then `units` outputs of
        `output_activation`, compiled with `loss`; resets the training record."""
        sizes = self._sizes + [units]
        activations = [self.activation] * len(self._sizes) + [output_activation]
        layers = [Dense(u, activation=a, input_dim=n_features if i == 0 else None)
                  for i, (u, a) in enumerate(zip(sizes, activations))]
        model = Sequential(layers, dtype=self.dtype, seed=self._seed())
        model.compile(optimizer=self._make_optimizer(), loss=loss)
        self.model_ = model
        self.n_iter_ = 0
        self.loss_curve_: list[float] = []

    def _make_optimizer(self) -> _optimizers.Optimizer:
        kwargs = dict(self.optimizer_params or {})
        if self.learning_rate is not None:
            kwargs["learning_rate"] = self.learning_rate
        cls = _optimizers._BY_NAME[self.optimizer.lower()]
        try:
            return cls(**kwargs)
        except TypeError as exc:        # an unknown keyword: a parameter error, not a type
            raise ValueError(f"optimizer_params for {self.optimizer!r}: {exc}") from exc

    def _train(self, X: np.ndarray, targets: np.ndarray, epochs: int,
               sample_weight: np.ndarray | None = None) -> None:
        history = self.model_.fit(X, targets, epochs=epochs, batch_size=self.batch_size,
                                  shuffle=bool(self.shuffle), verbose=self.verbose,
                                  sample_weight=sample_weight)
        self.loss_curve_.extend(history.history["loss"])
        self.n_iter_ += epochs


@_with_parameters
class FastDenseRegressor(MultiOutputMixin, RegressorMixin, _FastDenseEstimator):
    """A dense network regressor trained with MSE by fastdense's compiled kernels.

    The network is ``hidden_layer_sizes`` Dense layers with ``activation``, then one linear
    output unit per target. 1-D ``y`` gives 1-D predictions; 2-D ``y`` (multi-output) gives
    2-D predictions. Training runs in ``dtype`` (float32 by default); predictions are
    returned as float64, as scikit-learn regressors do.

    {parameters}
    Attributes
    ----------
    model_ : fastdense.Sequential
        The trained network (compiled; its optimizer holds the training state).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` had string column names.
    n_outputs_ : int
        Number of targets.
    n_iter_ : int
        Epochs trained since the last ``fit`` (``partial_fit`` adds one each).
    loss_curve_ : list of float
        The training loss (MSE) of every epoch, in order.
    """

    # ------------------------------------------------------------------ training
    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> FastDenseRegressor:
        """Train a new network for ``epochs`` epochs on (X, y). Returns self."""
        self._check_params()
        X, y = self._validate_xy(X, y, reset=True)
        self._start(X, y)
        self._train(X, y, self.epochs)
        return self

    def partial_fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> FastDenseRegressor:
        """Train one epoch on (X, y), continuing from the current network (a new one is
        built on the first call). Returns self."""
        first = not hasattr(self, "model_")
        if first:
            self._check_params()
        X, y = self._validate_xy(X, y, reset=first)
        if first:
            self._start(X, y)
        else:
            outputs = 1 if y.ndim == 1 else y.shape[1]
            if outputs != self.n_outputs_ or (y.ndim == 1) != self._y_1d:
                raise ValueError(
                    f"y has shape {y.shape}, but this estimator was fitted with "
                    f"{self.n_outputs_} output(s) as {'1-D' if self._y_1d else '2-D'} y")
        self._train(X, y, 1)
        return self

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """Predictions for the rows of X, float64: shape (n,) for 1-D training targets,
        (n, n_outputs_) for 2-D ones."""
        X = self._validated_x(X)
        out = self.model_.predict(X).astype(np.float64)
        return out[:, 0] if self._y_1d else out

    # ------------------------------------------------------------------ helpers
    def _validate_xy(self, X: Any, y: Any,
                     reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = _sk_validate_data(self, X, y, reset=reset, dtype=self._x_dtype(reset),
                                 order="C", multi_output=True, y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 0:
            raise ValueError("y has no columns: at least one target is needed")
        return X, y

    def _start(self, X: np.ndarray, y: np.ndarray) -> None:
        """A new network and optimizer for (X, y); resets the fitted attributes."""
        self._y_1d = y.ndim == 1
        self.n_outputs_ = 1 if self._y_1d else int(y.shape[1])
        self._build(X.shape[1], self.n_outputs_, None, "mse")


@_with_parameters
class FastDenseClassifier(ClassifierMixin, _FastDenseEstimator):
    """A dense network classifier trained with cross-entropy by fastdense's compiled
    kernels.

    The network is ``hidden_layer_sizes`` Dense layers with ``activation``, then an output
    layer chosen from the targets, as ``MLPClassifier`` does:

    - two classes (binary): one sigmoid unit, binary cross-entropy, the unit's output
      being the probability of ``classes_[1]``;
    - three or more classes (multiclass): one softmax unit per class, sparse categorical
      cross-entropy on the class indices (positions in ``classes_``);
    - a 2-D 0/1 indicator ``y`` (multilabel): one sigmoid unit per column, binary
      cross-entropy; ``classes_`` is ``arange(n_labels)`` and ``predict`` returns a 0/1
      matrix of ``y``'s dtype.

    Labels may be of any type scikit-learn's classification targets take (ints, strings,
    bools, whole-valued floats; non-integral floats are a regression target and rejected
    as "continuous"). ``classes_`` holds them sorted (``unique_labels``); ``predict``
    returns them.

    Training runs in ``dtype`` (float32 by default); X is converted to it and
    ``predict_proba`` / ``predict_log_proba`` return it, ``predict_proba`` being the
    network's output (``model_.predict``) except in the binary case, where it is the two
    columns ``[1 − p, p]``.

    Sample weights enter the loss as in Keras (``Σᵢ wᵢ·lᵢ / n`` over each batch of n
    samples, not over Σᵢ wᵢ), so training with weights equals ``model_.fit(...,
    sample_weight=)``; in minibatches with shuffling they are not equivalent to repeating
    or dropping rows.

    {parameters}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (for multilabel targets, the column indices).
    model_ : fastdense.Sequential
        The trained network (compiled; its optimizer holds the training state).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` had string column names.
    n_outputs_ : int
        Number of output units: 1 (binary), n_classes (multiclass), n_labels
        (multilabel).
    out_activation_ : {"sigmoid", "softmax"}
        The output layer's activation.
    n_iter_ : int
        Epochs trained since the last ``fit`` (``partial_fit`` adds one each).
    loss_curve_ : list of float
        The training loss (cross-entropy, weighted when sample weights are given) of
        every epoch, in order.
    """

    # ------------------------------------------------------------------ training
    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike,
            sample_weight: npt.ArrayLike | None = None) -> FastDenseClassifier:
        """Train a new network for ``epochs`` epochs on (X, y), each sample weighted by
        ``sample_weight`` (None: all 1). Returns self."""
        self._check_params()
        X, y = self._validate_xy(X, y, reset=True)
        multilabel = self._is_multilabel(y)
        classes = np.arange(y.shape[1]) if multilabel else _labels(y)
        _require_two(classes, "y")
        targets = _encode(y, classes, multilabel, X.dtype)
        sw = self._sample_weight(sample_weight, X)
        self._start(X, classes, multilabel, y.dtype)
        self._train(X, targets, self.epochs, sw)
        return self

    def partial_fit(self, X: npt.ArrayLike, y: npt.ArrayLike,
                    classes: npt.ArrayLike | None = None,
                    sample_weight: npt.ArrayLike | None = None) -> FastDenseClassifier:
        """Train one epoch on (X, y), continuing from the current network.

        The first call (before any ``fit``) builds the network and must be given
        ``classes``, every label the estimator will see (e.g. ``np.unique(y_all)``); its
        ``y`` need not hold them all. Multilabel targets need no ``classes`` (their
        classes are the columns; if given, they must be ``arange(n_labels)``). Later calls
        may omit ``classes``; if given, they must equal ``classes_``. Returns self."""
        first = not hasattr(self, "model_")
        if first:
            self._check_params()
        X, y = self._validate_xy(X, y, reset=first)
        multilabel = self._is_multilabel(y)
        if first:
            if multilabel:
                labels = np.arange(y.shape[1])
                if classes is not None and not np.array_equal(_labels(classes), labels):
                    raise ValueError(
                        f"for a multilabel y the classes are its column indices "
                        f"{labels.tolist()}; got classes={classes!r}")
            elif classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit "
                                 "(every label the estimator will see, e.g. "
                                 "np.unique(y_all))")
            else:
                labels = _labels(classes, "classes")
            _require_two(labels, "classes")
            targets = _encode(y, labels, multilabel, X.dtype)
        else:
            if multilabel != self._multilabel or (multilabel and
                                                  y.shape[1] != self.n_outputs_):
                given = f"a multilabel y of {y.shape[1]} columns" if multilabel \
                    else "one label per sample"
                fitted = f"a multilabel y of {self.n_outputs_} columns" \
                    if self._multilabel else "one label per sample"
                raise ValueError(f"y is {given}, but this estimator was fitted on {fitted}")
            if classes is not None and not np.array_equal(_labels(classes, "classes"),
                                                          self.classes_):
                raise ValueError(f"classes={classes!r} differs from classes_ "
                                 f"{self.classes_.tolist()} of the earlier fit")
            targets = _encode(y, self.classes_, multilabel, X.dtype)
        sw = self._sample_weight(sample_weight, X)
        if first:
            self._start(X, labels, multilabel, y.dtype)
        self._train(X, targets, 1, sw)
        return self

    # ------------------------------------------------------------------ inference
    def predict_proba(self, X: npt.ArrayLike) -> np.ndarray:
        """Probabilities, shape (n, n_classes) in the network's dtype: of each class in
        ``classes_`` order (rows sum to 1), or for multilabel targets of each label
        (independently)."""
        X = self._validated_x(X)
        out = self.model_.predict(X)
        if self.n_outputs_ == 1:            # binary: p is the probability of classes_[1]
            p = out[:, 0]
            return np.column_stack([1 - p, p])
        return out

    def predict_log_proba(self, X: npt.ArrayLike) -> np.ndarray:
        """``log(predict_proba(X))``: −inf where a probability is 0 in the network's
        dtype."""
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """The most probable class of each row, as labels of ``classes_`` (the first on a
        tie, as ``argmax(predict_proba(X))``); for multilabel targets the 0/1 matrix of
        probabilities > 0.5, in the dtype of the ``y`` trained on."""
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba > 0.5).astype(self._y_dtype)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _more_tags(self) -> dict[str, Any]:     # scikit-learn < 1.6
        return {"multilabel": True, "_xfail_checks": _CLASSIFIER_EXPECTED_FAILED_CHECKS}

    # ------------------------------------------------------------------ helpers
    def _validate_xy(self, X: Any, y: Any,
                     reset: bool) -> tuple[np.ndarray, np.ndarray]:
        """X of the network's dtype; y as 1-D labels or a 2-D indicator matrix (a column
        vector becomes 1-D with scikit-learn's DataConversionWarning)."""
        X, y = _sk_validate_data(self, X, y, reset=reset, dtype=self._x_dtype(reset),
                                 order="C", multi_output=True)
        if hasattr(y, "toarray"):          # a sparse indicator matrix
            y = y.toarray()
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim == 2 and y.shape[1] == 0:
            raise ValueError("y has no columns: at least one label is needed")
        return X, y

    @staticmethod
    def _is_multilabel(y: np.ndarray) -> bool:
        """True for a 0/1 indicator matrix, False for one label per sample; ValueError for
        a regression or any other target."""
        kind = _target_type(y)
        if kind == "multiclass-multioutput" or (y.ndim == 2 and kind != "multilabel-indicator"):
            raise ValueError(f"y is a 2-D target of type {kind!r}: FastDenseClassifier takes "
                             f"one label per sample or a 0/1 indicator matrix (multilabel)")
        check_classification_targets(y)     # "Unknown label type: continuous", …
        if kind != "multilabel-indicator":
            return False
        if not np.all((y == 0) | (y == 1)):
            raise ValueError(f"a multilabel y must be a 0/1 indicator matrix, got values "
                             f"{np.unique(y).tolist()}")
        return True

    @staticmethod
    def _sample_weight(sample_weight: Any, X: np.ndarray) -> np.ndarray | None:
        """The weights checked as the model checks them (one per row of X, finite, ≥ 0,
        X's dtype), and not all zero."""
        if sample_weight is None:
            return None
        sw = _fitdata.as_sample_weight(sample_weight, X.shape[0], X.dtype)
        if not sw.any():
            raise ValueError("sample_weight is zero for every sample: nothing to train on")
        return sw

    def _start(self, X: np.ndarray, classes: np.ndarray, multilabel: bool,
               y_dtype: np.dtype) -> None:
        """A new network and optimizer for these classes; resets the fitted attributes."""
        self.classes_ = classes
        self._multilabel = multilabel
        self._y_dtype = y_dtype
        if multilabel:
            self.n_outputs_, self.out_activation_ = len(classes), "sigmoid"
            loss = "binary_crossentropy"
        elif len(classes) == 2:
            self.n_outputs_, self.out_activation_ = 1, "sigmoid"
            loss = "binary_crossentropy"
        else:
            self.n_outputs_, self.out_activation_ = len(classes), "softmax"
            loss = "sparse_categorical_crossentropy"
        self._build(X.shape[1], self.n_outputs_, self.out_activation_, loss)



def _encode(y: np.ndarray, classes: np.ndarray, multilabel: bool,
            dtype: np.dtype) -> np.ndarray:
    """The targets the loss takes: the 0/1 matrix (multilabel), else the index of each
    label in `classes`, as a (n, 1) 0/1 column for two classes (binary cross-entropy) or
    (n,) class indices for more (sparse categorical cross-entropy)."""
    if multilabel:
        return y.astype(dtype)
    unseen = _unseen(_labels(y), classes)
    if unseen.size:
        raise ValueError(f"y has classes {unseen.tolist()} not in classes_ "
                         f"{classes.tolist()}")
    index = np.searchsorted(classes, y)
    if len(classes) == 2:
        return index.astype(dtype).reshape(-1, 1)
    return index


def _target_type(y: Any, name: str = "y") -> str:
    try:
        return str(type_of_target(y, input_name=name))
    except TypeError as exc:        # labels that cannot be sorted together: 'a' and 1, None
        raise ValueError(f"{name} mixes labels that cannot be ordered together ({exc}): use "
                         f"labels of one type") from exc


def _labels(y: Any, name: str = "y") -> np.ndarray:
    """The sorted distinct labels of y (scikit-learn's unique_labels)."""
    _target_type(y, name)
    try:
        return np.asarray(unique_labels(y))
    except TypeError as exc:
        raise ValueError(f"{name} mixes labels that cannot be ordered together ({exc}): use "
                         f"labels of one type") from exc


def _unseen(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The labels that are not among classes."""
    try:
        return np.setdiff1d(labels, classes)
    except TypeError:               # e.g. strings against numbers: none of them match
        return labels


def _require_two(classes: np.ndarray, name: str) -> None:
    if len(classes) < 2:
        raise ValueError(f"FastDenseClassifier needs samples of at least 2 classes, but "
                         f"{name} holds only one class: {classes.tolist()[0]!r}"
                         if len(classes) else f"{name} holds no class")
