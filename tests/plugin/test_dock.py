"""The dock driving the real backend on real rasters with a tiny model (pytest-qt, offscreen QGIS)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from osgeo import gdal
from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsMultiBandColorRenderer,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsSingleBandPseudoColorRenderer,
    QgsTask,
    QgsVectorLayer,
)
from qgis.gui import QgsCollapsibleGroupBox, QgsVertexMarker
from qgis.PyQt.QtCore import Qt, QTimer

RUN_TIMEOUT_MS = 90_000


def _add_raster(path: Path, name: str) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), name, "gdal")
    assert layer.isValid(), path
    QgsProject.instance().addMapLayer(layer)
    return layer


def _wait_done(qtbot, dock) -> None:
    qtbot.waitUntil(lambda: not dock.controller.running, timeout=RUN_TIMEOUT_MS)


def _result_layers(kind: str) -> list[QgsRasterLayer]:
    return [layer for layer in QgsProject.instance().mapLayers().values()
            if layer.customProperty("terraprobe/kind") == kind]


def test_embed_then_cluster_adds_styled_layers_and_keeps_gui_responsive(dock, shared_data, qtbot,
                                                                        test_output_dir):
    s2 = _add_raster(shared_data / "sen1floods11" / "Spain_7370579_S2Hand.tif", "S2 Spain")
    dock.optical_combo.setLayer(s2)
    # 13-band L1C: the model's 12 bands map by name, skipping B10 (band 11).
    assert dock.band_mapping("optical") == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    dock.set_drawn_rectangle(QgsRectangle(-0.7800, 38.0900, -0.7620, 38.1080),
                             QgsCoordinateReferenceSystem("EPSG:4326"))
    assert dock.embed_button.isEnabled()

    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    started = time.monotonic()
    qtbot.mouseClick(dock.embed_button, Qt.LeftButton)
    assert dock.controller.running and dock.cancel_button.isEnabled()
    _wait_done(qtbot, dock)
    duration = time.monotonic() - started
    timer.stop()
    # The event loop kept ticking through the whole run: no raster or model work on the GUI thread.
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert duration > 1.0 and len(ticks) > duration / 0.02 * 0.3
    assert max(gaps) < 0.5, f"GUI thread blocked for {max(gaps):.2f} s"

    previews = _result_layers("preview")
    assert len(previews) == 1, dock.status_label.text()
    assert isinstance(previews[0].renderer(), QgsMultiBandColorRenderer)
    assert previews[0].crs() == s2.crs()
    assert dock.progress_bar.value() == 100

    dock.k_spin.setValue(4)
    dock.replace_check.setChecked(True)
    for _ in range(2):  # asked to, a re-run replaces the earlier cluster layer
        qtbot.mouseClick(dock.cluster_button, Qt.LeftButton)
        _wait_done(qtbot, dock)
    clusters = _result_layers("clusters")
    assert len(clusters) == 1, dock.status_label.text()
    layer = clusters[0]
    assert layer.crs() == s2.crs()
    renderer = layer.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert 2 <= len(renderer.classes()) <= 4
    group = QgsProject.instance().layerTreeRoot().findLayer(layer.id()).parent()
    assert group.name() == "Terraprobe · cluster · S2 Spain"
    assert "cluster done" in dock.status_label.text()

    _save_screenshots(dock, [layer, previews[0], s2], test_output_dir, qtbot)


def _save_screenshots(dock, layers: list, folder: Path, qtbot) -> None:
    """The QGIS window (map with the result + docked panel) and the panel alone, as PNG files."""
    window = dock.iface.mainWindow()
    canvas = dock.iface.mapCanvas()
    window.resize(1400, 1100)
    window.show()
    canvas.setDestinationCrs(layers[0].crs())
    canvas.setLayers(layers)
    extent = layers[0].extent()
    extent.scale(1.6)
    canvas.setExtent(extent)
    with qtbot.waitSignal(canvas.mapCanvasRefreshed, timeout=10_000):
        canvas.refresh()
    dock.widget().verticalScrollBar().setValue(0)
    qtbot.wait(100)
    window_png = folder / "terraprobe_qgis_window.png"
    assert window.grab().save(str(window_png))
    dock.findChild(QgsCollapsibleGroupBox, "TerraprobeAdvancedBox").setCollapsed(False)
    dock.setFloating(True)
    dock.resize(dock.minimumWidth(), dock.widget().widget().sizeHint().height() + 40)
    qtbot.wait(100)
    dock_png = folder / "terraprobe_dock.png"
    assert dock.grab().save(str(dock_png))
    dock.setFloating(False)
    window.hide()
    canvas.setLayers([])
    for path in (window_png, dock_png):
        assert path.stat().st_size > 10_000


def test_classify_with_sample_polygons_gives_named_classes(dock, shared_data, qtbot, tmp_path):
    # A VRT is not a plain file: the dock exports it to a GeoTIFF inside the task first.
    vrt = tmp_path / "sen2.vrt"
    gdal.BuildVRT(str(vrt), [str(shared_data / "rstoolbox-sen2" / "sen2.tif")]).FlushCache()
    scene = _add_raster(vrt, "sen2")
    polygons = QgsVectorLayer(str(shared_data / "rstoolbox-sen2" / "trainingPolygons_sen2.geojson"),
                              "training polygons", "ogr")
    assert polygons.isValid()
    QgsProject.instance().addMapLayer(polygons)
    dock.optical_combo.setLayer(scene)
    dock.area_combo.setCurrentText("Layer extent")
    dock.samples_combo.setLayer(polygons)
    assert dock.field_combo.currentField() == "class"
    assert dock.classify_button.isEnabled()
    qtbot.mouseClick(dock.classify_button, Qt.LeftButton)
    _wait_done(qtbot, dock)

    labels = _result_layers("labels")
    assert len(labels) == 1, dock.status_label.text()
    renderer = labels[0].renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert {c.label for c in renderer.classes()} == {"forest", "village", "water", "dryout"}
    legend = [text for text, _ in renderer.legendSymbologyItems()]
    assert "water" in legend
    confidence = _result_layers("confidence")
    assert len(confidence) == 1
    assert isinstance(confidence[0].renderer(), QgsSingleBandPseudoColorRenderer)
    assert labels[0].crs() == scene.crs()
    exported = list(dock.controller.temp_dir.glob("sen2_input_*.tif"))
    assert len(exported) == 1


def test_cancel_kills_backend_and_adds_no_layer(dock, shared_data, qtbot, tmp_path, test_iface):
    s2 = _add_raster(shared_data / "sen1floods11" / "Spain_7370579_S2Hand.tif", "S2 Spain")
    dock.optical_combo.setLayer(s2)
    dock.area_combo.setCurrentText("Layer extent")
    pids: list[int] = []
    test_iface.message_bar.pushed.clear()
    assert dock.run_embed()
    task = dock.controller.task
    statuses: list[tuple[int, str]] = []
    task.statusChanged.connect(lambda status: statuses.append((status, task.description())))
    dock.controller.task.process_started.connect(pids.append)
    said: list[str] = []
    task.log_message.connect(said.append)  # the backend's first words: its job is under way
    qtbot.waitUntil(lambda: bool(pids) or dock.controller.task.pid is not None, timeout=30_000)
    pid = pids[0] if pids else dock.controller.task.pid
    qtbot.waitUntil(lambda: bool(said), timeout=60_000)
    layers_before = set(QgsProject.instance().mapLayers())
    qtbot.mouseClick(dock.cancel_button, Qt.LeftButton)
    _wait_done(qtbot, dock)

    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert set(QgsProject.instance().mapLayers()) == layers_before
    assert not _result_layers("preview")
    assert "cancelled" in dock.status_label.text()
    # Cancelled is the analyst's choice, not a failure: QGIS's task manager must not say "Task failed".
    assert QgsTask.Terminated not in [status for status, _ in statuses]
    assert statuses[-1] == (QgsTask.Complete, "Terraprobe embed: S2 Spain (cancelled)")
    assert not [text for _, text, level in test_iface.message_bar.pushed if level == Qgis.Critical]
    assert dock.progress_bar.value() == 0
    outputs = list((tmp_path / "project" / "terraprobe").glob("*_embed_*"))
    assert outputs == [], outputs


def test_backend_error_shows_message_not_traceback(dock, shared_data, qtbot, tmp_path, monkeypatch,
                                                   test_iface):
    import qgis.utils

    dialogs: list[tuple] = []
    monkeypatch.setattr(qgis.utils, "open_stack_dialog", lambda *args, **kw: dialogs.append(args))
    monkeypatch.setattr(qgis.utils, "showException", lambda *args, **kw: dialogs.append(args))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a model")
    (tmp_path / "broken.json").write_text("{ not json", encoding="utf-8")
    dock.set_model_path(str(broken))
    s2 = _add_raster(shared_data / "sen1floods11" / "Spain_7370579_S2Hand.tif", "S2 Spain")
    dock.optical_combo.setLayer(s2)
    test_iface.message_bar.pushed.clear()
    qtbot.mouseClick(dock.embed_button, Qt.LeftButton)
    _wait_done(qtbot, dock)

    critical = [(title, text) for title, text, level in test_iface.message_bar.pushed
                if level == Qgis.Critical]
    assert critical, test_iface.message_bar.pushed
    title, text = critical[-1]
    assert title == "Terraprobe" and text.startswith("embed failed:")
    assert "Traceback" not in text
    # The reason itself is the visible message's first line, not hidden behind "N more" or "Show more".
    shown = test_iface.message_bar.currentItem().text()
    assert shown.splitlines()[0].startswith("embed failed: model config") and "not valid JSON" in shown
    assert dialogs == []
    assert not _result_layers("preview")
    assert "failed" in dock.status_label.text()
    # The model picker read the config with the contract's reader and says what is wrong with it.
    assert dock.model_label.text().startswith("broken.json: the model config is not valid JSON")


def test_similarity_click_adds_pseudocolour_layer(dock, shared_data, qtbot):
    scene = _add_raster(shared_data / "rstoolbox-sen2" / "sen2.tif", "sen2")
    dock.optical_combo.setLayer(scene)
    dock.area_combo.setCurrentText("Layer extent")
    dock.similarity_button.setChecked(True)
    assert dock.iface.mapCanvas().mapTool() is dock.point_tool
    dock.iface.mapCanvas().setDestinationCrs(scene.crs())
    dock.point_tool.canvasClicked.emit(scene.extent().center(), Qt.LeftButton)
    assert not dock.similarity_button.isChecked()
    marker = dock.similarity_marker  # the query point stays visible on the map
    assert isinstance(marker, QgsVertexMarker) and marker.scene() is dock.iface.mapCanvas().scene()
    assert marker.center() == scene.extent().center()
    _wait_done(qtbot, dock)
    similarity = _result_layers("similarity")
    assert len(similarity) == 1, dock.status_label.text()
    center = scene.extent().center()
    assert similarity[0].name().startswith(f"sen2 similarity @ {center.x():.5f}, {center.y():.5f}")
    assert isinstance(similarity[0].renderer(), QgsSingleBandPseudoColorRenderer)
    assert similarity[0].crs() == scene.crs()


def test_segment_trains_a_head_and_adds_a_class_map(dock, shared_data, qtbot):
    scene = _add_raster(shared_data / "rstoolbox-sen2" / "sen2.tif", "sen2")
    polygons = QgsVectorLayer(str(shared_data / "rstoolbox-sen2" / "trainingPolygons_sen2.geojson"),
                              "training polygons", "ogr")
    QgsProject.instance().addMapLayer(polygons)
    dock.optical_combo.setLayer(scene)
    dock.area_combo.setCurrentText("Layer extent")
    dock.samples_combo.setLayer(polygons)
    qtbot.mouseClick(dock.segment_button, Qt.LeftButton)
    _wait_done(qtbot, dock)
    segmentation = _result_layers("segmentation")
    assert len(segmentation) == 1, dock.status_label.text()
    renderer = segmentation[0].renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert {c.label for c in renderer.classes()} == {"forest", "village", "water", "dryout"}
    head = dock.controller.last_result.outputs["head"]
    assert Path(head).is_file()
