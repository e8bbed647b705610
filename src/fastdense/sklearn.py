"""A scikit-learn regressor around `fastdense.Sequential`: ``FastDenseRegressor``.

Requires scikit-learn (``pip install "fastdense[sklearn]"``); ``import fastdense`` alone
never imports it. The estimator follows scikit-learn's conventions: ``__init__`` only
stores its parameters, everything is validated in ``fit``/``partial_fit``, fitted state
lives in attributes ending in ``_``, and it passes
``sklearn.utils.estimator_checks.check_estimator`` (see tests/test_sklearn.py). It
pickles through `Sequential`'s own pickling (the checked `.npz` bytes of `model.save`).

What does not depend on the targets lives in `_FastDenseEstimator`: the hyper-parameters
and their checks, the network (hidden Dense layers, then an output layer), the optimizer,
the seed and the training loop.

Tags: multi-output (from ``MultiOutputMixin``), nothing else. In particular no
``poor_score`` and no expected failures: every check passes with ``dtype="float32"`` (the
default) and ``"float64"`` alike.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import optimizers as _optimizers
from .layers import ACTIVATIONS, Dense
from .models import Sequential

try:                                    # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:                     # scikit-learn 1.3 - 1.5: the private method
    def _sk_validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

__all__ = ["FastDenseRegressor"]

_SEED_BOUND = 2**31 - 1

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
    """What does not depend on the targets: the hyper-parameters and their checks,
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

