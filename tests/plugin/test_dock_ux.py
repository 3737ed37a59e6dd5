"""The dock as an analyst meets it: width, disabled-button reasons, stale feedback, class field, Advanced,
reused exports, translation-ready strings and no leaked files (issue 12, pytest-qt, real backend)."""

from __future__ import annotations

import ast
import gc
import warnings
from pathlib import Path

from osgeo import gdal
from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtCore import QPoint, Qt

RUN_TIMEOUT_MS = 90_000
REPO_ROOT = Path(__file__).resolve().parents[2]


def _add_raster(path: Path, name: str) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), name, "gdal")
    assert layer.isValid(), path
    QgsProject.instance().addMapLayer(layer)
    return layer


def _polygons(fields: str, rows: list[tuple], name: str = "samples") -> QgsVectorLayer:
    """An in-memory polygon layer (``fields`` as in a memory URI) with one square per row."""
    from qgis.core import QgsFeature, QgsGeometry, QgsRectangle

    layer = QgsVectorLayer(f"Polygon?crs=EPSG:4326&{fields}", name, "memory")
    features = []
    for i, values in enumerate(rows):
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(i, 0, i + 1, 1)))
        feature.setAttributes(list(values))
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    layer.updateExtents()
    QgsProject.instance().addMapLayer(layer)
    return layer


def test_dock_opens_wide_enough_for_every_button(dock, shared_data, qtbot):
    long_name = "S2 Spain " + "with a very long layer name from a catalogue " * 3
    s2 = _add_raster(shared_data / "sen1floods11" / "Spain_7370579_S2Hand.tif", long_name)
    dock.optical_combo.setLayer(s2)
    window = dock.iface.mainWindow()
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    try:
        qtbot.wait(50)
        scroll = dock.widget()
        assert dock.isVisible() and not dock.isFloating()
        assert not scroll.horizontalScrollBar().isVisible(), (dock.width(), scroll.widget().minimumSizeHint())
        viewport = scroll.viewport()
        for button in (dock.cancel_button, dock.segment_button, dock.new_samples_button, dock.embed_button):
            for _ in range(2):  # the narrowed dock's wrapped labels may still grow the content once
                scroll.ensureWidgetVisible(button)
                qtbot.wait(10)
            left = button.mapTo(viewport, QPoint(0, 0)).x()
            assert left >= 0 and left + button.width() <= viewport.width(), button.text()
            visible = button.visibleRegion().boundingRect()
            assert not button.visibleRegion().isEmpty() and visible.width() == button.width(), button.text()
    finally:
        window.hide()


def test_disabled_buttons_say_why_and_new_inputs_reset_the_status(dock, shared_data, qtbot):
    assert not dock.embed_button.isEnabled()
    assert "choose an optical layer" in dock.embed_button.toolTip()
    s2 = _add_raster(shared_data / "sen1floods11" / "Spain_7370579_S2Hand.tif", "S2 Spain")
    dock.optical_combo.setLayer(s2)
    assert dock.embed_button.isEnabled() and dock.status_label.text() == "Ready."
    assert "Not available" not in dock.embed_button.toolTip()

    dock.set_band("optical", 11, None)  # B12 unmapped (no spectral fill for a hand-made gap)
    assert not dock.embed_button.isEnabled() and not dock.cluster_button.isEnabled()
    assert "B12" in dock.embed_button.toolTip() and "B12" in dock.status_label.text()
    dock.set_band("optical", 11, 13)
    assert dock.embed_button.isEnabled()
    assert dock.status_label.text() == "Ready."  # the band-table status is recomputed, not left behind

    # A sample layer with only identifiers: no class field is guessed, and the buttons say so.
    ids = _polygons("field=id:integer&field=area:integer", [(1, 10), (2, 20), (3, 30)], "parcels")
    dock.samples_combo.setLayer(ids)
    assert dock.field_combo.currentField() == ""
    for button in (dock.classify_button, dock.segment_button):
        assert not button.isEnabled() and "pick a class field" in button.toolTip()
    assert "pick a class field" in dock.status_label.text().lower()
    dock.field_combo.setField("area")
    assert dock.classify_button.isEnabled()

    # Feedback from an earlier run goes stale as soon as an input changes.
    dock.progress_bar.setValue(100)
    dock.status_label.setText("cluster done: S2 Spain clusters")
    dock.sensor_combo.setCurrentIndex(dock.sensor_combo.findData("sentinel2"))
    assert dock.progress_bar.value() == 0 and dock.status_label.text() == "Ready."
    dock.progress_bar.setValue(100)
    dock.area_combo.setCurrentIndex(dock.area_combo.findData("canvas"))
    assert dock.progress_bar.value() == 0


def test_class_field_is_never_an_identifier(dock):
    from plugin.samples import pick_class_field

    cases = {
        "field=id:integer&field=code:integer": ([(1, 5), (2, 5), (3, 7)], "code"),
        "field=fid:integer&field=landuse:string": ([(1, "a"), (2, "a"), (3, "b")], "landuse"),
        "field=objectid:integer&field=parcel_id:integer": ([(1, 1), (2, 1), (3, 2)], None),
        "field=id:integer&field=Label:string&field=name:string": ([(1, "x", "n1"), (2, "y", "n2")], "Label"),
        "field=n:integer": ([(1,), (2,), (3,)], None),  # one value per polygon
    }
    for fields, (rows, expected) in cases.items():
        layer = _polygons(fields, rows)
        assert pick_class_field(layer) == expected, fields
        dock.samples_combo.setLayer(layer)
        assert dock.field_combo.currentField() == (expected or ""), fields


def test_advanced_options_reach_the_backend_parser(dock, shared_data):
    from tests.plugin.test_units_sensors import parse_backend_argv

    scene = _add_raster(shared_data / "rstoolbox-sen2" / "sen2.tif", "sen2")
    polygons = QgsVectorLayer(str(shared_data / "rstoolbox-sen2" / "trainingPolygons_sen2.geojson"),
                              "training polygons", "ogr")
    QgsProject.instance().addMapLayer(polygons)
    dock.optical_combo.setLayer(scene)
    dock.samples_combo.setLayer(polygons)
    dock.area_combo.setCurrentIndex(dock.area_combo.findData("layer"))
    from qgis.gui import QgsCollapsibleGroupBox

    assert dock.findChild(QgsCollapsibleGroupBox, "TerraprobeAdvancedBox") is not None
    dock.overlap_spin.setValue(16)
    dock.batch_spin.setValue(2)
    dock.steps_spin.setValue(40)
    dock.neighbors_spin.setValue(7)
    segment, _, _ = dock.build_request("segment")
    parsed = parse_backend_argv(segment.to_argv())
    assert (parsed.steps, parsed.overlap, parsed.batch_size) == (40, 16, 2)
    classify, _, _ = dock.build_request("classify")
    parsed = parse_backend_argv(classify.to_argv())
    assert (parsed.neighbors, parsed.overlap, parsed.batch_size) == (7, 16, 2)


def test_vrt_is_exported_once_and_the_embedding_cache_hits(dock, shared_data, qtbot, tmp_path,
                                                           test_iface):
    vrt = tmp_path / "sen2.vrt"
    gdal.BuildVRT(str(vrt), [str(shared_data / "rstoolbox-sen2" / "sen2.tif")]).FlushCache()
    scene = _add_raster(vrt, "sen2")
    polygons = QgsVectorLayer(str(shared_data / "rstoolbox-sen2" / "trainingPolygons_sen2.geojson"),
                              "training polygons", "ogr")
    QgsProject.instance().addMapLayer(polygons)
    dock.optical_combo.setLayer(scene)
    dock.area_combo.setCurrentIndex(dock.area_combo.findData("layer"))
    dock.samples_combo.setLayer(polygons)
    dock.window_spin.setValue(64)
    dock.classifier_combo.setCurrentIndex(dock.classifier_combo.findData("knn"))
    hits = []
    for neighbors in (10, 400):  # the second run also has more neighbours than any class has samples
        dock.neighbors_spin.setValue(neighbors)
        test_iface.message_bar.pushed.clear()
        qtbot.mouseClick(dock.classify_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: not dock.controller.running, timeout=RUN_TIMEOUT_MS)
        assert "classify done" in dock.status_label.text(), dock.status_label.text()
        hits.append(dock.controller.last_result.stats.get("cache_hit"))
    assert hits == [False, True]
    exported = list(dock.controller.temp_dir.glob("sen2_input_*.tif"))
    assert len(exported) == 1
    thin = [text for _, text, _ in test_iface.message_bar.pushed if "kNN neighbours" in text]
    assert thin and "400" in thin[0]
    assert "warning" in dock.status_label.text()

    QgsProject.instance().clear()  # closing the project removes the temporary exports
    assert not exported[0].exists() and dock.controller.exports == {}


def test_a_failure_after_warnings_shows_its_reason_first(dock, shared_data, qtbot, test_iface):
    from qgis.core import QgsFeature, QgsGeometry, QgsRectangle

    scene = _add_raster(shared_data / "rstoolbox-sen2" / "sen2.tif", "sen2")
    extent = scene.extent()
    step = extent.width() / 10
    samples = QgsVectorLayer(f"Polygon?crs={scene.crs().authid()}&field=class:string", "one class", "memory")
    features = []
    for i, value in enumerate(("water", "water", None)):  # the unclassified polygon makes a warning
        x = extent.xMinimum() + (2 + 3 * i) * step
        feature = QgsFeature(samples.fields())
        feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(x, extent.center().y(), x + step,
                                                              extent.center().y() + step)))
        feature.setAttributes([value])
        features.append(feature)
    beyond = QgsFeature(samples.fields())  # a second class, but off this raster: the dock lets it run
    right = extent.xMaximum()
    beyond.setGeometry(QgsGeometry.fromRect(QgsRectangle(right + step, extent.yMinimum(), right + 2 * step,
                                                         extent.yMinimum() + step)))
    beyond.setAttributes(["forest"])
    samples.dataProvider().addFeatures([*features, beyond])
    QgsProject.instance().addMapLayer(samples)
    dock.optical_combo.setLayer(scene)
    dock.area_combo.setCurrentIndex(dock.area_combo.findData("layer"))
    dock.samples_combo.setLayer(samples)
    dock.window_spin.setValue(64)
    test_iface.message_bar.clearWidgets()
    test_iface.message_bar.pushed.clear()
    qtbot.mouseClick(dock.classify_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not dock.controller.running, timeout=RUN_TIMEOUT_MS)

    assert any("skipped" in w for w in dock.controller.last_warnings), dock.controller.last_warnings
    assert len(test_iface.message_bar.pushed) == 1  # the warnings are under its "Show more"
    shown = test_iface.message_bar.currentItem().text().splitlines()[0]
    assert shown.startswith("classify failed: the samples on this raster have only one class"), shown
    assert dock.status_label.text().startswith("classify failed: the samples")


def test_backend_runs_leave_no_unclosed_files(loaded_plugin):
    from plugin.backend_client import run_backend

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        result = run_backend(["version"])
        gc.collect()
    assert result.exit_code == 0
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


#: Qt calls whose first string argument the analyst reads.
_SHOWN = {"setText", "setToolTip", "addItem", "addRow", "setPrefix", "setSuffix", "setWindowTitle",
          "QLabel", "QPushButton", "QGroupBox", "QgsCollapsibleGroupBox", "setPlaceholderText"}


def _untranslated(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        first = node.args[0]
        literal = ((isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.strip())
                   or isinstance(first, ast.JoinedStr))
        if name in _SHOWN and literal:
            found.append(f"{path.name}:{node.lineno} {name}")
        if name == "pushMessage" and len(node.args) > 1 and isinstance(node.args[1], ast.JoinedStr):
            found.append(f"{path.name}:{node.lineno} pushMessage")
    return found


def test_user_visible_strings_go_through_tr():
    ui, plugin = REPO_ROOT / "plugin" / "ui", REPO_ROOT / "plugin"
    files = [ui / "dock.py", ui / "inputs_panel.py", ui / "action_panels.py", ui / "model_picker.py",
             ui / "map_tools.py", plugin / "runner.py", plugin / "requests_builder.py",
             plugin / "job_inputs.py", ui / "change_panel.py", ui / "dock_runs.py"]
    assert [hit for path in files for hit in _untranslated(path)] == []


def test_blocker_messages_name_what_is_missing(qgis_app):
    from plugin.readiness import input_blocker, samples_blocker, unmapped_bands

    assert unmapped_bands(["B02", "B11", "B12"], [1, None, None], filled=["B11"]) == ["B12"]
    assert input_blocker(False, []) == "choose an optical layer"
    assert input_blocker(True, ["B12"]) == "Map a layer band to: B12"
    assert input_blocker(True, [], ["VH"]) == "Map a radar layer band to: VH"
    assert input_blocker(True, []) is None
    assert samples_blocker(True, "").startswith("pick a class field")
    assert samples_blocker(False, "class").startswith("choose a sample polygon layer")
    assert samples_blocker(True, "class") is None
