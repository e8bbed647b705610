"""Reporting of the benchmark suite: the table, the notes under it, the JSON report and
the charts."""
from __future__ import annotations

import datetime as _dt
import json
import math
import time
from pathlib import Path

from .environment import load_average, machine_info, threadpools, versions
from .sweep import SWEEP_INPUT

__all__ = ["format_table", "NOISY_SPREAD", "noisy", "format_noise_note", "format_peer_ratios",
           "format_sweep", "summary_messages", "build_report", "write_json", "plot_results",
           "plot_sweep"]


# ---------------------------------------------------------------------------- table

def _fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def format_table(results: dict, systems: list[str], quick: bool = False) -> str:
    head = ["workload", "unit"] + systems + ["ratio", "pair ratios", "target", "met"]
    rows = []
    for wid, r in results.items():
        unit = f"{r['unit']}/{r['per']}"
        if "skipped" in r:
            rows.append([wid, unit] + ["–"] * len(systems)
                        + ["–", f"not run: {r['skipped']}", f"≥{r['target']:g}×", "–"])
            continue
        s = r["systems"]
        pr = s["fastdense"]["ratio_pairs"]
        rows.append([wid, unit] + [_fmt(s[k]["median"]) if k in s else "–" for k in systems]
                    + [f"{r['ratio']:.2f}×", f"{min(pr):.2f}–{max(pr):.2f}",
                       f"≥{r['target']:g}×",
                       "(quick)" if quick else "yes" if r["target_met"] else "no"])
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    line = "  ".join(h.ljust(w) if i < 2 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(head, widths)))
    out = [line, "-" * len(line)]
    for row in rows:
        out.append("  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(out)


NOISY_SPREAD = 1.5   # max / min pairwise ratio above which a figure is flagged as noisy


def noisy(ratio_pairs) -> bool:
    """Whether the pairwise ratios disagree by more than NOISY_SPREAD (busy machine)."""
    return max(ratio_pairs) > NOISY_SPREAD * min(ratio_pairs)


def format_noise_note(names: list[str]) -> str:
    if not names:
        return ""
    return (f"noisy (pair ratios spread over {NOISY_SPREAD}×, the machine was busy): "
            f"{', '.join(names)} — the median resists outlier pairs, but rerun when quieter")


def format_peer_ratios(results: dict, peers: list[str]) -> str:
    lines = []
    for wid, r in results.items():
        s = r.get("systems", {})
        bits = [f"{p} {s[p]['ratio']:.2f}×" for p in peers if p in s]
        if wid == "adam" and s:
            bits.append("GB/s: " + ", ".join(f"{k} {v['GB_per_s']:.1f}" for k, v in s.items()))
        if "gemm_floor" in r:
            bits.append(f"GEMM floor {r['gemm_floor']:.3g} {r['unit']}, fastdense/floor "
                        f"{r['over_floor']:.3f} (non-GEMM work {100 * (r['over_floor'] - 1):+.1f} %)")
        notes = [f"{p}: {s[p]['notes']}" for p in peers if p in s and s[p].get("notes")]
        for p, err in r.get("peer_errors", {}).items():
            notes.append(f"{p} failed: {err}")
        if bits or notes:
            lines.append(f"  {wid}: " + "; ".join(bits + notes))
    return "\n".join(lines)


def format_sweep(sweep: dict) -> str:
    peers = sweep.get("peers", [])
    head = ["axis", "width", "batch", "updates", "fastdense µs", "reference µs", "ratio",
            "pair ratios", "GEMM floor µs", "fastdense/floor"]
    for peer in peers:
        head += [f"{peer} µs", f"{peer}/fastdense"]
    rows = []
    for p in sweep["points"]:
        row = [p["axis"], p["width"], p["batch"], p["updates"], _fmt(p["fastdense_us"]),
               _fmt(p["reference_us"]), f"{p['ratio']:.2f}×",
               f"{min(p['ratio_pairs']):.2f}–{max(p['ratio_pairs']):.2f}",
               _fmt(p["floor_us"]) if "floor_us" in p else "–",
               f"{p['over_floor']:.2f}" if "over_floor" in p else "–"]
        for peer in peers:
            if f"{peer}_us" in p:
                row += [_fmt(p[f"{peer}_us"]), f"{p[f'{peer}_over_fastdense']:.2f}×"]
            else:
                row += ["–", "–"]
        rows.append(row)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    out = ["  ".join(str(h).rjust(w) for h, w in zip(head, widths))]
    out.append("-" * len(out[0]))
    out += ["  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(out)


def summary_messages(results: dict, sweep: dict | None, shown: list[str], pairs: int,
                     quick: bool) -> list[str]:
    """What the run prints after its progress lines, one string per ``log`` call: the table
    of the workloads (``shown``: the systems with a column, fastdense and the reference
    first), its notes, and the sweep's table."""
    out = []
    if results:
        out.append(("QUICK RUN — tiny workloads, 2 pairs: these figures mean nothing\n"
                    if quick else "")
                   + f"median time per unit; ratio = median over {pairs} pairs of reference / "
                     "fastdense")
        out.append(format_table(results, shown, quick))
        note = format_noise_note([k for k, r in results.items() if "systems" in r
                                  and noisy(r["systems"]["fastdense"]["ratio_pairs"])])
        if note:
            out.append(note)
        extra = format_peer_ratios(results, shown[2:])
        if extra:
            out.append("peers' ratio to the reference, Adam's memory traffic (28 B/param), "
                       "wide's GEMM floor:")
            out.append(extra)
    if sweep is not None:
        out.append("")
        out.append("sweep: µs per fit update, 10-w-w-1 (widths at batch 32, batches at width "
                   "128" + (", the cross grid" if any(p["axis"] == "cross"
                                                       for p in sweep["points"]) else "")
                   + ")" + (" — QUICK RUN" if quick else "")
                   + ("; peer/fastdense = median over the rounds of the peer's time over "
                      "fastdense's" if sweep.get("peers") else ""))
        out.append(format_sweep(sweep))
        note = format_noise_note([f"w={p['width']}/batch={p['batch']}" for p in sweep["points"]
                                  if noisy(p["ratio_pairs"])])
        if note:
            out.append(note)
        for peer, err in sweep.get("peer_errors", {}).items():
            out.append(f"  {peer} failed: {err}")
    return out


# ---------------------------------------------------------------------------- JSON

def build_report(*, argv: list[str], quick: bool, pairs: int, settle: float,
                 load_before: list | None, started: float, openblas: dict, unset: list[str],
                 peers_missing: dict, results: dict, sweep: dict | None) -> dict:
    """The JSON report of a run (schema 1); ``started`` is the run's ``time.time()`` at its
    start, ``load_before`` the load average then. The machine, versions and thread pools
    are read now."""
    report = {
        "schema": 1,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": argv,
        "quick": quick,
        "pairs": pairs,
        "settle_seconds": settle,
        "contract": "BENCHMARKS.md: warm; systems in turn A B A B; per workload each "
                    "system's median time per unit and the median of the pairwise ratios "
                    "reference / system",
        "machine": machine_info(),
        "load_average": {"before": load_before, "after": load_average()},
        "wall_seconds": round(time.time() - started, 1),
        "versions": versions(),
        "threadpools": threadpools(),
        "openblas_env": openblas,
        "openblas_unset_by_native_blas": unset,
        "peers_missing": peers_missing,
        "workloads": results,
    }
    if sweep is not None:
        report["sweep"] = sweep
    return report


def write_json(path: str, report: dict) -> None:
    Path(path).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------- charts

def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return None
    return plt


def plot_results(results: dict, systems: list[str], path: str, quick: bool) -> bool:
    plt = _pyplot()
    done = {k: r for k, r in results.items() if "systems" in r}
    if plt is None or not done:
        return False
    fig, ax = plt.subplots(figsize=(9, 4.8))
    width = 0.8 / len(systems)
    for j, name in enumerate(systems):
        xs, ys = [], []
        for i, r in enumerate(done.values()):
            if name in r["systems"]:
                xs.append(i + (j - (len(systems) - 1) / 2) * width)
                ys.append(r["systems"][name]["median"] / _per_us(r["unit"]))
        ax.bar(xs, ys, width, label=name)
    ax.set_yscale("log")
    ax.set_xticks(range(len(done)))
    ax.set_xticklabels([f"{k}\n(per {r['per']})" for k, r in done.items()])
    ax.set_ylabel("median time per update / call (µs, log scale)")
    title = "fastdense benchmarks (warm medians, A B A B)"
    if quick:
        title += " — QUICK RUN, figures mean nothing"
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _per_us(unit: str) -> float:
    """Divide a time in ``unit`` by this to get µs."""
    return {"µs": 1.0, "ms": 1e-3}[unit]


def plot_sweep(sweep: dict, path: str, quick: bool) -> bool:
    plt = _pyplot()
    if plt is None:
        return False
    pts = sweep["points"]
    shared = [p for p in pts if p["width"] == 128 and p["batch"] == 32]
    by_width = sorted((p for p in pts if p["axis"] == "width"), key=lambda p: p["width"])
    by_batch = sorted([p for p in pts if p["axis"] == "batch"] + shared,
                      key=lambda p: p["batch"])
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex="col")
    for col, (series, key, label) in enumerate(((by_width, "width", "hidden width w (batch 32)"),
                                                (by_batch, "batch", "batch size (w = 128)"))):
        xs = [p[key] for p in series]
        ax = axes[0][col]
        ax.plot(xs, [p["ratio"] for p in series], "o-")
        for p in series:
            ax.vlines(p[key], min(p["ratio_pairs"]), max(p["ratio_pairs"]), alpha=0.4)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")          # ratios are multiplicative; outlier pairs stay legible
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}×"))
        ax.set_ylabel("reference / fastdense\n(median of pairs; bars: min–max)")
        ax = axes[1][col]
        ax.plot(xs, [p["fastdense_us"] for p in series], "o-", label="fastdense")
        ax.plot(xs, [p["reference_us"] for p in series], "s-", label="reference")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("µs per update")
        ax.legend()
    title = f"fit on {SWEEP_INPUT}-w-w-1: where fastdense's lead grows and shrinks"
    if quick:
        title += " — QUICK RUN"
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
