"""Training flushes subnormal floats to zero (FTZ + DAZ on the training thread and the
update pool's workers, fd_fpenv.h) unless fd.set_flush_denormals(False); predict and
evaluate never flush; the calling thread's register is restored after every call."""
import numpy as np
import pytest

import fastdense as fd
from fastdense import reference
from fastdense._core import train, updates

needs_mxcsr = pytest.mark.skipif(not train.flushing_in_training(),
                                 reason="no SSE control register on this CPU")


@pytest.fixture
def flush_setting():
    previous = fd.get_flush_denormals()
    yield
    fd.set_flush_denormals(previous)


def test_on_by_default_and_switchable(flush_setting):
    assert fd.get_flush_denormals() is True
    assert fd.set_flush_denormals(False) is True
    assert fd.get_flush_denormals() is False
    assert train.flushing_in_training() is False
    assert fd.set_flush_denormals(True) is False
    assert fd.get_flush_denormals() is True


@pytest.mark.parametrize("bad", [1, 0, "yes", None, 1.0])
def test_only_a_boolean_is_taken(bad, flush_setting):
    with pytest.raises(TypeError, match="True or False"):
        fd.set_flush_denormals(bad)
    assert fd.get_flush_denormals() is True


@needs_mxcsr
def test_the_callers_register_is_restored(flush_setting):
    model = fd.Sequential([fd.Dense(4, activation="relu", input_dim=3), fd.Dense(1)], seed=0)
    model.compile(optimizer="adam", loss="mse")
    x = np.ones((8, 3), np.float32)
    assert not train.flushing_now()
    model.fit(x, x[:, :1], epochs=2, batch_size=4, verbose=0)
    model.train_on_batch(x, x[:, :1])
    model.compute_gradients(x, x[:, :1])
    assert not train.flushing_now()


def tiny_gradient_model(module, dtype, n_in=1):
    """Dense(1) on one input, W = b = 0, Adam(1e-3): with x = y = 1e-20 (float32) the
    kernel's gradient x·2(z − y) = −2e-40 is subnormal, and so is Adam's first moment; the
    step −lr·m̂/(√v̂ + ε) ≈ +2e-36 is normal again."""
    model = module.Sequential([fd.Dense(1, input_dim=n_in)], dtype=dtype, seed=0)
    model.set_weights([np.zeros((n_in, 1)), np.zeros(1)])
    opt = (fd.optimizers if module is fd else reference).Adam(learning_rate=1e-3)
    model.compile(optimizer=opt, loss="mse")
    return model


@needs_mxcsr
@pytest.mark.parametrize("how", ["fit", "train_on_batch"])
def test_a_subnormal_gradient_is_flushed_in_training(how, flush_setting):
    x = np.full((1, 1), 1e-20, np.float32)
    results = {}
    for flush in (True, False):
        fd.set_flush_denormals(flush)
        model = tiny_gradient_model(fd, "float32")
        if how == "fit":
            model.fit(x, x, epochs=1, batch_size=1, shuffle=False, verbose=0)
        else:
            model.train_on_batch(x, x)
        results[flush] = model.get_weights()[0][0, 0]
    ref = tiny_gradient_model(reference, "float32")
    ref.fit(x, x, epochs=1, batch_size=1, shuffle=False, verbose=0)
    expected = ref.get_weights()[0][0, 0]
    # the IEEE result: a positive step, a normal float
    assert np.finfo(np.float32).tiny < expected < 1e-35
    assert results[False] == pytest.approx(expected, rel=1e-5)
    assert results[True] == 0.0                    # the gradient flushed: no step


@needs_mxcsr
def test_predict_and_evaluate_do_not_flush(flush_setting):
    model = fd.Sequential([fd.Dense(1, input_dim=1)], seed=0)
    model.set_weights([np.full((1, 1), 1e-20), np.zeros(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.full((2, 1), 1e-20, np.float32)
    out = model.predict(x)
    assert out[0, 0] == np.float32(1e-20) * np.float32(1e-20) != 0    # 1e-40, subnormal
    assert model.evaluate(x, np.zeros((2, 1), np.float32)) > 0


@needs_mxcsr
@pytest.mark.skipif(not updates.THREADS_SUPPORTED, reason="built without the update pool")
def test_the_update_pools_workers_flush_as_the_caller(flush_setting):
    """Dense(1) on 4 M inputs (so the Adam step runs threaded, in 64 pieces) whose kernel
    gradients are all subnormal: the worker's pieces must flush as the caller's, so every
    weight stays 0, as in the one-thread fit; unflushed, every weight takes a step."""
    n_in = 64 * updates.CHUNK_VALUES
    x = np.full((2, n_in), 1e-20, np.float32)
    y = np.full((2, 1), 1e-20, np.float32)
    previous = fd.get_num_threads()
    kernels = {}
    try:
        for flush, threads in ((True, 1), (True, 2), (False, 2)):
            fd.set_flush_denormals(flush)
            fd.set_num_threads(threads)
            model = tiny_gradient_model(fd, "float32", n_in)
            model.fit(x, y, epochs=1, batch_size=2, shuffle=False, verbose=0)
            kernels[flush, threads] = model.get_weights()[0]
    finally:
        fd.set_num_threads(previous)
    np.testing.assert_array_equal(kernels[True, 1], 0)
    np.testing.assert_array_equal(kernels[True, 2], 0)
    assert np.all(kernels[False, 2] > 0)
