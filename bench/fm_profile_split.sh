#!/bin/sh
# Build and run bench/fm_profile_split.c (the intra-step split's feasibility; see that file).
#   bench/fm_profile_split.sh      FD_ISA=0|1|2, FD_PIN=0, FD_UPDATES, FD_BLOCKS
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
out=${TMPDIR:-/tmp}/fm_profile_split.$$
gcc -O3 -w -pthread -I"$here/src/fastdense/_core" -c "$here/bench/fm_profile_split.c" -o "$out.1.o"
gcc -O3 -fno-math-errno -I"$here/src/fastdense/_core" -c "$here/bench/fm_profile_update.c" -o "$out.2.o"
gcc -pthread "$out.1.o" "$out.2.o" -o "$out" -lm
"$out" "$@"
rm -f "$out" "$out.1.o" "$out.2.o"
