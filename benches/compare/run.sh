#!/usr/bin/env bash
# The side-by-side comparison of issue 4: recurrent's training step and forward pass against the
# same model in PyTorch, JAX, candle and burn, on this machine, in one go, as tables.
#
#   bash benches/compare/run.sh            # the whole grid (about 5 minutes, plus the install;
#                                          # candle and burn add about 5 and their first build)
#   bash benches/compare/run.sh lstm/h512  # the cases whose id (cell/hH/bB/tT/op) contains this
#
# 1. A virtual environment in benches/compare/.venv (git-ignored), with torch, jax[cpu] and numpy
#    from PyPI, made on the first run and reused after.
# 2. recurrent: `cargo bench --bench compare` (recurrent_timing.rs), JSON lines.
# 3. The peers: peers.py, after checking that its JAX and PyTorch models agree.
# 4. candle and burn (ndarray and flex backends): rust_peers/, a Cargo project of its own (never
#    a dependency of the crate), built into target/rust_peers within COMPARE_RUST_PEERS_BUILD_S
#    seconds (default 1200; from clean about 10 minutes on a quiet 2-core machine, 17.5 on a
#    shared one; seconds once built), checked against PyTorch (peers.py --check-rust), then timed
#    on the same grid. COMPARE_RUST_PEERS=0 skips them; a failed or timed-out build is reported
#    and the rest goes on without them.
# 5. table.py sets them side by side; then peak resident memory of a training-step loop, LSTM
#    hidden 512, batch 32, sequence 64, for each implementation.
#
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for the Python runs only: this workplace sets
# them for old OpenBLAS builds, and they slow current ones. Results go to target/compare/.
# CI never runs this; the crate's tests never need Python.
set -euo pipefail

cd "$(dirname "$0")/../.."
here=benches/compare
venv=$here/.venv
out=target/compare
filter=${1:-}
mkdir -p "$out"

peer=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$venv/bin/python")
# Other processes on the machine skew the timings: busy_ticks is all CPU time spent (/proc/stat),
# our_ticks this script's and its waited-for children's; the difference over a phase is what
# the rest of the machine took meanwhile, in CPU seconds (ticks of 1/100 s).
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
our_ticks() { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$$/stat"; }
phase_start() { t0=$(date +%s.%N); b0=$(busy_ticks); o0=$(our_ticks); }
phase_end() {
    local b1 o1
    b1=$(busy_ticks); o1=$(our_ticks)
    echo "$1: $(awk -v t0="$t0" -v t1="$(date +%s.%N)" -v b="$((b1 - b0))" -v o="$((o1 - o0))" \
        'BEGIN { x = (b - o) / 100; if (x < 0) x = 0; printf "%.0f s wall; other processes took %.1f CPU-seconds meanwhile", t1 - t0, x }')" \
        | tee -a "$out/interference.txt"
}
max_rss_mb() { # the "Maximum resident set size" (kB) of /usr/bin/time -v's report, in MB
    awk -F': ' '/Maximum resident set size/ { printf "%.0f MB", $2 / 1024 }' "$1"
}

echo "== the Python environment ($venv)"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import torch, jax, numpy' 2>/dev/null; then
    "$venv/bin/pip" install --quiet torch 'jax[cpu]' numpy
fi

echo "== the machine"
echo "cores: $(nproc); CPU: $(lscpu | awk -F': +' '/^Model name/ { print $2; exit }')"
echo "load average before the run (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
rustc --version
"${peer[@]}" - <<'EOF'
import jax, jaxlib, numpy, torch
print(f"torch {torch.__version__}, jax {jax.__version__}, jaxlib {jaxlib.__version__}, "
      f"numpy {numpy.__version__}")
print("torch BLAS, from torch.__config__.show():")
print("\n".join(torch.__config__.show().strip().splitlines()[:6]))
EOF

echo "== recurrent (cargo bench --bench compare)"
cargo bench --bench compare --no-run
: > "$out/interference.txt"
phase_start
cargo bench --bench compare -- "$filter" | tee "$out/recurrent.jsonl"
if [ -n "$filter" ]; then # the table needs the GEMM peak whatever the filter
    cargo bench --bench compare -- gemm_peak | grep gemm_peak | tee -a "$out/recurrent.jsonl"
fi
phase_end "recurrent timings"

echo "== PyTorch and JAX (peers.py)"
"${peer[@]}" "$here/peers.py" --check | tee "$out/check.jsonl"
phase_start
"${peer[@]}" "$here/peers.py" --impl pytorch --filter "$filter" | tee "$out/peers.jsonl"
phase_end "PyTorch timings"
phase_start
"${peer[@]}" "$here/peers.py" --impl jax --filter "$filter" | tee -a "$out/peers.jsonl"
phase_end "JAX timings"

echo "== candle and burn (rust_peers)"
rust_peers=target/rust_peers/release/rust_peers
rust_ok=0
: > "$out/rust-check.jsonl"
if [ "${COMPARE_RUST_PEERS:-1}" = 0 ]; then
    echo "skipped (COMPARE_RUST_PEERS=0)"
else
    limit=${COMPARE_RUST_PEERS_BUILD_S:-1200}
    build_start=$(date +%s)
    if timeout "$limit" cargo build --release --quiet --manifest-path "$here/rust_peers/Cargo.toml" \
            --target-dir target/rust_peers; then
        echo "rust_peers built in $(($(date +%s) - build_start)) s"
        if "$rust_peers" --check > "$out/rust-check-raw.jsonl" \
                && "${peer[@]}" "$here/peers.py" --check-rust "$out/rust-check-raw.jsonl" \
                    > "$out/rust-check.jsonl"; then
            cat "$out/rust-check.jsonl"
            rust_ok=1
        else
            cat "$out/rust-check.jsonl"
            echo "rust_peers: candle or burn disagrees with PyTorch (above); not timing them"
        fi
    else
        rc=$?
        if [ "$rc" = 124 ]; then
            echo "rust_peers: the build took more than $limit s; going on without candle and burn"
        else
            echo "rust_peers: the build failed (exit $rc); going on without candle and burn"
        fi
    fi
fi
if [ "$rust_ok" = 1 ]; then
    for impl in candle burn-ndarray burn-flex; do
        phase_start
        if ! "$rust_peers" --impl "$impl" "$filter" | tee -a "$out/peers.jsonl"; then
            echo "rust_peers: $impl failed; its cases are missing from the table"
        fi
        phase_end "$impl timings"
    done
fi

echo "== the table"
python3 "$here/table.py" "$out/recurrent.jsonl" "$out/peers.jsonl" "$out/check.jsonl" \
    "$out/rust-check.jsonl" | tee "$out/table.md"
cat "$out/interference.txt"

echo "== peak resident memory: a training-step loop, LSTM hidden 512, batch 32, sequence 64"
case=lstm/h512/b32/t64/train
bin=$(cargo bench --bench compare --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "compare" \
            and m.get("executable"):
        print(m["executable"])')
/usr/bin/time -v -o "$out/mem-recurrent.txt" "$bin" "$case" > /dev/null
/usr/bin/time -v -o "$out/mem-pytorch.txt" "${peer[@]}" "$here/peers.py" --impl pytorch --filter "$case" > /dev/null
/usr/bin/time -v -o "$out/mem-pytorch-import.txt" "${peer[@]}" "$here/peers.py" --impl pytorch --import-only > /dev/null
/usr/bin/time -v -o "$out/mem-jax.txt" "${peer[@]}" "$here/peers.py" --impl jax --filter "$case" > /dev/null
/usr/bin/time -v -o "$out/mem-jax-import.txt" "${peer[@]}" "$here/peers.py" --impl jax --import-only > /dev/null
echo "recurrent: $(max_rss_mb "$out/mem-recurrent.txt")"
echo "pytorch:   $(max_rss_mb "$out/mem-pytorch.txt") (import torch alone: $(max_rss_mb "$out/mem-pytorch-import.txt"))"
echo "jax:       $(max_rss_mb "$out/mem-jax.txt") (import jax alone: $(max_rss_mb "$out/mem-jax-import.txt"))"
if [ "$rust_ok" = 1 ]; then
    for impl in candle burn-ndarray burn-flex; do
        /usr/bin/time -v -o "$out/mem-$impl.txt" "$rust_peers" --impl "$impl" "$case" > /dev/null
        echo "$impl: $(max_rss_mb "$out/mem-$impl.txt")"
    done
fi
echo "load average after the run (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
