"""Shared fixtures: repository paths, the real shared rasters, QGIS application, GPU and ``needs`` markers.

Tests read real data from ``../shared/data`` (``TERRAPROBE_SHARED_DATA`` points elsewhere). Where it is
missing, tests that need it are skipped on a workstation; under CI (``CI=true``) the run stops at
collection with one message naming what is missing, so a CI run never passes mostly skipped.
"""

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
SHARED_DATA = Path(os.environ.get("TERRAPROBE_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def backend_python() -> str:
    """The interpreter that runs ``python -m backend`` in tests (the repo's venv when present)."""
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


def in_ci() -> bool:
    """True when the environment says this is a CI run (``CI=true``, as GitHub, GitLab and others set)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _missing_message(paths: list[Path]) -> str:
    return "test data not found: " + ", ".join(str(p) for p in paths)


def shared_path(name: str = "") -> Path:
    """``SHARED_DATA / name`` (a dataset folder or file); skipped where missing, a failure under CI."""
    path = SHARED_DATA / name
    if not path.exists():
        if in_ci():
            pytest.fail(f"{_missing_message([path])} (CI=true: the data must be there)", pytrace=False)
        pytest.skip(_missing_message([path]))
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real test rasters (``../shared/data``)."""
    return shared_path()


def needed_paths(item: pytest.Item) -> list[Path]:
    """What ``item`` reads from outside the repository: the shared data folder, ``needs(...)`` paths."""
    paths = [SHARED_DATA] if "shared_data" in getattr(item, "fixturenames", ()) else []
    for mark in item.iter_markers("needs"):
        paths.extend(Path(arg) for arg in mark.args)
    return paths


def pytest_collection_finish(session: pytest.Session) -> None:
    """Skip selected tests whose data is missing; under CI stop the whole run with one message instead."""
    missing: dict[Path, int] = {}
    for item in session.items:
        absent = [path for path in needed_paths(item) if not path.exists()]
        for path in absent:
            missing[path] = missing.get(path, 0) + 1
        if absent and not in_ci():
            item.add_marker(pytest.mark.skip(reason=_missing_message(absent)))
    if missing and in_ci():
        lines = [f"  {path} ({count} selected tests need it)" for path, count in sorted(missing.items())]
        pytest.exit("error: CI=true but the test data is missing; mount it or set TERRAPROBE_SHARED_DATA:\n"
                    + "\n".join(lines), returncode=pytest.ExitCode.USAGE_ERROR)


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
