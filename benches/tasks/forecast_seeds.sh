#!/usr/bin/env bash
# The 3 seeds of the forecasting benchmark (issue 18) on both sides, one after the other, one
# thread each, for both series: the crate's example (its build in $CARGO_TARGET_DIR, release
# unless PROFILE=debug: `cargo build --release --example forecast`) and
# benches/tasks/forecast_torch.py (PYTHON, default python3). Appends the per-seed lines to
# benches/tasks/forecast_log.txt with each run's peak memory and the machine's load average.
set -euo pipefail
cd "$(dirname "$0")/../.."
source benches/tasks/common.sh
profile=${PROFILE:-release}
bin="${CARGO_TARGET_DIR:-target}/$profile/examples/forecast"
log=benches/tasks/forecast_log.txt
echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD), $profile build, 1 thread each," \
    "$(lscpu | sed -n 's/^Model name: *//p')" >> "$log"
for series in co2 sunspots; do
    for seed in 1 2 3; do
        logged "$log" "$series recurrent" "$bin" --series "$series" --seed "$seed" --threads 1
        logged "$log" "$series pytorch  " "${PYTHON:-python3}" benches/tasks/forecast_torch.py \
            --series "$series" --seed "$seed" --threads 1
    done
done
