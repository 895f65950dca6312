#!/usr/bin/env bash
# Set everything up, compute the run documents (cached: a second start takes about a second),
# then build and serve the site at http://127.0.0.1:8000 with live reload (edits to
# papers/*.yaml and taxonomy/*.yaml rebuild it; rerun `mi-atlas run --all` after editing a
# method, and the served site picks the new documents up).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh impls
# a failed run is listed here and shown on its page; the site is served anyway
.venv/bin/mi-atlas run --all --out .mi-atlas-cache/runs || echo "some runs failed: see above" >&2
exec .venv/bin/mkdocs serve --dev-addr "${MI_ATLAS_ADDR:-127.0.0.1:8000}" "$@"
