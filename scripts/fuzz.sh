#!/usr/bin/env bash
# Builds the cargo-fuzz targets of fuzz/ and runs each for SECONDS (default 30), one after the
# other; exits non-zero if any target crashed (a panic, a timeout, memory past the bound).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 600 config_parsing
#
# No sanitizer (`-s none`), so it builds on stable Rust; debug assertions and overflow checks
# are on. The build goes to its own target dir (SESSYNC_FUZZ_TARGET_DIR, default
# /var/tmp/sessync-fuzz-target), so it never waits on, or disturbs, the workspace's release
# build. Corpora grow in fuzz/corpus/<target>, crashes land in fuzz/artifacts/<target> (both
# ignored by git); replay one with
#   cargo fuzz run -s none --target-dir /var/tmp/sessync-fuzz-target TARGET fuzz/artifacts/TARGET/crash-...
# Each input may take at most SESSYNC_FUZZ_TIMEOUT seconds (default 10) and the process at most
# SESSYNC_FUZZ_RSS_MB MiB (default 1024). Run it under `nice -n 19` beside other work.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
if [ "$#" -gt 0 ]; then shift; fi
case "$seconds" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
target_dir=${SESSYNC_FUZZ_TARGET_DIR:-/var/tmp/sessync-fuzz-target}
rss_mb=${SESSYNC_FUZZ_RSS_MB:-1024}
timeout_s=${SESSYNC_FUZZ_TIMEOUT:-10}
flags=(--sanitizer none --target-dir "$target_dir")

cargo fuzz --version >/dev/null 2>&1 || scripts/setup.sh --test
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== fuzz: build (${targets[*]})"
cargo fuzz build "${flags[@]}"

# The config target starts from the config files the repository already has.
seeds=$(mktemp -d)
logs=$(mktemp -d)
trap 'rm -rf "$seeds" "$logs"' EXIT
mkdir -p "$seeds/config_parsing"
cp cluster-config/sessync.example.toml "$seeds/config_parsing/"
for f in cluster-config/examples/*/*.toml; do
  cp "$f" "$seeds/config_parsing/$(basename "$(dirname "$f")")-$(basename "$f")"
done

failed=()
summary=()
for t in "${targets[@]}"; do
  echo "== fuzz: $t for ${seconds}s"
  corpus=(fuzz/corpus/"$t")
  mkdir -p "${corpus[0]}"
  [ -d "$seeds/$t" ] && corpus+=("$seeds/$t")
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  log="$logs/$t.log"
  if cargo fuzz run "${flags[@]}" "$t" "${corpus[@]}" -- \
    -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -timeout="$timeout_s" \
    "${dict[@]}" -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result=CRASH
    failed+=("$t")
    tail -n 40 "$log" >&2
  fi
  # libFuzzer's last status line: "#<runs> DONE cov: <n> ft: <n> corp: <units>/<size> ... exec/s: <n>"
  done_line=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  summary+=("$(awk -v t="$t" -v r="$result" '{
      for (i = 1; i <= NF; i++) {
        if ($i == "cov:") cov = $(i + 1)
        if ($i == "ft:") ft = $(i + 1)
        if ($i == "corp:") { split($(i + 1), c, "/"); corp = c[1] }
        if ($i == "exec/s:") eps = $(i + 1)
      }
      runs = substr($1, 2)
      printf "%-22s %12s %9s %7s %7s %7s  %s", t, runs, eps, corp, cov, ft, r
    }' <<<"$done_line")")
done

echo "== fuzz: summary (${seconds}s each)"
printf '%-22s %12s %9s %7s %7s %7s  %s\n' target runs exec/s corpus cov ft result
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
  exit 1
fi
