"""Saving and loading a model: one `.npz` file, read back with every entry checked.

The file is a NumPy `.npz` (a zip of `.npy` arrays, no pickled objects) with entries:

* ``format_version`` — 0-d int64, ``FORMAT_VERSION`` (1); a newer number is refused;
* ``metadata`` — 1-D uint8, the UTF-8 JSON below;
* ``weights/W0``, ``weights/b0``, ``weights/W1``, … — each layer's kernel (in, out) and
  bias (out,), in the model's dtype (only when the model is built);
* ``optimizer/state0`` … — the optimizer's state for the model's flat parameter buffer
  (``k`` arrays of shape (n_params,), in the model's dtype; see ``fastdense.optimizers``);
* ``optimizer/slot{i}_{k}`` — state the optimizer keeps for standalone ``apply()`` calls.

The JSON::

    {"format": "fastdense.model", "fastdense_version": "0.1.0",
     "model": {"class_name": "Sequential", "name": null, "dtype": "float32",
               "seed": <int or null>, "input_dim": <int, null when not built>,
               "rng_state": <model._rng.bit_generator.state: PCG64's dict>,
               "layers": [{"class_name": "Dense",
                           "config": {"units": 8, "activation": "relu",
                                      "input_dim": 4, "name": null}}, …]},
     "compile": null | {"loss": "mse" | <the loss's get_config()>, "metrics": [names],
                        "optimizer": {"class_name": "Adam", "config": <get_config()>,
                                      "iterations": 30, "state": <k, or null>,
                                      "slots": [{"shape": [..], "dtype": ".."}, …]}}}

Loading (``load_model``) opens the zip itself and verifies every entry's CRC, reads the
version before the JSON, rebuilds the model from the JSON alone (known class, layer,
activation and optimizer names only), then checks each array's ``.npy`` header — shape
and dtype against that architecture — before reading its data, and refuses non-finite
weights. Nothing in the file is executed: no pickle, no eval. Any refusal is a
ValueError ``"<file>: cannot load a fastdense model: <problem>"``; a missing file is
FileNotFoundError.

Writing (``save_model``) is atomic: the bytes go to a new temporary file in the target's
directory, are flushed and fsync'ed, and ``os.replace`` puts them under the name; on any
error the temporary file is removed and an existing file under the name is untouched.

Pickling a model stores these same bytes (``model_to_bytes`` / ``model_from_bytes``).
"""
from __future__ import annotations

import io
import json
import math
import os
import secrets
import zipfile
import zlib
from typing import Any, TypeVar

import numpy as np

from . import _validation as v
from . import optimizers as _optimizers
from . import schedules as _schedules
from .layers import Dense

_T = TypeVar("_T", bound=type)

__all__ = ["FORMAT_VERSION", "save_model", "load_model", "model_to_bytes",
           "model_from_bytes"]

FORMAT_VERSION = 1
FORMAT_NAME = "fastdense.model"

_OPTIMIZERS = {cls.__name__: cls for cls in (_optimizers.SGD, _optimizers.RMSprop,
                                             _optimizers.Adam, _optimizers.AdamW,
                                             _optimizers.Adagrad)}
_MAX_METADATA_BYTES = 64 * 1024 * 1024

# The model classes a file's "class_name" may name. fastdense.models registers Sequential
# as it is defined: models imports this module, and this module never imports models.
_MODEL_CLASSES: dict[str, type] = {}


def register_model_class(cls: _T) -> _T:
    """Let files whose model "class_name" is cls.__name__ load as cls (a class decorator)."""
    _MODEL_CLASSES[cls.__name__] = cls
    return cls


class _Refused(Exception):
    """A problem with the file's content; load_model reports it as a ValueError."""


# ---------------------------------------------------------------------- writing
def _weight_names(n_layers: int) -> list:
    return [f"weights/{kind}{i}" for i in range(n_layers) for kind in ("W", "b")]


def _entries(model) -> dict:
    """Every array of the file, by entry name (views of the model's buffers, no copies)."""
    from . import __version__

    rng = model._rng.bit_generator
    seq = getattr(rng, "seed_seq", None)
    seed = seq.entropy if isinstance(seq, np.random.SeedSequence) and \
        isinstance(seq.entropy, int) and not seq.spawn_key else None
    arrays = {}
    input_dim = None
    if model.built:
        input_dim = model.input_dim
        for name, a in zip(_weight_names(len(model.layers)),
                           model._net.views(model._net.params)):
            if a.size and not np.isfinite(a).all():
                raise ValueError(f"cannot save the model: {name} contains NaN or Inf")
            arrays[name] = a
    compiled = None
    opt = model.optimizer
    if opt is not None:
        if _OPTIMIZERS.get(type(opt).__name__) is not type(opt):
            raise TypeError(f"cannot save an optimizer of class {type(opt).__name__}: "
                            f"only fastdense's own ({', '.join(_OPTIMIZERS)})")
        lr = opt.learning_rate
        if callable(lr) and not isinstance(lr, _schedules.LearningRateSchedule):
            raise TypeError(
                f"cannot save a learning rate that is a plain callable ({lr!r}): use a "
                "schedule from fastdense.optimizers.schedules, which saves its config")
        state = opt._state
        for k, s in enumerate(state or ()):
            arrays[f"optimizer/state{k}"] = s
        slots = []
        for i, (shape, dtype, slot_arrays) in enumerate(opt._slots):
            slots.append({"shape": list(shape), "dtype": np.dtype(dtype).name})
            for k, s in enumerate(slot_arrays):
                arrays[f"optimizer/slot{i}_{k}"] = s
        spec = model._loss
        default = type(spec)() if spec is not None else None
        compiled = {"loss": model.loss if spec == default else spec.get_config(),
                    "metrics": list(model.metrics_names),
                    "optimizer": {"class_name": type(opt).__name__,
                                  "config": opt.get_config(),
                                  "iterations": int(opt.iterations),
                                  "state": None if state is None else len(state),
                                  "slots": slots}}
    meta = {"format": FORMAT_NAME, "fastdense_version": __version__,
            "model": {"class_name": "Sequential", "name": model.name,
                      "dtype": model.dtype.name, "seed": seed, "input_dim": input_dim,
                      "rng_state": rng.state,
                      "layers": [{"class_name": "Dense", "config": layer.get_config()}
                                 for layer in model.layers]},
            "compile": compiled}
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot save the model: its settings are not JSON: {exc}") from exc
    return {"format_version": np.array(FORMAT_VERSION, dtype=np.int64),
            "metadata": np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}


def _write(model, fileobj) -> None:
    # a file object, not a name: np.savez would append ".npz" to a name without it
    np.savez(fileobj, **_entries(model))


def model_to_bytes(model: Any) -> bytes:
    """The bytes of the file ``save_model`` writes."""
    buf = io.BytesIO()
    _write(model, buf)
    return buf.getvalue()


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Write `model` to `path` atomically (see the module docstring)."""
    path = _path(path)
    directory = os.path.dirname(os.path.abspath(path))
    entries = _entries(model)                     # refuse unsavable models before any I/O
    while True:
        tmp = os.path.join(directory,
                           f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:                   # pragma: no cover - 48 random bits
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); best effort where directories can't sync."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:                               # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:                               # pragma: no cover
        pass
    finally:
        os.close(fd)


def _path(path) -> str:
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {path!r}") from None
    if not isinstance(path, str):
        raise TypeError(f"path must be a str or os.PathLike, got {path!r}")
    return path


# ---------------------------------------------------------------------- reading
def load_model(path: str | os.PathLike[str]) -> Any:
    """The model saved at `path` by ``model.save`` (see the module docstring for what is
    checked). FileNotFoundError if there is no file; ValueError if it is not a valid
    fastdense model file of a version this fastdense reads."""
    path = _path(path)
    with open(path, "rb") as f:
        return _load(f, path)


def model_from_bytes(data: bytes | bytearray | memoryview) -> Any:
    """The model whose file bytes ``model_to_bytes`` gave (used by pickle)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected the bytes of a fastdense model file, got "
                        f"{type(data).__name__}")
    return _load(io.BytesIO(bytes(data)), "<fastdense model bytes>")


def _load(fileobj, label: str):
    try:
        return _read(fileobj)
    except _Refused as exc:
        raise ValueError(f"{label}: cannot load a fastdense model: {exc}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError,
            NotImplementedError, RuntimeError) as exc:
        raise ValueError(f"{label}: cannot load a fastdense model: the file is corrupted "
                         f"({type(exc).__name__}: {exc})") from exc


def _read(fileobj):
    try:
        zf = zipfile.ZipFile(fileobj)
    except zipfile.BadZipFile as exc:
        raise _Refused(f"not a zip archive (an .npz file), or truncated ({exc})") from None
    with zf:
        members = {}
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise _Refused(f"unexpected entry {info.filename!r}: not a fastdense "
                               "model file")
            members[info.filename[:-4]] = info
        if "metadata" not in members:
            raise _Refused("not a fastdense model file (it has no 'metadata' entry)")
        bad = zf.testzip()
        if bad is not None:
            raise _Refused(f"the file is corrupted: entry {bad!r} fails its CRC check")
        if "format_version" not in members:
            raise _Refused("not a fastdense model file (it has no 'format_version' entry)")
        version = _read_array(zf, "format_version", lambda s, d: s == () and d.kind in "iu")
        version = int(version)
        if version > FORMAT_VERSION:
            raise _Refused(f"the file has format version {version}, newer than this "
                           f"fastdense reads (up to {FORMAT_VERSION}): upgrade fastdense")
        if version < 1:
            raise _Refused(f"invalid format version {version}")
        raw = _read_array(zf, "metadata",
                          lambda s, d: len(s) == 1 and d == np.uint8
                          and s[0] <= _MAX_METADATA_BYTES)
        try:
            meta = json.loads(raw.tobytes().decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Refused(f"the metadata is not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise _Refused("not a fastdense model file (its metadata does not say "
                           f"format {FORMAT_NAME!r})")
        model, expected = _model_from_metadata(meta)
        missing = sorted(set(expected) - set(members) - {"metadata", "format_version"})
        extra = sorted(set(members) - set(expected) - {"metadata", "format_version"})
        if missing:
            raise _Refused(f"entry {missing[0]!r} is missing")
        if extra:
            raise _Refused(f"unexpected entry {extra[0]!r} for this architecture")
        arrays = {}
        for name, (shape, dtype) in expected.items():
            arrays[name] = _read_array(
                zf, name, lambda s, d, shape=shape, dtype=dtype: s == shape and d == dtype,
                f"shape {shape} and dtype {dtype}")
    _fill(model, meta, arrays)
    return model


def _no_constant(name):
    raise _Refused(f"the metadata holds {name}, which is not JSON")


def _read_array(zf, name, fits, wanted="another shape or dtype"):
    """The array of entry `name`, its .npy header checked by ``fits(shape, dtype)`` before
    its data is read (a byte-swapped dtype counts as its native equivalent)."""
    with zf.open(name + ".npy") as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise _Refused(f"entry {name!r}: unsupported .npy version {version}")
        native = dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype
        if dtype.hasobject or dtype.fields is not None or not fits(shape, native):
            raise _Refused(f"entry {name!r} has shape {shape} and dtype {dtype}; "
                           f"expected {wanted}")
        nbytes = math.prod(shape) * dtype.itemsize
        data = fp.read(nbytes + 1)
    if len(data) != nbytes:
        raise _Refused(f"entry {name!r} holds {len(data)} bytes of data, its header says "
                       f"{nbytes}")
    a = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return np.array(a, dtype=native, order="C")          # a writeable copy


def _model_from_metadata(meta):
    """The model the JSON describes (weights not yet set, not compiled) and the arrays the
    file must hold for it: {entry: (shape, dtype)}."""
    spec = _dict(meta.get("model"), "model")
    name = spec.get("class_name")
    model_class = _MODEL_CLASSES.get(name) if isinstance(name, str) else None
    if model_class is None:
        raise _Refused(f"unknown model class {name!r} "
                       f"(fastdense has {', '.join(_MODEL_CLASSES) or 'Sequential'})")
    layers = []
    for i, layer in enumerate(_list(spec.get("layers"), "model.layers")):
        layer = _dict(layer, f"layer {i}")
        if layer.get("class_name") != "Dense":
            raise _Refused(f"layer {i}: unknown layer class {layer.get('class_name')!r} "
                           "(fastdense has Dense)")
        try:
            layers.append(Dense.from_config(_dict(layer.get("config"), f"layer {i} config")))
        except (TypeError, ValueError) as exc:
            raise _Refused(f"layer {i}: {exc}") from None
    seed = spec.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise _Refused(f"invalid seed {seed!r}")
    try:
        dtype = v.float_dtype(spec.get("dtype"))
        model = model_class(layers, dtype=dtype, seed=seed, name=spec.get("name"))
    except (TypeError, ValueError) as exc:
        raise _Refused(f"model: {exc}") from None
    input_dim = spec.get("input_dim")
    if input_dim is not None:
        if isinstance(input_dim, bool) or not isinstance(input_dim, int) or input_dim < 1:
            raise _Refused(f"invalid input_dim {input_dim!r}")
        if model.built and model.input_dim != input_dim:
            raise _Refused(f"input_dim {input_dim} contradicts the first layer's "
                           f"{model.input_dim}")
        model.build(input_dim)
    elif model.built:
        raise _Refused("input_dim is missing for a model whose first layer has one")
    rng_state = _dict(spec.get("rng_state"), "model.rng_state")
    if rng_state.get("bit_generator") != type(model._rng.bit_generator).__name__:
        raise _Refused(f"unknown random generator {rng_state.get('bit_generator')!r}")
    try:
        model._rng.bit_generator.state = rng_state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise _Refused(f"invalid random generator state ({exc})") from None

    expected = {}
    if model.built:
        for name, a in zip(_weight_names(len(model.layers)),
                           model._net.views(model._net.params)):
            expected[name] = (a.shape, model.dtype)

    compiled = meta.get("compile")
    if compiled is not None:
        compiled = _dict(compiled, "compile")
        o = _dict(compiled.get("optimizer"), "compile.optimizer")
        cls = _OPTIMIZERS.get(o.get("class_name"))
        if cls is None or not isinstance(o.get("class_name"), str):
            raise _Refused(f"unknown optimizer {o.get('class_name')!r} "
                           f"(fastdense has {', '.join(_OPTIMIZERS)})")
        try:
            opt = cls.from_config(_dict(o.get("config"), "optimizer config"))
            model.compile(optimizer=opt, loss=compiled.get("loss"),
                          metrics=_list(compiled.get("metrics", []), "compile.metrics"))
        except (TypeError, ValueError) as exc:
            raise _Refused(f"optimizer {o['class_name']}: {exc}") from None
        k = opt.n_state
        state = o.get("state")
        if state is not None:
            if state != k or isinstance(state, bool):
                raise _Refused(f"optimizer state: {state!r} arrays, {o['class_name']} "
                               f"with this config keeps {k}")
            if not model.built:
                raise _Refused("optimizer state for a model that is not built")
            for j in range(k):
                expected[f"optimizer/state{j}"] = ((model.count_params(),), model.dtype)
        for i, slot in enumerate(_list(o.get("slots"), "optimizer slots")):
            slot = _dict(slot, f"optimizer slot {i}")
            try:
                shape = tuple(_list(slot.get("shape"), f"slot {i} shape"))
                if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                           for d in shape):
                    raise ValueError(f"slot {i}: invalid shape {list(shape)}")
                dtype = v.float_dtype(slot.get("dtype"))
            except (TypeError, ValueError) as exc:
                raise _Refused(f"optimizer slot {i}: {exc}") from None
            for j in range(k):
                expected[f"optimizer/slot{i}_{j}"] = (shape, dtype)
    return model, expected


def _fill(model, meta, arrays) -> None:
    """Put the checked arrays into the model built from the metadata."""
    if model.built:
        weights = [arrays[name] for name in _weight_names(len(model.layers))]
        for name, w in zip(_weight_names(len(model.layers)), weights):
            if w.size and not np.isfinite(w).all():
                raise _Refused(f"entry {name!r} contains NaN or Inf")
        model.set_weights(weights)
    compiled = meta.get("compile")
    if compiled is None:
        return
    o = compiled["optimizer"]
    opt = model.optimizer
    k = opt.n_state
    state = None if o.get("state") is None else \
        [arrays[f"optimizer/state{j}"] for j in range(k)]
    slots = [[arrays[f"optimizer/slot{i}_{j}"] for j in range(k)]
             for i in range(len(o["slots"]))]
    iterations = o.get("iterations")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise _Refused(f"invalid optimizer iterations {iterations!r}")
    try:
        opt.set_state({"iterations": iterations, "model": state, "slots": slots})
    except (TypeError, ValueError) as exc:
        raise _Refused(f"optimizer state: {exc}") from None


def _dict(value, what) -> dict:
    if not isinstance(value, dict):
        raise _Refused(f"{what} must be a JSON object, got {value!r:.80}")
    return value


def _list(value, what) -> list:
    if not isinstance(value, list):
        raise _Refused(f"{what} must be a JSON array, got {value!r:.80}")
    return value
