"""``vectorise``: class maps from classify / cluster to styled GeoPackage polygons; bad inputs refused.

The class maps come from the real rstoolbox-sen2 scene (its per-patch band features as embeddings)
and its class polygons.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio

from backend.downstream.classify import classify_map
from backend.downstream.vectorise import simplify_ring
from backend.io.vectors import read_sample_polygons
from tests.backend.conftest import run_backend
from tests.backend.downstream_data import SEN2, SEN2_POLYGONS, write_embedding_raster


@pytest.fixture(scope="module")
def class_map(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("vectorise")
    embeddings = write_embedding_raster(shared_data / SEN2, folder / "sen2_emb.tif")
    with rasterio.open(embeddings) as emb:
        samples = read_sample_polygons(shared_data / SEN2_POLYGONS, "class", emb.crs)
    labels, confidence = folder / "labels.tif", folder / "labels_confidence.tif"
    classify_map(embeddings, samples, labels, confidence)
    return labels, confidence


def _vectorise(*arguments: str | Path) -> dict:
    done = run_backend("vectorise", *arguments, "--events", "json")
    assert done.returncode == 0, done.stderr
    return next(e for e in map(json.loads, done.stdout.splitlines()) if e["event"] == "result")


def test_class_map_to_polygons_with_names_area_confidence_and_style(class_map: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    labels, confidence = class_map
    out = tmp_path / "labels_polygons.gpkg"
    result = _vectorise("--raster", labels, "--confidence", confidence, "--out", out)
    stats = result["stats"]
    with rasterio.open(labels) as src:
        values = src.read(1)
        cell = abs(src.transform.a * src.transform.e)
    with fiona.open(out) as layer:
        features = list(layer)
        assert layer.crs.to_epsg() == 4326
    assert len(features) == stats["polygons"] > 4
    names = {f["properties"]["class_id"]: f["properties"]["class_name"] for f in features}
    assert names == {1: "dryout", 2: "forest", 3: "village", 4: "water"}
    # Every class pixel lands in exactly one polygon.
    assert sum(f["properties"]["pixels"] for f in features) == int((values > 0).sum())
    for value in names:
        assert sum(f["properties"]["pixels"] for f in features
                   if f["properties"]["class_id"] == value) == int((values == value).sum())
    # Areas in m²: about 80 m x 80 m patches at this latitude (-5.8°).
    per_pixel = [f["properties"]["area_m2"] / f["properties"]["pixels"] for f in features]
    assert 6000 < min(per_pixel) <= max(per_pixel) < 7000 and cell < 1e-6
    scores = [f["properties"]["confidence"] for f in features]
    assert all(0 < s <= 1 for s in scores)
    # The polygon style uses the class raster's colours.
    raster_style = labels.with_suffix(".qml").read_text()
    raster_colours = dict(re.findall(r'color="(#[0-9a-f]{6})" label="(\w+)"', raster_style))
    style = out.with_suffix(".qml").read_text()
    assert 'type="categorizedSymbol" attr="class_id"' in style
    for colour, name in raster_colours.items():
        rgb = ",".join(str(int(colour[i:i + 2], 16)) for i in (1, 3, 5))
        assert f'label="{name}"' in style and f'value="{rgb},255"' in style


def test_min_area_and_simplify_reduce_polygons_and_vertices(class_map: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    labels, _ = class_map
    plain = _vectorise("--raster", labels, "--out", tmp_path / "plain.gpkg")["stats"]
    sieved = _vectorise("--raster", labels, "--out", tmp_path / "sieved.gpkg", "--min-area", "60000",
                        "--simplify", "0.0002")["stats"]
    assert sieved["polygons"] < plain["polygons"] and sieved["min_area_pixels"] == 10
    with fiona.open(tmp_path / "plain.gpkg") as a, fiona.open(tmp_path / "sieved.gpkg") as b:
        vertices = [sum(len(ring) for f in layer for ring in f["geometry"]["coordinates"])
                    for layer in (a, b)]
        assert min(f["properties"]["area_m2"] for f in b) >= 60000
    assert vertices[1] < vertices[0]


def test_simplify_keeps_rings_closed_and_drops_collapsed_ones() -> None:
    square = [(0.0, 0.0), (0.0, 1.0), (0.0, 2.0), (1.0, 2.0), (2.0, 2.0), (2.0, 1.0), (2.0, 0.0), (1.0, 0.0),
              (0.0, 0.0)]
    simple = simplify_ring(square, 0.1)
    assert simple[0] == simple[-1] and len(simple) == 5
    sliver = [(0.0, 0.0), (0.0, 1.0), (0.01, 2.0), (0.0, 3.0), (0.0, 0.0)]
    assert simplify_ring(sliver, 0.5) is None


def _write(path: Path, array: np.ndarray, nodata: float | None, like: Path) -> Path:
    with rasterio.open(like) as src:
        profile = {"driver": "GTiff", "width": array.shape[-1], "height": array.shape[-2],
                   "count": array.shape[0], "dtype": array.dtype.name, "crs": src.crs,
                   "transform": src.transform, "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
    return path


@pytest.mark.parametrize("case", ["multiband", "float", "no-style", "all-nodata", "suffix", "grid",
                                  "min-area"])
def test_bad_inputs_are_one_clear_error_and_nothing_is_written(class_map: tuple[Path, Path], tmp_path: Path,
                                                                case: str) -> None:
    labels, confidence = class_map
    with rasterio.open(labels) as src:
        values = src.read()
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    out = tmp_path / "out" / "polygons.gpkg"
    arguments: list[str | Path] = ["--raster", labels]
    expected = {"multiband": "it has 2 bands", "float": "its values are float32",
                "no-style": "no paletted .qml beside it and its nodata is unset",
                "all-nodata": "no class pixel",
                "suffix": "must be a GeoPackage", "grid": "is not on the class raster's grid",
                "min-area": "--min-area 1e+09 m² is not smaller than the whole of labels.tif ("}[case]
    if case == "multiband":
        arguments = ["--raster", _write(inputs / "two.tif", np.concatenate([values, values]), 0, labels)]
    elif case == "float":
        arguments = ["--raster", confidence]
    elif case == "no-style":
        arguments = ["--raster", _write(inputs / "plain.tif", values, None, labels)]
    elif case == "all-nodata":
        arguments = ["--raster", _write(inputs / "empty.tif", np.zeros_like(values), 0, labels)]
    elif case == "suffix":
        out = tmp_path / "out" / "polygons.shp"
    elif case == "min-area":  # was "internal error: ValueError: size must be smaller than size of image"
        arguments += ["--min-area", "1e9"]
    else:
        small = _write(inputs / "small.tif", np.zeros((1, 4, 4), np.float32), None, labels)
        arguments += ["--confidence", small]
    done = run_backend("vectorise", *arguments, "--out", out)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not out.parent.exists() or not list(out.parent.iterdir())


def test_the_raster_style_is_never_overwritten(class_map: tuple[Path, Path]) -> None:
    labels, _ = class_map
    before = labels.with_suffix(".qml").read_text()
    done = run_backend("vectorise", "--raster", labels, "--out", labels.with_suffix(".gpkg"))
    assert done.returncode == 2 and "labels_polygons.gpkg" in done.stderr
    assert labels.with_suffix(".qml").read_text() == before and not labels.with_suffix(".gpkg").exists()


def test_only_some_classes(class_map: tuple[Path, Path], tmp_path: Path) -> None:
    labels, _ = class_map
    stats = _vectorise("--raster", labels, "--out", tmp_path / "water.gpkg", "--only", "water,2")["stats"]
    assert set(stats["classes"].values()) == {"forest", "water"}
    with fiona.open(tmp_path / "water.gpkg") as layer:
        assert {f["properties"]["class_name"] for f in layer} == {"forest", "water"}
    done = run_backend("vectorise", "--raster", labels, "--out", tmp_path / "none.gpkg", "--only", "snow")
    assert done.returncode == 2 and "--only snow matches no class of labels.tif" in done.stderr
    assert not (tmp_path / "none.gpkg").exists()


def test_simplify_in_degrees_that_collapses_rings_is_warned(class_map: tuple[Path, Path],
                                                            tmp_path: Path) -> None:
    labels, _ = class_map  # EPSG:4326: --simplify 10 is 10 degrees, every ring collapses
    done = run_backend("vectorise", "--raster", labels, "--out", tmp_path / "coarse.gpkg", "--simplify", "10",
                       "--events", "json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    polygons = next(e for e in events if e["event"] == "result")["stats"]["polygons"]
    assert any("here degrees" in w and "geographic CRS" in w for w in warnings), warnings
    assert any(f"collapsed {polygons} of {polygons} polygon(s)" in w for w in warnings), warnings
    fine = run_backend("vectorise", "--raster", labels, "--out", tmp_path / "fine.gpkg", "--simplify",
                       "0.0002", "--events", "json")
    assert not any("collapsed" in e.get("message", "") for e in map(json.loads, fine.stdout.splitlines())
                   if e["event"] == "warning")
