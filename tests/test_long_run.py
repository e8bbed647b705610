"""A long mixed workload leaves resident memory flat."""
import gc
import os

import numpy as np
import pytest

import fastdense as fd
from conftest import make_model

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"),
                                reason="reads resident memory from /proc")


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_100k_updates_of_fit_train_on_batch_and_predict_keep_memory_flat(rng):
    x = rng.random((1024, 10), dtype=np.float32)
    y = rng.random((1024, 1), dtype=np.float32)
    xd = x.astype(np.float64)                   # the converting paths too
    model = make_model([10, 10, 10, 1], dtype="float32")
    model.compile(optimizer=fd.optimizers.Adam(learning_rate=1e-3), loss="mse")

    def cycle():
        model.fit(x, y, epochs=2, batch_size=32, verbose=0)        # 64 updates
        for i in range(16):
            model.train_on_batch(x[32 * i:32 * i + 32], y[32 * i:32 * i + 32])
        model.train_on_batch(xd[:32], y[:32, 0])
        for i in range(16):
            model.predict(x[i:i + 1])
        model.predict(xd)
        model.evaluate(x, y)

    for _ in range(50):                          # warm: allocators, caches, workspaces
        cycle()
    gc.collect()
    before = resident_bytes()
    updates_before = model.optimizer.iterations
    while model.optimizer.iterations - updates_before < 100_000:
        cycle()
    gc.collect()
    growth = resident_bytes() - before
    assert model.optimizer.iterations - updates_before >= 100_000
    assert growth < 4 * 1024 * 1024, f"resident memory grew by {growth / 2**20:.1f} MB"
