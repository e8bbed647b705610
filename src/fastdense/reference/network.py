"""The reference network: ``Sequential`` of ``Dense`` layers, MSE loss, in plain NumPy.

It is the yardstick of every speed claim, so it is written as well as NumPy allows:

* the model dtype is kept end to end: no Python float or float64 array ever meets a
  float32 buffer in a ufunc;
* all parameters live in one flat buffer, each layer's ``W`` (in, out) and ``b`` (out,)
  being views into it (layout ``W0, b0, W1, b1, ...``); the gradients live in a second flat
  buffer of the same layout, so the optimizer makes one update over one array;
* every intermediate array of a pass over ``n`` rows is allocated once per ``n`` and reused
  (``out=`` everywhere), so a training step allocates nothing but NumPy's scalars.

The math of one step on a batch ``x`` (n, d) with targets ``y`` (n, k), layer ``i`` being
``a_i = f_i(z_i)``, ``z_i = a_{i-1}·W_i + b_i``, ``a_{-1} = x``::

    loss     = Σ (ŷ − y)² / (n·k)
    δ_L      = 2 (ŷ − y) / (n·k)                 (∂loss/∂ŷ)
    δ_i     ← δ_i ⊙ [a_i > 0]                    (ReLU layers: ∂loss/∂z_i)
    ∂W_i     = a_{i-1}ᵀ · δ_i,   ∂b_i = 1ᵀ · δ_i
    δ_{i-1}  = δ_i · W_iᵀ                        (not computed for the first layer)

Measured choices (NumPy 2.4, float32, per call; 32×10 is the ``seed`` workload, 128×512 ``wide``):

* ReLU forward ``np.maximum(z, zeros, out=z)`` with a preallocated zero array:
  0.36 µs / 4.0 µs, against 0.66 µs / 20 µs with the scalar ``np.maximum(z, 0, out=z)``,
  whose scalar-broadcast loop is not vectorised;
* ReLU mask backward ``np.greater(a, 0, out=mask); np.multiply(d, mask, out=d)`` with a
  preallocated bool buffer: 1.4 µs / 12 µs; ``np.multiply(d, a > 0, out=d)`` costs the same
  plus an allocation, ``d[a <= 0] = 0`` is 1.3 µs but 196 µs at 128×512;
* the bias gradient ``np.matmul(ones, d, out=db)`` (one GEMV): 0.75 µs / 2.7 µs, against
  1.9 µs / 5.7 µs for ``np.sum(d, axis=0, out=db)``;
* the batch gather ``np.take(X, idx, axis=0, out=buf, mode="clip")``: 0.85 µs / 6.3 µs
  (X 1000×10 / 8192×784), against 1.1 µs / 17 µs with the default ``mode="raise"``.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import _validation as v
from ..callbacks import History, progress_line
from ..layers import Dense, glorot_uniform
from . import optimizers as _optimizers

__all__ = ["Sequential", "Dense"]

LOSSES = ("mse", "mean_squared_error")

# Workspaces are kept per row count; more distinct counts than this (e.g. predict on many
# sizes) evict the oldest, so memory stays bounded.
_MAX_WORKSPACES = 8


class _Workspace:
    """The buffers of passes over ``n`` rows, allocated once and reused.

    Forward: ``acts[i]`` (n, units_i) holds ``z_i`` then ``a_i`` in place; ``zeros[i]`` is
    the ReLU's other operand. Training (made on first use): ``deltas[i]`` (n, units_i),
    ``masks[i]`` (bool views of one buffer), ``ones`` (n,) for the bias gradient, ``x``/``y``
    for the gathered batch, ``scale`` = 2/(n·k) in the model dtype.
    """

    __slots__ = ("n", "acts", "zeros", "deltas", "masks", "ones", "x", "y", "scale")

    def __init__(self, n: int, units: list[int], dtype: np.dtype):
        self.n = n
        self.acts = [np.empty((n, u), dtype) for u in units]
        zeros = np.zeros(n * max(units), dtype)
        self.zeros = [zeros[:n * u].reshape(n, u) for u in units]
        self.deltas: list[np.ndarray] | None = None

    def make_training(self, n_in: int, units: list[int], dtype: np.dtype) -> None:
        n = self.n
        self.deltas = [np.empty((n, u), dtype) for u in units]
        masks = np.empty(n * max(units), np.bool_)
        self.masks = [masks[:n * u].reshape(n, u) for u in units]
        self.ones = np.ones(n, dtype)
        self.x = np.empty((n, n_in), dtype)
        self.y = np.empty((n, units[-1]), dtype)
        self.scale = dtype.type(2.0 / (n * units[-1]))


class Sequential:
    """A stack of ``Dense`` layers trained by minibatch gradient descent on the MSE loss.

    ``Sequential([Dense(10, activation="relu", input_dim=10), Dense(1)], dtype="float32",
    seed=0)``. Weights are drawn at construction: for each layer in order,
    ``glorot_uniform(rng, fan_in, fan_out, dtype)`` from ``rng = np.random.default_rng(seed)``,
    biases zero. The same ``rng`` shuffles every epoch of ``fit``
    (``order = rng.permutation(n)``), so a seed fixes the whole run.
    """

    def __init__(self, layers, *, dtype="float32", seed=None):
        self._dtype = v.float_dtype(dtype)
        self.layers = _check_layers(layers)
        self._n_in = self.layers[0].input_dim
        self._units = [layer.units for layer in self.layers]
        self._relu = [layer.activation == "relu" for layer in self.layers]
        self._rng = np.random.default_rng(seed)

        shapes = []
        fan_in = self._n_in
        for units in self._units:
            shapes += [(fan_in, units), (units,)]
            fan_in = units
        self._shapes = shapes
        size = sum(int(np.prod(s)) for s in shapes)
        self._params = np.zeros(size, self._dtype)
        self._grads = np.zeros(size, self._dtype)
        self._param_views = _views(self._params, shapes)
        self._grad_views = _views(self._grads, shapes)
        for W in self._param_views[0::2]:
            W[...] = glorot_uniform(self._rng, W.shape[0], W.shape[1], self._dtype)

        # (W, b, dW, db, relu) per layer: what the hot loops iterate over
        self._plan = [
            (self._param_views[2 * i], self._param_views[2 * i + 1],
             self._grad_views[2 * i], self._grad_views[2 * i + 1], self._relu[i])
            for i in range(len(self.layers))
        ]
        self._workspaces: dict[int, _Workspace] = {}
        self.optimizer = None
        self.loss = None

    # ---------------------------------------------------------------- description
    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    def count_params(self) -> int:
        return int(self._params.size)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of ``[W0, b0, W1, b1, ...]``."""
        return [p.copy() for p in self._param_views]

    def set_weights(self, weights) -> None:
        """Set ``[W0, b0, W1, b1, ...]``; all are checked before any is written."""
        weights = list(weights)
        if len(weights) != len(self._shapes):
            raise ValueError(
                f"expected {len(self._shapes)} arrays (W and b of {len(self.layers)} layers), "
                f"got {len(weights)}")
        checked = []
        for i, (w, shape) in enumerate(zip(weights, self._shapes)):
            arr = v.as_float_array(w, self._dtype, f"weights[{i}]")
            if arr.shape != shape:
                raise ValueError(f"weights[{i}] must have shape {shape}, got {arr.shape}")
            checked.append(arr)
        for view, arr in zip(self._param_views, checked):
            np.copyto(view, arr)

    # ---------------------------------------------------------------- training setup
    def compile(self, optimizer="sgd", loss="mse"):
        """``optimizer``: a reference optimizer instance, or its name (``"sgd"``, ...);
        ``loss``: ``"mse"`` (mean over samples and outputs)."""
        if not isinstance(loss, str) or loss.lower() not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}: the reference supports {LOSSES}")
        self.optimizer = _resolve_optimizer(optimizer)
        self.loss = "mse"
        # the optimizer updates the flat buffer at once, unless it clips per variable
        if getattr(self.optimizer, "clipnorm", None):
            self._opt_args = (self._grad_views, self._param_views)
        else:
            self._opt_args = ([self._grads], [self._params])

    def _require_compiled(self):
        if self.optimizer is None:
            raise ValueError("compile the model before training it: model.compile(...)")

    # ---------------------------------------------------------------- public passes
    def predict(self, X, batch_size=None, verbose=0) -> np.ndarray:
        """The network's outputs for ``X`` (n, d): a new (n, k) array. All rows go through
        at once; ``batch_size``/``verbose`` are accepted for Keras compatibility."""
        if batch_size is not None:
            v.count(batch_size, "batch_size", 1)
        X = v.as_inputs(X, self._n_in, self._dtype)
        out = np.empty((X.shape[0], self._units[-1]), self._dtype)
        if X.shape[0]:
            self._forward(X, self._workspace(X.shape[0]), out)
        return out

    def evaluate(self, X, y, batch_size=None, verbose=0) -> float:
        """MSE over all samples and outputs (``batch_size``/``verbose`` as in ``predict``)."""
        if batch_size is not None:
            v.count(batch_size, "batch_size", 1)
        X = v.as_inputs(X, self._n_in, self._dtype)
        y = v.as_targets(y, X.shape[0], self._units[-1], self._dtype)
        if X.shape[0] == 0:
            raise ValueError("cannot evaluate on 0 samples")
        return self._evaluate(X, y)

    def compute_gradients(self, x, y):
        """``(loss, [dW0, db0, dW1, db1, ...])`` at the current weights, without updating."""
        x, y = self._batch(x, y)
        loss = self._backprop(x, y, self._training_workspace(x.shape[0]))
        return loss, [g.copy() for g in self._grad_views]

    def train_on_batch(self, x, y) -> float:
        """One optimizer update on the batch; returns the loss before the update."""
        self._require_compiled()
        x, y = self._batch(x, y)
        loss = self._backprop(x, y, self._training_workspace(x.shape[0]))
        self.optimizer.apply(*self._opt_args)
        return loss

    def fit(self, X, y, epochs=1, batch_size=32, shuffle=True, validation_data=None,
            verbose=1) -> History:
        """Minibatch training. Each epoch visits ``order = rng.permutation(n)`` (or
        ``arange(n)`` without shuffle) in batches ``order[i:i+batch_size]``, the last one
        possibly partial. ``loss`` per epoch: the mean over samples of each batch's loss
        before its update; ``val_loss``: MSE on ``validation_data`` after the epoch."""
        self._require_compiled()
        X = v.as_inputs(X, self._n_in, self._dtype)
        n = X.shape[0]
        y = v.as_targets(y, n, self._units[-1], self._dtype)
        if n == 0:
            raise ValueError("cannot fit on 0 samples")
        epochs = v.count(epochs, "epochs", 0)
        batch_size = v.count(32 if batch_size is None else batch_size, "batch_size", 1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        verbose = _check_verbose(verbose)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_val, y_val)")
            Xv = v.as_inputs(validation_data[0], self._n_in, self._dtype, "X_val")
            yv = v.as_targets(validation_data[1], Xv.shape[0], self._units[-1], self._dtype,
                              "y_val")
            if Xv.shape[0] == 0:
                raise ValueError("validation_data has 0 samples")

        history = History()
        starts = range(0, n, batch_size)
        sizes = [min(batch_size, n - i) for i in starts]
        spaces = [self._training_workspace(s) for s in sizes[:1] + sizes[-1:]]
        ws_full, ws_last = spaces
        backprop, apply, opt_args = self._backprop, self.optimizer.apply, self._opt_args
        take = np.take
        for epoch in range(epochs):
            total = 0.0
            if shuffle:
                order = self._rng.permutation(n)
                for i in starts:
                    ws = ws_full if i + batch_size <= n else ws_last
                    idx = order[i:i + batch_size]
                    # mode="clip": the indices are valid by construction, and the default
                    # mode="raise" buffers the whole output before writing it
                    take(X, idx, axis=0, out=ws.x, mode="clip")
                    take(y, idx, axis=0, out=ws.y, mode="clip")
                    total += backprop(ws.x, ws.y, ws) * ws.n
                    apply(*opt_args)
            else:
                # batches are contiguous row ranges: views, no gather
                for i in starts:
                    ws = ws_full if i + batch_size <= n else ws_last
                    total += backprop(X[i:i + batch_size], y[i:i + batch_size], ws) * ws.n
                    apply(*opt_args)
            logs = {"loss": total / n}
            if validation_data is not None:
                logs["val_loss"] = self._evaluate(Xv, yv)
            history.record(epoch, logs)
            if verbose:
                print(progress_line(epoch, epochs, logs), flush=True)
        return history

    # ---------------------------------------------------------------- the arithmetic
    def _forward(self, x, ws, out=None):
        """``a_i = f(a_{i-1}·W_i + b_i)`` into ``ws.acts`` (the last into ``out`` if given)."""
        a = x
        last = len(self._plan) - 1
        for i, (W, b, _, _, relu) in enumerate(self._plan):
            z = out if i == last and out is not None else ws.acts[i]
            np.matmul(a, W, out=z)
            np.add(z, b, out=z)
            if relu:
                np.maximum(z, ws.zeros[i], out=z)
            a = z
        return a

    def _backprop(self, x, y, ws) -> float:
        """Forward and backward over one batch: fills the gradient buffer, returns the loss."""
        yhat = self._forward(x, ws)
        d = ws.deltas[-1]
        np.subtract(yhat, y, out=d)
        loss = float(np.vdot(d, d)) / d.size
        np.multiply(d, ws.scale, out=d)               # δ_L = 2(ŷ − y)/(n·k)
        acts, deltas, masks, ones = ws.acts, ws.deltas, ws.masks, ws.ones
        for i in range(len(self._plan) - 1, -1, -1):
            W, _, dW, db, relu = self._plan[i]
            if relu:                                   # δ_i ← δ_i ⊙ [a_i > 0]
                mask = masks[i]
                np.greater(acts[i], 0, out=mask)
                np.multiply(d, mask, out=d)
            a_prev = acts[i - 1] if i else x
            np.matmul(a_prev.T, d, out=dW)             # ∂W_i = a_{i-1}ᵀ·δ_i
            np.matmul(ones, d, out=db)                 # ∂b_i = 1ᵀ·δ_i
            if i:
                np.matmul(d, W.T, out=deltas[i - 1])   # δ_{i-1} = δ_i·W_iᵀ
                d = deltas[i - 1]
        return loss

    def _evaluate(self, X, y) -> float:
        ws = self._workspace(X.shape[0])
        yhat = self._forward(X, ws)
        np.subtract(yhat, y, out=yhat)
        return float(np.vdot(yhat, yhat)) / yhat.size

    # ---------------------------------------------------------------- helpers
    def _batch(self, x, y):
        x = v.as_inputs(x, self._n_in, self._dtype, "x")
        y = v.as_targets(y, x.shape[0], self._units[-1], self._dtype)
        if x.shape[0] == 0:
            raise ValueError("the batch has 0 samples")
        return x, y

    def _workspace(self, n: int) -> _Workspace:
        ws = self._workspaces.get(n)
        if ws is None:
            if len(self._workspaces) >= _MAX_WORKSPACES:
                del self._workspaces[next(iter(self._workspaces))]
            ws = self._workspaces[n] = _Workspace(n, self._units, self._dtype)
        return ws

    def _training_workspace(self, n: int) -> _Workspace:
        ws = self._workspace(n)
        if ws.deltas is None:
            ws.make_training(self._n_in, self._units, self._dtype)
        return ws

    def __repr__(self):
        return f"Sequential({self.layers!r}, dtype={self._dtype.name!r})"


def _views(flat: np.ndarray, shapes) -> list[np.ndarray]:
    """Consecutive views of ``flat`` with the given shapes."""
    views, offset = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        views.append(flat[offset:offset + size].reshape(shape))
        offset += size
    return views


def _check_layers(layers) -> list[Dense]:
    if isinstance(layers, Dense):
        layers = [layers]
    try:
        layers = list(layers)
    except TypeError:
        raise TypeError(f"layers must be a list of Dense, got {type(layers).__name__}") from None
    if not layers:
        raise ValueError("a Sequential model needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Dense):
            raise TypeError(f"layers[{i}] must be a Dense layer, got {type(layer).__name__}")
    if layers[0].input_dim is None:
        raise ValueError("the first layer must give its input width: "
                         "Dense(units, input_dim=d) or input_shape=(d,)")
    for i in range(1, len(layers)):
        if layers[i].input_dim is not None and layers[i].input_dim != layers[i - 1].units:
            raise ValueError(
                f"layers[{i}] declares input_dim={layers[i].input_dim} but the layer "
                f"before it has {layers[i - 1].units} units")
    return layers


def _resolve_optimizer(optimizer):
    if isinstance(optimizer, str):
        for name in dir(_optimizers):
            cls = getattr(_optimizers, name)
            if (isinstance(cls, type) and name.lower() == optimizer.lower()
                    and callable(getattr(cls, "apply", None))):
                return cls()
        raise ValueError(f"unknown optimizer {optimizer!r}")
    if not callable(getattr(optimizer, "apply", None)):
        raise TypeError(
            f"optimizer must be a name or a reference optimizer (fastdense.reference.SGD, "
            f"...) with an apply(grads, params) method, got {type(optimizer).__name__}")
    return optimizer


def _check_verbose(verbose) -> int:
    if isinstance(verbose, (bool, np.bool_)) or not isinstance(verbose, numbers.Integral) \
            or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    return int(verbose)
