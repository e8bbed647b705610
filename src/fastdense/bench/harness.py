"""The side-by-side harness of the benchmark suite: each timed run after a pause and one
untimed run of the same system, systems in turn A B A B, medians and pairwise ratios."""
from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

__all__ = ["SYSTEMS", "Case", "time_in_turn", "summarise"]

SYSTEMS = ("fastdense", "reference")


@dataclass
class Case:
    """One system's side of a workload.

    ``prepare()`` (untimed) builds fresh state and returns the timed callable; that callable
    does ``count`` updates or calls and may return a small dict of facts (e.g. the final
    loss) that goes into the JSON.
    """
    count: int
    prepare: Callable[[], Callable[[], dict | None]]
    notes: dict = field(default_factory=dict)


def _timed(run: Callable[[], dict | None], settle: float = 0.0,
           warm_up: Callable[[], dict | None] | None = None) -> tuple[float, dict | None]:
    """Seconds taken by ``run()`` (and what it returned), with the garbage collector off.

    ``settle`` seconds of sleep come first: an OpenBLAS (or OpenMP) pool keeps its threads
    spinning for a while after its last call, and on 2 cores the spinning threads of the
    previous system's pool (NumPy's and SciPy's OpenBLAS are two pools) slowed the next
    system's BLAS-bound run by 30–100 % when it started at once. ``warm_up()`` (an
    identical run, untimed) then follows the pause, so the timed run starts warm: after
    the pause alone, a 3 ms ``seed`` fit measured about 8–15 % slower than back to back.
    """
    gc.collect()
    if settle > 0:
        time.sleep(settle)
    if warm_up is not None:
        warm_up()
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        out = run()
        elapsed = time.perf_counter() - t0
    finally:
        if enabled:
            gc.enable()
    return elapsed, out


def time_in_turn(cases: dict[str, Case], pairs: int, warm: bool | Iterable[str] = True,
                 errors: dict | None = None, settle: float = 0.0,
                 after_round: Callable[[], None] | None = None) -> tuple[dict, dict]:
    """Warm each system once (untimed; ``warm`` may instead name the systems to warm, or be
    False), then run them in turn ``pairs`` times, calling ``after_round()`` (if given)
    after each round: a measurement to pair with the round's times, such as the GEMM floor.

    Returns ``(raw, facts)``: raw[system] = the seconds of each round, facts[system] = what
    the last timed run returned. A peer (not fastdense / reference) that raises is dropped
    and its error recorded in ``errors``.
    """
    cases = dict(cases)

    def attempt(name, fn):
        try:
            return fn()
        except Exception as exc:  # a broken optional peer must not sink the run
            if name in SYSTEMS or errors is None:
                raise
            errors[name] = f"{type(exc).__name__}: {exc}"
            del cases[name]
            return None

    for name in (list(cases) if warm is True else [n for n in (warm or ()) if n in cases]):
        attempt(name, lambda: cases[name].prepare()())
    raw: dict[str, list] = {name: [] for name in cases}
    facts = {}
    for _ in range(pairs):
        for name in list(cases):
            # after a pause, one untimed run of the same system warms it again
            result = attempt(name, lambda: _timed(cases[name].prepare(), settle,
                                                  cases[name].prepare() if settle > 0
                                                  else None))
            if result is None:
                raw.pop(name, None)
                continue
            raw[name].append(result[0])
            facts[name] = result[1]
        if after_round is not None:
            after_round()
    return raw, facts


def summarise(raw: dict, count: int, scale: float) -> dict:
    """Per system: the raw seconds, the time per unit in the workload's unit, its median,
    and (against the reference) the pairwise ratios and their median."""
    out = {}
    ref = raw.get("reference")
    for name, secs in raw.items():
        per_unit = [s / count * scale for s in secs]
        entry = {"count": count, "raw_seconds": secs, "per_unit": per_unit,
                 "median": statistics.median(per_unit)}
        if ref is not None and name != "reference":
            ratios = [r / s for r, s in zip(ref, secs)]
            entry["ratio_pairs"] = ratios
            entry["ratio"] = statistics.median(ratios)
        out[name] = entry
    return out
