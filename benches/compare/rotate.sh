#!/usr/bin/env bash
# Several builds (or settings) of the crate side by side on the `benches/compare` grid, in one
# sitting, in rotation, so that a drift of the machine falls on all of them: ab.sh for more
# than two. Each BIN is what `cargo bench --bench compare --no-run` builds (copied aside), or a
# script that runs one with a setting, e.g. `RECURRENT_THREADS=1 exec BIN "$@"`.
#
#   [FILTER=CASE] bash benches/compare/rotate.sh OUT_DIR ROUNDS LABEL=BIN [LABEL=BIN ...]
#
# FILTER, if set, is passed to every binary: only the grid's cases whose name holds it run.
# Round n runs every binary once, starting n places further along the list. Each run's JSON
# lines go to OUT_DIR/LABEL-n.jsonl; OUT_DIR/machine.txt records the CPU, the load, each
# binary's MD5, and during each run the CPU-seconds other processes took and the hypervisor
# took from this machine (steal), from /proc/stat. Compare two labels with
#   python3 benches/compare/ab_table.py --pair OUT_DIR BEFORE_LABEL AFTER_LABEL
set -euo pipefail
out=$1 rounds=$2 filter=${FILTER:-}
shift 2
labels=() bins=()
for spec in "$@"; do labels+=("${spec%%=*}"); bins+=("${spec#*=}"); done
count=${#labels[@]}
mkdir -p "$out"
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
steal_ticks() { awk '/^cpu / { print $9 }' /proc/stat; }
own_ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$$/stat"; }
{
    echo "cpu: $(lscpu | awk -F': +' '/^Model name/ { print $2; exit }'); cores: $(nproc)"
    echo "load average before (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
    for i in "${!labels[@]}"; do
        # File names only: a path of this machine has no place in a committed log.
        echo "${labels[$i]}: $(basename "${bins[$i]}") ($(md5sum < "${bins[$i]}" | cut -c1-12))"
    done
} | tee "$out/machine.txt"
for n in $(seq 1 "$rounds"); do
    for k in $(seq 0 $((count - 1))); do
        i=$(( (k + n - 1) % count ))
        t0=$(date +%s); b0=$(busy_ticks); s0=$(steal_ticks); own0=$(own_ticks)
        "${bins[$i]}" "$filter" > "$out/${labels[$i]}-$n.jsonl"
        b1=$(busy_ticks); s1=$(steal_ticks); own1=$(own_ticks)
        echo "${labels[$i]} $n: $(( $(date +%s) - t0 )) s; other processes took $(( (b1 - b0) - (own1 - own0) )) ticks of 1/100 CPU-second, steal $(( s1 - s0 ))" \
            | tee -a "$out/machine.txt"
    done
done
