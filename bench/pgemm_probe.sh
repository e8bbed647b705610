#!/bin/sh
# Build and run bench/pgemm_probe.c against the BLAS SciPy ships (see that file).
#   bench/pgemm_probe.sh N_IN N_OUT BATCH
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
out=${TMPDIR:-/tmp}/pgemm_probe.$$
lib=$(python -c "import glob, os, scipy; print(sorted(glob.glob(os.path.join(os.path.dirname(scipy.__file__), '..', 'scipy.libs', 'libscipy_openblas*.so')))[0])")
gcc -O3 -pthread -I"$here/bench" "$here/bench/pgemm_probe.c" -o "$out" -ldl -lm
FD_BLAS_LIB=$lib "$out" "$@"
rm -f "$out"
