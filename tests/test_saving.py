"""model.save / fd.load_model / pickle: one checked .npz file, resuming training exactly."""
import copy
import json
import os
import pathlib
import pickle

import numpy as np
import pytest

import fastdense as fd
from fastdense import saving
from conftest import make_model

OPTIMIZERS = {
    "sgd_momentum": lambda: fd.optimizers.SGD(learning_rate=0.01, momentum=0.9),
    "adam": lambda: fd.optimizers.Adam(learning_rate=0.01),
    "nesterov_schedule": lambda: fd.optimizers.SGD(
        learning_rate=fd.optimizers.schedules.ExponentialDecay(0.02, 5, 0.9),
        momentum=0.8, nesterov=True, clipnorm=1.0),
}


def data(seed=0, n=45, d=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    return x, np.sin(x).sum(axis=1, keepdims=True)


def trained(optimizer="adam", dtype="float32", epochs=2, seed=3):
    model = make_model([4, 6, 5, 1], dtype=dtype, seed=seed)
    model.compile(optimizer=OPTIMIZERS[optimizer](), loss="mse")
    if epochs:
        x, y = data()
        model.fit(x, y, epochs=epochs, batch_size=8, verbose=0)
    return model


def assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for u, w in zip(wa, wb):
        assert u.dtype == w.dtype
        np.testing.assert_array_equal(u, w)


def entries(path):
    """The arrays of a saved file and its metadata, for crafting variants of it."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return arrays, json.loads(arrays["metadata"].tobytes())


def write(path, arrays, meta=None):
    arrays = dict(arrays)
    if meta is not None:
        arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.npz"
    trained().save(path)
    return path


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_fit_save_load_fit_equals_fitting_straight_through(tmp_path, optimizer, dtype):
    x, y = data()
    val = data(seed=1, n=10)
    straight = trained(optimizer, dtype, epochs=0)
    h6 = straight.fit(x, y, epochs=6, batch_size=8, validation_data=val, verbose=0)

    first = trained(optimizer, dtype, epochs=0)
    first.fit(x, y, epochs=3, batch_size=8, validation_data=val, verbose=0)
    first.save(tmp_path / "m.npz")
    resumed = fd.load_model(tmp_path / "m.npz")
    h3 = resumed.fit(x, y, epochs=3, batch_size=8, validation_data=val, verbose=0)

    assert_same_weights(resumed, straight)
    assert resumed.optimizer.iterations == straight.optimizer.iterations == 36
    assert h3.history["loss"] == h6.history["loss"][3:]
    assert h3.history["val_loss"] == h6.history["val_loss"][3:]
    for a, b in zip(resumed.optimizer.variables, straight.optimizer.variables):
        np.testing.assert_array_equal(a, b)


def test_a_loaded_model_keeps_architecture_dtype_seed_name_and_compile_settings(saved):
    model = trained()
    model.name = None
    loaded = fd.load_model(saved)
    assert repr(loaded) == repr(model)
    assert loaded.dtype == np.float32 and loaded.name is None
    assert loaded._rng.bit_generator.seed_seq.entropy == 3
    assert loaded._rng.bit_generator.state == model._rng.bit_generator.state
    assert loaded.loss == "mse"
    assert type(loaded.optimizer) is fd.optimizers.Adam
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 12
    x, _ = data(seed=5)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_a_schedule_is_saved_by_its_config(tmp_path):
    model = trained("nesterov_schedule")
    model.save(tmp_path / "m")
    lr = fd.load_model(tmp_path / "m").optimizer.learning_rate
    assert lr == model.optimizer.learning_rate
    assert lr is not model.optimizer.learning_rate


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_uncompiled_model_saves_and_loads_without_an_optimizer(tmp_path, dtype):
    model = make_model([3, 4, 2], dtype=dtype, seed=7)
    model.save(tmp_path / "m.npz")
    loaded = fd.load_model(tmp_path / "m.npz")
    assert loaded.optimizer is None and loaded.loss is None
    assert loaded.dtype == dtype
    assert_same_weights(loaded, model)


def test_an_unbuilt_model_saves_and_is_built_alike_after_loading(tmp_path):
    x, y = data()
    model = fd.Sequential([fd.Dense(5, "relu"), fd.Dense(1)], seed=11)
    assert not model.built
    model.save(tmp_path / "m.npz")
    loaded = fd.load_model(tmp_path / "m.npz")
    assert not loaded.built
    for m in (model, loaded):
        m.compile("sgd", "mse")
        m.fit(x, y, epochs=2, verbose=0)
    assert_same_weights(loaded, model)


def test_a_model_built_from_the_data_width_keeps_that_width(tmp_path):
    x, y = data()
    model = fd.Sequential([fd.Dense(5, "relu"), fd.Dense(1)], seed=2)
    model.compile("adam", "mse")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = fd.load_model(tmp_path / "m.npz")
    assert loaded.input_dim == 4
    assert_same_weights(loaded, model)


def test_optimizer_state_from_standalone_apply_is_kept(tmp_path):
    model = trained("adam")
    p = [np.ones((2, 3)), np.zeros(4)]
    model.optimizer.apply([np.full((2, 3), 0.5), np.ones(4)], p)
    model.save(tmp_path / "m.npz")
    opt = fd.load_model(tmp_path / "m.npz").optimizer
    assert opt.iterations == model.optimizer.iterations
    for a, b in zip(opt.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- the format
def test_the_file_is_a_plain_npz_that_loads_without_pickle(saved):
    model = trained()
    arrays, meta = entries(saved)
    assert sorted(arrays) == sorted(
        ["format_version", "metadata", "weights/W0", "weights/b0", "weights/W1",
         "weights/b1", "weights/W2", "weights/b2", "optimizer/state0", "optimizer/state1"])
    assert arrays["format_version"] == saving.FORMAT_VERSION == 1
    assert meta["format"] == "fastdense.model"
    assert meta["model"]["dtype"] == "float32"
    assert [layer["config"]["units"] for layer in meta["model"]["layers"]] == [6, 5, 1]
    assert meta["compile"]["optimizer"]["class_name"] == "Adam"
    assert meta["compile"]["optimizer"]["iterations"] == 12
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_array_equal(arrays[f"weights/{'Wb'[i % 2]}{i // 2}"], w)


def test_a_path_without_the_npz_suffix_is_used_as_given(tmp_path):
    trained().save(tmp_path / "checkpoint")
    assert os.listdir(tmp_path) == ["checkpoint"]
    fd.load_model(str(tmp_path / "checkpoint"))


def test_str_and_pathlike_paths_are_both_accepted(tmp_path):
    model = trained()
    model.save(str(tmp_path / "a.npz"))
    model.save(pathlib.Path(tmp_path) / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    fd.load_model(pathlib.Path(tmp_path / "a.npz"))


def test_a_path_of_another_type_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="path"):
        trained().save(42)
    with pytest.raises(TypeError, match="path"):
        fd.load_model(None)


def test_a_plain_callable_learning_rate_cannot_be_saved(tmp_path):
    model = make_model([2, 1])
    model.compile(fd.optimizers.SGD(learning_rate=lambda step: 0.01), "mse")
    with pytest.raises(TypeError, match="plain callable"):
        model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_non_finite_weights_cannot_be_saved(tmp_path):
    model = make_model([2, 1])
    model._net.views(model._net.params)[0][0, 0] = np.nan
    with pytest.raises(ValueError, match="W0 contains NaN"):
        model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------- atomic writes
def test_a_failing_fsync_leaves_the_old_file_and_no_temporary(saved, monkeypatch):
    before = saved.read_bytes()

    def broken(fd):
        raise OSError("disk full")

    monkeypatch.setattr(saving.os, "fsync", broken)
    with pytest.raises(OSError, match="disk full"):
        trained(epochs=3).save(saved)
    assert saved.read_bytes() == before
    assert os.listdir(saved.parent) == [saved.name]


def test_a_write_failing_midway_leaves_the_old_file_and_no_temporary(saved, monkeypatch):
    before = saved.read_bytes()
    real = np.lib.format.write_array
    calls = []

    def fail_on_third(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", fail_on_third)
    with pytest.raises(KeyboardInterrupt):
        trained(epochs=3).save(saved)
    monkeypatch.undo()
    assert saved.read_bytes() == before
    assert os.listdir(saved.parent) == [saved.name]
    fd.load_model(saved)


def test_saving_into_a_missing_directory_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError):
        trained().save(tmp_path / "nowhere" / "m.npz")
    assert os.listdir(tmp_path) == []


def test_saving_over_a_file_replaces_it(saved):
    model = trained(epochs=4)
    model.save(saved)
    assert_same_weights(fd.load_model(saved), model)
    assert os.listdir(saved.parent) == [saved.name]


# ---------------------------------------------------------------------- refusals
def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        fd.load_model(tmp_path / "absent.npz")


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    path.write_text("W0 = [[1, 2]]\n")
    with pytest.raises(ValueError, match=r"m\.npz: .*not a zip archive"):
        fd.load_model(path)
    np.save(path.with_suffix(".npy"), np.ones(3))
    with pytest.raises(ValueError, match="not a zip archive"):
        fd.load_model(path.with_suffix(".npy"))


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_a_truncated_file_is_refused(saved, fraction):
    data = saved.read_bytes()
    saved.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(ValueError, match=r"model\.npz: cannot load a fastdense model"):
        fd.load_model(saved)


def test_a_flipped_byte_in_the_weights_fails_the_crc_check(saved):
    data = bytearray(saved.read_bytes())
    w0 = trained().get_weights()[0].tobytes()
    at = bytes(data).find(w0)
    assert at > 0
    data[at + 5] ^= 0x40
    saved.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupted: entry 'weights/W0\.npy' fails its CRC"):
        fd.load_model(saved)


def test_any_flipped_byte_is_refused_or_changes_nothing(saved):
    """Zip does not checksum everything (timestamps, say): a flip there may load, but then
    to exactly the saved model; a flip anywhere else is a ValueError, nothing else."""
    original = saved.read_bytes()
    model = fd.load_model(saved)
    refused = 0
    for at in range(0, len(original), 37):
        data = bytearray(original)
        data[at] ^= 0xFF
        saved.write_bytes(bytes(data))
        try:
            loaded = fd.load_model(saved)
        except ValueError:
            refused += 1
            continue
        assert_same_weights(loaded, model)
        assert loaded.optimizer.get_state()["iterations"] == 12
        for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
            np.testing.assert_array_equal(a, b)
    assert refused > 0


def test_a_foreign_npz_is_not_a_fastdense_model(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, W0=np.ones((4, 6)), b0=np.zeros(6))
    with pytest.raises(ValueError, match=r"foreign\.npz: .*not a fastdense model file"):
        fd.load_model(path)


def test_a_foreign_zip_is_not_a_fastdense_model(tmp_path):
    import zipfile
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="not a fastdense model file"):
        fd.load_model(path)


def test_a_newer_format_version_is_refused(saved):
    arrays, _ = entries(saved)
    arrays["format_version"] = np.array(2, dtype=np.int64)
    write(saved, arrays)
    with pytest.raises(ValueError, match="format version 2, newer .* upgrade fastdense"):
        fd.load_model(saved)


def test_metadata_of_another_format_is_refused(saved):
    arrays, meta = entries(saved)
    meta["format"] = "something.else"
    write(saved, arrays, meta)
    with pytest.raises(ValueError, match="not a fastdense model file"):
        fd.load_model(saved)


def test_metadata_that_is_not_json_is_refused(saved):
    arrays, _ = entries(saved)
    arrays["metadata"] = np.frombuffer(b"{'model': eval('1')}", dtype=np.uint8)
    write(saved, arrays)
    with pytest.raises(ValueError, match="not valid JSON"):
        fd.load_model(saved)


@pytest.mark.parametrize("entry, array, message", [
    ("weights/W0", np.zeros((6, 4), np.float32), r"shape \(6, 4\) .* expected shape \(4, 6\)"),
    ("weights/b1", np.zeros(5, np.float64), "dtype float64; expected .*float32"),
    ("weights/W1", np.zeros((6, 5), np.int32), "dtype int32"),
    ("optimizer/state1", np.zeros(3, np.float32), "'optimizer/state1' has shape"),
])
def test_an_array_of_the_wrong_shape_or_dtype_is_refused(saved, entry, array, message):
    arrays, _ = entries(saved)
    arrays[entry] = array
    write(saved, arrays)
    with pytest.raises(ValueError, match=message):
        fd.load_model(saved)


def test_non_finite_weights_are_refused(saved):
    arrays, _ = entries(saved)
    arrays["weights/b0"] = arrays["weights/b0"].copy()
    arrays["weights/b0"][2] = np.inf
    write(saved, arrays)
    with pytest.raises(ValueError, match="'weights/b0' contains NaN or Inf"):
        fd.load_model(saved)


def test_a_missing_or_an_extra_array_is_refused(saved):
    arrays, _ = entries(saved)
    write(saved, {k: a for k, a in arrays.items() if k != "weights/W2"})
    with pytest.raises(ValueError, match="'weights/W2' is missing"):
        fd.load_model(saved)
    write(saved, {**arrays, "weights/W3": np.zeros((1, 1), np.float32)})
    with pytest.raises(ValueError, match="unexpected entry 'weights/W3'"):
        fd.load_model(saved)


CALLS = []


class Trap:
    """Unpickling this would record a call: proof that loading unpickles nothing."""

    def __reduce__(self):
        return (CALLS.append, ("unpickled",))


def test_an_object_array_is_refused_without_unpickling_it(saved):
    arrays, _ = entries(saved)
    arrays["weights/W0"] = np.array([Trap()], dtype=object)
    with open(saved, "wb") as f:
        np.savez(f, **arrays)            # np.savez pickles object arrays
    with pytest.raises(ValueError, match="'weights/W0' has shape .* dtype object"):
        fd.load_model(saved)
    assert CALLS == []


@pytest.mark.parametrize("where, value, message", [
    (("model", "layers", 0, "class_name"), "Conv2D", "unknown layer class 'Conv2D'"),
    (("model", "layers", 1, "config", "activation"), "swish", "unknown activation 'swish'"),
    (("model", "layers", 1, "config", "units"), -3, "units must be a positive integer"),
    (("model", "layers", 0, "config", "kernel"), "x", "unexpected keyword"),
    (("model", "class_name"), "Functional", "unknown model class 'Functional'"),
    (("model", "dtype"), "float16", "dtype must be float32 or float64"),
    (("compile", "optimizer", "class_name"), "Lion", "unknown optimizer 'Lion'"),
    (("compile", "optimizer", "config", "beta_1"), 2.0, "beta_1 must be in"),
    (("compile", "optimizer", "config", "learning_rate"),
     {"class_name": "Eval", "config": {}}, "not a serialized fastdense schedule"),
    (("compile", "optimizer", "state"), 3, "3 arrays, Adam with this config keeps 2"),
    (("compile", "optimizer", "iterations"), -1, "iterations"),
    (("compile", "loss"), "hinge", "unknown loss 'hinge'"),
    (("model", "rng_state", "bit_generator"), "MT19937", "unknown random generator"),
    (("model", "input_dim"), 5, "contradicts the first layer"),
])
def test_unknown_or_invalid_settings_in_the_json_are_refused(saved, where, value, message):
    arrays, meta = entries(saved)
    node = meta
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    write(saved, arrays, meta)
    with pytest.raises(ValueError, match=message):
        fd.load_model(saved)


# ---------------------------------------------------------------------- pickle
def test_pickle_goes_through_the_saved_format():
    model = trained()
    payload = pickle.dumps(model)
    assert b"model_from_bytes" in payload
    assert saving.model_to_bytes(model) in payload


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adam"])
def test_a_pickled_model_predicts_and_continues_training_identically(optimizer):
    model = trained(optimizer, "float64")
    clone = pickle.loads(pickle.dumps(model))
    x, y = data(seed=4)
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))
    h1 = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    h2 = clone.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert h1.history == h2.history
    assert_same_weights(clone, model)


def test_a_pickled_model_is_independent_of_the_original():
    model = trained()
    clone = copy.deepcopy(model)
    x, y = data()
    clone.fit(x, y, epochs=1, verbose=0)
    assert clone.optimizer is not model.optimizer
    assert model.optimizer.iterations == 12 and clone.optimizer.iterations == 14
    assert not np.array_equal(clone.get_weights()[0], model.get_weights()[0])


def test_uncompiled_and_unbuilt_models_pickle():
    for model in (make_model([3, 2]), fd.Sequential([fd.Dense(2)], dtype="float64")):
        clone = pickle.loads(pickle.dumps(model))
        assert repr(clone) == repr(model) and clone.built == model.built


def test_corrupted_pickled_bytes_are_refused():
    data = bytearray(saving.model_to_bytes(trained()))
    with pytest.raises(ValueError, match="<fastdense model bytes>: cannot load"):
        saving.model_from_bytes(bytes(data[:100]))


def test_saving_does_not_import_models():
    """models imports saving; saving reaches Sequential through the class models registers,
    so the two modules form no import cycle (not even under TYPE_CHECKING)."""
    import ast
    tree = ast.parse(pathlib.Path(saving.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
            imported.update(f"{'.' * node.level}{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not {name for name in imported if name.endswith("models")}, imported
    assert saving._MODEL_CLASSES["Sequential"] is fd.Sequential
    assert fd.load_model.__module__ == "fastdense.models"
