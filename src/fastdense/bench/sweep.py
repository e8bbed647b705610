"""The width / batch-size sweep (``--sweep``): fit time per update, fastdense against the
reference, on a 10-w-w-1 network, beside the update's GEMM floor: the time of its matrix
products alone through the BLAS fastdense calls, measured in the same run
(``fastdense._core.dense.gemm_floor``), and beside the peers that are importable (eager
PyTorch, JAX with ``lax.scan`` over each epoch) timed in the same rounds. ``--sweep-cross``
adds the medium grid, every width of CROSS_WIDTHS at every batch of CROSS_BATCHES."""
from __future__ import annotations

import math
import time

import numpy as np

from fastdense._core import dense as _dense

from .harness import SYSTEMS, _timed, summarise, time_in_turn
from .workloads import fit_case, jax_scan_fit_case, torch_fit_case

__all__ = ["SWEEP_WIDTHS", "SWEEP_BATCHES", "SWEEP_INPUT", "CROSS_WIDTHS", "CROSS_BATCHES",
           "SWEEP_PEERS", "sweep_points", "run_sweep"]

SWEEP_WIDTHS = (8, 32, 128, 512, 2048)
SWEEP_BATCHES = (1, 8, 32, 128, 1024)
SWEEP_INPUT = 10
# the medium layers most users train (issue 12's grid): every width at every batch
CROSS_WIDTHS = (64, 128, 256, 512)
CROSS_BATCHES = (8, 32, 64, 128, 256)
# the peers a sweep point can run beside fastdense and the reference, and how
SWEEP_PEERS = {"torch": torch_fit_case, "jax": jax_scan_fit_case}


def sweep_points(widths=SWEEP_WIDTHS, batches=SWEEP_BATCHES, cross_widths=(),
                 cross_batches=()):
    """(axis, width, batch) for every point: widths at batch 32, batches at width 128, then
    (axis "cross") every cross width at every cross batch; a (width, batch) met twice is
    timed once, on its first axis."""
    points = [("width", w, 32) for w in widths]
    points += [("batch", 128, b) for b in batches if not (b == 32 and 128 in widths)]
    seen = {(w, b) for _, w, b in points}
    points += [("cross", w, b) for w in cross_widths for b in cross_batches
               if (w, b) not in seen]
    return points


def run_sweep(pairs: int, target_seconds: float, log, settle: float = 0.0,
              min_samples: int = 1024, widths=SWEEP_WIDTHS, batches=SWEEP_BATCHES,
              min_updates: int = 64, peers=(), cross_widths=(), cross_batches=(),
              errors: dict | None = None) -> dict:
    """fit time per update, fastdense vs reference, on 10-w-w-1 over width and batch.

    Per point: two untimed 1-epoch fits of each system in turn (the warm runs); the faster
    reference one (a single probe on a busy machine can be 10× slow) sets the number of
    epochs so that a reference run takes about ``target_seconds`` (and at least
    ``min_updates`` updates are timed); then ``pairs`` rounds A B. The data has
    ``max(min_samples, 4·batch)`` rows.

    ``peers`` (names of SWEEP_PEERS) run in the same rounds on the same data, network and
    initial weights; each point records their median µs per update and the median over the
    rounds of peer time / fastdense time. A peer that fails is dropped from that point and
    its error kept in ``errors``."""
    rng = np.random.default_rng(3)
    started = time.perf_counter()
    points = []
    peers = [p for p in peers if p in SWEEP_PEERS]
    for axis, width, batch in sweep_points(widths, batches, cross_widths, cross_batches):
        n = max(min_samples, 4 * batch)
        X = rng.random((n, SWEEP_INPUT), dtype=np.float32)
        y = rng.random((n, 1), dtype=np.float32)
        sizes = (SWEEP_INPUT, width, width, 1)
        probe = {s: fit_case(s, sizes, X, y, 1, batch) for s in SYSTEMS}
        probe_ref = math.inf
        for _ in range(2):
            for s in SYSTEMS:
                seconds = _timed(probe[s].prepare(), settle)[0]
                if s == "reference":
                    probe_ref = min(probe_ref, seconds)
        per_epoch = -(-n // batch)
        epochs = max(-(-min_updates // per_epoch), 1,
                     min(10_000, round(target_seconds / probe_ref)))
        cases = {s: fit_case(s, sizes, X, y, epochs, batch) for s in SYSTEMS}
        point_errors: dict = {}
        for peer in peers:
            try:
                cases[peer] = SWEEP_PEERS[peer](sizes, X, y, epochs, batch)
            except Exception as exc:  # a broken optional peer must not sink the sweep
                point_errors[peer] = f"{type(exc).__name__}: {exc}"
        # the GEMM floor, once in every round, after the systems: a median of 7 blocks
        # taken after the pause, so the other BLAS pool's threads (NumPy's, for the
        # reference) have stopped spinning (measured right after a reference run, the
        # w=64, batch=128 update's floor took 16 ms instead of 46 µs). fastdense/floor
        # is the median of the rounds' ratios: side by side, as the reference's ratio is.
        floors: list = []

        def floor_round():
            time.sleep(settle)
            floors.append(_dense.gemm_floor(sizes, batch))

        # the peers (JIT-compiled ones above all) get one untimed run first; fastdense and
        # the reference had theirs in the probe
        raw, _ = time_in_turn(cases, pairs, warm=peers, settle=settle, errors=point_errors,
                              after_round=floor_round)
        count = cases["fastdense"].count
        systems = summarise(raw, count, 1e6)
        over_pairs = [s / count / f for s, f in zip(raw["fastdense"], floors)]
        point = {"axis": axis, "width": width, "batch": batch, "n_samples": n,
                 "epochs": epochs, "updates": count,
                 "fastdense_us": systems["fastdense"]["median"],
                 "reference_us": systems["reference"]["median"],
                 "ratio": systems["fastdense"]["ratio"],
                 "ratio_pairs": systems["fastdense"]["ratio_pairs"],
                 "floor_us": float(np.median(floors)) * 1e6,
                 "floor_samples_us": [f * 1e6 for f in floors],
                 "over_floor": float(np.median(over_pairs)),
                 "over_floor_pairs": over_pairs,
                 "raw_seconds": {s: raw[s] for s in SYSTEMS}}
        beside = ""
        for peer in peers:
            if peer not in raw:
                continue
            over = [q / f for q, f in zip(raw[peer], raw["fastdense"])]
            point[f"{peer}_us"] = systems[peer]["median"]
            point[f"{peer}_over_fastdense"] = float(np.median(over))
            point[f"{peer}_over_fastdense_pairs"] = over
            point["raw_seconds"][peer] = raw[peer]
            beside += f"  {peer}/fastdense {point[f'{peer}_over_fastdense']:.2f}"
        if point_errors:
            point["peer_errors"] = point_errors
            if errors is not None:
                errors.update({f"{k} (w={width}, batch={batch})": v
                               for k, v in point_errors.items()})
        points.append(point)
        log(f"  {axis:>5} w={width:<5} batch={batch:<5} {count:>6} updates  "
            f"ratio {point['ratio']:.2f}  fastdense/floor {point['over_floor']:.2f}" + beside)
    return {"network": f"{SWEEP_INPUT}-w-w-1, ReLU, ReLU, linear; MSE; SGD lr 0.01; float32",
            "data": f"X n×10, y n×1 uniform[0,1); n = max({min_samples}, 4·batch); shuffled",
            "unit": "µs per update", "pairs": pairs,
            "floor": "the update's matrix products alone (per layer Z = Wᵀ·A, dW = A·Dᵀ and, "
                     "past the first layer, dA = W·D) through SciPy's BLAS, feature-major, "
                     "float32; a 7-block median after every round; fastdense/floor is the median of "
                     "the rounds' ratios", "target_seconds": target_seconds,
            "widths_at_batch": 32, "batches_at_width": 128,
            "cross_widths": list(cross_widths), "cross_batches": list(cross_batches),
            "peers": [p for p in peers if any(f"{p}_us" in q for q in points)],
            "wall_seconds": round(time.perf_counter() - started, 1), "points": points}
