"""Activations, losses, metrics, weights and regularisers of the compiled model, against
independent expectations: finite differences of the model's own loss (float64), and the
formulas written again here in NumPy (Keras 3's, with its epsilon and clipping)."""
import itertools

import numpy as np
import pytest

import fastdense as fd
from fastdense._core import dense as _dense
from fastdense._core import updates as _updates
from fastdense import losses
from fastdense.activations import Activation

HIDDEN = [Activation("linear"), Activation("relu"), Activation("leaky_relu"),
          Activation("leaky_relu", negative_slope=0.05), Activation("elu"),
          Activation("elu", alpha=0.7), Activation("tanh"), Activation("sigmoid"),
          Activation("softplus"), Activation("gelu"), Activation("gelu", approximate=True)]
OUTPUT_FOR_REGRESSION = HIDDEN + [Activation("softmax")]


def losses_and_outputs():
    """(loss, output activation) pairs the model accepts, each loss with every output it
    takes."""
    out = []
    for loss in (fd.losses.MeanSquaredError(), fd.losses.MeanAbsoluteError(),
                 fd.losses.Huber(), fd.losses.Huber(delta=0.3)):
        out += [(loss, act) for act in OUTPUT_FOR_REGRESSION]
    out += [(fd.losses.BinaryCrossentropy(), Activation("sigmoid")),
            (fd.losses.BinaryCrossentropy(from_logits=True), Activation("linear"))]
    for cls in (fd.losses.CategoricalCrossentropy, fd.losses.SparseCategoricalCrossentropy):
        out += [(cls(), Activation("softmax")), (cls(from_logits=True), Activation("linear"))]
    return out


def targets(loss, rng, n, k):
    if loss.sparse:
        return rng.integers(0, k, size=n)
    if loss.name == "binary_crossentropy":
        return rng.random((n, k))
    if loss.name == "categorical_crossentropy":
        t = rng.random((n, k))
        return t / t.sum(axis=1, keepdims=True)
    return rng.normal(size=(n, k))


def build(rng, hidden, output, k, dtype="float64", regularize=False):
    widths = [int(w) for w in rng.integers(1, 41, size=2)]
    n_in = int(rng.integers(1, 7))
    reg = dict(kernel_regularizer=fd.regularizers.L1L2(l1=0.01, l2=0.02),
               bias_regularizer=fd.regularizers.L2(0.03)) if regularize else {}
    layers = [fd.Dense(widths[0], activation=hidden, input_dim=n_in, **reg),
              fd.Dense(widths[1], activation=hidden),
              fd.Dense(k, activation=output, **reg)]
    model = fd.Sequential(layers, dtype=dtype, seed=int(rng.integers(1 << 30)))
    # biases off zero: with zero biases, a unit whose inputs are all ReLU-zero sits exactly
    # on its kink, where no finite difference holds
    model.set_weights([w if w.ndim == 2 else rng.normal(scale=0.3, size=w.shape)
                       for w in model.get_weights()])
    return model, n_in


KINKED = ("relu", "leaky_relu", "elu")

def kink_sides(model, x, y, loss):
    """Which side of its kink each kinked quantity is on: the pre-activations of ReLU, leaky
    ReLU and ELU layers, MAE's residuals, Huber's |residual| − δ (its second derivative
    jumps there). Each layer's input comes from the compiled forward of a one-layer model
    holding that layer's weights."""
    ws = model.get_weights()
    a, sides = x, []
    for i, layer in enumerate(model.layers):
        z = a @ ws[2 * i] + ws[2 * i + 1]
        if layer.activation in KINKED:
            sides.append((z > 0).ravel())
        sub = fd.Sequential([fd.Dense(layer.units, activation=layer.activation_spec,
                                      input_dim=ws[2 * i].shape[0])], dtype="float64")
        sub.set_weights(ws[2 * i:2 * i + 2])
        a = sub.predict(a)
    if loss.name == "mean_absolute_error":
        sides.append((a - y > 0).ravel())
    if loss.name == "huber":
        sides.append((np.abs(a - y) > loss.delta).ravel())
    return np.concatenate(sides) if sides else np.zeros(0, bool)


def directional_check(model, x, y, sw, rng, directions=3, h=1e-4):
    """max over random unit directions v of (|g·v − D_v L| − rounding) / |g|, D_v L by
    central differences of model.evaluate (the model's own loss) at h, h/2, h/4,
    Richardson-extrapolated twice. A direction along which a kink lies within h is
    replaced by another (a difference across a kink measures neither side's slope)."""
    loss, grads = model.compute_gradients(x, y, sample_weight=sw)
    base = model.get_weights()
    flat0 = np.concatenate([a.ravel() for a in base])
    g = np.concatenate([a.ravel() for a in grads])
    assert np.isclose(loss, model.evaluate(x, y, sample_weight=sw), rtol=1e-12)
    sides0 = kink_sides(model, x, y, model._loss)

    def put(flat):
        ws, i = [], 0
        for a in base:
            ws.append(flat[i:i + a.size].reshape(a.shape))
            i += a.size
        model.set_weights(ws)

    def at(step):
        put(flat0 + step * v)
        return model.evaluate(x, y, sample_weight=sw)

    worst, done = 0.0, 0
    for _ in range(60):
        v = rng.normal(size=g.size)
        v /= np.linalg.norm(v)
        crossed = False
        for step in (h, -h):
            put(flat0 + step * v)
            crossed |= not np.array_equal(kink_sides(model, x, y, model._loss), sides0)
        if crossed:
            continue
        d = [(at(s) - at(-s)) / (2 * s) for s in (h, h / 2, h / 4)]
        r1, r2 = (4 * d[1] - d[0]) / 3, (4 * d[2] - d[1]) / 3
        fd_value = (16 * r2 - r1) / 15
        # the differences' rounding (~1e-16·|L|/h) is allowed for absolutely: a gradient
        # can be exactly zero (Huber beyond δ, or MAE, on every output of a softmax)
        slack = abs(g @ v - fd_value) - 1e-10 * max(1.0, abs(loss))
        worst = max(worst, slack / max(np.linalg.norm(g), 1e-300))
        done += 1
        if done == directions:
            break
    put(flat0)
    assert done == directions, "every direction crossed a kink"
    return worst


@pytest.mark.parametrize("isa", ["base", "avx2", "avx512"])
@pytest.mark.parametrize("case", range(len(losses_and_outputs())))
def test_gradients_equal_finite_differences(case, isa):
    loss, output = losses_and_outputs()[case]
    rng = np.random.default_rng(1000 + case)
    previous = (_dense.get_isa(), _updates.get_isa())
    _dense.set_isa(isa)
    try:
        for hidden in HIDDEN:
            k = int(rng.integers(2, 6)) if output.name == "softmax" or loss.name in (
                "categorical_crossentropy", "sparse_categorical_crossentropy") \
                else int(rng.integers(1, 5))
            model, n_in = build(rng, hidden, output, k, regularize=bool(rng.integers(2)))
            model.compile(optimizer="sgd", loss=loss)
            for n in (1, 6, 17):
                x = rng.normal(size=(n, n_in))
                y = targets(loss, rng, n, k)
                sw = rng.random(n) * 2 if rng.integers(2) else None
                err = directional_check(model, x, y, sw, rng)
                assert err < 1e-9, (loss, output, hidden, n, err)
    finally:
        _dense.set_isa(previous[0])


def keras_losses(name, y, out, logits, delta=1.0, eps=1e-7):
    """Keras 3's per-sample losses, written again: on probabilities with its clipping
    (`out`), or on `logits` (from_logits=True), float64."""
    if name == "mse":
        return np.mean((out - y) ** 2, axis=1)
    if name == "mae":
        return np.mean(np.abs(out - y), axis=1)
    if name == "huber":
        e = out - y
        return np.mean(np.where(np.abs(e) <= delta, 0.5 * e * e,
                                delta * np.abs(e) - 0.5 * delta * delta), axis=1)
    if name == "bce_prob":
        p = np.clip(out, eps, 1 - eps)
        return np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)), axis=1)
    if name == "bce_logits":      # tf.nn.sigmoid_cross_entropy_with_logits
        z = logits
        return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), axis=1)
    if name == "cce_prob":
        p = out / out.sum(axis=1, keepdims=True)
        p = np.clip(p, eps, 1 - eps)
        return -np.sum(y * np.log(p), axis=1)
    if name == "cce_logits":
        z = logits - logits.max(axis=1, keepdims=True)
        log_softmax = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -np.sum(y * log_softmax, axis=1)
    raise KeyError(name)


def linear_model(k, output, dtype, n_in=3, seed=0):
    return fd.Sequential([fd.Dense(k, activation=output, input_dim=n_in)], dtype=dtype,
                         seed=seed)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss,output,keras", [
    (fd.losses.MeanSquaredError(), "tanh", "mse"),
    (fd.losses.MeanAbsoluteError(), "linear", "mae"),
    (fd.losses.Huber(delta=0.5), "softplus", "huber"),
    (fd.losses.BinaryCrossentropy(), "sigmoid", "bce_prob"),
    (fd.losses.BinaryCrossentropy(from_logits=True), "linear", "bce_logits"),
    (fd.losses.CategoricalCrossentropy(), "softmax", "cce_prob"),
    (fd.losses.CategoricalCrossentropy(from_logits=True), "linear", "cce_logits"),
])
def test_loss_values_equal_keras_formulas(loss, output, keras, dtype, rng):
    k, n = 4, 50
    model = linear_model(k, output, dtype)
    model.compile(loss=loss)
    x = rng.normal(size=(n, 3)).astype(dtype)
    y = targets(loss, rng, n, k)
    sw = rng.random(n)
    W, b = [w.astype(np.float64) for w in model.get_weights()]
    z = x.astype(np.float64) @ W + b
    out = model.predict(x).astype(np.float64)
    per_sample = keras_losses(keras, y, out, z, delta=getattr(loss, "delta", 1.0))
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(model.evaluate(x, y), per_sample.mean(), rtol=tol)
    np.testing.assert_allclose(model.evaluate(x, y, sample_weight=sw),
                               np.sum(sw * per_sample) / n, rtol=tol)


def test_sparse_loss_equals_categorical_of_one_hot(rng):
    model = linear_model(5, "softmax", "float64")
    x = rng.normal(size=(40, 3))
    labels = rng.integers(0, 5, size=40)
    model.compile(loss="sparse_categorical_crossentropy")
    sparse = model.evaluate(x, labels)
    g_sparse = model.compute_gradients(x, labels)[1]
    model.compile(loss="categorical_crossentropy")
    np.testing.assert_allclose(sparse, model.evaluate(x, np.eye(5)[labels]), rtol=1e-13)
    for a, b in zip(g_sparse, model.compute_gradients(x, np.eye(5)[labels])[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss,output", [
    (fd.losses.BinaryCrossentropy(), "sigmoid"),
    (fd.losses.BinaryCrossentropy(from_logits=True), "linear"),
    (fd.losses.CategoricalCrossentropy(), "softmax"),
    (fd.losses.CategoricalCrossentropy(from_logits=True), "linear"),
    (fd.losses.SparseCategoricalCrossentropy(), "softmax"),
    (fd.losses.SparseCategoricalCrossentropy(from_logits=True), "linear"),
])
def test_extreme_logits_give_finite_losses_and_gradients(loss, output, dtype, rng):
    """Logits of ±1e4: the logits formulas (Keras's from_logits=True, and TensorFlow's for
    sigmoid/softmax outputs) in float64 give the exact value; the model matches, finite."""
    k, n = 3, 6
    model = linear_model(k, output, dtype, n_in=2)
    model.compile(loss=loss)
    W = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]])
    model.set_weights([W, np.zeros(k)])
    x = rng.choice([-1.0, 1.0], size=(n, 2))
    y = targets(loss, rng, n, k)
    z = x @ W
    y_dense = np.eye(k)[y] if loss.sparse else y
    name = "bce_logits" if loss.name == "binary_crossentropy" else "cce_logits"
    expected = keras_losses(name, y_dense, None, z).mean()
    value = model.evaluate(x, y)
    assert np.isfinite(value)
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    lv, grads = model.compute_gradients(x, y)
    assert all(np.all(np.isfinite(g)) for g in grads)
    # the logits gradient of the mean loss, written again: (sigmoid or softmax − y)/n
    if loss.name == "binary_crossentropy":
        p = 0.5 * (1 + np.tanh(z / 2))
        dz = (p - y_dense) / (n * k)
    else:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        dz = (p * y_dense.sum(axis=1, keepdims=True) - y_dense) / n
    np.testing.assert_allclose(grads[1], dz.sum(axis=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_activation_outputs_equal_formulas(dtype, rng):
    from scipy.special import erf
    x = rng.normal(scale=3, size=(200, 4)).astype(dtype)
    x[:5] = [[-80, 80, 0, 1e-3]] * 5
    formulas = {
        "linear": lambda z: z, "relu": lambda z: np.maximum(z, 0),
        "leaky_relu": lambda z: np.where(z > 0, z, 0.2 * z),
        "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
        "tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
        "softplus": lambda z: np.logaddexp(z, 0),
        "gelu": lambda z: 0.5 * z * (1 + erf(z / np.sqrt(2))),
        "gelu_tanh": lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi)
                                                      * (z + 0.044715 * z ** 3))),
        "softmax": lambda z: np.exp(z - z.max(1, keepdims=True))
        / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True),
    }
    for name, f in formulas.items():
        act = Activation("gelu", approximate=True) if name == "gelu_tanh" else name
        model = fd.Sequential([fd.Dense(4, activation=act, input_dim=4)], dtype=dtype)
        model.set_weights([np.eye(4), np.zeros(4)])
        out = model.predict(x)
        assert out.dtype == np.dtype(dtype)
        expected = f(x.astype(np.float64))
        tol = dict(rtol=2e-6, atol=1e-6) if dtype == "float32" else dict(rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(out, expected, **tol, err_msg=name)


def test_metrics_equal_formulas(rng):
    k, n = 4, 300
    model = linear_model(k, "softmax", "float64", n_in=5)
    x = rng.normal(size=(n, 5))
    labels = rng.integers(0, k, size=n)
    one_hot = np.eye(k)[labels]
    model.compile(loss="categorical_crossentropy", metrics=["accuracy", "mse", "mae"])
    p = model.predict(x)
    loss, acc, mse, mae = model.evaluate(x, one_hot)
    assert acc == pytest.approx(np.mean(p.argmax(1) == labels), abs=1e-15)
    assert mse == pytest.approx(np.mean((p - one_hot) ** 2), rel=1e-12)
    assert mae == pytest.approx(np.mean(np.abs(p - one_hot)), rel=1e-12)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["acc"])
    assert model.evaluate(x, labels, return_dict=True)["acc"] == \
        pytest.approx(np.mean(p.argmax(1) == labels), abs=1e-15)
    binary = linear_model(3, "sigmoid", "float64", n_in=5)
    yb = (rng.random((n, 3)) > 0.5).astype(float)
    binary.compile(loss="binary_crossentropy", metrics=["accuracy"])
    pb = binary.predict(x)
    assert binary.evaluate(x, yb)[1] == pytest.approx(np.mean((pb > 0.5) == yb), abs=1e-15)
    logits = linear_model(3, "linear", "float64", n_in=5)
    logits.set_weights(binary.get_weights())
    logits.compile(loss=fd.losses.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    assert logits.evaluate(x, yb)[1] == pytest.approx(np.mean((pb > 0.5) == yb), abs=1e-15)


def test_fit_reports_metrics_of_each_batch_before_its_update(rng):
    """One epoch, no shuffle: the history's accuracy is the mean over the batches of the
    accuracy of each batch under the weights just before its update (replayed with
    train_on_batch on a twin model)."""
    k, n, bs = 3, 50, 16
    x = rng.normal(size=(n, 4))
    labels = rng.integers(0, k, size=n)
    a = fd.Sequential([fd.Dense(8, activation="tanh", input_dim=4),
                       fd.Dense(k, activation="softmax")], dtype="float64", seed=3)
    b = fd.Sequential([fd.Dense(8, activation="tanh", input_dim=4),
                       fd.Dense(k, activation="softmax")], dtype="float64", seed=3)
    for m in (a, b):
        m.compile(optimizer=fd.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    hist = a.fit(x, labels, epochs=1, batch_size=bs, shuffle=False, verbose=0).history
    correct, losses = 0, 0.0
    for s in range(0, n, bs):
        xb, lb = x[s:s + bs], labels[s:s + bs]
        correct += np.sum(b.predict(xb).argmax(1) == lb)
        losses += b.train_on_batch(xb, lb) * len(xb)
    assert hist["accuracy"][0] == pytest.approx(correct / n, abs=1e-15)
    assert hist["loss"][0] == pytest.approx(losses / n, rel=1e-12)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-12, atol=1e-14)


def test_validation_split_takes_the_last_rows_before_shuffling(rng):
    n = 103
    x = rng.normal(size=(n, 3))
    y = rng.normal(size=(n, 1))
    split = int(np.floor(n * (1 - 0.25)))
    a = fd.Sequential([fd.Dense(1, input_dim=3)], dtype="float64", seed=1)
    b = fd.Sequential([fd.Dense(1, input_dim=3)], dtype="float64", seed=1)
    for m in (a, b):
        m.compile(loss="mse", metrics=["mae"])
    ha = a.fit(x, y, epochs=3, validation_split=0.25, verbose=0).history
    hb = b.fit(x[:split], y[:split], epochs=3, validation_data=(x[split:], y[split:]),
               verbose=0).history
    assert list(ha) == ["loss", "mae", "val_loss", "val_mae"]
    for key in ha:
        np.testing.assert_allclose(ha[key], hb[key], rtol=1e-13)
    with pytest.raises(ValueError, match="too few"):
        a.fit(x[:1], y[:1], validation_split=0.1, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        a.fit(x, y, validation_split=1.0, verbose=0)


def test_class_weight_is_sample_weight_of_the_class(rng):
    n, k = 60, 3
    x = rng.normal(size=(n, 4))
    labels = rng.integers(0, k, size=n)
    cw = {0: 0.5, 2: 3.0}
    sw = np.array([cw.get(int(c), 1.0) for c in labels])
    models = [fd.Sequential([fd.Dense(k, activation="softmax", input_dim=4)],
                            dtype="float64", seed=5) for _ in range(2)]
    for m in models:
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    h1 = models[0].fit(x, labels, epochs=2, class_weight=cw, verbose=0).history
    h2 = models[1].fit(x, labels, epochs=2, sample_weight=sw, verbose=0).history
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-13)
    with pytest.raises(ValueError, match="at the same time"):
        models[0].fit(x, labels, class_weight=cw, sample_weight=sw, verbose=0)


def test_regularizers_add_their_penalty(rng):
    x = rng.normal(size=(20, 3))
    y = rng.normal(size=(20, 2))
    plain = fd.Sequential([fd.Dense(2, input_dim=3)], dtype="float64", seed=2)
    reg = fd.Sequential([fd.Dense(2, input_dim=3, kernel_regularizer=fd.regularizers.L1L2(0.1, 0.2),
                                  bias_regularizer=fd.regularizers.L1(0.3))],
                        dtype="float64", seed=2)
    b = np.array([0.5, -0.25])
    W = plain.get_weights()[0]
    for m in (plain, reg):
        m.set_weights([W, b])
        m.compile(loss="mse")
    penalty = 0.1 * np.abs(W).sum() + 0.2 * (W ** 2).sum() + 0.3 * np.abs(b).sum()
    assert reg.evaluate(x, y) == pytest.approx(plain.evaluate(x, y) + penalty, rel=1e-13)
    gp, gr = plain.compute_gradients(x, y)[1], reg.compute_gradients(x, y)[1]
    np.testing.assert_allclose(gr[0], gp[0] + 0.1 * np.sign(W) + 0.4 * W, rtol=1e-13)
    np.testing.assert_allclose(gr[1], gp[1] + 0.3 * np.sign(b), rtol=1e-13)


@pytest.mark.parametrize("make, message", [
    (lambda: fd.Sequential([fd.Dense(4, activation="softmax", input_dim=3), fd.Dense(2)]),
     "only the last layer"),
    (lambda: fd.Sequential([fd.Dense(1, activation="softmax", input_dim=3)]).predict(
        np.zeros((1, 3))), "at least 2 units"),
    (lambda: _compiled("linear", 3, "categorical_crossentropy"), "not a probability"),
    (lambda: _compiled("relu", 1, "binary_crossentropy"), "not a probability"),
    (lambda: _compiled("softmax", 3, fd.losses.CategoricalCrossentropy(from_logits=True)),
     "needs a linear output"),
    (lambda: _compiled("sigmoid", 1, "categorical_crossentropy"), "softmax"),
    (lambda: _compiled("softmax", 3, "mse", metrics=["sparse_categorical_accuracy"]),
     "class labels"),
    (lambda: _compiled("softmax", 3, "sparse_categorical_crossentropy", metrics=["mae"]),
     "class labels"),
    (lambda: _compiled("softmax", 3, "mse", metrics=["f1"]), "unknown metric"),
])
def test_bad_vocabulary_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def _compiled(output, k, loss, metrics=None):
    model = fd.Sequential([fd.Dense(k, activation=output, input_dim=3)])
    model.compile(loss=loss, metrics=metrics)
    return model


@pytest.mark.parametrize("labels, message", [
    (np.array([0, 1, 3, 1]), "outside"),
    (np.array([0, 1, -1, 1]), "outside"),
    (np.array([0.0, 1.5, 2, 1]), "non-integer"),
    (np.array([0.0, np.nan, 2, 1]), "NaN"),
    (np.array(["a", "b", "a", "b"]), "integer class labels"),
    (np.eye(3)[[0, 1, 2, 1]], "one class label per sample"),
])
def test_bad_labels_are_refused_before_any_weight_changes(labels, message, rng):
    model = _compiled("softmax", 3, "sparse_categorical_crossentropy")
    before = model.get_weights()
    x = rng.normal(size=(4, 3))
    for call in (lambda: model.fit(x, labels, verbose=0), lambda: model.evaluate(x, labels),
                 lambda: model.train_on_batch(x, labels)):
        with pytest.raises((ValueError, TypeError), match=message):
            call()
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == 0


def test_bce_targets_outside_unit_interval_are_refused(rng):
    model = _compiled("sigmoid", 1, "binary_crossentropy")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.fit(rng.normal(size=(4, 3)), np.array([0, 1, 2, 1]), verbose=0)


def test_float32_stays_float32_and_digits_learn():
    from fastdense.datasets import load_digits, train_test_split
    X, y = load_digits()
    X = (X / 16.0).astype(np.float32)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, seed=0)
    model = fd.Sequential([fd.Dense(64, activation="relu", input_dim=64),
                           fd.Dense(64, activation="relu"),
                           fd.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer=fd.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    hist = model.fit(X_tr, y_tr, epochs=30, batch_size=32, validation_split=0.1, verbose=0)
    p = model.predict(X_te)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    acc = np.mean(p.argmax(1) == y_te)
    assert acc >= 0.96
    assert hist.history["val_accuracy"][-1] > 0.9
    loss, acc_eval = model.evaluate(X_te, y_te)
    assert acc_eval == pytest.approx(acc, abs=1e-12)


@pytest.mark.parametrize("isa", ["base", "avx2", "avx512"])
@pytest.mark.parametrize("case", range(len(losses_and_outputs())))
def test_gradients_and_losses_equal_the_reference(case, isa):
    """The compiled model against the NumPy reference (fastdense.reference), float64, the
    same weights: loss, every gradient and the metrics to 1e-9 relative."""
    from fastdense import reference
    loss, output = losses_and_outputs()[case]
    rng = np.random.default_rng(2000 + case)
    previous = _dense.get_isa()
    _dense.set_isa(isa)
    try:
        for hidden in HIDDEN:
            k = int(rng.integers(2, 6)) if output.name == "softmax" or loss.sparse or \
                loss.name == "categorical_crossentropy" else int(rng.integers(1, 5))
            model, n_in = build(rng, hidden, output, k, regularize=bool(rng.integers(2)))
            ref = reference.Sequential([fd.Dense.from_config(layer.get_config())
                                        for layer in model.layers], dtype="float64")
            ref.set_weights(model.get_weights())
            metrics = ["accuracy"] if loss.name in losses.CROSSENTROPIES else ["mae", "mse"]
            model.compile(optimizer="sgd", loss=loss, metrics=metrics)
            ref.compile(optimizer="sgd", loss=loss, metrics=metrics)
            for n in (1, 6, 40):
                x = rng.normal(size=(n, n_in))
                y = targets(loss, rng, n, k)
                sw = rng.random(n) * 2 if rng.integers(2) else None
                lm, gm = model.compute_gradients(x, y, sample_weight=sw)
                lr_, gr = ref.compute_gradients(x, y, sample_weight=sw)
                assert lm == pytest.approx(lr_, rel=1e-9)
                scale = max(np.max(np.abs(g)) for g in gr)
                for a, b in zip(gm, gr):
                    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * scale)
                np.testing.assert_allclose(model.evaluate(x, y, sample_weight=sw),
                                           ref.evaluate(x, y, sample_weight=sw), rtol=1e-9)
    finally:
        _dense.set_isa(previous)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 2e-4)])
def test_classification_fit_follows_the_reference(dtype, tol, rng):
    """fit with metrics, a validation split and class weights: the same history and weights
    as the NumPy reference from the same seed (same initial weights, same shuffles)."""
    from fastdense import reference
    x = rng.normal(size=(230, 6))
    labels = rng.integers(0, 4, size=230)
    runs = []
    for module in (fd, reference):
        model = module.Sequential([fd.Dense(12, activation="gelu", input_dim=6),
                                   fd.Dense(9, activation="elu"),
                                   fd.Dense(4, activation="softmax")], dtype=dtype, seed=7)
        model.compile(optimizer=(fd.optimizers if module is fd else reference).Adam(0.01),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        hist = model.fit(x, labels, epochs=4, batch_size=16, validation_split=0.2,
                         class_weight={1: 2.0, 3: 0.5}, verbose=0).history
        runs.append((hist, model.get_weights()))
    (h1, w1), (h2, w2) = runs
    assert list(h1) == list(h2) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    for key in h1:
        # (in float32 one prediction near a tie may round to the other class: 1/184)
        atol = 0.011 if dtype == "float32" and "accuracy" in key else tol
        np.testing.assert_allclose(h1[key], h2[key], rtol=tol, atol=atol)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
