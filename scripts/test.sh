#!/usr/bin/env bash
# Set everything up, compute the run documents, and run every test, as CI does: the README's
# test command. Extra arguments go to pytest (e.g. bash scripts/test.sh -m "not slow" -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh impls,test
bash scripts/ensure-chromium.sh
.venv/bin/mi-atlas check --papers papers --strict-venues
.venv/bin/ruff check .
.venv/bin/ruff format --check .
set +e
# The results first (cached by what each run depends on; docs/results.md): the site tests build
# from this folder, and tests/impls/test_run_documents.py validates it. A failed run is listed
# and fails the script, after the tests have run.
# Each run is on one torch thread; by default --all computes as many at once as there are cores
# (at most 4; --jobs).
.venv/bin/mi-atlas run --all --out .mi-atlas-cache/runs
runs=$?
# One pytest worker per core (at most 4), whole files to a worker: a module's fixtures (a
# loaded model, a built site) are made once. Extra arguments still go to pytest; a later -n 0 runs
# everything in this process.
.venv/bin/python -m pytest -n auto --maxprocesses 4 --dist loadfile "$@"
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
