"""Build the Cython kernels of fastdense.

Flags are optimised but portable: no tuning for the build machine's CPU (a wheel must run on
any x86-64) and no fast-math (it lets the compiler assume NaN/Inf never occur, so NaN checks
would vanish).
Wider vector units are reached by run-time dispatch inside the kernels, not by build flags.
The flags are chosen by compiler (GCC/Clang or MSVC, see FLAGS), so one setup.py builds the
wheels of every platform (pyproject.toml's [tool.cibuildwheel]).
"""
import os
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = sorted(p.stem for p in Path("src/fastdense/_core").glob("*.pyx"))
# The C templates the kernels include: a change to any of them rebuilds the extensions.
HEADERS = sorted(str(p) for p in Path("src/fastdense/_core").glob("*.h"))

# The flags of every extension, by compiler family: GCC and Clang spell them one way, MSVC
# another. updates gets -fno-math-errno, which lets sqrt vectorise (errno is never read;
# NaN/Inf semantics are untouched; MSVC's sqrt loops need no such flag), and -pthread for
# its worker pool (fd_pool.h: pthreads and, on Linux, futexes; no OpenMP). Built with MSVC,
# the pool is compiled out and updates run serially.
FLAGS = {
    "unix": {"all": ["-O3"], "updates": ["-fno-math-errno", "-pthread"],
             "link": {"updates": ["-pthread"]}},
    "msvc": {"all": ["/O2"], "updates": [], "link": {}},
}


class BuildExt(build_ext):
    """build_ext with the flags of FLAGS chosen by the compiler in use."""

    def build_extensions(self):
        kind = "msvc" if self.compiler.compiler_type == "msvc" else "unix"
        flags = FLAGS[kind]
        sanitize = os.environ.get("FASTDENSE_SANITIZE")  # e.g. "address,undefined": tools/sanitize.sh
        if sanitize and kind != "unix":
            raise SystemExit("FASTDENSE_SANITIZE needs GCC or Clang")
        for ext in self.extensions:
            name = ext.name.rsplit(".", 1)[-1]
            compile_args = list(flags["all"]) + flags.get(name, [])
            link_args = list(flags["link"].get(name, []))
            if sanitize:
                compile_args += [f"-fsanitize={sanitize}", "-fno-sanitize-recover=all",
                                 "-fno-omit-frame-pointer", "-g"]
                link_args += [f"-fsanitize={sanitize}"]
            ext.extra_compile_args = compile_args
            ext.extra_link_args = link_args
        super().build_extensions()


extensions = [
    Extension(
        f"fastdense._core.{name}",
        [f"src/fastdense/_core/{name}.pyx"],
        include_dirs=[np.get_include(), "src/fastdense/_core"],
        depends=HEADERS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for name in KERNELS
]

setup(
    cmdclass={"build_ext": BuildExt},
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
