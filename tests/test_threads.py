"""fastdense in threads: kernels release the GIL; models are independent; one model is
trained by one thread at a time, and predicted from by any number."""
import threading

import numpy as np
import pytest

import fastdense as fd
from conftest import make_model


def compiled(seed, sizes=(64, 128, 64, 2)):
    model = make_model(list(sizes), dtype="float32", seed=seed)
    model.compile(optimizer=fd.optimizers.Adam(learning_rate=1e-3), loss="mse")
    return model


def run_in_threads(*targets):
    errors = []

    def wrap(fn):
        try:
            fn()
        except BaseException as exc:          # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_two_models_in_two_threads_train_as_one_after_the_other(rng):
    x = rng.random((2048, 64), dtype=np.float32)
    y = rng.random((2048, 2), dtype=np.float32)
    parallel = [compiled(1), compiled(2)]
    run_in_threads(*(lambda m=m: m.fit(x, y, epochs=3, batch_size=64, verbose=0)
                     for m in parallel))
    for seed, trained in zip((1, 2), parallel):
        alone = compiled(seed)
        alone.fit(x, y, epochs=3, batch_size=64, verbose=0)
        for a, b in zip(trained.get_weights(), alone.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_predict_from_many_threads_at_once_is_safe(rng):
    model = compiled(3)
    inputs = [rng.random((n, 64), dtype=np.float32) for n in (1, 7, 300, 2500)] * 4
    expected = [model.predict(x) for x in inputs]
    results = [None] * len(inputs)

    def work(i):
        for _ in range(20):
            results[i] = model.predict(inputs[i])

    run_in_threads(*(lambda i=i: work(i) for i in range(len(inputs))))
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_a_second_concurrent_fit_on_one_model_is_refused(rng):
    x = rng.random((8192, 64), dtype=np.float32)
    y = rng.random((8192, 2), dtype=np.float32)
    model = compiled(4, sizes=(64, 512, 512, 2))
    started = threading.Event()
    outcome = {}

    def long_fit():
        started.set()
        outcome["history"] = model.fit(x, y, epochs=3, batch_size=32, verbose=0)

    worker = threading.Thread(target=long_fit)
    worker.start()
    started.wait()
    refused = []
    try:
        for _ in range(2000):       # catch the other thread inside its compiled epoch
            if model._net.busy:
                for call in (lambda: model.fit(x, y, epochs=1, verbose=0),
                             lambda: model.train_on_batch(x[:8], y[:8]),
                             lambda: model.set_weights(model.get_weights())):
                    with pytest.raises(RuntimeError, match="another thread"):
                        call()
                    refused.append(call)
                break
            threading.Event().wait(0.001)
    finally:
        worker.join()
    assert len(refused) == 3
    assert len(outcome["history"].history["loss"]) == 3
    assert model.optimizer.iterations == 3 * 256


def test_between_two_epochs_of_a_fit_no_other_thread_can_train_the_model(rng):
    """fit holds the model for all its epochs, not only inside each compiled epoch."""
    x = rng.random((256, 64), dtype=np.float32)
    y = rng.random((256, 2), dtype=np.float32)
    model = compiled(5)
    between = threading.Event()
    tried = threading.Event()
    outcome = {}

    class PauseAfterFirstEpoch(fd.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                between.set()           # the worker is now between two epochs
                tried.wait(10)

    def worker():
        outcome["history"] = model.fit(x, y, epochs=2, batch_size=64, verbose=0,
                                       callbacks=[PauseAfterFirstEpoch()])

    t = threading.Thread(target=worker)
    t.start()
    between.wait(10)
    try:
        with pytest.raises(RuntimeError, match="another thread"):
            model.fit(x, y, epochs=1, verbose=0)
        with pytest.raises(RuntimeError, match="another thread"):
            model.train_on_batch(x[:8], y[:8])
    finally:
        tried.set()
        t.join()
    assert len(outcome["history"].history["loss"]) == 2
    assert model.optimizer.iterations == 2 * 4
    model.fit(x, y, epochs=1, verbose=0)       # free again afterwards
