#!/usr/bin/env bash
# Benchmarks sessync against etcd on this machine (docs/performance.md): installs what is
# missing (scripts/setup.sh --test: etcd, protoc; with --profile also perf and inferno),
# builds the node and the bench in the release profile, and runs `sessync-bench` with the arguments given,
# e.g. `scripts/bench.sh` for the full run or `scripts/bench.sh --smoke`. Reports go to
# bench-results/<time>.json and .md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
if [[ " $* " == *" --profile"* ]]; then
  command -v perf >/dev/null 2>&1 || {
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq linux-perf >/dev/null
  }
  command -v inferno-flamegraph >/dev/null 2>&1 || cargo install --locked --quiet inferno --version 0.12.8
fi
cargo build --release -p sessync-node
# Its own workspace (bench/Cargo.toml says why), same target dir.
cargo build --release --manifest-path bench/Cargo.toml
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target_dir/release/sessync-bench" "$@"
