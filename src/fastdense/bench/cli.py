"""``python -m fastdense bench``: the options, the run, the printed summary."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from .environment import load_average, openblas_env
from .report import build_report, plot_results, plot_sweep, summary_messages, write_json
from .sweep import CROSS_BATCHES, CROSS_WIDTHS, SWEEP_BATCHES, SWEEP_PEERS, SWEEP_WIDTHS, run_sweep
from .workloads import FULL, PEERS, QUICK, WORKLOADS, peer_available, run_workload

__all__ = ["main", "BLAS_ENV_OVERRIDES"]

BLAS_ENV_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_UNSET_MARK = "_FASTDENSE_BENCH_UNSET"      # set by --native-blas for the child process


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fastdense bench",
        description="Time fastdense against its NumPy reference (and PyTorch / JAX / "
                    "scikit-learn / onnxruntime when importable) on the workloads of "
                    "BENCHMARKS.md, side by side.",
        epilog="OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow a current OpenBLAS and are read "
               "when it loads: run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "
               "python -m fastdense bench`, or pass --native-blas.")
    names = ",".join(WORKLOADS)
    p.add_argument("--only", default=None, metavar="LIST",
                   help=f"comma-separated workloads among {names},sweep (default: every "
                        "workload; 'sweep' runs the sweep)")
    p.add_argument("--pairs", type=int, default=None,
                   help="timed rounds A B … per workload (default 7; 2 with --quick; the "
                        "contract needs at least 5)")
    p.add_argument("--quick", action="store_true",
                   help="tiny workloads and 2 pairs: checks the harness, figures mean nothing")
    p.add_argument("--peers", default=None,
                   help="'auto' (torch, jax, sklearn and onnxruntime when importable; the "
                        "default), 'none' (the default with --quick), or a list such as "
                        "'torch,onnxruntime'")
    p.add_argument("--json", default="bench-results.json", metavar="PATH",
                   help="where to write the results (default: %(default)s)")
    p.add_argument("--plot", default="bench-results.png", metavar="PATH",
                   help="bar chart of the workloads, if matplotlib is installed "
                        "(default: %(default)s; '' for none)")
    p.add_argument("--sweep", action="store_true",
                   help="also run the width / batch-size sweep (1.5–2.5 minutes)")
    p.add_argument("--sweep-widths", type=_int_list, default=SWEEP_WIDTHS, metavar="LIST",
                   help="hidden widths at batch 32 (default: %(default)s)")
    p.add_argument("--sweep-batches", type=_int_list, default=SWEEP_BATCHES, metavar="LIST",
                   help="batch sizes at width 128 (default: %(default)s)")
    p.add_argument("--sweep-cross", action="store_true",
                   help="the sweep also times the medium grid: every width of "
                        f"{','.join(map(str, CROSS_WIDTHS))} at every batch of "
                        f"{','.join(map(str, CROSS_BATCHES))} (implies --sweep; about 10 "
                        "more minutes with the peers)")
    p.add_argument("--sweep-cross-widths", type=_int_list, default=CROSS_WIDTHS,
                   metavar="LIST", help="the grid's widths (default: %(default)s)")
    p.add_argument("--sweep-cross-batches", type=_int_list, default=CROSS_BATCHES,
                   metavar="LIST", help="the grid's batch sizes (default: %(default)s)")
    p.add_argument("--sweep-pairs", type=int, default=5,
                   help="rounds per sweep point (default %(default)s; at least 3)")
    p.add_argument("--sweep-plot", default="bench-sweep.png", metavar="PATH",
                   help="ratio vs width and vs batch chart (default: %(default)s; '' for none)")
    p.add_argument("--settle", type=float, default=None, metavar="SECONDS",
                   help="sleep before each timed run so the previous system's BLAS/OpenMP "
                        "threads stop spinning (default 0.3; 0 with --quick)")
    p.add_argument("--distributed", action="store_true",
                   help="instead: the wide network data-parallel over MPI on 1 and N ranks "
                        "(fastdense.bench.distributed; its own options: --ranks, --pairs, "
                        "--quick, --json)")
    p.add_argument("--native-blas", action="store_true",
                   help="re-run in a child process with OPENBLAS_CORETYPE and "
                        "OPENBLAS_L2_SIZE unset")
    return p


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _native_blas(argv: list[str]) -> int:
    """Re-run this benchmark in a child Python without the OpenBLAS overrides."""
    env = dict(os.environ)
    unset = [k for k in BLAS_ENV_OVERRIDES if env.pop(k, None) is not None]
    env[_UNSET_MARK] = ",".join(unset)
    import fastdense
    here = str(Path(fastdense.__file__).absolute().parent.parent)   # the dir holding fastdense/
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    args = [a for a in argv if a != "--native-blas"]
    return subprocess.call([sys.executable, "-m", "fastdense.bench", *args], env=env)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--distributed" in argv:
        from .distributed import main as distributed_main
        return distributed_main([a for a in argv if a != "--distributed"])
    args = _parser().parse_args(argv)
    if args.native_blas and any(k in os.environ for k in BLAS_ENV_OVERRIDES):
        return _native_blas(argv)

    selected = list(WORKLOADS) if args.only is None else \
        [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in selected if s not in WORKLOADS and s != "sweep"]
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}: choose among "
                         f"{', '.join(WORKLOADS)}, sweep")
    do_sweep = args.sweep or args.sweep_cross or "sweep" in selected
    selected = [s for s in WORKLOADS if s in selected]
    pairs = args.pairs if args.pairs is not None else (2 if args.quick else 7)
    if pairs < 1 or args.sweep_pairs < 1:
        raise SystemExit("--pairs and --sweep-pairs must be at least 1")
    size = QUICK if args.quick else FULL
    settle = args.settle if args.settle is not None else (0.0 if args.quick else 0.3)
    if settle < 0:
        raise SystemExit("--settle must be non-negative")

    if args.peers is None:
        args.peers = "none" if args.quick else "auto"
    if args.peers == "none":
        wanted = []
    elif args.peers == "auto":
        wanted = list(PEERS)
    else:
        wanted = [s.strip() for s in args.peers.split(",") if s.strip()]
        bad = [s for s in wanted if s not in PEERS]
        if bad:
            raise SystemExit(f"unknown peer(s) {bad}: choose among {', '.join(PEERS)}")
    peer_missing = {p: why for p in wanted if (why := peer_available(p))}
    peers = [p for p in wanted if p not in peer_missing]

    def log(msg):
        print(msg, flush=True)

    env_blas = openblas_env()
    unset = [k for k in os.environ.get(_UNSET_MARK, "").split(",") if k]
    what = ("QUICK RUN: tiny workloads, the figures mean nothing" if args.quick
            else "BENCHMARKS.md workloads")
    log(f"fastdense benchmarks — {what}; {pairs} pairs A B …; "
        f"peers: {', '.join(peers) or 'none'}")
    if pairs < 5 and not args.quick:
        log("note: fewer than 5 pairs — not a measurement under the contract")
    if env_blas:
        log("OPENBLAS_* in force: " + ", ".join(f"{k}={v}" for k, v in env_blas.items()))
    overrides = [k for k in BLAS_ENV_OVERRIDES if k in env_blas]
    if overrides:
        log(f"note: {', '.join(overrides)} set; they slow a current OpenBLAS — rerun with "
            "--native-blas or `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...`")
    if unset:
        log(f"(--native-blas: {', '.join(unset)} unset for this run)")

    load_before = load_average()
    started = time.time()
    results = {}
    for wid in selected:
        results[wid] = run_workload(wid, size, pairs, peers, log, settle)
    sweep = None
    if do_sweep:
        sweep_peers = [p for p in peers if p in SWEEP_PEERS]
        log("sweep: fit on 10-w-w-1, fastdense vs reference"
            + (f" beside {', '.join(sweep_peers)}" if sweep_peers else ""))
        sweep_errors: dict = {}
        cross = args.sweep_cross
        sweep = run_sweep(2 if args.quick else max(3, args.sweep_pairs),
                          0.01 if args.quick else 0.3, log, settle,
                          64 if args.quick else 1024, args.sweep_widths,
                          args.sweep_batches, 1 if args.quick else 64, peers=sweep_peers,
                          cross_widths=args.sweep_cross_widths if cross else (),
                          cross_batches=args.sweep_cross_batches if cross else (),
                          errors=sweep_errors)
        if sweep_errors:
            sweep["peer_errors"] = sweep_errors

    shown = ["fastdense", "reference"] + [p for p in peers
                                          if any(p in r.get("systems", {})
                                                 for r in results.values())]
    report = build_report(argv=argv, quick=args.quick, pairs=pairs, settle=settle,
                          load_before=load_before, started=started, openblas=env_blas,
                          unset=unset, peers_missing=peer_missing, results=results,
                          sweep=sweep)

    log("")
    for message in summary_messages(results, sweep, shown, pairs, args.quick):
        log(message)

    if args.json:
        write_json(args.json, report)
        log(f"\nresults: {args.json}")
    if args.plot and results and plot_results(results, shown, args.plot, args.quick):
        log(f"chart: {args.plot}")
    if sweep is not None and args.sweep_plot and plot_sweep(sweep, args.sweep_plot,
                                                            args.quick):
        log(f"sweep chart: {args.sweep_plot}")
    return 0
