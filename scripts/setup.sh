#!/usr/bin/env bash
# One idempotent command: installs QGIS (Debian 12, as root) and creates .venv with the backend
# and test dependencies. Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in qgis python3-qgis xvfb xauth python3-venv python3-pip; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${need_apt[*]} (run as root, or install them first)" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# PyQGIS lives in Debian's own interpreter; the venv sees it through system site packages.
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
# Keep the machine's pip settings (find-links to the local torch wheel): do not clear PIP_* here.
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt

.venv/bin/python - <<'PY'
import numpy, torch, rasterio, einops, sklearn, safetensors  # noqa: F401
from qgis.core import Qgis
print(f"setup: ok  QGIS {Qgis.QGIS_VERSION}  torch {torch.__version__}  numpy {numpy.__version__}"
      f"  rasterio {rasterio.__version__}")
PY
