"""The Terraprobe dock: assembles the panels, keeps inputs and buttons in step, runs actions.

The panels (:mod:`.inputs_panel`, :mod:`.action_panels`) hold the widgets; the request comes from
:mod:`plugin.requests_builder` (the one builder Processing uses too), layers become files through
:mod:`plugin.job_inputs` (the same export logic as Processing), :mod:`plugin.runner` runs it in a
QgsTask and adds the layers.
"""

from __future__ import annotations

import contextlib

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.gui import QgsCollapsibleGroupBox, QgsMapLayerComboBox, QgsMapTool, QgsVertexMarker
from qgis.PyQt import sip
from qgis.PyQt.QtCore import Qt, QTimer, pyqtSignal
from qgis.PyQt.QtWidgets import QDockWidget, QFileDialog, QPushButton, QVBoxLayout, QWidget

from ..autopick import overlaps, radar_for, samples_for
from ..bands import DEFAULT_MODALITIES, BandPlan
from ..job_inputs import field_file, layer_files
from ..jobs import JobRequest, output_path
from ..layers import KIND_PROPERTY
from ..models import ModelInfo
from ..rasters import layer_rectangle
from ..readiness import input_blocker, samples_blocker, unmapped_bands
from ..requests_builder import InputFiles, RunChoices, build_request, optical_bands_argument
from ..results_folder import (
    layers_in,
    move_beside_project,
    results_folder,
    set_chosen_folder,
    unsaved_folder,
)
from ..runner import MESSAGE_TITLE, RunController, clear_messages
from ..samples import (
    CLASS_FIELD,
    DEFAULT_CLASSES,
    SamplesSnapshot,
    create_sample_layer,
    one_class_problem,
    pick_class_field,
)
from ..settings import Settings
from . import dock_runs
from .accuracy_table import segment_accuracy_text
from .action_panels import ActionsBox, AdvancedBox, AreaBox, ProgressBox
from .change_panel import ChangeBox, VectoriseBox
from .class_list_dialog import ask_class_names
from .dock_scroll import DockScrollArea, WheelGuard, compact
from .inputs_panel import InputsPanel
from .map_tools import PointTool, RectangleTool, place_marker, remove_marker
from .model_picker import ModelPicker
from .settings_panel import SettingsPanel
from .widgets import section


class TerraprobeDock(QDockWidget):
    """The analyst's panel. ``controller`` runs jobs; tests drive the public widgets directly."""

    model_changed = pyqtSignal()

    def __init__(self, iface, parent: QWidget | None = None) -> None:
        super().__init__("Terraprobe", parent)
        self.iface = iface
        self.settings = Settings()
        self.controller = RunController(iface, self)
        self.drawn_rectangle: QgsRectangle | None = None
        self.drawn_crs: QgsCoordinateReferenceSystem | None = None
        self.similarity_marker: QgsVertexMarker | None = None
        self._last_inputs: tuple | None = None
        self._watched_samples: QgsVectorLayer | None = None
        self._narrowed = False
        self.rectangle_tool = RectangleTool(iface.mapCanvas())
        self.rectangle_tool.rectangle_drawn.connect(self._on_rectangle)
        self.point_tool = PointTool(iface.mapCanvas())
        self.point_tool.point_clicked.connect(self.run_similarity_at)
        self._build()
        self.models = ModelPicker(self, self.inputs, self.settings)
        self._connect()
        self.models.reload()
        self._update_band_table()
        self._update_buttons()

    # -- construction --------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(6, 6, 6, 6)
        self.inputs = InputsPanel()
        self.area_box = AreaBox(self.settings.device)
        self.actions_box = ActionsBox()
        self.change_box = ChangeBox()
        self.vectorise_box = VectoriseBox()
        self.advanced_box = AdvancedBox()
        self.progress_box = ProgressBox()
        for panel in (self.inputs, self.area_box, self.actions_box, self.change_box, self.vectorise_box,
                      self.advanced_box, self.progress_box):
            layout.addWidget(panel)
            for name, value in vars(panel).items():  # the panels' widgets, by name, on the dock
                if isinstance(value, QWidget):
                    setattr(self, name, value)
        spins = self.advanced_box.spins
        self.overlap_spin, self.batch_spin = spins["overlap"], spins["batch_size"]
        self.neighbors_spin, self.steps_spin = spins["neighbors"], spins["steps"]
        self.settings_panel = SettingsPanel(self.settings)
        settings_box = section(QgsCollapsibleGroupBox(), self.tr("Settings"), "TerraprobeSettingsBox", True)
        QVBoxLayout(settings_box).addWidget(self.settings_panel)
        layout.addWidget(settings_box)
        layout.addStretch(1)
        scroll = DockScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self.wheel_guard = WheelGuard(scroll)
        self.wheel_guard.guard(body)
        compact(body)  # long layer names and choices must not widen the dock

    def showEvent(self, event) -> None:
        """On first show, narrow the dock area to the compact width: the collapsed sections only fold once
        shown, so the width QGIS gave the dock when it was added counted them open."""
        super().showEvent(event)
        if not self._narrowed:
            self._narrowed = True
            QTimer.singleShot(0, self._narrow)

    def _narrow(self) -> None:
        window = self.iface.mainWindow()
        if not self.isFloating() and window is not None and hasattr(window, "resizeDocks"):
            window.resizeDocks([self], [self.widget().sizeHint().width()], Qt.Horizontal)

    def _connect(self) -> None:
        self.optical_combo.layerChanged.connect(self._pick_companions)  # before the band table reads radar
        self.optical_combo.layerChanged.connect(self._update_band_table)
        QgsProject.instance().layersAdded.connect(self._on_layers_added)
        QgsProject.instance().projectSaved.connect(self._on_project_saved)
        QgsProject.instance().homePathChanged.connect(self._show_results_folder)
        self.area_box.choose_folder_action.triggered.connect(self._choose_results_folder)
        self.area_box.project_folder_action.triggered.connect(lambda: self.set_results_folder(""))
        self._show_results_folder()
        self.sar_combo.layerChanged.connect(self._update_band_table)
        for combo in (self.embedding_field_combo, self.before_combo, self.after_combo, self.vectorise_combo):
            combo.layerChanged.connect(self._update_buttons)
        for combo in (self.change_kind_combo, self.area_combo, self.optical_units_combo,
                      self.sar_units_combo):
            combo.currentIndexChanged.connect(self._update_buttons)
        self.field_combo.fieldChanged.connect(self._update_buttons)
        self.change_button.clicked.connect(self.run_change)
        self.vectorise_button.clicked.connect(self.run_vectorise)
        self.sensor_combo.currentIndexChanged.connect(self._update_band_table)
        self.models.changed.connect(self._update_band_table)
        self.models.changed.connect(self.model_changed)
        self.models.progress.connect(self._on_progress)
        self.models.status.connect(self.status_label.setText)
        self.samples_combo.layerChanged.connect(self._on_samples_changed)
        self.draw_button.toggled.connect(
            lambda on: self._arm_tool(self.rectangle_tool, on, self.similarity_button))
        self.similarity_button.toggled.connect(lambda on: self._arm_tool(
            self.point_tool, on, self.draw_button, self.tr("Click a place on the map to find similar "
                                                           "places.")))
        self.embed_button.clicked.connect(self.run_embed)
        self.cluster_button.clicked.connect(self.run_cluster)
        self.classify_button.clicked.connect(self.run_classify)
        self.segment_button.clicked.connect(self.run_segment)
        self.new_samples_button.clicked.connect(lambda: self.new_sample_layer())
        self.cancel_button.clicked.connect(self.controller.cancel)
        self.device_combo.currentTextChanged.connect(lambda text: setattr(self.settings, "device", text))
        self.settings_panel.device_combo.currentTextChanged.connect(self.device_combo.setCurrentText)
        self.controller.started.connect(self._on_started)
        self.controller.progress.connect(self._on_progress)
        self.controller.succeeded.connect(self._on_succeeded)
        self.controller.failed.connect(lambda action, message: self._on_ended(self.tr(
            "{action} failed: {reason}").format(action=action, reason=message)))
        self.controller.cancelled.connect(lambda action: self._on_ended(self.tr(
            "{action} cancelled; nothing was added.").format(action=action)))

    # -- models (see ModelPicker) --------------------------------------------------------------
    @property
    def model_info(self) -> ModelInfo | None:
        return self.models.info

    @property
    def bundled_infos(self) -> list[ModelInfo]:
        return self.models.bundled_infos

    def set_model_path(self, path: str) -> None:
        """Select a model file (adds it to the list when new)."""
        self.models.reload(select=str(path))

    def model_path(self) -> str | None:
        return self.models.path()

    def model_modalities(self) -> dict[str, list[str]]:
        info = self.models.info
        return info.modalities if info is not None and info.modalities else DEFAULT_MODALITIES

    # -- choices and band table (see InputsPanel) ----------------------------------------------
    def sensor_choice(self) -> str:
        return self.inputs.sensor_choice()

    def optical_units_choice(self) -> str:
        return self.inputs.optical_units_choice()

    def sar_units_choice(self) -> str:
        return self.inputs.sar_units_choice()

    def set_sensor(self, name: str | None) -> bool:
        return self.inputs.set_sensor(name)

    def set_units(self, optical: str | None = None, sar: str | None = None) -> bool:
        return self.inputs.set_units(optical, sar)

    @property
    def band_plan(self) -> BandPlan | None:
        return self.inputs.band_plan

    def band_mapping(self, modality: str) -> list[int | None]:
        return self.inputs.band_mapping(modality)

    def set_band(self, modality: str, model_band_row: int, layer_band: int | None) -> None:
        self.inputs.set_band(modality, model_band_row, layer_band)

    def filled_bands(self) -> list[str]:
        return self.inputs.filled_bands(self.model_modalities().get("optical", []))

    def _update_band_table(self, *_args) -> None:
        self.models.pick_auto(self.optical_combo.currentLayer(), self.sensor_choice(),
                              self.sar_combo.currentLayer() is not None)
        self.inputs.update_band_table(self.model_modalities(), self._update_buttons)
        self.wheel_guard.guard(self.band_table)
        self._update_buttons()

    # -- companion layers ----------------------------------------------------------------------
    def _pick_companions(self, *_args) -> None:
        """The radar and sample layers of the optical layer's scene: kept when they overlap it, else
        replaced by an overlapping one (or none: another scene's samples never stay selected)."""
        optical = self.optical_combo.currentLayer()
        if optical is None:
            return
        layers = list(QgsProject.instance().mapLayers().values())
        if not overlaps(self.sar_combo.currentLayer(), optical):
            self.sar_combo.setLayer(radar_for(optical, layers))
        if not overlaps(self.samples_combo.currentLayer(), optical):
            self.samples_combo.setLayer(samples_for(optical, layers))

    def _on_layers_added(self, layers: list) -> None:
        """A radar or sample layer added for the chosen optical layer fills an empty choice; Embed's colour
        previews are never offered as an embedding field (Embed's embedding raster is)."""
        previews = [layer for layer in QgsProject.instance().mapLayers().values()
                    if layer.customProperty(KIND_PROPERTY) == "preview"]
        self.embedding_field_combo.setExceptedLayerList(previews)
        optical = self.optical_combo.currentLayer()
        if optical is None:
            return
        for combo, companion_for in ((self.sar_combo, radar_for), (self.samples_combo, samples_for)):
            companion = companion_for(optical, layers) if combo.currentLayer() is None else None
            if companion is not None:
                combo.setLayer(companion)

    # -- results folder ------------------------------------------------------------------------
    def _show_results_folder(self, *_args) -> None:
        folder = results_folder()
        texts = {"chosen": self.tr("{name} (your folder)"),
                 "project": self.tr("{name}, beside the project"),
                 "unsaved": self.tr("{path} (the project is not saved yet)")}
        self.folder_label.setText(texts[folder.why].format(name=folder.path.name, path=folder.path))
        self.folder_label.setToolTip(str(folder.path))

    def _choose_results_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.tr("Save Terraprobe results in"),
                                                str(results_folder().path))
        if path:
            self.set_results_folder(path)

    def set_results_folder(self, path: str) -> None:
        """Save results in ``path`` from now on (``""``: beside the project)."""
        set_chosen_folder(path)
        self._show_results_folder()

    def _say_where_unsaved_results_go(self) -> None:
        folder = results_folder()
        if folder.why == "unsaved":
            self.iface.messageBar().pushMessage(MESSAGE_TITLE, self.tr(
                "The project is not saved yet: results are kept in {path}. Save the project and Terraprobe "
                "offers to move them beside it.").format(path=folder.path), Qgis.Info, 10)

    def _on_project_saved(self) -> None:
        """Offer to move what the unsaved project's folder holds for this project beside it."""
        self._show_results_folder()
        waiting = layers_in(unsaved_folder())
        if not waiting or results_folder().why != "project":
            return
        bar = self.iface.messageBar()
        text = self.tr("{n} Terraprobe layer(s) are saved in {path}, outside the project folder.").format(
            n=len(waiting), path=unsaved_folder())
        item = bar.createMessage(MESSAGE_TITLE, text)
        button = QPushButton(self.tr("Move them beside the project"), item)
        button.clicked.connect(lambda: (bar.popWidget(item), self.move_results_beside_project()))
        item.layout().addWidget(button)
        bar.pushWidget(item, Qgis.Info, 0)
        self.move_offer = button

    def move_results_beside_project(self) -> list[str]:
        """Move this project's results (and sample layers) from the unsaved-project folder beside it."""
        moved, left = move_beside_project()
        text = self.tr("Moved {n} layer(s) to {path}.").format(n=len(moved), path=results_folder().path)
        if left:
            text += " " + self.tr("Not moved (being edited; save the edits and save the project again): "
                                  "{layers}.").format(layers=", ".join(left))
        self.status_label.setText(text)
        return moved

    # -- area ----------------------------------------------------------------------------------
    def _arm_tool(self, tool: QgsMapTool, checked: bool, other_button: QPushButton,
                  hint: str | None = None) -> None:
        """Draw's and Similarity's map tools: on (the other one off, ``hint`` in the status line) or off."""
        canvas = self.iface.mapCanvas()
        if checked:
            other_button.setChecked(False)
            canvas.setMapTool(tool)
            if hint:
                self.status_label.setText(hint)
        elif canvas.mapTool() is tool:
            canvas.unsetMapTool(tool)

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
        self._watch_samples(layer if isinstance(layer, QgsVectorLayer) else None)
        self.field_combo.setLayer(layer)
        picked = pick_class_field(layer) if isinstance(layer, QgsVectorLayer) else None
        self.field_combo.setField(picked or "")
        self._update_buttons()

    def _watch_samples(self, layer: QgsVectorLayer | None) -> None:
        """Re-check Classify and Segment while the analyst digitises or labels the sample layer."""
        signals = ("featureAdded", "featuresDeleted", "attributeValueChanged", "afterRollBack")
        previous = self._watched_samples
        if previous is not None and not sip.isdeleted(previous):
            for name in signals:
                with contextlib.suppress(TypeError):
                    getattr(previous, name).disconnect(self._update_buttons)
        self._watched_samples = layer
        for name in signals if layer is not None else ():
            getattr(layer, name).connect(self._update_buttons)

    def new_sample_layer(self, class_names: list[str] | None = None) -> QgsVectorLayer | None:
        """Create a GeoPackage sample layer in the results folder with the analyst's classes (asked when
        ``class_names`` is ``None``; ``None`` back when cancelled), a colour per class, and start
        digitising it with QGIS's Add Polygon tool."""
        if class_names is None:
            class_names = ask_class_names(self, DEFAULT_CLASSES)
            if class_names is None:
                return None
        optical = self.optical_combo.currentLayer()
        crs = optical.crs() if optical is not None else self.iface.mapCanvas().mapSettings().destinationCrs()
        path = output_path(results_folder().path, "samples", "polygons", ".gpkg")
        layer = create_sample_layer(path, crs, class_names)
        self.samples_combo.setLayer(layer)
        self.field_combo.setField(CLASS_FIELD)
        self._update_buttons()
        self.iface.setActiveLayer(layer)
        self.iface.actionAddFeature().trigger()  # the Add Polygon tool, armed on the new layer
        self.status_label.setText(self.tr("Draw sample polygons on the map (Add Polygon is on) and pick each "
                                          "one's class; saved in {path}.").format(path=path))
        return layer

    # -- readiness -----------------------------------------------------------------------------
    def _update_buttons(self, *_args) -> None:
        """Enable what can run, say why the rest cannot, and reset stale feedback on new inputs."""
        busy = self.controller.running
        filled = self.filled_bands()
        self.inputs.mark_filled_rows(filled)
        self.inputs.show_band_note(filled)
        input_reason = self._input_problem(filled)
        busy_reason = self.tr("a run is in progress (Cancel stops it)") if busy else None
        field_reason = None if self.embedding_field_combo.currentLayer() is not None else input_reason
        self._explain_button(self.embed_button, busy_reason or input_reason)
        for button in (self.cluster_button, self.similarity_button):
            self._explain_button(button, busy_reason or field_reason)
        for button in (self.classify_button, self.segment_button):
            self._explain_button(button, busy_reason or field_reason or self._samples_problem())
        self._explain_button(self.change_button, busy_reason or dock_runs.change_problem(
            self.change_box.kind(), self.before_combo.currentLayer(), self.after_combo.currentLayer()))
        self._explain_button(self.vectorise_button,
                             busy_reason or dock_runs.vectorise_problem(self.vectorise_combo.currentLayer()))
        self.cancel_button.setEnabled(busy)
        inputs = self._inputs_state()
        changed = inputs != self._last_inputs
        self._last_inputs = inputs
        if busy:
            return
        if changed:
            self.progress_bar.setValue(0)
        if field_reason and self.optical_combo.currentLayer() is not None:
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

    def _samples_problem(self, classes: bool = True) -> str | None:
        """Why Classify/Segment cannot run beyond the inputs (``None``: they can); ``classes``: two or more
        classes are needed (Classify, Segment; a Similarity query needs one)."""
        layer, field = self.samples_combo.currentLayer(), self.field_combo.currentField()
        problem = samples_blocker(layer is not None, field)
        if problem or not classes or not isinstance(layer, QgsVectorLayer):
            return problem
        return one_class_problem(layer, field)

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
                rectangle, layer_id(self.embedding_field_combo), self._samples_problem())

    # -- running -------------------------------------------------------------------------------
    def run_choices(self) -> RunChoices:
        """The choices every action shares, as the request builder takes them."""
        return RunChoices(model=self.model_path(), window=self.window_spin.value(),
                          device=self.device_combo.currentText(), cache_dir=self.settings.cache_dir or None,
                          optical_units=self.optical_units_choice(), sar_units=self.sar_units_choice(),
                          sensor=self.sensor_choice(), advanced=self.advanced_box.values())

    def build_request(self, action: str,
                      options: dict | None = None) -> tuple[JobRequest, QgsRasterLayer, list]:
        """The request (from the one builder); non-file layers get an export step that runs in the task.
        An embedding field replaces the encoder; the optical layer then joins only for Segment and band stats.
        """
        field = self.embedding_field_combo.currentLayer() if action != "embed" else None
        optical = self.optical_combo.currentLayer()
        options = dict(options or {})
        if field is not None and not (action == "segment" or options.get("band_stats")):
            optical = None
        if optical is None and field is None:
            raise ValueError(self.tr("choose an optical layer"))
        area = self.area_in_layer_crs(optical) if optical is not None else None
        steps: list = []

        def export(layer: QgsRasterLayer, extent: QgsRectangle | None) -> str:
            path, step = self.controller.prepare_export(layer, extent)  # reused: the embedding cache hits
            steps.extend([step] if step is not None else [])
            return path

        sar = self.sar_combo.currentLayer() if optical is not None else None
        files, optical_bands, sar_bands = InputFiles(), None, None
        if optical is not None:
            files = layer_files(optical, sar, area, export)
            optical_bands = optical_bands_argument(self.band_mapping("optical"), self.band_plan,
                                                   self.model_modalities().get("optical", []))
            sar_bands = [int(b) for b in self.band_mapping("sar") if b is not None] if sar else None
        if field is not None:
            files.embeddings = field_file(field, export)
        source = field if field is not None else optical
        if action in ("classify", "segment") or (action == "similar" and "point" not in options):
            samples = self.samples_combo.currentLayer()
            problem = self._samples_problem(classes=action != "similar")
            if problem:
                raise ValueError(problem)
            snapshot = SamplesSnapshot(samples, self.field_combo.currentField())
            target = output_path(self.controller.temp_dir, samples.name(), "samples", ".gpkg")
            options.setdefault("samples", str(target))
            if action != "similar":
                options.setdefault("class_field", snapshot.field_name)
            steps.append(lambda task, s=snapshot, t=target: s.write(t))
        out = output_path(results_folder().path, source.name(), action)
        request = build_request(action, out, files, self.run_choices(), optical_bands, sar_bands or None,
                                **options)
        return request, source, steps

    def _start(self, action: str, options: dict | None = None) -> bool:
        try:
            source_name = None
            if action in ("change", "vectorise"):
                request, source, steps = getattr(dock_runs, f"{action}_request")(self)
                source_name = dock_runs.change_title(self.change_box) if action == "change" else None
            else:
                request, source, steps = self.build_request(action, options)
            self.controller.start(request, source, steps, replace=self.replace_check.isChecked(),
                                  source_name=source_name)
            self._say_where_unsaved_results_go()
        except (ValueError, RuntimeError) as exc:
            return self._refuse(str(exc))
        return True

    def _refuse(self, reason: str) -> bool:
        """Say why a run does not start, in the status line and (replacing earlier messages) the bar."""
        clear_messages(self.iface.messageBar())
        self.iface.messageBar().pushMessage(MESSAGE_TITLE, reason, Qgis.Warning, 8)
        self.status_label.setText(reason[:1].upper() + reason[1:])
        return False

    def run_embed(self) -> bool:
        return self._start("embed")

    def run_cluster(self) -> bool:
        return self._start("cluster", self.actions_box.cluster_options())

    def run_classify(self) -> bool:
        return self._start("classify", self.actions_box.classify_options())

    def run_change(self) -> bool:
        return self._start("change")

    def run_vectorise(self) -> bool:
        return self._start("vectorise")

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
        source = self.embedding_field_combo.currentLayer() or self.optical_combo.currentLayer()
        if source is not None and crs != source.crs():
            point = QgsCoordinateTransform(crs, source.crs(), QgsProject.instance()).transform(point)
            crs = source.crs()
        self.similarity_button.setChecked(False)
        problem = self._point_problem(point, source) if source is not None else None
        if problem:
            return self._refuse(problem)
        started = self._start("similar", {"point": (point.x(), point.y()), "point_crs": crs.authid() or None})
        if started:
            self.similarity_marker = place_marker(canvas, on_canvas, self.similarity_marker)
        return started

    def _point_problem(self, point: QgsPointXY, source: QgsRasterLayer) -> str | None:
        """Why a similarity query point (in ``source``'s CRS) cannot be used: outside the chosen area
        (a drawn rectangle or the canvas) or outside the layer; ``None``: it can."""
        try:
            area = self.area_in_layer_crs(source)
        except ValueError as exc:
            return str(exc)
        if area is not None and not area.contains(point):
            label = self.area_combo.currentText()
            return self.tr("the clicked place is outside the chosen area ({area}): click inside it, or "
                           "choose Area › Layer extent").format(area=label)
        if not source.extent().contains(point):
            return self.tr("the clicked place is outside the layer {layer}").format(layer=source.name())
        return None

    # -- run feedback --------------------------------------------------------------------------
    def _on_started(self, action: str) -> None:
        self.progress_bar.setValue(0)
        self.accuracy_table.clear_table()
        self.status_label.setText(self.tr("{action}: starting the backend…").format(action=action))
        self._update_buttons()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(round(100 * fraction))
        if message:
            self.status_label.setText(message)

    def _on_succeeded(self, action: str, result, layers: list) -> None:
        self.progress_bar.setValue(100)
        names = layers[0].name() if layers else self.tr("no layer")
        if len(layers) > 1:
            names += " " + self.tr("(+{n} layer(s))").format(n=len(layers) - 1)
        accuracy = (segment_accuracy_text(result.stats) if action == "segment"
                    else dock_runs.accuracy_text(result.stats))
        extra = " · " + accuracy if accuracy else ""
        if action == "classify":
            self.accuracy_table.show_stats(result.stats)
        offered = [layer for layer in layers if dock_runs.vectorisable(layer)]
        if offered:  # the latest class map is the one to vectorise next
            self.vectorise_combo.setLayer(offered[0])
        warnings = len(self.controller.last_warnings)
        thin = dock_runs.thin_classes_message(result.stats, self.neighbors_spin.value())
        if action == "classify" and self.classifier_combo.currentData() == "knn" and thin:
            self.iface.messageBar().pushMessage(MESSAGE_TITLE, thin, Qgis.Warning, 0)
            warnings += 1
        if warnings:
            extra += " · " + self.tr("{n} warning(s): see the message bar").format(n=warnings)
        done = self.tr("{action} done: {layers}").format(action=action, layers=names)
        self.status_label.setText(done + extra)
        self._update_buttons()

    def _on_ended(self, text: str) -> None:
        """A run failed or was cancelled: ``text`` says which."""
        self.progress_bar.setValue(0)
        self.status_label.setText(text)
        self._update_buttons()

    def shutdown(self) -> None:
        """Stop running jobs and release map tools (plugin unload)."""
        project = QgsProject.instance()
        for signal, slot in ((project.layersAdded, self._on_layers_added),
                             (project.projectSaved, self._on_project_saved),
                             (project.homePathChanged, self._show_results_folder)):
            with contextlib.suppress(TypeError):
                signal.disconnect(slot)
        self.controller.shutdown()
        for task in (*self.models.tasks(), self.settings_panel.task):
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
