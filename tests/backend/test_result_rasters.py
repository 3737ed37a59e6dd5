"""The one writer of downstream result rasters: atomic, verified, styled, described."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from backend.downstream.raster import RasterOutput, result_rasters
from backend.inference.embedding_raster import Grid

GRID = Grid(crs=rasterio.crs.CRS.from_epsg(32630), transform=from_origin(500000, 4200000, 80, 80),
            width=20, height=18)


def test_rasters_and_styles_appear_together_with_band_descriptions(tmp_path: Path):
    classes, scores = tmp_path / "classes.tif", tmp_path / "scores.tif"
    outputs = (RasterOutput(classes, "uint8", 0, ("class",)),
               RasterOutput(scores, "float32", float("nan"), ("water", "forest")))
    with result_rasters(GRID, *outputs) as (labels, probabilities):
        with labels.open() as dst:
            dst.write(np.ones((1, 18, 20), np.uint8))
        with probabilities.open() as dst:
            dst.write(np.full((2, 18, 20), 0.5, np.float32))
        assert not classes.exists()
        labels.style_classes({1: "water"})
        probabilities.style_range(0.0, 1.0)
    with rasterio.open(classes) as src:
        assert src.descriptions == ("class",) and src.nodata == 0 and src.crs.to_epsg() == 32630
    with rasterio.open(scores) as src:
        assert src.descriptions == ("water", "forest") and src.dtypes[0] == "float32"
    assert "water" in classes.with_suffix(".qml").read_text(encoding="utf-8")
    assert scores.with_suffix(".qml").exists()


def test_nothing_appears_on_an_error_or_without_a_style(tmp_path: Path):
    output = RasterOutput(tmp_path / "map.tif", "uint8", 0, ("class",))
    with pytest.raises(ValueError), result_rasters(GRID, output) as (result,):
        with result.open() as dst:
            dst.write(np.ones((1, 18, 20), np.uint8))
        raise ValueError("cancelled half-way")
    with pytest.raises(RuntimeError, match="without a style"), result_rasters(GRID, output) as (result,), \
            result.open() as dst:
        dst.write(np.ones((1, 18, 20), np.uint8))
    assert list(tmp_path.iterdir()) == []
