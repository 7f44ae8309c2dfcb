#!/usr/bin/env bash
# The word-level language model benchmark (issue 18) on both sides, one after the other, for
# seeds $SEEDS (default 1) and $EPOCHS epochs (default 6), $THREADS threads each (default 2):
# the crate's example (its build in $CARGO_TARGET_DIR, release unless PROFILE=debug:
# `cargo build --release --example word_lm`) and benches/tasks/word_lm_torch.py (PYTHON,
# default python3). WIKITEXT is the folder holding WikiText-2's test.txt (trained on) and
# valid.txt. Every epoch's line goes to benches/tasks/word_lm_log.txt, then each run's summary
# with its peak memory and the machine's load average.
set -euo pipefail
cd "$(dirname "$0")/../.."
source benches/tasks/common.sh
: "${WIKITEXT:?set WIKITEXT to the folder of WikiText-2 test.txt and valid.txt}"
profile=${PROFILE:-release}
bin="${CARGO_TARGET_DIR:-target}/$profile/examples/word_lm"
log=benches/tasks/word_lm_log.txt
epochs=${EPOCHS:-6}
threads=${THREADS:-2}
data=(--train "$WIKITEXT/test.txt" --valid "$WIKITEXT/valid.txt" --epochs "$epochs"
    --threads "$threads")
echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD), $profile build, $threads" \
    "threads each, $(lscpu | sed -n 's/^Model name: *//p')" >> "$log"
for seed in ${SEEDS:-1}; do
    logged "$log" recurrent "$bin" "${data[@]}" --seed "$seed" \
        | grep --line-buffered -E '^epoch ' | sed -u 's/^/recurrent /' >> "$log"
    logged "$log" "pytorch  " "${PYTHON:-python3}" benches/tasks/word_lm_torch.py "${data[@]}" \
        --seed "$seed" | grep --line-buffered -E '^epoch ' | sed -u 's/^/pytorch   /' >> "$log"
done
