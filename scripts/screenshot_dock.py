"""Screenshot of desktop QGIS with the Terraprobe dock after a real Classify run (for docs/images/).

Runs inside desktop QGIS, under Xvfb at the screen size wanted:

    xvfb-run -a -s "-screen 0 1280x800x24" env TERRAPROBE_SHOT=docs/images/terraprobe_dock_1280x800.png \\
        QGIS_PLUGINPATH=<folder holding terraprobe -> this repo> \\
        qgis --nologo --noversioncheck --profiles-path <fresh folder> --code scripts/screenshot_dock.py

It loads the plugin, adds the rstoolbox Sentinel-2 scene and its training polygons (picked by the dock
itself), runs Classify with a random forest and the bundled model, then saves the whole screen to
``$TERRAPROBE_SHOT`` and quits QGIS. ``$TERRAPROBE_SHOT_OPEN`` (comma-separated object names, e.g.
``TerraprobeChangeBox``) opens folded sections for the picture; ``$TERRAPROBE_SHOT_SCROLL=top`` shows the
dock's top (default: its bottom, with the per-class table).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import qgis.utils
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsSettings, QgsVectorLayer
from qgis.gui import QgsCollapsibleGroupBox
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtGui import QGuiApplication
from qgis.PyQt.QtWidgets import QDockWidget

REPO = Path(__file__).resolve().parents[1] if "__file__" in globals() else Path.cwd()
DATA = Path(os.environ.get("TERRAPROBE_DATA", REPO.parent / "shared" / "data"))
SHOT = Path(os.environ.get("TERRAPROBE_SHOT", "terraprobe_dock.png")).resolve()
RUN_TIMEOUT_S = 600
LAYERS_PANEL_PX = 360


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    QgsProject.instance().setDirty(False)
    os._exit(1)


def show_layer_names(window) -> None:
    """A fresh profile's Layers panel is too narrow for the result names: close Browser, widen Layers."""
    browser = window.findChild(QDockWidget, "Browser")
    if browser is not None:
        browser.hide()
    layers = window.findChild(QDockWidget, "Layers")
    if layers is not None:
        window.resizeDocks([layers], [LAYERS_PANEL_PX], Qt.Horizontal)


def start() -> None:
    settings = QgsSettings()
    settings.setValue("terraprobe/backend_python", str(REPO / ".venv" / "bin" / "python"))
    settings.setValue("terraprobe/cache_dir", tempfile.mkdtemp(prefix="terraprobe-shot-cache-"))
    settings.setValue("terraprobe/results_folder", "")  # beside the (demo) project
    QgsProject.instance().setPresetHomePath(tempfile.mkdtemp(prefix="terraprobe-shot-project-"))
    qgis.utils.updateAvailablePlugins()
    if not (qgis.utils.loadPlugin("terraprobe") and qgis.utils.startPlugin("terraprobe")):
        fail("QGIS could not start the plugin (is QGIS_PLUGINPATH set?)")
    plugin = qgis.utils.plugins["terraprobe"]
    window = qgis.utils.iface.mainWindow()
    window.setGeometry(QGuiApplication.primaryScreen().availableGeometry())  # no window manager to maximise
    plugin.dock_action.setChecked(True)
    show_layer_names(window)
    scene = QgsRasterLayer(str(DATA / "rstoolbox-sen2" / "sen2.tif"), "sen2")
    polygons = QgsVectorLayer(str(DATA / "rstoolbox-sen2" / "trainingPolygons_sen2.geojson"),
                              "training polygons", "ogr")
    if not scene.isValid() or not polygons.isValid():
        fail(f"the demo data is missing under {DATA}")
    QgsProject.instance().addMapLayers([scene, polygons])
    dock = plugin.dock
    dock.optical_combo.setLayer(scene)
    dock.area_combo.setCurrentIndex(dock.area_combo.findData("layer"))
    dock.classifier_combo.setCurrentIndex(dock.classifier_combo.findData("random-forest"))
    for name in filter(None, os.environ.get("TERRAPROBE_SHOT_OPEN", "").split(",")):
        box = dock.findChild(QgsCollapsibleGroupBox, name)
        if box is not None:
            box.setCollapsed(False)
    if not dock.run_classify():
        fail(dock.status_label.text())
    waited = {"s": 0.0}

    def poll() -> None:
        waited["s"] += 0.5
        if dock.controller.running and waited["s"] < RUN_TIMEOUT_S:
            QTimer.singleShot(500, poll)
            return
        view = qgis.utils.iface.layerTreeView()
        view.expandAll()  # the result names (what made each layer) in view, not the band legends
        for node in QgsProject.instance().layerTreeRoot().findLayers():
            node.setExpanded(False)
        canvas = qgis.utils.iface.mapCanvas()
        canvas.setExtent(scene.extent())
        canvas.refresh()
        QTimer.singleShot(2000, scroll)

    def scroll() -> None:  # once the result's rows are laid out
        bar = dock.widget().verticalScrollBar()
        bar.setValue(0 if os.environ.get("TERRAPROBE_SHOT_SCROLL") == "top" else bar.maximum())
        QTimer.singleShot(1000, shoot)

    def shoot() -> None:
        SHOT.parent.mkdir(parents=True, exist_ok=True)
        if not QGuiApplication.primaryScreen().grabWindow(0).save(str(SHOT)):
            fail(f"cannot write {SHOT}")
        print(f"saved {SHOT}; dock {dock.width()} px wide; status: {dock.status_label.text()}")
        QgsProject.instance().setDirty(False)
        QgsApplication.exit(0)

    QTimer.singleShot(500, poll)


QTimer.singleShot(1000, start)
