"""Build the Cython kernels of fastdense.

Flags are optimised but portable: no tuning for the build machine's CPU (a wheel must run on
any x86-64) and no fast-math (it lets the compiler assume NaN/Inf never occur, so NaN checks
would vanish).
Wider vector units are reached by run-time dispatch inside the kernels, not by build flags.
The flags are chosen by compiler (GCC/Clang or MSVC, see FLAGS), so one setup.py builds the
wheels of every platform (pyproject.toml's [tool.cibuildwheel]).
"""
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError, LinkError

KERNELS = sorted(p.stem for p in Path("src/fastdense/_core").glob("*.pyx"))
# The C templates the kernels include: a change to any of them rebuilds the extensions.
HEADERS = sorted(str(p) for p in Path("src/fastdense/_core").glob("*.h"))

# The flags of every extension, by compiler family: GCC and Clang spell them one way, MSVC
# another. updates gets -fno-math-errno, which lets sqrt vectorise (errno is never read;
# NaN/Inf semantics are untouched; MSVC's sqrt loops need no such flag), and OpenMP, which
# lets updates.set_num_threads(k) split buffers of at least PARALLEL_MIN values over k
# threads (opt-in; serial by default). FASTDENSE_NO_OPENMP=1 builds it without OpenMP, and
# so does a compiler without it (Apple's Clang without libomp): updates then runs serially.
FLAGS = {
    "unix": {"all": ["-O3"], "updates": ["-fno-math-errno"],
             "openmp": (["-fopenmp"], ["-fopenmp"])},
    "msvc": {"all": ["/O2"], "updates": [], "openmp": (["/openmp"], [])},
}
OPENMP = ["updates"]


class BuildExt(build_ext):
    """build_ext with the flags of FLAGS chosen by the compiler in use."""

    def build_extensions(self):
        kind = "msvc" if self.compiler.compiler_type == "msvc" else "unix"
        flags = FLAGS[kind]
        openmp = self._openmp(kind, flags["openmp"])
        sanitize = os.environ.get("FASTDENSE_SANITIZE")  # e.g. "address,undefined": tools/sanitize.sh
        if sanitize and kind != "unix":
            raise SystemExit("FASTDENSE_SANITIZE needs GCC or Clang")
        for ext in self.extensions:
            name = ext.name.rsplit(".", 1)[-1]
            compile_args, link_args = list(flags["all"]) + flags.get(name, []), []
            if name in OPENMP and openmp:
                compile_args += openmp[0]
                link_args += openmp[1]
            if sanitize:
                compile_args += [f"-fsanitize={sanitize}", "-fno-sanitize-recover=all",
                                 "-fno-omit-frame-pointer", "-g"]
                link_args += [f"-fsanitize={sanitize}"]
            ext.extra_compile_args = compile_args
            ext.extra_link_args = link_args
        super().build_extensions()

    def _openmp(self, kind, flags):
        """The OpenMP (compile, link) flags, or None when off or not supported."""
        if os.environ.get("FASTDENSE_NO_OPENMP"):
            return None
        if kind == "msvc":
            return flags
        with tempfile.TemporaryDirectory() as tmp:
            probe = Path(tmp, "omp_probe.c")
            probe.write_text("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
            try:
                objects = self.compiler.compile([str(probe)], output_dir=tmp,
                                                extra_postargs=flags[0])
                self.compiler.link_executable(objects, "omp_probe", output_dir=tmp,
                                              extra_postargs=flags[1])
            except (CompileError, LinkError):
                print("fastdense: the compiler has no OpenMP; updates is built serial",
                      file=sys.stderr)
                return None
        return flags


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
