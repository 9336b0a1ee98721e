#!/usr/bin/env bash
# Opt-in, not part of `scripts/dev.sh test`: Checkov, a third static scanner beside cdk-nag (in synth) and
# cfn-lint (in the tests), on the synthesized CloudFormation. Its own venv (.venv-checkov) keeps its ~100
# dependencies out of the project's; its findings are triaged by hand in docs/security.md ("Checkov triage").
#
#   scripts/checkov.sh [checkov options]      e.g. scripts/checkov.sh --check CKV_AWS_117
#
# Needs .venv (scripts/dev.sh test) for the app and its layer. Synthesizes with cdk.json as shipped into
# cdk.out.checkov/ (with -c context from CHECKOV_CDK_CONTEXT, e.g. "raas:profile=starter"). Exits non-zero
# when a check fails, as Checkov does.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=${CHECKOV_VERSION:-3.3.30}
VENV_CHECKOV=.venv-checkov
OUT=cdk.out.checkov
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  echo "scripts/checkov.sh: no .venv; run scripts/dev.sh test first (it installs the app and builds the layer)" >&2
  exit 1
fi
if [ ! -x "$VENV_CHECKOV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV_CHECKOV"
fi
if [ "$("$VENV_CHECKOV/bin/python" -c 'from importlib.metadata import version; print(version("checkov"))' 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  "$VENV_CHECKOV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi

# The CDK CLI scripts/dev.sh installs, or npx's. --no-staging: Checkov reads templates, not the assets.
cdk=.cdk-cli/node_modules/.bin/cdk
[ -x "$cdk" ] || cdk="npx --yes aws-cdk@2"
context=()
for pair in ${CHECKOV_CDK_CONTEXT:-}; do context+=(-c "$pair"); done
rm -rf "$OUT"
CDK_DISABLE_CLI_TELEMETRY=true $cdk synth --quiet --no-notices --no-staging --output "$OUT" "${context[@]}"

templates=()
for template in "$OUT"/*.template.json; do templates+=(--file "$template"); done
# --skip-download: no call to Prisma Cloud for guideline links; the checks themselves run offline.
exec "$VENV_CHECKOV/bin/checkov" --framework cloudformation --skip-download --compact --quiet "${templates[@]}" "$@"
