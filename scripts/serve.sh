#!/usr/bin/env bash
# Set everything up, then build and serve the site at http://127.0.0.1:8000 with live reload
# (edits to papers/*.yaml and taxonomy/*.yaml rebuild it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh impls
exec .venv/bin/mkdocs serve --dev-addr "${MI_ATLAS_ADDR:-127.0.0.1:8000}" "$@"
