"""Ctrl-C during a long fit stops it within a batch or two, leaving a consistent model."""
import os
import signal
import threading
import time

import numpy as np
import pytest

import fastdense as fd
from conftest import make_model

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"),
                                reason="needs POSIX signals")


def model(seed=0):
    m = make_model([256, 256, 256, 1], dtype="float64", seed=seed)
    m.compile(optimizer=fd.optimizers.SGD(learning_rate=1e-4), loss="mse")
    return m


def test_ctrl_c_stops_fit_within_a_few_batches_at_a_completed_update(rng):
    x = rng.standard_normal((4096, 256))
    y = rng.standard_normal((4096, 1))
    interrupted = model()
    main = threading.main_thread().ident
    timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            interrupted.fit(x, y, epochs=10_000, batch_size=256, shuffle=False, verbose=0)
    finally:
        timer.cancel()
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0                 # 10,000 epochs would take minutes
    done = interrupted.optimizer.iterations
    epochs = len(interrupted.history.history.get("loss", []))
    assert 0 < done and epochs * 16 <= done < (epochs + 1) * 16
    # the weights are exactly those after `done` updates
    replay = model()
    if epochs:
        replay.fit(x, y, epochs=epochs, batch_size=256, shuffle=False, verbose=0)
    for b in range(done - epochs * 16):
        replay.train_on_batch(x[256 * b:256 * (b + 1)], y[256 * b:256 * (b + 1)])
    for a, b in zip(interrupted.get_weights(), replay.get_weights()):
        np.testing.assert_array_equal(a, b)
    # and training goes on from there
    interrupted.fit(x, y, epochs=1, batch_size=256, shuffle=False, verbose=0)
    assert interrupted.optimizer.iterations == done + 16


def test_ctrl_c_between_an_epoch_and_its_record_still_records_it(rng):
    """Ctrl-C landing in an epoch's bookkeeping (here: inside a callback) is deferred until
    the epoch is recorded, so History and the iteration count always agree."""
    x = rng.standard_normal((64, 256))
    y = rng.standard_normal((64, 1))

    class CtrlCAtEpoch2(fd.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    m = model()
    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, epochs=10, batch_size=16, verbose=0, callbacks=[CtrlCAtEpoch2()])
    assert len(m.history.history["loss"]) == 3
    assert m.optimizer.iterations == 3 * 4
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
