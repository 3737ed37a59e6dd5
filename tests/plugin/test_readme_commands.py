"""The README's commands run as written (issue 21 item 2).

The commands are read from README.md's ``bash`` blocks, so the test follows the README: every one is
either run here, exactly as written, or named in :data:`NOT_RUN` with the reason (a test fails on a
README command that is neither).

* ``qgis_process`` examples run in a fresh home (QGIS's default profile there, the plugin installed in
  it as a link to this checkout) and in a folder holding the files they name: ``sen2.tif`` and
  ``polys.geojson`` are the rstoolbox Sentinel-2 scene and its training polygons. The backend
  environment is set up in *another* QGIS profile (``work``): ``qgis_process`` must find it there
  without ``TERRAPROBE_HOME``.
* ``python -m backend`` examples run in a folder laid out as the plugin folder (``backend`` and
  ``resources`` linked), with the files they name made from the bundled Sen1Floods11 chip
  (:func:`backend_example_files`): ``S2.tif``/``S1.tif`` its eastern half, ``other.tif`` its western
  half, ``polys.gpkg`` its sample polygons, ``tessera.vrt`` a VRT over the embedding field the README's
  ``embed`` writes (standing in for a TESSERA export). Marked slow: each encoder run takes seconds to
  a minute on two shared cores.

Not run (:data:`NOT_RUN`): what needs the network (model downloads, pip, exports of other places), a
GPU (``torchrun``), root, or hours (pretraining, evaluations over datasets, the whole suite); synopsis
lines (alternatives ``a|b``, optional ``[...]``, ``DATA...``); and the two-date change example (no two
dates of one place are bundled).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ..conftest import REPO_ROOT, VENV_PYTHON, backend_python

README = REPO_ROOT / "README.md"
#: command prefix -> why no test runs it
NOT_RUN = {
    "bash scripts/setup.sh": "installs system packages as root and downloads torch (network)",
    "bash scripts/demo.sh": "run by tests/backend/test_demo.py",
    "bash scripts/test.sh": "the whole test suite (this test is part of it)",
    "python3.11 -m venv": "creates an environment for the pip install below (network)",
    "~/.local/share/terraprobe/venv/bin/python -m pip install": "downloads the pinned packages (network)",
    "python -m backend change --before-optical S2_june.tif": "needs two dates of one place (none bundled)",
    "python -m backend cache ": "synopsis (alternatives, optional parts)",
    "torchrun ": "several GPUs",
    "python -m backend cluster --embeddings aef_2023.tif": "an AlphaEarth export (network)",
    "python -m backend similar --embeddings tessera.vrt --point 0.12 52.2":
        "a TESSERA export of Cambridge (network)",
    "python -m backend change --before-embeddings aef_2018.tif": "AlphaEarth exports (network)",
    "python -m backend models download": "downloads CROMA weights (network)",
    "python -m backend models verify ~/Downloads/CROMA_base.pt": "the downloaded checkpoint (network)",
    "python -m backend models remove croma-large": "needs croma-large installed (a 1.2 GB download)",
    "python -m backend embed --optical S2.tif --model croma-base": "needs croma-base (a 778 MB download)",
    "python -m backend import-weights": "synopsis; needs a downloaded checkpoint (network)",
    "python -m backend info models/croma_base.json": "made by import-weights from a download (network)",
    "python -m backend stats DATA...": "synopsis (DATA...)",
    "python -m backend pretrain": "pretraining (hours; tests/backend runs it for a few steps)",
    "python -m backend evaluate": "an evaluation over a dataset (minutes to hours; its figures are in docs)",
    "STEPS=5000 bash scripts/train_bundled_model.sh": "trains the bundled model (hours)",
}
EXAMPLE_FILES = {"sen2.tif": ("rstoolbox-sen2", "sen2.tif"),
                 "polys.geojson": ("rstoolbox-sen2", "trainingPolygons_sen2.geojson")}
SAMPLES = REPO_ROOT / "resources" / "samples"
#: The bundled chip (512 x 512 px) is cut in two: S2.tif / S1.tif the east, other.tif the west.
HALF = 256


def readme_commands() -> list[str]:
    """The shell commands of every ``bash`` block (continuations joined, comments dropped)."""
    commands: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+", " ", line.split("  #")[0]).strip()
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


def _clean_env(home: Path) -> dict[str, str]:
    """This environment without Terraprobe's and QGIS's variables, ``home`` as HOME (a fresh user)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TERRAPROBE_", "QGIS_", "XDG_DATA_", "XDG_CONFIG_"))}
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen")
    return env


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    completed = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                               timeout=900)
    assert completed.returncode == 0, f"{command}\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return completed


def _backend_example(command: str) -> bool:
    return command.startswith("python -m backend ")


def test_every_readme_command_is_run_or_explained() -> None:
    commands = readme_commands()
    assert len(commands) > 40
    run = [c for c in commands if _skip_reason(c) is None]
    assert [c for c in run if not (c.startswith("qgis_process") or _backend_example(c))] == [], \
        "a README command no test runs and NOT_RUN does not explain"
    assert any(c.startswith("qgis_process.bin run terraprobe:classify") for c in run)
    assert sum(_backend_example(c) for c in run) >= 10
    unused = [prefix for prefix in NOT_RUN if not any(c.startswith(prefix) for c in commands)]
    assert unused == [], "NOT_RUN explains commands the README no longer has"


def test_readme_qgis_process_examples_run_as_written(analyst_home: Path, shared_data: Path,
                                                      tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    for name, (dataset, source) in EXAMPLE_FILES.items():
        shutil.copy(shared_data / dataset / source, workdir / name)
    env = _clean_env(analyst_home)
    ran = []
    for command in readme_commands():
        if _skip_reason(command) is None and command.startswith("qgis_process"):
            completed = _run(command, workdir, env)
            ran.append(command)
            if command.startswith("qgis_process.bin plugins enable"):
                assert "* terraprobe" in completed.stdout  # enabled in the default profile
    assert len(ran) >= 2
    labels = workdir / "labels.tif"
    assert labels.is_file() and (workdir / "labels.qml").is_file()
    assert (workdir / "labels_confidence.tif").is_file()  # CONFIDENCE not given: beside OUTPUT
    assert (analyst_home / "work-profile-backend-used").is_file()  # found in the other profile
    assert len(_classes(labels)) >= 2


def _classes(raster: Path) -> set[int]:
    import rasterio

    with rasterio.open(raster) as dataset:
        return set(dataset.read(1).ravel().tolist()) - {0}


def backend_example_files(folder: Path) -> None:
    """The plugin folder's layout and the files the README's backend examples name, in ``folder``."""
    import rasterio
    from rasterio.windows import Window

    for name in ("backend", "resources"):
        (folder / name).symlink_to(REPO_ROOT / name, target_is_directory=True)
    halves = {"S2.tif": ("Spain_7370579_S2Hand.tif", HALF), "S1.tif": ("Spain_7370579_S1Hand.tif", HALF),
              "other.tif": ("Spain_7370579_S2Hand.tif", 0)}
    for target, (source, column) in halves.items():
        with rasterio.open(SAMPLES / source) as src:
            window = Window(column, 0, src.width - HALF, src.height)
            profile = {**src.profile, "width": window.width, "height": window.height,
                       "transform": src.window_transform(window)}
            with rasterio.open(folder / target, "w", **profile) as dst:
                dst.write(src.read(window=window))
                dst.descriptions = src.descriptions
    subprocess.run(["ogr2ogr", "-f", "GPKG", str(folder / "polys.gpkg"),
                    str(SAMPLES / "sen1floods11_samples.geojson")], check=True, timeout=60)


@pytest.mark.slow
def test_readme_backend_examples_run_as_written(tmp_path: Path) -> None:
    workdir = tmp_path / "plugin-folder"
    workdir.mkdir()
    backend_example_files(workdir)
    env = _clean_env(tmp_path / "home")
    env.update(PATH=f"{VENV_PYTHON.parent}{os.pathsep}{env['PATH']}",  # `python`: the backend's
               TERRAPROBE_CACHE_DIR=str(tmp_path / "cache"))  # the examples share their embeddings
    ran = []
    for command in readme_commands():
        if _skip_reason(command) is not None or not _backend_example(command):
            continue
        if "tessera.vrt" in command and not (workdir / "tessera.vrt").exists():
            subprocess.run(["gdalbuildvrt", "tessera.vrt", "emb.tif"], cwd=workdir, check=True, timeout=60)
        _run(command, workdir, env)
        ran.append(command.split()[3])
    assert ran[:2] == ["embed", "cluster"] and len(ran) >= 10
    for output in ("emb.tif", "emb_pca.tif", "clusters.tif", "labels.tif", "labels_rf_proba.tif",
                   "labels_polygons.gpkg", "seg.tif", "head.safetensors", "seg2.tif", "seg_field.tif",
                   "sim.tif"):
        assert (workdir / output).is_file(), output
    assert {"water", "land"} <= set(_class_names(workdir / "labels.qml"))
    assert len(_classes(workdir / "seg2.tif")) >= 2  # the head trained on S2.tif, applied to other.tif


def _class_names(qml: Path) -> list[str]:
    return re.findall(r'label="([^"]+)"', qml.read_text(encoding="utf-8"))
