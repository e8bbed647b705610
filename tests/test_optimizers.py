"""Optimizers: every rule and option follows the NumPy reference; apply(), state, config,
validation; training with each optimizer learns."""
import math

import zlib

import numpy as np
import pytest

import fastdense as fd
from fastdense import reference as ref
from fastdense._core import updates
from fastdense.optimizers import schedules

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
SHAPES = [(5, 4), (4,), (4, 1), (1,)]          # a small network's W0, b0, W1, b1

CASES = {
    "sgd": ("SGD", dict(learning_rate=0.05)),
    "sgd_momentum": ("SGD", dict(learning_rate=0.05, momentum=0.9)),
    "sgd_nesterov": ("SGD", dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
    "rmsprop": ("RMSprop", dict(learning_rate=0.01)),
    "rmsprop_momentum": ("RMSprop", dict(learning_rate=0.01, momentum=0.8)),
    "rmsprop_centered": ("RMSprop", dict(learning_rate=0.01, centered=True)),
    "rmsprop_centered_momentum": ("RMSprop", dict(learning_rate=0.01, rho=0.8,
                                                  momentum=0.5, centered=True)),
    "adam": ("Adam", dict(learning_rate=0.01)),
    "adam_amsgrad": ("Adam", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99,
                                  amsgrad=True)),
    "adamw": ("AdamW", dict(learning_rate=0.01)),
    "adamw_amsgrad": ("AdamW", dict(learning_rate=0.01, weight_decay=0.1, amsgrad=True)),
    "adagrad": ("Adagrad", dict(learning_rate=0.05)),
    "adagrad_zero_start": ("Adagrad", dict(learning_rate=0.05,
                                           initial_accumulator_value=0.0, epsilon=1e-3)),
    "clipnorm": ("Adam", dict(learning_rate=0.01, clipnorm=1.0)),
    "clipvalue": ("SGD", dict(learning_rate=0.05, momentum=0.5, clipvalue=0.5)),
    "global_clipnorm": ("RMSprop", dict(learning_rate=0.01, global_clipnorm=2.0)),
    "all_clipping": ("Adam", dict(learning_rate=0.01, clipnorm=1.5, clipvalue=0.4,
                                  global_clipnorm=1.0)),
    "clipnorm_global": ("SGD", dict(learning_rate=0.05, clipnorm=1.0, global_clipnorm=1.5)),
    "weight_decay_sgd": ("SGD", dict(learning_rate=0.05, weight_decay=0.1)),
    "weight_decay_rmsprop": ("RMSprop", dict(learning_rate=0.01, weight_decay=0.05,
                                             centered=True)),
    "weight_decay_adagrad": ("Adagrad", dict(learning_rate=0.05, weight_decay=0.05,
                                             clipvalue=0.7)),
    "exponential_decay": ("SGD", dict(
        learning_rate=schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5),
        momentum=0.9)),
    "exponential_staircase": ("Adam", dict(
        learning_rate=schedules.ExponentialDecay(0.01, 7, 0.8, staircase=True))),
    "cosine_decay": ("RMSprop", dict(
        learning_rate=schedules.CosineDecay(0.01, decay_steps=60, alpha=0.1),
        momentum=0.5)),
    "cosine_warmup": ("AdamW", dict(
        learning_rate=schedules.CosineDecay(0.0, decay_steps=50, warmup_target=0.02,
                                            warmup_steps=20))),
    "callable_schedule": ("Adagrad", dict(learning_rate=lambda step: 0.1 / (1 + step))),
}


def pair(case):
    name, kwargs = CASES[case]
    return getattr(fd.optimizers, name)(**kwargs), getattr(ref, name)(**kwargs)


def gradients(rng, shapes, dtype):
    """Random gradients whose size varies so clipping is sometimes active, sometimes not."""
    scale = rng.uniform(0.05, 2.0)
    return [(scale * rng.standard_normal(s)).astype(dtype) for s in shapes]


def assert_close(actual, expected, dtype):
    """Agreement at the dtype's relative tolerance, measured against the parameters'
    overall scale: an entry that cancels to near zero after 100 updates (a one-value bias,
    say) cannot be held to a relative bound of its own in float32."""
    rtol = RTOL[dtype]
    scale = max(float(np.abs(e).max()) for e in expected if e.size)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale)


def seed_of(case):
    """A per-case seed that is the same in every run (str hashes are salted per process)."""
    return zlib.crc32(case.encode())


# ---------------------------------------------------------------- agreement with the reference

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_apply_follows_the_reference_for_100_updates(case, dtype):
    rng = np.random.default_rng(seed_of(case))
    opt, expect = pair(case)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    mirror = [p.copy() for p in params]
    for _ in range(100):
        g = gradients(rng, SHAPES, dtype)
        opt.apply(g, params)
        expect.apply(g, mirror)
    assert opt.iterations == 100
    assert all(p.dtype == dtype for p in params)
    assert_close(params, mirror, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_flat_buffer_step_follows_the_reference_per_variable(case, dtype):
    """The model's path: one optimizer_step over a flat buffer whose segments are the
    variables, through _config / _learning_rates / _model_state."""
    rng = np.random.default_rng(7 + seed_of(case))
    opt, expect = pair(case)
    sizes = [math.prod(s) for s in SHAPES]
    seg = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
    flat = rng.standard_normal(seg[-1]).astype(dtype)
    mirror = [flat[a:b].reshape(s).copy() for a, b, s in zip(seg[:-1], seg[1:], SHAPES)]
    rule, h, clipnorm, clipvalue, gcn, wd = opt._config()
    state = opt._model_state(flat.size, dtype)
    lrs = opt._learning_rates(1, 100)
    for t in range(1, 101):
        g = gradients(rng, SHAPES, dtype)
        gflat = np.concatenate([x.ravel() for x in g])
        updates.optimizer_step_checked(flat, gflat, state, rule, h, lrs[t - 1], t,
                                       clipnorm, clipvalue, gcn, wd, seg)
        expect.apply(g, mirror)
    got = [flat[a:b].reshape(s) for a, b, s in zip(seg[:-1], seg[1:], SHAPES)]
    assert_close(got, mirror, dtype)


@pytest.mark.parametrize("case", ["adam", "rmsprop_centered_momentum", "all_clipping",
                                  "sgd_nesterov", "weight_decay_adagrad"])
def test_large_buffers_split_over_threads_give_identical_results(case):
    n = updates.PARALLEL_MIN_VALUES * 2 + 13
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(n).astype(np.float32)
    grads = [(rng.standard_normal(n) * 0.01).astype(np.float32) for _ in range(3)]
    results = []
    default = updates.get_num_threads()
    try:
        for threads in (1, 2):
            updates.set_num_threads(threads)
            opt, expect = pair(case)
            p = p0.copy()
            mirror = p0.copy()
            for g in grads:
                opt.apply(g, p)
                expect.apply(g, mirror)
            assert_close([p], [mirror], np.float32)
            results.append(p)
    finally:
        updates.set_num_threads(default)
    np.testing.assert_array_equal(results[0], results[1])


# ---------------------------------------------------------------- instruction sets

ISAS = ("base", "avx2", "avx512")


def _run_on_isa(isa, case, dtype, flat0, grads, seg):
    """Twenty flat-buffer updates of `case` with the update loops forced to `isa`;
    returns (the instruction set in force, the parameters, the state)."""
    best = updates.set_isa(None)
    try:
        got = updates.set_isa(isa)
        opt, _ = pair(case)
        rule, h, clipnorm, clipvalue, gcn, wd = opt._config()
        flat = flat0.copy()
        state = opt._model_state(flat.size, dtype)
        lrs = opt._learning_rates(1, len(grads))
        for t, g in enumerate(grads, start=1):
            updates.optimizer_step_checked(flat, g, state, rule, h, lrs[t - 1], t,
                                           clipnorm, clipvalue, gcn, wd, seg)
    finally:
        updates.set_isa(best)
    return got, flat, state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_dispatched_instruction_sets_agree_with_the_baseline(case, dtype):
    """Every rule and option gives the baseline x86-64 results on each instruction set the
    CPU has, up to fused multiply-add rounding (segment sizes leave vector tails)."""
    rng = np.random.default_rng(11 + seed_of(case))
    seg = np.array([0, 37, 1000, 1003, 2051], dtype=np.intp)
    flat0 = rng.standard_normal(seg[-1]).astype(dtype)
    grads = [(rng.uniform(0.05, 2.0) * rng.standard_normal(seg[-1])).astype(dtype)
             for _ in range(20)]
    got, base, base_state = _run_on_isa("base", case, dtype, flat0, grads, seg)
    assert got == "base"
    ran = set()
    for isa in ISAS[1:]:
        got, flat, state = _run_on_isa(isa, case, dtype, flat0, grads, seg)
        ran.add(got)
        assert_close([flat, *state], [base, *base_state], dtype)
    assert updates.get_isa() in ran | {"base"}


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", ["sgd", "sgd_nesterov", "rmsprop_centered_momentum",
                                  "adam_amsgrad", "adagrad", "weight_decay_adagrad"])
def test_nan_gradients_propagate_on_every_instruction_set(case, isa):
    g = np.full(100, 0.5, np.float32)
    g[[3, 64, 99]] = np.nan                       # vector body and tail
    flat0 = np.zeros(100, np.float32)
    _, p, _ = _run_on_isa(isa, case, np.float32, flat0, [g], None)
    assert np.isnan(p[[3, 64, 99]]).all()
    assert np.isfinite(np.delete(p, [3, 64, 99])).all()


def test_set_isa_refuses_unknown_names_and_reports_the_choice():
    with pytest.raises(ValueError, match="sse9"):
        updates.set_isa("sse9")
    best = updates.set_isa(None)
    assert updates.get_isa() == best and best in ISAS


def test_gradients_are_never_modified():
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = [10 * rng.standard_normal(s) for s in SHAPES]
    before = [g.copy() for g in grads]
    fd.optimizers.Adam(clipnorm=0.1, clipvalue=0.01, global_clipnorm=0.1,
                       weight_decay=0.1).apply(grads, params)
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)


# ---------------------------------------------------------------- the rules, by hand

def test_adam_first_update_moves_each_weight_by_the_learning_rate():
    # t = 1: m = 0.1·g, v = 0.001·g², α = lr·√0.001/0.1, so the step is lr·g/(|g| + ε')
    p = np.zeros(3)
    fd.optimizers.Adam(learning_rate=0.01, epsilon=1e-12).apply(np.array([2.0, -3.0, 0.5]), p)
    np.testing.assert_allclose(p, [-0.01, 0.01, -0.01], rtol=1e-9)


def test_sgd_momentum_and_nesterov_by_hand():
    g = np.array([1.0])
    p = np.zeros(1)
    opt = fd.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    opt.apply(g, p)                     # m = −0.1, p = −0.1
    opt.apply(g, p)                     # m = −0.19, p = −0.29
    np.testing.assert_allclose(p, [-0.29])
    p = np.zeros(1)
    opt = fd.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    opt.apply(g, p)                     # m = −0.1, p = 0.9·(−0.1) − 0.1 = −0.19
    np.testing.assert_allclose(p, [-0.19])


def test_adagrad_accumulator_starts_at_its_initial_value():
    opt = fd.optimizers.Adagrad(learning_rate=1.0, initial_accumulator_value=3.0)
    state = opt._model_state(4, np.float64)
    np.testing.assert_array_equal(state[0], np.full(4, 3.0))
    p = np.zeros(1)
    opt2 = fd.optimizers.Adagrad(learning_rate=1.0, initial_accumulator_value=3.0)
    opt2.apply(np.array([1.0]), p)      # acc = 4, p = −1/√(4 + 1e-7)
    np.testing.assert_allclose(p, [-1 / math.sqrt(4 + 1e-7)], rtol=1e-15)


def test_weight_decay_is_decoupled_and_comes_first():
    p = np.array([2.0])
    fd.optimizers.SGD(learning_rate=0.1, weight_decay=0.5).apply(np.array([1.0]), p)
    np.testing.assert_allclose(p, [2.0 - 2.0 * 0.5 * 0.1 - 0.1 * 1.0])


def test_clipnorm_scales_each_variable_separately():
    p = [np.zeros(2), np.zeros(1)]
    g = [np.array([3.0, 4.0]), np.array([0.5])]      # norms 5 and 0.5
    fd.optimizers.SGD(learning_rate=1.0, clipnorm=1.0).apply(g, p)
    np.testing.assert_allclose(p[0], [-0.6, -0.8])
    np.testing.assert_allclose(p[1], [-0.5])


def test_global_clipnorm_scales_all_gradients_together_after_clipvalue():
    p = [np.zeros(2), np.zeros(1)]
    g = [np.array([3.0, -0.5]), np.array([4.0])]     # clipvalue 2 → [2, −0.5], [2]; ‖·‖ = 2.87
    fd.optimizers.SGD(learning_rate=1.0, clipvalue=2.0, global_clipnorm=1.0).apply(g, p)
    norm = math.sqrt(4 + 0.25 + 4)
    np.testing.assert_allclose(p[0], [-2 / norm, 0.5 / norm])
    np.testing.assert_allclose(p[1], [-2 / norm])


def test_nan_gradients_propagate_rather_than_vanish():
    p = np.zeros(2)
    fd.optimizers.Adam(clipvalue=1.0).apply(np.array([np.nan, 1.0]), p)
    assert np.isnan(p[0]) and np.isfinite(p[1])


# ---------------------------------------------------------------- schedules

def test_exponential_decay_follows_keras_formula():
    s = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert s(0) == 0.1
    assert s(5) == pytest.approx(0.1 * 0.5 ** 0.5, rel=1e-15)
    st = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert [st(9), st(10), st(25)] == [0.1, 0.05, 0.025]


def test_cosine_decay_follows_keras_formula_with_and_without_warmup():
    s = schedules.CosineDecay(1.0, decay_steps=100, alpha=0.2)
    assert s(0) == 1.0
    assert s(50) == pytest.approx(0.2 + 0.8 * 0.5, rel=1e-15)
    assert s(100) == pytest.approx(0.2) and s(1000) == pytest.approx(0.2)
    w = schedules.CosineDecay(0.0, decay_steps=100, warmup_target=1.0, warmup_steps=10)
    assert w(0) == 0.0 and w(5) == pytest.approx(0.5)
    assert w(10) == pytest.approx(1.0)
    assert w(60) == pytest.approx(0.5)
    assert w(500) == pytest.approx(0.0, abs=1e-15)


def test_schedule_sees_the_count_of_previous_updates():
    seen = []

    def schedule(step):
        seen.append(step)
        return 0.1

    opt = fd.optimizers.SGD(learning_rate=schedule)
    p = np.zeros(1)
    opt.apply(np.ones(1), p)
    opt.apply(np.ones(1), p)
    assert seen == [0, 1]
    np.testing.assert_array_equal(opt._learning_rates(3, 2), [0.1, 0.1])
    assert seen[-2:] == [2, 3]


def test_vector_and_scalar_schedule_values_agree_exactly():
    s = schedules.CosineDecay(0.01, decay_steps=37, alpha=0.1, warmup_target=0.05,
                              warmup_steps=11)
    opt = fd.optimizers.Adam(learning_rate=s)
    np.testing.assert_array_equal(opt._learning_rates(1, 60), [s(k) for k in range(60)])


def test_a_schedule_giving_a_bad_rate_is_refused_before_any_change():
    opt = fd.optimizers.SGD(learning_rate=lambda step: float("nan"))
    p = np.ones(2)
    with pytest.raises(ValueError, match="learning-rate schedule"):
        opt.apply(np.ones(2), p)
    np.testing.assert_array_equal(p, np.ones(2))
    assert opt.iterations == 0


# ---------------------------------------------------------------- apply(): arrays and checks

def test_apply_on_a_single_array():
    rng = np.random.default_rng(1)
    p = rng.standard_normal((3, 2)).astype(np.float32)
    mirror = p.copy()
    opt, expect = pair("adam")
    for _ in range(5):
        g = rng.standard_normal((3, 2)).astype(np.float32)
        opt.apply(g, p)
        expect.apply(g, mirror)
    assert_close([p], [mirror], np.float32)
    assert opt.iterations == 5 and len(opt.variables) == 2


def test_apply_on_a_list_keeps_state_per_array():
    rng = np.random.default_rng(2)
    params = [rng.standard_normal(s) for s in SHAPES]
    mirror = [p.copy() for p in params]
    opt, expect = pair("rmsprop_centered_momentum")
    for _ in range(5):
        g = gradients(rng, SHAPES, np.float64)
        opt.apply(g, params)
        expect.apply(g, mirror)
    assert_close(params, mirror, np.float64)
    assert [v.shape for v in opt.variables] == [s for s in SHAPES for _ in range(3)]


@pytest.mark.parametrize("layout", ["strided", "fortran", "transposed"])
def test_non_contiguous_parameters_update_correctly(layout):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((6, 8))
    p = {"strided": base[:, ::2], "fortran": np.asfortranarray(base),
         "transposed": base.T}[layout]
    mirror = p.copy()
    opt, expect = pair("sgd_momentum")
    for _ in range(3):
        g = rng.standard_normal(p.shape)
        opt.apply(g, p)
        expect.apply(g, mirror)
    assert_close([p], [mirror], np.float64)
    if layout == "strided":
        np.testing.assert_array_equal(base[:, ::2], p)


def _bad_calls():
    f32, f64 = np.ones(3, np.float32), np.ones(3)
    ro = np.ones(3)
    ro.flags.writeable = False
    shared = np.ones(6)
    return {
        "int params": (TypeError, np.ones(3), np.ones(3, dtype=np.int64)),
        "complex params": (TypeError, np.ones(3, complex), np.ones(3, complex)),
        "dtype mismatch": (TypeError, f32, f64.copy()),
        "shape mismatch": (ValueError, np.ones(4), f64.copy()),
        "read-only": (ValueError, np.ones(3), ro),
        "list params": (TypeError, [1.0, 2.0], [1.0, 2.0]),
        "count mismatch": (ValueError, [np.ones(3)], [np.ones(3), np.ones(2)]),
        "grads overlap params": (ValueError, [shared[:3]], [shared[2:5]]),
        "params overlap each other": (ValueError, [np.ones(3), np.ones(3)],
                                      [shared[:3], shared[1:4]]),
    }


@pytest.mark.parametrize("case", sorted(_bad_calls()))
def test_bad_apply_calls_are_refused_and_change_nothing(case):
    exc, grads, params = _bad_calls()[case]
    snapshot = [np.array(p, copy=True) for p in (params if isinstance(params, list)
                                                   else [params])]
    opt = fd.optimizers.Adam()
    with pytest.raises(exc):
        opt.apply(grads, params)
    assert opt.iterations == 0 and opt.variables == []
    for p, s in zip(params if isinstance(params, list) else [params], snapshot):
        np.testing.assert_array_equal(p, s)


def test_a_later_call_with_other_shapes_is_refused_and_changes_nothing():
    opt = fd.optimizers.Adam()
    p = [np.ones(3), np.ones(2)]
    opt.apply([np.ones(3), np.ones(2)], p)
    before = [x.copy() for x in p] + [s.copy() for s in opt.variables]
    for grads, params, match in [
            ([np.ones(3), np.ones(4)], [p[0], np.ones(4)], "position 1"),
            ([np.ones(3), np.ones(2, np.float32)], [p[0], np.ones(2, np.float32)],
             "position 1"),
            ([np.ones(3)], [p[0]], "updates 2 arrays")]:
        with pytest.raises(ValueError, match=match):
            opt.apply(grads, params)
    after = [x for x in p] + opt.variables
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)
    assert opt.iterations == 1


# ---------------------------------------------------------------- state and config

@pytest.mark.parametrize("case", ["sgd", "sgd_momentum", "rmsprop_centered_momentum",
                                  "adam_amsgrad", "adagrad", "cosine_warmup"])
def test_state_save_and_restore_resumes_the_identical_trajectory(case):
    rng = np.random.default_rng(4)
    opt, _ = pair(case)
    params = [rng.standard_normal(s) for s in SHAPES]
    for _ in range(10):
        opt.apply(gradients(rng, SHAPES, np.float64), params)
    saved_state, saved_params = opt.get_state(), [p.copy() for p in params]
    later = [gradients(rng, SHAPES, np.float64) for _ in range(10)]
    for g in later:
        opt.apply(g, params)
    first_run = [p.copy() for p in params]

    fresh = type(opt).from_config(opt.get_config())
    fresh.set_state(saved_state)
    assert fresh.iterations == 10
    for g in later:
        fresh.apply(g, saved_params)
    for a, b in zip(saved_params, first_run):
        np.testing.assert_array_equal(a, b)


def test_model_state_save_and_restore_resumes_the_identical_fit():
    rng = np.random.default_rng(5)
    x, y = rng.random((64, 10)).astype(np.float32), rng.random((64, 1)).astype(np.float32)
    model = _classic(fd.optimizers.Adam(learning_rate=0.01))
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    weights, state = model.get_weights(), model.optimizer.get_state()
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)

    again = _classic(fd.optimizers.Adam(learning_rate=0.01))
    again.set_weights(weights)
    again.optimizer.set_state(state)
    again.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", sorted(CASES))
def test_get_config_round_trips_the_hyper_parameters(case):
    opt, _ = pair(case)
    clone = type(opt).from_config(opt.get_config())
    assert clone.get_config() == opt.get_config()
    assert clone._config() == opt._config()


def test_model_state_is_kept_and_a_mismatch_is_refused():
    opt = fd.optimizers.Adam()
    first = opt._model_state(10, np.float32)
    assert opt._model_state(10, np.float32) is first
    with pytest.raises(ValueError, match="already holds state"):
        opt._model_state(11, np.float32)
    with pytest.raises(ValueError, match="already holds state"):
        opt._model_state(10, np.float64)


def test_get_by_name_covers_every_optimizer():
    for name, cls in [("sgd", fd.optimizers.SGD), ("RMSprop", fd.optimizers.RMSprop),
                      ("adam", fd.optimizers.Adam), ("adamw", fd.optimizers.AdamW),
                      ("adagrad", fd.optimizers.Adagrad)]:
        assert type(fd.optimizers.get(name)) is cls
    with pytest.raises(ValueError, match="unknown optimizer"):
        fd.optimizers.get("lion")


def test_keras_defaults():
    assert fd.optimizers.SGD().get_config()["learning_rate"] == 0.01
    a = fd.optimizers.Adam()
    assert (a.learning_rate, a.beta_1, a.beta_2, a.epsilon, a.amsgrad) == \
        (0.001, 0.9, 0.999, 1e-7, False)
    assert fd.optimizers.AdamW().weight_decay == 0.004
    r = fd.optimizers.RMSprop()
    assert (r.learning_rate, r.rho, r.momentum, r.epsilon, r.centered) == \
        (0.001, 0.9, 0.0, 1e-7, False)
    assert fd.optimizers.Adagrad().initial_accumulator_value == 0.1


# ---------------------------------------------------------------- validation

BAD = [
    (fd.optimizers.SGD, dict(learning_rate=0), ValueError),
    (fd.optimizers.SGD, dict(learning_rate=float("inf")), ValueError),
    (fd.optimizers.SGD, dict(learning_rate="0.1"), TypeError),
    (fd.optimizers.SGD, dict(momentum=-0.1), ValueError),
    (fd.optimizers.SGD, dict(momentum=1.5), ValueError),
    (fd.optimizers.SGD, dict(nesterov=1), TypeError),
    (fd.optimizers.RMSprop, dict(rho=1.0), ValueError),
    (fd.optimizers.RMSprop, dict(epsilon=0), ValueError),
    (fd.optimizers.RMSprop, dict(centered="yes"), TypeError),
    (fd.optimizers.Adam, dict(beta_1=1.0), ValueError),
    (fd.optimizers.Adam, dict(beta_2=-0.5), ValueError),
    (fd.optimizers.Adam, dict(beta_1=float("nan")), ValueError),
    (fd.optimizers.Adam, dict(epsilon=-1e-7), ValueError),
    (fd.optimizers.AdamW, dict(weight_decay=-0.1), ValueError),
    (fd.optimizers.AdamW, dict(weight_decay=None), TypeError),
    (fd.optimizers.Adagrad, dict(initial_accumulator_value=-1), ValueError),
    (fd.optimizers.Adam, dict(clipnorm=0), ValueError),
    (fd.optimizers.Adam, dict(clipvalue=-1), ValueError),
    (fd.optimizers.Adam, dict(global_clipnorm=float("nan")), ValueError),
    (fd.optimizers.Adam, dict(weight_decay=float("inf")), ValueError),
    (fd.optimizers.Adam, dict(bogus=1), TypeError),
    (schedules.ExponentialDecay, dict(initial_learning_rate=0.1, decay_steps=0,
                                      decay_rate=0.9), ValueError),
    (schedules.CosineDecay, dict(initial_learning_rate=0.1, decay_steps=10, alpha=2),
     ValueError),
]


@pytest.mark.parametrize("cls, kwargs, exc", BAD,
                         ids=[f"{c.__name__}-{sorted(k)[0]}" for c, k, _ in BAD])
def test_bad_hyper_parameters_are_refused_at_construction(cls, kwargs, exc):
    with pytest.raises(exc):
        cls(**kwargs)


def test_kernel_wrapper_refuses_bad_state_and_segments():
    p, g = np.zeros(4), np.ones(4)
    adam = updates.RULES["adam"]
    with pytest.raises(ValueError, match="2 state buffers"):
        updates.optimizer_step_checked(p, g, [np.zeros(4)], adam, (0.9, 0.999, 1e-7), 0.1, 1)
    with pytest.raises(ValueError, match="state\\[1\\]"):
        updates.optimizer_step_checked(p, g, [np.zeros(4), np.zeros(3)], adam,
                                       (0.9, 0.999, 1e-7), 0.1, 1)
    with pytest.raises(ValueError, match="seg"):
        updates.optimizer_step_checked(p, g, [], 0, (), 0.1, 1, seg=[0, 3])
    with pytest.raises(ValueError, match="unknown rule"):
        updates.optimizer_step_checked(p, g, [], 99, (), 0.1, 1)
    with pytest.raises(ValueError, match="overlap"):
        updates.optimizer_step_checked(p, p, [], 0, (), 0.1, 1)
    buf = np.zeros(12)
    for state, what in [([buf[:4], buf[2:6]], "state\\[0\\] and state\\[1\\] overlap"),
                        ([np.zeros(4), g], "state\\[1\\] overlaps the gradient")]:
        with pytest.raises(ValueError, match=what):
            updates.optimizer_step_checked(p, g, state, adam, (0.9, 0.999, 1e-7), 0.1, 1)
    with pytest.raises(ValueError, match="overlaps the parameter"):
        updates.optimizer_step_checked(buf[:4], g, [buf[3:7], buf[8:]], adam,
                                       (0.9, 0.999, 1e-7), 0.1, 1)
    np.testing.assert_array_equal(p, np.zeros(4))


# ---------------------------------------------------------------- training with each optimizer

def _classic(optimizer, dtype="float32", seed=0):
    model = fd.Sequential([fd.Dense(10, activation="relu", input_dim=10),
                           fd.Dense(10, activation="relu"), fd.Dense(1)],
                          dtype=dtype, seed=seed)
    model.compile(optimizer=optimizer, loss="mse")
    return model


@pytest.mark.parametrize("optimizer", [
    fd.optimizers.SGD(learning_rate=0.05),
    fd.optimizers.SGD(learning_rate=0.02, momentum=0.9, nesterov=True),
    fd.optimizers.RMSprop(learning_rate=0.003, centered=True, momentum=0.5),
    fd.optimizers.Adam(learning_rate=0.005, amsgrad=True),
    fd.optimizers.AdamW(learning_rate=0.005, clipnorm=1.0),
    fd.optimizers.Adagrad(learning_rate=0.05),
    fd.optimizers.Adam(learning_rate=schedules.CosineDecay(0.01, 300), global_clipnorm=1.0),
], ids=lambda o: repr(o)[:40])
def test_training_the_classic_network_lowers_the_loss(optimizer):
    rng = np.random.default_rng(6)
    x = rng.random((256, 10)).astype(np.float32)
    y = (x @ rng.standard_normal((10, 1)) * 0.3).astype(np.float32)
    model = _classic(optimizer)
    before = model.evaluate(x, y)
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    assert model.evaluate(x, y) < 0.5 * before
    assert optimizer.iterations == 20 * 8


def test_compile_by_name_uses_keras_defaults():
    model = _classic("adamw")
    assert isinstance(model.optimizer, fd.optimizers.AdamW)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_sgd_on_a_large_array_is_p_minus_lr_g(dtype):
    """Plain SGD over at least 65 536 values runs as BLAS's axpy: p − lr·g to the last
    rounding or two; with weight decay it takes the loop again."""
    if dtype == np.float64 and np.finfo(np.longdouble).nmant <= 52:
        pytest.skip("no wider float than double here to compute p − lr·g exactly")
    rng = np.random.default_rng(7)
    p = rng.standard_normal(100_003).astype(dtype)
    g = rng.standard_normal(100_003).astype(dtype)
    wide = np.longdouble       # 64-bit mantissa on x86: p − lr·g nearly exact
    step = dtype(0.05) * g
    exact = p.astype(wide) - wide(dtype(0.05)) * g.astype(wide)
    fd.optimizers.SGD(learning_rate=0.05).apply(g, p)
    # one rounding (a fused multiply-add), or two where the BLAS has no FMA
    bound = np.spacing(np.abs(p)).astype(wide) + np.spacing(np.abs(step)).astype(wide)
    assert (np.abs(p.astype(wide) - exact) <= bound).all()
    q = rng.standard_normal(100_003).astype(dtype)
    q0 = q.copy()
    fd.optimizers.SGD(learning_rate=0.05, weight_decay=0.1).apply(g, q)
    lr = dtype(0.05)
    decayed = q0 - q0 * dtype(0.1) * lr
    np.testing.assert_allclose(q, decayed - lr * g, rtol=10 * np.finfo(dtype).eps,
                               atol=10 * np.finfo(dtype).eps)
