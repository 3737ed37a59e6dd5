"""Raster input plumbing on the real shared rasters: band mapping, areas, tiling plans, stacking, writing."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from backend.errors import UserError
from backend.io.geotiff import embedding_profile, open_stream
from backend.io.rasters import area_window, canonical_band_name, map_bands
from backend.io.stack import mosaic_tiles, stack_band_files
from backend.io.windows import plan_axis
from backend.models import S1_BANDS, S2_BANDS


def test_band_names_are_normalised() -> None:
    names = ("b2", "B2", "B02", " b08 ", "b8a", "B08A", "B12", "vv", "Vh")
    assert [canonical_band_name(n) for n in names] == [
        "B02", "B02", "B02", "B08", "B8A", "B8A", "B12", "VV", "VH"]


def test_sen1floods11_bands_mapped_from_descriptions_skipping_b10(shared_data) -> None:
    with rasterio.open(shared_data / "sen1floods11" / "Spain_7370579_S2Hand.tif") as src:
        assert map_bands(src, S2_BANDS) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
        with pytest.raises(UserError, match=r"lacks the band.*VV,VH"):
            map_bands(src, S1_BANDS, role="radar", option="--sar-bands")
        assert map_bands(src, S2_BANDS, "b1,b2,b3,b4,b5,b6,b7,b8,b8a,b9,b11,b12") == \
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]


def test_eurosat_without_descriptions_needs_explicit_mapping(shared_data) -> None:
    with rasterio.open(shared_data / "eurosat-ms" / "Forest" / "Forest_1.tif") as src:
        with pytest.raises(UserError, match=r"13 unnamed bands.*--optical-bands"):
            map_bands(src, S2_BANDS)
        explicit = map_bands(src, S2_BANDS, "1,2,3,4,5,6,7,8,13,9,11,12")
        assert explicit == [1, 2, 3, 4, 5, 6, 7, 8, 13, 9, 11, 12]
        with pytest.raises(UserError, match="lists 3 bands but the model expects 12"):
            map_bands(src, S2_BANDS, "1,2,3")
        with pytest.raises(UserError, match="band 14 does not exist"):
            map_bands(src, S2_BANDS, "1,2,3,4,5,6,7,8,14,9,11,12")


def test_area_window_from_bounds_in_another_crs(shared_data) -> None:
    with rasterio.open(shared_data / "sen1floods11" / "Spain_7370579_S1Hand.tif") as src:
        assert area_window(src) == Window(0, 0, 512, 512)
        x0, y1 = src.transform @ (100, 50)
        x1, y0 = src.transform @ (300, 250)
        window = area_window(src, (x0 + 1e-7, y0 + 1e-7, x1 - 1e-7, y1 - 1e-7))
        assert window == Window(100, 50, 200, 200)
        from rasterio.warp import transform_bounds

        utm = transform_bounds(src.crs, "EPSG:32630", x0, y0, x1, y1)
        window = area_window(src, utm, "EPSG:32630")
        # the UTM box holds the original box, and a little more (rotated grid)
        assert 90 <= window.col_off <= 100 and 200 <= window.width <= 220
        assert 40 <= window.row_off <= 50 and 200 <= window.height <= 220
        with pytest.raises(UserError, match="does not overlap"):
            area_window(src, (10.0, 10.0, 11.0, 11.0))
        with pytest.raises(UserError, match="MINX < MAXX"):
            area_window(src, (x1, y0, x0, y1))


@pytest.mark.parametrize(("n", "window", "overlap"), [(134, 15, 4), (15, 15, 4), (16, 15, 4), (5, 15, 4),
                                                      (27, 15, 4), (60, 8, 4), (61, 2, 0)])
def test_tile_cores_partition_the_axis(n: int, window: int, overlap: int) -> None:
    spans = plan_axis(n, window, overlap)
    assert spans[0].start == 0 and spans[-1].start + spans[-1].size == n
    assert [s.keep_start for s in spans[1:]] == [s.keep_stop for s in spans[:-1]]
    assert spans[0].keep_start == 0 and spans[-1].keep_stop == n
    for first, second in zip(spans, spans[1:]):
        assert first.start + first.size - second.start >= overlap  # neighbours overlap enough
        assert first.start <= first.keep_start < first.keep_stop <= first.start + first.size
        # a kept patch has at least half the overlap of context beyond the cut on both sides
        assert first.start + first.size - first.keep_stop >= overlap // 2
        assert second.keep_start - second.start >= overlap // 2


def test_stack_major_tom_bands_onto_the_10m_grid(shared_data, tmp_path) -> None:
    folder = next((shared_data / "major-tom-core" / "S2L2A").glob("*/*/*/"))
    out = stack_band_files([folder / f"{b}.tif" for b in ("B02", "B05", "B01")], tmp_path / "stack.tif")
    with rasterio.open(out) as stack, rasterio.open(folder / "B02.tif") as b02, \
            rasterio.open(folder / "B05.tif") as b05:
        assert stack.descriptions == ("B02", "B05", "B01")
        assert stack.crs == b02.crs and stack.transform == b02.transform and stack.shape == (1068, 1068)
        assert np.array_equal(stack.read(1, window=Window(0, 0, 300, 300)),
                              b02.read(1, window=Window(0, 0, 300, 300)))
        coarse = b05.read(1, window=Window(100, 100, 50, 50)).astype(float)
        fine = stack.read(2, window=Window(200, 200, 100, 100)).astype(float)
        assert abs(fine.mean() - coarse.mean()) < 0.02 * coarse.mean()  # same area, same level
    mosaic = mosaic_tiles(out, tmp_path / "mosaic.tif", (2, 2))
    with rasterio.open(mosaic) as big, rasterio.open(out) as small:
        assert big.shape == (2136, 2136)
        window = Window(1000, 1000, 136, 136)
        part = big.read(1, window=window)
        assert np.array_equal(part[:68, :68], small.read(1, window=Window(1000, 1000, 68, 68)))
        assert np.array_equal(part[68:, 68:], small.read(1, window=Window(0, 0, 68, 68)))


def test_row_stream_writer_writes_whole_block_rows(tmp_path) -> None:
    data = np.random.default_rng(0).normal(size=(5, 70, 40)).astype(np.float32)
    data[:, 3:9, 5:7] = np.nan
    profile = embedding_profile("EPSG:32630", Affine(80, 0, 500000, 0, -80, 4000000), 40, 70, 5, "float32")
    with open_stream(tmp_path / "x.tif", profile, [f"emb_{i:03d}" for i in range(5)]) as writer:
        for start, stop in ((0, 7), (7, 8), (8, 45), (45, 70)):
            writer.write_rows(data[:, start:stop])
    with rasterio.open(tmp_path / "x.tif") as src:
        assert np.array_equal(src.read(), data, equal_nan=True)
        assert src.profile["tiled"] and src.nodata != src.nodata  # NaN nodata
