"""Where BLAS beats the hand-written feature-major loops: time one layer's forward and
backward both ways over widths and batch sizes (float32, medians of alternating runs).

    python bench/kernel_sweep.py

Prints, per (n_in = n_out = width, batch), the time of each path and the ratio; the
crossover sets `blas_min_work` in _core/dense.pyx.
"""
import sys
import time

import numpy as np

from fastdense._core import dense


def layer_time(width, batch, use_blas, reps):
    rng = np.random.default_rng(0)
    a = rng.random((width, batch), dtype=np.float32)
    w = rng.random((width, width), dtype=np.float32)
    b = rng.random(width, dtype=np.float32)
    z = np.empty((width, batch), np.float32)
    dw, db, da = np.empty_like(w), np.empty_like(b), np.empty_like(a)
    previous = dense.set_blas_mode("always" if use_blas else "never")
    try:
        start = time.perf_counter()
        for _ in range(reps):
            dense.dense_forward_checked(a, w, b, z, True)
            dense.dense_backward_checked(a, w, z, dw, db, da, True)
        return (time.perf_counter() - start) / reps
    finally:
        dense.set_blas_mode(previous)


def main(argv=None):
    widths = [8, 16, 32, 64, 128, 256, 512]
    batches = [1, 8, 32, 128, 1024]
    print(f"{'width':>6}{'batch':>7}{'hand µs':>10}{'BLAS µs':>10}{'hand/BLAS':>11}")
    for width in widths:
        for batch in batches:
            work = width * width * batch
            reps = max(3, int(2e7 // (work * 6 + 2000)))
            layer_time(width, batch, True, 1)
            layer_time(width, batch, False, 1)
            hand, blas = [], []
            for _ in range(5):
                hand.append(layer_time(width, batch, False, reps))
                blas.append(layer_time(width, batch, True, reps))
            h, bl = np.median(hand) * 1e6, np.median(blas) * 1e6
            print(f"{width:>6}{batch:>7}{h:>10.2f}{bl:>10.2f}{h / bl:>11.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
