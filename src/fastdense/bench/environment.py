"""What the benchmark report records of the machine: CPU, versions, thread pools, the
OpenBLAS environment, the load average."""
from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["machine_info", "versions", "threadpools", "openblas_env", "load_average"]


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
    for name in ("scipy", "torch", "jax", "jaxlib", "sklearn", "onnx", "onnxruntime",
                 "threadpoolctl", "matplotlib"):
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


def load_average() -> list | None:
    try:
        return list(os.getloadavg())
    except OSError:
        return None
