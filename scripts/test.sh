#!/usr/bin/env bash
# Set everything up, compute the run documents, and run every test, as CI does: the README's
# test command. Extra arguments go to pytest (e.g. bash scripts/test.sh -m "not slow" -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh impls,test
bash scripts/ensure-chromium.sh
.venv/bin/mi-atlas check --papers papers --strict-venues
.venv/bin/ruff check .
set +e
# The results first (cached by what each run depends on; docs/results.md): the site tests build
# from this folder, and tests/impls/test_run_documents.py validates it. A failed run is listed
# and fails the script, after the tests have run.
.venv/bin/mi-atlas run --all --out .mi-atlas-cache/runs
runs=$?
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" = 0 ] && [ "$runs" != 0 ]; then
  echo "mi-atlas run --all failed (see above)" >&2
  exit "$runs"
fi
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: nothing was checked" >&2
  exit 1
fi
exit "$status"
