"""``backend.io.simulate``: the Sentinel-2 input's scale is checked before anything is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.errors import UserError
from backend.io.simulate import write_landsat_from_s2, write_rgbn_from_s2

RSTOOLBOX = "rstoolbox-sen2/sen2.tif"  # float32 reflectance 0-1 with band names B1..B12


def test_reflectance_0_1_read_as_dn_is_refused(shared_data: Path, tmp_path: Path) -> None:
    """It was written silently as a flat raster (Landsat DN ~7273 = reflectance 0 everywhere)."""
    out = tmp_path / "landsat.tif"
    with pytest.raises(UserError, match=r"look like reflectance 0-1.*s2_scale=1\.0"):
        write_landsat_from_s2(shared_data / RSTOOLBOX, out)
    assert not out.exists()
    with pytest.raises(UserError, match=r"s2_scale=1\.0"):
        write_rgbn_from_s2(shared_data / RSTOOLBOX, tmp_path / "rgbn.tif")


def test_reflectance_0_1_with_s2_scale_1_is_simulated(shared_data: Path, tmp_path: Path) -> None:
    import rasterio

    out = write_landsat_from_s2(shared_data / RSTOOLBOX, tmp_path / "landsat.tif", s2_scale=1.0)
    with rasterio.open(out) as src:
        reflectance = src.read(masked=True).astype(np.float64) * 2.75e-5 - 0.2
    # RStoolbox's scene: forest, a town and a river; NIR (SR_B5) well above red (SR_B4)
    assert float(reflectance[4].mean()) > 0.2 > float(reflectance[3].mean()) > 0.0
