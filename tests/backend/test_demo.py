"""``scripts/demo.sh``: the one-command demo on the bundled chip with the bundled model."""

from __future__ import annotations

import os
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

BUNDLED = REPO_ROOT / "resources" / "models" / "terraprobe-croma-small.safetensors"


@pytest.mark.slow
@pytest.mark.skipif(not BUNDLED.exists(), reason="no bundled model in resources/models")
def test_demo_runs_on_cpu_and_every_output_is_a_valid_raster(tmp_path: Path) -> None:
    import rasterio

    out = tmp_path / "demo"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    began = time.monotonic()
    proc = subprocess.run(["bash", "scripts/demo.sh", str(out)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600, env=env)
    seconds = time.monotonic() - began
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert seconds < 300, f"the demo took {seconds:.0f} s on CPU (acceptance: under 5 minutes)"
    assert f"demo outputs in {out}" in proc.stdout

    with rasterio.open(REPO_ROOT / "resources" / "samples" / "Spain_7370579_S2Hand.tif") as src:
        input_crs = src.crs
    results = ["embeddings", "embeddings_pca", "clusters", "labels", "labels_confidence",
               "segmentation", "similarity"]
    for name in results:
        with rasterio.open(out / f"{name}.tif") as src:
            assert src.crs == input_crs, name
            assert src.read(1, masked=True).count() > 0, f"{name} has no valid pixel"
    for name in ("clusters", "labels", "segmentation", "similarity"):
        assert (out / f"{name}.qml").read_text().startswith("<!DOCTYPE qgis")
    with rasterio.open(out / "labels.tif") as src:
        assert set(np.unique(src.read(1))) - {0} == {1, 2, 3}  # land, urban, water

    import matplotlib.image

    sheet = matplotlib.image.imread(out / "contact_sheet.png")
    assert sheet.shape[0] > 500 and sheet.shape[1] > 1000
    rgb = sheet[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.1, "the contact sheet is blank"
    assert len(np.unique((rgb[::97] * 255).astype(np.uint8), axis=0)) > 200

    with zipfile.ZipFile(out / "terraprobe_demo.qgz") as project:
        qgs = next(name for name in project.namelist() if name.endswith(".qgs"))
        text = project.read(qgs).decode()
    for name in ("clusters.tif", "labels.tif", "similarity.tif", "Spain_7370579_S2Hand.tif"):
        assert name in text
