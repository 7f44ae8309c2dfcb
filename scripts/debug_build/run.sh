#!/usr/bin/env bash
# Times scripts/debug_build (a user's program training a small GRU) built in debug without
# profile settings, in debug with README's lines
#     [profile.dev]
#     opt-level = 1
#     [profile.dev.package."*"]
#     opt-level = 3
# (passed as --config, which is what the lines in a user's Cargo.toml do), with only the
# second of them, and in release. Run from anywhere: scripts/debug_build/run.sh
set -euo pipefail
cd "$(dirname "$0")"
target=${CARGO_TARGET_DIR:-target}
lines=(--config 'profile.dev.opt-level=1' --config 'profile.dev.package."*".opt-level=3')
deps=(--config 'profile.dev.package."*".opt-level=3')
run() {
    local name=$1
    shift
    cargo build --quiet "$@" --target-dir "$target/$name"
    local bin
    bin=$(find "$target/$name" -maxdepth 2 -type f -name debug_build -perm -u+x | head -n 1)
    echo "== $name: $bin"
    /usr/bin/time -f "$name: %e s elapsed" "$bin"
}
run debug
run debug-deps-opt3 "${deps[@]}"
run debug-readme-lines "${lines[@]}"
run release --release
