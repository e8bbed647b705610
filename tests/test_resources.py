"""What a training step costs besides arithmetic: Python calls, allocations, threads."""
import sys
import tracemalloc

import numpy as np
import pytest

import fastdense as fd
from fastdense._threads import blas_num_threads
from conftest import make_model


def compiled(sizes, seed=0):
    model = make_model(sizes, dtype="float32", seed=seed)
    model.compile(optimizer=fd.optimizers.SGD(learning_rate=0.01), loss="mse")
    return model


def python_calls(fn):
    """How many Python and C-function calls fn makes (a profile hook counts them)."""
    count = 0

    def hook(frame, event, arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(hook)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_an_epoch_costs_the_same_python_work_whatever_its_number_of_updates(rng, optimizer):
    """Python is entered once per epoch, never per batch: 1 update an epoch and 100
    updates an epoch make exactly the same Python calls."""
    x = rng.random((1000, 10), dtype=np.float32)
    y = rng.random((1000, 1), dtype=np.float32)
    counts = []
    for batch_size in (1000, 10):
        model = make_model([10, 10, 10, 1], dtype="float32")
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)       # warm
        counts.append(python_calls(
            lambda: model.fit(x, y, epochs=5, batch_size=batch_size, verbose=0)))
    assert counts[0] == counts[1]


def test_training_allocates_nothing_per_update(rng):
    """After the first epoch, further epochs allocate only a small constant each (the
    shuffle and the per-epoch bookkeeping), whatever the number of updates."""
    x = rng.random((2000, 10), dtype=np.float32)
    y = rng.random((2000, 1), dtype=np.float32)
    model = compiled([10, 10, 10, 1])
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        model.fit(x, y, epochs=20, batch_size=4, verbose=0)              # 10,000 updates
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 64 * 1024           # permutation (16 kB) + per-epoch arrays
    assert after - before < 8 * 1024           # what stays: the History's 20 floats


def test_peak_memory_of_fit_is_data_plus_parameters_plus_workspace(rng):
    """Peak traced memory of a whole fit ≤ data + 2 × parameters + workspaces + margin.
    (tracemalloc sees NumPy's buffers, which hold all of fastdense's memory.)"""
    n, sizes = 4096, [300, 256, 128, 10]
    x = rng.random((n, sizes[0]), dtype=np.float32)
    y = rng.random((n, sizes[-1]), dtype=np.float32)
    model = compiled(sizes)
    batch = 128
    params = model.count_params() * 4
    workspace = batch * (sum(sizes) + sizes[-1] + 2 * max(sizes)) * 4
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        model.fit(x, y, epochs=2, batch_size=batch, verbose=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before <= 2 * params + workspace + 1024 * 1024


def test_fit_of_non_contiguous_data_copies_it_once(rng):
    x = np.asfortranarray(rng.random((4096, 64), dtype=np.float32))
    y = rng.random((4096, 1), dtype=np.float32)
    model = compiled([64, 32, 1])
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        model.fit(x, y, epochs=1, batch_size=64, verbose=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < x.nbytes + 512 * 1024


def test_set_num_threads_controls_blas_and_is_reported():
    start = fd.get_num_threads()
    try:
        fd.set_num_threads(1)
        assert fd.get_num_threads() == 1
        if blas_num_threads() is not None:
            assert blas_num_threads() == 1
    finally:
        fd.set_num_threads(start)
    assert fd.get_num_threads() == start


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_set_num_threads_refuses_bad_counts(bad):
    with pytest.raises((TypeError, ValueError)):
        fd.set_num_threads(bad)


def test_results_do_not_depend_on_the_thread_count(rng):
    x = rng.random((512, 200), dtype=np.float32)
    y = rng.random((512, 4), dtype=np.float32)
    start = fd.get_num_threads()
    weights = []
    try:
        for threads in (1, 2):
            fd.set_num_threads(threads)
            model = compiled([200, 128, 64, 4], seed=3)
            model.fit(x, y, epochs=2, batch_size=64, verbose=0)
            weights.append(model.get_weights())
    finally:
        fd.set_num_threads(start)
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sizes", [[10**6, 10**6, 1], [10, 2**33, 1]])
def test_a_network_too_big_for_memory_fails_at_once_stating_its_size(sizes):
    with pytest.raises((MemoryError, ValueError), match=r"GiB|TiB|PiB|wider"):
        make_model(sizes, dtype="float32")


def test_a_batch_too_big_for_memory_fails_before_allocating(rng):
    """A workspace beyond the machine's memory is refused before any allocation (a huge
    allocation could otherwise 'succeed' under overcommit and fail when touched)."""
    from fastdense._core.train import check_fits
    with pytest.raises(MemoryError, match="needs .* more than this machine"):
        check_fits(1 << 60, "the training workspace for batches of 10**12")
    model = compiled([64, 32, 1])
    x = rng.random((16, 64), dtype=np.float32)
    model.fit(x, x[:, :1], epochs=1, batch_size=8, verbose=0)   # ordinary sizes pass
