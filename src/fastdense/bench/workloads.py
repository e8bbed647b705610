"""The workloads of BENCHMARKS.md and the systems run on them: fastdense and its NumPy
reference, and beside them PyTorch (eager), JAX (jit), scikit-learn and onnxruntime when
importable."""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .harness import SYSTEMS, Case, summarise, time_in_turn

__all__ = ["PEERS", "Workload", "WORKLOADS", "FULL", "QUICK", "ADAM_BYTES_PER_PARAM",
           "SEED_SIZES", "WIDE_SIZES", "DIGITS_SIZES", "seed_data", "wide_data", "digits_data",
           "fit_case", "predict_case", "adam_case", "classify_case", "torch_fit_case",
           "torch_predict_case", "torch_adam_case", "torch_classify_case",
           "sklearn_classify_case", "onnxruntime_session", "onnxruntime_predict_case", "jax_scan_fit_case", "jax_step_fit_case", "peer_available",
           "build_cases", "run_workload"]

PEERS = ("torch", "jax", "sklearn", "onnxruntime")
# the modules a peer needs, where they are not just its name: onnxruntime runs the graph
# that fastdense.interop.to_onnx builds with onnx
PEER_MODULES = {"onnxruntime": ("onnx", "onnxruntime")}
ADAM_BYTES_PER_PARAM = 28                   # read p, g, m, v; write p, m, v (float32)
SEED_SIZES = (10, 10, 10, 1)
WIDE_SIZES = (784, 512, 512, 10)
DIGITS_SIZES = (64, 64, 64, 10)
WIDE_BATCH = 128


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


def _torch_epochs(torch, net, opt, loss_fn, Xt, yt, epochs, batch_size):
    """The timed run of an eager PyTorch fit: per epoch a permutation (seeded), per batch
    gather, forward, loss, backward, step."""
    n = Xt.shape[0]
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
        return _torch_epochs(torch, net, opt, loss_fn, Xt, yt, epochs, batch_size)
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
        return _torch_epochs(torch, net, opt, loss_fn, Xt, yt, epochs, batch_size)
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


# ---------------------------------------------------------------------------- onnxruntime

# The session's threads. fastdense predicts these small networks on the calling thread (its
# own loops; OpenBLAS only for wide layers), so onnxruntime gets one intra-op thread and one
# inter-op thread, run sequentially: its default (0: one intra-op thread per physical core)
# would start a thread pool whose workers spin after each call, and on a 2-core machine
# they would take the core the next system in turn needs, the very slowdown the pause
# before each timed run is there to avoid. One thread each measures the runtime's work
# per call, as fastdense's column does; the settings go into the JSON as notes, like
# PyTorch's thread count.
ONNXRUNTIME_THREADS = {"intra_op_num_threads": 1, "inter_op_num_threads": 1}


def onnxruntime_session(model) -> tuple[Any, dict]:
    """An ``onnxruntime.InferenceSession`` on the CPU provider running
    ``fastdense.interop.to_onnx(model)`` (input ``input``, output ``output``), with the
    threads of ONNXRUNTIME_THREADS, and the settings as a dict for the report."""
    ort: Any = importlib.import_module("onnxruntime")   # untyped: imported by name
    from fastdense.interop import DEFAULT_OPSET, to_onnx
    proto = to_onnx(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = ONNXRUNTIME_THREADS["intra_op_num_threads"]
    options.inter_op_num_threads = ONNXRUNTIME_THREADS["inter_op_num_threads"]
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(proto.SerializeToString(), sess_options=options,
                                   providers=["CPUExecutionProvider"])
    notes = dict(ONNXRUNTIME_THREADS, execution_mode="sequential",
                 providers=list(session.get_providers()), opset=DEFAULT_OPSET)
    return session, notes


def onnxruntime_predict_case(sizes, x, calls) -> Case:
    """onnxruntime running the fastdense model (the same weights as fastdense's, seed 0)
    exported to ONNX; NumPy in, NumPy out: ``session.run(["output"], {"input": x})``.
    Before anything is timed, its outputs must equal fastdense's ``predict`` (float32,
    relative 1e-5, absolute 1e-6 of the outputs' scale), else AssertionError: the peer is
    then dropped and the error reported, so a wrong model is never timed."""
    model = _model("fastdense", sizes)
    session, notes = onnxruntime_session(model)
    feed = {"input": x}
    expected = model.predict(x)
    got = session.run(["output"], feed)[0]
    if got.dtype != np.float32 or got.shape != expected.shape:
        raise AssertionError(f"onnxruntime gave {got.dtype} {got.shape}, fastdense's "
                             f"predict {expected.dtype} {expected.shape}")
    scale = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * scale,
                               err_msg="onnxruntime's outputs differ from fastdense's predict")
    notes["checked_max_abs_diff"] = float(np.max(np.abs(got - expected)))

    def prepare():
        def run():
            run_session = session.run
            for _ in range(calls):
                out = run_session(["output"], feed)[0]
            return {"checksum": float(out.sum(dtype=np.float64))}
        return run
    return Case(calls, prepare, notes=notes)


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

def peer_available(name: str) -> str | None:
    """None if the peer (every module it needs) imports, else why not."""
    for module in PEER_MODULES.get(name, (name,)):
        try:
            __import__(module)
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
            args = (WIDE_SIZES, X, y, size["wide_epochs"], WIDE_BATCH)
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
        peer("onnxruntime", lambda: onnxruntime_predict_case(SEED_SIZES, x, calls))
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
    floors: list = []
    floor_round = None
    if wid == "wide":                       # the update's GEMMs alone, after every round
        from fastdense._core import dense as _dense

        def floor_round():
            time.sleep(settle)              # the other BLAS pool's threads stop spinning
            floors.append(_dense.gemm_floor(WIDE_SIZES, WIDE_BATCH))
    raw, facts = time_in_turn(cases, pairs, errors=errors, settle=settle,
                              after_round=floor_round)
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
    if floors:
        # non-GEMM work per update = fastdense's time over the floor, less one
        result["gemm_floor"] = float(np.median(floors)) * w.scale
        result["gemm_floor_samples"] = [f * w.scale for f in floors]
        # side by side: the median of each round's fastdense time over that round's floor
        over = [s / count / f for s, f in zip(raw["fastdense"], floors)]
        result["over_floor_pairs"] = over
        result["over_floor"] = float(np.median(over))
    if errors:
        result["peer_errors"] = errors
    return result
