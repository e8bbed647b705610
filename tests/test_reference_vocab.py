"""The NumPy reference's whole vocabulary (activations, losses, metrics, regularisers, sample
and class weights, the validation split), checked against independent expectations: central
finite differences of the reference's own loss (float64), and every formula written again
here in plain NumPy (Keras 3's, with its epsilon and clipping), never values computed by the
code under test."""
import math

import numpy as np
import pytest

from fastdense import losses as L
from fastdense import reference as ref
from fastdense import regularizers as R
from fastdense.activations import Activation
from fastdense.layers import glorot_uniform

HIDDEN = [Activation("linear"), Activation("relu"), Activation("leaky_relu"),
          Activation("leaky_relu", negative_slope=0.05),
          Activation("leaky_relu", negative_slope=1.5), Activation("elu"),
          Activation("elu", alpha=1.7), Activation("elu", alpha=0.5), Activation("tanh"),
          Activation("sigmoid"),
          Activation("softplus"), Activation("gelu"), Activation("gelu", approximate=True)]
OUTPUTS = HIDDEN + [Activation("softmax")]
REGRESSION = [L.MeanSquaredError(), L.MeanAbsoluteError(), L.Huber(), L.Huber(delta=0.3)]


def loss_output_pairs():
    """Every loss with every output activation it accepts."""
    out = [(loss, act) for loss in REGRESSION for act in OUTPUTS]
    out += [(L.BinaryCrossentropy(), Activation("sigmoid")),
            (L.BinaryCrossentropy(from_logits=True), Activation("linear"))]
    for cls in (L.CategoricalCrossentropy, L.SparseCategoricalCrossentropy):
        out += [(cls(), Activation("softmax")), (cls(from_logits=True), Activation("linear"))]
    return out


PAIRS = loss_output_pairs()

# ---------------------------------------------------------------- the formulas, again

_erf = np.vectorize(math.erf, otypes=[float])


def act_formula(spec, z):
    """activations.py's f(z), written out in float64."""
    name, p = spec.name, spec.params
    if name == "linear":
        return z
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, p["negative_slope"] * z)
    if name == "elu":
        return np.where(z > 0, z, p["alpha"] * np.expm1(np.minimum(z, 0)))
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "softplus":
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    if name == "gelu" and not p["approximate"]:
        return 0.5 * z * (1 + _erf(z / math.sqrt(2)))
    if name == "gelu":
        return 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise KeyError(name)


def forward(model, x):
    """(pre-activations, outputs) of every layer, from the model's weights and layer
    descriptions only."""
    ws = model.get_weights()
    a, pres, outs = np.asarray(x, float), [], []
    for i, layer in enumerate(model.layers):
        z = a @ ws[2 * i].astype(float) + ws[2 * i + 1].astype(float)
        a = act_formula(layer.activation_spec, z)
        pres.append(z)
        outs.append(a)
    return pres, outs


def logsumexp(z):
    m = z.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]


def per_sample_loss(loss, y, out, z, eps=1e-7, clipped=True):
    """Keras 3's per-sample losses: the regression ones on the output, the cross-entropies
    on probabilities with Keras's clipping (``clipped``), or on the logits ``z``."""
    if loss.name == "mean_squared_error":
        return np.mean((out - y) ** 2, axis=1)
    if loss.name == "mean_absolute_error":
        return np.mean(np.abs(out - y), axis=1)
    if loss.name == "huber":
        e, d = out - y, loss.delta
        return np.mean(np.where(np.abs(e) <= d, 0.5 * e ** 2, d * np.abs(e) - 0.5 * d ** 2),
                       axis=1)
    if loss.name == "binary_crossentropy":
        if clipped and not loss.from_logits:
            p = np.clip(out, eps, 1 - eps)
            return np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)), axis=1)
        # tf.nn.sigmoid_cross_entropy_with_logits
        return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), axis=1)
    if loss.sparse:
        y = np.eye(z.shape[1])[np.asarray(y).astype(int).ravel()]
    if clipped and not loss.from_logits:
        p = np.clip(out / out.sum(axis=1, keepdims=True), eps, 1 - eps)
        return -np.sum(y * np.log(p), axis=1)
    return np.sum(y * (logsumexp(z)[:, None] - z), axis=1)


def penalty(model):
    total = 0.0
    ws = model.get_weights()
    for i, layer in enumerate(model.layers):
        for reg, w in ((layer.kernel_regularizer, ws[2 * i]), (layer.bias_regularizer,
                                                               ws[2 * i + 1])):
            if reg is not None:
                w = w.astype(float)
                total += reg.l1 * np.abs(w).sum() + reg.l2 * (w ** 2).sum()
    return total


def expected_loss(model, loss, x, y, sw=None, clipped=False):
    pres, outs = forward(model, x)
    ls = per_sample_loss(loss, np.asarray(y, float), outs[-1], pres[-1], clipped=clipped)
    w = np.ones(len(ls)) if sw is None else np.asarray(sw, float)
    return np.sum(w * ls) / len(ls) + penalty(model)


def targets(loss, rng, n, k):
    if loss.sparse:
        return rng.integers(0, k, size=n)
    if loss.name == "binary_crossentropy":
        return rng.random((n, k))
    if loss.name == "categorical_crossentropy":
        t = rng.random((n, k))
        return t / t.sum(axis=1, keepdims=True)
    return rng.normal(size=(n, k))


# ---------------------------------------------------------------- gradients

KINKED = ("relu", "leaky_relu", "elu")


def far_from_kinks(model, loss, x, y, margin=1e-3):
    """No kinked quantity within `margin` of its kink: the pre-activations of ReLU, leaky
    ReLU and ELU layers, MAE's residuals, Huber's |residual| − δ, L1-regularised weights
    (a central difference across a kink measures neither side's slope)."""
    pres, outs = forward(model, x)
    for layer, z in zip(model.layers, pres):
        if layer.activation in KINKED and np.min(np.abs(z)) < margin:
            return False
    e = outs[-1] - (y if np.ndim(y) == 2 else 0)
    if loss.name == "mean_absolute_error" and np.min(np.abs(e)) < margin:
        return False
    if loss.name == "huber" and np.min(np.abs(np.abs(e) - loss.delta)) < margin:
        return False
    return all(np.min(np.abs(w)) > margin for w in model.get_weights())


def build(rng, hidden, output, k, regularize, dtype="float64"):
    n_in = int(rng.integers(1, 6))
    widths = [int(w) for w in rng.integers(1, 13, size=int(rng.integers(1, 3)))]
    reg = {}
    if regularize:
        reg = dict(kernel_regularizer=R.L1L2(l1=0.01, l2=0.02), bias_regularizer=R.L2(0.03))
    layers = [ref.Dense(widths[0], activation=hidden, input_dim=n_in, **reg)]
    layers += [ref.Dense(w, activation=hidden) for w in widths[1:]]
    layers.append(ref.Dense(k, activation=output, **reg))
    model = ref.Sequential(layers, dtype=dtype, seed=int(rng.integers(1 << 30)))
    # biases off zero, weights off zero (|w| is L1's kink)
    model.set_weights([w + np.sign(w) * 0.01 if w.ndim == 2 else
                       rng.normal(scale=0.3, size=w.shape) for w in model.get_weights()])
    return model, n_in


def numeric_gradient(model, x, y, sw, h=1e-4):
    """Central differences of evaluate at steps h and h/2, Richardson-extrapolated:
    truncation O(h⁴), rounding ~1e-16·|loss|/h."""
    base = model.get_weights()
    grads = []
    for k, w in enumerate(base):
        g = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            diffs = []
            for step in (h, h / 2):
                values = []
                for signed in (step, -step):
                    trial = [u.copy() for u in base]
                    trial[k][idx] += signed
                    model.set_weights(trial)
                    values.append(model.evaluate(x, y, sample_weight=sw))
                diffs.append((values[0] - values[1]) / (2 * step))
            g[idx] = (4 * diffs[1] - diffs[0]) / 3
        grads.append(g)
    model.set_weights(base)
    return grads


def relative_error(a, b):
    a = np.concatenate([g.ravel() for g in a])
    b = np.concatenate([g.ravel() for g in b])
    return np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b))


@pytest.mark.parametrize("case", range(len(PAIRS)),
                         ids=[f"{loss!r}-{act.name}"
                              f"{'-approx' if act.params.get('approximate') else ''}"
                              for loss, act in PAIRS])
def test_gradients_equal_central_differences(case):
    """Every loss × every output activation it takes × every hidden activation, batches of
    1 and 7, with and without sample weights and regularisers: compute_gradients equals
    central differences of evaluate, and its loss is evaluate's."""
    loss, output = PAIRS[case]
    rng = np.random.default_rng(100 + case)
    for h_i, hidden in enumerate(HIDDEN):
        categorical = output.name == "softmax" or loss.name in (
            "categorical_crossentropy", "sparse_categorical_crossentropy")
        k = int(rng.integers(2, 5)) if categorical else int(rng.integers(1, 4))
        for n in (1, 7):
            weighted, regularize = bool((h_i + n) % 2), bool(h_i % 3 == 0)
            sw = rng.random(n) * 2 + 0.1 if weighted else None
            # a draw far from the kinks, whose gradient is not (all but) zero: a ReLU output
            # of one sample can be dead everywhere, and MAE on a softmax output has a zero
            # gradient when every residual has one sign; any check passes there
            for _ in range(50):
                model, n_in = build(rng, hidden, output, k, regularize)
                model.compile(optimizer="sgd", loss=loss)
                x = rng.normal(size=(n, n_in))
                y = targets(loss, rng, n, k)
                if far_from_kinks(model, loss, x, y):
                    value, grads = model.compute_gradients(x, y, sample_weight=sw)
                    if max(np.abs(g).max() for g in grads) > 1e-6:
                        break
            else:
                pytest.fail("no draw far from the kinks with a gradient")
            assert value == pytest.approx(model.evaluate(x, y, sample_weight=sw), rel=1e-13)
            assert value == pytest.approx(expected_loss(model, loss, x, y, sw), rel=1e-10)
            err = relative_error(grads, numeric_gradient(model, x, y, sw))
            assert err < 1e-7, (hidden, n, weighted, regularize, err)


def test_regulariser_gradient_is_l1_sign_plus_twice_l2_w(rng):
    x, y = rng.normal(size=(9, 3)), rng.normal(size=(9, 2))
    plain = ref.Sequential([ref.Dense(4, activation="tanh", input_dim=3), ref.Dense(2)],
                           dtype="float64", seed=3)
    reg = ref.Sequential([ref.Dense(4, activation="tanh", input_dim=3,
                                    kernel_regularizer=R.L1L2(0.1, 0.2),
                                    bias_regularizer=R.L1(0.3)),
                          ref.Dense(2, kernel_regularizer=R.L2(0.05))],
                         dtype="float64", seed=3)
    weights = [w if w.ndim == 2 else rng.normal(size=w.shape) for w in plain.get_weights()]
    for m in (plain, reg):
        m.set_weights(weights)
    W0, b0, W1, b1 = weights
    expected_penalty = (0.1 * np.abs(W0).sum() + 0.2 * (W0 ** 2).sum() + 0.3 * np.abs(b0).sum()
                        + 0.05 * (W1 ** 2).sum())
    assert reg.evaluate(x, y) == pytest.approx(plain.evaluate(x, y) + expected_penalty,
                                               rel=1e-13)
    lp, gp = plain.compute_gradients(x, y)
    lr, gr = reg.compute_gradients(x, y)
    assert lr == pytest.approx(lp + expected_penalty, rel=1e-13)
    np.testing.assert_allclose(gr[0], gp[0] + 0.1 * np.sign(W0) + 0.4 * W0, rtol=1e-13)
    np.testing.assert_allclose(gr[1], gp[1] + 0.3 * np.sign(b0), rtol=1e-13)
    np.testing.assert_allclose(gr[2], gp[2] + 0.1 * W1, rtol=1e-13)
    np.testing.assert_allclose(gr[3], gp[3], rtol=1e-13)


def test_training_loss_includes_the_penalty_before_the_update(rng):
    """train_on_batch and a one-batch fit report the loss (penalty included) at the weights
    before their update; validation uses the weights after it."""
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    make = lambda: ref.Sequential(  # noqa: E731
        [ref.Dense(5, activation="elu", input_dim=3, kernel_regularizer=R.L1L2(0.05, 0.1)),
         ref.Dense(1, bias_regularizer=R.L2(0.2))], dtype="float64", seed=1)
    a, b = make(), make()
    for m in (a, b):
        m.compile(optimizer=ref.SGD(learning_rate=0.1), loss="huber")
    before = expected_loss(a, L.Huber(), x, y)
    assert a.train_on_batch(x, y) == pytest.approx(before, rel=1e-12)
    hist = b.fit(x, y, epochs=1, batch_size=16, validation_data=(x, y), verbose=0).history
    assert hist["loss"][0] == pytest.approx(before, rel=1e-12)
    assert hist["val_loss"][0] == pytest.approx(expected_loss(b, L.Huber(), x, y), rel=1e-12)
    assert hist["val_loss"][0] != pytest.approx(before, rel=1e-6)


# ---------------------------------------------------------------- loss values


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss,output", [
    (L.MeanSquaredError(), "tanh"), (L.MeanAbsoluteError(), "linear"),
    (L.Huber(), "elu"), (L.Huber(delta=0.3), "softplus"), (L.Huber(delta=2.5), "linear"),
    (L.BinaryCrossentropy(), "sigmoid"), (L.BinaryCrossentropy(from_logits=True), "linear"),
    (L.CategoricalCrossentropy(), "softmax"),
    (L.CategoricalCrossentropy(from_logits=True), "linear"),
    (L.SparseCategoricalCrossentropy(), "softmax"),
    (L.SparseCategoricalCrossentropy(from_logits=True), "linear"),
])
def test_loss_values_equal_keras_formulas(loss, output, dtype, rng):
    """Keras's formulas, its clipped probability ones (ε = 1e-7, which does not clip here)
    included; weighted as Σ wᵢ lᵢ / n; with a regulariser's penalty."""
    k, n = 4, 50
    model = ref.Sequential([ref.Dense(k, activation=output, input_dim=3,
                                      kernel_regularizer=R.L2(0.01))], dtype=dtype, seed=0)
    model.compile(loss=loss)
    x = rng.normal(size=(n, 3))
    y = targets(loss, rng, n, k)
    sw = rng.random(n) * 3
    pres, outs = forward(model, x.astype(dtype))
    if output in ("sigmoid", "softmax"):     # ε does not clip: the formulas agree
        assert outs[-1].min() > 1e-5 and outs[-1].max() < 1 - 1e-5
    ls = per_sample_loss(loss, np.asarray(y, float), outs[-1], pres[-1], clipped=True)
    tol = 2e-6 if dtype == "float32" else 1e-12
    pen = penalty(model)
    assert model.evaluate(x, y) == pytest.approx(ls.mean() + pen, rel=tol)
    assert model.evaluate(x, y, sample_weight=sw) == pytest.approx(
        np.sum(sw * ls) / n + pen, rel=tol)
    value, _ = model.compute_gradients(x, y, sample_weight=sw)
    assert value == pytest.approx(np.sum(sw * ls) / n + pen, rel=tol)


def test_huber_delta_changes_the_loss_where_residuals_pass_it(rng):
    x = rng.normal(size=(30, 2))
    y = 3 * rng.normal(size=(30, 1))
    model = ref.Sequential([ref.Dense(1, input_dim=2)], dtype="float64", seed=0)
    values = []
    for delta in (0.3, 1.0, 2.5):
        model.compile(loss=L.Huber(delta=delta))
        e = forward(model, x)[1][-1] - y
        expected = np.mean(np.where(np.abs(e) <= delta, 0.5 * e ** 2,
                                    delta * np.abs(e) - 0.5 * delta ** 2))
        values.append(model.evaluate(x, y))
        assert values[-1] == pytest.approx(expected, rel=1e-13)
    assert len(set(values)) == 3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss,output", [
    (L.BinaryCrossentropy(), "sigmoid"), (L.BinaryCrossentropy(from_logits=True), "linear"),
    (L.CategoricalCrossentropy(), "softmax"),
    (L.CategoricalCrossentropy(from_logits=True), "linear"),
    (L.SparseCategoricalCrossentropy(), "softmax"),
    (L.SparseCategoricalCrossentropy(from_logits=True), "linear"),
])
def test_extreme_logits_give_the_logits_formulas_finite(loss, output, dtype, rng):
    """Logits of ±1e4 (and rows whose largest logit is far below another row's): the loss
    is the logits formula's value, finite, and so are the gradients, which are the fused
    formulas (sigmoid(z) − y)/k·1/n and (softmax(z)·Σy − y)/n."""
    k, n = 3, 8
    model = ref.Sequential([ref.Dense(k, activation=output, input_dim=2)], dtype=dtype)
    model.compile(loss=loss)
    W = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]])
    model.set_weights([W, np.zeros(k)])
    x = np.array([[1, -1], [-1, 1], [1, 1], [-1, -1], [1, 0], [0, 1], [0, 0], [-1, 0]], float)
    y = targets(loss, rng, n, k)
    z = x @ W
    y_dense = np.eye(k)[y] if loss.sparse else y
    if loss.name == "binary_crossentropy":
        expected = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    else:
        expected = np.mean(np.sum(y_dense * (logsumexp(z)[:, None] - z), axis=1))
    value = model.evaluate(x, y)
    assert np.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-6)
    lv, grads = model.compute_gradients(x, y)
    assert lv == pytest.approx(expected, rel=1e-6)
    assert all(np.all(np.isfinite(g)) for g in grads)
    if loss.name == "binary_crossentropy":
        dz = (0.5 * (1 + np.tanh(z / 2)) - y) / (n * k)
    else:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        dz = (e / e.sum(axis=1, keepdims=True) * y_dense.sum(axis=1, keepdims=True)
              - y_dense) / n
    np.testing.assert_allclose(grads[1], dz.sum(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[0], x.T @ dz, rtol=1e-5, atol=1e-6)


def test_sparse_loss_equals_categorical_of_one_hot(rng):
    model = ref.Sequential([ref.Dense(6, activation="gelu", input_dim=3),
                            ref.Dense(5, activation="softmax")], dtype="float64", seed=4)
    x = rng.normal(size=(40, 3))
    labels = rng.integers(0, 5, size=40)
    sw = rng.random(40)
    model.compile(loss="sparse_categorical_crossentropy")
    sparse = model.evaluate(x, labels, sample_weight=sw)
    g_sparse = model.compute_gradients(x, labels, sample_weight=sw)[1]
    model.compile(loss="categorical_crossentropy")
    assert sparse == pytest.approx(model.evaluate(x, np.eye(5)[labels], sample_weight=sw),
                                   rel=1e-13)
    for a, b in zip(g_sparse, model.compute_gradients(x, np.eye(5)[labels],
                                                      sample_weight=sw)[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_categorical_targets_that_do_not_sum_to_one(rng):
    """lᵢ = Σ_j y_j (lse(z) − z_j) and ∂/∂z = softmax(z)·Σy − y for any targets in
    [0, 1]."""
    model = ref.Sequential([ref.Dense(4, activation="softmax", input_dim=3)],
                           dtype="float64", seed=0)
    model.compile(loss="categorical_crossentropy")
    x, y = rng.normal(size=(10, 3)), rng.random((10, 4))
    z = forward(model, x)[0][-1]
    expected = np.mean(np.sum(y * (logsumexp(z)[:, None] - z), axis=1))
    assert model.evaluate(x, y) == pytest.approx(expected, rel=1e-13)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    dz = (e / e.sum(axis=1, keepdims=True) * y.sum(axis=1, keepdims=True) - y) / 10
    _, (dW, db) = model.compute_gradients(x, y)
    np.testing.assert_allclose(db, dz.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(dW, x.T @ dz, rtol=1e-12)


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", OUTPUTS, ids=repr)
def test_predict_applies_each_activation_as_its_formula(spec, dtype, rng):
    x = rng.normal(scale=3, size=(200, 4))
    x[:3] = [[-80, 80, 0, 1e-3], [-1e-3, 30, -30, 5], [700 if dtype == "float64" else 80,
                                                       -5, 2, -2]]
    model = ref.Sequential([ref.Dense(4, activation=spec, input_dim=4)], dtype=dtype)
    model.set_weights([np.eye(4), np.zeros(4)])
    out = model.predict(x)
    assert out.dtype == np.dtype(dtype)
    xd = x.astype(dtype).astype(float)
    with np.errstate(over="ignore"):
        expected = act_formula(spec, xd)
    assert np.all(np.isfinite(out))
    tol = dict(rtol=3e-6, atol=1e-6) if dtype == "float32" else dict(rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(out, expected, **tol)


def test_hidden_activation_derivatives_follow_the_table(rng):
    """One hidden layer of each activation, a linear output and MSE: the first layer's bias
    gradient equals the chain rule written here with activations.py's derivative column."""
    def derivative(spec, z, a):
        name, p = spec.name, spec.params
        if name == "linear":
            return np.ones_like(z)
        if name == "relu":
            return (a > 0).astype(float)
        if name == "leaky_relu":
            return np.where(a > 0, 1, p["negative_slope"])
        if name == "elu":
            return np.where(a >= 0, 1, a + p["alpha"])
        if name == "tanh":
            return 1 - a ** 2
        if name == "sigmoid":
            return a * (1 - a)
        if name == "softplus":
            return -np.expm1(-a)
        if name == "gelu" and not p["approximate"]:
            return 0.5 * (1 + _erf(z / math.sqrt(2))) + z * np.exp(-z ** 2 / 2) / math.sqrt(
                2 * math.pi)
        c = math.sqrt(2 / math.pi)
        th = np.tanh(c * (z + 0.044715 * z ** 3))
        return 0.5 * (1 + th) + 0.5 * z * (1 - th ** 2) * c * (1 + 3 * 0.044715 * z ** 2)

    x, y = rng.normal(size=(11, 3)), rng.normal(size=(11, 2))
    for spec in HIDDEN:
        model = ref.Sequential([ref.Dense(5, activation=spec, input_dim=3), ref.Dense(2)],
                               dtype="float64", seed=2)
        model.set_weights([w if w.ndim == 2 else rng.normal(size=w.shape)
                           for w in model.get_weights()])
        W0, b0, W1, b1 = model.get_weights()
        z = x @ W0 + b0
        a = act_formula(spec, z)
        g = 2 * (a @ W1 + b1 - y) / y.size
        dz = (g @ W1.T) * derivative(spec, z, a)
        _, grads = model.compute_gradients(x, y)
        np.testing.assert_allclose(grads[1], dz.sum(axis=0), rtol=1e-12, atol=1e-15,
                                   err_msg=repr(spec))
        np.testing.assert_allclose(grads[0], x.T @ dz, rtol=1e-12, atol=1e-15)


def test_softmax_output_with_a_regression_loss_uses_the_jacobian_product(rng):
    model = ref.Sequential([ref.Dense(4, activation="softmax", input_dim=3)],
                           dtype="float64", seed=0)
    model.compile(loss="mse")
    x, y = rng.normal(size=(6, 3)), rng.random((6, 4))
    z = forward(model, x)[0][-1]
    p = act_formula(Activation("softmax"), z)
    g = 2 * (p - y) / y.size
    dz = p * (g - np.sum(p * g, axis=1, keepdims=True))
    _, (dW, db) = model.compute_gradients(x, y)
    np.testing.assert_allclose(db, dz.sum(axis=0), rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(dW, x.T @ dz, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("loss,output", [(loss, act) for loss, act in PAIRS
                                         if not isinstance(loss, L.Huber)
                                         or loss.delta == 1.0],
                         ids=lambda v: repr(v))
def test_float32_stays_float32(loss, output, rng):
    model = ref.Sequential([ref.Dense(5, activation="gelu", input_dim=3,
                                      kernel_regularizer=R.L1L2(0.01, 0.01)),
                            ref.Dense(3, activation=output)], dtype="float32", seed=0)
    model.compile(optimizer=ref.Adam(), loss=loss, metrics=["mae"] if not loss.sparse
                  else ["accuracy"])
    x = rng.normal(size=(20, 3))                 # float64 data
    y = targets(loss, rng, 20, 3)
    sw = rng.random(20)
    hist = model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25,
                     sample_weight=sw, verbose=0)
    assert all(np.isfinite(v).all() for v in hist.history.values())
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert all(g.dtype == np.float32 for g in model.compute_gradients(x, y, sw)[1])
    assert model.predict(x).dtype == np.float32
    assert isinstance(model.train_on_batch(x, y, sample_weight=sw), float)
    assert isinstance(model.evaluate(x, y)[0], float)


# ---------------------------------------------------------------- metrics


def test_evaluate_metrics_equal_formulas(rng):
    k, n = 4, 300
    model = ref.Sequential([ref.Dense(k, activation="softmax", input_dim=5)],
                           dtype="float64", seed=0)
    x = rng.normal(size=(n, 5))
    labels = rng.integers(0, k, size=n)
    one_hot = np.eye(k)[labels]
    sw = rng.random(n)
    p = act_formula(Activation("softmax"), forward(model, x)[0][-1])
    model.compile(loss="categorical_crossentropy", metrics=["accuracy", "mse", "mae"])
    loss, acc, mse, mae = model.evaluate(x, one_hot, sample_weight=sw)   # metrics unweighted
    assert loss == pytest.approx(np.sum(sw * -np.log(np.sum(p * one_hot, 1))) / n, rel=1e-12)
    assert acc == np.mean(p.argmax(1) == labels)
    assert 0.1 < acc < 0.9
    assert mse == pytest.approx(np.mean((p - one_hot) ** 2), rel=1e-12)
    assert mae == pytest.approx(np.mean(np.abs(p - one_hot)), rel=1e-12)
    model.compile(loss="categorical_crossentropy", metrics=["categorical_accuracy"])
    assert model.evaluate(x, one_hot, return_dict=True) == {
        "loss": pytest.approx(np.mean(-np.log(np.sum(p * one_hot, 1))), rel=1e-12),
        "categorical_accuracy": np.mean(p.argmax(1) == labels)}
    model.compile(loss="sparse_categorical_crossentropy", metrics=["acc"])
    assert model.evaluate(x, labels, return_dict=True)["acc"] == np.mean(p.argmax(1) == labels)
    model.compile(loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    assert model.evaluate(x, labels)[1] == np.mean(p.argmax(1) == labels)
    model.compile(loss="sparse_categorical_crossentropy")
    assert isinstance(model.evaluate(x, labels), float)


def test_binary_accuracy_on_probabilities_and_on_logits(rng):
    n = 300
    x = rng.normal(size=(n, 5))
    yb = (rng.random((n, 3)) > 0.5).astype(float)
    probs = ref.Sequential([ref.Dense(3, activation="sigmoid", input_dim=5)], dtype="float64",
                           seed=0)
    probs.compile(loss="binary_crossentropy", metrics=["accuracy", "binary_accuracy"])
    pb = act_formula(Activation("sigmoid"), forward(probs, x)[0][-1])
    expected = np.mean((pb > 0.5) == yb)
    # (the mean over samples of each sample's mean over outputs: equal up to rounding)
    assert probs.evaluate(x, yb)[1:] == [pytest.approx(expected, abs=1e-15)] * 2
    logits = ref.Sequential([ref.Dense(3, input_dim=5)], dtype="float64", seed=1)
    logits.set_weights(probs.get_weights())
    logits.compile(loss=L.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    assert logits.evaluate(x, yb)[1] == pytest.approx(expected, abs=1e-15)  # threshold 0
    # a regression loss with one output: binary accuracy at 0.5 on the output itself
    one = ref.Sequential([ref.Dense(1, input_dim=5)], dtype="float64", seed=3)
    one.compile(loss="mse", metrics=["accuracy"])
    y1 = (rng.random(n) > 0.5).astype(float)
    out = forward(one, x)[1][-1][:, 0]
    assert one.evaluate(x, y1)[1] == np.mean((out > 0.5) == y1)
    # several outputs: categorical accuracy
    many = ref.Sequential([ref.Dense(3, input_dim=5)], dtype="float64", seed=3)
    many.compile(loss="mse", metrics=["accuracy"])
    y3 = np.eye(3)[rng.integers(0, 3, n)]
    assert many.evaluate(x, y3)[1] == np.mean(forward(many, x)[1][-1].argmax(1) ==
                                               y3.argmax(1))


def test_fit_reports_metrics_of_each_batch_before_its_update(rng):
    """One epoch, no shuffle, a partial last batch: the history's loss and accuracy are the
    means over samples of each batch's values under the weights just before its update
    (replayed with train_on_batch and the test's own forward on a twin model)."""
    k, n, bs = 3, 50, 16
    x = rng.normal(size=(n, 4))
    labels = rng.integers(0, k, size=n)
    make = lambda: ref.Sequential([ref.Dense(8, activation="tanh", input_dim=4),  # noqa
                                   ref.Dense(k, activation="softmax")], dtype="float64", seed=3)
    a, b = make(), make()
    for m in (a, b):
        m.compile(optimizer=ref.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    hist = a.fit(x, labels, epochs=1, batch_size=bs, shuffle=False, verbose=0).history
    assert list(hist) == ["loss", "accuracy"]
    correct, losses = 0, 0.0
    for s in range(0, n, bs):
        xb, lb = x[s:s + bs], labels[s:s + bs]
        correct += np.sum(forward(b, xb)[1][-1].argmax(1) == lb)
        losses += b.train_on_batch(xb, lb) * len(xb)
    assert hist["accuracy"][0] == correct / n
    assert hist["loss"][0] == pytest.approx(losses / n, rel=1e-12)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-12, atol=1e-14)


def test_shuffled_classification_fit_replays_the_seeded_stream(rng):
    """Glorot weights drawn in layer order, then one permutation per epoch, batches in
    order, softmax and sparse cross-entropy: a fit equals train_on_batch on the batches of
    those permutations."""
    n, bs = 45, 16
    x = rng.normal(size=(n, 4))
    labels = rng.integers(0, 3, size=n)
    make = lambda: ref.Sequential([ref.Dense(6, activation="relu", input_dim=4),  # noqa
                                   ref.Dense(3, activation="softmax")], dtype="float64", seed=9)
    fitted, manual = make(), make()
    for m in (fitted, manual):
        m.compile(optimizer=ref.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    hist = fitted.fit(x, labels, epochs=2, batch_size=bs, verbose=0).history
    stream = np.random.default_rng(9)
    glorot_uniform(stream, 4, 6, np.float64)
    glorot_uniform(stream, 6, 3, np.float64)
    for epoch in range(2):
        order = stream.permutation(n)
        total, correct = 0.0, 0
        for s in range(0, n, bs):
            idx = order[s:s + bs]
            correct += np.sum(forward(manual, x[idx])[1][-1].argmax(1) == labels[idx])
            total += manual.train_on_batch(x[idx], labels[idx]) * len(idx)
        assert hist["loss"][epoch] == pytest.approx(total / n, rel=1e-12)
        assert hist["accuracy"][epoch] == correct / n
    for wa, wb in zip(fitted.get_weights(), manual.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- weights and validation


def test_validation_split_takes_the_last_rows_before_shuffling(rng):
    n = 103
    x = rng.normal(size=(n, 3))
    y = rng.normal(size=(n, 1))
    sw = rng.random(n) + 0.5
    split = int(np.floor(n * (1 - 0.25)))
    assert split == 77
    make = lambda: ref.Sequential([ref.Dense(2, activation="softplus", input_dim=3),  # noqa
                                   ref.Dense(1)], dtype="float64", seed=1)
    a, b = make(), make()
    for m in (a, b):
        m.compile(loss="mse", metrics=["mae"])
    ha = a.fit(x, y, epochs=3, validation_split=0.25, sample_weight=sw, verbose=0).history
    hb = b.fit(x[:split], y[:split], epochs=3, sample_weight=sw[:split],
               validation_data=(x[split:], y[split:], sw[split:]), verbose=0).history
    assert list(ha) == ["loss", "mae", "val_loss", "val_mae"]
    for key in ha:
        np.testing.assert_allclose(ha[key], hb[key], rtol=1e-13)
    # the last epoch's validation values, from the formulas: weighted loss, unweighted mae
    out = forward(a, x[split:])[1][-1]
    e2 = ((out - y[split:]) ** 2)[:, 0]
    assert ha["val_loss"][-1] == pytest.approx(np.sum(sw[split:] * e2) / (n - split), rel=1e-12)
    assert ha["val_mae"][-1] == pytest.approx(np.mean(np.abs(out - y[split:])), rel=1e-12)
    # validation_data overrides validation_split
    c = make()
    c.compile(loss="mse")
    hc = c.fit(x[:split], y[:split], epochs=3, sample_weight=sw[:split], verbose=0,
               validation_split=0.5, validation_data=(x[split:], y[split:], sw[split:]))
    np.testing.assert_allclose(hc.history["val_loss"], hb["val_loss"], rtol=1e-13)
    with pytest.raises(ValueError, match="too few"):
        a.fit(x[:1], y[:1], validation_split=0.1, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        a.fit(x, y, validation_split=1.0, verbose=0)


def test_sample_weight_weighs_each_sample_loss(rng):
    """Integer weights are repetitions: weight 2 on a row counts it twice in Σ wᵢ lᵢ, and
    the gradient follows (n stays the batch size)."""
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    model = ref.Sequential([ref.Dense(4, activation="sigmoid", input_dim=3), ref.Dense(2)],
                           dtype="float64", seed=0)
    model.compile(loss="mae")
    w = np.array([2, 1, 0, 1, 3, 1.0])
    reps = np.repeat(np.arange(6), w.astype(int))
    lw, gw = model.compute_gradients(x, y, sample_weight=w)
    lr, gr = model.compute_gradients(x[reps], y[reps])
    assert lw == pytest.approx(lr * len(reps) / 6, rel=1e-13)
    for a, b in zip(gw, gr):
        np.testing.assert_allclose(a, b * len(reps) / 6, rtol=1e-12, atol=1e-16)


def test_class_weight_is_sample_weight_of_the_class(rng):
    n, k = 60, 3
    x = rng.normal(size=(n, 4))
    labels = rng.integers(0, k, size=n)
    cw = {0: 0.5, 2: 3.0}
    sw = np.array([cw.get(int(c), 1.0) for c in labels])
    models = [ref.Sequential([ref.Dense(k, activation="softmax", input_dim=4)],
                             dtype="float64", seed=5) for _ in range(4)]
    for m in models[:2]:
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    for m in models[2:]:
        m.compile(optimizer="adam", loss="categorical_crossentropy")
    h1 = models[0].fit(x, labels, epochs=2, class_weight=cw, verbose=0).history
    h2 = models[1].fit(x, labels, epochs=2, sample_weight=sw, verbose=0).history
    h3 = models[2].fit(x, np.eye(k)[labels], epochs=2, class_weight=cw, verbose=0).history
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-13)
    np.testing.assert_allclose(h3["loss"], h2["loss"], rtol=1e-13)
    assert h1["loss"][0] != pytest.approx(models[3].fit(
        x, np.eye(k)[labels], epochs=1, verbose=0).history["loss"][0], rel=1e-3)
    # one output: the class is the rounded target
    yb = rng.integers(0, 2, size=n).astype(float)
    pair = [ref.Sequential([ref.Dense(1, activation="sigmoid", input_dim=4)],
                           dtype="float64", seed=5) for _ in range(2)]
    for m in pair:
        m.compile(optimizer="sgd", loss="binary_crossentropy")
    a = pair[0].fit(x, yb, epochs=2, class_weight={1: 4.0}, verbose=0).history["loss"]
    b = pair[1].fit(x, yb, epochs=2, sample_weight=np.where(yb == 1, 4.0, 1.0),
                    verbose=0).history["loss"]
    np.testing.assert_allclose(a, b, rtol=1e-13)
    with pytest.raises(ValueError, match="at the same time"):
        models[0].fit(x, labels, class_weight=cw, sample_weight=sw, verbose=0)


def test_evaluate_and_history_forms(rng):
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    model = ref.Sequential([ref.Dense(2, input_dim=3)], dtype="float64", seed=0)
    model.compile(loss="mse")
    assert isinstance(model.evaluate(x, y), float)
    model.compile(loss="mse", metrics=["mae", "mse"])
    value = model.evaluate(x, y)
    assert isinstance(value, list) and len(value) == 3
    out = forward(model, x)[1][-1]
    assert value[0] == pytest.approx(np.mean((out - y) ** 2), rel=1e-13)
    assert value[2] == pytest.approx(np.mean((out - y) ** 2), rel=1e-13)
    assert model.evaluate(x, y, return_dict=True) == {
        "loss": value[0], "mae": value[1], "mse": value[2]}
    hist = model.fit(x, y, epochs=2, validation_data=(x, y), verbose=0).history
    assert list(hist) == ["loss", "mae", "mse", "val_loss", "val_mae", "val_mse"]


def test_callbacks_are_called_and_can_stop_training(rng):
    from fastdense.callbacks import Callback

    class Stop(Callback):
        def __init__(self):
            super().__init__()
            self.calls = []

        def on_epoch_end(self, epoch, logs=None):
            self.calls.append((epoch, sorted(logs)))
            if epoch == 1:
                self.model.stop_training = True

    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    model = ref.Sequential([ref.Dense(1, input_dim=3)], dtype="float64")
    model.compile(loss="mse", metrics=["mae"])
    cb = Stop()
    hist = model.fit(x, y, epochs=10, validation_split=0.2, callbacks=[cb], verbose=0)
    assert hist.epoch == [0, 1]
    assert cb.calls == [(0, ["loss", "mae", "val_loss", "val_mae"]),
                        (1, ["loss", "mae", "val_loss", "val_mae"])]
    assert cb.params == {"epochs": 10, "steps": 1, "verbose": 0}


# ---------------------------------------------------------------- refusals


def _compiled(output, k, loss, metrics=None):
    model = ref.Sequential([ref.Dense(k, activation=output, input_dim=3)])
    model.compile(loss=loss, metrics=metrics)
    return model


@pytest.mark.parametrize("make, message", [
    (lambda: ref.Sequential([ref.Dense(4, activation="softmax", input_dim=3), ref.Dense(2)]),
     "only the last layer"),
    (lambda: ref.Sequential([ref.Dense(1, activation="softmax", input_dim=3)]),
     "at least 2 units"),
    (lambda: _compiled("linear", 3, "categorical_crossentropy"), "not a probability"),
    (lambda: _compiled("relu", 1, "binary_crossentropy"), "not a probability"),
    (lambda: _compiled("softmax", 3, "binary_crossentropy"), "sigmoid"),
    (lambda: _compiled("softmax", 3, L.CategoricalCrossentropy(from_logits=True)),
     "needs a linear output"),
    (lambda: _compiled("sigmoid", 1, L.BinaryCrossentropy(from_logits=True)),
     "needs a linear output"),
    (lambda: _compiled("sigmoid", 1, "categorical_crossentropy"), "softmax"),
    (lambda: _compiled("linear", 1, L.SparseCategoricalCrossentropy(from_logits=True)),
     "at least 2 output units"),
    (lambda: _compiled("softmax", 3, "mse", metrics=["sparse_categorical_accuracy"]),
     "class labels"),
    (lambda: _compiled("softmax", 3, "sparse_categorical_crossentropy", metrics=["mae"]),
     "class labels"),
    (lambda: _compiled("softmax", 3, "mse", metrics=["f1"]), "unknown metric"),
    (lambda: _compiled("softmax", 3, "nope"), "unknown loss"),
])
def test_bad_vocabulary_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("labels, error, message", [
    (np.array([0, 1, 3, 1]), ValueError, "outside"),
    (np.array([0, 1, -1, 1]), ValueError, "outside"),
    (np.array([0.0, 1.5, 2, 1]), ValueError, "non-integer"),
    (np.array([0.0, np.nan, 2, 1]), ValueError, "NaN"),
    (np.array(["a", "b", "a", "b"]), TypeError, "integer class labels"),
    (np.eye(3)[[0, 1, 2, 1]], ValueError, "one class label per sample"),
])
def test_bad_labels_are_refused_before_any_weight_changes(labels, error, message, rng):
    model = _compiled("softmax", 3, "sparse_categorical_crossentropy")
    before = model.get_weights()
    x = rng.normal(size=(4, 3))
    for call in (lambda: model.fit(x, labels, verbose=0), lambda: model.evaluate(x, labels),
                 lambda: model.train_on_batch(x, labels),
                 lambda: model.compute_gradients(x, labels),
                 lambda: model.fit(x, [0, 1, 2, 1], validation_data=(x, labels), verbose=0)):
        with pytest.raises(error, match=message):
            call()
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == 0


def test_bad_targets_and_weights_are_refused(rng):
    x = rng.normal(size=(4, 3))
    model = _compiled("sigmoid", 1, "binary_crossentropy")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.fit(x, np.array([0, 1, 2, 1]), verbose=0)
    with pytest.raises(ValueError, match="negative weight"):
        model.fit(x, np.array([0, 1, 1, 1]), sample_weight=[1, -1, 1, 1], verbose=0)
    with pytest.raises(ValueError, match="one weight per sample"):
        model.evaluate(x, np.array([0, 1, 1, 1]), sample_weight=[1, 1])
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(x, np.array([0, 1, 1, 1]), validation_data=(x,), verbose=0)
    with pytest.raises(TypeError, match="class_weight"):
        model.fit(x, np.array([0, 1, 1, 1]), class_weight=[1, 2], verbose=0)
