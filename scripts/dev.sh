#!/usr/bin/env bash
# The two set-up commands of the README:
#   scripts/dev.sh local [raas local options]   install everything, start the local platform
#   scripts/dev.sh test  [pytest options]       install everything, run lint, types and all tests
#   scripts/dev.sh lock                         move the pins: upgrade the venv, rewrite layers/requirements.lock
# Everything goes into .venv (and the pinned CDK CLI into .cdk-cli, the console's packages into
# console/node_modules) beside this repo; the one system-wide install is Debian's chromium, which `test` adds
# with apt-get when /usr/bin/chromium is missing (the console's browser tests drive it).
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
  want=$(cat pyproject.toml "$LOCK" clients/python/pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$BIN/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$BIN/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]' --constraint "$LOCK"
    # the Python client and the `raas` API commands (clients/python; httpx and pydantic are already in the venv)
    "$BIN/python" -m pip install --quiet --disable-pip-version-check -e clients/python --constraint "$LOCK"
    echo "$want" > "$stamp"
  fi
}

CONSOLE=console

# The console SPA (console/): `npm ci` from the lockfile and `npm run build` into console/dist, which
# `raas local` serves at /console/. Each step runs again only when its inputs changed (stamps, as for the venv).
install_console() {
  local stamp="$CONSOLE/node_modules/.raas-installed" want
  want=$( (node --version; cat "$CONSOLE/package.json" "$CONSOLE/package-lock.json") | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    (cd "$CONSOLE" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
  # every source file (not what npm or the build write); the stamp lives in dist, which the build empties
  stamp="$CONSOLE/dist/.raas-built"
  want=$( (cd "$CONSOLE" && find . \( -name node_modules -o -name dist -o -name coverage -o -name .vite \) -prune -o \
            -type f ! -name '*.tsbuildinfo' -print | LC_ALL=C sort | xargs -d '\n' sha256sum) | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    (cd "$CONSOLE" && npm run build --silent)
    echo "$want" > "$stamp"
  fi
}

# Debian's chromium for the console's browser tests (Playwright drives /usr/bin/chromium; its own browser
# download is not reachable from these machines, so `playwright install` is never run).
install_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "error: the console's browser tests need Debian's chromium at /usr/bin/chromium and this user is not root:" \
           "run 'apt-get install -y --no-install-recommends chromium' as root" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
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
    install_console
    exec "$BIN/raas" local "$@"
    ;;
  test)
    shift
    install
    install_cdk_cli
    install_console
    install_chromium
    # the CDK tests synthesize with the real layer; the build fails if it differs from the venv
    echo "== layer"; "$BIN/python" layers/build.py --report
    echo "== ruff"; "$BIN/ruff" check . && "$BIN/ruff" format --check .
    echo "== mypy"; "$BIN/mypy"
    echo "== console unit tests"; (cd "$CONSOLE" && CI=true npm test --silent)
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
