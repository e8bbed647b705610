"""Sequential: layers → one flat parameter buffer; compile / fit / predict / evaluate.

Every public method validates its inputs once, here, and hands contiguous arrays of the
model's dtype down to the compiled core (`fastdense._core.train.Network`); nothing below
calls back up. Invalid input raises before any weight changes.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _fitdata
from . import _validation as v
from . import activations as _activations
from . import callbacks as _callbacks
from . import distributed as _distributed
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from . import saving as _saving
from ._core import train as _train
from ._core.train import Network
from .callbacks import History, progress_line
from .errors import DivergenceError
from .layers import Dense, glorot_uniform

LOSSES = _losses.NAMES

_SHUFFLE_CHECKED: list[bool] = []
# fit's checked inputs: X, y joined with the weights, weighted, the validation set
# (X, y, weighted) or None, epochs, batch size, callbacks
_FitInputs = tuple[np.ndarray, np.ndarray, bool, Any, int, int, list[Any]]


def shuffle_matches_numpy() -> bool:
    """Whether the compiled shuffle (`_train.shuffled_range`) draws exactly what the
    installed NumPy's ``Generator.permutation`` draws, and leaves the generator in the same
    state: checked once per process on a few sizes. NumPy does not promise its streams
    across releases; if a release changes them, fit falls back to ``rng.shuffle``."""
    if not _SHUFFLE_CHECKED:
        ok = True
        for seed, n in ((0, 1), (1, 2), (2, 7), (3, 1000), (4, 4099)):
            ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
            order = np.empty(n, dtype=np.intp)
            _train.shuffled_range(order, ours)
            ok = ok and np.array_equal(order, theirs.permutation(n)) \
                and ours.bit_generator.state == theirs.bit_generator.state
        _SHUFFLE_CHECKED.append(ok)
    return _SHUFFLE_CHECKED[0]


@_saving.register_model_class
class Sequential:
    """A stack of `Dense` layers trained as one network.

    All weights live in one contiguous buffer (``W0, b0, W1, b1, …``; each layer's W and b
    are views into it), so an optimizer update is one kernel call whatever the depth.
    Kernels start Glorot-uniform and biases at zero, drawn from ``seed``; shuffling uses
    the same generator, so one seed gives one run.
    """

    history: History        # the History of the last fit (set by fit)

    def __init__(self, layers: Iterable[Dense] | None = None, *, dtype: npt.DTypeLike = "float32",
                 seed: int | np.random.SeedSequence | None = None,
                 name: str | None = None) -> None:
        self.dtype = v.float_dtype(dtype)
        self.name = name
        self.layers: list[Dense] = []
        self.optimizer: _optimizers.Optimizer | None = None
        self.loss: str | None = None          # the loss's name as compiled
        self.metrics_names: list[str] = []    # compile's metrics, as named there
        self._loss: _losses.Loss | None = None
        self._metric_ids: list[int] = []
        self.stop_training = False
        # None until build(); every method that reads it builds (or refuses) first
        self._net: Network = None  # type: ignore[assignment]
        self._rng = np.random.default_rng(seed)
        for layer in layers or ():
            self.add(layer)
        if self.layers and self.layers[0].input_dim is not None:
            self.build(self.layers[0].input_dim)

    # ------------------------------------------------------------------ building
    def add(self, layer: Dense) -> None:
        if not isinstance(layer, Dense):
            raise TypeError(f"Sequential takes Dense layers, got {type(layer).__name__}")
        if self._net is not None:
            raise ValueError("cannot add layers to a model that is already built "
                             "(its weights exist); add every layer before using it")
        if self.layers and self.layers[-1].activation == "softmax":
            raise ValueError(f"layer {len(self.layers) - 1} has a softmax activation, which "
                             f"only the last layer may have (it normalises the outputs)")
        if self.layers and layer.input_dim is not None \
                and layer.input_dim != self.layers[-1].units:
            raise ValueError(
                f"layer {len(self.layers)} declares input_dim={layer.input_dim} but the "
                f"previous layer has {self.layers[-1].units} units")
        self.layers.append(layer)

    def build(self, input_dim: int) -> None:
        """Allocate the buffers and draw the initial weights (done on first use if the first
        layer names no input_dim)."""
        if self._net is not None:
            return
        if not self.layers:
            raise ValueError("the model has no layers")
        sizes = [int(input_dim)] + [layer.units for layer in self.layers]
        specs = [layer.activation_spec for layer in self.layers]
        if specs[-1].name == "softmax" and sizes[-1] < 2:
            raise ValueError("a softmax output needs at least 2 units (one unit's softmax "
                             "is always 1)")
        regs = []
        for layer in self.layers:
            k, b = layer.kernel_regularizer, layer.bias_regularizer
            regs.append((k.l1 if k else 0.0, k.l2 if k else 0.0,
                         b.l1 if b else 0.0, b.l2 if b else 0.0))
        net = Network(sizes, [a.kernel_id for a in specs], self.dtype,
                      alphas=[a.alpha for a in specs], regularizers=regs)
        for W, b in zip(*[iter(net.views(net.params))] * 2):
            W[...] = glorot_uniform(self._rng, W.shape[0], W.shape[1], self.dtype)
            b[...] = 0
        self._net = net
        if self._loss is not None:
            self._set_head(False)

    @property
    def built(self) -> bool:
        return self._net is not None

    @property
    def input_dim(self) -> int | None:
        return None if self._net is None else self._sizes()[0]

    @property
    def output_dim(self) -> int | None:
        return self.layers[-1].units if self.layers else None

    def _sizes(self):
        return [self._input_width()] + [layer.units for layer in self.layers]

    def _input_width(self):
        return self._net.views(self._net.params)[0].shape[0]

    def _require_built(self, x_width=None):
        if self._net is None:
            if self.layers and self.layers[0].input_dim is not None:
                self.build(self.layers[0].input_dim)
            elif x_width is None:
                raise ValueError("the model is not built: give the first layer input_dim")
            else:
                self.build(x_width)

    def count_params(self) -> int:
        self._require_built()
        return int(self._net.n_params)

    def summary(self) -> str:
        """A table of the layers, their output shapes and parameter counts (also printed)."""
        self._require_built()
        lines = [f"{'Layer':<24}{'Output':<12}{'Params':>10}"]
        width = self._input_width()
        for i, layer in enumerate(self.layers):
            n = (width + 1) * layer.units
            lines.append(f"{f'dense_{i} ({layer.activation})':<24}"
                         f"{f'(None, {layer.units})':<12}{n:>10}")
            width = layer.units
        lines.append(f"Total params: {self._net.n_params} ({self.dtype})")
        text = "\n".join(lines)
        print(text)
        return text

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer: str | _optimizers.Optimizer = "sgd",
                loss: str | _losses.Loss = "mse",
                metrics: Sequence[str] | None = None) -> None:
        """Choose the optimizer (an instance or a name such as "sgd"), the loss (a name of
        `fastdense.losses.NAMES` or a `fastdense.losses.Loss`, e.g.
        ``CategoricalCrossentropy(from_logits=True)``) and the metrics reported by fit and
        evaluate (names of `fastdense.metrics.NAMES`; "accuracy" is chosen from the loss).
        The loss must suit the output layer (`fastdense.losses.check_output`)."""
        if isinstance(optimizer, str):
            optimizer = _optimizers.get(optimizer)
        if not isinstance(optimizer, _optimizers.Optimizer):
            raise TypeError(
                f"optimizer must be a fastdense optimizer or its name, got {optimizer!r}")
        spec = _losses.get(loss)
        if not self.layers:
            raise ValueError("add the layers before compiling: the loss must suit the "
                             "output layer")
        last = self.layers[-1]
        _losses.check_output(spec, last.activation, last.units)
        resolved = _metrics.resolve(metrics, spec, last.units)
        if self._net is not None and self._net.busy_elsewhere():
            raise RuntimeError("cannot compile a model that another thread is training")
        self.optimizer = optimizer
        self._loss = spec
        self.loss = loss if isinstance(loss, str) else spec.name
        self.metrics_names = [name for name, _ in resolved]
        self._metric_ids = [mid for _, mid in resolved]
        if self._net is not None:
            self._set_head(False)

    def _set_head(self, weighted: bool) -> None:
        """Point the compiled network at this model's loss and metrics, with targets
        followed by a sample-weight column or not (set only when it changes)."""
        spec: _losses.Loss = self._loss  # type: ignore[assignment]  # compiled
        threshold = 0.0 if spec.name == "binary_crossentropy" and spec.from_logits else 0.5
        head = (spec.kernel_id, spec.param if spec.name == "huber" else 1.0,
                tuple(self._metric_ids), 1 if spec.sparse else self.layers[-1].units,
                bool(weighted), threshold)
        if self._net.head != head:
            self._net.set_head(head[0], head[1], head[2], spec.sparse, weighted, threshold)

    def _require_compiled(self):
        if self.optimizer is None:
            raise ValueError("compile the model before training it: model.compile(...)")

    # ------------------------------------------------------------------ data
    def _inputs(self, x, name="X"):
        arr = np.asarray(x) if not isinstance(x, np.ndarray) else x
        if self._net is None:
            if getattr(arr, "ndim", 0) == 2:
                self._require_built(arr.shape[1])
            else:
                self._require_built()
        return v.as_inputs(x, self._input_width(), self.dtype, name)

    def _xy(self, x, y, xname="X", yname="y"):
        xa = self._inputs(x, xname)
        ya = v.as_targets(y, xa.shape[0], self.output_dim, self.dtype, yname)
        return xa, ya

    def _data(self, x: Any, y: Any, sample_weight: Any = None, class_weight: Any = None,
              xname: str = "X", yname: str = "y"
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(X, targets, weights or None) checked for the compiled loss: targets as the loss
        takes them (class labels for the sparse loss), weights from sample_weight or
        class_weight (not both, as Keras)."""
        spec: _losses.Loss = self._loss  # type: ignore[assignment]  # compiled
        xa = self._inputs(x, xname)
        ta = _fitdata.as_targets(spec, y, xa.shape[0], self.layers[-1].units, self.dtype,
                                 yname)
        if sample_weight is not None and class_weight is not None:
            raise ValueError("cannot use class_weight and sample_weight at the same time")
        sw = None
        if sample_weight is not None:
            sw = _fitdata.as_sample_weight(sample_weight, xa.shape[0], self.dtype,
                                           "sample_weight" if yname == "y" else
                                           "validation sample_weight")
        elif class_weight is not None:
            sw = _fitdata.class_weight_to_sample_weight(class_weight, ta, spec, self.dtype)
        return xa, ta, sw

    @staticmethod
    def _joined(targets: np.ndarray, sw: np.ndarray | None) -> np.ndarray:
        """The y the compiled network takes: the targets, then the weights as one column."""
        if sw is None:
            return targets
        return np.ascontiguousarray(np.concatenate([targets, sw.reshape(-1, 1)], axis=1))

    # ------------------------------------------------------------------ training
    def fit(self, x: npt.ArrayLike, y: npt.ArrayLike, epochs: int = 1,
            batch_size: int | None = 32, shuffle: bool = True,
            validation_data: tuple[Any, ...] | None = None,
            verbose: int = 1,
            callbacks: Sequence[_callbacks.Callback] | None = None,
            validation_split: float = 0.0,
            sample_weight: npt.ArrayLike | None = None,
            class_weight: dict[int, float] | None = None,
            distributed: _distributed.MPI | None = None) -> History:
        """Train for `epochs` passes over (x, y) in batches of `batch_size` (the last batch
        may be smaller and is trained). Returns a History with, per epoch, "loss" (the mean
        over the epoch's samples of each batch's loss before its update), each compiled
        metric (on each batch's output before its update), and "val_loss" / "val_<metric>"
        when there is validation data.

        `validation_data`: (X_val, y_val) or (X_val, y_val, sample_weight_val);
        `validation_split`: else hold out the last fraction of (x, y) (before shuffling;
        Keras's rule: the first floor(n·(1 − fraction)) rows train). `sample_weight`: one
        weight per sample; `class_weight`: {class: weight} (not with sample_weight).
        `callbacks`: a list of `fastdense.callbacks.Callback`, called once per epoch as
        that module describes; one that sets `model.stop_training = True` ends training
        after the epoch.

        `distributed`: a `fastdense.distributed.MPI`, to train data-parallel: call fit on
        every rank with that rank's samples; `batch_size` is per rank, and every update
        averages the gradient over all ranks' batches (see `fastdense.distributed`)."""
        if distributed is None:
            return self._fit(x, y, epochs, batch_size, shuffle, validation_data, verbose,
                             callbacks, validation_split, sample_weight, class_weight, None)
        if not isinstance(distributed, _distributed.MPI):
            raise TypeError(f"distributed must be a fastdense.distributed.MPI, got "
                            f"{type(distributed).__name__}")
        try:
            checked = self._fit_inputs(x, y, epochs, batch_size, validation_data, callbacks,
                                       validation_split, sample_weight, class_weight)
            error = None
        except Exception as exc:     # every rank must learn of it, or the others would wait
            checked, error = None, exc
        distributed._agree(error, self._signature(checked, shuffle))
        assert checked is not None
        return self._train(*checked, shuffle, verbose, distributed)

    def _signature(self, checked: _FitInputs | None, shuffle: bool) -> tuple[Any, ...]:
        """What every rank of a distributed fit must share: the network, its dtype, loss,
        metrics and optimizer, and fit's settings."""
        if checked is None:
            return ()
        opt: _optimizers.Optimizer = self.optimizer  # type: ignore[assignment]  # compiled
        return (tuple(self._sizes()), str(self.dtype),
                tuple(layer.activation for layer in self.layers), self.loss,
                tuple(self.metrics_names), type(opt).__name__, opt._config(),
                checked[4], checked[5], bool(shuffle), checked[3] is not None)

    def _fit(self, x: Any, y: Any, epochs: int, batch_size: int | None, shuffle: bool,
             validation_data: Any, verbose: int, callbacks: Any, validation_split: float,
             sample_weight: Any, class_weight: Any, distributed: Any) -> History:
        checked = self._fit_inputs(x, y, epochs, batch_size, validation_data, callbacks,
                                   validation_split, sample_weight, class_weight)
        return self._train(*checked, shuffle, verbose, distributed)

    def _fit_inputs(self, x: Any, y: Any, epochs: int, batch_size: int | None,
                    validation_data: Any, callbacks: Any, validation_split: float,
                    sample_weight: Any, class_weight: Any) -> _FitInputs:
        """fit's checked boundary: (X, y joined with the weights, weighted, validation or
        None, epochs, batch size, callbacks), or the error, before anything changes."""
        self._require_compiled()
        if self._net is not None and self._net.busy_elsewhere():   # and when claimed below
            raise RuntimeError("this model is being trained by another thread; train one "
                               "model per thread, or wait for the other fit to finish")
        callbacks = _callbacks.checked(callbacks)
        xa, ta, sw = self._data(x, y, sample_weight, class_weight)
        epochs = v.count(epochs, "epochs", 0)
        batch_size = v.count(32 if batch_size is None else batch_size, "batch_size", 1)
        if xa.shape[0] == 0:
            raise ValueError("fit needs at least one sample; X is empty")
        split_at = _fitdata.validation_split(validation_split, xa.shape[0])
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) \
                    or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be (X_val, y_val) or "
                                 "(X_val, y_val, sample_weight_val)")
            xv, tv, swv = self._data(validation_data[0], validation_data[1],
                                     sample_weight=validation_data[2]
                                     if len(validation_data) == 3 else None,
                                     xname="X_val", yname="y_val")
            if xv.shape[0] == 0:
                raise ValueError("validation_data is empty")
            val = (xv, self._joined(tv, swv), swv is not None)
        elif split_at < xa.shape[0]:
            val = (np.ascontiguousarray(xa[split_at:]),
                   self._joined(ta[split_at:], None if sw is None else sw[split_at:]),
                   sw is not None)
            xa, ta = np.ascontiguousarray(xa[:split_at]), ta[:split_at]
            sw = None if sw is None else sw[:split_at]
        ya = self._joined(np.ascontiguousarray(ta), sw)
        return xa, ya, sw is not None, val, epochs, batch_size, callbacks

    def _train(self, xa: np.ndarray, ya: np.ndarray, weighted: bool, val: Any, epochs: int,
               batch_size: int, callbacks: Any, shuffle: bool, verbose: int,
               distributed: _distributed.MPI | None) -> History:
        """fit's training loop on checked data (one process, or this rank's part)."""
        n = xa.shape[0]
        bs = min(batch_size, n)
        self._set_head(weighted)
        opt: _optimizers.Optimizer = self.optimizer  # type: ignore[assignment]  # compiled
        net = self._net
        plan = None
        if distributed is not None:
            plan = distributed._plan(self, n, batch_size, val is not None)
            bs = batch_size
            n_batches, n_all = plan.steps, plan.n_total
            self._distributed = distributed
        else:
            n_batches, n_all = -(-n // bs), n
        config = opt._config()
        state = opt._model_state(net.n_params, self.dtype)
        history = History()
        self.history = history
        self.stop_training = False
        for cb in callbacks:
            cb.set_model(self)
            cb.set_params({"epochs": epochs, "steps": n_batches, "verbose": verbose})
        for cb in callbacks:
            cb.on_train_begin(None)
        logs = None
        ordered = np.arange(n, dtype=np.intp)
        order = ordered.copy() if shuffle else ordered
        fast_shuffle = shuffle and shuffle_matches_numpy()
        batch_losses = np.empty(n_batches)
        names = self.metrics_names
        msums = np.zeros(len(names))
        lr = opt.learning_rate
        constant_lr = isinstance(lr, float)
        # (bound once: the loop below runs once an epoch, and small epochs take microseconds)
        rng, record = self._rng, history.record
        train_epoch: Any = net.train_epoch
        shuffled_range, stop_requested = _train.shuffled_range, _train.stop_requested
        if plan is not None:
            rng = plan.shuffler(self)
            train_epoch = plan.train_epoch
            verbose = verbose if distributed.rank == 0 else 0  # type: ignore[union-attr]
        net.claim()     # for the whole fit: no other thread slips in between epochs
        try:
            with _deferred_ctrl_c():
                for epoch in range(epochs):
                    for cb in callbacks:
                        cb.on_epoch_begin(epoch, None)
                    if shuffle:     # = self._rng.permutation(n), without a new array each epoch
                        if fast_shuffle:
                            shuffled_range(order, rng)
                        else:
                            np.copyto(order, ordered)
                            rng.shuffle(order)
                    lrs = lr if constant_lr else opt._learning_rates(opt.iterations + 1, n_batches)
                    if val is not None:
                        self._set_head(weighted)
                    msums[:] = 0
                    loss, done, stop = train_epoch(xa, ya, order, bs, config, state, lrs,
                                                   opt.iterations + 1, batch_losses, msums)
                    opt.iterations += done
                    if stop == "diverged":
                        raise DivergenceError(epoch, done, history)
                    if stop is not None:        # Ctrl-C: the model is at its last completed update
                        raise stop if isinstance(stop, BaseException) else KeyboardInterrupt()
                    logs = {"loss": loss}
                    for name, total in zip(names, msums):
                        logs[name] = float(total) / n_all
                    if val is not None or (plan is not None and plan.has_val):
                        if val is not None:
                            self._set_head(val[2])
                        if plan is None:
                            val_loss, val_metrics = net.evaluate(val[0], val[1])
                        else:
                            val_loss, val_metrics = plan.evaluate(net.evaluate, val, len(names))
                        logs["val_loss"] = val_loss
                        for name, value in zip(names, val_metrics):
                            logs["val_" + name] = value
                    for cb in callbacks:
                        cb.on_epoch_end(epoch, logs)
                    record(epoch, logs)
                    if verbose:
                        print(progress_line(epoch, epochs, logs), flush=True)
                    interrupted = stop_requested()
                    if plan is not None:        # every rank stops, or none
                        self.stop_training, interrupted = plan.agree_stop(
                            self.stop_training, interrupted)
                    if interrupted:             # Ctrl-C during the bookkeeping
                        raise KeyboardInterrupt
                    if self.stop_training:
                        break
            for cb in callbacks:
                cb.on_train_end(logs)
        except BaseException as exc:
            # A rank that fails alone would leave the others waiting in a collective; the
            # stops that every rank takes together (divergence, an agreed Ctrl-C) raise.
            if plan is not None and not isinstance(exc, (DivergenceError, KeyboardInterrupt)):
                distributed._abort(exc)  # type: ignore[union-attr]
            raise
        finally:
            net.release()
        if plan is not None:
            plan.check_identical()
        return history

    def train_on_batch(self, x: npt.ArrayLike, y: npt.ArrayLike,
                       sample_weight: npt.ArrayLike | None = None) -> float:
        """One update on (x, y) as a single batch; returns the loss before the update.

        Finite, C-contiguous arrays of the model's dtype go straight to the compiled
        update (unweighted regression losses); anything else is validated and converted
        first."""
        self._require_compiled()
        opt: _optimizers.Optimizer = self.optimizer  # type: ignore[assignment]  # compiled
        net: Network | None = self._net
        if net is not None and sample_weight is None and not net.busy_elsewhere():
            self._set_head(False)
            t = opt.iterations + 1
            result = net.train_batch(x, y, opt._config(),
                                     opt._model_state(net.n_params, self.dtype),
                                     opt._learning_rate_at(t), t)
            if result is not None:
                loss, done = result
                opt.iterations += done
                if not done:
                    raise DivergenceError(0, 0)
                return loss
        xa, ta, sw = self._data(x, y, sample_weight)
        n = xa.shape[0]
        if n == 0:
            raise ValueError("train_on_batch needs at least one sample; x is empty")
        net = self._net
        if net.busy_elsewhere():
            raise RuntimeError("this model is being trained by another thread")
        self._set_head(sw is not None)
        ya = self._joined(ta, sw)
        loss, done, _ = net.train_epoch(xa, ya, np.arange(n, dtype=np.intp), n,
                                        opt._config(),
                                        opt._model_state(net.n_params, self.dtype),
                                        opt._learning_rates(opt.iterations + 1, 1),
                                        opt.iterations + 1)
        opt.iterations += done
        if not done:
            raise DivergenceError(0, 0)
        return loss

    def compute_gradients(self, x: npt.ArrayLike, y: npt.ArrayLike,
                          sample_weight: npt.ArrayLike | None = None
                          ) -> tuple[float, list[np.ndarray]]:
        """(loss, [dW0, db0, dW1, db1, …]) of the compiled loss (MSE if not compiled) on
        (x, y), regularisers included; the weights are unchanged."""
        if self._loss is None:
            self._loss = _losses.get("mse")
        xa, ta, sw = self._data(x, y, sample_weight)
        if xa.shape[0] == 0:
            raise ValueError("gradients of an empty batch are undefined")
        if self._net.busy_elsewhere():
            raise RuntimeError("this model is being trained by another thread")
        self._set_head(sw is not None)
        loss, grads = self._net.gradients(xa, self._joined(ta, sw))
        return loss, self._net.views(grads)

    # ------------------------------------------------------------------ inference
    def predict(self, x: npt.ArrayLike, batch_size: int | None = None,
                verbose: int = 0) -> np.ndarray:
        """The network's outputs for the rows of x, shape (n, outputs), in the model's dtype.

        A finite, C-contiguous 2-D array of the model's dtype goes straight to the compiled
        forward pass; anything else is validated and converted first."""
        if batch_size is not None:
            v.count(batch_size, "batch_size", 1)
        net = self._net
        if net is not None:
            out = net.forward(x)
            if out is not None:
                return out
        return self._net.forward(self._inputs(x))  # type: ignore[return-value]  # validated

    def evaluate(self, x: npt.ArrayLike, y: npt.ArrayLike, batch_size: int | None = None,
                 verbose: int = 0, sample_weight: npt.ArrayLike | None = None,
                 return_dict: bool = False) -> Any:
        """The compiled loss (MSE if not compiled; Σᵢ wᵢ lᵢ / n plus the regularisers'
        penalty) over (x, y): a float when no metrics were compiled, else
        [loss, metric, …] in compile's order, or {"loss": …, name: …} with return_dict."""
        if batch_size is not None:
            v.count(batch_size, "batch_size", 1)
        if self._loss is None:
            self._loss = _losses.get("mse")
        xa, ta, sw = self._data(x, y, sample_weight)
        if xa.shape[0] == 0:
            raise ValueError("evaluate needs at least one sample; X is empty")
        if self._net.busy_elsewhere():
            raise RuntimeError("this model is being trained by another thread")
        self._set_head(sw is not None)
        loss, values = self._net.evaluate(xa, self._joined(ta, sw))
        if return_dict:
            return {"loss": loss, **dict(zip(self.metrics_names, values))}
        return [loss, *values] if self.metrics_names else loss

    # ------------------------------------------------------------------ weights
    def get_weights(self) -> list[np.ndarray]:
        """[W0 (in, out), b0 (out,), W1, b1, …], as copies."""
        self._require_built()
        return [a.copy() for a in self._net.views(self._net.params)]

    def set_weights(self, weights: Iterable[npt.ArrayLike]) -> None:
        """Replace every weight; all shapes and values are checked before any is written."""
        self._require_built()
        if self._net.busy_elsewhere():
            raise RuntimeError("cannot set the weights while another thread trains this model")
        targets = self._net.views(self._net.params)
        weights = list(weights)
        if len(weights) != len(targets):
            raise ValueError(f"expected {len(targets)} arrays (W and b of each layer), "
                             f"got {len(weights)}")
        converted = []
        for i, (w, t) in enumerate(zip(weights, targets)):
            name = f"{'W' if i % 2 == 0 else 'b'}{i // 2}"
            a = v.as_float_array(w, self.dtype, name)
            if a.shape != t.shape:
                raise ValueError(f"{name} has shape {a.shape}, expected {t.shape}")
            converted.append(a)
        for a, t in zip(converted, targets):
            t[...] = a

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to one `.npz` file at `path` (str or os.PathLike, used as given:
        no extension is added): architecture, weights, compile settings, optimizer state
        and the shuffling generator, so `fd.load_model(path)` resumes training exactly.
        Written atomically: a failure leaves any existing file under `path` untouched.
        See `fastdense.saving` for the format. After a distributed fit, only rank 0
        writes (the ranks hold the same model); the others return at once."""
        dist = getattr(self, "_distributed", None)
        if dist is not None and dist.rank != 0:
            return
        _saving.save_model(self, path)

    # ------------------------------------------------------------------ other frameworks
    def export_onnx(self, path: str | os.PathLike[str], opset: int | None = None) -> Any:
        """Write an ONNX file computing `predict` (`fastdense.interop.export_onnx`; opset
        13 by default; needs the `onnx` package)."""
        from .interop import export_onnx
        return export_onnx(self, path, opset)

    def to_torch(self) -> Any:
        """The network as a `torch.nn.Sequential` (`fastdense.interop.to_torch`)."""
        from .interop import to_torch
        return to_torch(self)

    @classmethod
    def from_torch(cls, module: Any, dtype: npt.DTypeLike | None = None) -> Sequential:
        """A model with the weights of a `torch.nn.Sequential` of `Linear` and activation
        modules (`fastdense.interop.from_torch`)."""
        from .interop import from_torch
        return from_torch(module, dtype)

    def to_keras(self) -> Any:
        """The network as a Keras 3 `Sequential` of `Dense` layers
        (`fastdense.interop.to_keras`)."""
        from .interop import to_keras
        return to_keras(self)

    @classmethod
    def from_keras(cls, keras_model: Any, dtype: npt.DTypeLike | None = None) -> Sequential:
        """A model with the weights of a Keras 3 `Sequential` of `Dense` layers
        (`fastdense.interop.from_keras`)."""
        from .interop import from_keras
        return from_keras(keras_model, dtype)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # pickling (multiprocessing, scikit-learn) goes through the same checked format
        return (_saving.model_from_bytes, (_saving.model_to_bytes(self),))

    def __repr__(self) -> str:
        return f"Sequential({self.layers!r}, dtype={self.dtype.name!r})"


def load_model(path: str | os.PathLike[str]) -> Sequential:
    """The model saved at `path` by `Sequential.save` (`fastdense.saving` checks every
    entry). FileNotFoundError if there is no file; ValueError if it is not a valid fastdense
    model file of a version this fastdense reads."""
    model = _saving.load_model(path)
    assert isinstance(model, Sequential)
    return model


@contextlib.contextmanager
def _deferred_ctrl_c():
    """While fit runs (in the main thread, under Python's default Ctrl-C handler), Ctrl-C
    only raises a flag: the compiled epoch loop sees it within about a millisecond of work
    and stops between two updates, and fit checks it once each epoch's bookkeeping is
    done — so a KeyboardInterrupt never lands between an update and its record."""
    _train.clear_stop()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: _train.request_stop())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _train.clear_stop()
