#!/usr/bin/env bash
# Run the whole test suite in the project's own virtual environment, creating it if needed.
# Usage: bash scripts/test.sh [pytest args...]
# PTSYNTH_EXTRAS=test,peers,sdv,notebooks also installs the peer libraries used by cross-check tests
# (SDMetrics, Anonymeter, OpenDP, diffprivlib), SDV (after `pip install torch==2.13.0`) and what
# runs the notebooks; CI does this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${PTSYNTH_EXTRAS:-test}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# pip's failure still stops the script (pipefail); only its noise about absent local mirrors is dropped.
pip_install() { .venv/bin/python -m pip install --quiet "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }
pip_install --upgrade pip
pip_install -e ".[${EXTRAS}]"
exec .venv/bin/python -m pytest -n 2 "$@"
