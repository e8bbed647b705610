"""``python -m fastdense bench --distributed``: the `wide` network trained data-parallel on
1 and on N ranks (``mpiexec``, one BLAS thread a rank), samples per second, the all-reduce's
time per update, and the scaling model that predicts larger runs from those figures.

Each rank keeps the per-rank batch of 128 (weak scaling: N ranks train on N·128 samples per
update). A run is one ``mpiexec -n R python -m fastdense.bench.distributed --worker``; the
1-rank and N-rank runs alternate (A B A B …) and the medians are quoted.

The scaling model: one update costs the compute of a rank's batch, t_c (measured on one
rank), plus a ring all-reduce of the gradient, which sends and receives
2(N−1)/N × 4 bytes × P over each machine's link (P float32 parameters), so
t_N ≈ t_c + 2(N−1)/N · 4P / bandwidth, and the efficiency (samples per second over N times
one rank's) is t_c / t_N. Latency terms (2(N−1) messages a ring) and overlap of
communication with the backward pass are left out: the first adds microseconds a message,
the second would hide part of the transfer.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "predicted_efficiency", "LINKS_GBIT", "MACHINES"]

LINKS_GBIT = (10, 100)
MACHINES = (2, 4, 8, 16, 32, 64)
BATCH = 128


def predicted_efficiency(t_compute: float, n_params: int, machines: int,
                         link_gbit: float, itemsize: int = 4) -> float:
    """t_c / (t_c + 2(N−1)/N · itemsize · P / bandwidth): the scaling model above."""
    if machines == 1:
        return 1.0
    seconds = 2 * (machines - 1) / machines * itemsize * n_params / (link_gbit * 1e9 / 8)
    return t_compute / (t_compute + seconds)


def _worker(n_rows: int, epochs: int, reduces: int) -> None:
    """One timed run on every rank of COMM_WORLD; rank 0 prints a JSON line."""
    import fastdense as fd
    from fastdense.distributed import MPI
    from .workloads import WIDE_SIZES, wide_data

    mpi = MPI()
    X, y = wide_data(n_rows)
    Xl, yl = mpi.shard(X, y)
    model = fd.Sequential([fd.Dense(WIDE_SIZES[1], activation="relu", input_dim=WIDE_SIZES[0]),
                           fd.Dense(WIDE_SIZES[2], activation="relu"),
                           fd.Dense(WIDE_SIZES[3])], seed=0)
    optimizer = fd.optimizers.SGD(learning_rate=0.001)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(Xl, yl, epochs=1, batch_size=BATCH, verbose=0, distributed=mpi)  # warm
    updates = 0
    mpi.barrier()
    start = time.perf_counter()
    for _ in range(epochs):
        before = optimizer.iterations
        model.fit(Xl, yl, epochs=1, batch_size=BATCH, verbose=0, distributed=mpi)
        updates += optimizer.iterations - before
    elapsed = time.perf_counter() - start
    # the all-reduce alone, on a buffer of the size fit sums each update
    mpi_mod = mpi._mpi
    buf = np.zeros(model.count_params() + 2, dtype=np.float32)
    times = []
    for _ in range(reduces):
        mpi.barrier()
        t0 = time.perf_counter()
        mpi.comm.Allreduce(mpi_mod.IN_PLACE, buf, op=mpi_mod.SUM)
        times.append(time.perf_counter() - t0)
    probe = _overlap_probe(mpi, model, Xl, yl, buf, reduces) if mpi.size > 1 else None
    if mpi.rank == 0:
        print(json.dumps({"ranks": mpi.size, "update_s": elapsed / updates,
                          "updates": updates, "allreduce_s": statistics.median(times),
                          "params": model.count_params(), "overlap_probe": probe,
                          "samples_per_s": mpi.size * BATCH * updates / elapsed}), flush=True)


def _overlap_probe(mpi: Any, model: Any, X: np.ndarray, y: np.ndarray, buf: np.ndarray,
                   reps: int) -> dict[str, float]:
    """The most that overlapping the all-reduce with the backward pass could save: one
    step's gradient computation alone, the all-reduce alone, the two one after the other
    (what fit does), and an Iallreduce started before the computation and waited for after
    it (every byte of communication overlapped with all of the step's computation, more
    than a per-layer Iallreduce can overlap). Medians in seconds."""
    mpi_mod = mpi._mpi
    net = model._net
    Xc, yc = np.ascontiguousarray(X, dtype=np.float32), np.ascontiguousarray(y, np.float32)
    order = np.arange(len(Xc), dtype=np.intp)
    out = np.zeros(net.n_params + 1 + net.n_metrics, dtype=np.float32)
    nb = min(BATCH, len(Xc))

    def compute() -> None:
        net.step_gradients(Xc, yc, order, 0, nb, out, 1.0)

    def reduce() -> None:
        mpi.comm.Allreduce(mpi_mod.IN_PLACE, buf, op=mpi_mod.SUM)

    def sequential() -> None:
        compute()
        reduce()

    def overlapped() -> None:
        request = mpi.comm.Iallreduce(mpi_mod.IN_PLACE, buf, op=mpi_mod.SUM)
        compute()
        request.Wait()

    timings: dict[str, list[float]] = {"compute_s": [], "allreduce_s": [], "sequential_s": [],
                                       "overlapped_s": []}
    for _ in range(reps):
        for key, run in (("compute_s", compute), ("allreduce_s", reduce),
                         ("sequential_s", sequential), ("overlapped_s", overlapped)):
            mpi.barrier()
            t0 = time.perf_counter()
            run()
            timings[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in timings.items()}


def _mpiexec() -> str | None:
    return shutil.which("mpiexec", path=os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def run(ranks: int, pairs: int, quick: bool, log: Any = print) -> dict[str, Any]:
    """Alternating 1-rank and `ranks`-rank runs; the medians and the model's table."""
    mpiexec = _mpiexec()
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise SystemExit("bench --distributed needs mpi4py: pip install \"fastdense[mpi]\"")
    if mpiexec is None:
        raise SystemExit("bench --distributed needs mpiexec on PATH (pip install mpich)")
    n_rows, epochs, reduces = (1024, 1, 5) if quick else (8192, 3, 50)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    runs: dict[int, list[dict[str, Any]]] = {1: [], ranks: []}
    for i in range(pairs):
        for r in (1, ranks):
            cmd = [mpiexec, "-n", str(r), sys.executable, "-m", "fastdense.bench.distributed",
                   "--worker", "--rows", str(n_rows), "--epochs", str(epochs),
                   "--reduces", str(reduces)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900,
                                  stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            runs[r].append(result)
            log(f"pair {i + 1}/{pairs}, {r} rank{'s' if r > 1 else ''}: "
                f"{result['update_s'] * 1e3:.2f} ms/update, "
                f"{result['samples_per_s']:.0f} samples/s, all-reduce "
                f"{result['allreduce_s'] * 1e3:.3f} ms")
    med = {r: {k: statistics.median(x[k] for x in v)
               for k in ("update_s", "allreduce_s", "samples_per_s")}
           for r, v in runs.items()}
    efficiency = statistics.median(
        b["samples_per_s"] / (ranks * a["samples_per_s"]) for a, b in zip(runs[1], runs[ranks]))
    params = runs[1][0]["params"]
    t_c = med[1]["update_s"]
    table = {f"{g} Gbit/s": {str(m): predicted_efficiency(t_c, params, m, g) for m in MACHINES}
             for g in LINKS_GBIT}
    return {"ranks": ranks, "pairs": pairs, "quick": quick, "rows": n_rows,
            "batch_per_rank": BATCH, "params": params, "medians": med,
            "efficiency": efficiency, "runs": runs, "predicted_efficiency": table}


def report(result: dict[str, Any]) -> str:
    med, r = result["medians"], result["ranks"]
    lines = [
        f"wide (784-512-512-10, {result['params']:,} float32 parameters), batch "
        f"{result['batch_per_rank']} per rank, 1 BLAS thread per rank; medians of "
        f"{result['pairs']} alternating pairs" + (" (QUICK: means nothing)" if result["quick"]
                                                  else ""),
        f"{'ranks':>6}{'ms/update':>12}{'samples/s':>12}{'all-reduce ms':>15}",
    ]
    for ranks in (1, r):
        m = med[ranks]
        lines.append(f"{ranks:>6}{m['update_s'] * 1e3:>12.2f}{m['samples_per_s']:>12.0f}"
                     f"{m['allreduce_s'] * 1e3:>15.3f}")
    probes = [x["overlap_probe"] for x in result["runs"][r] if x.get("overlap_probe")]
    if probes:
        p = {k: statistics.median(x[k] for x in probes) for k in probes[0]}
        lines.append(f"overlap probe on {r} ranks (ms): a step's gradients "
                     f"{p['compute_s'] * 1e3:.2f}, all-reduce {p['allreduce_s'] * 1e3:.2f}, "
                     f"one after the other {p['sequential_s'] * 1e3:.2f}, Iallreduce "
                     f"overlapped {p['overlapped_s'] * 1e3:.2f}")
    lines.append(f"scaling efficiency on {r} ranks (samples/s over {r} × one rank's, median "
                 f"of pairs): {result['efficiency']:.2f}")
    lines.append("predicted efficiency on N machines (the scaling model, from the 1-rank "
                 "time per update):")
    lines.append(f"{'link':>12}" + "".join(f"{m:>7}" for m in MACHINES))
    for link, row in result["predicted_efficiency"].items():
        lines.append(f"{link:>12}" + "".join(f"{row[str(m)]:>7.2f}" for m in MACHINES))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastdense bench --distributed")
    p.add_argument("--ranks", type=int, default=2, help="ranks of the parallel run (2)")
    p.add_argument("--pairs", type=int, default=None, help="alternating pairs (5; quick 1)")
    p.add_argument("--quick", action="store_true", help="tiny runs: the figures mean nothing")
    p.add_argument("--json", default="bench-distributed.json", metavar="PATH")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rows", type=int, default=8192, help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, default=3, help=argparse.SUPPRESS)
    p.add_argument("--reduces", type=int, default=50, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args.rows, args.epochs, args.reduces)
        return 0
    if args.ranks < 2:
        raise SystemExit("--ranks must be at least 2")
    pairs = args.pairs if args.pairs is not None else (1 if args.quick else 5)
    if pairs < 1:
        raise SystemExit("--pairs must be at least 1")
    result = run(args.ranks, pairs, args.quick)
    print(report(result), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
        print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
