#!/usr/bin/env bash
# The two set-up commands of the README:
#   scripts/dev.sh local [raas local options]   install everything, start the local platform
#   scripts/dev.sh test  [pytest options]       install everything, run lint, types and all tests
#   scripts/dev.sh lock                         move the pins: upgrade the venv, rewrite layers/requirements.lock
# Everything goes into .venv (and the pinned CDK CLI into .cdk-cli) beside this repo; nothing is installed
# system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
BIN="$VENV/bin"
LOCK=layers/requirements.lock   # the runtime closure's versions: the venv and the Lambda layer both install these
CDK_CLI_VERSION=2.1148.1        # the CDK CLI tests/infra/test_cli_synth.py runs (installed once, so tests never resolve npm)
CDK_CLI_DIR=.cdk-cli

install() {
  if [ ! -x "$BIN/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  # Re-install only when the project's requirements or pins changed since the last install.
  local stamp="$VENV/.raas-installed" want
  want=$(cat pyproject.toml "$LOCK" | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$BIN/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$BIN/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]' --constraint "$LOCK"
    echo "$want" > "$stamp"
  fi
}

install_cdk_cli() {
  local installed
  installed=$(node -p "require('./$CDK_CLI_DIR/node_modules/aws-cdk/package.json').version" 2>/dev/null || true)
  if [ "$installed" != "$CDK_CLI_VERSION" ]; then
    npm install --prefix "$CDK_CLI_DIR" --no-audit --no-fund --loglevel=error "aws-cdk@$CDK_CLI_VERSION"
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
    install_cdk_cli
    # the CDK tests synthesize with the real layer; the build fails if it differs from the venv
    echo "== layer"; "$BIN/python" layers/build.py --report
    echo "== ruff"; "$BIN/ruff" check . && "$BIN/ruff" format --check .
    echo "== mypy"; "$BIN/mypy"
    echo "== pytest"; "$BIN/pytest" "$@"
    ;;
  lock)
    install
    # The newest versions pyproject allows (no lock), then pin what was installed; `test` rebuilds the layer.
    "$BIN/python" -m pip install --quiet --disable-pip-version-check --upgrade --upgrade-strategy eager -e '.[dev]'
    "$BIN/python" layers/build.py --lock
    cat pyproject.toml "$LOCK" | sha256sum | cut -d' ' -f1 > "$VENV/.raas-installed"
    ;;
  *)
    echo "usage: scripts/dev.sh local [--port N] [--state-dir DIR] | scripts/dev.sh test [pytest args] | scripts/dev.sh lock" >&2
    exit 2
    ;;
esac
