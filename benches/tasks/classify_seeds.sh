#!/usr/bin/env bash
# The 5 seeds of the Japanese Vowels benchmark (issue 18) on both sides, one after the other,
# one thread each: the crate's example (its build in $CARGO_TARGET_DIR, release unless
# PROFILE=debug: `cargo build --release --example classify`) and benches/tasks/classify_torch.py
# (PYTHON, default python3). Appends the per-seed lines to benches/tasks/classify_log.txt with
# each run's peak memory and the machine's load average.
set -euo pipefail
cd "$(dirname "$0")/../.."
source benches/tasks/common.sh
profile=${PROFILE:-release}
bin="${CARGO_TARGET_DIR:-target}/$profile/examples/classify"
log=benches/tasks/classify_log.txt
echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD), $profile build, 1 thread each," \
    "$(lscpu | sed -n 's/^Model name: *//p')" >> "$log"
for seed in 1 2 3 4 5; do
    logged "$log" recurrent "$bin" --seed "$seed" --threads 1
    logged "$log" "pytorch  " "${PYTHON:-python3}" benches/tasks/classify_torch.py \
        --seed "$seed" --threads 1
done
