#!/usr/bin/env bash
# The two set-up commands of the README:
#   scripts/dev.sh local [raas local options]   install everything, start the local platform
#   scripts/dev.sh test  [pytest options]       install everything, run lint, types and all tests
# Everything goes into .venv beside this repo; nothing is installed system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
BIN="$VENV/bin"

install() {
  if [ ! -x "$BIN/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  # Re-install only when the project's requirements changed since the last install.
  local stamp="$VENV/.raas-installed" want
  want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$BIN/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$BIN/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    echo "$want" > "$stamp"
  fi
}

case "${1:-}" in
  local)
    shift
    install
    exec "$BIN/raas" local "$@"
    ;;
  test)
    shift
    install
    echo "== layer"; "$BIN/python" layers/build.py   # the CDK tests synthesize with the real layer
    echo "== ruff"; "$BIN/ruff" check . && "$BIN/ruff" format --check .
    echo "== mypy"; "$BIN/mypy"
    echo "== pytest"; "$BIN/pytest" "$@"
    ;;
  *)
    echo "usage: scripts/dev.sh local [--port N] [--state-dir DIR] | scripts/dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
