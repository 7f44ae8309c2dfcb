#!/usr/bin/env bash
# Two builds of the crate side by side on the `benches/compare` grid: recurrent's own timings
# before and after a change, in one sitting, alternated so that a drift of the machine falls on
# both. Each binary is what `cargo bench --bench compare --no-run` builds (copy it aside per
# commit: `target/release/deps/compare-*`).
#
#   bash benches/compare/ab.sh BEFORE_BIN AFTER_BIN OUT_DIR [ROUNDS] [FILTER]
#
# ROUNDS (default 2) full grids per binary, in the order before, after, after, before, ... Each
# run's JSON lines go to OUT_DIR/{before,after}-N.jsonl; OUT_DIR/machine.txt records the CPU,
# the load, and during each run the CPU-seconds other processes took and the hypervisor took
# from this machine (steal), both from /proc/stat. Then ab_table.py prints the per-case medians
# and their ratio.
set -euo pipefail
before=$1 after=$2 out=$3 rounds=${4:-2} filter=${5:-}
mkdir -p "$out"
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
steal_ticks() { awk '/^cpu / { print $9 }' /proc/stat; }
{
    echo "cpu: $(lscpu | awk -F': +' '/^Model name/ { print $2; exit }'); cores: $(nproc)"
    echo "load average before (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
    # File names only: a path of this machine has no place in a committed log.
    echo "before: $(basename "$before") ($(md5sum < "$before" | cut -c1-12)); after: $(basename "$after") ($(md5sum < "$after" | cut -c1-12))"
} | tee "$out/machine.txt"
run() { # run LABEL BIN N: one full grid, with what the rest of the machine took meanwhile
    local label=$1 bin=$2 n=$3 t0 b0 own0 b1 own1 s0
    t0=$(date +%s); b0=$(busy_ticks); s0=$(steal_ticks)
    own0=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$$/stat")
    "$bin" "$filter" > "$out/$label-$n.jsonl"
    b1=$(busy_ticks); own1=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$$/stat")
    echo "$label $n: $(( $(date +%s) - t0 )) s; other processes took $(( (b1 - b0) - (own1 - own0) )) ticks of 1/100 CPU-second, steal $(( $(steal_ticks) - s0 ))" \
        | tee -a "$out/machine.txt"
}
for n in $(seq 1 "$rounds"); do
    if (( n % 2 )); then run before "$before" "$n"; run after "$after" "$n"
    else run after "$after" "$n"; run before "$before" "$n"; fi
done
python3 "$(dirname "$0")/ab_table.py" "$out" | tee "$out/table.md"
