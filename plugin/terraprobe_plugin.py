"""The QGIS plugin object: toolbar button, Raster menu entry, dock and Processing provider."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .backend_client import shutdown_workers
from .processing.provider import TerraprobeProvider

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
ICON_PATH = PLUGIN_ROOT / "resources" / "icons" / "terraprobe.svg"
MENU_NAME = "&Terraprobe"
TOOLBAR_NAME = "Terraprobe"


def plugin_icon() -> QIcon:
    return QIcon(str(ICON_PATH))


class TerraprobePlugin:
    """Adds the Terraprobe dock (toolbar + Raster menu) and the Processing provider to QGIS.

    Args:
        iface: QGIS's ``QgisInterface``.
    """

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: TerraprobeProvider | None = None
        self.dock = None
        self.toolbar = None
        self.actions: list[QAction] = []
        self.dock_action: QAction | None = None

    # -- QGIS hooks ----------------------------------------------------------------------------
    def initProcessing(self) -> None:
        """Register the Processing provider (also called alone by qgis_process)."""
        if self.provider is None:
            self.provider = TerraprobeProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        """Create the dock, its toggle action in a toolbar and the Raster menu."""
        self.initProcessing()
        from .ui.dock import TerraprobeDock

        main_window = self.iface.mainWindow()
        self.dock = TerraprobeDock(self.iface, parent=main_window)
        self.dock.setObjectName("TerraprobeDock")
        self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
        self.dock.hide()

        self.dock_action = QAction(plugin_icon(), "Terraprobe", main_window)
        self.dock_action.setObjectName("TerraprobeDockAction")
        self.dock_action.setCheckable(True)
        self.dock_action.setToolTip("Show the Terraprobe panel (foundation models over raster layers)")
        self.dock_action.toggled.connect(self._set_dock_visible)
        self.dock.visibilityChanged.connect(self._sync_action)
        self.actions.append(self.dock_action)

        self.toolbar = self.iface.addToolBar(TOOLBAR_NAME)
        self.toolbar.setObjectName("TerraprobeToolbar")
        self.toolbar.addAction(self.dock_action)
        self.iface.addPluginToRasterMenu(MENU_NAME, self.dock_action)

    def unload(self) -> None:
        """Remove everything :meth:`initGui` and :meth:`initProcessing` added."""
        if self.dock is not None:
            self.dock.shutdown()
            self.iface.removeDockWidget(self.dock)
            self.dock.setParent(None)
            self.dock.deleteLater()
            self.dock = None
        for action in self.actions:
            self.iface.removePluginRasterMenu(MENU_NAME, action)
            action.setParent(None)
            action.deleteLater()
        self.actions.clear()
        self.dock_action = None
        if self.toolbar is not None:
            self.iface.mainWindow().removeToolBar(self.toolbar)
            self.toolbar.setParent(None)
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        shutdown_workers()  # a reloaded or removed plugin leaves no backend process behind

    # -- dock toggling -------------------------------------------------------------------------
    def _set_dock_visible(self, visible: bool) -> None:
        if self.dock is not None:
            self.dock.setVisible(visible)
            if visible:
                self.dock.raise_()

    def _sync_action(self, visible: bool) -> None:
        if self.dock_action is not None and self.dock_action.isChecked() != visible:
            self.dock_action.blockSignals(True)
            self.dock_action.setChecked(visible)
            self.dock_action.blockSignals(False)
