"""The benchmarks of BENCHMARKS.md: fastdense against its NumPy reference, side by side.

    python -m fastdense bench                     # every workload, 7 pairs, table + JSON + PNG
    python -m fastdense bench --only seed,wide    # some workloads
    python -m fastdense bench --sweep             # ... and the width / batch-size sweep
    python -m fastdense bench --only sweep        # the sweep alone
    python -m fastdense bench --quick             # a smoke run: tiny workloads, 2 pairs,
                                                  # no peers unless --peers says so
    python -m fastdense.bench ...                 # the same
    python bench/run.py ...                       # the same from a checkout

The contract (BENCHMARKS.md): same data, float32, same hyper-parameters and number of
updates for every system; one untimed run of each system first; then the systems run in
turn (A B A B …) and each workload reports every system's median time per update (or per
call) and the **median of the pairwise ratios** reference / fastdense over ≥ 5 pairs.
Absolute times on a shared 2-core machine drift; the ratios, measured side by side, are
the figures that mean something. Each timed run builds its model beforehand (untimed), so
every run of a training workload does identical work; the garbage collector is off while
a run is timed, and each timed run starts after a 0.3 s pause (``--settle``) and one
untimed run of the same system: the previous system's OpenBLAS / OpenMP threads keep
spinning for a while after their last call, and on 2 cores that slowed the next BLAS-bound
run by 30–100 %; the untimed run makes the timed one start warm again after the pause. A full run takes about 4–6
minutes with both peers, plus 1.5–2.5 minutes for ``--sweep``. Figures whose pairwise
ratios spread more than 1.5× are flagged as noisy under the table.

Workloads (``seed``, ``wide``, ``adam``, ``predict1``, ``predict1k``) are those of
BENCHMARKS.md; PyTorch (eager) and JAX (jit) run beside them when they can be imported,
scikit-learn on ``digits``, and onnxruntime on ``predict1`` and ``predict1k`` (the same
model exported by ``fastdense.interop.to_onnx``, one thread, its outputs checked against
fastdense's before it is timed) — none is ever required. ``--sweep`` times ``fit`` on a 10-w-w-1 network (ReLU, MSE, SGD;
the input stays 10 features wide, as in ``seed``, so the sweep varies the hidden layers
only) over widths at batch 32 and over batch sizes at width 128; each point's number of
updates is set so that a reference run takes about 0.3 s (at least 64 updates).

OpenBLAS: some machines set ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` for old OpenBLAS
builds; they slow a current NumPy/SciPy OpenBLAS, and OpenBLAS reads them when it loads,
so they cannot be changed from inside a running Python. Either run

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m fastdense bench

or pass ``--native-blas``, which re-runs the benchmark in a child process without them.
The JSON records every ``OPENBLAS_*`` variable in force.

The modules: ``workloads`` (the workloads, their data and sizes, and the systems run on
them: fastdense, the reference, PyTorch, JAX, scikit-learn, onnxruntime), ``harness`` (timing: the
pause, the warm run, systems in turn, medians and pairwise ratios), ``sweep``,
``environment`` (what the report records of the machine), ``report`` (the table, the JSON,
the charts) and ``cli`` (``main``). ``fastdense.benchmarks`` re-exports the public names.
"""
from .cli import BLAS_ENV_OVERRIDES, main
from .environment import load_average, machine_info, openblas_env, threadpools, versions
from .harness import SYSTEMS, Case, summarise, time_in_turn
from .report import (NOISY_SPREAD, build_report, format_noise_note, format_peer_ratios,
                     format_sweep, format_table, noisy, plot_results, plot_sweep,
                     summary_messages, write_json)
from .sweep import SWEEP_BATCHES, SWEEP_INPUT, SWEEP_WIDTHS, run_sweep, sweep_points
from .workloads import (ADAM_BYTES_PER_PARAM, DIGITS_SIZES, FULL, PEERS, QUICK, SEED_SIZES,
                        WIDE_SIZES, WORKLOADS, Workload, adam_case, build_cases,
                        classify_case, digits_data, fit_case, jax_scan_fit_case,
                        jax_step_fit_case, onnxruntime_predict_case, onnxruntime_session,
                        peer_available, predict_case, run_workload,
                        seed_data, sklearn_classify_case, torch_adam_case,
                        torch_classify_case, torch_fit_case, torch_predict_case, wide_data)

__all__ = [
    "main", "WORKLOADS", "Workload", "FULL", "QUICK", "SYSTEMS", "PEERS", "SEED_SIZES",
    "WIDE_SIZES", "DIGITS_SIZES", "ADAM_BYTES_PER_PARAM", "BLAS_ENV_OVERRIDES",
    "seed_data", "wide_data", "digits_data", "fit_case", "predict_case", "adam_case",
    "classify_case", "torch_fit_case", "torch_predict_case", "torch_adam_case",
    "torch_classify_case", "sklearn_classify_case", "jax_scan_fit_case", "jax_step_fit_case",
    "onnxruntime_session", "onnxruntime_predict_case",
    "peer_available", "build_cases", "run_workload",
    "Case", "time_in_turn", "summarise",
    "SWEEP_WIDTHS", "SWEEP_BATCHES", "SWEEP_INPUT", "sweep_points", "run_sweep",
    "machine_info", "versions", "threadpools", "openblas_env", "load_average",
    "NOISY_SPREAD", "noisy", "format_table", "format_noise_note", "format_peer_ratios",
    "format_sweep", "summary_messages", "build_report", "write_json", "plot_results",
    "plot_sweep",
]
