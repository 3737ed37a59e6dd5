#!/usr/bin/env bash
# Build dist/terraprobe-<version>.zip (top folder `terraprobe/`), ready for QGIS's "Install from ZIP".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[[ -x $PY ]] || PY=python3
exec "$PY" scripts/build_plugin_zip.py "$@"
