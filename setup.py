"""Build the Cython kernels of fastdense.

Flags are optimised but portable: no -march=native (a wheel must run on any x86-64) and no
-ffast-math (it lets the compiler assume NaN/Inf never occur, so NaN checks would vanish).
Wider vector units are reached by run-time dispatch inside the kernels, not by build flags.
"""
import os
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILE_ARGS = ["-O3"]
LINK_ARGS = []

sanitize = os.environ.get("FASTDENSE_SANITIZE")
if sanitize:    # e.g. "address,undefined": see tools/sanitize.sh
    COMPILE_ARGS += [f"-fsanitize={sanitize}", "-fno-sanitize-recover=all",
                     "-fno-omit-frame-pointer", "-g"]
    LINK_ARGS += [f"-fsanitize={sanitize}"]

KERNELS = sorted(p.stem for p in Path("src/fastdense/_core").glob("*.pyx"))
# The C templates the kernels include: a change to any of them rebuilds the extensions.
HEADERS = sorted(str(p) for p in Path("src/fastdense/_core").glob("*.h"))

# Per-extension additions. updates: -fno-math-errno lets sqrt vectorise (errno is never
# read; NaN/Inf semantics are untouched), and OpenMP lets updates.set_num_threads(k) split
# buffers of at least PARALLEL_MIN values over k threads (opt-in; serial by default).
# FASTDENSE_NO_OPENMP=1 builds it without OpenMP.
EXTRA = {"updates": (["-fno-math-errno"], [])}
if not os.environ.get("FASTDENSE_NO_OPENMP"):
    EXTRA["updates"] = (EXTRA["updates"][0] + ["-fopenmp"], ["-fopenmp"])

extensions = [
    Extension(
        f"fastdense._core.{name}",
        [f"src/fastdense/_core/{name}.pyx"],
        include_dirs=[np.get_include(), "src/fastdense/_core"],
        depends=HEADERS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=COMPILE_ARGS + EXTRA.get(name, ([], []))[0],
        extra_link_args=LINK_ARGS + EXTRA.get(name, ([], []))[1],
    )
    for name in KERNELS
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
            "embedsignature": True,
        },
    ),
)
