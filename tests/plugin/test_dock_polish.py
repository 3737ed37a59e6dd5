"""The analyst's dock, polished (issue 21): honest band notes, a dock that stays where it is, no wheel
capture, named results kept side by side, a message bar with the latest state (real QGIS, offscreen)."""

from __future__ import annotations

from pathlib import Path

import rasterio
from qgis.core import (
    Qgis,
    QgsCategorizedSymbolRenderer,
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.gui import QgsCollapsibleGroupBox
from qgis.PyQt.QtCore import QPoint, QPointF, Qt
from qgis.PyQt.QtGui import QWheelEvent
from qgis.PyQt.QtWidgets import QApplication

from .test_dock import _add_raster, _result_layers, _wait_done

SPAIN_S2 = ("sen1floods11", "Spain_7370579_S2Hand.tif")


def _unnamed_stack(source: Path, target: Path, bands: int) -> Path:
    """The first ``bands`` bands of ``source`` (a 64 px crop) without band descriptions."""
    with rasterio.open(source) as src:
        window = rasterio.windows.Window(0, 0, 64, 64)
        data = src.read(list(range(1, bands + 1)), window=window)
        profile = {"driver": "GTiff", "width": 64, "height": 64, "count": bands, "dtype": data.dtype,
                   "crs": src.crs, "transform": src.window_transform(window)}
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(data)
    return target


def test_unnamed_twelve_band_stack_is_an_assumed_order(dock, shared_data, tmp_path):
    stack = _add_raster(_unnamed_stack(shared_data.joinpath(*SPAIN_S2), tmp_path / "stack.tif", 12), "stack")
    dock.optical_combo.setLayer(stack)
    note = dock.band_note.text()
    assert "order assumed (no band names)" in note and "recognised" not in note, note
    named = _add_raster(shared_data.joinpath(*SPAIN_S2), "S2 Spain")
    dock.optical_combo.setLayer(named)
    assert "recognised from the layer" in dock.band_note.text()


def _wheel(widget, delta: int = -120) -> None:
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, delta),
                        Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_wheel_scrolls_the_dock_not_an_unfocused_combo(dock, qtbot):
    window = dock.iface.mainWindow()
    window.resize(1280, 800)
    window.show()
    QApplication.setActiveWindow(window)
    qtbot.waitActive(window)
    try:
        scroll = dock.widget()
        scroll.verticalScrollBar().setValue(0)
        device = dock.device_combo
        before = device.currentText()
        assert device.focusPolicy() == Qt.StrongFocus
        _wheel(device)
        assert device.currentText() == before
        assert scroll.verticalScrollBar().value() > 0  # the turn scrolled the dock instead
        device.setFocus()
        qtbot.waitUntil(device.hasFocus)
        _wheel(device)
        assert device.currentText() != before  # a focused combo takes the wheel as usual
    finally:
        dock.device_combo.setCurrentText("auto")
        window.hide()


def test_disabling_the_focused_button_does_not_scroll_the_dock(dock, shared_data, qtbot):
    dock.optical_combo.setLayer(_add_raster(shared_data.joinpath(*SPAIN_S2), "S2 Spain"))
    window = dock.iface.mainWindow()
    window.resize(1280, 800)
    window.show()
    QApplication.setActiveWindow(window)
    qtbot.waitActive(window)
    try:
        scroll = dock.widget()
        bar = scroll.verticalScrollBar()
        assert bar.maximum() > 0, "the dock fits without scrolling: nothing to test"
        bar.setValue(0)
        dock.embed_button.setFocus()
        qtbot.waitUntil(dock.embed_button.hasFocus)
        dock.embed_button.setEnabled(False)  # what a run start does to the clicked button
        qtbot.wait(20)
        assert bar.value() == 0
    finally:
        dock.embed_button.setEnabled(True)
        window.hide()


def _terraprobe_messages(bar) -> list[tuple[int, str]]:
    return [(int(item.level()), item.text()) for item in bar.items() if item.title() == "Terraprobe"]


def test_results_are_named_kept_side_by_side_and_the_bar_shows_the_latest_state(dock, shared_data, qtbot,
                                                                               tmp_path, tiny_model):
    s2 = _add_raster(shared_data.joinpath(*SPAIN_S2), "S2 Spain")
    dock.optical_combo.setLayer(s2)
    dock.set_drawn_rectangle(QgsRectangle(-0.7800, 38.0900, -0.7680, 38.1020),
                             QgsCoordinateReferenceSystem("EPSG:4326"))
    bar = dock.iface.messageBar()
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    (tmp_path / "broken.json").write_text("{ not json", encoding="utf-8")
    dock.set_model_path(str(broken))
    assert dock.run_embed()
    _wait_done(qtbot, dock)
    assert any(level == Qgis.Critical for level, _ in _terraprobe_messages(bar)), bar.items()

    # Item 6: a new run clears the stale red "failed"; item 5: embed adds its embedding raster too.
    dock.set_model_path(str(tiny_model))
    assert dock.run_embed()
    assert not any(level == Qgis.Critical for level, _ in _terraprobe_messages(bar))
    _wait_done(qtbot, dock)
    assert not any(level == Qgis.Critical for level, _ in _terraprobe_messages(bar))
    (field,) = _result_layers("embeddings")
    (preview,) = _result_layers("preview")
    assert field.bandCount() > 3 and field.name() == "S2 Spain embeddings — tiny", field.name()
    root = QgsProject.instance().layerTreeRoot()
    assert not root.findLayer(field.id()).itemVisibilityChecked()  # the colour preview is what shows
    assert root.findLayer(preview.id()).itemVisibilityChecked()
    offered = [dock.embedding_field_combo.layer(i) for i in range(dock.embedding_field_combo.count())]
    assert field in offered and preview not in offered  # the preview is a picture, not a field
    dock.embedding_field_combo.setLayer(field)
    assert dock.embedding_field_combo.currentLayer() is field and dock.cluster_button.isEnabled()

    # Items 3 and 14: runs with other choices stay side by side, named by what made them.
    for k in (3, 4):
        dock.k_spin.setValue(k)
        assert dock.run_cluster()
        _wait_done(qtbot, dock)
    names = sorted(layer.name() for layer in _result_layers("clusters"))
    assert names == ["S2 Spain embeddings clusters — k-means k=3, tiny",
                     "S2 Spain embeddings clusters — k-means k=4, tiny"], (names, dock.status_label.text())
    dock.replace_check.setChecked(True)
    assert dock.run_cluster()
    _wait_done(qtbot, dock)
    assert [layer.name() for layer in _result_layers("clusters")] == [
        "S2 Spain embeddings clusters — k-means k=4, tiny"]


def test_similarity_click_outside_the_drawn_area_says_so(dock, shared_data, test_iface):
    scene = _add_raster(shared_data / "rstoolbox-sen2" / "sen2.tif", "sen2")
    dock.optical_combo.setLayer(scene)
    extent = scene.extent()
    corner = QgsRectangle(extent.xMinimum(), extent.yMinimum(), extent.center().x(), extent.center().y())
    dock.set_drawn_rectangle(corner, scene.crs())
    inside_raster = QgsPointXY(extent.xMaximum() - 100, extent.yMaximum() - 100)
    assert not dock.run_similarity_at(inside_raster, scene.crs())
    assert not dock.controller.running
    assert "outside the chosen area (Drawn rectangle)" in dock.status_label.text()
    assert "outside the chosen area" in test_iface.message_bar.currentItem().text()
    dock.area_combo.setCurrentIndex(dock.area_combo.findData("layer"))
    beyond = QgsPointXY(extent.xMaximum() + 5000, extent.yMaximum() + 5000)
    assert not dock.run_similarity_at(beyond, scene.crs())
    assert "outside the layer sen2" in dock.status_label.text()


def test_one_class_samples_are_caught_before_the_run(dock, shared_data):
    scene = _add_raster(shared_data / "rstoolbox-sen2" / "sen2.tif", "sen2")
    dock.optical_combo.setLayer(scene)
    samples = QgsVectorLayer(f"Polygon?crs={scene.crs().authid()}&field=class:string", "one class", "memory")
    QgsProject.instance().addMapLayer(samples)
    centre = scene.extent().center()
    samples.startEditing()
    for offset, name in ((0, "water"), (300, "water")):
        feature = QgsFeature(samples.fields())
        feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(centre.x() + offset, centre.y(),
                                                              centre.x() + offset + 200, centre.y() + 200)))
        feature.setAttributes([name])
        samples.addFeature(feature)
    dock.samples_combo.setLayer(samples)
    for button in (dock.classify_button, dock.segment_button):
        assert not button.isEnabled()
        assert "one class only ('water')" in button.toolTip()
    assert "one class only" in dock.status_label.text()
    assert not dock.run_classify()
    assert "at least two classes" in dock.status_label.text()
    feature = QgsFeature(samples.fields())
    feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(centre.x() - 600, centre.y(), centre.x() - 400,
                                                          centre.y() + 200)))
    feature.setAttributes(["forest"])
    samples.addFeature(feature)  # digitising a second class enables them at once
    assert dock.classify_button.isEnabled() and dock.segment_button.isEnabled()
    samples.rollBack()


def test_classify_shows_a_per_class_table_and_segment_a_caveat(dock, shared_data, qtbot):
    scene = _add_raster(shared_data / "rstoolbox-sen2" / "sen2.tif", "sen2")
    polygons = QgsVectorLayer(str(shared_data / "rstoolbox-sen2" / "trainingPolygons_sen2.geojson"),
                              "training polygons", "ogr")
    QgsProject.instance().addMapLayer(polygons)
    dock.optical_combo.setLayer(scene)
    dock.area_combo.setCurrentIndex(dock.area_combo.findData("layer"))
    dock.samples_combo.setLayer(polygons)
    dock.classifier_combo.setCurrentIndex(dock.classifier_combo.findData("random-forest"))
    assert not dock.accuracy_table.isVisible()
    assert dock.run_classify()
    _wait_done(qtbot, dock)
    (labels,) = _result_layers("labels")
    assert labels.name() == "sen2 classes — random forest, tiny", labels.name()
    table = dock.accuracy_table
    assert not table.isHidden(), dock.status_label.text()
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers[:3] == ["Class", "Patches", "Blocked"] and "LOPO" in headers, headers
    rows = {table.item(r, 0).text(): dict(zip(headers[1:], (table.item(r, c).text()
                                                            for c in range(1, table.columnCount()))))
            for r in range(table.rowCount())}
    assert set(rows) == {"forest", "village", "water", "dryout"}
    stats = dock.controller.last_result.stats
    per_class = {row["name"]: row for row in stats.get("per_class", [])}
    for row, (name, cells) in enumerate(rows.items()):
        assert cells["Patches"] == str(stats["class_counts"][name])
        assert f"{stats['polygon_counts'][name]} sample polygon(s)" in table.item(row, 0).toolTip()
        blocked = (per_class[name]["blocked_accuracy"] if per_class
                   else stats["blocked_cv_class_accuracy"][name])
        assert cells["Blocked"] == ("–" if blocked is None else f"{blocked:.0%}")
        if per_class and per_class[name].get("f1") is not None:
            assert cells["F1"] == f"{per_class[name]['f1']:.0%}"

    dock.steps_spin.setValue(5)
    assert dock.run_segment()
    assert table.isHidden()  # a new run clears the last run's table
    _wait_done(qtbot, dock)
    status = dock.status_label.text()
    assert "training accuracy" in status and "not that the map is right" in status, status
    (segmentation,) = _result_layers("segmentation")
    assert segmentation.name() == "sen2 segmentation — 5 steps, tiny", segmentation.name()


def test_compact_dock_leaves_the_map_room_at_1280x800(dock, shared_data, qtbot):
    long_name = "S2 Spain " + "with a very long layer name from a catalogue " * 3
    dock.optical_combo.setLayer(_add_raster(shared_data.joinpath(*SPAIN_S2), long_name))
    window = dock.iface.mainWindow()
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    try:
        qtbot.waitUntil(lambda: dock.width() <= 400)
        assert dock.minimumSizeHint().width() <= 400, dock.minimumSizeHint()
        assert dock.iface.mapCanvas().width() >= 1280 - 400 - 20
        assert not dock.widget().horizontalScrollBar().isVisible()
        sections = {box.objectName(): box for box in dock.findChildren(QgsCollapsibleGroupBox)}
        open_ones = {"TerraprobeInputsBox", "TerraprobeAreaBox", "TerraprobeActionsBox"}
        folded = {"TerraprobeChangeBox", "TerraprobeVectoriseBox", "TerraprobeAdvancedBox",
                  "TerraprobeSettingsBox"}
        assert open_ones | folded <= set(sections), sorted(sections)
        assert all(not sections[name].isCollapsed() for name in open_ones)
        assert all(sections[name].isCollapsed() for name in folded)
        sections["TerraprobeChangeBox"].setCollapsed(False)  # an opened section does not widen the dock
        qtbot.wait(20)
        assert dock.minimumSizeHint().width() <= 400, dock.minimumSizeHint()
    finally:
        window.hide()


def test_radar_and_samples_of_the_scene_are_picked_and_dropped_on_switching(dock, shared_data):
    spain_s1 = _add_raster(shared_data / "sen1floods11" / "Spain_7370579_S1Hand.tif", "S1 Spain")
    spain_s2 = _add_raster(shared_data.joinpath(*SPAIN_S2), "S2 Spain")
    scene = _add_raster(shared_data / "rstoolbox-sen2" / "sen2.tif", "sen2")
    polygons = QgsVectorLayer(str(shared_data / "rstoolbox-sen2" / "trainingPolygons_sen2.geojson"),
                              "training polygons", "ogr")
    QgsProject.instance().addMapLayer(polygons)
    dock.optical_combo.setLayer(scene)
    assert dock.samples_combo.currentLayer() is polygons
    assert dock.sar_combo.currentLayer() is None  # the Spanish radar is another scene
    dock.optical_combo.setLayer(spain_s2)
    assert dock.sar_combo.currentLayer() is spain_s1
    assert dock.samples_combo.currentLayer() is None  # the sen2 polygons are deselected
    assert any(dock.band_table.item(r, 0).text() == "VV (radar)" for r in range(dock.band_table.rowCount()))
    dock.optical_combo.setLayer(scene)
    assert dock.sar_combo.currentLayer() is None and dock.samples_combo.currentLayer() is polygons


def test_new_sample_layer_has_the_analysts_classes_their_colours_and_the_add_tool(dock, test_iface, qtbot):
    from plugin.ui.class_list_dialog import ClassListDialog

    dialog = ClassListDialog(["water", "forest"])
    dialog.editor.setPlainText("paddy\n  wetland , paddy\n")
    ok = dialog.buttons.button(dialog.buttons.Ok)
    assert dialog.class_names() == ["paddy", "wetland"] and ok.isEnabled()
    dialog.editor.setPlainText("paddy")
    assert not ok.isEnabled()  # one class cannot train a classifier

    triggered: list[bool] = []
    test_iface.add_feature_action.triggered.connect(lambda *_: triggered.append(True))
    layer = dock.new_sample_layer(["paddy", "wetland", "water"])
    assert test_iface.activeLayer() is layer and triggered == [True]
    assert {"wetland": "wetland"} in layer.editorWidgetSetup(layer.fields().indexOf("class")).config()["map"]
    renderer = layer.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer) and renderer.classAttribute() == "class"
    colours = {category.value(): category.symbol().color().name() for category in renderer.categories()}
    assert set(colours) == {"paddy", "wetland", "water"} and len(set(colours.values())) == 3
    assert "Add Polygon" in dock.status_label.text()
    layer.rollBack()


def test_change_is_named_after_both_dates_and_reuses_their_embeddings(dock, shared_data, qtbot, tmp_path):
    import shutil

    march = _add_raster(shared_data.joinpath(*SPAIN_S2), "S2 Spain March")
    may_file = tmp_path / "S2_Spain_May.tif"  # another date's file on the same grid
    shutil.copy(shared_data.joinpath(*SPAIN_S2), may_file)
    may = _add_raster(may_file, "S2 Spain May")
    dock.optical_combo.setLayer(march)
    dock.set_drawn_rectangle(QgsRectangle(-0.7800, 38.0900, -0.7680, 38.1020),
                             QgsCoordinateReferenceSystem("EPSG:4326"))
    dock.change_kind_combo.setCurrentIndex(dock.change_kind_combo.findData("optical"))
    dock.before_combo.setLayer(march)
    dock.after_combo.setLayer(may)
    hits = []
    for _ in range(2):
        assert dock.run_change(), dock.status_label.text()
        _wait_done(qtbot, dock)
        stats = dock.controller.last_result.stats
        hits.append((stats["before"].get("cache_hit"), stats["after"].get("cache_hit")))
    assert hits[1] == (True, True), hits  # the rerun embeds neither date again
    magnitudes = sorted(layer.name() for layer in _result_layers("magnitude"))
    assert magnitudes[0] == "S2 Spain March → S2 Spain May change magnitude — tiny", magnitudes
    assert len(magnitudes) == 2  # kept side by side
    out = Path(dock.controller.last_result.outputs["magnitude"])
    assert out.name.startswith("S2_Spain_March_to_S2_Spain_May_change_"), out.name


def test_unsaved_project_results_are_kept_in_a_visible_folder_and_moved_when_saved(
        dock, shared_data, qtbot, tmp_path, monkeypatch, test_iface):
    from plugin.results_folder import results_folder

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    project = QgsProject.instance()
    project.setPresetHomePath("")
    dock.set_results_folder("")
    unsaved = tmp_path / "home" / "Terraprobe" / "unsaved project"
    assert results_folder().path == unsaved
    dock.optical_combo.setLayer(_add_raster(shared_data.joinpath(*SPAIN_S2), "S2 Spain"))
    assert "not saved yet" in dock.folder_label.text()
    samples = dock.new_sample_layer(["water", "land"])
    assert Path(samples.source().split("|")[0]).parent == unsaved
    samples.commitChanges()
    dock.set_drawn_rectangle(QgsRectangle(-0.7800, 38.0900, -0.7680, 38.1020),
                             QgsCoordinateReferenceSystem("EPSG:4326"))
    assert dock.run_embed()
    pushed = [text for _, text, _ in test_iface.message_bar.pushed]
    assert any("not saved yet" in text and str(unsaved) in text for text in pushed), pushed
    _wait_done(qtbot, dock)
    (preview,) = _result_layers("preview")
    assert Path(preview.source()).parent == unsaved

    assert project.write(str(tmp_path / "saved" / "study.qgz"))
    qtbot.mouseClick(dock.move_offer, Qt.LeftButton)
    beside = tmp_path / "saved" / "terraprobe"
    for layer in (preview, samples, *_result_layers("embeddings")):
        assert layer.isValid() and Path(layer.source().split("|")[0]).parent == beside, layer.source()
    assert not list(unsaved.glob("S2_Spain_embed_*")) and not list(unsaved.glob("samples_*"))
    assert "Moved 3 layer(s)" in dock.status_label.text()
    assert results_folder().why == "project" and "beside the project" in dock.folder_label.text()

    dock.set_results_folder(str(tmp_path / "mine"))
    try:
        assert results_folder().path == tmp_path / "mine" and "mine (your folder)" in dock.folder_label.text()
    finally:
        dock.set_results_folder("")
