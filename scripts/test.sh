#!/usr/bin/env bash
# Run the whole test suite in the project's own virtual environment, creating it if needed.
# Usage: bash scripts/test.sh [pytest args...]
# PTSYNTH_EXTRAS=test,peers also installs the peer libraries used by cross-check tests
# (SDMetrics, Anonymeter, OpenDP, diffprivlib); CI does this.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${PTSYNTH_EXTRAS:-test}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${EXTRAS}]"
exec .venv/bin/python -m pytest -n 2 "$@"
