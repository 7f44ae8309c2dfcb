#!/usr/bin/env bash
# The candle backend against `Cpu`, side by side on the `benches/compare` grid's training step:
# one binary (`cargo bench --features candle --bench compare --no-run`), run alternately on
# `Cpu<f32>` and, with RECURRENT_BACKEND=candle, on `Candle<f32>::cpu()`, through ab.sh
# ("before" is Cpu, "after" is candle, so after / before is candle's time over Cpu's).
#
#   bash benches/compare/candle_vs_cpu.sh OUT_DIR [ROUNDS] [FILTER]
#
# ROUNDS defaults to 3, FILTER to `t64/train` (every training case of the grid).
set -euo pipefail
out=$1 rounds=${2:-3} filter=${3:-t64/train}
cd "$(dirname "$0")/../.."
cargo bench --features candle --bench compare --no-run 2>&1 | tail -1
bin=$(ls -t target/release/deps/compare-* | grep -v '\.d$' | head -1)
mkdir -p "$out"
# Two one-line launchers, so that ab.sh can alternate them as two builds.
printf '#!/bin/sh\nexec "%s" "$@"\n' "$PWD/$bin" > "$out/cpu"
printf '#!/bin/sh\nRECURRENT_BACKEND=candle exec "%s" "$@"\n' "$PWD/$bin" > "$out/candle"
chmod +x "$out/cpu" "$out/candle"
bash benches/compare/ab.sh "$out/cpu" "$out/candle" "$out" "$rounds" "$filter"
# The launchers name this machine's paths: they are not part of the log; the binary is.
rm "$out/cpu" "$out/candle"
echo "both: $(basename "$bin") ($(md5sum < "$bin" | cut -c1-12)), at commit $(git rev-parse --short HEAD)" \
    | tee -a "$out/machine.txt"
