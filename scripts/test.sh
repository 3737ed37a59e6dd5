#!/usr/bin/env bash
# One command for the whole suite, headless: backend tests and plugin tests in a real QGIS.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k kmeans`); the fast subset, without
# pretraining, torchrun, job-server and install tests: `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export PYTHONDONTWRITEBYTECODE=1
.venv/bin/python -m ruff check .
.venv/bin/python -m pytest "$@"
