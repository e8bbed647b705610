"""Where BLAS beats the hand-written feature-major loops and fm_gemm.h's register-blocked
products: time one layer's forward and backward all three ways over widths and batch
sizes (float32, medians of alternating runs).

    python bench/kernel_sweep.py [--quick]

Prints, per (n_in = n_out = width, batch), the time of each path and the ratios to BLAS;
the crossovers set BLAS_MIN_WORK and MK_MAX_WORK in _core/dense.pyx.
"""
import sys
import time

import numpy as np

from fastdense._core import dense


MODES = {False: "never", True: "always", "micro": "micro"}


def layer_time(width, batch, use_blas, reps):
    """Seconds per forward + backward; use_blas True (BLAS), False (hand loops) or
    "micro" (fm_gemm.h's products)."""
    rng = np.random.default_rng(0)
    a = rng.random((width, batch), dtype=np.float32)
    w = rng.random((width, width), dtype=np.float32)
    b = rng.random(width, dtype=np.float32)
    z = np.empty((width, batch), np.float32)
    dw, db, da = np.empty_like(w), np.empty_like(b), np.empty_like(a)
    previous = dense.set_blas_mode(MODES[use_blas])
    try:
        start = time.perf_counter()
        for _ in range(reps):
            dense.dense_forward_checked(a, w, b, z, True)
            dense.dense_backward_checked(a, w, z, dw, db, da, True)
        return (time.perf_counter() - start) / reps
    finally:
        dense.set_blas_mode(previous)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    widths = [64, 128] if quick else [8, 16, 32, 64, 128, 256, 512]
    batches = [32] if quick else [1, 8, 32, 128, 1024]
    print(f"{'width':>6}{'batch':>7}{'hand µs':>10}{'micro µs':>10}{'BLAS µs':>10}"
          f"{'hand/BLAS':>11}{'micro/BLAS':>12}")
    for width in widths:
        for batch in batches:
            work = width * width * batch
            reps = max(3, int(2e7 // (work * 6 + 2000)))
            for mode in (True, False, "micro"):
                layer_time(width, batch, mode, 1)
            times = {True: [], False: [], "micro": []}
            for _ in range(3 if quick else 5):
                for mode in times:
                    times[mode].append(layer_time(width, batch, mode, reps))
            h, m, bl = (np.median(times[k]) * 1e6 for k in (False, "micro", True))
            print(f"{width:>6}{batch:>7}{h:>10.2f}{m:>10.2f}{bl:>10.2f}{h / bl:>11.2f}"
                  f"{m / bl:>12.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
