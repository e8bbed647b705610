"""The optimizer updates' thread pool (fd_pool.h, updates.pyx): a buffer of at least
PARALLEL_MIN_VALUES values is split over threads, with results bitwise identical to one
thread for every rule, option and dtype, at the threshold and at the pieces' edges; it is
on by default with every core; set_num_threads(1) forces serial; concurrent callers and
forked children work."""
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import fastdense as fd
from fastdense._core import updates
from test_threads import compiled, run_in_threads

PM = updates.PARALLEL_MIN_VALUES
CHUNK = updates.CHUNK_VALUES
needs_pool = pytest.mark.skipif(not updates.THREADS_SUPPORTED,
                                reason="built without the update thread pool")

# every rule, with and without the options that change the per-value arithmetic
CASES = {
    "sgd_plain": ("SGD", dict(learning_rate=0.05)),                  # BLAS axpy when large
    "sgd_weight_decay": ("SGD", dict(learning_rate=0.05, weight_decay=0.1)),
    "sgd_momentum": ("SGD", dict(learning_rate=0.05, momentum=0.9)),
    "sgd_nesterov_clipvalue": ("SGD", dict(learning_rate=0.05, momentum=0.9, nesterov=True,
                                           clipvalue=0.5)),
    "rmsprop": ("RMSprop", dict(learning_rate=0.01)),
    "rmsprop_momentum": ("RMSprop", dict(learning_rate=0.01, momentum=0.8)),
    "rmsprop_centered": ("RMSprop", dict(learning_rate=0.01, centered=True)),
    "rmsprop_centered_momentum_wd": ("RMSprop", dict(learning_rate=0.01, rho=0.8,
                                                     momentum=0.5, centered=True,
                                                     weight_decay=0.05)),
    "adam": ("Adam", dict(learning_rate=0.01)),
    "adam_amsgrad": ("Adam", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99,
                                  amsgrad=True)),
    "adamw": ("AdamW", dict(learning_rate=0.01)),
    "adamw_amsgrad_clipnorm": ("AdamW", dict(learning_rate=0.01, weight_decay=0.1,
                                             amsgrad=True, clipnorm=1.0)),
    "adagrad": ("Adagrad", dict(learning_rate=0.05)),
    "adagrad_clipvalue_wd": ("Adagrad", dict(learning_rate=0.05, weight_decay=0.05,
                                             clipvalue=0.7)),
    "global_clipnorm": ("RMSprop", dict(learning_rate=0.01, global_clipnorm=2.0)),
    "all_clipping": ("Adam", dict(learning_rate=0.01, clipnorm=1.5, clipvalue=0.4,
                                  global_clipnorm=1.0)),
}

# around the threshold and the pieces' edges (the offset shifts p off its cache line, so
# a head of up to 15 values runs before the pieces)
SIZES = [PM - 1, PM, PM + 1, PM + 17, 5 * CHUNK - 1, 5 * CHUNK, 5 * CHUNK + 1,
         7 * CHUNK + 33]
OFFSETS = [0, 3]


def make_opt(case):
    name, kwargs = CASES[case]
    return getattr(fd.optimizers, name)(**kwargs)


def isas():
    """The instruction sets of the update loops this CPU runs."""
    best = updates.set_isa(None)
    found = []
    try:
        for isa in ("base", "avx2", "avx512"):
            if updates.set_isa(isa) == isa:
                found.append(isa)
    finally:
        updates.set_isa(best)
    return found


class threads:
    """with threads(k): updates.set_num_threads(k), restored afterwards"""

    def __init__(self, k):
        self.k = k

    def __enter__(self):
        self.old = updates.get_num_threads()
        updates.set_num_threads(self.k)

    def __exit__(self, *exc):
        updates.set_num_threads(self.old)


def flat_run(case, dtype, n, offset, nthreads, steps=3):
    """`steps` flat-buffer updates (the model's path, optimizer_step) of n values starting
    `offset` values into their arrays; returns (p, state, pooled jobs run)."""
    rng = np.random.default_rng(n + 7 * offset + len(case))
    opt = make_opt(case)
    rule, h, clipnorm, clipvalue, gcn, wd = opt._config()
    base = rng.standard_normal(n + offset).astype(dtype)
    p = base[offset:]
    # three variables: a small one, a large one, a small one (clipnorm is per variable)
    seg = np.array([0, 1000, n - 5, n], dtype=np.intp)
    state = [np.empty(n + offset, dtype)[offset:] for _ in opt._model_state(n, dtype)]
    for s, s0 in zip(state, opt._model_state(n, dtype)):
        s[...] = s0
    lrs = opt._learning_rates(1, steps)
    jobs = updates.pool_info()["jobs"]
    with threads(nthreads):
        for t in range(1, steps + 1):
            gbase = (rng.uniform(0.05, 2.0)
                     * rng.standard_normal(n + offset)).astype(dtype)
            updates.optimizer_step_checked(p, gbase[offset:], state, rule, h, lrs[t - 1],
                                           t, clipnorm, clipvalue, gcn, wd, seg)
    return p, state, updates.pool_info()["jobs"] - jobs


@needs_pool
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_split_updates_are_bitwise_the_serial_ones(case, dtype):
    for n in SIZES:
        for offset in OFFSETS:
            p1, s1, jobs1 = flat_run(case, dtype, n, offset, 1)
            assert jobs1 == 0
            for k in (2, 3):
                pk, sk, jobs = flat_run(case, dtype, n, offset, k)
                assert pk.dtype == dtype and all(s.dtype == dtype for s in sk)
                np.testing.assert_array_equal(pk, p1, err_msg=f"n={n} offset={offset} k={k}")
                for a, b in zip(sk, s1):
                    np.testing.assert_array_equal(a, b)
                # the large variable went through the pool unless it is below the
                # threshold (after the head) or plain SGD went to BLAS's axpy
                head_max = 64 // np.dtype(dtype).itemsize
                if case == "sgd_plain":
                    assert jobs == 0
                elif n - 1005 >= PM + head_max:
                    assert jobs == 3, (n, offset, k)
                elif n < PM:
                    assert jobs == 0


@needs_pool
@pytest.mark.parametrize("isa", isas())
@pytest.mark.parametrize("case", ["adam", "adam_amsgrad", "rmsprop_centered_momentum_wd",
                                  "sgd_nesterov_clipvalue", "adagrad_clipvalue_wd",
                                  "all_clipping"])
def test_split_is_bitwise_serial_on_every_instruction_set(isa, case):
    best = updates.set_isa(None)
    try:
        assert updates.set_isa(isa) == isa
        for dtype in (np.float32, np.float64):
            for n in (PM + 2000, 5 * CHUNK + 7):
                for offset in OFFSETS:
                    p1, s1, _ = flat_run(case, dtype, n, offset, 1)
                    p2, s2, jobs = flat_run(case, dtype, n, offset, 2)
                    assert jobs > 0
                    np.testing.assert_array_equal(p2, p1)
                    for a, b in zip(s2, s1):
                        np.testing.assert_array_equal(a, b)
    finally:
        updates.set_isa(best)


@needs_pool
def test_split_adam_follows_the_formula():
    """Independent of the serial path: one float64 Adam step from zero state,
    p − α·m/(√v + ε) with m = (1−β₁)g, v = (1−β₂)g², α = lr·√(1−β₂)/(1−β₁)."""
    n = 3 * PM + 5
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(n)
    g = rng.standard_normal(n)
    opt = fd.optimizers.Adam(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    p = p0.copy()
    before = updates.pool_info()["jobs"]
    with threads(2):
        opt.apply([g], [p])
    assert updates.pool_info()["jobs"] == before + 1
    m, v = 0.1 * g, 0.001 * g * g
    alpha = 0.01 * math.sqrt(1 - 0.999) / (1 - 0.9)
    np.testing.assert_allclose(p, p0 - alpha * m / (np.sqrt(v) + 1e-7), rtol=1e-12,
                               atol=1e-15)


@needs_pool
def test_below_the_threshold_and_with_one_thread_nothing_is_pooled():
    rng = np.random.default_rng(1)
    opt = fd.optimizers.Adam()
    small = rng.standard_normal(PM - 1).astype(np.float32)
    large = rng.standard_normal(4 * PM).astype(np.float32)
    before = updates.pool_info()["jobs"]
    with threads(2):
        opt.apply([small.copy()], [small])
    assert updates.pool_info()["jobs"] == before
    opt = fd.optimizers.Adam()
    with threads(1):
        opt.apply([large.copy()], [large])
    assert updates.pool_info()["jobs"] == before
    with threads(2):
        opt.apply([large.copy()], [large])
    assert updates.pool_info()["jobs"] == before + 1
    assert updates.pool_info()["workers"] >= 1


def test_set_num_threads_checks_its_argument():
    old = updates.get_num_threads()
    try:
        for bad in (0, -1):
            with pytest.raises(ValueError, match="at least 1"):
                updates.set_num_threads(bad)
        for bad in (1.5, "2", True, None):
            with pytest.raises(TypeError, match="integer"):
                updates.set_num_threads(bad)
        assert updates.get_num_threads() == old
        updates.set_num_threads(np.int64(1))
        assert updates.get_num_threads() == 1
        updates.set_num_threads(1000)
        assert updates.get_num_threads() == (64 if updates.THREADS_SUPPORTED else 1)
    finally:
        updates.set_num_threads(old)


def _run_python(code, **env_vars):
    """Run code in a fresh interpreter (this one's sys.path; OPENBLAS_NUM_THREADS and
    OMP_NUM_THREADS unset unless given); returns its output's words."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    env.update(env_vars, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_every_core_is_the_default_and_nothing_starts_before_a_large_update():
    code = ("from fastdense._core import updates as u; import numpy as np, fastdense as fd\n"
            "print(u.get_num_threads(), u.default_num_threads(), u.pool_info()['workers'])\n"
            "p = np.zeros(u.PARALLEL_MIN_VALUES - 1, np.float32)\n"
            "fd.optimizers.Adam().apply([p + 1], [p])\n"
            "print(u.pool_info()['workers'])\n")
    default, reported, workers0, workers_small = map(int, _run_python(code))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    expect = min(cores, 64) if updates.THREADS_SUPPORTED else 1
    assert default == reported == expect
    assert workers0 == workers_small == 0       # created lazily, by the first large update


@needs_pool
@pytest.mark.parametrize("env, cap", [({"OMP_NUM_THREADS": "1"}, 1),
                                      ({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "8"}, 1),
                                      ({"OMP_NUM_THREADS": "2"}, 2),
                                      ({"OMP_NUM_THREADS": "junk"}, 64)])
def test_the_default_follows_the_blas_thread_variables(env, cap):
    """An MPI rank started with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 updates serially."""
    code = "from fastdense._core import updates as u; print(u.get_num_threads())"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    assert _run_python(code, **env) == [str(min(cores, cap, 64))]


@needs_pool
def test_set_num_threads_1_keeps_a_fresh_process_serial():
    code = ("from fastdense._core import updates as u; import numpy as np, fastdense as fd\n"
            "fd.set_num_threads(1)\n"
            "p = np.zeros(4 * u.PARALLEL_MIN_VALUES, np.float32)\n"
            "opt = fd.optimizers.RMSprop(momentum=0.5)\n"
            "for _ in range(3): opt.apply([p + 1], [p])\n"
            "print(u.get_num_threads(), u.pool_info()['workers'], u.pool_info()['jobs'])\n")
    assert _run_python(code) == ["1", "0", "0"]


def test_fastdense_set_num_threads_sets_the_update_threads_too():
    start_fd, start_upd = fd.get_num_threads(), updates.get_num_threads()
    try:
        fd.set_num_threads(1)
        assert updates.get_num_threads() == 1 and fd.get_num_threads() == 1
        fd.set_num_threads(2)
        assert updates.get_num_threads() == (2 if updates.THREADS_SUPPORTED else 1)
        with pytest.raises(ValueError):
            fd.set_num_threads(0)
        assert updates.get_num_threads() == (2 if updates.THREADS_SUPPORTED else 1)
    finally:
        fd.set_num_threads(start_fd)
        updates.set_num_threads(start_upd)


def _wide(seed):
    return compiled(seed, (784, 512, 512, 10))    # 669,706 values


@needs_pool
def test_two_large_models_train_at_once_as_one_after_the_other(rng):
    """Both fits' updates want the pool: one gets it, the other runs serially, and each
    model ends bitwise where it ends trained alone."""
    x = rng.random((1024, 784), dtype=np.float32)
    y = rng.random((1024, 10), dtype=np.float32)
    with threads(2):
        parallel = [_wide(1), _wide(2)]
        run_in_threads(*(lambda m=m: m.fit(x, y, epochs=2, batch_size=128, verbose=0)
                      for m in parallel))
        for seed, trained in zip((1, 2), parallel):
            alone = _wide(seed)
            alone.fit(x, y, epochs=2, batch_size=128, verbose=0)
            for a, b in zip(trained.get_weights(), alone.get_weights()):
                np.testing.assert_array_equal(a, b)


@needs_pool
def test_many_threads_applying_large_updates_at_once_match_serial():
    n = PM * 2 + 3
    rng = np.random.default_rng(5)
    starts = [rng.standard_normal(n).astype(np.float32) for _ in range(4)]
    grads = [rng.standard_normal(n).astype(np.float32) for _ in range(4)]

    def train(i, out):
        opt = fd.optimizers.Adam(learning_rate=1e-3, amsgrad=bool(i % 2))
        p = starts[i].copy()
        for _ in range(15):
            opt.apply([grads[i]], [p])
        out[i] = p

    with threads(1):
        serial = {}
        for i in range(4):
            train(i, serial)
    with threads(2):
        concurrent = {}
        run_in_threads(*(lambda i=i: train(i, concurrent) for i in range(4)))
    for i in range(4):
        np.testing.assert_array_equal(concurrent[i], serial[i])


@needs_pool
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_starts_its_own_workers():
    n = 3 * PM
    rng = np.random.default_rng(9)
    p0 = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    expect = p0.copy()
    with threads(1):
        fd.optimizers.Adam().apply([g], [expect])
    with threads(2):
        warm = p0.copy()
        fd.optimizers.Adam().apply([g], [warm])       # the parent's workers exist now
        assert updates.pool_info()["workers"] >= 1
        pid = os.fork()
        if pid == 0:                                   # child: a pooled update, then exit
            code = 1
            try:
                before = updates.pool_info()["jobs"]
                p = p0.copy()
                fd.optimizers.Adam().apply([g], [p])
                if updates.pool_info()["jobs"] == before + 1 and np.array_equal(p, expect):
                    code = 0
            finally:
                os._exit(code)
        deadline = time.monotonic() + 60
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("the forked child hung in its update")
            time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0
