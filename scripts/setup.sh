#!/usr/bin/env bash
# Create .venv and install mi-atlas with the given extras, always through constraints.txt
# (torch is pinned there: any looser requirement pulls several GB of CUDA wheels).
# Usage: bash scripts/setup.sh [EXTRAS]   e.g. bash scripts/setup.sh impls,test
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-impls}
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q -c constraints.txt --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[${extras}]"
