#!/usr/bin/env bash
# Build fastdense's extensions with AddressSanitizer and UndefinedBehaviorSanitizer in a
# scratch copy of the source tree and run the kernel, model and property-based tests there.
# Any out-of-bounds access, use-after-free or undefined behaviour in the C kernels aborts
# the run with the sanitizer's report.
#
#   bash tools/sanitize.sh [pytest args...]      (default: the kernel-facing test files)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cp -r "$root/src" "$root/setup.py" "$root/pyproject.toml" "$root/README.md" "$root/tests" "$work/"
find "$work/src" -name '*.so' -delete
cd "$work"
FASTDENSE_SANITIZE=address,undefined python setup.py build_ext --inplace -q >/dev/null

asan="$(gcc -print-file-name=libasan.so)"
ubsan="$(gcc -print-file-name=libubsan.so)"
# CPython itself is not built with ASan: leak reports would be its own, so leaks are off;
# UBSan stops at the first report.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
    tests=(tests/test_kernels.py tests/test_gradients.py tests/test_model.py
           tests/test_agreement.py tests/test_divergence.py tests/test_fuzz.py
           tests/test_optimizers.py tests/test_shuffle.py)
fi
LD_PRELOAD="$asan:$ubsan" PYTHONPATH="$work/src" python -m pytest -q -p no:cacheprovider \
    "${tests[@]}"
