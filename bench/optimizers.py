"""The `adam` workload of BENCHMARKS.md, plus SGD with momentum and RMSprop, over one flat
buffer of 10,000,000 float32 parameters: fastdense's fused kernel against the NumPy
reference, same process, same data, same hyper-parameters, same number of updates.

Each measurement is UPDATES updates of one system (ms per update = time / UPDATES). After
one untimed warm run of each, the two run in turn (reference, fastdense, reference, ...)
for PAIRS pairs; reported: median ms per update, effective GB/s (the bytes one fused pass
must move — every array read once, every written array written once — over the time) and
the median of the pairwise ratios reference/fastdense.

    python bench/optimizers.py                 # the three workloads, fastdense on 1 thread
    python bench/optimizers.py --threads 1 2   # ... on 1 and on 2 threads
    python bench/optimizers.py --isa base avx2 avx512   # ... per instruction set of the loops
    python bench/optimizers.py --sizes         # Adam, 1 vs 2 threads, by buffer size
    python bench/optimizers.py --fit           # the `wide` fit with Adam, updates on 1 vs 2
                                               # threads (BLAS runs between the updates)
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fastdense as fd
from fastdense import reference as ref
from fastdense._core import updates

N = 10_000_000
UPDATES = 10
PAIRS = 7

# name: (constructor name, kwargs, bytes per parameter of one fused pass)
WORKLOADS = {
    "adam": ("Adam", {}, 7),                         # read p g m v, write p m v
    "sgd_momentum": ("SGD", {"momentum": 0.9}, 5),   # read p g m, write p m
    "rmsprop": ("RMSprop", {}, 5),                   # read p g v, write p v
}


def make_runner(opt, n, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)

    def run():
        t0 = time.perf_counter()
        for _ in range(UPDATES):
            opt.apply(g, p)
        return (time.perf_counter() - t0) / UPDATES
    return run


def compare(a_run, b_run, pairs=PAIRS):
    """Warm both, then A B A B … ; returns (times_a, times_b, ratios a/b)."""
    a_run()
    b_run()
    ta, tb = [], []
    for _ in range(pairs):
        ta.append(a_run())
        tb.append(b_run())
    return ta, tb, [x / y for x, y in zip(ta, tb)]


def workload_table(threads_list, isas):
    print(f"{N:,} float32 parameters, {UPDATES} updates per measurement, {PAIRS} pairs "
          f"(A B A B after one warm run each)")
    print(f"{'workload':<14}{'isa':>7}{'threads':>8}{'NumPy ms':>10}{'NumPy GB/s':>12}"
          f"{'fastdense ms':>14}{'fd GB/s':>9}{'ratio':>8}")
    default, best = updates.get_num_threads(), updates.set_isa(None)
    try:
        for name, (cls, kwargs, bpp) in WORKLOADS.items():
            for isa in isas:
                for threads in threads_list:
                    isa_in_force = updates.set_isa(isa)
                    updates.set_num_threads(threads)
                    ta, tb, ratios = compare(
                        make_runner(getattr(ref, cls)(**kwargs), N),
                        make_runner(getattr(fd.optimizers, cls)(**kwargs), N))
                    ma, mb = statistics.median(ta), statistics.median(tb)
                    gb = bpp * 4 * N / 1e9
                    print(f"{name:<14}{isa_in_force:>7}{updates.get_num_threads():>8}"
                          f"{ma * 1e3:>10.2f}{gb / ma:>12.1f}{mb * 1e3:>14.2f}{gb / mb:>9.1f}"
                          f"{statistics.median(ratios):>7.1f}x")
    finally:
        updates.set_num_threads(default)
        updates.set_isa(best)


def size_table():
    """Adam, fastdense on 1 thread against 2 threads, by buffer size: is PARALLEL_MIN
    right? (Below it both columns run on one thread.)"""
    print(f"Adam, µs per update, 1 thread vs 2 threads (PARALLEL_MIN = "
          f"{updates.PARALLEL_MIN_VALUES:,}: below it, both columns run on one thread)")
    print(f"{'n':>10}{'1 thread':>12}{'2 threads':>12}{'ratio':>8}")
    default = updates.get_num_threads()
    try:
        for n in [2 ** k for k in range(16, 24)] + [N]:
            reps = max(1, 2_000_000 // n)

            def runner(threads, n=n, reps=reps):
                opt = fd.optimizers.Adam()
                rng = np.random.default_rng(0)
                p = rng.standard_normal(n, dtype=np.float32)
                g = rng.standard_normal(n, dtype=np.float32)

                def run():
                    updates.set_num_threads(threads)
                    t0 = time.perf_counter()
                    for _ in range(reps):
                        opt.apply(g, p)
                    return (time.perf_counter() - t0) / reps
                return run
            t1, t2, ratios = compare(runner(1), runner(2))
            print(f"{n:>10,}{statistics.median(t1) * 1e6:>12.1f}"
                  f"{statistics.median(t2) * 1e6:>12.1f}{statistics.median(ratios):>7.2f}x")
    finally:
        updates.set_num_threads(default)


def fit_table(pairs=5):
    """The `wide` workload of BENCHMARKS.md trained with Adam (784-512-512-10, batch 128,
    2 epochs = 128 updates of 669,706 parameters, above PARALLEL_MIN): ms per update with
    the updates on 1 thread against 2, the GEMMs on BLAS's threads in between."""
    rng = np.random.default_rng(0)
    x = rng.random((8192, 784), dtype=np.float32)
    y = rng.random((8192, 10), dtype=np.float32)

    def runner(threads):
        model = fd.Sequential([fd.Dense(512, activation="relu", input_dim=784),
                               fd.Dense(512, activation="relu"), fd.Dense(10)])
        model.compile(optimizer=fd.optimizers.Adam(), loss="mse")

        def run():
            updates.set_num_threads(threads)
            t0 = time.perf_counter()
            model.fit(x, y, epochs=2, batch_size=128, verbose=0)
            return (time.perf_counter() - t0) / 128
        return run
    default = updates.get_num_threads()
    try:
        t1, t2, ratios = compare(runner(1), runner(2), pairs)
    finally:
        updates.set_num_threads(default)
    print(f"wide fit with Adam, ms per update ({pairs} pairs): updates on 1 thread "
          f"{statistics.median(t1) * 1e3:.2f}, on 2 threads {statistics.median(t2) * 1e3:.2f}, "
          f"ratio {statistics.median(ratios):.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="*", default=[1],
                    help="fastdense thread counts to measure (updates.set_num_threads)")
    ap.add_argument("--isa", nargs="*", default=[None],
                    help="instruction sets of the update loops (updates.set_isa; default: "
                         "the best this CPU has)")
    ap.add_argument("--sizes", action="store_true", help="1 vs 2 threads by buffer size")
    ap.add_argument("--fit", action="store_true",
                    help="the wide fit with Adam, updates on 1 vs 2 threads")
    args = ap.parse_args()
    if args.sizes:
        size_table()
    elif args.fit:
        fit_table()
    else:
        workload_table(args.threads, args.isa)


if __name__ == "__main__":
    main()
