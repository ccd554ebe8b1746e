#!/usr/bin/env bash
# CI of the Python client (client/python): makes a virtualenv in client/python/.venv (once;
# reinstalled only when pyproject.toml changed), installs the package with every extra from
# the package index, then runs ruff (lint and format check), mypy --strict, and pytest. The
# cluster tests start a real 3-node cluster from the built sessync-node
# ($SESSYNC_NODE_BIN, else /var/tmp/sessync-target/release/sessync-node); with CI=true a
# missing binary fails the run instead of skipping those tests. Exits non-zero on any failure.
# Usage: client/python/scripts/ci.sh [extra pytest arguments]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"

python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
  done
fi
venv="$here/.venv"
stamp="$venv/.sessync-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  echo "== python client: creating $venv with $("$python" --version)"
  "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "== python client: installing sessync[dev,django,flask,fastapi]"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e "$here[dev,django,flask,fastapi]"
  echo "$want" > "$stamp"
fi

echo "== python client: ruff"
"$venv/bin/ruff" check src tests examples
"$venv/bin/ruff" format --check src tests examples

echo "== python client: mypy --strict"
"$venv/bin/mypy" --strict

echo "== python client: pytest"
if [ "${CI:-}" = "true" ]; then export SESSYNC_REQUIRE_CLUSTER=1; fi
"$venv/bin/python" -m pytest -p no:cacheprovider "$@"
