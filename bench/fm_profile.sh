#!/bin/sh
# Build and run bench/fm_profile.c against the BLAS SciPy ships (see that file).
#   bench/fm_profile.sh [digits|sweep|all | w WIDTH BATCH]    FD_ISA=0|1|2 forces an instruction set
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
out=${TMPDIR:-/tmp}/fm_profile.$$
lib=$(python -c "import glob, os, scipy; print(sorted(glob.glob(os.path.join(os.path.dirname(scipy.__file__), '..', 'scipy.libs', 'libscipy_openblas*.so')))[0])")
gcc -O3 -Wno-psabi -I"$here/src/fastdense/_core" -I"$here/bench" -c "$here/bench/fm_profile.c" -o "$out.1.o"
gcc -O3 -fno-math-errno -I"$here/src/fastdense/_core" -c "$here/bench/fm_profile_update.c" -o "$out.2.o"
gcc "$out.1.o" "$out.2.o" -o "$out" -ldl -lm
FD_BLAS_LIB=$lib "$out" "$@"
rm -f "$out" "$out.1.o" "$out.2.o"
