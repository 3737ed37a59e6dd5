"""Issue 14 in QGIS: foreign embedding fields, change between dates and vectorise, from the dock and from
Processing, against the real backend (real QGIS, no mocks).

The fields are the backend tests' own (:func:`tests.backend.fields.make_fields`): an AlphaEarth-like
64-band float32 field (bands A00..A63, NaN nodata) on the rstoolbox-sen2 patch grid, and a TESSERA-like
128-band field (unnamed bands) in UTM. The after date of the change is the AlphaEarth-like field with a
block of patches pasted from elsewhere in the scene.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsPointXY,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import Qt

from backend.contract.requests import Request
from tests.backend.downstream_data import SEN2, SEN2_POLYGONS
from tests.backend.fields import UTM, make_fields

RUN_TIMEOUT_MS = 120_000
BAD_FIELD = "rasterio-rgb-byte/RGB.byte.tif"
NOT_A_FIELD = "looks like an image, not an embedding field"


@pytest.fixture(scope="module")
def fields(shared_data: Path, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("plugin-fields")
    made = make_fields(shared_data / SEN2, folder)
    with rasterio.open(made["aef"]) as src:
        data, profile, names = src.read(), src.profile, src.descriptions
    after = data.copy()
    after[:, 18:26, 18:26] = data[:, 5:13, 20:28]  # another place's vectors: a real change
    made["aef_after"] = folder / "aef_after.tif"
    with rasterio.open(made["aef_after"], "w", **profile) as dst:
        dst.write(after)
        dst.descriptions = names
    return made


def _add(path: Path, name: str) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), name, "gdal")
    assert layer.isValid(), path
    QgsProject.instance().addMapLayer(layer)
    return layer


def _samples(shared_data: Path) -> QgsVectorLayer:
    layer = QgsVectorLayer(str(shared_data / SEN2_POLYGONS), "samples", "ogr")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    return layer


def _layers(kind: str) -> list:
    return [layer for layer in QgsProject.instance().mapLayers().values()
            if layer.customProperty("terraprobe/kind") == kind]


def _click(qtbot, dock, button) -> None:
    """Click ``button``; the run must start, finish and report no error."""
    errors_before = len(_criticals(dock))
    assert button.isEnabled(), button.toolTip()
    qtbot.mouseClick(button, Qt.LeftButton)
    assert dock.controller.running, dock.status_label.text()
    qtbot.waitUntil(lambda: not dock.controller.running, timeout=RUN_TIMEOUT_MS)
    assert _criticals(dock)[errors_before:] == [], dock.status_label.text()


def _criticals(dock) -> list[str]:
    return [text for _, text, level in dock.iface.messageBar().pushed if level == int(Qgis.Critical)]


def test_dock_runs_every_action_on_foreign_fields(dock, fields, shared_data, qtbot):
    aef, tessera = _add(fields["aef"], "AEF 2023"), _add(fields["tessera"], "TESSERA")
    after = _add(fields["aef_after"], "AEF 2024")
    sen2 = _add(shared_data / SEN2, "sen2")
    samples = _samples(shared_data)
    dock.embedding_field_combo.setLayer(aef)
    dock.k_spin.setValue(4)
    _click(qtbot, dock, dock.cluster_button)
    clusters = _layers("clusters")
    assert len(clusters) == 1 and clusters[0].crs() == aef.crs()
    assert clusters[0].extent().contains(aef.extent().center())

    dock.samples_combo.setLayer(samples)
    dock.field_combo.setField("class")
    _click(qtbot, dock, dock.classify_button)  # auto: the kNN on a field without its input raster
    assert len(_layers("labels")) == 1 and len(_layers("confidence")) == 1
    status = dock.status_label.text()
    assert "leave-one-polygon-out accuracy" in status and "spatially blocked" in status, status

    dock.embedding_field_combo.setLayer(tessera)
    dock.classifier_combo.setCurrentIndex(dock.classifier_combo.findData("random-forest"))
    _click(qtbot, dock, dock.classify_button)
    labels = [layer for layer in _layers("labels") if layer.crs().authid() == UTM]
    assert len(labels) == 1, [layer.name() for layer in _layers("labels")]

    dock.cluster_method_combo.setCurrentIndex(dock.cluster_method_combo.findData("hdbscan"))
    dock.min_cluster_spin.setValue(10)
    assert dock.min_cluster_spin.isVisibleTo(dock) and not dock.k_spin.isVisibleTo(dock)
    _click(qtbot, dock, dock.cluster_button)
    assert any(layer.crs().authid() == UTM for layer in _layers("clusters"))

    centre = tessera.extent().center()
    assert dock.run_similarity_at(QgsPointXY(centre), tessera.crs())
    qtbot.waitUntil(lambda: not dock.controller.running, timeout=RUN_TIMEOUT_MS)
    assert len(_layers("similarity")) == 1, dock.status_label.text()

    dock.embedding_field_combo.setLayer(aef)  # on sen2's 8x8 patch grid: segment pairs it with the pixels
    dock.optical_combo.setLayer(sen2)
    dock.steps_spin.setValue(20)
    _click(qtbot, dock, dock.segment_button)
    segmentation = _layers("segmentation")
    assert len(segmentation) == 1 and segmentation[0].width() == sen2.width()

    dock.change_kind_combo.setCurrentIndex(dock.change_kind_combo.findData("embeddings"))
    dock.before_combo.setLayer(aef)
    dock.after_combo.setLayer(after)
    dock.change_types_spin.setValue(2)
    _click(qtbot, dock, dock.change_button)
    for kind in ("magnitude", "mask", "types"):
        assert len(_layers(kind)) == 1, kind
    mask = _layers("mask")[0]
    assert dock.vectorise_combo.currentLayer() is not None  # the new class map is offered
    dock.vectorise_combo.setLayer(mask)
    _click(qtbot, dock, dock.vectorise_button)
    polygons = _layers("polygons")
    assert len(polygons) == 1 and isinstance(polygons[0], QgsVectorLayer)
    assert polygons[0].featureCount() > 0 and polygons[0].renderer().type() != "singleSymbol"


def _processing(action: str, parameters: dict) -> dict:
    import processing

    return processing.run(f"terraprobe:{action}", parameters)


def test_processing_runs_every_algorithm_on_foreign_fields(loaded_plugin, processing_ready, fields,
                                                           shared_data, tmp_path):
    polygons = str(shared_data / SEN2_POLYGONS)
    aef, tessera = str(fields["aef"]), str(fields["tessera"])
    done = _processing("cluster", {"EMBEDDINGS": tessera, "METHOD": 1, "MIN_CLUSTER_SIZE": 10,
                                   "OUTPUT": str(tmp_path / "clusters.tif")})
    assert Path(done["OUTPUT"]).is_file()
    for name, field, classifier in (("knn", aef, 1), ("rf", tessera, 2)):
        done = _processing("classify", {"EMBEDDINGS": field, "SAMPLES": polygons, "CLASS_FIELD": "class",
                                        "CLASSIFIER": classifier, "OUTPUT": str(tmp_path / f"{name}.tif"),
                                        "CONFIDENCE": str(tmp_path / f"{name}_conf.tif"),
                                        "PROBABILITIES": str(tmp_path / f"{name}_proba.tif")})
        assert Path(done["OUTPUT"]).is_file() and Path(done["PROBABILITIES"]).is_file()
        assert "BLOCKED_CV_ACCURACY" in done and done["LOPO_ACCURACY"] is not None
    done = _processing("similar", {"EMBEDDINGS": tessera, "POINT": "-56.3626,-1.4693 [EPSG:4326]",
                                   "OUTPUT": str(tmp_path / "similar.tif")})
    assert Path(done["OUTPUT"]).is_file()
    done = _processing("segment", {"EMBEDDINGS": aef, "OPTICAL": str(shared_data / SEN2), "SAMPLES": polygons,
                                   "CLASS_FIELD": "class", "STEPS": 20, "OUTPUT": str(tmp_path / "seg.tif")})
    assert Path(done["OUTPUT"]).is_file()
    done = _processing("change", {"KIND": 0, "BEFORE": aef, "AFTER": str(fields["aef_after"]),
                                  "CHANGE_CLUSTERS": 2, "OUTPUT": str(tmp_path / "change.tif"),
                                  "MASK": str(tmp_path / "change_mask.tif"),
                                  "TYPES": str(tmp_path / "change_types.tif")})
    assert all(Path(done[name]).is_file() for name in ("OUTPUT", "MASK", "TYPES"))
    with rasterio.open(done["MASK"]) as src:
        changed = src.read(1)
    assert changed[18:26, 18:26].mean() > changed.mean()  # the pasted block is where the change is
    mask = done["MASK"]
    done = _processing("vectorise", {"INPUT": mask, "MIN_AREA": 0, "SIMPLIFY": 0,
                                     "OUTPUT": str(tmp_path / "mask_polygons.gpkg")})
    layer = QgsVectorLayer(done["OUTPUT"], "polygons", "ogr")
    assert layer.isValid() and layer.featureCount() > 0
    done = _processing("vectorise", {"INPUT": mask, "ONLY": "change",  # --only: the changed areas alone
                                     "OUTPUT": str(tmp_path / "changed_polygons.gpkg")})
    changed_only = QgsVectorLayer(done["OUTPUT"], "changed", "ogr")
    names = {feature["class_name"] for feature in changed_only.getFeatures()}
    assert names == {"change"} and 0 < changed_only.featureCount() < layer.featureCount()


def _algorithm_request(action: str, parameters: dict) -> Request:
    algorithm = QgsApplication.processingRegistry().algorithmById(f"terraprobe:{action}").create()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    return algorithm.build_request(parameters, context, QgsProcessingFeedback())


def _files_aside(request: Request) -> Request:
    """The request without its output files and sample copies (each front end names its own)."""
    names = ("out", "confidence_out", "probabilities_out", "mask_out", "types_out", "samples")
    return request.replace(**{name: "x" if name == "out" else None for name in names})


def test_dock_and_processing_build_the_same_field_requests(dock, processing_ready, fields, shared_data,
                                                           class_map_layer):
    from terraprobe.plugin.ui import dock_runs

    aef, after = _add(fields["aef"], "AEF 2023"), _add(fields["aef_after"], "AEF 2024")
    samples = _samples(shared_data)
    dock.embedding_field_combo.setLayer(aef)
    dock.samples_combo.setLayer(samples)
    dock.field_combo.setField("class")
    dock.cluster_method_combo.setCurrentIndex(1)
    dock.min_cluster_spin.setValue(12)
    dock.classifier_combo.setCurrentIndex(dock.classifier_combo.findData("gradient-boosting"))
    dock.neighbors_spin.setValue(7)
    field = {"EMBEDDINGS": aef.source(), "DEVICE": dock.device_combo.currentIndex()}
    cases = {
        "cluster": (dock.actions_box.cluster_options(), {"METHOD": 1, "MIN_CLUSTER_SIZE": 12}),
        "classify": (dock.actions_box.classify_options(),
                     {"SAMPLES": samples.source(), "CLASS_FIELD": "class", "CLASSIFIER": 3, "NEIGHBORS": 7}),
        "similar": ({"point": (-56.3626, -1.4693), "point_crs": "EPSG:4326"},
                    {"POINT": "-56.3626,-1.4693 [EPSG:4326]"}),
    }
    for action, (options, parameters) in cases.items():
        from_dock = dock.build_request(action, options)[0]
        from_processing = _algorithm_request(action, {**field, **parameters})
        assert from_dock.embeddings == str(fields["aef"]) and from_dock.optical is None
        assert _files_aside(from_dock) == _files_aside(from_processing), action
    dock.before_combo.setLayer(aef)
    dock.after_combo.setLayer(after)
    dock.threshold_combo.setCurrentIndex(dock.threshold_combo.findData("value"))
    dock.threshold_spin.setValue(0.25)
    dock.change_types_spin.setValue(3)
    from_dock = dock_runs.change_request(dock)[0]
    from_processing = _algorithm_request("change", {"KIND": 0, "BEFORE": aef.source(),
                                                    "AFTER": after.source(), "THRESHOLD": "0.25",
                                                    "CHANGE_CLUSTERS": 3})
    assert from_dock.threshold == "0.25" and from_dock.change_clusters == 3
    assert _files_aside(from_dock) == _files_aside(from_processing)
    dock.vectorise_combo.setLayer(class_map_layer)
    dock.min_area_spin.setValue(5000)
    dock.simplify_spin.setValue(0.0001)
    from_dock = dock_runs.vectorise_request(dock)[0]
    from_processing = _algorithm_request("vectorise", {"INPUT": class_map_layer.source(), "MIN_AREA": 5000,
                                                       "SIMPLIFY": 0.0001})
    assert from_dock.min_area == 5000 and _files_aside(from_dock) == _files_aside(from_processing)


def test_dock_and_processing_build_the_same_radar_change_request(dock, processing_ready, shared_data,
                                                                tiny_model):
    """Before/after radar layers of two dates (S1 alone: all-weather flood mapping) over a drawn area."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsRectangle
    from terraprobe.plugin.ui import dock_runs

    s1 = shared_data / "sen1floods11" / "Spain_7370579_S1Hand.tif"
    before, after = _add(s1, "S1 before"), _add(s1, "S1 after")
    area = QgsRectangle(-0.78, 38.09, -0.762, 38.108)
    dock.set_drawn_rectangle(area, QgsCoordinateReferenceSystem("EPSG:4326"))
    dock.device_combo.setCurrentText("cpu")
    dock.window_spin.setValue(64)
    dock.overlap_spin.setValue(16)
    dock.set_units(sar="db")
    dock.change_kind_combo.setCurrentIndex(dock.change_kind_combo.findData("sar"))
    dock.before_combo.setLayer(before)
    dock.after_combo.setLayer(after)
    dock.threshold_combo.setCurrentIndex(dock.threshold_combo.findData("otsu3"))
    from_dock = dock_runs.change_request(dock)[0]
    assert from_dock.before_sar == str(s1) and from_dock.bounds is not None and from_dock.sar_units == "db"
    from_processing = _algorithm_request("change", {
        "KIND": 2, "BEFORE": before.source(), "AFTER": after.source(), "THRESHOLD": "otsu3",
        "MODEL": str(tiny_model), "DEVICE": 1, "WINDOW": 64, "OVERLAP": 16, "SAR_UNITS": 1,
        "EXTENT": f"{area.xMinimum()},{area.xMaximum()},{area.yMinimum()},{area.yMaximum()} [EPSG:4326]"})
    assert _files_aside(from_dock) == _files_aside(from_processing)


def test_an_image_as_a_field_gives_the_backends_message_and_no_layer(dock, processing_ready, shared_data,
                                                                     qtbot, tmp_path):
    image = _add(shared_data / BAD_FIELD, "RGB byte")
    dock.embedding_field_combo.setLayer(image)
    before = len(_criticals(dock))
    qtbot.mouseClick(dock.cluster_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not dock.controller.running, timeout=RUN_TIMEOUT_MS)
    errors = _criticals(dock)[before:]
    assert len(errors) == 1 and NOT_A_FIELD in errors[0] and "\n" not in errors[0], errors
    assert NOT_A_FIELD in dock.status_label.text()
    assert _layers("clusters") == []
    with pytest.raises(QgsProcessingException, match=NOT_A_FIELD):
        _processing("cluster", {"EMBEDDINGS": str(shared_data / BAD_FIELD), "K": 3,
                                "OUTPUT": str(tmp_path / "bad.tif")})
    assert not (tmp_path / "bad.tif").exists()
    assert not np.any([p.suffix == ".tif" for p in tmp_path.iterdir()])


def test_screenshot_of_the_dock_with_a_field_change_and_vectorise(dock, fields, shared_data, qtbot,
                                                                  class_map_layer):
    """docs/images/terraprobe_dock_fields.png: field, clustering method, classifier, Change, Vectorise."""
    sen2 = _add(shared_data / SEN2, "sen2")
    aef, after = _add(fields["aef"], "AEF 2023"), _add(fields["aef_after"], "AEF 2024")
    dock.optical_combo.setLayer(sen2)
    dock.embedding_field_combo.setLayer(aef)
    dock.samples_combo.setLayer(_samples(shared_data))
    dock.field_combo.setField("class")
    dock.cluster_method_combo.setCurrentIndex(dock.cluster_method_combo.findData("hdbscan"))
    dock.min_cluster_spin.setValue(25)
    dock.classifier_combo.setCurrentIndex(dock.classifier_combo.findData("random-forest"))
    dock.band_stats_check.setChecked(True)
    dock.before_combo.setLayer(aef)
    dock.after_combo.setLayer(after)
    dock.change_types_spin.setValue(3)
    dock.vectorise_combo.setLayer(class_map_layer)
    dock.min_area_spin.setValue(5000)
    body = dock.widget().widget()
    dock.setFloating(True)
    dock.resize(460, body.sizeHint().height() + 40)
    qtbot.wait(200)
    png = Path(__file__).resolve().parents[2] / "docs" / "images" / "terraprobe_dock_fields.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    assert body.grab().save(str(png))
    dock.setFloating(False)
    assert png.stat().st_size > 10_000
