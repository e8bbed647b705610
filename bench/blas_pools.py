"""Two BLAS thread pools in one process: NumPy's OpenBLAS and SciPy's (which fastdense
calls) are separate libraries in the PyPI wheels, each with its own threads, and an
OpenBLAS thread keeps spinning for a while after each call (2^28 cycles by default, about
0.1 s) before it sleeps. A fastdense fit whose products go through BLAS, started right
after NumPy's BLAS ran on several threads, has its BLAS threads share the cores with
NumPy's spinning ones.

This times a one-epoch fit of 10-256-256-1 at batch 64 (16 updates through BLAS, as in the
sweep's w=256, batch=64 point), started right after a NumPy product (512×512 @ 512×128,
float32), under:
  quiet        the fit after a 0.3 s pause instead (no spinning NumPy threads)
  default      right after the product, both pools at their default thread counts
  numpy-1      the same, NumPy's pool limited to one thread (threadpoolctl, selected by
               NumPy's library path), so no NumPy thread is left spinning
  timeout      the same, OPENBLAS_THREAD_TIMEOUT=4 in the environment before the libraries
               load: both pools' threads sleep after 2^4 cycles instead of 2^28
in turn (each mode a child process), several rounds, medians.

    python bench/blas_pools.py [--rounds 5] [--fits 15]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def measure(mode: str, fits: int) -> float:
    from fastdense.bench.workloads import fit_case
    from threadpoolctl import ThreadpoolController
    numpy_libs = os.path.dirname(np.__file__) + ".libs"
    pools = ThreadpoolController().select(user_api="blas")
    numpy_pool = [p for p in pools.lib_controllers if p.filepath.startswith(numpy_libs)]
    if mode == "numpy-1":
        for p in numpy_pool:
            p.set_num_threads(1)
    rng = np.random.default_rng(3)
    X = rng.random((1024, 10), dtype=np.float32)
    y = rng.random((1024, 1), dtype=np.float32)
    case = fit_case("fastdense", (10, 256, 256, 1), X, y, 1, 64)
    a = rng.random((512, 512), dtype=np.float32)
    b = rng.random((512, 128), dtype=np.float32)
    times = []
    for _ in range(fits + 2):
        run = case.prepare()
        if mode == "quiet":
            time.sleep(0.3)
        else:
            time.sleep(0.3)
            for _ in range(5):
                a @ b                       # NumPy's BLAS, as user code before the fit
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) / case.count)
    return statistics.median(times[2:]) * 1e6


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--fits", type=int, default=15)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.fits)))
        return 0
    modes = ["quiet", "default", "numpy-1", "timeout"]
    results: dict = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode in modes:
            env = dict(os.environ)
            if mode == "timeout":
                env["OPENBLAS_THREAD_TIMEOUT"] = "4"
            child = "default" if mode == "timeout" else mode
            out = subprocess.run([sys.executable, __file__, "--child", child, "--fits",
                                  str(args.fits)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            results[mode].append(json.loads(out))
    print("10-256-256-1 fit, batch 64: µs per update (median of each run's median; "
          "runs in turn)")
    for mode in modes:
        runs = results[mode]
        print(f"  {mode:<8} {statistics.median(runs):8.1f}   runs: "
              + ", ".join(f"{r:.1f}" for r in runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
