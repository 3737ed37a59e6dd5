"""The plugin loads through QGIS's own plugin loading and unloads without leaving anything behind."""

from __future__ import annotations

import configparser
import subprocess
import sys

import qgis.utils
from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QEvent
from qgis.PyQt.QtWidgets import QAction, QDockWidget, QToolBar, QToolButton

from .conftest import PACKAGE, REPO_ROOT, add_plugin_folder


def _menu_texts(iface) -> list[str]:
    return [a.text() for a in iface.rasterMenu().actions()]


def test_plugin_adds_provider_action_menu_and_dock_and_removes_them(plugin_parent_dir, test_iface, qtbot):
    import qgis.utils

    registry = QgsApplication.processingRegistry()
    assert registry.providerById("terraprobe") is None
    main_window = test_iface.mainWindow()
    add_plugin_folder(plugin_parent_dir, test_iface)
    try:
        assert qgis.utils.loadPlugin(PACKAGE)
        assert qgis.utils.startPlugin(PACKAGE)
        plugin = qgis.utils.plugins[PACKAGE]
        assert type(plugin).__module__ == f"{PACKAGE}.plugin.terraprobe_plugin"

        provider = registry.providerById("terraprobe")
        assert provider is not None and provider.name() == "Terraprobe"

        # no toolbar of its own: one button in the Plugins toolbar, its menu the demo data and help
        assert [bar.objectName() for bar in main_window.findChildren(QToolBar)] == ["mPluginToolBar"]
        button = main_window.findChild(QToolButton, "TerraprobeToolButton")
        action = main_window.findChild(QAction, "TerraprobeDockAction")
        assert button.defaultAction() is action
        assert test_iface.pluginToolBar().widgetForAction(plugin.toolbar_action) is button
        assert [a.objectName() for a in button.menu().actions()] == [
            "TerraprobeDockAction", "TerraprobeDemoAction", "TerraprobeHelpAction"]
        assert "&Terraprobe" in _menu_texts(test_iface)
        submenu = next(a.menu() for a in test_iface.rasterMenu().actions() if a.text() == "&Terraprobe")
        assert action in submenu.actions()

        dock = main_window.findChild(QDockWidget, "TerraprobeDock")
        assert dock is not None and not dock.isVisible()
        main_window.show()
        action.trigger()
        qtbot.waitUntil(dock.isVisible, timeout=2000)
        assert action.isChecked()
        action.trigger()
        qtbot.waitUntil(lambda: not dock.isVisible(), timeout=2000)

        assert qgis.utils.unloadPlugin(PACKAGE)
        QgsApplication.processEvents()
        QgsApplication.sendPostedEvents(None, QEvent.DeferredDelete)
        assert registry.providerById("terraprobe") is None
        assert main_window.findChild(QToolButton, "TerraprobeToolButton") is None
        assert test_iface.pluginToolBar().actions() == []
        assert main_window.findChild(QDockWidget, "TerraprobeDock") is None
        assert main_window.findChild(QAction, "TerraprobeDockAction") is None
        assert "&Terraprobe" not in _menu_texts(test_iface)
        assert PACKAGE not in qgis.utils.plugins and PACKAGE not in qgis.utils.active_plugins
    finally:
        main_window.hide()
        if PACKAGE in qgis.utils.active_plugins:
            qgis.utils.unloadPlugin(PACKAGE)


def test_plugin_can_be_loaded_twice(loaded_plugin):
    """Reloading (as Plugin Reloader does) works: unload, then load again."""
    assert qgis.utils.unloadPlugin(PACKAGE)
    assert QgsApplication.processingRegistry().providerById("terraprobe") is None
    assert qgis.utils.loadPlugin(PACKAGE)
    assert qgis.utils.startPlugin(PACKAGE)
    assert QgsApplication.processingRegistry().providerById("terraprobe") is not None


def test_metadata_is_complete_for_the_plugin_repository():
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "metadata.txt", encoding="utf-8")
    general = parser["general"]
    required = ["name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
                "homepage", "tracker", "repository", "tags", "category", "icon", "experimental",
                "deprecated", "license", "hasProcessingProvider"]
    missing = [key for key in required if not general.get(key, "").strip()]
    assert not missing, f"metadata.txt lacks {missing}"
    assert general["name"] == "Terraprobe"
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes"
    assert (REPO_ROOT / general["icon"]).is_file()
    assert general["tracker"].startswith("https://") and general["repository"].startswith("https://")
    assert "GPL" in general["license"] and (REPO_ROOT / "LICENSE").is_file()
    from backend import __version__

    assert general["version"] == __version__


def test_plugin_never_imports_torch():
    """Importing every plugin module (as QGIS would) does not pull torch into QGIS's Python.

    Of the backend, only its pure-Python contract (``backend.contract``: units, sensors) may load.
    """
    code = (
        "import sys, pkgutil, importlib\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "import plugin\n"
        "names = [m.name for m in pkgutil.walk_packages(plugin.__path__, 'plugin.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "assert len(names) >= 8, names\n"
        "pure = ('backend', 'backend.contract')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'backend', 'rasterio')\n"
        "             and m not in pure and not m.startswith('backend.contract.'))\n"
        "print('IMPORTED', len(names), 'BAD', bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"}
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                               env=env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "BAD []" in completed.stdout


def test_unloading_the_plugin_stops_its_backend_worker(loaded_plugin, tmp_path):
    """A pooled backend worker (kept between actions) does not outlive the plugin."""
    import importlib
    import os

    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    client = importlib.import_module(f"{PACKAGE}.plugin.backend_client")
    workers = importlib.import_module(f"{PACKAGE}.plugin.worker_client")
    classes = tmp_path / "classes.tif"
    with rasterio.open(classes, "w", driver="GTiff", width=16, height=16, count=1, dtype="uint8", nodata=0,
                       crs="EPSG:32630", transform=from_origin(500000, 4200000, 80, 80)) as dst:
        dst.write(np.repeat(np.arange(1, 3, dtype=np.uint8), 128).reshape(1, 16, 16))
    pids: list[int] = []
    client.run_backend(["vectorise", "--raster", str(classes), "--out", str(tmp_path / "polygons.gpkg")],
                       keep_running=True, remote=False, on_start=pids.append)
    assert pids and workers.worker_pids() == pids[:1]
    assert qgis.utils.unloadPlugin(PACKAGE)
    for _ in range(40):
        try:
            os.kill(pids[0], 0)
        except ProcessLookupError:
            break
        import time

        time.sleep(0.1)
    else:
        raise AssertionError(f"the backend worker {pids[0]} still runs after the plugin was unloaded")
    assert workers.worker_pids() == []
