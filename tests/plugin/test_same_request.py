"""Dock and Processing build the same request from the same choices; the B_02 layer works in all three
front ends (dock, Processing, CLI) alike (issue 12, real QGIS, real backend, the bundled model)."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsSettings,
    QgsVectorLayer,
)

from backend.contract.outputs import default_output
from backend.contract.requests import Request

from ..conftest import REPO_ROOT, backend_python

RUN_TIMEOUT_MS = 180_000
S2_FILE = ("sen1floods11", "Spain_7370579_S2Hand.tif")
S1_FILE = ("sen1floods11", "Spain_7370579_S1Hand.tif")


def _add(path: Path, name: str) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), name, "gdal")
    assert layer.isValid(), path
    QgsProject.instance().addMapLayer(layer)
    return layer


def _processing_request(action: str, parameters: dict) -> Request:
    algorithm = QgsApplication.processingRegistry().algorithmById(f"terraprobe:{action}").create()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    return algorithm.build_request(parameters, context, QgsProcessingFeedback())


def _same_but_files(request: Request, **files) -> Request:
    return dataclasses.replace(request, **files)


@pytest.mark.parametrize("radar", [False, True])
def test_dock_and_processing_build_the_same_request(dock, processing_ready, shared_data, tiny_model, radar):
    s2 = _add(shared_data.joinpath(*S2_FILE), "S2 Spain")
    s1 = _add(shared_data.joinpath(*S1_FILE), "S1 Spain") if radar else None
    polygons = QgsVectorLayer(str(shared_data / "rstoolbox-sen2" / "trainingPolygons_sen2.geojson"),
                              "samples", "ogr")
    QgsProject.instance().addMapLayer(polygons)
    dock.optical_combo.setLayer(s2)
    dock.sar_combo.setLayer(s1)
    dock.samples_combo.setLayer(polygons)
    field = dock.field_combo.currentField() or polygons.fields()[0].name()
    dock.field_combo.setField(field)
    extent = s2.extent()
    area = QgsRectangle(extent.xMinimum(), extent.yMinimum(), extent.center().x(), extent.center().y())
    dock.set_drawn_rectangle(area, QgsCoordinateReferenceSystem("EPSG:4326"))
    dock.device_combo.setCurrentText("cpu")
    dock.window_spin.setValue(64)
    dock.set_units(optical="dn")
    dock.overlap_spin.setValue(16)
    dock.batch_spin.setValue(2)
    dock.neighbors_spin.setValue(7)
    dock.steps_spin.setValue(40)
    dock.k_spin.setValue(5)
    common = {"OPTICAL": s2.source(), "SAR": s1.source() if s1 else None, "MODEL": str(tiny_model),
              "EXTENT": f"{area.xMinimum()},{area.xMaximum()},{area.yMinimum()},{area.yMaximum()}"
                        " [EPSG:4326]",
              "DEVICE": 1, "WINDOW": 64, "OPTICAL_UNITS": 1, "OVERLAP": 16, "BATCH_SIZE": 2}
    samples = {"SAMPLES": polygons.source(), "CLASS_FIELD": field}
    cases = {"embed": ({}, {}), "cluster": ({"k": 5}, {"K": 5}),
             "classify": ({}, {**samples, "NEIGHBORS": 7}), "segment": ({}, {**samples, "STEPS": 40}),
             "similar": ({"point": (-1.9, 39.9), "point_crs": "EPSG:4326"},
                         {"POINT": "-1.9,39.9 [EPSG:4326]"})}
    for action, (dock_options, parameters) in cases.items():
        from_dock, _, _ = dock.build_request(action, dock_options)
        out = from_dock.out
        defaults = {"embed": {"PREVIEW": str(default_output(out, "preview"))},
                    "classify": {"CONFIDENCE": str(default_output(out, "confidence"))},
                    "segment": {"HEAD_OUT": str(default_output(out, "head"))}}.get(action, {})
        from_processing = _processing_request(action, {**common, **parameters, **defaults, "OUTPUT": out})
        # The dock snapshots the sample layer into its own file; everything else is the same.
        samples_file = {"samples": from_processing.samples} if from_dock.samples else {}
        assert _same_but_files(from_dock, **samples_file) == from_processing, action
        assert from_processing.optical_bands == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
        assert from_processing.sar_bands == ([1, 2] if radar else None)
        assert from_processing.bounds is not None and from_processing.optical_units == "dn"
    assert (from_processing.overlap, from_processing.batch_size, from_processing.window) == (16, 2, 64)


# -- the B_02 layer ------------------------------------------------------------------------------------
B_NAMES = ("B_01", "B_02", "B_03", "B_04", "B_05", "B_06", "B_07", "B_08", "B_8A", "B_09", "B_11", "B_12")


@pytest.fixture
def b02_layer(shared_data: Path, tmp_path: Path) -> Path:
    """A 48x48 crop of the rstoolbox Sentinel-2 scene whose band descriptions are B_01, B_02, ..."""
    target = tmp_path / "b_02_bands.tif"
    with rasterio.open(shared_data / "rstoolbox-sen2" / "sen2.tif") as source:
        window = rasterio.windows.Window(80, 80, 48, 48)
        profile = {**source.profile, "width": 48, "height": 48,
                   "transform": source.window_transform(window), "tiled": False}
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
        data = source.read(window=window)
        assert source.descriptions == ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11",
                                       "B12")
    with rasterio.open(target, "w", **profile) as out:
        out.write(data)
        out.descriptions = B_NAMES
    return target


def _embeddings(path: str | Path) -> np.ndarray:
    with rasterio.open(path) as source:
        return source.read()


def test_b02_layer_embeds_identically_from_dock_processing_and_cli(dock, processing_ready, b02_layer,
                                                                    tmp_path, qtbot):
    import processing

    # CLI: no band mapping; the backend's canonicaliser (the contract's) reads B_02 as B02.
    cli_out = tmp_path / "cli.tif"
    completed = subprocess.run([backend_python(), "-m", "backend", "embed", "--optical", str(b02_layer),
                                "--device", "cpu", "--cache-dir", str(tmp_path / "cli-cache"),
                                "--out", str(cli_out)], capture_output=True, text=True, cwd=REPO_ROOT,
                               timeout=600)
    assert completed.returncode == 0, completed.stderr

    # Dock: the Auto model (the bundled one the backend picks), every model band matched from B_xx.
    dock.set_model_path("")
    assert dock.model_path() is None
    layer = _add(b02_layer, "B_02 layer")
    dock.optical_combo.setLayer(layer)
    dock.area_combo.setCurrentIndex(dock.area_combo.findData("layer"))
    dock.device_combo.setCurrentText("cpu")
    assert dock.band_mapping("optical") == list(range(1, 13))
    assert dock.embed_button.isEnabled(), dock.embed_button.toolTip()
    assert dock.run_embed()
    qtbot.waitUntil(lambda: not dock.controller.running, timeout=RUN_TIMEOUT_MS)
    result = dock.controller.last_result
    assert result is not None and "done" in dock.status_label.text(), dock.status_label.text()
    dock_out = result.outputs["embeddings"]

    # Processing, with its own cache so that it computes the embeddings again.
    QgsSettings().setValue("terraprobe/cache_dir", str(tmp_path / "processing-cache"))
    request = _processing_request("embed", {"OPTICAL": str(b02_layer), "DEVICE": 1,
                                            "OUTPUT": str(tmp_path / "p.tif")})
    assert request.optical_bands == list(range(1, 13)) and request.model is None
    done = processing.run("terraprobe:embed", {"OPTICAL": str(b02_layer), "DEVICE": 1,
                                               "OUTPUT": str(tmp_path / "processing.tif"),
                                               "PREVIEW": str(tmp_path / "processing_pca.tif")})

    reference = _embeddings(cli_out)
    assert reference.shape[0] > 3 and np.isfinite(reference).any()
    np.testing.assert_array_equal(_embeddings(dock_out), reference)
    np.testing.assert_array_equal(_embeddings(done["OUTPUT"]), reference)


def test_processing_clips_a_non_file_radar_layer_to_the_area_as_the_dock_does(loaded_plugin, processing_ready,
                                                                              shared_data, tmp_path):
    from osgeo import gdal

    vrt = tmp_path / "s1.vrt"
    gdal.BuildVRT(str(vrt), [str(shared_data.joinpath(*S1_FILE))]).FlushCache()
    s2 = _add(shared_data.joinpath(*S2_FILE), "S2 Spain")
    s1 = _add(vrt, "S1 VRT")
    extent = s2.extent()
    area = QgsRectangle(extent.xMinimum(), extent.yMinimum(), extent.center().x(), extent.center().y())
    request = _processing_request("embed", {
        "OPTICAL": s2.source(), "SAR": s1.source(), "DEVICE": 1, "OUTPUT": str(tmp_path / "e.tif"),
        "EXTENT": f"{area.xMinimum()},{area.xMaximum()},{area.yMinimum()},{area.yMaximum()} [EPSG:4326]"})
    assert request.sar != str(vrt) and request.sar.endswith(".tif")
    with rasterio.open(request.sar) as exported, rasterio.open(vrt) as whole:
        assert exported.width <= whole.width // 2 + 1 and exported.height <= whole.height // 2 + 1
        assert exported.bounds.right <= area.xMaximum() + 1e-9
    assert request.sar_bands == [1, 2]


def test_processing_offers_the_docks_advanced_options_by_the_same_names(dock):
    registry = QgsApplication.processingRegistry()
    wanted = {"embed": {"OVERLAP", "BATCH_SIZE"}, "cluster": {"OVERLAP", "BATCH_SIZE"},
              "similar": {"OVERLAP", "BATCH_SIZE"}, "classify": {"OVERLAP", "BATCH_SIZE", "NEIGHBORS"},
              "segment": {"OVERLAP", "BATCH_SIZE", "STEPS"}}
    spins = {spin.objectName(): spin for spin in dock.advanced_box.spins.values()}
    assert set(spins) == {"OVERLAP", "BATCH_SIZE", "NEIGHBORS", "STEPS"}
    for action, names in wanted.items():
        algorithm = registry.algorithmById(f"terraprobe:{action}")
        for name in names:
            parameter = algorithm.parameterDefinition(name)
            assert parameter is not None, (action, name)
            assert parameter.defaultValue() == spins[name].value(), (action, name)
            spin = spins[name]
            assert (parameter.minimum(), parameter.maximum()) == (spin.minimum(), spin.maximum())
