"""The Terraprobe dock: inputs, band mapping, model, area, actions, progress and settings.

The dock only gathers choices and shows state; jobs.py builds command lines, runner.py runs them
in a QgsTask, layers.py adds the results.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFieldProxyModel,
    QgsMapLayerProxyModel,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.gui import QgsCollapsibleGroupBox, QgsFieldComboBox, QgsMapLayerComboBox, QgsVertexMarker
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, Qt, pyqtSignal
from qgis.PyQt.QtGui import QBrush, QColor
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..bands import (
    BandPlan,
    layer_band_descriptions,
    layer_facts,
    match_bands,
    plan_optical_bands,
    resolve_sensor,
    sensor_label,
)
from ..contract import OPTICAL_UNITS, SAR_UNITS, SENSOR_NAMES, UNIT_HELP
from ..jobs import JobRequest, output_path
from ..models import (
    ModelInfo,
    bundled_model_for,
    bundled_models,
    import_model,
    model_info_from_stats,
    read_model_info,
    user_models_folder,
)
from ..rasters import layer_rectangle, plain_file_path
from ..readiness import input_blocker, samples_blocker, unmapped_bands
from ..runner import RunController
from ..samples import CLASS_FIELD, SamplesSnapshot, create_sample_layer, pick_class_field, thin_classes
from ..settings import DEVICES, Settings, output_folder
from ..tasks import BackendTask
from .map_tools import PointTool, RectangleTool, place_marker, remove_marker
from .settings_panel import SettingsPanel

#: Bands of the released CROMA encoders, shown when the model file says nothing (pure fallback).
DEFAULT_MODALITIES = {
    "optical": ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"],
    "sar": ["VV", "VH"],
}
#: Area choices: key (the logic's) and label (shown, translated).
AREAS = (("layer", QT_TRANSLATE_NOOP("TerraprobeDock", "Layer extent")),
         ("canvas", QT_TRANSLATE_NOOP("TerraprobeDock", "Map canvas extent")),
         ("drawn", QT_TRANSLATE_NOOP("TerraprobeDock", "Drawn rectangle")))
#: Backend defaults of the Advanced options (``--steps``, ``--overlap``, ``--batch-size``, ``--neighbors``).
DEFAULT_STEPS, DEFAULT_OVERLAP, DEFAULT_BATCH_SIZE, DEFAULT_NEIGHBORS = 300, 32, 4, 10
NONE_BAND = QT_TRANSLATE_NOOP("TerraprobeDock", "— none —")
FILL_BAND = QT_TRANSLATE_NOOP("TerraprobeDock", "— spectral fill —")
AUTO = "auto"
#: Shown for model bands the backend fills by wavelength interpolation.
FILL_COLOUR = QColor(200, 110, 0)


def _tr(text: str) -> str:
    return QCoreApplication.translate("TerraprobeDock", text)


class TerraprobeDock(QDockWidget):
    """The analyst's panel. ``controller`` runs jobs; tests drive the public widgets directly."""

    model_changed = pyqtSignal()

    def __init__(self, iface, parent: QWidget | None = None) -> None:
        super().__init__("Terraprobe", parent)
        self.iface = iface
        self.settings = Settings()
        self.controller = RunController(iface, self)
        self.model_info: ModelInfo | None = None
        self.bundled_infos: list[ModelInfo] = []
        self.drawn_rectangle: QgsRectangle | None = None
        self.drawn_crs: QgsCoordinateReferenceSystem | None = None
        self._info_task: BackendTask | None = None
        self._import_task: BackendTask | None = None
        self.band_plan: BandPlan | None = None
        self.similarity_marker: QgsVertexMarker | None = None
        self._last_inputs: tuple | None = None
        self.rectangle_tool = RectangleTool(iface.mapCanvas())
        self.rectangle_tool.rectangle_drawn.connect(self._on_rectangle)
        self.point_tool = PointTool(iface.mapCanvas())
        self.point_tool.point_clicked.connect(self.run_similarity_at)
        self._build()
        self._connect()
        self._reload_models()
        self._update_band_table()
        self._update_buttons()

    # -- construction --------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._build_inputs())
        layout.addWidget(self._build_area())
        layout.addWidget(self._build_actions())
        layout.addWidget(self._build_advanced())
        layout.addWidget(self._build_progress())
        self.settings_panel = SettingsPanel(self.settings)
        settings_box = QgsCollapsibleGroupBox(self.tr("Settings"))
        settings_box.setObjectName("TerraprobeSettingsBox")
        box_layout = QVBoxLayout(settings_box)
        box_layout.addWidget(self.settings_panel)
        settings_box.setSaveCollapsedState(False)
        settings_box.setCollapsed(True)
        layout.addWidget(settings_box)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self._fit_width(scroll, body)

    def _fit_width(self, scroll: QScrollArea, body: QWidget) -> None:
        """Open at least as wide as the content plus a vertical scrollbar: no horizontal scrollbar."""
        for combo in body.findChildren(QComboBox):  # long layer names must not widen the dock
            if combo.sizeAdjustPolicy() != QComboBox.AdjustToMinimumContentsLengthWithIcon:
                combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
                combo.setMinimumContentsLength(max(combo.minimumContentsLength(), 10))
        scrollbar = scroll.style().pixelMetric(scroll.style().PM_ScrollBarExtent)
        needed = (max(body.minimumSizeHint().width(), body.sizeHint().width())
                  + scrollbar + 2 * scroll.frameWidth() + 4)
        scroll.setMinimumWidth(needed)
        self.setMinimumWidth(needed)

    def _build_inputs(self) -> QGroupBox:
        box = QGroupBox(self.tr("Inputs"))
        form = QFormLayout(box)
        self.optical_combo = QgsMapLayerComboBox()
        self.optical_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.optical_combo.setToolTip(self.tr("Optical layer (Sentinel-2 or any layer whose bands the model "
                                              "knows)"))
        form.addRow(self.tr("Optical"), self.optical_combo)
        self.sar_combo = QgsMapLayerComboBox()
        self.sar_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.sar_combo.setAllowEmptyLayer(True)
        self.sar_combo.setLayer(None)
        self.sar_combo.setToolTip(self.tr("Optional radar layer (Sentinel-1 VV/VH), aligned onto the "
                                          "optical grid"))
        form.addRow(self.tr("Radar"), self.sar_combo)
        self.sensor_combo = QComboBox()
        self.sensor_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.sensor_combo.setMinimumContentsLength(12)
        for name in SENSOR_NAMES:
            self.sensor_combo.addItem(_tr(sensor_label(name)), name)
        self.sensor_combo.setToolTip(self.tr(
            "Which sensor the optical layer comes from. Auto recognises it from the band names; other "
            "sensors than Sentinel-2 are matched to the model's bands by wavelength"))
        form.addRow(self.tr("Sensor"), self.sensor_combo)
        self.optical_units_combo = self._units_combo(OPTICAL_UNITS, self.tr(
            "Units of the optical values; auto detects them from the data type, metadata and values"))
        form.addRow(self.tr("Optical units"), self.optical_units_combo)
        self.sar_units_combo = self._units_combo(SAR_UNITS, self.tr(
            "Units of the radar values (the model expects dB); auto detects them"))
        form.addRow(self.tr("Radar units"), self.sar_units_combo)

        model_row = QHBoxLayout()
        self.model_combo = QComboBox()
        self.model_combo.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.model_combo.setToolTip(self.tr("Encoder: the bundled default, or a model file you added"))
        self.add_model_button = QToolButton()
        self.add_model_button.setText(self.tr("Add…"))
        self.add_model_button.setToolTip(self.tr("Add a model file (Terraprobe .safetensors + .json, or an "
                                                 "imported CROMA checkpoint)"))
        model_row.addWidget(self.model_combo)
        model_row.addWidget(self.add_model_button)
        from .models_dialog import open_models_dialog  # issue 13: official CROMA weights, bundled models

        self.get_models_button = QToolButton()
        self.get_models_button.setText(self.tr("Get models…"))
        self.get_models_button.setToolTip(self.tr("Download CROMA base/large (verified, kept across "
                                                  "plugin upgrades) or see the bundled models"))
        self.get_models_button.clicked.connect(
            lambda: setattr(self, "models_dialog", open_models_dialog(self)))
        model_row.addWidget(self.get_models_button)
        form.addRow(self.tr("Model"), model_row)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: palette(mid);")
        form.addRow("", self.model_label)

        self.band_table = QTableWidget(0, 2)
        self.band_table.setHorizontalHeaderLabels([self.tr("Model band"), self.tr("Layer band")])
        self.band_table.verticalHeader().setVisible(False)
        self.band_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.band_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.band_table.setMinimumHeight(200)
        self.band_table.setToolTip(self.tr("Which layer band feeds each model band (matched from band "
                                           "names; editable)"))
        form.addRow(self.band_table)
        self.band_note = QLabel()
        self.band_note.setWordWrap(True)
        self.band_note.setVisible(False)
        form.addRow(self.band_note)
        return box

    def _units_combo(self, choices: tuple[str, ...], tooltip: str) -> QComboBox:
        combo = QComboBox()
        combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(8)
        for index, name in enumerate(choices):
            combo.addItem(self.tr(name), name)
            combo.setItemData(index, _tr(UNIT_HELP.get(name, name)), Qt.ToolTipRole)
        combo.setProperty("base_tooltip", tooltip)
        combo.currentIndexChanged.connect(lambda _index, c=combo: self._explain_units(c))
        self._explain_units(combo)
        return combo

    @staticmethod
    def _explain_units(combo: QComboBox) -> None:
        name = combo.currentData()
        help_text = _tr(UNIT_HELP.get(name, "")) if name else ""
        base = combo.property("base_tooltip") or ""
        combo.setToolTip(f"{base}\n{name}: {help_text}" if help_text else base)

    def _build_area(self) -> QGroupBox:
        box = QGroupBox(self.tr("Area and processing"))
        form = QFormLayout(box)
        area_row = QHBoxLayout()
        self.area_combo = QComboBox()
        for key, label in AREAS:
            self.area_combo.addItem(self.tr(label), key)
        self.draw_button = QToolButton()
        self.draw_button.setText(self.tr("Draw"))
        self.draw_button.setCheckable(True)
        self.draw_button.setToolTip(self.tr("Drag a rectangle on the map"))
        area_row.addWidget(self.area_combo, 1)
        area_row.addWidget(self.draw_button)
        form.addRow(self.tr("Area"), area_row)
        self.window_spin = QSpinBox()
        self.window_spin.setRange(16, 1024)
        self.window_spin.setSingleStep(8)
        self.window_spin.setValue(120)
        self.window_spin.setSuffix(self.tr(" px"))
        self.window_spin.setToolTip(self.tr("Window the encoder sees at once (multiple of 8)"))
        form.addRow(self.tr("Window"), self.window_spin)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setCurrentText(self.settings.device)
        form.addRow(self.tr("Device"), self.device_combo)
        return box

    def _build_actions(self) -> QGroupBox:
        box = QGroupBox(self.tr("Actions"))
        grid = QGridLayout(box)
        self.embed_button = QPushButton(self.tr("Embed"))
        self.embed_button.setToolTip(self.tr("Compute embeddings and an RGB preview (first 3 principal "
                                             "components)"))
        grid.addWidget(self.embed_button, 0, 0)
        self.similarity_button = QPushButton(self.tr("Similarity…"))
        self.similarity_button.setCheckable(True)
        self.similarity_button.setToolTip(self.tr("Click a point on the map to find similar places"))
        grid.addWidget(self.similarity_button, 0, 1, 1, 2)

        self.k_spin = QSpinBox()
        self.k_spin.setRange(2, 64)
        self.k_spin.setValue(8)
        self.k_spin.setPrefix(self.tr("k = "))
        self.k_spin.setToolTip(self.tr("Number of clusters"))
        self.cluster_button = QPushButton(self.tr("Cluster"))
        self.cluster_button.setToolTip(self.tr("k-means clusters of the embeddings"))
        grid.addWidget(self.k_spin, 1, 0)
        grid.addWidget(self.cluster_button, 1, 1, 1, 2)

        self.samples_combo = QgsMapLayerComboBox()
        self.samples_combo.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        self.samples_combo.setAllowEmptyLayer(True)
        self.samples_combo.setToolTip(self.tr("Sample polygons with a class field"))
        self.field_combo = QgsFieldComboBox()
        self.field_combo.setFilters(QgsFieldProxyModel.String | QgsFieldProxyModel.Int
                                    | QgsFieldProxyModel.LongLong)
        self.field_combo.setAllowEmptyFieldName(True)
        self.field_combo.setToolTip(self.tr("The field holding each polygon's class (not an identifier)"))
        self.new_samples_button = QToolButton()
        self.new_samples_button.setText(self.tr("New…"))
        self.new_samples_button.setToolTip(self.tr("Create a sample polygon layer (GeoPackage, field "
                                                   "'class') and start digitising"))
        grid.addWidget(QLabel(self.tr("Samples")), 2, 0)
        grid.addWidget(self.samples_combo, 2, 1)
        grid.addWidget(self.new_samples_button, 2, 2)
        grid.addWidget(QLabel(self.tr("Class field")), 3, 0)
        grid.addWidget(self.field_combo, 3, 1, 1, 2)
        self.classify_button = QPushButton(self.tr("Classify (kNN)"))
        self.segment_button = QPushButton(self.tr("Segment"))
        self.classify_button.setToolTip(self.tr("Label every pixel with the nearest samples' class"))
        self.segment_button.setToolTip(self.tr("Train a small segmentation head on the samples and apply it"))
        grid.addWidget(self.classify_button, 4, 0, 1, 2)
        grid.addWidget(self.segment_button, 4, 2)
        grid.setColumnStretch(1, 1)
        for button in (self.embed_button, self.similarity_button, self.cluster_button, self.classify_button,
                       self.segment_button):
            button.setProperty("base_tooltip", button.toolTip())
        return box

    def _build_advanced(self) -> QgsCollapsibleGroupBox:
        """Encoder tiling and the downstream heads' options, named as in the Processing algorithms."""
        box = QgsCollapsibleGroupBox(self.tr("Advanced"))
        box.setObjectName("TerraprobeAdvancedBox")
        form = QFormLayout(box)
        self.overlap_spin = self._spin(0, 512, DEFAULT_OVERLAP, 8, self.tr(" px"), self.tr(
            "Tile overlap of the encoder in pixels (multiple of 8; --overlap)"))
        form.addRow(self.tr("Tile overlap"), self.overlap_spin)
        self.batch_spin = self._spin(1, 256, DEFAULT_BATCH_SIZE, 1, "", self.tr(
            "Tiles per encoder call (--batch-size); lower it when memory is short"))
        form.addRow(self.tr("Batch size"), self.batch_spin)
        self.neighbors_spin = self._spin(1, 500, DEFAULT_NEIGHBORS, 1, "", self.tr(
            "k of the kNN vote of Classify (--neighbors)"))
        form.addRow(self.tr("Neighbours (k of kNN)"), self.neighbors_spin)
        self.steps_spin = self._spin(1, 100_000, DEFAULT_STEPS, 50, "", self.tr(
            "Training steps of the segmentation head (AdamW; --steps)"))
        form.addRow(self.tr("Training steps (Segment)"), self.steps_spin)
        box.setSaveCollapsedState(False)
        box.setCollapsed(True)
        return box

    @staticmethod
    def _spin(low: int, high: int, value: int, step: int, suffix: str, tooltip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setValue(value)
        spin.setSuffix(suffix)
        spin.setToolTip(tooltip)
        return spin

    def _build_progress(self) -> QWidget:
        widget = QWidget()
        layout = QVBoxLayout(widget)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.setToolTip(self.tr("Stop the running action (nothing is added)"))
        self.cancel_button.setEnabled(False)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.status_label = QLabel(self.tr("Ready."))
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        return widget

    def _connect(self) -> None:
        self.optical_combo.layerChanged.connect(self._update_band_table)
        self.sar_combo.layerChanged.connect(self._update_band_table)
        self.sensor_combo.currentIndexChanged.connect(self._update_band_table)
        self.model_combo.currentIndexChanged.connect(self._on_model_selected)
        self.add_model_button.clicked.connect(self._add_model_dialog)
        self.samples_combo.layerChanged.connect(self._on_samples_changed)
        self.field_combo.fieldChanged.connect(self._update_buttons)
        self.area_combo.currentIndexChanged.connect(self._update_buttons)
        self.optical_units_combo.currentIndexChanged.connect(self._update_buttons)
        self.sar_units_combo.currentIndexChanged.connect(self._update_buttons)
        self.draw_button.toggled.connect(self._toggle_draw)
        self.similarity_button.toggled.connect(self._toggle_similarity)
        self.embed_button.clicked.connect(self.run_embed)
        self.cluster_button.clicked.connect(self.run_cluster)
        self.classify_button.clicked.connect(self.run_classify)
        self.segment_button.clicked.connect(self.run_segment)
        self.new_samples_button.clicked.connect(self.new_sample_layer)
        self.cancel_button.clicked.connect(self.controller.cancel)
        self.device_combo.currentTextChanged.connect(lambda text: setattr(self.settings, "device", text))
        self.settings_panel.device_combo.currentTextChanged.connect(self.device_combo.setCurrentText)
        self.controller.started.connect(self._on_started)
        self.controller.progress.connect(self._on_progress)
        self.controller.succeeded.connect(self._on_succeeded)
        self.controller.failed.connect(self._on_failed)
        self.controller.cancelled.connect(self._on_cancelled)

    # -- models --------------------------------------------------------------------------------
    def _reload_models(self, select: str | None = None) -> None:
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        bundled = bundled_models()
        infos = (read_model_info(path) for path in bundled)
        self.bundled_infos = [info for info in infos if info is not None]
        self.model_combo.addItem(self.tr("Auto (by sensor)"), "")
        self.model_combo.setItemData(0, self.tr(
            "The backend picks the bundled model trained for the optical layer's sensor, else the "
            "Sentinel-2 model with spectral fill"), Qt.ToolTipRole)
        for path in bundled:
            self.model_combo.addItem(self.tr("{name} (bundled)").format(name=path.stem), str(path))
        try:
            for cfg in sorted(user_models_folder().glob("*.json")):
                self.model_combo.addItem(cfg.stem, str(cfg.with_suffix(".safetensors")))
        except OSError:
            pass
        wanted = select if select is not None else self.settings.model
        if wanted:
            index = self.model_combo.findData(wanted)
            if index < 0:
                self.model_combo.addItem(Path(wanted).stem, wanted)
                index = self.model_combo.count() - 1
            self.model_combo.setCurrentIndex(index)
        self.model_combo.blockSignals(False)
        self._on_model_selected()

    def set_model_path(self, path: str) -> None:
        """Select a model file (adds it to the list when new)."""
        self._reload_models(select=str(path))

    def model_path(self) -> str | None:
        return self.model_combo.currentData() or None

    def _on_model_selected(self, *_args) -> None:
        path = self.model_path()
        self.model_info = read_model_info(path) if path else None
        self.settings.model = path or ""
        if self.model_info is not None:
            self.model_label.setText(self.model_info.summary())
        elif path:
            self.model_label.setText(self.tr("{name}: reading the checkpoint…").format(name=Path(path).name))
            self._describe_model(path)
        self._update_band_table()
        self.model_changed.emit()

    def _describe_model(self, path: str) -> BackendTask:
        """Ask the backend (``info``) for a checkpoint's bands and size, in a task."""
        task = BackendTask(self.tr("Terraprobe: read {name}").format(name=Path(path).name), ["info", path])

        def show(result) -> None:
            if self.model_path() == path:
                self.model_info = model_info_from_stats(path, result.stats)
                self.model_label.setText(self.model_info.summary())
                self._update_band_table()

        task.finished_ok.connect(show)
        task.failed.connect(lambda error: self.model_label.setText(self.tr("{name}: {error}").format(
            name=Path(path).name, error=getattr(error, "message", error))))
        self._info_task = task
        QgsApplication.taskManager().addTask(task)
        return task

    def _add_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Add a model"), "",
            self.tr("Models (*.safetensors *.json *.pt *.pth);;All files (*)"))
        if path:
            self.add_model(path)

    def add_model(self, path: str) -> BackendTask | None:
        """Add a model file: Terraprobe files are copied; CROMA checkpoints are imported in a task."""
        source = Path(path)
        folder = user_models_folder()
        if source.suffix.lower() in (".safetensors", ".json"):
            target = import_model(source, folder)
            self.set_model_path(str(target.with_suffix(".safetensors")))
            return None
        target = folder / f"{source.stem}.safetensors"
        task = BackendTask(self.tr("Terraprobe: import {name}").format(name=source.name),
                           ["import-weights", str(source), "--out", str(target)])
        task.progress_message.connect(self._on_progress)
        task.finished_ok.connect(lambda _result: self.set_model_path(str(target)))
        task.failed.connect(lambda error: self.iface.messageBar().pushMessage(
            "Terraprobe", self.tr("could not import {name}: {error}").format(
                name=source.name, error=getattr(error, "message", error)), Qgis.Critical, 0))
        self.status_label.setText(self.tr("Importing {name} (this converts the checkpoint once)…")
                                  .format(name=source.name))
        self._import_task = task
        QgsApplication.taskManager().addTask(task)
        return task

    def _pick_auto_model(self) -> None:
        """With the *Auto* model: the bundled model the backend will pick for the layer, shown."""
        if self.model_path() is not None:
            return
        optical = self.optical_combo.currentLayer()
        sensor = "sentinel2"
        if optical is not None:
            sensor = resolve_sensor(layer_facts(optical), self.sensor_choice())[0]
        self.model_info = bundled_model_for(sensor, self.sar_combo.currentLayer() is not None,
                                            self.bundled_infos)
        if self.model_info is None:
            self.model_label.setText(self.tr("CROMA bands: Sentinel-2 (12, no B10) and Sentinel-1 VV/VH"))
        elif self.model_info.sensor == sensor or optical is None:
            self.model_label.setText(self.tr("Auto → {summary}").format(summary=self.model_info.summary()))
        else:
            text = self.tr("Auto → {name} (no bundled {sensor} model)")
            self.model_label.setText(text.format(name=self.model_info.name, sensor=_tr(sensor_label(sensor))))

    def model_modalities(self) -> dict[str, list[str]]:
        if self.model_info is not None and self.model_info.modalities:
            return self.model_info.modalities
        return DEFAULT_MODALITIES

    # -- choices: sensor and units -------------------------------------------------------------
    @staticmethod
    def _choice(combo: QComboBox, allowed: tuple[str, ...]) -> str:
        value = combo.currentData()
        return value if value in allowed else AUTO

    @staticmethod
    def _set_choice(combo: QComboBox, value: str | None) -> bool:
        index = combo.findData(value or AUTO)
        if index < 0:
            return False
        combo.setCurrentIndex(index)
        return True

    def sensor_choice(self) -> str:
        """The chosen ``--sensor`` (``"auto"`` when nothing valid is selected)."""
        return self._choice(self.sensor_combo, SENSOR_NAMES)

    def optical_units_choice(self) -> str:
        return self._choice(self.optical_units_combo, OPTICAL_UNITS)

    def sar_units_choice(self) -> str:
        return self._choice(self.sar_units_combo, SAR_UNITS)

    def set_sensor(self, name: str | None) -> bool:
        """Select a sensor preset; an unknown name changes nothing and returns ``False``."""
        return self._set_choice(self.sensor_combo, name)

    def set_units(self, optical: str | None = None, sar: str | None = None) -> bool:
        """Select optical and/or radar units; unknown names change nothing (returns ``False``)."""
        ok = True
        if optical is not None:
            ok = self._set_choice(self.optical_units_combo, optical) and ok
        if sar is not None:
            ok = self._set_choice(self.sar_units_combo, sar) and ok
        return ok

    # -- band mapping --------------------------------------------------------------------------
    def _update_band_table(self, *_args) -> None:
        self._pick_auto_model()
        rows: list[tuple[str, str, QgsRasterLayer | None]] = []
        modalities = self.model_modalities()
        sources = {"optical": self.optical_combo.currentLayer(), "sar": self.sar_combo.currentLayer()}
        for modality in ("optical", "sar"):
            layer = sources[modality]
            if modality not in modalities or (modality == "sar" and layer is None):
                continue
            rows += [(modality, band, layer) for band in modalities[modality]]
        self.band_table.setRowCount(len(rows))
        matches: dict[str, list[int | None]] = {}
        self.band_plan = None
        optical = sources["optical"]
        if "optical" in modalities and optical is not None:
            self.band_plan = plan_optical_bands(modalities["optical"], layer_facts(optical),
                                                self.sensor_choice())
            matches["optical"] = self.band_plan.mapping
        sar = sources["sar"]
        if "sar" in modalities and sar is not None:
            matches["sar"] = match_bands(modalities["sar"], layer_band_descriptions(sar))
        can_fill = self.band_plan is not None and self.band_plan.can_fill
        counters = {"optical": 0, "sar": 0}
        for row, (modality, band, layer) in enumerate(rows):
            text = band if modality == "optical" else self.tr("{band} (radar)").format(band=band)
            label = QTableWidgetItem(text)
            label.setFlags(Qt.ItemIsEnabled)
            self.band_table.setItem(row, 0, label)
            combo = QComboBox()
            fills = modality == "optical" and can_fill
            combo.addItem(self.tr(FILL_BAND) if fills else self.tr(NONE_BAND), None)
            if fills:
                combo.setItemData(0, self.tr("No layer band: the backend interpolates this band from the "
                                             "neighbouring wavelengths (an approximation)"), Qt.ToolTipRole)
            if layer is not None:
                for index in range(1, layer.bandCount() + 1):
                    combo.addItem(layer.bandName(index), index)
                match = matches[modality][counters[modality]]
                if match is not None and combo.findData(match) >= 0:
                    combo.setCurrentIndex(combo.findData(match))
            counters[modality] += 1
            combo.setProperty("modality", modality)
            combo.setProperty("model_band", band)
            combo.currentIndexChanged.connect(self._update_buttons)
            self.band_table.setCellWidget(row, 1, combo)
        self.band_table.resizeRowsToContents()
        self._update_sar_units()
        self._update_buttons()

    def _update_sar_units(self) -> None:
        has_sar = self.sar_combo.currentLayer() is not None
        self.sar_units_combo.setEnabled(has_sar)

    def _show_band_note(self) -> None:
        """Name the sensor the layer is read as and the model bands that will be spectrally filled."""
        plan: BandPlan | None = getattr(self, "band_plan", None)
        if plan is None or not plan.sensor:
            self.band_note.setVisible(False)
            return
        filled = self.filled_bands()
        sensor = _tr(sensor_label(plan.sensor))
        text = (self.tr("Read as {sensor} (recognised from the layer).") if plan.detected
                else self.tr("Read as {sensor} (your choice).")).format(sensor=sensor)
        self.band_note.setToolTip(plan.reason.replace(",", ", "))
        if plan.error:
            text += " " + self.tr("Map the bands by hand: {error}").format(error=plan.error)
        if filled:
            text += " " + self.tr("Spectrally filled (approximation): {bands}.").format(
                bands=", ".join(filled))
            self.band_note.setStyleSheet(f"color: {FILL_COLOUR.name()};")
        else:
            self.band_note.setStyleSheet("")
        self.band_note.setText(text)
        self.band_note.setVisible(True)

    def filled_bands(self) -> list[str]:
        """Model optical bands without a layer band that the backend fills spectrally (in model order)."""
        plan: BandPlan | None = getattr(self, "band_plan", None)
        if plan is None or not plan.can_fill:
            return []
        bands = self.model_modalities().get("optical", [])
        return [band for band, index in zip(bands, self.band_mapping("optical")) if index is None]

    def band_mapping(self, modality: str) -> list[int | None]:
        """The layer band chosen for each model band of ``modality`` (table order = model order)."""
        mapping = []
        for row in range(self.band_table.rowCount()):
            combo = self.band_table.cellWidget(row, 1)
            if combo is not None and combo.property("modality") == modality:
                mapping.append(combo.currentData())
        return mapping

    def set_band(self, modality: str, model_band_row: int, layer_band: int | None) -> None:
        """Set the layer band of the ``model_band_row``-th model band of ``modality``."""
        rows = [r for r in range(self.band_table.rowCount())
                if self.band_table.cellWidget(r, 1).property("modality") == modality]
        combo = self.band_table.cellWidget(rows[model_band_row], 1)
        combo.setCurrentIndex(combo.findData(layer_band) if layer_band else 0)

    # -- area ----------------------------------------------------------------------------------
    def _toggle_draw(self, checked: bool) -> None:
        canvas = self.iface.mapCanvas()
        if checked:
            self.similarity_button.setChecked(False)
            canvas.setMapTool(self.rectangle_tool)
        elif canvas.mapTool() is self.rectangle_tool:
            canvas.unsetMapTool(self.rectangle_tool)

    def _on_rectangle(self, rect: QgsRectangle) -> None:
        self.set_drawn_rectangle(rect, self.iface.mapCanvas().mapSettings().destinationCrs())
        self.draw_button.setChecked(False)

    def set_drawn_rectangle(self, rect: QgsRectangle, crs: QgsCoordinateReferenceSystem) -> None:
        self.drawn_rectangle = QgsRectangle(rect)
        self.drawn_crs = QgsCoordinateReferenceSystem(crs)
        self.area_combo.setCurrentIndex(self.area_combo.findData("drawn"))
        self._update_buttons()

    def area_in_layer_crs(self, layer: QgsRasterLayer) -> QgsRectangle | None:
        """The chosen area in ``layer``'s CRS (``None`` = the whole layer)."""
        choice = self.area_combo.currentData()
        if choice == "canvas":
            canvas = self.iface.mapCanvas()
            rect = layer_rectangle(canvas.extent(), canvas.mapSettings().destinationCrs(), layer)
        elif choice == "drawn":
            if self.drawn_rectangle is None:
                raise ValueError(self.tr("draw a rectangle on the map first (Area › Draw)"))
            rect = layer_rectangle(self.drawn_rectangle, self.drawn_crs, layer)
        else:
            return None
        if rect.isEmpty():
            raise ValueError(self.tr("the chosen area does not overlap the optical layer"))
        return rect

    # -- samples -------------------------------------------------------------------------------
    def _on_samples_changed(self, layer) -> None:
        self.field_combo.setLayer(layer)
        picked = pick_class_field(layer) if isinstance(layer, QgsVectorLayer) else None
        self.field_combo.setField(picked or "")
        self._update_buttons()

    def new_sample_layer(self) -> QgsVectorLayer:
        """Create a GeoPackage sample layer in the project folder (or a temp folder) and edit it."""
        optical = self.optical_combo.currentLayer()
        crs = optical.crs() if optical is not None else self.iface.mapCanvas().mapSettings().destinationCrs()
        path = output_path(output_folder(), "samples", "polygons", ".gpkg")
        layer = create_sample_layer(path, crs)
        self.samples_combo.setLayer(layer)
        self.field_combo.setField(CLASS_FIELD)
        self._update_buttons()
        self.status_label.setText(self.tr("Digitise sample polygons in '{layer}' and pick their class.")
                                  .format(layer=layer.name()))
        return layer

    # -- running -------------------------------------------------------------------------------
    def _update_buttons(self, *_args) -> None:
        """Enable what can run, say why the rest cannot, and reset stale feedback on new inputs."""
        busy = self.controller.running
        filled = self.filled_bands()
        self._mark_filled_rows(filled)
        self._show_band_note()
        input_reason = self._input_problem(filled)
        samples_reason = input_reason or self._samples_problem()
        busy_reason = self.tr("a run is in progress (Cancel stops it)") if busy else None
        for button in (self.embed_button, self.cluster_button, self.similarity_button):
            self._explain_button(button, busy_reason or input_reason)
        for button in (self.classify_button, self.segment_button):
            self._explain_button(button, busy_reason or samples_reason)
        self.cancel_button.setEnabled(busy)
        inputs = self._inputs_state()
        changed = inputs != self._last_inputs
        self._last_inputs = inputs
        if busy:
            return
        if changed:
            self.progress_bar.setValue(0)
        if input_reason and self.optical_combo.currentLayer() is not None:
            self.status_label.setText(input_reason[0].upper() + input_reason[1:])
        elif changed:
            stale = self._samples_problem() if self.samples_combo.currentLayer() is not None else None
            self.status_label.setText(stale[0].upper() + stale[1:] if stale else self.tr("Ready."))

    def _input_problem(self, filled: list[str]) -> str | None:
        """Why Embed/Cluster/Similarity cannot run (``None``: they can)."""
        modalities = self.model_modalities()
        optical = unmapped_bands(modalities.get("optical", []), self.band_mapping("optical"), filled)
        radar = (unmapped_bands(modalities.get("sar", []), self.band_mapping("sar"))
                 if self.sar_combo.currentLayer() is not None else [])
        return input_blocker(self.optical_combo.currentLayer() is not None, optical, radar)

    def _samples_problem(self) -> str | None:
        """Why Classify/Segment cannot run beyond the inputs (``None``: they can)."""
        return samples_blocker(self.samples_combo.currentLayer() is not None, self.field_combo.currentField())

    def _explain_button(self, button: QPushButton, reason: str | None) -> None:
        button.setEnabled(reason is None)
        base = button.property("base_tooltip") or ""
        button.setToolTip(base if reason is None else
                          base + "\n" + self.tr("Not available: {reason}").format(reason=reason))

    def _inputs_state(self) -> tuple:
        """Everything a result depends on; a change makes the last status and progress stale."""
        def layer_id(combo: QgsMapLayerComboBox) -> str | None:
            layer = combo.currentLayer()
            return layer.id() if layer is not None else None

        rectangle = self.drawn_rectangle.toString() if self.drawn_rectangle is not None else None
        return (layer_id(self.optical_combo), layer_id(self.sar_combo), self.sensor_choice(),
                self.optical_units_choice(), self.sar_units_choice(), self.model_path(),
                tuple(self.band_mapping("optical")), tuple(self.band_mapping("sar")),
                layer_id(self.samples_combo), self.field_combo.currentField(), self.area_combo.currentData(),
                rectangle)

    def _mark_filled_rows(self, filled: list[str]) -> None:
        for row in range(self.band_table.rowCount()):
            item = self.band_table.item(row, 0)
            combo = self.band_table.cellWidget(row, 1)
            if item is None or combo is None:
                continue
            is_filled = combo.property("modality") == "optical" and item.text() in filled
            item.setForeground(QBrush(FILL_COLOUR) if is_filled else QBrush())
            item.setToolTip(self.tr("Spectrally filled from neighbouring wavelengths (approximation)")
                            if is_filled else "")

    def _optical_bands_argument(self) -> list[int] | None:
        """The explicit ``--optical-bands``, or ``None`` to let the backend match the sensor's bands.

        With spectrally filled bands the backend's own wavelength matching (the same contract
        function the table shows) must run, so the table must be the sensor's plan as shown.
        """
        mapping = self.band_mapping("optical")
        if None not in mapping:
            return mapping
        plan = self.band_plan
        if plan is not None and plan.can_fill and mapping == plan.mapping:
            return None
        unmapped = [b for b, i in zip(self.model_modalities()["optical"], mapping) if i is None]
        raise ValueError(self.tr("bands to be spectrally filled can only be the sensor's own choice: map a "
                                 "layer band to {bands}, or pick the sensor again to restore its matching")
                         .format(bands=", ".join(unmapped)))

    def _request(self, action: str, options: dict | None = None) -> tuple[JobRequest, QgsRasterLayer, list]:
        """Build the request; non-file layers get an export step that runs in the task."""
        optical = self.optical_combo.currentLayer()
        if optical is None:
            raise ValueError(self.tr("choose an optical layer"))
        area = self.area_in_layer_crs(optical)
        folder = output_folder()
        options = dict(options or {})
        if action == "classify":
            options.setdefault("neighbors", self.neighbors_spin.value())
        elif action == "segment":
            options.setdefault("steps", self.steps_spin.value())
        request = JobRequest(action=action, model=self.model_path(), window=self.window_spin.value(),
                             overlap=self.overlap_spin.value(), batch_size=self.batch_spin.value(),
                             device=self.device_combo.currentText(),
                             cache_dir=self.settings.cache_dir or None, options=options,
                             out=str(output_path(folder, optical.name(), action)),
                             optical_units=self.optical_units_choice(), sensor=self.sensor_choice())
        request.optical_bands = self._optical_bands_argument()
        steps = []
        optical_file = plain_file_path(optical)
        if optical_file:
            request.optical = optical_file
            if area is not None:
                request.bounds = (area.xMinimum(), area.yMinimum(), area.xMaximum(), area.yMaximum())
                request.bounds_crs = optical.crs().authid() or None
        else:  # exported once per source, area and grid; reused so the embedding cache hits
            request.optical, step = self.controller.prepare_export(optical, area)
            steps += [step] if step is not None else []
        sar = self.sar_combo.currentLayer()
        if sar is not None:
            request.sar_bands = self.band_mapping("sar")
            request.sar_units = self.sar_units_choice()
            sar_file = plain_file_path(sar)
            if sar_file:
                request.sar = sar_file
            else:
                sar_area = layer_rectangle(area, optical.crs(), sar) if area is not None else None
                request.sar, step = self.controller.prepare_export(sar, sar_area)
                steps += [step] if step is not None else []
        if action in ("classify", "segment") or (action == "similar" and "point" not in request.options):
            samples = self.samples_combo.currentLayer()
            if samples is None:
                raise ValueError(self.tr("choose a sample polygon layer (or create one with New…)"))
            if not self.field_combo.currentField():
                raise ValueError(self.tr("pick a class field (the attribute holding each polygon's class)"))
            snapshot = SamplesSnapshot(samples, self.field_combo.currentField())
            target = output_path(self.controller.temp_dir, samples.name(), "samples", ".gpkg")
            request.options.setdefault("samples", str(target))
            request.options.setdefault("class_field", snapshot.field_name)
            steps.append(lambda task, s=snapshot, t=target: s.write(t))
        return request, optical, steps

    def _start(self, action: str, options: dict | None = None) -> bool:
        try:
            request, optical, steps = self._request(action, options)
            self.controller.start(request, optical, steps)
        except (ValueError, RuntimeError) as exc:
            self.iface.messageBar().pushMessage("Terraprobe", str(exc), Qgis.Warning, 8)
            self.status_label.setText(str(exc)[:1].upper() + str(exc)[1:])
            return False
        return True

    def run_embed(self) -> bool:
        return self._start("embed")

    def run_cluster(self) -> bool:
        return self._start("cluster", {"k": self.k_spin.value()})

    def run_classify(self) -> bool:
        return self._start("classify")

    def run_segment(self) -> bool:
        return self._start("segment")

    def run_similarity_at(self, point: QgsPointXY, crs: QgsCoordinateReferenceSystem | None = None) -> bool:
        """Similarity to the place at ``point`` (canvas CRS unless ``crs`` is given), marked on the map."""
        canvas = self.iface.mapCanvas()
        canvas_crs = canvas.mapSettings().destinationCrs()
        crs = crs or canvas_crs
        on_canvas = QgsPointXY(point)
        if crs != canvas_crs and crs.isValid() and canvas_crs.isValid():
            on_canvas = QgsCoordinateTransform(crs, canvas_crs, QgsProject.instance()).transform(point)
        optical = self.optical_combo.currentLayer()
        if optical is not None and crs != optical.crs():
            point = QgsCoordinateTransform(crs, optical.crs(), QgsProject.instance()).transform(point)
            crs = optical.crs()
        self.similarity_button.setChecked(False)
        started = self._start("similar", {"point": (point.x(), point.y()), "point_crs": crs.authid() or None})
        if started:
            self.similarity_marker = place_marker(canvas, on_canvas, self.similarity_marker)
        return started

    def _toggle_similarity(self, checked: bool) -> None:
        canvas = self.iface.mapCanvas()
        if checked:
            self.draw_button.setChecked(False)
            canvas.setMapTool(self.point_tool)
            self.status_label.setText(self.tr("Click a place on the map to find similar places."))
        elif canvas.mapTool() is self.point_tool:
            canvas.unsetMapTool(self.point_tool)

    # -- run feedback --------------------------------------------------------------------------
    def _on_started(self, action: str) -> None:
        self.progress_bar.setValue(0)
        self.status_label.setText(self.tr("{action}: starting the backend…").format(action=action))
        self._update_buttons()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(round(100 * fraction))
        if message:
            self.status_label.setText(message)

    def _on_succeeded(self, action: str, result, layers: list) -> None:
        self.progress_bar.setValue(100)
        names = ", ".join(layer.name() for layer in layers) or self.tr("no layer")
        extra = ""
        if result.stats.get("lopo_accuracy") is not None:
            extra = " · " + self.tr("leave-one-polygon-out accuracy {accuracy}").format(
                accuracy=f"{float(result.stats['lopo_accuracy']):.0%}")
        warnings = len(self.controller.last_warnings)
        if action == "classify":
            thin = thin_classes(result.stats.get("class_counts") or {}, self.neighbors_spin.value())
            if thin:
                message = self.tr("class(es) with fewer samples than the {k} kNN neighbours: {classes}; they "
                                  "can be outvoted. Add samples, or lower Advanced › Neighbours").format(
                    k=self.neighbors_spin.value(),
                    classes=", ".join(f"{name} ({count})" for name, count in thin.items()))
                self.iface.messageBar().pushMessage("Terraprobe", message, Qgis.Warning, 0)
                warnings += 1
        if warnings:
            extra += " · " + self.tr("{n} warning(s): see the message bar").format(n=warnings)
        done = self.tr("{action} done: {layers}").format(action=action, layers=names)
        self.status_label.setText(done + extra)
        self._update_buttons()

    def _on_failed(self, action: str, message: str) -> None:
        self.progress_bar.setValue(0)
        self.status_label.setText(self.tr("{action} failed: {reason}").format(action=action, reason=message))
        self._update_buttons()

    def _on_cancelled(self, action: str) -> None:
        self.progress_bar.setValue(0)
        self.status_label.setText(self.tr("{action} cancelled; nothing was added.").format(action=action))
        self._update_buttons()

    def shutdown(self) -> None:
        """Stop running jobs and release map tools (plugin unload)."""
        self.controller.shutdown()
        for task in (self._info_task, self._import_task, self.settings_panel.task):
            if task is not None and not sip.isdeleted(task):
                task.cancel()
                task.waitForFinished(3000)
        canvas = self.iface.mapCanvas()
        for tool in (self.rectangle_tool, self.point_tool):
            if canvas.mapTool() is tool:
                canvas.unsetMapTool(tool)
        self.rectangle_tool.clear()
        remove_marker(canvas, self.similarity_marker)
        self.similarity_marker = None
