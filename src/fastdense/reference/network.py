"""The reference network: ``Sequential`` of ``Dense`` layers in plain NumPy, with the whole
vocabulary of fastdense (``fastdense.activations``, ``losses``, ``metrics``,
``regularizers``; sample and class weights and the validation split of ``_fitdata``).

It is the yardstick of every speed claim, so it is written as well as NumPy allows:

* the model dtype is kept end to end: no Python float or float64 array ever meets a
  float32 buffer in a ufunc (every constant is a scalar of the model dtype);
* all parameters live in one flat buffer, each layer's ``W`` (in, out) and ``b`` (out,)
  being views into it (layout ``W0, b0, W1, b1, ...``); the gradients live in a second flat
  buffer of the same layout, so the optimizer makes one update over one array;
* every intermediate array of a pass over ``n`` rows is allocated once per ``n`` and reused
  (``out=`` everywhere), so a training step allocates nothing but NumPy's scalars;
* the formulas are the stable ones: log-sum-exp for the categorical cross-entropies,
  ``logaddexp``/``log1p`` for the binary one and softplus, SciPy's ``expit`` for the sigmoid.

The math of one step on a batch ``x`` (n, d) with targets ``y``, layer ``i`` being
``a_i = f_i(z_i)``, ``z_i = a_{i-1}·W_i + b_i``, ``a_{-1} = x``, sample weights ``w``::

    loss     = Σᵢ wᵢ·lᵢ / n + Σ_layers l1·Σ|W| + l2·ΣW²   (losses.py, regularizers.py)
    δ_L      = ∂loss/∂ŷ ⊙ f_L'      (regression losses; softmax: p ⊙ (g − Σ_j p_j g_j))
             = ∂loss/∂z_L           (cross-entropies: the fused logits formula, × wᵢ/n)
    ∂W_i     = a_{i-1}ᵀ · δ_i  (+ l1·sign(W_i) + 2·l2·W_i),  ∂b_i = 1ᵀ · δ_i  (+ ...)
    δ_{i-1}  = (δ_i · W_iᵀ) ⊙ f_{i-1}'   (f' from a_{i-1}; GELU from z_{i-1}, which it keeps)

With a cross-entropy the last layer's activation (sigmoid or softmax) is never applied in
training or evaluation: the head works on its logits (and computes the probabilities once,
for the gradient and the metrics); ``predict`` applies it.

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
  (X 1000×10 / 8192×784), against 1.1 µs / 17 µs with the default ``mode="raise"``;
* hidden layers column-major with a ones column (``[a, 1]·[W; b]``, ``[a, 1]ᵀ·δ``: one
  GEMM each instead of GEMM + bias pass and GEMM + GEMV): the whole seed fit 15 % faster
  and the digits classifier's (64-64-64-10, softmax) 4 % (medians of 25 interleaved pairs);
  row-major activations with a ones column instead make every ufunc over them strided
  (ReLU 4.4 µs against 1.4 µs at 32×64).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import _fitdata
from .. import _validation as v
from .. import callbacks as _callbacks
from .. import losses as _losses
from .. import metrics as _metrics
from ..callbacks import History, progress_line
from ..layers import Dense, glorot_uniform
from . import _math
from . import optimizers as _optimizers

__all__ = ["Sequential", "Dense"]

RELU, LINEAR, GELU, GELU_TANH, SOFTMAX = (_math.RELU, _math.LINEAR, _math.GELU,
                                          _math.GELU_TANH, _math.SOFTMAX)

# Workspaces are kept per row count; more distinct counts than this (e.g. predict on many
# sizes) evict the oldest, so memory stays bounded.
_MAX_WORKSPACES = 8


class _Workspace:
    """The buffers of passes over ``n`` rows, allocated once and reused.

    Forward: ``acts[i]`` (n, units_i) holds ``z_i`` then ``a_i`` in place (a GELU layer
    keeps ``z_i`` in ``pre[i]``). A hidden layer's ``acts[i]`` is the column-major view
    of the first columns of ``aug[i]`` (n, units_i + 1), whose last column is ones, so that
    the next layer's ``[a, 1]·[W; b]`` is one GEMM (``W_i`` then ``b_i`` in the flat buffer
    are exactly the rows of ``[W; b]``) and its ``[a, 1]ᵀ·δ`` gives ``[∂W; ∂b]`` in one;
    every other buffer of a hidden layer is column-major too (ufuncs over operands of one
    order take the contiguous loop), the last layer's are row-major. ``zeros[i]`` is the
    ReLU's other operand; ``tmp[i]`` scratch of the layer's shape (made here when the
    forward needs it); ``r1``/``r2`` (n, 1) and ``i1`` (n,) the softmax's row maximum and
    sum.

    The loss head's (``make_head``, for evaluate and training; k = the output width):
    ``h0``/``h1``/``h2``/``hm``/``prob``/``oh`` (n, k), ``r3``/``r4``/``wcol`` (n, 1),
    ``i2`` (n,) indices, ``bn``/``bk`` bool. Training's (``make_training``): ``deltas[i]``,
    ``masks[i]``, ``tmp2``/``tmp3`` (for the derivatives that need them), ``ones`` (n,)
    for the bias gradient, ``x``/``y``/``labels``/``sw`` for the gathered batch.
    """

    def __init__(self, n: int, units: list[int], dtype: np.dtype, gelu: bool, scratch: int,
                 forward_scratch: bool, c: _math.Consts, ones_k: np.ndarray, eye: np.ndarray):
        self.n, self.units, self.dtype, self.scratch = n, units, dtype, scratch
        k = units[-1]
        self.width = max(units)
        self.c, self.ones_k, self.eye = c, ones_k, eye
        self.aug = [np.ones((n, u + 1), dtype, order="F") for u in units[:-1]]
        self.acts = [a[:, :-1] for a in self.aug] + [np.empty((n, k), dtype)]
        # (kept from the forward to the backward: one array per layer)
        self.pre = _shaped(np.empty(n * sum(units), dtype), n, units, packed=True) if gelu \
            else [None] * len(units)
        self.zeros = _shaped(np.zeros(n * self.width, dtype), n, units)
        self.tmp = self._scratch() if forward_scratch else None
        self.r1, self.r2 = np.empty((n, 1), dtype), np.empty((n, 1), dtype)
        self.out_flat, self.r1_flat = self.acts[-1].reshape(-1), self.r1.reshape(-1)
        self.row_start = np.arange(n, dtype=np.intp) * k
        self.i1 = np.empty(n, np.intp)
        self.yhat = None
        self.head = False
        self.deltas: list[np.ndarray] | None = None

    def _scratch(self, dtype=None) -> list[np.ndarray]:
        n, units = self.n, self.units
        return _shaped(np.empty(n * self.width, dtype or self.dtype), n, units)

    def make_head(self) -> None:
        n, k, dtype = self.n, self.units[-1], self.dtype
        self.h0, self.h1, self.h2, self.hm, self.prob, self.oh = (
            np.empty((n, k), dtype) for _ in range(6))
        self.r3, self.r4, self.wcol = (np.empty((n, 1), dtype) for _ in range(3))
        self.ones_n1 = np.ones((n, 1), dtype)
        self.ones_nk = np.ones((n, k), dtype)
        self.i2 = np.empty(n, np.intp)
        self.bn = np.empty(n, np.bool_)
        self.bk = np.empty((n, k), np.bool_)
        self.scale_n = _math.const(1.0 / n, dtype)
        self.scale_nk = _math.const(1.0 / (n * k), dtype)
        self.scale2_nk = _math.const(2.0 / (n * k), dtype)
        self.head = True

    def make_training(self, n_in: int) -> None:
        n, units, dtype = self.n, self.units, self.dtype
        if not self.head:
            self.make_head()
        if self.tmp is None:
            self.tmp = self._scratch()
        self.masks = self._scratch(np.bool_)
        self.tmp2 = self._scratch() if self.scratch >= 2 else None
        self.tmp3 = self._scratch() if self.scratch >= 3 else None
        self.deltas = _shaped(np.empty(n * sum(units), dtype), n, units, packed=True)
        self.ones = np.ones(n, dtype)
        self.x = np.empty((n, n_in), dtype)
        self.y = np.empty((n, units[-1]), dtype)
        self.labels = np.empty(n, np.intp)
        self.sw = np.empty((n, 1), dtype)


def _shaped(flat: np.ndarray, n: int, units: list[int], packed=False) -> list[np.ndarray]:
    """(n, u) views of ``flat`` per layer: column-major for the hidden layers, row-major
    for the last; all from its start (scratch shared by the layers) or one after the other
    (``packed``)."""
    views, offset = [], 0
    for i, u in enumerate(units):
        views.append(flat[offset:offset + n * u].reshape(
            (n, u), order="C" if i == len(units) - 1 else "F"))
        offset += n * u if packed else 0
    return views


class Sequential:
    """A stack of ``Dense`` layers trained by minibatch gradient descent.

    ``Sequential([Dense(64, activation="relu", input_dim=64), Dense(10, activation=
    "softmax")], dtype="float32", seed=0)``. Weights are drawn at construction: for each
    layer in order, ``glorot_uniform(rng, fan_in, fan_out, dtype)`` from
    ``rng = np.random.default_rng(seed)``, biases zero. The same ``rng`` shuffles every
    epoch of ``fit`` (``order = rng.permutation(n)``), so a seed fixes the whole run.
    Only the last layer may be softmax (with at least 2 units).
    """

    def __init__(self, layers, *, dtype="float32", seed=None):
        self._dtype = v.float_dtype(dtype)
        self.layers = _check_layers(layers)
        self._n_in = self.layers[0].input_dim
        self._units = [layer.units for layer in self.layers]
        specs = [layer.activation_spec for layer in self.layers]
        self._kinds = [a.kernel_id for a in specs]
        self._alphas = [_math.const(a.alpha, self._dtype) for a in specs]
        self._gelu = any(k in (GELU, GELU_TANH) for k in self._kinds)
        # scratch arrays per layer the activations' derivatives need
        self._scratch = max(_math.scratch_needed(k, a.alpha) for k, a in zip(self._kinds, specs))
        self._forward_scratch = any(k in _math.FORWARD_SCRATCH for k in self._kinds)
        self._c = _math.Consts(self._dtype)
        k = self._units[-1]
        self._ones_k = np.ones((k, 1), self._dtype)
        self._eye = np.eye(k, dtype=self._dtype)
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

        # (W, b, dW, db, kind, alpha, [W; b], [dW; db]) per layer: what the hot loops
        # iterate over ([W; b] is W_i and b_i of the flat buffer seen as one matrix)
        self._plan = []
        offset = 0
        for i in range(len(self.layers)):
            rows, cols = shapes[2 * i][0] + 1, shapes[2 * i][1]
            self._plan.append(
                (self._param_views[2 * i], self._param_views[2 * i + 1],
                 self._grad_views[2 * i], self._grad_views[2 * i + 1], self._kinds[i],
                 self._alphas[i],
                 self._params[offset:offset + rows * cols].reshape(rows, cols),
                 self._grads[offset:offset + rows * cols].reshape(rows, cols)))
            offset += rows * cols
        # (param, grad, scratch, l1, l2, 2·l2) for each regularised variable
        scratch = _views(np.empty(size, self._dtype), shapes)
        self._regs = []
        for i, layer in enumerate(self.layers):
            for j, reg in ((2 * i, layer.kernel_regularizer), (2 * i + 1, layer.bias_regularizer)):
                if reg is not None and (reg.l1 or reg.l2):
                    self._regs.append((self._param_views[j], self._grad_views[j], scratch[j],
                                       *(_math.const(f, self._dtype)
                                         for f in (reg.l1, reg.l2, 2 * reg.l2))))
        self._workspaces: dict[int, _Workspace] = {}
        self.optimizer = None
        self.loss = None
        self.metrics_names: list[str] = []
        self.stop_training = False
        self._set_loss(_losses.get("mse"), [])

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
    def compile(self, optimizer="sgd", loss="mse", metrics=None):
        """``optimizer``: a reference optimizer instance, or its name (``"sgd"``, ...);
        ``loss``: a name of ``fastdense.losses.NAMES`` or a ``fastdense.losses.Loss``, which
        must suit the output layer (``losses.check_output``); ``metrics``: names of
        ``fastdense.metrics.NAMES`` ("accuracy" chosen from the loss)."""
        optimizer = _resolve_optimizer(optimizer)
        spec = _losses.get(loss)
        last = self.layers[-1]
        _losses.check_output(spec, last.activation, last.units)
        resolved = _metrics.resolve(metrics, spec, last.units)
        self.optimizer = optimizer
        self.loss = loss if isinstance(loss, str) else spec.name
        self.metrics_names = [name for name, _ in resolved]
        self._set_loss(spec, [mid for _, mid in resolved])
        # the optimizer updates the flat buffer at once, unless it clips per variable
        if getattr(self.optimizer, "clipnorm", None):
            self._opt_args = (self._grad_views, self._param_views)
        else:
            self._opt_args = ([self._grads], [self._params])

    def _set_loss(self, spec, metric_ids) -> None:
        self._loss = spec
        self._head = _math.HEADS[spec.name]
        # cross-entropies work on the last layer's logits: its activation is skipped
        self._fused = spec.name in _losses.CROSSENTROPIES
        self._metric_ids = metric_ids
        threshold = 0.0 if spec.name == "binary_crossentropy" and spec.from_logits else 0.5
        self._c.set_loss(spec.delta, threshold)

    def _require_compiled(self):
        if self.optimizer is None:
            raise ValueError("compile the model before training it: model.compile(...)")

    # ---------------------------------------------------------------- public passes
    def predict(self, X, batch_size=None, verbose=0) -> np.ndarray:
        """The network's outputs for ``X`` (n, d), the output activation applied (softmax
        probabilities, ...): a new (n, k) array. All rows go through at once;
        ``batch_size``/``verbose`` are accepted for Keras compatibility."""
        if batch_size is not None:
            v.count(batch_size, "batch_size", 1)
        X = v.as_inputs(X, self._n_in, self._dtype)
        out = np.empty((X.shape[0], self._units[-1]), self._dtype)
        if X.shape[0]:
            self._forward(X, self._workspace(X.shape[0]), out)
        return out

    def evaluate(self, X, y, batch_size=None, verbose=0, sample_weight=None,
                 return_dict=False):
        """The loss (Σᵢ wᵢ·lᵢ / n plus the regularisers' penalty; MSE if not compiled) over
        all of (X, y): a float when no metrics were compiled, else ``[loss, m1, ...]``, or
        ``{"loss": ..., name: ...}`` with ``return_dict`` (``batch_size``/``verbose`` as in
        ``predict``)."""
        if batch_size is not None:
            v.count(batch_size, "batch_size", 1)
        X, T, sw = self._data(X, y, sample_weight)
        if X.shape[0] == 0:
            raise ValueError("cannot evaluate on 0 samples")
        loss, values = self._evaluate(X, T, sw, _unit_rows(self._loss, T))
        if return_dict:
            return {"loss": loss, **dict(zip(self.metrics_names, values))}
        return [loss, *values] if self.metrics_names else loss

    def compute_gradients(self, x, y, sample_weight=None):
        """``(loss, [dW0, db0, dW1, db1, ...])`` at the current weights, without updating
        (the compiled loss, MSE if not compiled; regularisers included)."""
        x, T, sw = self._batch(x, y, sample_weight)
        ws = self._training_workspace(x.shape[0])
        loss = self._backprop(x, T, sw, ws, _unit_rows(self._loss, T))
        return loss, [g.copy() for g in self._grad_views]

    def train_on_batch(self, x, y, sample_weight=None) -> float:
        """One optimizer update on the batch; returns the loss before the update."""
        self._require_compiled()
        x, T, sw = self._batch(x, y, sample_weight)
        ws = self._training_workspace(x.shape[0])
        loss = self._backprop(x, T, sw, ws, _unit_rows(self._loss, T))
        self.optimizer.apply(*self._opt_args)
        return loss

    def fit(self, X, y, epochs=1, batch_size=32, shuffle=True, validation_data=None,
            validation_split=0.0, sample_weight=None, class_weight=None, verbose=1,
            callbacks=None) -> History:
        """Minibatch training. Each epoch visits ``order = rng.permutation(n)`` (or
        ``arange(n)`` without shuffle) in batches ``order[i:i+batch_size]``, the last one
        possibly partial. History, per epoch: ``loss``, the mean over samples of each
        batch's loss before its update; each metric (under the name given to compile), the
        mean over samples of its value on each batch's output before its update;
        ``val_loss`` and ``val_<metric>`` on the validation data after the epoch.

        ``validation_data``: ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``;
        else ``validation_split`` holds out the last ``n - floor(n·(1 − fraction))`` rows
        (before any shuffling; their sample weights alike). ``sample_weight``: one weight
        per sample; ``class_weight``: {class: weight} (not with sample_weight).
        ``callbacks``: as ``fastdense.callbacks`` describes (once per epoch)."""
        self._require_compiled()
        callbacks = _callbacks.checked(callbacks)
        X, T, sw = self._data(X, y, sample_weight, class_weight)
        n = X.shape[0]
        if n == 0:
            raise ValueError("cannot fit on 0 samples")
        epochs = v.count(epochs, "epochs", 0)
        batch_size = v.count(32 if batch_size is None else batch_size, "batch_size", 1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        verbose = _check_verbose(verbose)
        split_at = _fitdata.validation_split(validation_split, n)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) \
                    or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be (X_val, y_val) or "
                                 "(X_val, y_val, sample_weight_val)")
            Xv, Tv, swv = self._data(validation_data[0], validation_data[1],
                                     validation_data[2] if len(validation_data) == 3
                                     else None, xname="X_val", yname="y_val")
            if Xv.shape[0] == 0:
                raise ValueError("validation_data has 0 samples")
            val = (Xv, Tv, swv, _unit_rows(self._loss, Tv))
        elif split_at < n:
            Tv = T[split_at:]
            val = (X[split_at:], Tv, None if sw is None else sw[split_at:],
                   _unit_rows(self._loss, Tv))
            X, T = X[:split_at], T[:split_at]
            sw = None if sw is None else sw[:split_at]
            n = split_at
        unit = _unit_rows(self._loss, T)

        history = History()
        self.history = history
        self.stop_training = False
        starts = range(0, n, batch_size)
        sizes = [min(batch_size, n - i) for i in starts]
        for cb in callbacks:
            cb.set_model(self)
            cb.set_params({"epochs": epochs, "steps": len(sizes), "verbose": verbose})
        for cb in callbacks:
            cb.on_train_begin(None)
        spaces = [self._training_workspace(s) for s in sizes[:1] + sizes[-1:]]
        ws_full, ws_last = spaces
        backprop, apply, opt_args = self._backprop, self.optimizer.apply, self._opt_args
        take = np.take
        sparse = self._loss.sparse
        ids, names = self._metric_ids, self.metrics_names
        if ids:
            metric_sums, threshold = _math.metric_sums, self._c.threshold
        logs = None
        for epoch in range(epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch, None)
            total = 0.0
            msums = [0.0] * len(ids)
            if shuffle:
                order = self._rng.permutation(n)
            for i in starts:
                ws = ws_full if i + batch_size <= n else ws_last
                if shuffle:
                    idx = order[i:i + batch_size]
                    # mode="clip": the indices are valid by construction, and the default
                    # mode="raise" buffers the whole output before writing it
                    xb = take(X, idx, axis=0, out=ws.x, mode="clip")
                    tb = take(T, idx, axis=0, out=ws.labels if sparse else ws.y, mode="clip")
                    wb = None if sw is None else take(sw, idx, axis=0, out=ws.sw, mode="clip")
                else:
                    # batches are contiguous row ranges: views, no gather
                    xb, tb = X[i:i + batch_size], T[i:i + batch_size]
                    wb = None if sw is None else sw[i:i + batch_size]
                total += backprop(xb, tb, wb, ws, unit) * ws.n
                if ids:     # on the output before the update
                    for j, s in enumerate(metric_sums(ids, ws, ws.yhat, tb, threshold)):
                        msums[j] += s
                apply(*opt_args)
            logs = {"loss": total / n}
            for name, s in zip(names, msums):
                logs[name] = s / n
            if val is not None:
                val_loss, val_values = self._evaluate(*val)
                logs["val_loss"] = val_loss
                for name, value in zip(names, val_values):
                    logs["val_" + name] = value
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            history.record(epoch, logs)
            if verbose:
                print(progress_line(epoch, epochs, logs), flush=True)
            if self.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end(logs)
        return history

    # ---------------------------------------------------------------- the arithmetic
    def _forward(self, x, ws, out=None, logits=False):
        """``a_i = f(a_{i-1}·W_i + b_i)`` into ``ws.acts`` (the last into ``out`` if given;
        with ``logits`` the last layer's activation is not applied)."""
        a = x
        last = len(self._plan) - 1
        c, aug = self._c, ws.aug
        for i, (W, b, _, _, kind, alpha, Wb, _) in enumerate(self._plan):
            dst = out if i == last and out is not None else ws.acts[i]
            z = ws.pre[i] if kind == GELU or kind == GELU_TANH else dst
            if i:
                np.matmul(aug[i - 1], Wb, out=z)       # [a, 1]·[W; b]
            else:
                np.matmul(a, W, out=z)
                np.add(z, b, out=z)
            if kind == RELU:
                np.maximum(z, ws.zeros[i], out=z)
            elif kind != LINEAR and not (logits and i == last):
                _math.activate(kind, alpha, z, dst, ws, i, c)
            a = dst
        return a

    def _backprop(self, x, y, w, ws, unit) -> float:
        """Forward and backward over one batch: fills the gradient buffer, returns the loss
        (the regularisers' penalty at the weights before the update included)."""
        fused = self._fused
        out = self._forward(x, ws, logits=fused)
        loss = self._head(ws, out, y, w, True, unit, self._loss)
        d = ws.deltas[-1]
        acts, deltas, ones, c = ws.acts, ws.deltas, ws.ones, self._c
        derive = _math.derive
        last = len(self._plan) - 1
        for i in range(last, -1, -1):
            W, _, dW, db, kind, alpha, _, dWb = self._plan[i]
            if kind == RELU:                           # δ_i ← δ_i ⊙ [a_i > 0]
                mask = ws.masks[i]
                np.greater(acts[i], ws.zeros[i], out=mask)
                np.multiply(d, mask, out=d)
            elif kind != LINEAR and not (fused and i == last):
                derive(kind, alpha, d, ws, i, c)
            if i:                                      # [∂W_i; ∂b_i] = [a_{i-1}, 1]ᵀ·δ_i
                np.matmul(ws.aug[i - 1].T, d, out=dWb)
            else:
                np.matmul(x.T, d, out=dW)              # ∂W_0 = xᵀ·δ_0
                np.matmul(ones, d, out=db)             # ∂b_0 = 1ᵀ·δ_0
            if i:
                np.matmul(d, W.T, out=deltas[i - 1])   # δ_{i-1} = δ_i·W_iᵀ
                d = deltas[i - 1]
        if self._regs:
            loss += self._penalty(grad=True)
        return loss

    def _penalty(self, grad=False) -> float:
        """Σ l1·Σ|w| + l2·Σw² over the regularised variables; with ``grad``, adds
        l1·sign(w) + 2·l2·w to their gradients."""
        total = 0.0
        for p, g, s, l1, l2, two_l2 in self._regs:
            if l1:
                np.abs(p, out=s)
                total += float(l1) * float(np.add.reduce(s, axis=None))
                if grad:
                    np.sign(p, out=s)
                    np.multiply(s, l1, out=s)
                    np.add(g, s, out=g)
            if l2:
                total += float(l2) * float(np.vdot(p, p))
                if grad:
                    np.multiply(p, two_l2, out=s)
                    np.add(g, s, out=g)
        return total

    def _evaluate(self, X, T, sw, unit):
        """(loss with the penalty, [metric values]) over all rows at the current weights."""
        n = X.shape[0]
        ws = self._head_workspace(n)
        out = self._forward(X, ws, logits=self._fused)
        loss = self._head(ws, out, T, sw, False, unit, self._loss)
        if self._regs:
            loss += self._penalty()
        values = []
        if self._metric_ids:
            sums = _math.metric_sums(self._metric_ids, ws, ws.yhat, T, self._c.threshold)
            values = [s / n for s in sums]
        return loss, values

    # ---------------------------------------------------------------- helpers
    def _data(self, X, y, sample_weight=None, class_weight=None, xname="X", yname="y"):
        """(X, targets, weights or None) checked for the loss: targets (n, k), or (n,) intp
        class labels for the sparse loss; weights (n, 1) from sample_weight or
        class_weight (not both)."""
        X = v.as_inputs(X, self._n_in, self._dtype, xname)
        spec = self._loss
        T = _fitdata.as_targets(spec, y, X.shape[0], self._units[-1], self._dtype, yname)
        if sample_weight is not None and class_weight is not None:
            raise ValueError("cannot use class_weight and sample_weight at the same time")
        sw = None
        if sample_weight is not None:
            sw = _fitdata.as_sample_weight(sample_weight, X.shape[0], self._dtype,
                                           "sample_weight" if yname == "y" else
                                           "validation sample_weight")
        elif class_weight is not None:
            sw = _fitdata.class_weight_to_sample_weight(class_weight, T, spec, self._dtype)
        if spec.sparse:
            T = T[:, 0].astype(np.intp)
        return X, T, None if sw is None else sw.reshape(-1, 1)

    def _batch(self, x, y, sample_weight=None):
        x, T, sw = self._data(x, y, sample_weight, xname="x")
        if x.shape[0] == 0:
            raise ValueError("the batch has 0 samples")
        return x, T, sw

    def _workspace(self, n: int) -> _Workspace:
        ws = self._workspaces.get(n)
        if ws is None:
            if len(self._workspaces) >= _MAX_WORKSPACES:
                del self._workspaces[next(iter(self._workspaces))]
            ws = self._workspaces[n] = _Workspace(
                n, self._units, self._dtype, self._gelu, self._scratch,
                self._forward_scratch, self._c, self._ones_k, self._eye)
        return ws

    def _head_workspace(self, n: int) -> _Workspace:
        ws = self._workspace(n)
        if not ws.head:
            ws.make_head()
        return ws

    def _training_workspace(self, n: int) -> _Workspace:
        ws = self._workspace(n)
        if ws.deltas is None:
            ws.make_training(self._n_in)
        return ws

    def __repr__(self):
        return f"Sequential({self.layers!r}, dtype={self._dtype.name!r})"


def _unit_rows(loss, T) -> bool:
    """Categorical cross-entropy's targets all sum to exactly 1 per row (then p·Σy = p)."""
    return loss.name == "categorical_crossentropy" and bool(
        np.all(np.add.reduce(T, axis=1) == 1))


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
    for i, layer in enumerate(layers[:-1]):
        if layer.activation == "softmax":
            raise ValueError(f"layer {i} has a softmax activation, which only the last "
                             f"layer may have (it normalises the outputs)")
    if layers[-1].activation == "softmax" and layers[-1].units < 2:
        raise ValueError("a softmax output needs at least 2 units (one unit's softmax is "
                         "always 1)")
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
