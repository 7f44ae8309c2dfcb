#!/usr/bin/env bash
# The candle backend on a GPU: for a machine with an NVIDIA GPU and the CUDA toolkit (nvcc on
# PATH). One command:
#
#   scripts/gpu_check.sh [ordinal]     # the CUDA device, 0 by default
#
# 1. builds the crate with `--features cuda` (candle-core's `cuda`);
# 2. runs the PyTorch-parity suite's candle cases on the GPU (tests/parity.rs reads
#    RECURRENT_CANDLE_CUDA=<ordinal>; without it they run on candle's CPU device);
# 3. times the `benches/compare` grid's batch-32 cases on the GPU (`Candle<f32>`) and, right
#    after, on `Cpu<f32>`, and prints the two tables' JSON lines into gpu_check/ (ab_table.py
#    sets them side by side: "before" is Cpu, "after" the GPU).
#
# `char_rnn --backend candle --cuda <ordinal>` trains on the GPU too.
#
# Not part of .ci/run, and never run yet: the machine the crate is developed on has no GPU and
# no CUDA toolkit, so even step 1 has not been tried.
set -euo pipefail
cd "$(dirname "$0")/.."

ordinal=${1:-0}
command -v nvcc > /dev/null || { echo "nvcc not found: the cuda feature needs the CUDA toolkit"; exit 1; }

echo "==> cargo build --release --features cuda"
cargo build --release --features cuda

echo "==> PyTorch parity on CUDA device $ordinal"
RECURRENT_CANDLE_CUDA=$ordinal cargo test --release --features cuda --test parity candle -- --nocapture

echo "==> the grid's batch-32 cases: Candle on CUDA device $ordinal, then Cpu"
cargo bench --features cuda --bench compare --no-run
bin=$(ls -t target/release/deps/compare-* | grep -v '\.d$' | head -1)
mkdir -p gpu_check
RECURRENT_BACKEND=candle RECURRENT_CANDLE_CUDA=$ordinal "$bin" b32 | tee gpu_check/after-1.jsonl
"$bin" b32 | tee gpu_check/before-1.jsonl
python3 benches/compare/ab_table.py gpu_check | tee gpu_check/table.md
