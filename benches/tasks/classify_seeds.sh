#!/usr/bin/env bash
# The 5 seeds of the Japanese Vowels benchmark (issue 18) on both sides, one after the other,
# one thread each: the crate's example (its build in $CARGO_TARGET_DIR, debug unless PROFILE=release)
# and benches/tasks/classify_torch.py (PYTHON, default python3). Appends the per-seed lines to
# benches/tasks/classify_log.txt with the machine's load average beside each.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${PROFILE:-debug}
bin="${CARGO_TARGET_DIR:-target}/$profile/examples/classify"
log=benches/tasks/classify_log.txt
echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD), $profile build, 1 thread each" >> "$log"
for seed in 1 2 3 4 5; do
    line=$("$bin" --seed "$seed" --threads 1 | tail -n 1)
    echo "recurrent $line; load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
    line=$("${PYTHON:-python3}" benches/tasks/classify_torch.py --seed "$seed" --threads 1 | tail -n 1)
    echo "pytorch   $line; load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
done
