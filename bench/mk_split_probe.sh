#!/bin/sh
# Build and run bench/mk_split_probe.c (the register-blocked products split over two
# threads, against OpenBLAS; see that file).
#   bench/mk_split_probe.sh MODE WIDTH BATCH [CHUNKS]   MODE 0-3 as in the .c; 4: MODE 3 with
#   the pool's worker spinning 40,000 pauses before it sleeps
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
out=${TMPDIR:-/tmp}/mk_split_probe.$$
lib=$(python -c "import glob, os, scipy; print(sorted(glob.glob(os.path.join(os.path.dirname(scipy.__file__), '..', 'scipy.libs', 'libscipy_openblas*.so')))[0])")
mode=$1; shift
spin=""
if [ "$mode" = 4 ]; then mode=3; spin="-DFD_POOL_SPIN=40000"; fi
gcc -O3 -Wno-psabi -pthread $spin -I"$here/src/fastdense/_core" -I"$here/bench" "$here/bench/mk_split_probe.c" -o "$out" -ldl -lm
FD_BLAS_LIB=$lib "$out" "$mode" "$@"
rm -f "$out"
