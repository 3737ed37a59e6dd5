"""Fixtures for plugin tests: a QGIS interface with real widgets and the plugin loaded via qgis.utils."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from qgis.core import Qgis, QgsProject
from qgis.gui import QgsMapCanvas, QgsMessageBar
from qgis.PyQt.QtCore import QObject, Qt
from qgis.PyQt.QtWidgets import QAction, QDockWidget, QMainWindow, QMenu, QToolBar, QVBoxLayout, QWidget

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "terraprobe"


class RecordingMessageBar(QgsMessageBar):
    """A real message bar that also remembers what was pushed (title, text, level)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pushed: list[tuple[str, str, int]] = []

    def pushMessage(self, *args, **kwargs):
        title, text, level = _message_parts(args, kwargs)
        self.pushed.append((title, text, level))
        return super().pushMessage(*args, **kwargs)


def _message_parts(args: tuple, kwargs: dict) -> tuple[str, str, int]:
    strings = [a for a in args if isinstance(a, str)]
    levels = [a for a in args if isinstance(a, (int, Qgis.MessageLevel)) and not isinstance(a, bool)]
    level = kwargs.get("level", levels[0] if levels else Qgis.Info)
    title = kwargs.get("title", strings[0] if len(strings) > 1 else "")
    text = kwargs.get("text", strings[1] if len(strings) > 1 else (strings[0] if strings else ""))
    return title, text, int(level)


class TestInterface(QObject):
    """The part of QgisInterface the plugin uses, backed by real Qt widgets.

    Unlike a MagicMock, an unknown attribute raises, so the test notices any iface call the
    plugin makes that this class (and therefore these tests) does not cover.
    """

    def __init__(self) -> None:
        super().__init__()
        self.main_window = QMainWindow()
        self.main_window.setObjectName("TestQgisMainWindow")
        self.main_window.setWindowTitle("QGIS (test interface)")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        self.message_bar = RecordingMessageBar(central)
        layout.addWidget(self.message_bar)
        self.canvas = QgsMapCanvas(central)
        self.canvas.setObjectName("TestMapCanvas")
        layout.addWidget(self.canvas, 1)
        self.main_window.setCentralWidget(central)
        self.raster_menu = self.main_window.menuBar().addMenu("&Raster")
        self.raster_menu.setObjectName("mRasterMenu")
        self.plugin_toolbar = self.main_window.addToolBar("Plugins")
        self.plugin_toolbar.setObjectName("mPluginToolBar")
        self.active_layer = None
        self.add_feature_action = QAction("Add Feature", self.main_window)

    def mainWindow(self) -> QMainWindow:
        return self.main_window

    def mapCanvas(self) -> QgsMapCanvas:
        return self.canvas

    def messageBar(self) -> RecordingMessageBar:
        return self.message_bar

    def addToolBar(self, name: str) -> QToolBar:
        return self.main_window.addToolBar(name)

    def rasterMenu(self) -> QMenu:
        return self.raster_menu

    def pluginToolBar(self) -> QToolBar:
        return self.plugin_toolbar

    def addToolBarWidget(self, widget: QWidget) -> QAction:
        return self.plugin_toolbar.addWidget(widget)

    def removeToolBarIcon(self, action: QAction) -> None:
        self.plugin_toolbar.removeAction(action)

    def addPluginToRasterMenu(self, name: str, action: QAction) -> None:
        menu = self._submenu(name, create=True)
        menu.addAction(action)

    def removePluginRasterMenu(self, name: str, action: QAction) -> None:
        menu = self._submenu(name, create=False)
        if menu is None:
            return
        menu.removeAction(action)
        if not menu.actions():
            self.raster_menu.removeAction(menu.menuAction())
            menu.deleteLater()

    def _submenu(self, name: str, create: bool) -> QMenu | None:
        for action in self.raster_menu.actions():
            if action.menu() is not None and action.text() == name:
                return action.menu()
        return self.raster_menu.addMenu(name) if create else None

    def addDockWidget(self, area: Qt.DockWidgetArea, dock: QDockWidget) -> None:
        self.main_window.addDockWidget(area, dock)

    def removeDockWidget(self, dock: QDockWidget) -> None:
        self.main_window.removeDockWidget(dock)

    def layerTreeView(self):
        return None

    def activeLayer(self):
        return self.active_layer

    def setActiveLayer(self, layer) -> bool:
        self.active_layer = layer
        return True

    def actionAddFeature(self) -> QAction:
        """QGIS's *Add Feature* action (here a plain action the tests watch)."""
        return self.add_feature_action


def add_plugin_folder(folder: Path, iface: TestInterface) -> None:
    """Make ``folder`` a QGIS plugin folder (sys.path, plugin_paths, available plugins) and set iface."""
    import qgis.utils

    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    if str(folder) not in qgis.utils.plugin_paths:
        qgis.utils.plugin_paths.append(str(folder))
    qgis.utils.updateAvailablePlugins()
    assert PACKAGE in qgis.utils.available_plugins, "QGIS did not find the plugin (metadata.txt?)"
    qgis.utils.iface = iface


@pytest.fixture(scope="session")
def plugin_parent_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``terraprobe -> <repo root>``, as QGIS's plugin folder would."""
    folder = tmp_path_factory.mktemp("qgis-plugins")
    (folder / PACKAGE).symlink_to(REPO_ROOT, target_is_directory=True)
    return folder


@pytest.fixture(scope="session")
def test_iface(qgis_app) -> Iterator[TestInterface]:
    iface = TestInterface()
    yield iface
    iface.canvas.setLayers([])


@pytest.fixture
def loaded_plugin(plugin_parent_dir: Path, test_iface: TestInterface) -> Iterator[object]:
    """The plugin loaded, started and (after the test) unloaded through ``qgis.utils``."""
    import qgis.utils

    add_plugin_folder(plugin_parent_dir, test_iface)
    assert qgis.utils.loadPlugin(PACKAGE), "qgis.utils.loadPlugin failed"
    assert qgis.utils.startPlugin(PACKAGE), "qgis.utils.startPlugin failed"
    plugin = qgis.utils.plugins[PACKAGE]
    yield plugin
    if PACKAGE in qgis.utils.active_plugins:
        assert qgis.utils.unloadPlugin(PACKAGE)


@pytest.fixture(scope="session", autouse=True)
def _runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime = tmp_path_factory.mktemp("xdg")
        runtime.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


# -- backend-driven fixtures ----------------------------------------------------------------------
# A backend that cannot start fails these tests (never a skip): a skip is only for a missing GPU or
# platform feature.
@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny CROMA model file (optical + radar stats) built by the backend's own API."""
    import subprocess

    from ..conftest import backend_python

    folder = tmp_path_factory.mktemp("tiny-model")
    code = (
        "import sys\n"
        "from backend.models import ModelConfig, build_model, save_model\n"
        "from backend.models.config import ModalityConfig, S1_BANDS, S2_BANDS\n"
        "cfg = ModelConfig(dim=32, heads=4, sar_depth=1, optical_depth=2, joint_depth=1, name='tiny-test',\n"
        "    modalities={'optical': ModalityConfig(list(S2_BANDS)),\n"
        "                'sar': ModalityConfig(list(S1_BANDS))})\n"
        "save_model(build_model(cfg), sys.argv[1])\n"
    )
    completed = subprocess.run([backend_python(), "-c", code, str(folder / "tiny")], capture_output=True,
                               text=True, cwd=REPO_ROOT, timeout=300)
    assert completed.returncode == 0, f"the backend could not build a model: {completed.stderr.strip()}"
    return folder / "tiny.safetensors"


# -- dock and Processing fixtures shared by the test modules ---------------------------------------
QGIS_PYTHON_PLUGINS = "/usr/share/qgis/python/plugins"


@pytest.fixture(scope="module")
def processing_ready(qgis_app):
    if QGIS_PYTHON_PLUGINS not in sys.path:
        sys.path.append(QGIS_PYTHON_PLUGINS)
    from processing.core.Processing import Processing

    Processing.initialize()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[QgsProject]:
    project = QgsProject.instance()
    project.clear()
    project.setPresetHomePath(str(tmp_path / "project"))
    yield project
    project.clear()
    project.setPresetHomePath("")


@pytest.fixture
def dock(loaded_plugin, tiny_model: Path, project: QgsProject, tmp_path: Path):
    from qgis.core import QgsSettings

    settings = QgsSettings()
    settings.setValue("terraprobe/cache_dir", str(tmp_path / "cache"))
    panel = loaded_plugin.dock
    panel.settings_panel.cache_widget.setFilePath(str(tmp_path / "cache"))
    panel.set_model_path(str(tiny_model))
    panel.show()
    yield panel
    settings.remove("terraprobe/cache_dir")
    settings.remove("terraprobe/model")


@pytest.fixture
def class_map_layer(tmp_path: Path, project: QgsProject):
    """A one-band class raster (classes 1 and 2, nodata 0) in the project: what Vectorise takes."""
    import numpy as np
    import rasterio
    from qgis.core import QgsRasterLayer
    from rasterio.transform import from_origin

    path = tmp_path / "classes.tif"
    with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=1, dtype="uint8", nodata=0,
                       crs="EPSG:32630", transform=from_origin(500000, 4200000, 80, 80)) as dst:
        dst.write(np.repeat(np.arange(1, 3, dtype=np.uint8), 128).reshape(1, 16, 16))
    layer = QgsRasterLayer(str(path), "classes")
    assert layer.isValid()
    project.addMapLayer(layer)
    return layer
