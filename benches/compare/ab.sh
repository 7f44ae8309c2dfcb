#!/usr/bin/env bash
# Two builds of the crate side by side on the `benches/compare` grid: recurrent's own timings
# before and after a change, in one sitting, alternated so that a drift of the machine falls on
# both. Each binary is what `cargo bench --bench compare --no-run` builds (copy it aside per
# commit: `target/release/deps/compare-*`).
#
#   bash benches/compare/ab.sh BEFORE_BIN AFTER_BIN OUT_DIR [ROUNDS] [FILTER]
#
# ROUNDS (default 2) full grids per binary, in the order before, after, after, before, ...: the
# runs of rotate.sh with the labels `before` and `after` (OUT_DIR/{before,after}-N.jsonl and
# OUT_DIR/machine.txt, as rotate.sh says). Then ab_table.py prints the per-case medians and
# their ratio.
set -euo pipefail
before=$1 after=$2 out=$3 rounds=${4:-2}
FILTER=${5:-} bash "$(dirname "$0")/rotate.sh" "$out" "$rounds" before="$before" after="$after"
python3 "$(dirname "$0")/ab_table.py" "$out" | tee "$out/table.md"
