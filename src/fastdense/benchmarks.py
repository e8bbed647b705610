"""The benchmarks of BENCHMARKS.md: fastdense against its NumPy reference, side by side.

    python -m fastdense bench                     # every workload, 7 pairs, table + JSON + PNG
    python -m fastdense bench --only seed,wide    # some workloads
    python -m fastdense bench --sweep             # ... and the width / batch-size sweep
    python -m fastdense bench --only sweep        # the sweep alone
    python -m fastdense bench --quick             # a smoke run: tiny workloads, 2 pairs,
                                                  # no peers unless --peers says so
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
BENCHMARKS.md; PyTorch (eager) and JAX (jit) run beside them when they can be imported —
neither is ever required. ``--sweep`` times ``fit`` on a 10-w-w-1 network (ReLU, MSE, SGD;
the input stays 10 features wide, as in ``seed``, so the sweep varies the hidden layers
only) over widths at batch 32 and over batch sizes at width 128; each point's number of
updates is set so that a reference run takes about 0.3 s (at least 64 updates).

OpenBLAS: some machines set ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` for old OpenBLAS
builds; they slow a current NumPy/SciPy OpenBLAS, and OpenBLAS reads them when it loads,
so they cannot be changed from inside a running Python. Either run

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m fastdense bench

or pass ``--native-blas``, which re-runs the benchmark in a child process without them.
The JSON records every ``OPENBLAS_*`` variable in force.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import importlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Any

import numpy as np

__all__ = ["main", "WORKLOADS"]

SYSTEMS = ("fastdense", "reference")
PEERS = ("torch", "jax", "sklearn")
BLAS_ENV_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_UNSET_MARK = "_FASTDENSE_BENCH_UNSET"      # set by --native-blas for the child process
ADAM_BYTES_PER_PARAM = 28                   # read p, g, m, v; write p, m, v (float32)
SEED_SIZES = (10, 10, 10, 1)
WIDE_SIZES = (784, 512, 512, 10)
DIGITS_SIZES = (64, 64, 64, 10)


@dataclass(frozen=True)
class Workload:
    id: str
    description: str
    unit: str            # "µs" or "ms"
    per: str             # "update" or "call"
    target: float        # reference / fastdense ratio to reach (BENCHMARKS.md)

    @property
    def scale(self) -> float:
        return {"µs": 1e6, "ms": 1e3}[self.unit]


WORKLOADS = {w.id: w for w in (
    Workload("seed", "10-10-10-1 MSE SGD, 1000×10, batch 32, 100 epochs (3,200 updates); "
             "whole fit", "µs", "update", 25.0),
    Workload("wide", "784-512-512-10 MSE SGD, 8192×784, batch 128, 2 epochs (128 updates); "
             "whole fit", "ms", "update", 1.15),
    Workload("adam", "Adam over one flat 10,000,000-float32 vector, 20 updates",
             "ms", "update", 10.0),
    Workload("predict1", "seed network, predict on 1×10, 20,000 calls", "µs", "call", 10.0),
    Workload("predict1k", "seed network, predict on 1000×10, 2,000 calls", "µs", "call", 3.0),
    Workload("digits", "64-64-64-10 ReLU, softmax + sparse categorical cross-entropy, Adam "
             "(1e-3), bundled digits 1797×64, batch 32, 10 epochs (570 updates); whole fit",
             "µs", "update", 10.0),
)}

# The size of each workload: full (the contract) and --quick (a smoke test; means nothing).
FULL = dict(seed_epochs=100, wide_n=8192, wide_epochs=2, adam_n=10_000_000, adam_steps=20,
            predict1_calls=20_000, predict1k_calls=2_000, digits_epochs=10)
QUICK = dict(seed_epochs=2, wide_n=512, wide_epochs=1, adam_n=100_000, adam_steps=2,
             predict1_calls=200, predict1k_calls=20, digits_epochs=1)

SWEEP_WIDTHS = (8, 32, 128, 512, 2048)
SWEEP_BATCHES = (1, 8, 32, 128, 1024)
SWEEP_INPUT = 10


# ---------------------------------------------------------------------------- timing

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


def time_in_turn(cases: dict[str, Case], pairs: int, warm: bool = True,
                 errors: dict | None = None, settle: float = 0.0) -> tuple[dict, dict]:
    """Warm each system once (untimed), then run them in turn ``pairs`` times.

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

    if warm:
        for name in list(cases):
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


# ---------------------------------------------------------------------------- data

def seed_data():
    rng = np.random.default_rng(0)
    X = rng.random((1000, 10), dtype=np.float32)
    y = rng.random((1000, 1), dtype=np.float32)
    return X, y


def wide_data(n: int):
    rng = np.random.default_rng(1)
    X = rng.random((n, WIDE_SIZES[0]), dtype=np.float32)
    y = rng.random((n, WIDE_SIZES[-1]), dtype=np.float32)
    return X, y


def digits_data():
    """The bundled digits, pixels scaled to [0, 1], float32; labels int64."""
    from fastdense.datasets import load_digits
    X, y = load_digits()
    return (X / 16.0).astype(np.float32), y


def _classifier(system: str, sizes=DIGITS_SIZES, lr=1e-3):
    """A compiled float32 classifier of fastdense or the reference: ReLU hidden layers, a
    softmax output, sparse categorical cross-entropy, Adam(lr), seed 0."""
    import fastdense as fd
    from fastdense import reference as ref
    module: Any = fd if system == "fastdense" else ref
    Dense = getattr(module, "Dense", fd.Dense)
    layers = [Dense(sizes[1], activation="relu", input_dim=sizes[0])]
    layers += [Dense(u, activation="relu") for u in sizes[2:-1]]
    layers.append(Dense(sizes[-1], activation="softmax"))
    model = module.Sequential(layers, dtype="float32", seed=0)
    opt = (fd.optimizers if system == "fastdense" else ref).Adam(learning_rate=lr)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    return model


def classify_case(system, X, y, epochs, batch_size) -> Case:
    n_batches = -(-X.shape[0] // batch_size)

    def prepare():
        model = _classifier(system)

        def run():
            history = model.fit(X, y, epochs=epochs, batch_size=batch_size, shuffle=True,
                                verbose=0)
            accuracy = float(np.mean(model.predict(X).argmax(axis=1) == y))
            return {"final_loss": float(history.history["loss"][-1]),
                    "train_accuracy": accuracy}
        return run
    return Case(n_batches * epochs, prepare)


def torch_classify_case(X, y, epochs, batch_size) -> Case:
    """Eager PyTorch: the same network from the same initial weights (logits out,
    CrossEntropyLoss, Adam), per batch gather, forward, loss, backward, step."""
    torch = _torch()
    weights = _classifier("fastdense").get_weights()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n = X.shape[0]
    n_batches = -(-n // batch_size)

    def prepare():
        net = _torch_net(torch, weights)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(0)

        def run():
            for _ in range(epochs):
                perm = torch.randperm(n, generator=gen)
                for i in range(0, n, batch_size):
                    idx = perm[i:i + batch_size]
                    opt.zero_grad()
                    loss = loss_fn(net(Xt[idx]), yt[idx])
                    loss.backward()
                    opt.step()
            return {"final_batch_loss": float(loss.detach())}
        return run
    return Case(n_batches * epochs, prepare, notes={"threads": torch.get_num_threads()})


def sklearn_classify_case(X, y, epochs, batch_size) -> Case:
    """scikit-learn's MLPClassifier on the same network shape: Adam(1e-3), batch 32, no L2
    penalty (alpha=0), exactly `epochs` passes (no early stop); its own initialisation."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    n_batches = -(-X.shape[0] // batch_size)

    def prepare():
        clf = MLPClassifier(hidden_layer_sizes=DIGITS_SIZES[1:-1], activation="relu",
                            solver="adam", alpha=0.0, batch_size=batch_size,
                            learning_rate_init=1e-3, max_iter=epochs, shuffle=True,
                            random_state=0, tol=0.0, n_iter_no_change=10 ** 9)

        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(X, y)
            return {"final_loss": float(clf.loss_), "iterations": int(clf.n_iter_)}
        return run
    return Case(n_batches * epochs, prepare)


def _layers(Dense, sizes):
    layers = [Dense(sizes[1], activation="relu", input_dim=sizes[0])]
    layers += [Dense(u, activation="relu") for u in sizes[2:-1]]
    layers.append(Dense(sizes[-1]))
    return layers


def _model(system: str, sizes, lr=0.01):
    """A compiled float32 model of fastdense or of the reference, seed 0, SGD(lr), MSE."""
    import fastdense as fd
    from fastdense import reference as ref
    model: Any
    if system == "fastdense":
        model = fd.Sequential(_layers(fd.Dense, sizes), dtype="float32", seed=0)
        model.compile(optimizer=fd.optimizers.SGD(learning_rate=lr), loss="mse")
    else:
        Dense = getattr(ref, "Dense", fd.Dense)
        model = ref.Sequential(_layers(Dense, sizes), dtype="float32", seed=0)
        model.compile(optimizer=ref.SGD(learning_rate=lr), loss="mse")
    return model


def _initial_weights(sizes):
    """The fastdense model's initial weights [W0 (in, out), b0, …], for the peers."""
    return _model("fastdense", sizes).get_weights()


# ---------------------------------------------------------------------------- our systems

def fit_case(system, sizes, X, y, epochs, batch_size) -> Case:
    n_batches = -(-X.shape[0] // min(batch_size, X.shape[0]))

    def prepare():
        model = _model(system, sizes)

        def run():
            history = model.fit(X, y, epochs=epochs, batch_size=batch_size, shuffle=True,
                                verbose=0)
            return {"final_loss": float(history.history["loss"][-1])}
        return run
    return Case(n_batches * epochs, prepare)


def predict_case(system, sizes, x, calls) -> Case:
    model = _model(system, sizes)
    if system == "reference":   # the same weights as fastdense's
        model.set_weights(_model("fastdense", sizes).get_weights())

    def prepare():
        def run():
            predict = model.predict
            for _ in range(calls):
                out = predict(x)
            return {"checksum": float(out.sum(dtype=np.float64))}
        return run
    return Case(calls, prepare)


def adam_case(system, p0, g, steps) -> Case:
    """Standalone ``Adam.apply([g], [p])``: one in-place update of p per call."""
    import fastdense as fd
    from fastdense import reference as ref
    module = fd.optimizers if system == "fastdense" else ref
    if not hasattr(module, "Adam"):
        raise _Unavailable(f"{module.__name__}.Adam does not exist yet")
    opt = module.Adam(learning_rate=0.001)
    p = p0.copy()

    def prepare():
        def run():
            for _ in range(steps):
                opt.apply([g], [p])
            return None
        return run
    return Case(steps, prepare, notes={"hyper": _adam_hyper(opt)})


def _adam_hyper(opt) -> dict:
    names = ("learning_rate", "beta_1", "beta_2", "epsilon")
    return {k: float(getattr(opt, k)) for k in names if hasattr(opt, k)}


class _Unavailable(Exception):
    """A workload one of our own systems cannot run yet (an API not written)."""


# ---------------------------------------------------------------------------- PyTorch

def _torch():
    import torch
    return torch


def _torch_net(torch, weights):
    mods = []
    pairs = list(zip(weights[0::2], weights[1::2]))
    for i, (W, b) in enumerate(pairs):
        lin = torch.nn.Linear(W.shape[0], W.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i < len(pairs) - 1:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def torch_fit_case(sizes, X, y, epochs, batch_size) -> Case:
    """Eager PyTorch: per epoch a random permutation, per batch gather, forward, MSE,
    backward, SGD step; the whole fit timed, as for our systems."""
    torch = _torch()
    weights = _initial_weights(sizes)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n = X.shape[0]
    n_batches = -(-n // batch_size)

    def prepare():
        net = _torch_net(torch, weights)
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        loss_fn = torch.nn.MSELoss()
        gen = torch.Generator().manual_seed(0)

        def run():
            for _ in range(epochs):
                perm = torch.randperm(n, generator=gen)
                for i in range(0, n, batch_size):
                    idx = perm[i:i + batch_size]
                    opt.zero_grad()
                    loss = loss_fn(net(Xt[idx]), yt[idx])
                    loss.backward()
                    opt.step()
            return {"final_batch_loss": float(loss.detach())}
        return run
    return Case(n_batches * epochs, prepare, notes={"threads": torch.get_num_threads()})


def torch_predict_case(sizes, x, calls) -> Case:
    """NumPy in, NumPy out: ``net(torch.from_numpy(x)).numpy()`` under inference_mode."""
    torch = _torch()
    net = _torch_net(torch, _initial_weights(sizes))

    def prepare():
        def run():
            with torch.inference_mode():
                for _ in range(calls):
                    out = net(torch.from_numpy(x)).numpy()
            return {"checksum": float(out.sum(dtype=np.float64))}
        return run
    return Case(calls, prepare)


def torch_adam_case(p0, g, steps, hyper) -> Case:
    """torch.optim.Adam on one parameter with its gradient set; fused=True where the
    installed PyTorch has a fused CPU Adam, else foreach."""
    torch = _torch()
    p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    p.grad = torch.from_numpy(g.copy())
    kw = dict(lr=hyper.get("learning_rate", 0.001),
              betas=(hyper.get("beta_1", 0.9), hyper.get("beta_2", 0.999)),
              eps=hyper.get("epsilon", 1e-7))
    try:
        opt = torch.optim.Adam([p], fused=True, **kw)
        opt.step()            # raises here if fused is unsupported on this device
        variant = "fused"
    except (RuntimeError, TypeError, ValueError):
        opt = torch.optim.Adam([p], foreach=True, **kw)
        variant = "foreach"

    def prepare():
        def run():
            for _ in range(steps):
                opt.step()
            return None
        return run
    return Case(steps, prepare, notes={"variant": variant, "threads": torch.get_num_threads()})


# ---------------------------------------------------------------------------- JAX

def _jax_model(jax, jnp, n_layers):
    def forward(params, x):
        for i, (W, b) in enumerate(params):
            x = x @ W + b
            if i < n_layers - 1:
                x = jax.nn.relu(x)
        return x

    def loss(params, x, y):
        d = forward(params, x) - y
        return jnp.mean(d * d)

    grad = jax.grad(loss)
    lr = jnp.float32(0.01)

    def sgd_step(params, x, y):
        g = grad(params, x, y)
        return jax.tree_util.tree_map(lambda p, gp: p - lr * gp, params, g)
    return sgd_step


def jax_scan_fit_case(sizes, X, y, epochs, batch_size) -> Case:
    """JAX, one jitted function per epoch: permute, then ``lax.scan`` over the full batches
    (and one more step for a partial last batch)."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    weights = _initial_weights(sizes)
    sgd_step = _jax_model(jax, jnp, len(sizes) - 1)
    n = X.shape[0]
    full, rest = divmod(n, batch_size)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    @jax.jit
    def epoch(params, key):
        perm = jax.random.permutation(key, n)
        xs, ys = Xj[perm], yj[perm]
        xb = xs[:full * batch_size].reshape(full, batch_size, -1)
        yb = ys[:full * batch_size].reshape(full, batch_size, -1)
        params, _ = lax.scan(lambda p, b: (sgd_step(p, *b), None), params, (xb, yb))
        if rest:
            params = sgd_step(params, xs[full * batch_size:], ys[full * batch_size:])
        return params

    def prepare():
        params0 = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(weights[0::2],
                                                                    weights[1::2])]
        jax.block_until_ready(params0)

        def run():
            params, key = params0, jax.random.PRNGKey(0)
            for _ in range(epochs):
                key, sub = jax.random.split(key)
                params = epoch(params, sub)
            jax.block_until_ready(params)
            return None
        return run
    return Case((full + (rest > 0)) * epochs, prepare, notes={"style": "jit + lax.scan"})


def jax_step_fit_case(sizes, X, y, epochs, batch_size) -> Case:
    """JAX, one jitted call per update (gather inside); shuffling by NumPy per epoch."""
    import jax
    import jax.numpy as jnp
    weights = _initial_weights(sizes)
    sgd_step = _jax_model(jax, jnp, len(sizes) - 1)
    n = X.shape[0]
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    @jax.jit
    def step(params, idx):
        return sgd_step(params, Xj[idx], yj[idx])

    def prepare():
        params0 = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(weights[0::2],
                                                                    weights[1::2])]
        jax.block_until_ready(params0)
        rng = np.random.default_rng(0)

        def run():
            params = params0
            for _ in range(epochs):
                perm = rng.permutation(n).astype(np.int32)
                for i in range(0, n, batch_size):
                    params = step(params, perm[i:i + batch_size])
            jax.block_until_ready(params)
            return None
        return run
    return Case(-(-n // batch_size) * epochs, prepare, notes={"style": "jit per step"})


# ---------------------------------------------------------------------------- workloads

def _peer_available(name: str) -> str | None:
    """None if the peer imports, else why not."""
    try:
        __import__(name)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def build_cases(wid: str, size: dict, peers: list[str], errors: dict) -> dict[str, Case]:
    """The Case of every system for workload ``wid``, all on the same data. A peer whose
    set-up fails is left out and its error put in ``errors``."""
    cases: dict[str, Case] = {}

    def peer(name, make):
        if name in peers:
            try:
                cases[name] = make()
            except Exception as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"

    if wid in ("seed", "wide"):
        if wid == "seed":
            X, y = seed_data()
            args = (SEED_SIZES, X, y, size["seed_epochs"], 32)
        else:
            X, y = wide_data(size["wide_n"])
            args = (WIDE_SIZES, X, y, size["wide_epochs"], 128)
        cases = {s: fit_case(s, *args) for s in SYSTEMS}
        peer("torch", lambda: torch_fit_case(*args))
        peer("jax", lambda: (jax_scan_fit_case if wid == "seed" else jax_step_fit_case)(*args))
    elif wid == "adam":
        rng = np.random.default_rng(2)
        p0 = rng.standard_normal(size["adam_n"], dtype=np.float32)
        g = rng.standard_normal(size["adam_n"], dtype=np.float32)
        cases = {s: adam_case(s, p0, g, size["adam_steps"]) for s in SYSTEMS}
        peer("torch", lambda: torch_adam_case(p0, g, size["adam_steps"],
                                              cases["fastdense"].notes["hyper"]))
    elif wid == "digits":
        Xd, yd = digits_data()
        epochs = size["digits_epochs"]
        cases = {s: classify_case(s, Xd, yd, epochs, 32) for s in SYSTEMS}
        peer("torch", lambda: torch_classify_case(Xd, yd, epochs, 32))
        peer("sklearn", lambda: sklearn_classify_case(Xd, yd, epochs, 32))
    elif wid in ("predict1", "predict1k"):
        X, _ = seed_data()
        x = X[:1].copy() if wid == "predict1" else X
        calls = size[f"{wid}_calls"]
        cases = {s: predict_case(s, SEED_SIZES, x, calls) for s in SYSTEMS}
        peer("torch", lambda: torch_predict_case(SEED_SIZES, x, calls))
    else:
        raise ValueError(f"unknown workload {wid!r}")
    return cases


def run_workload(wid: str, size: dict, pairs: int, peers: list[str], log,
                 settle: float = 0.0) -> dict:
    w = WORKLOADS[wid]
    quick = size is QUICK
    log(f"  {wid}: {w.description}" if not quick else f"  {wid}: (quick) {w.description}")
    errors: dict = {}
    try:
        cases = build_cases(wid, size, peers, errors)
    except _Unavailable as exc:
        log(f"    not run: {exc}")
        return {"description": w.description, "unit": w.unit, "per": w.per,
                "target": w.target, "skipped": str(exc)}
    count = cases["fastdense"].count
    if quick:
        log(f"    quick: {count} {w.per}s per run instead")
    raw, facts = time_in_turn(cases, pairs, errors=errors, settle=settle)
    systems = summarise(raw, count, w.scale)
    for name, entry in systems.items():
        if facts.get(name):
            entry["facts"] = facts[name]
        if cases[name].notes:
            entry["notes"] = cases[name].notes
        if wid == "adam":
            n = size["adam_n"]
            entry["GB_per_s"] = ADAM_BYTES_PER_PARAM * n / (entry["median"] / w.scale) / 1e9
    ratio = systems["fastdense"]["ratio"]
    result = {"description": w.description, "unit": w.unit, "per": w.per, "count": count,
              "order": list(raw), "systems": systems, "ratio": ratio, "target": w.target,
              "target_met": ratio >= w.target}
    if errors:
        result["peer_errors"] = errors
    return result


# ---------------------------------------------------------------------------- sweep

def sweep_points(widths=SWEEP_WIDTHS, batches=SWEEP_BATCHES):
    """(axis, width, batch) for every point: widths at batch 32, batches at width 128; the
    point (128, 32), on both axes, is timed once."""
    points = [("width", w, 32) for w in widths]
    points += [("batch", 128, b) for b in batches if not (b == 32 and 128 in widths)]
    return points


def run_sweep(pairs: int, target_seconds: float, log, settle: float = 0.0,
              min_samples: int = 1024, widths=SWEEP_WIDTHS, batches=SWEEP_BATCHES,
              min_updates: int = 64) -> dict:
    """fit time per update, fastdense vs reference, on 10-w-w-1 over width and batch.

    Per point: two untimed 1-epoch fits of each system in turn (the warm runs); the faster
    reference one (a single probe on a busy machine can be 10× slow) sets the number of
    epochs so that a reference run takes about ``target_seconds`` (and at least
    ``min_updates`` updates are timed); then ``pairs`` rounds A B. The data has
    ``max(min_samples, 4·batch)`` rows."""
    rng = np.random.default_rng(3)
    started = time.perf_counter()
    points = []
    for axis, width, batch in sweep_points(widths, batches):
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
        raw, _ = time_in_turn(cases, pairs, warm=False, settle=settle)
        count = cases["fastdense"].count
        systems = summarise(raw, count, 1e6)
        point = {"axis": axis, "width": width, "batch": batch, "n_samples": n,
                 "epochs": epochs, "updates": count,
                 "fastdense_us": systems["fastdense"]["median"],
                 "reference_us": systems["reference"]["median"],
                 "ratio": systems["fastdense"]["ratio"],
                 "ratio_pairs": systems["fastdense"]["ratio_pairs"],
                 "raw_seconds": {s: raw[s] for s in SYSTEMS}}
        points.append(point)
        log(f"  {axis:>5} w={width:<5} batch={batch:<5} {count:>6} updates  "
            f"ratio {point['ratio']:.2f}")
    return {"network": f"{SWEEP_INPUT}-w-w-1, ReLU, ReLU, linear; MSE; SGD lr 0.01; float32",
            "data": f"X n×10, y n×1 uniform[0,1); n = max({min_samples}, 4·batch); shuffled",
            "unit": "µs per update", "pairs": pairs, "target_seconds": target_seconds,
            "widths_at_batch": 32, "batches_at_width": 128,
            "wall_seconds": round(time.perf_counter() - started, 1), "points": points}


# ---------------------------------------------------------------------------- environment

def machine_info() -> dict:
    info: dict[str, Any] = {"cpu_model": None, "cpu_flags": [],
                            "logical_cpus": os.cpu_count(),
            "platform": platform.platform(), "python": sys.version.split()[0]}
    try:
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and info["cpu_model"] is None:
                info["cpu_model"] = value.strip()
            elif key == "flags" and not info["cpu_flags"]:
                flags = set(value.split())
                info["cpu_flags"] = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f")
                                     if f in flags]
        info["physical_cores"] = len({(b.split("physical id")[1].split("\n")[0],
                                       b.split("core id")[1].split("\n")[0])
                                      for b in text.split("\n\n")
                                      if "core id" in b and "physical id" in b}) or None
    except OSError:
        pass
    return info


def versions() -> dict:
    import fastdense
    out = {"fastdense": fastdense.__version__, "numpy": np.__version__}
    for name in ("scipy", "torch", "jax", "jaxlib", "threadpoolctl", "matplotlib"):
        mod = sys.modules.get(name)
        if mod is None and name in ("scipy", "threadpoolctl", "matplotlib"):
            try:
                mod = __import__(name)
            except Exception:
                mod = None
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    try:   # the instruction set of fastdense's hand-written loops (run-time dispatch)
        from fastdense._core import dense
        out["fastdense_isa"] = dense.get_isa()
    except (ImportError, AttributeError):
        pass
    try:
        here = Path(fastdense.__file__).resolve().parent
        rev = subprocess.run(["git", "-C", str(here), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=5)
        if rev.returncode == 0:
            out["fastdense_git"] = rev.stdout.strip()
    except Exception:
        pass
    return out


def threadpools() -> list | None:
    try:    # optional, untyped: imported by name so type checkers need no stubs
        threadpoolctl: Any = importlib.import_module("threadpoolctl")
    except ImportError:
        return None
    return threadpoolctl.threadpool_info()


def openblas_env() -> dict:
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith("OPENBLAS_")}


# ---------------------------------------------------------------------------- output

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
        notes = [f"{p}: {s[p]['notes']}" for p in peers if p in s and s[p].get("notes")]
        for p, err in r.get("peer_errors", {}).items():
            notes.append(f"{p} failed: {err}")
        if bits or notes:
            lines.append(f"  {wid}: " + "; ".join(bits + notes))
    return "\n".join(lines)


def format_sweep(sweep: dict) -> str:
    head = ["axis", "width", "batch", "updates", "fastdense µs", "reference µs", "ratio",
            "pair ratios"]
    rows = [[p["axis"], p["width"], p["batch"], p["updates"], _fmt(p["fastdense_us"]),
             _fmt(p["reference_us"]), f"{p['ratio']:.2f}×",
             f"{min(p['ratio_pairs']):.2f}–{max(p['ratio_pairs']):.2f}"]
            for p in sweep["points"]]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    out = ["  ".join(str(h).rjust(w) for h, w in zip(head, widths))]
    out.append("-" * len(out[0]))
    out += ["  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(out)


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


# ---------------------------------------------------------------------------- CLI

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fastdense bench",
        description="Time fastdense against its NumPy reference (and PyTorch / JAX when "
                    "importable) on the workloads of BENCHMARKS.md, side by side.",
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
                   help="'auto' (torch and jax when importable; the default), 'none' (the "
                        "default with --quick), or a list such as 'torch'")
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
    p.add_argument("--sweep-pairs", type=int, default=5,
                   help="rounds per sweep point (default %(default)s; at least 3)")
    p.add_argument("--sweep-plot", default="bench-sweep.png", metavar="PATH",
                   help="ratio vs width and vs batch chart (default: %(default)s; '' for none)")
    p.add_argument("--settle", type=float, default=None, metavar="SECONDS",
                   help="sleep before each timed run so the previous system's BLAS/OpenMP "
                        "threads stop spinning (default 0.3; 0 with --quick)")
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
    return subprocess.call([sys.executable, "-m", "fastdense.benchmarks", *args], env=env)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.native_blas and any(k in os.environ for k in BLAS_ENV_OVERRIDES):
        return _native_blas(argv)

    selected = list(WORKLOADS) if args.only is None else \
        [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in selected if s not in WORKLOADS and s != "sweep"]
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}: choose among "
                         f"{', '.join(WORKLOADS)}, sweep")
    do_sweep = args.sweep or "sweep" in selected
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
    peer_missing = {p: why for p in wanted if (why := _peer_available(p))}
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

    load_before = _loadavg()
    started = time.time()
    results = {}
    for wid in selected:
        results[wid] = run_workload(wid, size, pairs, peers, log, settle)
    sweep = None
    if do_sweep:
        log("sweep: fit on 10-w-w-1, fastdense vs reference")
        sweep = run_sweep(2 if args.quick else max(3, args.sweep_pairs),
                          0.01 if args.quick else 0.3, log, settle,
                          64 if args.quick else 1024, args.sweep_widths,
                          args.sweep_batches, 1 if args.quick else 64)

    shown = ["fastdense", "reference"] + [p for p in peers
                                          if any(p in r.get("systems", {})
                                                 for r in results.values())]
    report = {
        "schema": 1,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": argv,
        "quick": args.quick,
        "pairs": pairs,
        "settle_seconds": settle,
        "contract": "BENCHMARKS.md: warm; systems in turn A B A B; per workload each "
                    "system's median time per unit and the median of the pairwise ratios "
                    "reference / system",
        "machine": machine_info(),
        "load_average": {"before": load_before, "after": _loadavg()},
        "wall_seconds": round(time.time() - started, 1),
        "versions": versions(),
        "threadpools": threadpools(),
        "openblas_env": env_blas,
        "openblas_unset_by_native_blas": unset,
        "peers_missing": peer_missing,
        "workloads": results,
    }
    if sweep is not None:
        report["sweep"] = sweep

    log("")
    if results:
        log(("QUICK RUN — tiny workloads, 2 pairs: these figures mean nothing\n"
             if args.quick else "")
            + f"median time per unit; ratio = median over {pairs} pairs of reference / "
              "fastdense")
        log(format_table(results, shown, args.quick))
        note = format_noise_note([k for k, r in results.items() if "systems" in r
                                  and noisy(r["systems"]["fastdense"]["ratio_pairs"])])
        if note:
            log(note)
        extra = format_peer_ratios(results, shown[2:])
        if extra:
            log("peers' ratio to the reference, and Adam's memory traffic (28 B/param):")
            log(extra)
    if sweep is not None:
        log("")
        log("sweep: µs per fit update, 10-w-w-1 (widths at batch 32, batches at width 128)"
            + (" — QUICK RUN" if args.quick else ""))
        log(format_sweep(sweep))
        note = format_noise_note([f"w={p['width']}/batch={p['batch']}" for p in sweep["points"]
                                  if noisy(p["ratio_pairs"])])
        if note:
            log(note)

    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        log(f"\nresults: {args.json}")
    if args.plot and results and plot_results(results, shown, args.plot, args.quick):
        log(f"chart: {args.plot}")
    if sweep is not None and args.sweep_plot and plot_sweep(sweep, args.sweep_plot,
                                                            args.quick):
        log(f"sweep chart: {args.sweep_plot}")
    return 0


def _loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
