#!/usr/bin/env bash
# Runs the whole test suite: formatting, unused dependencies, lints, unit tests, storage tests,
# HTTP tests, the multi-process cluster tests, the chaos suite's CI runs, a smoke run of the
# bench against etcd, the Python client's
# lint, types and tests (in a virtualenv), the deploy/ manifests checked offline, the Debian
# package installed, run and purged on this machine (root: CI), and a short run of each fuzz
# target. Everything
# builds in the release profile only (one RocksDB build), in the shared target dir set in
# .cargo/config.toml; the fuzz targets build in their own (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test

echo "== cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo fmt --manifest-path bench/Cargo.toml -- --check

echo "== unused dependencies (cargo machete)"
cargo machete

echo "== cargo clippy (release profile, all targets)"
cargo clippy --release --workspace --all-targets -- -D warnings
cargo clippy --release --manifest-path bench/Cargo.toml --all-targets -- -D warnings

echo "== build"
cargo build --release --workspace --all-targets
cargo build --release --manifest-path bench/Cargo.toml

echo "== unit, storage and HTTP tests"
cargo test --release --workspace --exclude sessync-chaos-tests

echo "== multi-node tests (real node processes, one test at a time)"
cargo test --release -p sessync-chaos-tests -- --test-threads=1

echo "== chaos suite, CI mode: fixed seeds and scenarios, history checked (docs/testing.md)"
chaos_out=$(mktemp -d /tmp/sessync-chaos.XXXXXX)
echo "histories and reports: $chaos_out"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
"$target_dir/release/sessync-chaos" --ci --out "$chaos_out"

echo "== python client: ruff, mypy --strict, pytest (a real 3-node cluster; client/python/scripts/ci.sh)"
SESSYNC_NODE_BIN="$target_dir/release/sessync-node" client/python/scripts/ci.sh

echo "== deploy/: the Kubernetes manifests and Containerfile, checked offline (scripts/deploy-check.sh)"
scripts/deploy-check.sh

echo "== Debian package: built, installed with dpkg, run as its user, called, purged (scripts/package-test.sh)"
scripts/package-test.sh

echo "== bench harness, smoke run: a moment per workload against a 3-node etcd (docs/performance.md)"
bench_out=$(mktemp -d /tmp/sessync-bench.XXXXXX)
"$target_dir/release/sessync-bench" --smoke --out "$bench_out" >/dev/null
echo "bench smoke report: $(ls "$bench_out"/*.json)"

echo "== fuzz targets, 15 s each (scripts/fuzz.sh; longer runs: docs/testing.md)"
scripts/fuzz.sh 15
