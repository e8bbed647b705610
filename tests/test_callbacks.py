"""fit(callbacks=[...]): the hooks, stop_training, EarlyStopping and TerminateOnNaN."""
import math
import warnings

import numpy as np
import pytest

import fastdense as fd
from fastdense.callbacks import Callback, EarlyStopping, History, TerminateOnNaN
from conftest import make_model


class FakeModel:
    """Just what a callback touches: stop_training and the weights (one number here)."""

    def __init__(self):
        self.stop_training = False
        self.weights = [np.zeros(1)]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [w.copy() for w in weights]


def drive(callback, values, monitor="val_loss"):
    """Run the callback over one training with `values` as the monitored metric, the
    model's weight after epoch e being e; returns (epochs run, model)."""
    model = FakeModel()
    callback.set_model(model)
    callback.on_train_begin()
    ran = 0
    for epoch, value in enumerate(values):
        model.weights = [np.array([float(epoch)])]
        callback.on_epoch_end(epoch, {"loss": 1.0, monitor: value})
        ran += 1
        if model.stop_training:
            break
    callback.on_train_end()
    return ran, model


def data(seed=0, n=40):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    return x, x @ np.array([[1.0], [-2.0], [0.5]])


def compiled(seed=0, lr=0.05):
    model = make_model([3, 8, 1], seed=seed)
    model.compile(fd.optimizers.SGD(learning_rate=lr), "mse")
    return model


# ---------------------------------------------------------------------- fit's hooks
class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def set_model(self, model):
        super().set_model(model)
        self.calls.append("set_model")

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin", logs))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", sorted(logs)))


def test_fit_calls_the_hooks_in_keras_order():
    x, y = data()
    model, rec = compiled(), Recorder()
    model.fit(x, y, epochs=2, batch_size=16, validation_data=data(1, 10), verbose=0,
              callbacks=[rec])
    assert rec.model is model
    assert rec.params == {"epochs": 2, "steps": 3, "verbose": 0}
    metrics = ["loss", "val_loss"]
    assert rec.calls == ["set_model", ("train_begin", None),
                         ("epoch_begin", 0), ("epoch_end", 0, metrics),
                         ("epoch_begin", 1), ("epoch_end", 1, metrics),
                         ("train_end", metrics)]


def test_the_logs_are_the_epochs_metrics_and_what_callbacks_add_reaches_the_history():
    seen = []

    class AddMetric(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(dict(logs))
            logs["double_loss"] = 2 * logs["loss"]

    x, y = data()
    history = compiled().fit(x, y, epochs=3, verbose=0, callbacks=[AddMetric()])
    assert [s["loss"] for s in seen] == history.history["loss"]
    assert history.history["double_loss"] == [2 * v for v in history.history["loss"]]


def test_a_callback_stops_training_by_setting_stop_training():
    class StopAfterSecond(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    x, y = data()
    model = compiled()
    history = model.fit(x, y, epochs=10, batch_size=8, verbose=0,
                        callbacks=[StopAfterSecond()])
    assert history.epoch == [0, 1]
    assert model.optimizer.iterations == 2 * 5
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)        # reset for the next fit
    assert model.optimizer.iterations == 4 * 5


def test_callbacks_do_not_change_the_training():
    x, y = data()
    a, b = compiled(), compiled()
    ha = a.fit(x, y, epochs=3, verbose=0)
    hb = b.fit(x, y, epochs=3, verbose=0, callbacks=[Recorder(), TerminateOnNaN()])
    assert ha.history == hb.history
    for u, w in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, w)


@pytest.mark.parametrize("bad, message", [
    (EarlyStopping(), r"list of fastdense Callback instances, got EarlyStopping"),
    ("early", "got str"),
    ([History(), "stop"], r"callbacks\[1\] must be a fastdense Callback instance, got 'stop'"),
    ([lambda epoch, logs: None], r"callbacks\[0\]"),
])
def test_the_callbacks_argument_must_be_a_list_of_callbacks(bad, message):
    x, y = data()
    model = compiled()
    before = model.get_weights()
    with pytest.raises(TypeError, match=message):
        model.fit(x, y, epochs=1, verbose=0, callbacks=bad)
    for u, w in zip(before, model.get_weights()):
        np.testing.assert_array_equal(u, w)


def test_a_batch_hook_warns_that_it_is_never_called():
    class PerBatch(Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise AssertionError("never called")

    x, y = data()
    with pytest.warns(UserWarning, match="on_train_batch_end is never called"):
        compiled().fit(x, y, epochs=1, verbose=0, callbacks=[PerBatch()])


def test_history_is_a_callback():
    h = History()
    assert isinstance(h, Callback)
    h.on_epoch_end(0, {"loss": 2.0})
    h.on_epoch_end(1, {"loss": 1.0})
    assert h.epoch == [0, 1] and h.history == {"loss": [2.0, 1.0]}


# ---------------------------------------------------------------------- EarlyStopping
# Keras 3's rule, worked by hand: each monitored epoch wait += 1; an improvement resets it
# (and sets best); otherwise the run stops once wait >= patience (never at epoch 0).
@pytest.mark.parametrize("kwargs, values, ran, best", [
    (dict(patience=0), [3.0, 4.0, 1.0], 2, 3.0),
    (dict(patience=2), [5.0, 4.0, 3.0, 3.5, 3.2, 2.0], 5, 3.0),
    (dict(patience=2), [5.0, 4.0, 3.0, 3.5, 2.9, 2.8, 2.85, 2.81], 8, 2.8),
    (dict(patience=3), [1.0, 1.0, 1.0, 1.0, 0.0], 4, 1.0),          # equal is no better
    (dict(patience=1, min_delta=0.5), [10.0, 9.6, 9.0], 2, 10.0),
    (dict(patience=1, min_delta=-0.5), [10.0, 9.0, 8.7], 3, 9.0),   # |min_delta|
    (dict(patience=1, mode="max", monitor="accuracy"), [0.1, 0.5, 0.4, 0.9], 3, 0.5),
    (dict(patience=1, start_from_epoch=2), [1.0, 2.0, 3.0, 4.0, 5.0], 4, 3.0),
    (dict(patience=2, baseline=1.0), [2.0, 2.5, 2.6], 2, 2.0),
    (dict(patience=2, baseline=1.0), [2.0, 1.9, 1.8, 1.7], 4, 1.7),  # improving: no stop
    (dict(patience=1), [2.0, math.nan, 1.0], 2, 2.0),                # NaN never improves
    (dict(patience=5), [1.0, 2.0, 3.0], 3, 1.0),                     # runs out first
])
def test_early_stopping_on_a_sequence_of_values(kwargs, values, ran, best):
    monitor = kwargs.get("monitor", "val_loss")
    stopper = EarlyStopping(**kwargs)
    got, model = drive(stopper, values, monitor)
    assert got == ran
    assert stopper.best == best
    assert stopper.stopped_epoch == (ran - 1 if model.stop_training else 0)


def test_early_stopping_restores_the_best_weights_at_the_end():
    stopper = EarlyStopping(patience=2, restore_best_weights=True)
    ran, model = drive(stopper, [5.0, 3.0, 4.0, 4.5, 1.0])
    assert ran == 4 and stopper.best_epoch == 1
    assert model.weights[0][0] == 1.0


def test_best_weights_are_restored_even_without_an_early_stop():
    stopper = EarlyStopping(patience=10, restore_best_weights=True)
    ran, model = drive(stopper, [5.0, 3.0, 4.0])
    assert ran == 3 and stopper.stopped_epoch == 0
    assert model.weights[0][0] == 1.0


def test_without_restore_the_last_weights_stay():
    ran, model = drive(EarlyStopping(patience=1), [5.0, 3.0, 4.0])
    assert ran == 3 and model.weights[0][0] == 2.0


def test_a_missing_monitor_warns_and_never_stops():
    stopper = EarlyStopping(monitor="val_loss", patience=0)
    model = FakeModel()
    stopper.set_model(model)
    stopper.on_train_begin()
    for epoch in range(3):
        with pytest.warns(UserWarning, match="'val_loss', which is not available.*loss"):
            stopper.on_epoch_end(epoch, {"loss": 1.0})
    assert not model.stop_training


def test_an_instance_starts_afresh_in_each_training():
    stopper = EarlyStopping(patience=1)
    drive(stopper, [1.0, 2.0])
    assert stopper.stopped_epoch == 1
    ran, _ = drive(stopper, [5.0, 4.0, 3.0])
    assert ran == 3 and stopper.best == 3.0 and stopper.stopped_epoch == 0


@pytest.mark.parametrize("kwargs, error", [
    (dict(mode="minimum"), ValueError),
    (dict(monitor="accuracy"), ValueError),        # auto can't tell its direction
    (dict(patience=-1), ValueError),
    (dict(patience=1.5), TypeError),
    (dict(min_delta="0.1"), TypeError),
    (dict(restore_best_weights=1), TypeError),
    (dict(monitor=None), TypeError),
    (dict(start_from_epoch=-2), ValueError),
])
def test_early_stopping_validates_its_arguments(kwargs, error):
    with pytest.raises(error):
        EarlyStopping(**kwargs)


def test_early_stopping_ends_a_fit_whose_val_loss_stops_improving():
    """Validation targets of the opposite sign: as the fit improves, val_loss worsens from
    the first epoch on, so with patience 2 training stops at epoch 2 and restoring puts
    back the weights after epoch 0."""
    x, y = data()
    xv, yv = data(1, 20)
    model = compiled()
    stopper = EarlyStopping(patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=50, batch_size=8, validation_data=(xv, -yv),
                        verbose=0, callbacks=[stopper])
    val = history.history["val_loss"]
    assert all(b > a for a, b in zip(val, val[1:]))          # the premise
    assert history.epoch == [0, 1, 2]
    assert stopper.stopped_epoch == 2 and stopper.best == val[0]
    one_epoch = compiled()
    one_epoch.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for u, w in zip(model.get_weights(), one_epoch.get_weights()):
        np.testing.assert_array_equal(u, w)
    assert model.evaluate(xv, -yv) == val[0]


def test_early_stopping_on_loss_runs_to_the_end_while_it_improves():
    x, y = data()
    stopper = EarlyStopping(monitor="loss", patience=0)
    history = compiled(lr=0.01).fit(x, y, epochs=5, verbose=0, callbacks=[stopper])
    assert len(history.epoch) == 5 and stopper.stopped_epoch == 0


def test_early_stopping_says_so_when_verbose(capsys):
    stopper = EarlyStopping(patience=0, verbose=1, restore_best_weights=True)
    drive(stopper, [1.0, 2.0])
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out
    assert "best epoch: 1" in out


# ---------------------------------------------------------------------- TerminateOnNaN
@pytest.mark.parametrize("loss, stops", [(math.nan, True), (math.inf, True),
                                         (-math.inf, True), (1e300, False), (0.0, False)])
def test_terminate_on_nan_stops_on_a_non_finite_loss(loss, stops):
    cb = TerminateOnNaN()
    model = FakeModel()
    cb.set_model(model)
    cb.on_epoch_end(0, {"loss": loss})
    assert model.stop_training is stops


def test_terminate_on_nan_ignores_epochs_without_a_loss():
    cb = TerminateOnNaN()
    cb.set_model(FakeModel())
    cb.on_epoch_end(0, {})
    cb.on_epoch_end(1, None)
    assert not cb.model.stop_training


def test_terminate_on_nan_can_raise_instead():
    cb = TerminateOnNaN(raise_error=True)
    cb.set_model(FakeModel())
    with pytest.raises(RuntimeError, match="epoch 3"):
        cb.on_epoch_end(2, {"loss": math.nan})


def test_terminate_on_nan_ends_a_fit_given_a_nan_loss():
    class Poison(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                logs["loss"] = math.nan

    x, y = data()
    model = compiled()
    history = model.fit(x, y, epochs=10, verbose=0, callbacks=[Poison(), TerminateOnNaN()])
    assert history.epoch == [0, 1] and math.isnan(history.history["loss"][1])


def test_a_diverging_fit_still_raises_divergence_error_with_terminate_on_nan():
    """fastdense's own per-batch guard comes first: the non-finite batch is not applied."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)) * 10
    y = x.sum(axis=1, keepdims=True) * 100
    model = compiled(lr=5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(fd.DivergenceError):
            model.fit(x, y, epochs=50, batch_size=8, verbose=0,
                      callbacks=[TerminateOnNaN()])
    assert all(np.isfinite(w).all() for w in model.get_weights())
