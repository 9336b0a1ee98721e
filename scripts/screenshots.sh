#!/usr/bin/env bash
# Regenerates the console screenshots the README shows (docs/screenshots/*.png).
#   scripts/screenshots.sh [pytest options]
# Runs the console's browser tests (tests/e2e/console) with RAAS_CONSOLE_SCREENSHOTS set to a fresh
# directory: every test saves its own screenshot there, and the few named below, taken at the moment worth
# showing, are copied into docs/screenshots. Nothing is copied unless every test passed.
# Needs what `scripts/dev.sh test` installs (the venv, the console build, Debian's chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

README_SHOTS=(tenants configuration playground overview invoice pricing)
DEST=docs/screenshots

if [ ! -x .venv/bin/pytest ] || [ ! -f console/dist/index.html ] || [ ! -x /usr/bin/chromium ]; then
  echo "error: run scripts/dev.sh test first (it installs the venv, builds the console and installs chromium)" >&2
  exit 1
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
RAAS_CONSOLE_SCREENSHOTS="$out" .venv/bin/pytest tests/e2e/console -q -p no:cacheprovider "$@"

mkdir -p "$DEST"
rm -f "$DEST"/*.png
for name in "${README_SHOTS[@]}"; do
  if [ ! -f "$out/$name.png" ]; then
    echo "error: no screenshot named $name (a test should take it with console.shot(\"$name\"))" >&2
    exit 1
  fi
  cp "$out/$name.png" "$DEST/$name.png"
done
echo "== axe findings (serious and critical ones fail the tests; these are the rest)"
.venv/bin/python -m tests.e2e.console.axe_summary "$out/axe"
ls -l "$DEST"
