"""The README's analyst commands run as written (issue 21 item 2).

The commands are read from README.md's ``bash`` blocks of the sections an analyst follows (*Install
the plugin into QGIS*, *Using it in QGIS*, *For developers and CI*), so the test follows the README.
Each runs in a fresh home (QGIS's default profile there, the plugin installed in it as a link to this
checkout) and in a folder holding the files the examples name: ``sen2.tif`` and ``polys.geojson`` are
the rstoolbox Sentinel-2 scene and its training polygons. The backend environment is set up in
*another* QGIS profile (``work``): ``qgis_process`` must find it there without ``TERRAPROBE_HOME``.

Not run here, each for its reason (:data:`NOT_RUN`): commands that need root and the network
(``scripts/setup.sh``, ``pip install``), the whole test suite, and commands another test runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import REPO_ROOT, backend_python

README = REPO_ROOT / "README.md"
SECTIONS = ("Install the plugin into QGIS", "Using it in QGIS", "For developers and CI")
#: command prefix -> why this test does not run it
NOT_RUN = {
    "bash scripts/setup.sh": "installs system packages as root and downloads torch (network)",
    "bash scripts/demo.sh": "run by tests/backend/test_demo.py",
    "bash scripts/test.sh": "the whole test suite (this test is part of it)",
    "python3.11 -m venv": "creates an environment for the pip install below (network)",
    "~/.local/share/terraprobe/venv/bin/python -m pip install": "downloads the pinned packages (network)",
}
EXAMPLE_FILES = {"sen2.tif": ("rstoolbox-sen2", "sen2.tif"),
                 "polys.geojson": ("rstoolbox-sen2", "trainingPolygons_sen2.geojson")}


def readme_commands(sections: tuple[str, ...] = SECTIONS) -> list[str]:
    """The shell commands of the ``bash`` blocks in ``sections`` (continuations joined, comments dropped)."""
    commands: list[str] = []
    for section in re.split(r"^## ", README.read_text(encoding="utf-8"), flags=re.MULTILINE):
        if not section.startswith(sections):
            continue
        for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL):
            text = block.replace("\\\n", " ")
            for line in text.splitlines():
                line = line.split("  #")[0].strip()
                if line and not line.startswith("#"):
                    commands.append(line)
    return commands


def _skip_reason(command: str) -> str | None:
    return next((reason for prefix, reason in NOT_RUN.items() if command.startswith(prefix)), None)


@pytest.fixture
def analyst_home(tmp_path: Path) -> Path:
    """A fresh home: the plugin in the default profile, the backend environment in profile ``work``."""
    home = tmp_path / "home"
    profiles = home / ".local" / "share" / "QGIS" / "QGIS3" / "profiles"
    plugins = profiles / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "terraprobe").symlink_to(REPO_ROOT, target_is_directory=True)
    env_bin = profiles / "work" / "terraprobe" / "venv" / "bin"
    env_bin.mkdir(parents=True)
    # The environment's interpreter: the real backend Python, noting that it was the one started.
    wrapper = env_bin / "python"
    marker = home / "work-profile-backend-used"
    wrapper.write_text(f'#!/bin/sh\ntouch "{marker}"\nexec "{backend_python()}" "$@"\n')
    wrapper.chmod(0o755)
    return home


def test_the_readme_lists_the_analyst_commands() -> None:
    commands = readme_commands()
    assert any(command.startswith("qgis_process.bin run terraprobe:classify") for command in commands)
    unknown = [command for command in commands
               if _skip_reason(command) is None and not command.startswith("qgis_process")]
    assert unknown == [], "a README command this test neither runs nor explains"


def test_readme_qgis_process_examples_run_as_written(analyst_home: Path, shared_data: Path,
                                                      tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    for name, (dataset, source) in EXAMPLE_FILES.items():
        shutil.copy(shared_data / dataset / source, workdir / name)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TERRAPROBE_", "QGIS_"))}
    env.update(HOME=str(analyst_home), QT_QPA_PLATFORM="offscreen")
    env.pop("XDG_DATA_HOME", None)
    env.pop("XDG_CONFIG_HOME", None)
    ran = []
    for command in readme_commands():
        if _skip_reason(command) is not None:
            continue
        completed = subprocess.run(["bash", "-c", command], cwd=workdir, env=env, capture_output=True,
                                   text=True, timeout=600)
        assert completed.returncode == 0, f"{command}\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        ran.append(command)
        if command.startswith("qgis_process.bin plugins enable"):
            assert "* terraprobe" in completed.stdout  # enabled in the default profile
    assert len(ran) >= 2
    labels = workdir / "labels.tif"
    assert labels.is_file() and (workdir / "labels.qml").is_file()
    assert (workdir / "labels_confidence.tif").is_file()  # CONFIDENCE not given: beside OUTPUT
    assert (analyst_home / "work-profile-backend-used").is_file()  # found in the other profile
    import rasterio

    with rasterio.open(labels) as dataset:
        classes = set(dataset.read(1).ravel().tolist()) - {0}
    assert len(classes) >= 2
