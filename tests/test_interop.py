"""fastdense.interop: ONNX export run by onnxruntime, PyTorch and Keras 3 weights in and out.

Every test skips when its peer (onnx + onnxruntime, torch, keras) is not installed, and a
network whose activation the compiled kernels do not build yet skips with their message.

Agreement between two implementations is asserted as |a − e| ≤ rtol·(|e| + max|e|): rtol
of each value, plus rtol of the output's largest magnitude as the floor for values that
are sums cancelling to near zero (which keep the rounding of their terms, not of their
size): rtol = 1e-6 in float32, 1e-12 in float64.
"""
import argparse
import json
import os
import sys

import numpy as np
import pytest

import fastdense as fd
from fastdense import interop
from fastdense.activations import Activation

# Keras's torch back end converts its tensors with np.array(x) (NumPy 2's copy= warning)
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

RTOL = {np.float32: 1e-6, np.float64: 1e-12}
DTYPES = [np.float32, np.float64]
ACTIVATIONS = [
    Activation("linear"), Activation("relu"), Activation("leaky_relu"),
    Activation("leaky_relu", negative_slope=0.05), Activation("elu"),
    Activation("elu", alpha=0.5), Activation("tanh"), Activation("sigmoid"),
    Activation("softplus"), Activation("gelu"), Activation("gelu", approximate=True),
    Activation("softmax"),
]


def act_id(act):
    extra = "".join(f"-{v}" for k, v in act.params.items()
                    if k != "approximate" or v)
    return act.name + ("-tanh" if act.params.get("approximate") else
                       extra.replace("-False", ""))


def dtype_id(dt):
    return np.dtype(dt).name


def built(layers, dtype, seed=0):
    """A built model; skips while the compiled kernels lack one of its activations."""
    try:
        model = fd.Sequential(layers, dtype=dtype, seed=seed)
        model.predict(np.zeros((1, model.input_dim)))
    except Exception as exc:                  # noqa: BLE001  (whatever type it is raised as)
        if "is not compiled yet" in str(exc):
            pytest.skip(str(exc))
        raise
    return model


def network(act, dtype, seed=0):
    """5 → 16 → 12 → 4 with `act` on every layer (softmax: tanh hidden layers), Glorot
    weights from the seed and random biases, so that every bias matters."""
    hidden = act if act.name != "softmax" else Activation("tanh")
    model = built([fd.Dense(16, activation=hidden, input_dim=5),
                   fd.Dense(12, activation=hidden), fd.Dense(4, activation=act)],
                  dtype, seed)
    rng = np.random.default_rng(seed + 100)
    model.set_weights([w if w.ndim == 2 else rng.normal(0, 0.5, w.shape)
                       for w in model.get_weights()])
    return model


def inputs(n, dtype, seed=1, width=5):
    return np.random.default_rng(seed).normal(size=(n, width)).astype(dtype)


def assert_agrees(actual, expected, rtol, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, what
    assert np.all(np.isfinite(actual)), what
    bound = rtol * (np.abs(expected) + np.abs(expected).max())
    err = np.abs(actual.astype(np.float64) - expected)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), (f"{what}: |difference| {err[worst]:.3g} > bound "
                                  f"{bound[worst]:.3g} at {worst} (actual {actual[worst]!r}, "
                                  f"expected {expected[worst]!r})")


# ------------------------------------------------------------------------------ ONNX
def onnx_session(proto):
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


@pytest.fixture
def onnx():
    pytest.importorskip("onnxruntime")
    return pytest.importorskip("onnx")


@pytest.mark.parametrize("rows", [1, 1000])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=act_id)
def test_onnxruntime_computes_predict(onnx, act, dtype, rows):
    model = network(act, dtype)
    proto = interop.to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    assert [o.version for o in proto.opset_import] == [13]
    assert proto.ir_version == 7
    (inp,), (out,) = proto.graph.input, proto.graph.output
    elem = onnx.TensorProto.FLOAT if dtype == np.float32 else onnx.TensorProto.DOUBLE
    for value, width in ((inp, 5), (out, 4)):
        assert value.type.tensor_type.elem_type == elem
        batch, features = value.type.tensor_type.shape.dim
        assert batch.dim_param and not batch.HasField("dim_value")     # dynamic batch
        assert features.dim_value == width
    x = inputs(rows, dtype)
    (y,) = onnx_session(proto).run(None, {"input": x})
    assert y.dtype == dtype
    assert_agrees(y, model.predict(x), RTOL[dtype], f"{act} {np.dtype(dtype).name}")


def pre_activations(dtype):
    """Every range an activation has: tiny, moderate, past exp's overflow, huge."""
    tiny = np.geomspace(1e-9, 1e-2, 200)
    z = np.concatenate([np.linspace(-40, 40, 4001), tiny, -tiny, [0.0],
                        [-1e30, -1e4, -200, -104, -89, -30, 30, 89, 104, 200, 1e4, 1e30]])
    return z.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=act_id)
def test_each_exported_activation_matches_the_kernels_elementwise(onnx, act, dtype):
    # one layer passing z through unchanged (W = 1, b = 0): the graph's activation against
    # the kernel's on every range, to a few units in the last place of each value (GELU's
    # 1 + erf cancels for negative z: there of z), and finite where the kernel is
    # (softplus and sigmoid on large inputs: no overflow)
    z = pre_activations(dtype)
    if act.name == "softmax":
        model = built([fd.Dense(3, activation=act, input_dim=1)], dtype)
        model.set_weights([[[1.0, 0.5, -1.0]], np.zeros(3)])
        z = z[np.abs(z) < 1e4]
    else:
        model = built([fd.Dense(1, activation=act, input_dim=1)], dtype)
        model.set_weights([[[1.0]], [0.0]])
    x = z[:, None]
    expected = model.predict(x)
    (y,) = onnx_session(interop.to_onnx(model)).run(None, {"input": x})
    assert np.all(np.isfinite(expected))
    assert np.all(np.isfinite(y))
    eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
    scale = np.abs(expected) + (np.abs(x) if act.name == "gelu" else 0)
    err = np.abs(y.astype(np.float64) - expected)
    bad = err > 8 * eps * scale + tiny
    assert not bad.any(), (x[bad.any(axis=1), 0][:5], y[bad][:5], expected[bad][:5])


def test_float64_gelu_export_matches_scipy(onnx):
    # the float64 erf of the export (a Chebyshev erfc) against SciPy's, not the kernels'
    from scipy.special import erfc

    model = built([fd.Dense(1, activation="gelu", input_dim=1)], np.float64)
    model.set_weights([[[1.0]], [0.0]])
    z = np.concatenate([np.linspace(-12, 12, 48001), np.geomspace(1e-12, 1, 300),
                        -np.geomspace(1e-12, 1, 300)])
    (y,) = onnx_session(interop.to_onnx(model)).run(None, {"input": z[:, None]})
    exact = 0.5 * z * erfc(-z / np.sqrt(2))
    err = np.abs(y[:, 0] - exact)
    assert np.all(err <= 4 * np.finfo(np.float64).eps * (np.abs(exact) + np.abs(z)))
    # past |z/√2| = 6, erf is ±1 in float64: the kernel's values, exactly
    assert np.array_equal(y[np.abs(z) > 6 * np.sqrt(2) + 1e-9, 0],
                          model.predict(z[:, None])[np.abs(z) > 6 * np.sqrt(2) + 1e-9, 0])


def test_erfc_tables_are_the_generators(capsys):
    # tools/erfc_coefficients.py (mpmath, 40 digits) prints exactly the module's tables
    import importlib.util
    from pathlib import Path

    from fastdense.interop import onnx_export

    pytest.importorskip("mpmath")
    tool = Path(__file__).resolve().parent.parent / "tools" / "erfc_coefficients.py"
    if not tool.is_file():
        pytest.skip("tools/ is not beside this copy of the tests")
    spec = importlib.util.spec_from_file_location("erfc_coefficients", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main()
    tables = {}
    exec(capsys.readouterr().out, {}, tables)      # two tuple literals and a comment
    assert tables["ERFC_0_2"] == onnx_export.ERFC_0_2
    assert tables["ERFCX_2_6"] == onnx_export.ERFCX_2_6


def test_export_onnx_writes_a_file_in_the_asked_opset(onnx, tmp_path):
    model = network(Activation("relu"), np.float32)
    path = tmp_path / "model.onnx"
    returned = interop.export_onnx(model, path, opset=17)
    loaded = onnx.load(str(path))
    assert loaded.SerializeToString() == returned.SerializeToString()
    assert [o.version for o in loaded.opset_import] == [17]
    onnx.checker.check_model(loaded)
    x = inputs(7, np.float32)
    assert_agrees(onnx_session(loaded).run(None, {"input": x})[0], model.predict(x), 1e-6)
    for bad in (12, 10**6, True, 13.0, "13"):
        with pytest.raises(ValueError, match="opset must be an integer from 13"):
            interop.to_onnx(model, opset=bad)


def test_onnx_export_needs_a_built_model(onnx):
    with pytest.raises(ValueError, match="not built"):
        interop.to_onnx(fd.Sequential([fd.Dense(3), fd.Dense(1)]))
    with pytest.raises(TypeError, match="fastdense.Sequential"):
        interop.to_onnx("model.npz")


def test_onnx_scaling_folds_standardisation_into_the_graph(onnx):
    model = built([fd.Dense(8, activation="tanh", input_dim=5), fd.Dense(1)], np.float64)
    rng = np.random.default_rng(5)
    scaling = {"x_mean": rng.normal(size=5), "x_std": rng.uniform(0.5, 2, 5),
               "y_mean": [3.0], "y_std": [7.0]}
    x = inputs(50, np.float64) * 3 + 1
    (y,) = onnx_session(interop.to_onnx(model, scaling=scaling)).run(None, {"input": x})
    expected = model.predict((x - scaling["x_mean"]) / scaling["x_std"]) * 7.0 + 3.0
    assert_agrees(y, expected, 1e-12)
    for key, value, message in (("x_std", np.zeros(5), "non-zero"),
                                ("y_mean", [1.0, 2.0], "2 values, expected 1")):
        with pytest.raises(ValueError, match=message):
            interop.to_onnx(model, scaling={**scaling, key: value})
    with pytest.raises(ValueError, match="y_std is missing"):
        interop.to_onnx(model, scaling={k: v for k, v in scaling.items() if k != "y_std"})


def export_args(*argv):
    parser = argparse.ArgumentParser(prog="fastdense")
    interop.add_export_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["export", *argv])


def test_export_command_writes_onnx_with_the_training_scaling(onnx, tmp_path, capsys):
    from fastdense.cli import CommandError

    model = built([fd.Dense(6, activation="relu", input_dim=3), fd.Dense(1)], np.float32)
    model.save(tmp_path / "model.npz")
    x = inputs(20, np.float32, width=3) * 10 + 50
    out = tmp_path / "bare.onnx"
    args = export_args(str(tmp_path / "model.npz"), str(out))
    assert args.run is interop.export_main
    assert args.run(args) == 0
    assert "wrote" in capsys.readouterr().out
    (y,) = onnx_session(onnx.load(str(out))).run(None, {"input": x})
    assert_agrees(y, model.predict(x), 1e-6)

    stats = {"format": "fastdense-scaling", "version": 1, "features": ["a", "b", "c"],
             "target": "t", "x_mean": [50.0, 49.0, 51.0], "x_std": [10.0, 9.0, 11.0],
             "y_mean": [100.0], "y_std": [20.0]}
    (tmp_path / "model.scaling.json").write_text(json.dumps(stats))
    assert interop.export_main(export_args(str(tmp_path / "model.npz"), str(out),
                                           "--opset", "15")) == 0
    assert "standardisation" in capsys.readouterr().out
    scaled = onnx.load(str(out))
    assert [o.version for o in scaled.opset_import] == [15]
    (y,) = onnx_session(scaled).run(None, {"input": x})
    expected = model.predict((x - np.float32(stats["x_mean"])) / np.float32(stats["x_std"]))
    assert_agrees(y, expected * 20 + 100, 1e-6)
    assert interop.export_main(export_args(str(tmp_path / "model.npz"), str(out),
                                           "--no-scaling")) == 0
    assert_agrees(onnx_session(onnx.load(str(out))).run(None, {"input": x})[0],
                  model.predict(x), 1e-6)

    with pytest.raises(CommandError, match="no such file"):
        interop.export_main(export_args(str(tmp_path / "missing.npz"), str(out)))
    with pytest.raises(CommandError, match="opset"):
        interop.export_main(export_args(str(tmp_path / "model.npz"), str(out), "--opset",
                                        "9"))
    with pytest.raises(CommandError, match="cannot write"):
        interop.export_main(export_args(str(tmp_path / "model.npz"),
                                        str(tmp_path / "no" / "such" / "dir.onnx")))


# ------------------------------------------------------------------------------ torch
@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def torch_forward(torch, module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=act_id)
def test_torch_round_trip_keeps_predictions(torch, act, dtype):
    model = network(act, dtype)
    module = interop.to_torch(model)
    linears = [m for m in module if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3
    weights = model.get_weights()
    for i, linear in enumerate(linears):
        assert linear.weight.dtype == (torch.float32 if dtype == np.float32 else torch.float64)
        assert np.array_equal(linear.weight.detach().numpy(), weights[2 * i].T)
        assert np.array_equal(linear.bias.detach().numpy(), weights[2 * i + 1])
    x = inputs(200, dtype)
    assert_agrees(torch_forward(torch, module, x), model.predict(x), RTOL[dtype])
    back = interop.from_torch(module)
    assert back.dtype == model.dtype
    assert [layer.activation_spec for layer in back.layers] == \
        [layer.activation_spec for layer in model.layers]
    for a, b in zip(back.get_weights(), weights):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(back.predict(x), model.predict(x))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=act_id)
def test_torch_autograd_gives_the_same_gradients(torch, act, dtype):
    model = network(act, dtype, seed=3)
    module = interop.to_torch(model)
    rng = np.random.default_rng(4)
    x, y = inputs(64, dtype, seed=4), rng.normal(size=(64, 4)).astype(dtype)
    loss, grads = model.compute_gradients(x, y)
    torch_loss = torch.nn.functional.mse_loss(module(torch.from_numpy(x)), torch.from_numpy(y))
    torch_loss.backward()
    expected = []
    for m in module:
        if isinstance(m, torch.nn.Linear):
            expected += [m.weight.grad.numpy().T, m.bias.grad.numpy()]
    rtol = 2e-6 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(torch_loss.item(), rel=rtol)
    assert len(grads) == len(expected)
    for i, (g, e) in enumerate(zip(grads, expected)):
        assert_agrees(g, e, rtol, f"gradient {i}")


def test_from_torch_takes_a_module_built_in_torch(torch):
    nn = torch.nn
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(6, 9), nn.LeakyReLU(0.01), nn.Identity(),
                           nn.Linear(9, 8, bias=False), nn.ELU(alpha=0.7),
                           nn.Linear(8, 7), nn.Softplus(), nn.Linear(7, 6), nn.GELU("tanh"),
                           nn.Linear(6, 5), nn.Sigmoid(), nn.Linear(5, 4), nn.Tanh(),
                           nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 4), nn.ReLU(),
                           nn.Linear(4, 3), nn.Softmax(dim=1))
    model = interop.from_torch(module)
    assert model.dtype == np.float32
    specs = [layer.activation_spec for layer in model.layers]
    assert specs == [Activation("leaky_relu", negative_slope=0.01),
                     Activation("elu", alpha=0.7), Activation("softplus"),
                     Activation("gelu", approximate=True), Activation("sigmoid"),
                     Activation("tanh"), Activation("gelu"), Activation("relu"),
                     Activation("softmax")]
    assert not model.get_weights()[3].any()           # the Linear without bias
    x = inputs(100, np.float32, width=6) * 3
    assert_agrees(model.predict(x), torch_forward(torch, module, x), 1e-6)
    as64 = interop.from_torch(module, dtype="float64")
    assert as64.dtype == np.float64
    assert np.array_equal(as64.get_weights()[0], module[0].weight.detach().numpy().T)


def test_from_torch_converts_half_weights_only_when_asked(torch):
    module = torch.nn.Sequential(torch.nn.Linear(3, 2)).to(torch.float16)
    with pytest.raises(ValueError, match="float16 weights.*pass dtype"):
        interop.from_torch(module)
    model = interop.from_torch(module, dtype="float32")
    assert np.array_equal(model.get_weights()[0],
                          module[0].weight.detach().float().numpy().T)


@pytest.mark.parametrize("build, message", [
    (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.1)),
     r"module 1 \(Dropout.*not supported"),
    (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.SiLU()), r"module 1 \(SiLU"),
    (lambda nn: nn.Sequential(nn.ReLU(), nn.Linear(3, 4)), r"module 0 \(ReLU.*before any"),
    (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Tanh()),
     r"module 2 \(Tanh.*one activation"),
    (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=-1), nn.Linear(4, 2)),
     r"module 2 .*follows the Softmax at module 1"),
    (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=0)), r"module 1 .*dim=0"),
    (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Softplus(beta=2)), r"module 1 .*beta=2"),
    (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Softplus(threshold=5)),
     r"module 1 .*threshold=5"),
    (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(-0.5)),
     r"module 1 .*negative_slope"),
    (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU())),
     r"module 1 \(Sequential"),
    (lambda nn: nn.Sequential(nn.Identity()), "no nn.Linear"),
])
def test_from_torch_names_what_it_cannot_take(torch, build, message):
    with pytest.raises(ValueError, match=message):
        interop.from_torch(build(torch.nn))


def test_from_torch_takes_only_sequential(torch):
    with pytest.raises(TypeError, match="torch.nn.Sequential"):
        interop.from_torch(torch.nn.Linear(3, 2))


# ------------------------------------------------------------------------------ Keras
@pytest.fixture
def keras():
    pytest.importorskip("torch")
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "torch"        # before Keras's first import
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"Keras was imported with the {keras.backend.backend()} back end")
    return keras


def keras_forward(keras, keras_model, x):
    return keras.ops.convert_to_numpy(keras_model(x))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=act_id)
def test_keras_round_trip_keeps_predictions(keras, act, dtype):
    model = network(act, dtype)
    keras_model = interop.to_keras(model)
    dense = [layer for layer in keras_model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == 3
    weights = model.get_weights()
    for i, layer in enumerate(dense):
        kernel, bias = layer.get_weights()
        assert kernel.dtype == dtype
        assert np.array_equal(kernel, weights[2 * i]) and np.array_equal(bias, weights[2 * i + 1])
    x = inputs(200, dtype)
    # Keras 3's type promotion runs float64 matrix products in float32 on back ends other
    # than TensorFlow: its outputs are float32-accurate in either dtype
    assert_agrees(keras_forward(keras, keras_model, x), model.predict(x), 1e-6)
    back = interop.from_keras(keras_model)
    assert back.dtype == model.dtype
    assert [layer.activation_spec for layer in back.layers] == \
        [layer.activation_spec for layer in model.layers]
    for a, b in zip(back.get_weights(), weights):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(back.predict(x), model.predict(x))


def test_from_keras_takes_a_model_built_in_keras(keras):
    L = keras.layers
    keras.utils.set_random_seed(0)
    keras_model = keras.Sequential([
        keras.Input(shape=(6,)), L.Dense(9, use_bias=False), L.LeakyReLU(negative_slope=0.3),
        L.Dense(8, activation="elu", kernel_regularizer=keras.regularizers.L1L2(0.01, 0.02)),
        L.Dense(7), L.ELU(alpha=0.4), L.Dense(6, activation="gelu", name="g"),
        L.Dense(5), L.Activation("softplus"), L.Dense(5, activation="leaky_relu"),
        L.Dense(4, bias_regularizer="l2"), L.ReLU(), L.Dense(4, activation="tanh"),
        L.Dense(3), L.Softmax()])
    for layer in keras_model.layers:       # non-zero biases, so that they are checked
        if getattr(layer, "use_bias", False):
            layer.bias.assign(np.linspace(-0.5, 0.5, layer.units).astype(np.float32))
    model = interop.from_keras(keras_model)
    assert model.dtype == np.float32
    assert [layer.activation_spec for layer in model.layers] == [
        Activation("leaky_relu", negative_slope=0.3), Activation("elu"),
        Activation("elu", alpha=0.4), Activation("gelu"), Activation("softplus"),
        Activation("leaky_relu"), Activation("relu"), Activation("tanh"),
        Activation("softmax")]
    assert model.layers[3].name == "g"
    assert model.layers[1].kernel_regularizer == fd.regularizers.L1L2(l1=0.01, l2=0.02)
    assert model.layers[6].bias_regularizer.l2 == pytest.approx(0.01)
    assert not model.get_weights()[1].any()            # use_bias=False
    x = inputs(100, np.float32, width=6) * 3
    assert_agrees(model.predict(x), keras_forward(keras, keras_model, x), 1e-6)


def test_to_keras_saves_and_loads_with_fastdense_objects(keras, tmp_path):
    model = built([fd.Dense(5, activation=Activation("gelu", approximate=True), input_dim=3),
                   fd.Dense(4, activation=Activation("elu", alpha=0.3)),
                   fd.Dense(2, activation="softmax")], np.float32)
    path = tmp_path / "model.keras"
    interop.to_keras(model).save(path)
    loaded = keras.saving.load_model(path, custom_objects=interop.keras_custom_objects())
    x = inputs(30, np.float32, width=3)
    assert_agrees(keras_forward(keras, loaded, x), model.predict(x), 1e-6)
    assert [layer.activation_spec for layer in interop.from_keras(loaded).layers] == \
        [layer.activation_spec for layer in model.layers]


@pytest.mark.parametrize("build, message", [
    (lambda k: [k.layers.Dense(4, activation="selu")], r"layer 0 \(Dense .*'selu'"),
    (lambda k: [k.layers.Dense(4), k.layers.Dropout(0.1)], r"layer 1 \(Dropout .*not supported"),
    (lambda k: [k.layers.Dense(4), k.layers.BatchNormalization()],
     r"layer 1 \(BatchNormalization"),
    (lambda k: [k.layers.Dense(4, activation="relu"), k.layers.Activation("tanh")],
     r"layer 1 \(Activation .*one activation"),
    (lambda k: [k.layers.Dense(4, activation="softmax"), k.layers.Dense(2)],
     r"layer 1 .*follows the softmax"),
    (lambda k: [k.layers.Dense(4), k.layers.ReLU(max_value=6.0)], r"layer 1 \(ReLU .*max_value"),
    (lambda k: [k.layers.Dense(4, kernel_constraint="non_neg")], r"kernel_constraint"),
    (lambda k: [k.layers.Dense(4, activity_regularizer="l2")], r"activity_regularizer"),
    (lambda k: [k.layers.Dense(4, kernel_regularizer=k.regularizers.OrthogonalRegularizer())],
     r"OrthogonalRegularizer"),
    (lambda k: [k.layers.Dense(4, dtype="mixed_float16")], r"mixed precision"),
])
def test_from_keras_names_what_it_cannot_take(keras, build, message):
    keras_model = keras.Sequential([keras.Input(shape=(3,)), *build(keras)])
    with pytest.raises(ValueError, match=message):
        interop.from_keras(keras_model)


def test_from_keras_needs_a_built_sequential(keras):
    with pytest.raises(ValueError, match="not built"):
        interop.from_keras(keras.Sequential([keras.layers.Dense(2)]))
    inp = keras.Input(shape=(3,))
    functional = keras.Model(inp, keras.layers.Dense(2)(inp))
    with pytest.raises(TypeError, match="keras.Sequential"):
        interop.from_keras(functional)


# ------------------------------------------------------------------------------ packaging
def test_importing_interop_or_distributed_imports_no_peer():
    import subprocess

    code = ("import sys, fastdense, fastdense.interop, fastdense.distributed; "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'torch', 'keras', 'mpi4py') "
            "if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(fd.__file__)), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
