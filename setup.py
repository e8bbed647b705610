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
if sanitize:
    COMPILE_ARGS += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-g"]
    LINK_ARGS += [f"-fsanitize={sanitize}"]

KERNELS = sorted(p.stem for p in Path("src/fastdense/_core").glob("*.pyx"))

extensions = [
    Extension(
        f"fastdense._core.{name}",
        [f"src/fastdense/_core/{name}.pyx"],
        include_dirs=[np.get_include(), "src/fastdense/_core"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=COMPILE_ARGS,
        extra_link_args=LINK_ARGS,
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
