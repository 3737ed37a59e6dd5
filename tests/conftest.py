"""Shared fixtures: repository paths, the real shared rasters, QGIS application, GPU marker."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def backend_python() -> str:
    """The interpreter that runs ``python -m backend`` in tests (the repo's venv when present)."""
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def test_output_dir() -> Path:
    """A persistent folder for artefacts a person may want to look at (screenshots, plots)."""
    out = REPO_ROOT / "test-output"
    out.mkdir(exist_ok=True)
    return out


@contextlib.contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted with ``options`` at the new ``folder`` (root only; the test is skipped elsewhere)."""
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (root only); skipped where it cannot be mounted."""
    with tmpfs(tmp_path / "disk", "size=2m") as mount:
        yield mount


@pytest.fixture(scope="session")
def qapp(qgis_app):
    return qgis_app


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cuda = False
    if any("gpu" in item.keywords for item in items):
        try:
            import torch

            cuda = torch.cuda.is_available()
        except ImportError:
            cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not cuda:
            item.add_marker(skip_gpu)


os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
