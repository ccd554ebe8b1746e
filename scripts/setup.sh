#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and run sessync: libclang (RocksDB's bindgen),
# a C++ compiler and curl. `scripts/setup.sh --test` also installs what the test suite needs:
# libfaketime (the clock-skew tests run a node with its wall clock off), protoc (the bench's
# etcd client is built from etcd's .proto files), etcd (Debian's etcd-server: the bench's
# baseline, also in the test suite's smoke run of the bench), cargo-machete, cargo-fuzz and
# cargo-deb (scripts/package-test.sh). Safe to run again: it installs only what is missing.
set -euo pipefail

test_tools=false
case "${1:-}" in
  --test) test_tools=true ;;
  "") ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

need=()
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v curl >/dev/null 2>&1 || need+=(curl)
if $test_tools; then
  dpkg -s libfaketime >/dev/null 2>&1 || need+=(libfaketime)
  command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
  command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo is missing; install Rust (rustup) first" >&2; exit 1; }
$test_tools || exit 0

# The unused-dependency check of scripts/test.sh (about a minute to build, once per machine).
if ! cargo machete --version >/dev/null 2>&1; then
  echo "setup: installing cargo-machete" >&2
  cargo install --locked --quiet cargo-machete --version 0.9.2
fi
# The fuzz targets of scripts/fuzz.sh (about a minute to build, once per machine; they run on
# stable Rust without a sanitizer).
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz" >&2
  cargo install --locked --quiet cargo-fuzz --version 0.13.2
fi
# The Debian package of scripts/package.sh (which installs it itself when missing, at the
# version it pins; here so a CI machine has it before the suite starts).
deb_version=$(sed -n 's/^CARGO_DEB_VERSION=//p' "$(dirname "$0")/package.sh")
if [ "$(cargo deb --version 2>/dev/null || true)" != "cargo-deb $deb_version" ]; then
  echo "setup: installing cargo-deb $deb_version" >&2
  cargo install --locked --quiet cargo-deb --version "$deb_version"
fi
