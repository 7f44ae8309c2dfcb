#!/usr/bin/env bash
# The 3 seeds of the forecasting benchmark (issue 18) on both sides, one after the other, one
# thread each, for both series: the crate's example (its build in $CARGO_TARGET_DIR, debug
# unless PROFILE=release) and benches/tasks/forecast_torch.py (PYTHON, default python3).
# Appends the per-seed lines to benches/tasks/forecast_log.txt with the load average beside each.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${PROFILE:-debug}
bin="${CARGO_TARGET_DIR:-target}/$profile/examples/forecast"
log=benches/tasks/forecast_log.txt
echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD), $profile build, 1 thread each" >> "$log"
for series in co2 sunspots; do
    for seed in 1 2 3; do
        line=$("$bin" --series "$series" --seed "$seed" --threads 1 | tail -n 1)
        echo "$series recurrent $line; load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
        line=$("${PYTHON:-python3}" benches/tasks/forecast_torch.py --series "$series" \
            --seed "$seed" --threads 1 | tail -n 1)
        echo "$series pytorch   $line; load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
    done
done
