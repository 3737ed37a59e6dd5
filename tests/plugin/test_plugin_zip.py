"""The installable zip: a ``terraprobe/`` folder with the plugin and backend, no dev files, < 25 MB."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from .conftest import REPO_ROOT


def test_plugin_zip_contents(tmp_path: Path):
    completed = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "build_plugin_zip.sh"), "--out-dir",
                                str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    zips = list(tmp_path.glob("terraprobe-*.zip"))
    assert len(zips) == 1
    assert zips[0].stat().st_size < 25 * 1024 * 1024
    names = zipfile.ZipFile(zips[0]).namelist()
    assert all(name.startswith("terraprobe/") for name in names)
    for required in ("terraprobe/metadata.txt", "terraprobe/__init__.py", "terraprobe/LICENSE",
                     "terraprobe/plugin/terraprobe_plugin.py", "terraprobe/backend/__main__.py",
                     "terraprobe/resources/icons/terraprobe.svg", "terraprobe/requirements.txt",
                     "terraprobe/i18n/terraprobe_de.qm"):
        assert required in names, f"{required} missing from the zip"
    forbidden = ("/tests/", "/.venv/", "/.git/", "__pycache__", "/test-output/", "/dist/", "/.ci/", ".pyc")
    assert not [n for n in names if any(part in n for part in forbidden)]
