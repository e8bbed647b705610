"""The package is typed: it ships py.typed and stubs for its compiled modules, mypy finds
no error in it, the stubs agree with the compiled modules, and the public API is
annotated. Run against the fastdense these tests import (installed or source)."""
import inspect
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import fastdense
import fastdense.callbacks
import fastdense.optimizers
import fastdense.schedules

pytest.importorskip("mypy")

PACKAGE = Path(fastdense.__file__).resolve().parent
COMPILED = ["fastdense._core.dense", "fastdense._core.losses", "fastdense._core.updates",
            "fastdense._core.train"]

# pyproject.toml's [tool.mypy], for a package that may be installed (keep in step)
MYPY_CONFIG = """\
[mypy]
python_version = 3.10
warn_unused_ignores = True
warn_redundant_casts = True

[mypy-scipy.*,sklearn.*,tqdm.*,matplotlib.*,torch.*,jax.*,mpi4py.*]
ignore_missing_imports = True
"""


def run_mypy(tmp_path, *args):
    """`python -m <args> <config>` in an empty folder, finding fastdense where it was
    imported from; args ends with the option that names the config file."""
    config = tmp_path / "mypy.ini"
    config.write_text(MYPY_CONFIG)
    config.with_name("setup.cfg").write_text("")    # no project config is found here
    env = dict(os.environ)
    installed = {str(Path(p).resolve()) for p in
                 (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])}
    if str(PACKAGE.parent) not in installed:     # a source tree: mypy must be shown it
        env["MYPYPATH"] = str(PACKAGE.parent)
        env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE.parent), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", *args, str(config)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def test_the_package_is_marked_typed_and_ships_stubs_for_its_compiled_modules():
    assert (PACKAGE / "py.typed").is_file()
    for name in COMPILED:
        assert (PACKAGE / "_core" / f"{name.rsplit('.', 1)[1]}.pyi").is_file(), name


def test_mypy_finds_no_error_in_the_package(tmp_path):
    done = run_mypy(tmp_path, "mypy", "-p", "fastdense", "--config-file")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_stubs_agree_with_the_compiled_modules(tmp_path):
    # names the stubs declare must exist with these signatures; new private helpers in the
    # .pyx need no stub
    options = subprocess.run([sys.executable, "-m", "mypy.stubtest", "--help"],
                             capture_output=True, text=True).stdout
    # (a newer stubtest also wants Cython's extension types marked @disjoint_base)
    extra = ["--ignore-disjoint-bases"] if "--ignore-disjoint-bases" in options else []
    done = run_mypy(tmp_path, "mypy.stubtest", *COMPILED, "--ignore-missing-stub", *extra,
                    "--mypy-config-file")
    assert done.returncode == 0, done.stdout + done.stderr


def public_callables():
    from fastdense import sklearn as _sklearn  # noqa: F401  (needs scikit-learn)

    for module in (fastdense, fastdense.optimizers, fastdense.schedules, fastdense.callbacks):
        for name in getattr(module, "__all__", None) or [n for n in vars(module)
                                                          if not n.startswith("_")]:
            yield f"{module.__name__}.{name}", getattr(module, name)
    yield "fastdense.sklearn.FastDenseRegressor", _sklearn.FastDenseRegressor


def unannotated(func):
    """The parameters (and 'return') of func that have no annotation."""
    sig = inspect.signature(func)
    missing = [p.name for p in sig.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def test_every_public_function_and_method_is_annotated():
    pytest.importorskip("sklearn")
    gaps = {}
    for qualname, obj in public_callables():
        if inspect.isclass(obj):
            if obj.__module__.split(".")[0] != "fastdense":
                continue
            members = {n: m for n, m in vars(obj).items()
                       if callable(m) and (not n.startswith("_") or n == "__init__")}
            for n, m in vars(obj).items():
                if isinstance(m, (classmethod, staticmethod)):
                    members[n] = m.__func__
                elif isinstance(m, property):
                    members[n] = m.fget
            for n, m in members.items():
                if unannotated(m):
                    gaps[f"{qualname}.{n}"] = unannotated(m)
        elif inspect.isfunction(obj) and unannotated(obj):
            gaps[qualname] = unannotated(obj)
    assert not gaps, gaps
