"""Bring your own embeddings: foreign fields through every downstream command of the real CLI.

The AlphaEarth-like and TESSERA-like fields of rstoolbox-sen2 are made by
:func:`tests.backend.fields.make_fields` (shared with ``test_segment_fields.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject

from backend.errors import UserError
from backend.inference.embedding_raster import EmbeddingRaster
from tests.backend.conftest import error_of, result_of, run_json
from tests.backend.downstream_data import SEN2, SEN2_POLYGONS
from tests.backend.fields import UTM, make_fields, write_field


@pytest.fixture(scope="module")
def fields(shared_data, tmp_path_factory) -> dict[str, Path]:
    return make_fields(shared_data / SEN2, tmp_path_factory.mktemp("fields"))


def test_reader_recognises_the_fields(fields) -> None:
    with EmbeddingRaster(fields["aef"], normalise="auto") as aef:
        assert not aef.own and aef.unit_length and aef.normalised and aef.dim == 64
        array, valid = aef.read()
        assert not valid[:3, :3].any() and valid[5:, 5:].all()
        assert np.allclose(np.linalg.norm(array[:, valid], axis=0), 1.0, atol=1e-5)
    with EmbeddingRaster(fields["tessera"], normalise="auto") as tessera:
        assert not tessera.unit_length and not tessera.normalised and tessera.dim == 128
        assert tessera.crs.to_string() == UTM
    with EmbeddingRaster(fields["tessera"], normalise="l2") as tessera:
        array, valid = tessera.read()
        assert np.allclose(np.linalg.norm(array[:, valid], axis=0), 1.0, atol=1e-5)


def test_scaled_integers_nodata_values_and_masks(fields, tmp_path) -> None:
    """An int16 field with a GDAL scale/offset and a nodata value reads as the float field; a mask
    hides cells."""
    with rasterio.open(fields["aef"]) as src:
        data, crs, transform = src.read(), src.crs, src.transform
    quantised = np.where(np.isnan(data), -32768, np.round((data - 0.5) * 20000)).astype(np.int16)
    path = write_field(tmp_path / "int16.tif", quantised, crs, transform, None, nodata=-32768)
    with rasterio.open(path, "r+") as dst:
        dst.scales, dst.offsets = (1 / 20000,) * 64, (0.5,) * 64
    with EmbeddingRaster(path) as field:
        array, valid = field.read()
        assert valid.sum() == np.isfinite(data).all(axis=0).sum()
        assert np.allclose(array[:, valid], data[:, valid], atol=1e-4)
    masked = write_field(tmp_path / "masked.tif", np.nan_to_num(data), crs, transform, None)
    with rasterio.open(masked, "r+") as dst:
        mask = np.full(data.shape[1:], 255, np.uint8)
        mask[-2:, :] = 0
        dst.write_mask(mask)
    with EmbeddingRaster(masked) as field:
        _, valid = field.read()
        assert not valid[-2:].any() and valid[:-2].all()
        assert len(field.read_vectors()[0]) == valid.sum()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["aef", "tessera"])
def test_downstream_commands_run_on_foreign_fields(name, fields, shared_data, tmp_path) -> None:
    field = fields[name]
    polygons = shared_data / SEN2_POLYGONS
    clusters = result_of(run_json("cluster", "--embeddings", field, "--k", 4, "--out", tmp_path / "k.tif"))
    assert clusters["stats"]["embeddings_own"] is False and clusters["stats"]["embedding_dim"] in (64, 128)
    with rasterio.open(tmp_path / "k.tif") as src, rasterio.open(field) as emb:
        assert src.crs == emb.crs and src.transform == emb.transform
        assert set(np.unique(src.read(1))) <= {0, 1, 2, 3, 4} and len(np.unique(src.read(1))) >= 4
    labels = result_of(run_json("classify", "--embeddings", field, "--samples", polygons, "--out",
                                tmp_path / "labels.tif"))
    assert labels["stats"]["lopo_accuracy"] >= 0.6, labels["stats"]["lopo_accuracy"]
    for distance in ("cosine", "euclidean"):
        similar = result_of(run_json("similar", "--embeddings", field, "--point", -56.3625, -1.4695,
                                     "--point-crs", "EPSG:4326", "--distance", distance,
                                     "--out", tmp_path / f"sim_{distance}.tif"))
        assert similar["stats"]["valid_patches"] > 100
    with rasterio.open(tmp_path / "sim_euclidean.tif") as src:
        # a similarity like the cosine map (high = similar): the negative euclidean distance
        assert src.descriptions == ("similarity (negative euclidean distance)",)
        assert np.nanmax(src.read(1)) <= 0
    if name == "aef":  # on the scene's patch grid: segment pairs it with the scene's pixels
        segment = result_of(run_json("segment", "--embeddings", field, "--optical", shared_data / SEN2,
                                     "--samples", polygons, "--steps", 40, "--out", tmp_path / "seg.tif"))
        assert segment["stats"]["train_accuracy"] >= 0.8
        with rasterio.open(tmp_path / "seg.tif") as src:
            assert src.shape == (237, 247)


def test_change_between_fields_in_different_crs(fields, tmp_path) -> None:
    """The AlphaEarth-like field against a UTM copy where a block became the scene's most different
    cover: found where it is, nothing found elsewhere."""
    with rasterio.open(fields["aef"]) as src:
        data, crs, transform = src.read(), src.crs, src.transform
    changed = data.copy()
    block = np.nanmean(data[:, 10:18, 12:20], axis=(1, 2))
    cosine = np.tensordot(block, np.nan_to_num(data, nan=0.0), axes=1)
    row, col = np.unravel_index(np.argmin(np.where(np.isfinite(data[0]), cosine, np.inf)), cosine.shape)
    changed[:, 10:18, 12:20] = data[:, row, col][:, None, None]
    utm_transform, width, height = calculate_default_transform(crs, UTM, data.shape[2], data.shape[1],
                                                               *src.bounds)
    utm = np.full((64, height, width), np.nan, np.float32)
    reproject(changed, utm, src_transform=transform, src_crs=crs, dst_transform=utm_transform, dst_crs=UTM,
              resampling=Resampling.nearest, src_nodata=np.nan, dst_nodata=np.nan)
    after = write_field(tmp_path / "after_utm.tif", utm, UTM, utm_transform, None, nodata=float("nan"))
    result = result_of(run_json("change", "--before-embeddings", fields["aef"], "--after-embeddings", after,
                                "--out", tmp_path / "change.tif"))
    with rasterio.open(tmp_path / "change.tif") as src:
        magnitude = src.read(1)
        assert src.crs == crs and src.transform == transform  # the before field's grid
    inner = np.zeros(magnitude.shape, bool)
    inner[11:17, 13:19] = True
    truth = np.zeros(magnitude.shape, bool)
    truth[10:18, 12:20] = True
    assert np.nanmedian(magnitude[inner]) > 5 * np.nanmedian(magnitude[~truth])
    assert result["stats"]["normalised"] and 48 <= result["stats"]["changed_patches"] <= 64
    message = error_of(run_json("change", "--before-embeddings", fields["aef"], "--after-embeddings",
                                fields["tessera"], "--out", tmp_path / "bad.tif"))
    assert "different dimensions (64 and 128)" in message and not (tmp_path / "bad.tif").exists()


def test_things_that_are_not_fields_are_refused(shared_data, tmp_path) -> None:
    rng = np.random.default_rng(0)
    crs, transform = "EPSG:4326", Affine(0.001, 0, 10, 0, -0.001, 50)
    few = write_field(tmp_path / "few.tif", rng.normal(size=(4, 8, 8)).astype(np.float32), crs, transform,
                      None)
    ints = write_field(tmp_path / "ints.tif", rng.integers(0, 9, (16, 8, 8)).astype(np.int32), crs, transform,
                       None)
    cases = {
        shared_data / "rasterio-rgb-byte/RGB.byte.tif":
            "looks like an image, not an embedding field: 3 bands of uint8; pass it as --optical",
        shared_data / "sen1floods11/Spain_7370579_S2Hand.tif": "looks like an image, not an embedding field",
        shared_data / SEN2: "looks like an image, not an embedding field: 12 bands of float32 named B1",
        few: "is not an embedding field: 4 bands of float32",
        ints: "16 bands of int32 without a scale",
    }
    out = tmp_path / "out" / "k.tif"
    for path, expected in cases.items():
        message = error_of(run_json("cluster", "--embeddings", path, "--k", 3, "--out", out))
        assert expected in message, message
        assert not out.parent.exists() or not any(out.parent.iterdir())
    with pytest.raises(UserError, match="--normalise must be one of"):
        EmbeddingRaster(few, normalise="unit")
