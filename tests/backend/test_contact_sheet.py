"""``contact-sheet``: a panel it cannot draw is a one-line error (exit 2), not an internal error."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.backend.conftest import run_backend


@pytest.fixture
def class_map(tmp_path: Path) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    path = tmp_path / "classes.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8",
                       crs="EPSG:32630", transform=from_origin(0, 80, 10, 10), nodata=0) as dst:
        dst.write(np.arange(64, dtype=np.uint8).reshape(1, 8, 8) % 3 + 1)
    return path


def _sheet(tmp_path: Path, panel: str) -> subprocess.CompletedProcess[str]:
    return run_backend("contact-sheet", "--panel", panel, "--out", tmp_path / "sheet.png", timeout=120)


def test_band_past_the_raster_is_a_bad_input(class_map: Path, tmp_path: Path) -> None:
    proc = _sheet(tmp_path, f"labels={class_map}:4,3,2")
    assert proc.returncode == 2, proc.stderr
    assert "internal error" not in proc.stderr
    assert "has 1 band(s), no band 4,3,2" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "sheet.png").exists()


def test_file_that_is_not_a_raster_is_a_bad_input(tmp_path: Path) -> None:
    vector = tmp_path / "polygons.geojson"
    vector.write_text('{"type": "FeatureCollection", "features": []}')
    proc = _sheet(tmp_path, f"polygons={vector}")
    assert proc.returncode == 2, proc.stderr
    assert "is not a raster GDAL can read" in proc.stderr.strip().splitlines()[-1]


def test_a_class_map_still_draws(class_map: Path, tmp_path: Path) -> None:
    proc = _sheet(tmp_path, f"labels={class_map}:1")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "sheet.png").stat().st_size > 0
