#!/usr/bin/env bash
# Runs the whole test suite: formatting, unused dependencies, lints, unit tests, storage tests,
# HTTP tests and the multi-process cluster tests. Everything builds in the release profile only
# (one RocksDB build), in the shared target dir set in .cargo/config.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== unused dependencies (cargo machete)"
cargo machete

echo "== cargo clippy (release profile, all targets)"
cargo clippy --release --workspace --all-targets -- -D warnings

echo "== build"
cargo build --release --workspace --all-targets

echo "== unit, storage and HTTP tests"
cargo test --release --workspace --exclude sessync-chaos-tests

echo "== multi-node tests (real node processes, one test at a time)"
cargo test --release -p sessync-chaos-tests -- --test-threads=1
