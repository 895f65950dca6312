#!/usr/bin/env bash
# Set everything up and run every test, as CI does: the README's test command.
# Extra arguments go to pytest (e.g. bash scripts/test.sh -m "not slow" -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh impls,test
bash scripts/ensure-chromium.sh
.venv/bin/mi-atlas check --papers papers --strict-venues
.venv/bin/ruff check .
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: nothing was checked" >&2
  exit 1
fi
exit "$status"
