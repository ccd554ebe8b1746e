#!/usr/bin/env bash
# The Debian package on this machine, for real: builds it (scripts/package.sh, from the release
# binaries already built), checks the .deb's control data and contents, installs it with dpkg
# (twice: the secret and a local config edit survive),
# checks the unit with systemd-analyze verify, runs the installed node as the sessync user from
# the packaged config (directly: systemd need not be PID 1 here) until /healthz answers, then
# once more with two API keys added to a copy of that config to initialise a one-node cluster
# and create and validate a session with the installed sessyncctl, renders the man pages and
# checks the completions, and purges the package. Needs root (or sudo) and a throwaway machine:
# it installs and purges the package `sessync`. Bounded in time; cleans up on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }
step() { echo "package-test: $*"; }

deb=$(scripts/package.sh | tail -n 1)
[ -f "$deb" ] || fail "scripts/package.sh printed no .deb path (got: $deb)"
step "built $deb ($(du -h "$deb" | cut -f1))"

# --- the .deb itself --------------------------------------------------------------------------
info=$(dpkg-deb --info "$deb")
grep -q '^ Package: sessync$' <<<"$info" || fail "control: Package is not sessync: $info"
grep -q '^ Depends: .*systemd' <<<"$info" || fail "control: Depends lacks systemd (sysusers): $info"
[ "$(dpkg-deb --info "$deb" conffiles)" = "/etc/sessync/sessync.toml" ] ||
  fail "conffiles: expected exactly /etc/sessync/sessync.toml, got: $(dpkg-deb --info "$deb" conffiles)"
contents=$(dpkg-deb --contents "$deb" | awk '{print $NF}' | sed 's#^\./#/#')
for path in /usr/bin/sessync-node /usr/bin/sessyncctl /etc/sessync/sessync.toml \
  /usr/lib/sysusers.d/sessync.conf \
  /usr/share/man/man1/sessync-node.1.gz /usr/share/man/man1/sessyncctl.1.gz \
  /usr/share/bash-completion/completions/sessync-node /usr/share/bash-completion/completions/sessyncctl \
  /usr/share/zsh/vendor-completions/_sessync-node /usr/share/zsh/vendor-completions/_sessyncctl \
  /usr/share/fish/vendor_completions.d/sessync-node.fish /usr/share/fish/vendor_completions.d/sessyncctl.fish; do
  grep -qxF "$path" <<<"$contents" || fail "the .deb lacks $path"
done
unit_path=$(grep -E '^/(usr/)?lib/systemd/system/sessync\.service$' <<<"$contents") ||
  fail "the .deb lacks the unit sessync.service"
step ".deb control data and contents ok (unit at $unit_path)"

# --- install ----------------------------------------------------------------------------------
if dpkg -s sessync >/dev/null 2>&1; then
  fail "the package sessync is already installed on this machine; purge it first (dpkg --purge sessync)"
fi
work=$(mktemp -d /tmp/sessync-package-test.XXXXXX)
node_pid=""
cleanup() {
  local rc=$?
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  if dpkg -s sessync >/dev/null 2>&1; then $SUDO dpkg --purge sessync >/dev/null || rc=1; fi
  if [ "$rc" -ne 0 ] && [ -f "$work/node.log" ]; then
    echo "package-test: last lines of the node's log:" >&2; tail -n 20 "$work/node.log" >&2
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

$SUDO dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }
id sessync >/dev/null 2>&1 || fail "no sessync user after install"
[ "$(stat -c '%U:%G %a' /var/lib/sessync)" = "sessync:sessync 750" ] ||
  fail "/var/lib/sessync is $(stat -c '%U:%G %a' /var/lib/sessync), expected sessync:sessync 750"
[ "$(stat -c '%U:%G %a' /etc/sessync/secrets/cluster)" = "root:sessync 640" ] ||
  fail "the cluster secret is $(stat -c '%U:%G %a' /etc/sessync/secrets/cluster), expected root:sessync 640"
[ "$(wc -c </etc/sessync/secrets/cluster)" -eq 64 ] || fail "the generated cluster secret is not 64 hex digits"
step "installed: user sessync, /var/lib/sessync, a generated cluster secret"

# Installed again (an upgrade to the same version): the secret and a local config edit stay.
secret_before=$(sha256sum </etc/sessync/secrets/cluster)
echo "# a local edit" >>/etc/sessync/sessync.toml
$SUDO dpkg -i --force-confold "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i over the installed package"; }
[ "$(sha256sum </etc/sessync/secrets/cluster)" = "$secret_before" ] || fail "a reinstall replaced the cluster secret"
tail -n 1 /etc/sessync/sessync.toml | grep -qx "# a local edit" || fail "a reinstall dropped a local edit of the conffile"
sed -i '$d' /etc/sessync/sessync.toml
step "installed again: the cluster secret and a local config edit stay"

# --- the unit -----------------------------------------------------------------------------------
systemd-analyze verify "$unit_path" >"$work/verify.log" 2>&1 || { cat "$work/verify.log" >&2; fail "systemd-analyze verify $unit_path"; }
# A setting systemd cannot parse is only a warning to verify ("..., ignoring"): refuse it too.
if grep -E "sessync\.service:[0-9]+:" "$work/verify.log" >&2; then fail "systemd-analyze verify warns about the unit's lines"; fi
# The hardening as systemd scores it (0 = locked down, 10 = exposed): at most 2.0.
systemd-analyze security --offline=true --threshold=20 "$unit_path" >"$work/security.log" 2>&1 ||
  { tail -n 5 "$work/security.log" >&2; fail "systemd-analyze security rates the unit above 2.0"; }
for setting in 'User=sessync' 'ExecStart=/usr/bin/sessync-node --config /etc/sessync/sessync.toml' \
  'StateDirectory=sessync' 'ProtectSystem=strict' 'NoNewPrivileges=yes' 'CapabilityBoundingSet=' \
  'LimitNOFILE=65536' 'Restart=on-failure'; do
  grep -qxF "$setting" "$unit_path" || fail "the unit lacks $setting"
done
step "systemd-analyze verify: ok; security: $(grep -o "exposure level .*" "$work/security.log")"

# --- the installed node, as the sessync user ---------------------------------------------------
as_sessync() { $SUDO setpriv --reuid=sessync --regid=sessync --init-groups --no-new-privs -- "$@"; }
as_sessync /usr/bin/sessyncctl config check /etc/sessync/sessync.toml >/dev/null ||
  fail "sessyncctl config check /etc/sessync/sessync.toml (as sessync)"
# A free port instead of the config's 7101: other things may run on this machine.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
start_node() { # config file
  (cd / && exec env -i PATH=/usr/bin:/bin SESSYNC_LISTEN="127.0.0.1:$port" SESSYNC_ADVERTISE_URL="$url" \
    $SUDO setpriv --reuid=sessync --regid=sessync --init-groups --no-new-privs -- \
    /usr/bin/sessync-node --config "$1") >>"$work/node.log" 2>&1 &
  node_pid=$!
}
wait_for() { # path, seconds
  local i=0
  until curl -fsS -o /dev/null "$url$1" 2>/dev/null; do
    kill -0 "$node_pid" 2>/dev/null || fail "the node exited before $1 answered"
    i=$((i + 1)); [ "$i" -le $(($2 * 10)) ] || fail "$url$1 did not answer within $2 s"
    sleep 0.1
  done
}
stop_node() {
  kill -TERM "$node_pid"
  local i=0
  while kill -0 "$node_pid" 2>/dev/null; do
    i=$((i + 1)); [ "$i" -le 300 ] || fail "the node did not stop within 30 s of SIGTERM"
    sleep 0.1
  done
  wait "$node_pid" || fail "the node exited with status $? on SIGTERM"
  node_pid=""
}

start_node /etc/sessync/sessync.toml
wait_for /healthz 30
[ -n "$(find /var/lib/sessync -mindepth 1 -user sessync -print -quit)" ] ||
  fail "the node wrote nothing owned by sessync under /var/lib/sessync"
stop_node
step "the packaged config: the node ran as sessync, /healthz answered, it stopped on SIGTERM"

# The same config plus an admin and an app key, in a copy (paths in it are absolute).
ctl=/usr/bin/sessyncctl
key_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
admin_json=$($ctl --output json keys new --role admin --name ci-admin)
app_json=$($ctl --output json keys new --role app --name ci-app)
admin_key=$(key_of key <<<"$admin_json")
app_key=$(key_of key <<<"$app_json")
chmod 755 "$work"
{ cat /etc/sessync/sessync.toml; echo; key_of toml <<<"$admin_json"; key_of toml <<<"$app_json"; } >"$work/sessync.toml"
chmod 644 "$work/sessync.toml"
start_node "$work/sessync.toml"
wait_for /healthz 30
export SESSYNC_ENDPOINTS="$url"
if SESSYNC_API_KEY=not-a-key $ctl cluster status >/dev/null 2>&1; then fail "a wrong API key was accepted"; fi
SESSYNC_API_KEY=$admin_key $ctl cluster init --member "1=$url" >/dev/null || fail "cluster init"
wait_for /readyz 30
created=$(SESSYNC_API_KEY=$app_key $ctl --output json sessions create --user alice --device-name package-test) ||
  fail "sessions create"
token=$(key_of token <<<"$created")
SESSYNC_API_KEY=$app_key $ctl sessions validate "$token" >/dev/null || fail "sessions validate of the new token"
if SESSYNC_API_KEY=$app_key $ctl sessions validate "not-a-token" >/dev/null 2>&1; then
  fail "a made-up token validated"
fi
unset SESSYNC_ENDPOINTS
stop_node
step "API keys added: cluster init, a session created and its token validated over HTTP"

# --- man pages and completions -----------------------------------------------------------------
for bin in sessync-node sessyncctl; do
  page=$(MANWIDTH=100 man -P cat -l "/usr/share/man/man1/$bin.1.gz" 2>/dev/null) || fail "man -l $bin.1.gz"
  grep -q "^NAME" <<<"$page" && grep -q "$bin" <<<"$page" || fail "the man page of $bin does not render: $page"
  bash -n "/usr/share/bash-completion/completions/$bin" || fail "the bash completion of $bin is not valid bash"
  grep -Eq "^ *complete -F [_a-z]+ .* $bin\$" "/usr/share/bash-completion/completions/$bin" || fail "bash completion of $bin"
  head -n 1 "/usr/share/zsh/vendor-completions/_$bin" | grep -qx "#compdef $bin" || fail "zsh completion of $bin"
  grep -q "^complete -c $bin" "/usr/share/fish/vendor_completions.d/$bin.fish" || fail "fish completion of $bin"
done
man -P cat -l /usr/share/man/man1/sessync-node.1.gz 2>/dev/null | grep -q -- "--config" ||
  fail "the man page of sessync-node does not document --config"
step "man pages render; bash, zsh and fish completions present"

# --- purge ----------------------------------------------------------------------------------------
$SUDO dpkg --purge sessync >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg --purge"; }
for gone in /usr/bin/sessync-node /usr/bin/sessyncctl /etc/sessync /var/lib/sessync "$unit_path"; do
  [ ! -e "$gone" ] || fail "$gone is still there after dpkg --purge"
done
step "ok: purged; nothing of the package is left (the sessync user stays, as Debian policy advises)"
