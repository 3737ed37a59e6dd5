"""The QGIS plugin object: a Plugins-toolbar button (with a menu), Raster menu entries, dock, Processing
provider and the translator for QGIS's language."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsContrastEnhancement,
    QgsCoordinateTransform,
    QgsMultiBandColorRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsRasterMinMaxOrigin,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, Qt, QTranslator, QUrl
from qgis.PyQt.QtGui import QDesktopServices, QIcon
from qgis.PyQt.QtWidgets import QAction, QMenu, QToolButton

from .help_links import help_url
from .processing.provider import TerraprobeProvider
from .worker_client import shutdown_workers

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
ICON_PATH = PLUGIN_ROOT / "resources" / "icons" / "terraprobe.svg"
I18N_DIR = PLUGIN_ROOT / "i18n"
SAMPLES_DIR = PLUGIN_ROOT / "resources" / "samples"
MENU_NAME = "&Terraprobe"
#: The demo scene (resources/samples, see its README): file, layer name; RGB bands for optical layers.
DEMO_RASTERS = (
    ("Spain_7370579_S2Hand.tif", QT_TRANSLATE_NOOP("TerraprobePlugin", "Sen1Floods11 S2 (demo)"), (4, 3, 2)),
    ("Spain_7370579_S1Hand.tif", QT_TRANSLATE_NOOP("TerraprobePlugin", "Sen1Floods11 S1 (demo)"), None))
DEMO_SAMPLES = ("sen1floods11_samples.geojson",
                QT_TRANSLATE_NOOP("TerraprobePlugin", "Sen1Floods11 samples (demo)"))


def _tr(text: str) -> str:
    return QCoreApplication.translate("TerraprobePlugin", text)


def plugin_icon() -> QIcon:
    return QIcon(str(ICON_PATH))


def install_translator() -> QTranslator | None:
    """Load ``i18n/terraprobe_<lang>.qm`` for QGIS's language (none for English or a missing file)."""
    language = (QgsApplication.locale() or "en")[:2]
    qm_file = I18N_DIR / f"terraprobe_{language}.qm"
    if language == "en" or not qm_file.is_file():
        return None
    translator = QTranslator()
    if not translator.load(str(qm_file)):
        return None
    QCoreApplication.installTranslator(translator)
    return translator


def _rgb_style(layer: QgsRasterLayer, bands: tuple[int, int, int]) -> None:
    """True colour with a 2–98 % cumulative-cut stretch (the demo's Sentinel-2 layer)."""
    renderer = QgsMultiBandColorRenderer(layer.dataProvider(), *bands)
    layer.setRenderer(renderer)
    layer.setContrastEnhancement(QgsContrastEnhancement.StretchToMinimumMaximum,
                                 QgsRasterMinMaxOrigin.CumulativeCut)


def load_demo_data(project: QgsProject, canvas=None) -> list:
    """Add the bundled demo scene (S2, S1) and its sample polygons to ``project``; zoom ``canvas`` to it.

    The sample layer is read-only (it is the plugin's file): draw new samples with the dock's *New…*.
    Layers already in the project (same source) are not added twice. Returns the layers added.
    """
    present = {layer.source() for layer in project.mapLayers().values()}
    added = []
    for file_name, name, rgb in DEMO_RASTERS:
        path = str(SAMPLES_DIR / file_name)
        if path in present:
            continue
        layer = QgsRasterLayer(path, _tr(name), "gdal")
        if rgb is not None:
            _rgb_style(layer, rgb)
        added.append(layer)
    samples_file, samples_name = DEMO_SAMPLES
    samples_path = str(SAMPLES_DIR / samples_file)
    if samples_path not in present:
        samples = QgsVectorLayer(samples_path, _tr(samples_name), "ogr")
        samples.setReadOnly(True)
        added.append(samples)
    if not project.mapLayers() and added:
        project.setCrs(added[0].crs())
    project.addMapLayers([layer for layer in added if layer.isValid()])
    if canvas is not None and added:
        transform = QgsCoordinateTransform(added[0].crs(), project.crs(), project)
        canvas.setExtent(transform.transformBoundingBox(added[0].extent()))
        canvas.refresh()
    return added


def open_help() -> bool:
    """Open the README's *Using it in QGIS* section in the browser."""
    return QDesktopServices.openUrl(QUrl(help_url()))


class TerraprobePlugin:
    """Adds the Terraprobe dock, its actions and the Processing provider to QGIS.

    One button in QGIS's Plugins toolbar (no toolbar of its own): a click toggles the panel, its
    menu holds *Load demo data* and *Help*; the same actions are under *Raster > Terraprobe*.

    Args:
        iface: QGIS's ``QgisInterface``.
    """

    def __init__(self, iface) -> None:
        self.iface = iface
        self.translator = install_translator()  # before any widget asks for a translated text
        self.provider: TerraprobeProvider | None = None
        self.dock = None
        self.actions: list[QAction] = []
        self.dock_action: QAction | None = None
        self.toolbar_button: QToolButton | None = None
        self.toolbar_action: QAction | None = None

    # -- QGIS hooks ----------------------------------------------------------------------------
    def initProcessing(self) -> None:
        """Register the Processing provider (also called alone by qgis_process)."""
        if self.provider is None:
            self.provider = TerraprobeProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        """Create the dock, its toggle action, the toolbar button and the Raster menu."""
        self.initProcessing()
        from .ui.dock import TerraprobeDock

        main_window = self.iface.mainWindow()
        self.dock = TerraprobeDock(self.iface, parent=main_window)
        self.dock.setObjectName("TerraprobeDock")
        self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
        self.dock.hide()

        self.dock_action = QAction(plugin_icon(), _tr("Terraprobe panel"), main_window)
        self.dock_action.setObjectName("TerraprobeDockAction")
        self.dock_action.setCheckable(True)
        self.dock_action.setToolTip(_tr("Show the Terraprobe panel (foundation models over raster layers)"))
        self.dock_action.toggled.connect(self._set_dock_visible)
        self.dock.visibilityChanged.connect(self._sync_action)
        demo_action = QAction(_tr("Load demo data"), main_window)
        demo_action.setObjectName("TerraprobeDemoAction")
        demo_action.setToolTip(_tr("Add the bundled Sentinel-1/2 flood scene and its sample polygons to "
                                   "the project"))
        demo_action.triggered.connect(self.load_demo_data)
        help_action = QAction(QgsApplication.getThemeIcon("/mActionHelpContents.svg"), _tr("Help"),
                              main_window)
        help_action.setObjectName("TerraprobeHelpAction")
        help_action.setToolTip(_tr("Open the Terraprobe guide (README, Using it in QGIS)"))
        help_action.triggered.connect(open_help)
        self.actions = [self.dock_action, demo_action, help_action]
        for action in self.actions:
            self.iface.addPluginToRasterMenu(MENU_NAME, action)
        self._add_toolbar_button(main_window)

    def _add_toolbar_button(self, main_window) -> None:
        """One button in the Plugins toolbar (shown in a new profile, unlike the Raster toolbar): click = the
        panel; its arrow = demo data and help."""
        menu = QMenu(main_window)
        menu.addActions(self.actions)
        self.toolbar_button = QToolButton(main_window)
        self.toolbar_button.setObjectName("TerraprobeToolButton")
        self.toolbar_button.setDefaultAction(self.dock_action)
        self.toolbar_button.setMenu(menu)
        self.toolbar_button.setPopupMode(QToolButton.MenuButtonPopup)
        self.toolbar_action = self.iface.addToolBarWidget(self.toolbar_button)

    def load_demo_data(self) -> list:
        """*Load demo data*: the bundled scene into the current project, the panel shown on it.

        The Sentinel-2 layer becomes the panel's optical layer (the panel then picks the radar and
        sample layers of the same scene).
        """
        project = QgsProject.instance()
        added = load_demo_data(project, self.iface.mapCanvas())
        optical_source = str(SAMPLES_DIR / DEMO_RASTERS[0][0])
        optical = next((layer for layer in project.mapLayers().values() if layer.source() == optical_source),
                       None)
        if self.dock is not None and optical is not None:
            self.dock.optical_combo.setLayer(optical)
        if self.dock_action is not None:
            self.dock_action.setChecked(True)
        return added

    def unload(self) -> None:
        """Remove everything :meth:`initGui` and :meth:`initProcessing` added."""
        if self.dock is not None:
            self.dock.shutdown()
            self.iface.removeDockWidget(self.dock)
            self.dock.setParent(None)
            self.dock.deleteLater()
            self.dock = None
        if self.toolbar_action is not None:
            self.iface.removeToolBarIcon(self.toolbar_action)
            self.toolbar_action = None
        if self.toolbar_button is not None:
            self.toolbar_button.setParent(None)
            self.toolbar_button.deleteLater()
            self.toolbar_button = None
        for action in self.actions:
            self.iface.removePluginRasterMenu(MENU_NAME, action)
            action.setParent(None)
            action.deleteLater()
        self.actions.clear()
        self.dock_action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.translator is not None:
            QCoreApplication.removeTranslator(self.translator)
            self.translator = None
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
