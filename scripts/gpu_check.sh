#!/usr/bin/env bash
# The candle backend on a GPU: for a machine with an NVIDIA GPU and the CUDA toolkit (nvcc on
# PATH). One command:
#
#   scripts/gpu_check.sh [ordinal]     # the CUDA device, 0 by default
#
# 1. builds the crate with `--features cuda` (candle-core's `cuda`);
# 2. runs the PyTorch-parity suite's candle cases on the GPU (tests/parity.rs reads
#    RECURRENT_CANDLE_CUDA=<ordinal>; without it they run on candle's CPU device).
#
# Not part of .ci/run, and never run yet: the machine the crate is developed on has no GPU and
# no CUDA toolkit, so even step 1 has not been tried. Left to do: time the `benches/compare`
# grid's batch-32 cases on the GPU device (the timing bench has no candle backend yet), and a
# device choice in `char_rnn --backend candle` (it opens candle's CPU device today).
set -euo pipefail
cd "$(dirname "$0")/.."

ordinal=${1:-0}
command -v nvcc > /dev/null || { echo "nvcc not found: the cuda feature needs the CUDA toolkit"; exit 1; }

echo "==> cargo build --release --features cuda"
cargo build --release --features cuda

echo "==> PyTorch parity on CUDA device $ordinal"
RECURRENT_CANDLE_CUDA=$ordinal cargo test --release --features cuda --test parity candle -- --nocapture

