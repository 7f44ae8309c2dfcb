#!/usr/bin/env bash
# Runs the tests of the crate's `unsafe` code (src/backend/cpu/{gemm,packed,math}.rs: the
# calls into `matrixmultiply`, the unchecked loads of the packed kernel, the calls into code
# compiled for AVX2/FMA and AVX-512) under Miri, which reports undefined behaviour: an
# out-of-bounds or misaligned access, a use after free, an aliasing violation, a data race.
#
#   scripts/miri.sh            both passes below
#   scripts/miri.sh portable   the portable kernels only
#   scripts/miri.sh avx2       the AVX2 + FMA kernels only
#
# Needs a nightly toolchain with the miri component:
#   rustup toolchain install nightly --component miri && cargo +nightly miri setup
# Not part of .ci/run (CI has the stable toolchain only). The tests are small-sized so that
# Miri, some thousand times slower than a native run, finishes in minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-all}
# The unit tests of the three files: every GEMM path and every kernel against plain sums.
filter=backend::cpu::
# rayon's thread pool (through crossbeam-epoch) casts integers to pointers, which strict
# provenance refuses: the permissive model is asked for, without its warning.
export MIRIFLAGS="${MIRIFLAGS:-} -Zmiri-permissive-provenance"

run() {
    printf '\n==> miri: %s\n' "$1"
    shift
    "$@" cargo +nightly miri test --lib -- "$filter"
}

# Miri reports no SIMD extension at run time, so `is_x86_feature_detected!` is false and the
# portable kernels run.
if [ "$mode" = all ] || [ "$mode" = portable ]; then
    run "portable kernels" env
fi
# With AVX2 and FMA enabled at compile time the detection is true without asking the
# processor, and the AVX2 kernels run, on Miri's emulation of their intrinsics.
if [ "$mode" = all ] || [ "$mode" = avx2 ]; then
    run "AVX2 + FMA kernels" env RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+avx2,+fma"
fi
