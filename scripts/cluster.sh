#!/usr/bin/env bash
# Starts a local 3-node sessync cluster on 127.0.0.1:7101-7103 with data under ./data (the
# nodes form the cluster themselves on first start: [bootstrap]), and prints how to use it.
# Running it again resumes the same cluster from ./data. `scripts/cluster.sh stop` stops the
# nodes; `status` shows them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
example="$root/cluster-config/examples/local-3"
data="$root/data"
ports=(7101 7102 7103)
admin_key="demo-admin-key-change-me"
app_key="demo-app-key-change-me"

pid_of() { cat "$data/node-$1.pid" 2>/dev/null || true; }
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

case "${1:-start}" in
  stop)
    for n in 1 2 3; do
      if alive "$n"; then kill "$(pid_of "$n")" && echo "stopped node $n"; fi
      rm -f "$data/node-$n.pid"
    done
    exit 0 ;;
  status)
    for n in 1 2 3; do
      if alive "$n"; then echo "node $n: running (pid $(pid_of "$n")), http://127.0.0.1:${ports[$((n-1))]}"; else echo "node $n: stopped"; fi
    done
    exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

scripts/setup.sh
echo "building (release; the first build compiles RocksDB and takes a while)..." >&2
cargo build --release -q -p sessync-node -p sessync-ctl
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target/release/sessync-node"

mkdir -p "$data"
for n in 1 2 3; do
  if alive "$n"; then echo "node $n already running (pid $(pid_of "$n"))"; continue; fi
  SESSYNC_DATA_DIR="$data/node-$n" nohup "$bin" --config "$example/node-$n.toml" \
    >>"$data/node-$n.log" 2>&1 &
  echo $! >"$data/node-$n.pid"
done

wait_for() { # url, seconds
  local i=0
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    i=$((i+1)); [ "$i" -le $(( $2 * 10 )) ] || return 1; sleep 0.1
  done
}
for n in 1 2 3; do
  wait_for "http://127.0.0.1:${ports[$((n-1))]}/healthz" 30 || {
    echo "node $n did not come up; last log lines:" >&2; tail -n 20 "$data/node-$n.log" >&2; exit 1; }
done

# The nodes form the cluster themselves on first start ([bootstrap] in their configs).
for n in 1 2 3; do
  wait_for "http://127.0.0.1:${ports[$((n-1))]}/readyz" 30 || { echo "node $n is not ready; see $data/node-$n.log" >&2; exit 1; }
done
leader=$(curl -fsS -H "Authorization: Bearer $admin_key" http://127.0.0.1:7101/cluster/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])')

cat <<INFO

sessync is running: a 3-node cluster (site "local"), leader node $leader, data in ./data.
  endpoints:  http://127.0.0.1:7101  http://127.0.0.1:7102  http://127.0.0.1:7103
  app key:    $app_key
  admin key:  $admin_key
  logs:       data/node-N.log          stop: scripts/cluster.sh stop

Create a session (on any node; followers forward to the leader):
  curl -s -X POST http://127.0.0.1:7102/v1/sessions \\
    -H 'Authorization: Bearer $app_key' -H 'Content-Type: application/json' \\
    -d '{"user_id":"alice","device":{"name":"laptop"}}'

Validate its token (on another node):
  curl -s -X POST http://127.0.0.1:7103/v1/sessions/validate \\
    -H 'Authorization: Bearer $app_key' -H 'Content-Type: application/json' \\
    -d '{"token":"<token from above>"}'
INFO
