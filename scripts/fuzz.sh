#!/usr/bin/env bash
# The long fuzzing profile: schemathesis against `raas local` with many examples per operation.
#   scripts/fuzz.sh [examples per operation, default 100] [pytest args]
# The test command runs the same test with 3 examples per operation.
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES=${1:-100}
shift || true
RAAS_FUZZ_EXAMPLES="$EXAMPLES" exec .venv/bin/pytest tests/e2e/test_fuzz.py -p no:cacheprovider "$@"
