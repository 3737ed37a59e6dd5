"""Screenshots of desktop QGIS with the Terraprobe menu and dialogs (issue 21) for docs/images/.

Runs inside desktop QGIS, under Xvfb at the screen size wanted (a fresh profiles folder):

    xvfb-run -a -s "-screen 0 1280x800x24" env TERRAPROBE_SHOT_DIR=docs/images \\
        QGIS_PLUGINPATH=<folder holding terraprobe -> this repo> \\
        qgis --nologo --noversioncheck --profiles-path <fresh folder> --code scripts/screenshot_dialogs.py

In order, each the whole screen: the Plugins-toolbar button's menu after *Load demo data*
(``terraprobe_menu_demo_data``), the settings report of a wrong *Backend Python*
(``terraprobe_settings_wrong_python``), *Get models* (``terraprobe_get_models``) and its *Remove*
question (``terraprobe_remove_model``), *Set up backend* (``terraprobe_setup``). With QGIS set to
German (``locale/userLocale`` in the profile) the names end in ``_de`` and show the translation.
Files are ``<name>_<width>x<height>[_de].png``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import qgis.utils
from qgis.core import QgsApplication, QgsProject, QgsSettings
from qgis.PyQt.QtCore import QPoint, Qt, QTimer
from qgis.PyQt.QtGui import QGuiApplication
from qgis.PyQt.QtWidgets import QApplication, QDockWidget, QMessageBox, QScrollArea, QToolButton

SHOT_DIR = Path(os.environ.get("TERRAPROBE_SHOT_DIR", "docs/images")).resolve()
WRONG_PYTHON = "/usr/bin/python3"  # Debian's: no torch
WAIT_S = 120
LAYERS_PANEL_PX = 300


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    QgsProject.instance().setDirty(False)
    os._exit(1)


def shoot(name: str) -> None:
    """The whole screen into ``<name>_<w>x<h>[_de].png``."""
    screen = QGuiApplication.primaryScreen()
    size = screen.size()
    suffix = "_de" if QgsApplication.locale().startswith("de") else ""
    target = SHOT_DIR / f"{name}_{size.width()}x{size.height()}{suffix}.png"
    SHOT_DIR.mkdir(parents=True, exist_ok=True)
    if not screen.grabWindow(0).save(str(target)):
        fail(f"cannot write {target}")
    print(f"saved {target}")


def when(ready: Callable[[], bool], then: Callable[[], None], waited: float = 0.0) -> None:
    """Call ``then`` once ``ready()`` holds (polled every 0.5 s), or fail after WAIT_S."""
    if ready():
        QTimer.singleShot(1500, then)  # let the widgets paint
    elif waited > WAIT_S:
        fail(f"timed out waiting before {then.__name__}")
    else:
        QTimer.singleShot(500, lambda: when(ready, then, waited + 0.5))


class Tour:
    """The screenshots, one step after another."""

    def __init__(self) -> None:
        settings = QgsSettings()
        settings.remove("terraprobe/backend_python")
        qgis.utils.updateAvailablePlugins()
        if not (qgis.utils.loadPlugin("terraprobe") and qgis.utils.startPlugin("terraprobe")):
            fail("QGIS could not start the plugin (is QGIS_PLUGINPATH set?)")
        self.plugin = qgis.utils.plugins["terraprobe"]
        self.window = qgis.utils.iface.mainWindow()
        self.window.setGeometry(QGuiApplication.primaryScreen().availableGeometry())
        browser = self.window.findChild(QDockWidget, "Browser")
        if browser is not None:
            browser.hide()  # a new profile's Layers panel is too narrow for the layer names
        layers = self.window.findChild(QDockWidget, "Layers")
        if layers is not None:
            self.window.resizeDocks([layers], [LAYERS_PANEL_PX], Qt.Horizontal)
        self.dock = self.plugin.dock

    def menu(self) -> None:
        self.plugin.load_demo_data()
        button = self.window.findChild(QToolButton, "TerraprobeToolButton")
        self.popup = button.menu()
        self.popup.popup(button.mapToGlobal(QPoint(0, button.height())))
        QTimer.singleShot(2500, self.after_menu)

    def after_menu(self) -> None:
        shoot("terraprobe_menu_demo_data")
        self.popup.hide()
        panel = self.dock.settings_panel
        box = panel.parentWidget()
        while box is not None and not hasattr(box, "setCollapsed"):
            box = box.parentWidget()
        if box is not None:
            box.setCollapsed(False)
        panel.python_widget.setFilePath(WRONG_PYTHON)
        when(lambda: "without" in panel.report.text(), self.after_settings)

    def after_settings(self) -> None:
        panel = self.dock.settings_panel
        scroll = self.dock.findChild(QScrollArea)
        if scroll is not None:
            scroll.ensureWidgetVisible(panel.report)
        QTimer.singleShot(1000, self.settings_shot)

    def settings_shot(self) -> None:
        shoot("terraprobe_settings_wrong_python")
        self.dock.settings_panel.python_widget.setFilePath("")
        self.dock.get_models_button.click()
        self.models = self.dock.models_dialog
        when(lambda: self.models.task is None and bool(self.models.rows), self.models_shot)

    def models_shot(self) -> None:
        self.models.select("croma-base")
        self.models.move(120, 80)
        QTimer.singleShot(1000, self.models_shot_taken)

    def models_shot_taken(self) -> None:
        shoot("terraprobe_get_models")
        croma = next(row for row in self.models.rows if row["name"] == "croma-base")
        QTimer.singleShot(2000, self.remove_question_shot)
        # croma-base is not installed here: the question as it reads for the installed download
        self.models.confirm_remove({**croma, "installed_bytes": croma.get("size_bytes")})
        self.models.close()
        self.setup = self.dock.settings_panel.open_setup()
        self.setup.move(200, 20)
        QTimer.singleShot(2000, self.setup_shot)

    def remove_question_shot(self) -> None:
        shoot("terraprobe_remove_model")
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            box.button(QMessageBox.Cancel).click()

    def setup_shot(self) -> None:
        shoot("terraprobe_setup")
        self.setup.close()
        QgsProject.instance().clear()  # QGIS 3.22 can crash quitting with the layers' style dock live
        QgsApplication.exit(0)


def start() -> None:
    tour = Tour()
    globals()["_TOUR"] = tour  # kept alive while the timers run
    tour.menu()


QTimer.singleShot(1000, start)
