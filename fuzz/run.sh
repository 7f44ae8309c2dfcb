#!/usr/bin/env bash
# Runs the fuzz targets: `fuzz/run.sh [TARGET] [SECONDS]`, every target in turn when TARGET is
# omitted or `all`, each for SECONDS (default 600), in one process (one core), then prints its executions.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); libFuzzer needs nightly features, which the
# stable toolchain unlocks with RUSTC_BOOTSTRAP=1. New inputs grow fuzz/corpus/TARGET (git-
# ignored) from the committed seeds in tests/fixtures/fuzz_seeds/TARGET; a crash is saved in
# fuzz/artifacts/TARGET and should become a test in tests/fuzz_regressions.rs.
#
# Memory: -rss_limit_mb and -malloc_limit_mb make an allocation of more than 2 GB (a header
# that claims a huge tensor, say) a crash, so the fuzzer reports it instead of the OS.
set -euo pipefail
cd "$(dirname "$0")"

targets=(weights checkpoint vocab corpus)
target=${1:-all}
seconds=${2:-600}
[ "$target" = all ] || targets=("$target")
export RUSTC_BOOTSTRAP=1

for t in "${targets[@]}"; do
    cargo fuzz build "$t"
done
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="fuzz-$t.log"
    echo "==> $t for ${seconds}s (log: fuzz/$log)"
    status=0
    cargo fuzz run "$t" "corpus/$t" "../tests/fixtures/fuzz_seeds/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 \
        -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="artifacts/$t/" > "$log" 2>&1 || status=$?
    grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb' "$log" || true
    grep -E '^(==[0-9]+==ERROR|SUMMARY)|panicked at|Test unit written' "$log" || true
    [ "$status" -eq 0 ] || { echo "$t: libFuzzer exited with $status"; exit "$status"; }
done
