#!/usr/bin/env bash
# Builds the Debian package `sessync` from the release binaries already built
# (`cargo build --release -p sessync-node -p sessync-ctl`): both binaries, the systemd unit
# (deploy/debian/sessync.service), the sessync system user (sysusers), /etc/sessync/sessync.toml
# (made here from cluster-config/sessync.example.toml), and man pages and bash/zsh/fish
# completions that the binaries write themselves (`--generate KIND`). The .deb is written to
# the target dir's debian/ folder and its path printed on the last line.
#   scripts/package.sh [--build]   (--build: build the release binaries first)
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0

if [ "${1:-}" = "--build" ]; then
  cargo build --release -q -p sessync-node -p sessync-ctl
elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--build]" >&2; exit 2
fi

if [ "$(cargo deb --version 2>/dev/null || true)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  echo "package: installing cargo-deb $CARGO_DEB_VERSION (about two minutes, once per machine)" >&2
  cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
fi

target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
release="$target/release"
for bin in sessync-node sessyncctl; do
  [ -x "$release/$bin" ] || { echo "package: $release/$bin is missing; run: cargo build --release -p sessync-node -p sessync-ctl (or $0 --build)" >&2; exit 1; }
done

# The generated assets, where node/Cargo.toml's [package.metadata.deb] expects them.
assets="$release/sessync-pkg"
rm -rf "$assets"
mkdir -p "$assets"
for bin in sessync-node sessyncctl; do
  "$release/$bin" --generate man | gzip -9n >"$assets/$bin.1.gz"
  "$release/$bin" --generate complete-bash >"$assets/$bin.bash"
  "$release/$bin" --generate complete-zsh >"$assets/_$bin"
  "$release/$bin" --generate complete-fish >"$assets/$bin.fish"
done

# The packaged config: the documented example with the paths of an installed node (data in
# the unit's StateDirectory, the postinst's cluster secret). Each line replaced must exist.
example=cluster-config/sessync.example.toml
replace() { # file, exact line, new line
  grep -qxF "$2" "$1" || { echo "package: $example no longer has the line: $2" >&2; exit 1; }
  python3 - "$1" "$2" "$3" <<'PY'
import sys
path, old, new = sys.argv[1:]
text = open(path).read().split("\n")
open(path, "w").write("\n".join(new if line == old else line for line in text))
PY
}
config="$assets/sessync.toml"
{
  echo "# Installed by the sessync package: /etc/sessync/sessync.toml, read by sessync.service."
  echo "# It starts as is: one node on 127.0.0.1:7101, data in /var/lib/sessync, the cluster secret"
  echo "# the package generated in /etc/sessync/secrets/cluster. Set site, node_id, listen and"
  echo "# advertise_url for your cluster, add [[api_keys]] (sessyncctl keys new) and [tls], then"
  echo "# \`systemctl enable --now sessync\`. See /usr/share/doc/sessync/operations.md, \"Installing\"."
  echo "#"
  cat "$example"
} >"$config"
replace "$config" 'data_dir = "data/node-1"' 'data_dir = "/var/lib/sessync"'
replace "$config" 'cluster_secret_file = "secrets/cluster"' 'cluster_secret_file = "/etc/sessync/secrets/cluster"'

# --no-build: the binaries above are what gets packaged; cargo-deb finds them (and the
# assets) through the target dir cargo metadata names. --strip: without the release profile's
# line tables the node is 22 MB instead of 500 MB.
deb=$(cargo deb -p sessync-node --no-build --strip --quiet --output "$target/debian/")
echo "$deb"
