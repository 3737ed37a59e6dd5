"""Dock and Processing build the same request from the same choices; the B_02 layer works in all three
front ends (dock, Processing, CLI) alike (issue 12, real QGIS, real backend, the bundled model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsPointXY,
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

from ..backend.conftest import run_backend

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
    return request.replace(**files)


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
    completed = run_backend("embed", "--optical", b02_layer, "--device", "cpu", "--cache-dir",
                            tmp_path / "cli-cache", "--out", cli_out, timeout=600)
    assert completed.returncode == 0, completed.stderr

    # Dock: the Auto model (the bundled one the backend picks), every model band matched from B_xx.
    dock.set_model_path("")
    assert dock.model_path() is None
    layer = _add(b02_layer, "B_02 layer")
    dock.optical_combo.setLayer(layer)
    dock.area_combo.setCurrentIndex(dock.area_combo.findData("layer"))
    dock.device_combo.setCurrentText("cpu")
    mapping = dock.band_mapping("optical")  # the Auto model's bands (galileo-nano: 10 of the 12), each found
    assert len(mapping) == len(set(mapping)) >= 10 and mapping == sorted(mapping), mapping
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
    assert request.optical_bands == mapping and request.model is None
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


def _tiny_field(path: Path) -> Path:
    """A 16-band float32 field of 12x12 patches (UTM, 80 m cells): two regions of different vectors."""
    rng = np.random.default_rng(0)
    data = rng.normal(0.0, 0.1, (16, 12, 12)).astype("float32")
    data[:4, :, :6] += 2.0
    data[4:8, :, 6:] += 5.0  # longer vectors: euclidean and cosine disagree here
    profile = {"driver": "GTiff", "width": 12, "height": 12, "count": 16, "dtype": "float32",
               "crs": "EPSG:32630", "transform": rasterio.transform.from_origin(500_000, 4_200_000, 80, 80),
               "nodata": float("nan")}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def _aside(request: Request) -> Request:
    """The request without the files each front end names itself."""
    names = ("out", "confidence_out", "mask_out", "types_out", "samples")
    return request.replace(**{name: "x" if name == "out" else None for name in names})


def test_dock_and_processing_pass_vectors_distance_and_only_alike(dock, processing_ready, shared_data,
                                                                  tmp_path, class_map_layer):
    """Issue 14 parity: Advanced › Vectors L2 and Distance euclidean reach classify, similar and change from
    the dock as from Processing's NORMALISE and DISTANCE; Vectorise's class choice is Processing's ONLY."""
    from terraprobe.plugin.ui import dock_runs

    field = _add(_tiny_field(tmp_path / "field.tif"), "field")
    later = _add(_tiny_field(tmp_path / "later.tif"), "later")
    polygons = QgsVectorLayer(str(shared_data / "rstoolbox-sen2" / "trainingPolygons_sen2.geojson"),
                              "samples", "ogr")
    QgsProject.instance().addMapLayer(polygons)
    dock.embedding_field_combo.setLayer(field)
    dock.samples_combo.setLayer(polygons)
    dock.field_combo.setField("class")
    assert (dock.normalise_combo.currentData(), dock.distance_combo.currentData()) == ("auto", "cosine")
    dock.normalise_combo.setCurrentIndex(dock.normalise_combo.findData("l2"))
    dock.distance_combo.setCurrentIndex(dock.distance_combo.findData("euclidean"))
    choices = {"EMBEDDINGS": field.source(), "DEVICE": dock.device_combo.currentIndex(), "NORMALISE": 1,
               "DISTANCE": 1}
    cases = {"classify": (dock.actions_box.classify_options(),
                          {"SAMPLES": polygons.source(), "CLASS_FIELD": "class"}),
             "similar": ({"point": (500_400.0, 4_199_600.0), "point_crs": "EPSG:32630"},
                         {"POINT": "500400,4199600 [EPSG:32630]"})}
    for action, (options, parameters) in cases.items():
        from_dock = dock.build_request(action, options)[0]
        assert (from_dock.normalise, from_dock.distance) == ("l2", "euclidean"), action
        assert _aside(from_dock) == _aside(_processing_request(action, {**choices, **parameters})), action
    dock.change_kind_combo.setCurrentIndex(dock.change_kind_combo.findData("embeddings"))
    dock.before_combo.setLayer(field)
    dock.after_combo.setLayer(later)
    from_dock = dock_runs.change_request(dock)[0]
    from_processing = _processing_request("change", {"KIND": 0, "BEFORE": field.source(),
                                                     "AFTER": later.source(), "NORMALISE": 1, "DISTANCE": 1})
    assert (from_dock.normalise, from_dock.distance) == ("l2", "euclidean")
    assert _aside(from_dock) == _aside(from_processing)
    dock.vectorise_combo.setLayer(class_map_layer)
    only_cases = (("changed", "", "change"), ("classes", " 1, water ", "1,water"), ("all", "3", None))
    for key, text, only in only_cases:
        dock.only_combo.setCurrentIndex(dock.only_combo.findData(key))
        dock.only_edit.setText(text)
        assert dock.only_edit.isEnabled() == (key == "classes")
        from_dock = dock_runs.vectorise_request(dock)[0]
        from_processing = _processing_request("vectorise", {"INPUT": class_map_layer.source(), "MIN_AREA": 0,
                                                            "SIMPLIFY": 0, "ONLY": only or ""})
        assert from_dock.only == only and _aside(from_dock) == _aside(from_processing), key
        assert (["--only", only] == from_dock.to_argv()[-2:]) == (only is not None)
    dock.only_combo.setCurrentIndex(dock.only_combo.findData("classes"))
    dock.only_edit.setText(" ")
    with pytest.raises(ValueError, match="type the classes"):
        dock_runs.vectorise_request(dock)
    registry = QgsApplication.processingRegistry()
    for action in ("classify", "similar", "change"):
        algorithm = registry.algorithmById(f"terraprobe:{action}")
        for name, combo in (("NORMALISE", dock.normalise_combo), ("DISTANCE", dock.distance_combo)):
            parameter = algorithm.parameterDefinition(name)
            assert parameter is not None and parameter.defaultValue() == 0, (action, name)
            assert parameter.options() == [combo.itemText(i) for i in range(combo.count())], (action, name)
    assert registry.algorithmById("terraprobe:vectorise").parameterDefinition("ONLY") is not None


def test_dock_similarity_with_euclidean_distance_runs_on_a_tiny_field(dock, tmp_path, qtbot, monkeypatch):
    """A real run: the backend's own parser reads --distance euclidean from the dock's argv."""
    from backend.cli import build_parser

    field = _add(_tiny_field(tmp_path / "field.tif"), "field")
    dock.embedding_field_combo.setLayer(field)
    dock.distance_combo.setCurrentIndex(dock.distance_combo.findData("euclidean"))
    started = []
    start = dock.controller.start
    monkeypatch.setattr(dock.controller, "start", lambda request, *args, **kwargs: started.append(request)
                        or start(request, *args, **kwargs))
    utm = QgsCoordinateReferenceSystem("EPSG:32630")
    assert dock.run_similarity_at(QgsPointXY(500_200.0, 4_199_600.0), utm)
    qtbot.waitUntil(lambda: not dock.controller.running, timeout=RUN_TIMEOUT_MS)
    layers = [layer for layer in QgsProject.instance().mapLayers().values()
              if layer.customProperty("terraprobe/kind") == "similarity"]
    assert len(layers) == 1, dock.status_label.text()
    parsed = build_parser().parse_args(started[0].to_argv())
    assert (parsed.command, parsed.distance, parsed.normalise) == ("similar", "euclidean", "auto")
    with rasterio.open(layers[0].source()) as src:
        similarity = src.read(1)
    # euclidean: the map is minus the distance to the query (0 at it; below any cosine's -1 far away)
    assert np.isfinite(similarity).all() and similarity[:, :6].min() > -2.0 > similarity[:, 6:].max()
    assert similarity.max() <= 0.0
