"""The dock's model row: bundled and added models, *Add…*, and what the *Auto* choice resolves to.

``info`` and ``import-weights`` run through the contract's typed requests (built by
:mod:`plugin.requests_builder`), never hand-written command lines.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsRasterLayer
from qgis.PyQt.QtCore import QCoreApplication, QObject, Qt, pyqtSignal
from qgis.PyQt.QtWidgets import QFileDialog

from ..bands import layer_facts, resolve_sensor, sensor_label
from ..contract import model_files as _model_files
from ..models import (
    ModelInfo,
    bundled_model_for,
    bundled_models,
    import_model,
    model_info_from_stats,
    model_problem,
    read_model_info,
    user_models_folder,
)
from ..requests_builder import import_weights_request, info_request
from ..settings import Settings
from ..tasks import BackendTask
from .inputs_panel import InputsPanel


def _tr(text: str) -> str:
    return QCoreApplication.translate("ModelPicker", text)


class ModelPicker(QObject):
    """Fills the model combo, reads the chosen model's bands, adds models (``changed`` on any change)."""

    changed = pyqtSignal()
    progress = pyqtSignal(float, str)
    status = pyqtSignal(str)

    def __init__(self, dock, inputs: InputsPanel, settings: Settings) -> None:
        super().__init__(dock)
        self.dock = dock
        self.combo = inputs.model_combo
        self.label = inputs.model_label
        self.settings = settings
        self.info: ModelInfo | None = None
        self.bundled_infos: list[ModelInfo] = []
        self._info_task: BackendTask | None = None
        self._import_task: BackendTask | None = None
        self.combo.currentIndexChanged.connect(self._on_selected)
        inputs.add_model_button.clicked.connect(self._add_dialog)
        inputs.get_models_button.clicked.connect(self._open_models_dialog)

    def _open_models_dialog(self) -> None:
        from .models_dialog import open_models_dialog  # issue 13: official CROMA weights, bundled models

        self.dock.models_dialog = open_models_dialog(self.dock)

    def tasks(self) -> tuple[BackendTask | None, ...]:
        return self._info_task, self._import_task

    def reload(self, select: str | None = None) -> None:
        """Refill the combo (Auto, bundled, the user's models) and select ``select`` or the saved one."""
        self.combo.blockSignals(True)
        self.combo.clear()
        bundled = bundled_models()
        self.bundled_infos = [info for info in map(read_model_info, bundled) if info is not None]
        self.combo.addItem(_tr("Auto (by sensor)"), "")
        self.combo.setItemData(0, _tr("The backend picks the bundled default (galileo-nano: any sensor, no "
                                      "spectral fill), else the model trained for the optical layer's "
                                      "sensor, else the Sentinel-2 model with spectral fill"), Qt.ToolTipRole)
        for path in bundled:
            self.combo.addItem(_tr("{name} (bundled)").format(name=path.stem), str(path))
        try:
            for cfg in sorted(user_models_folder().glob("*.json")):
                self.combo.addItem(cfg.stem, str(cfg.with_suffix(".safetensors")))
        except OSError:
            pass
        wanted = select if select is not None else self.settings.model
        if wanted:
            index = self.combo.findData(wanted)
            if index < 0:
                self.combo.addItem(Path(wanted).stem, wanted)
                index = self.combo.count() - 1
            self.combo.setCurrentIndex(index)
        self.combo.blockSignals(False)
        self._on_selected()

    def path(self) -> str | None:
        return self.combo.currentData() or None

    def _on_selected(self, *_args) -> None:
        path = self.path()
        self.info = read_model_info(path) if path else None
        self.settings.model = path or ""
        problem = model_problem(path) if path else None
        if problem:
            self.label.setText(problem)
        elif self.info is not None:
            self.label.setText(self.info.summary())
        elif path:
            self.label.setText(_tr("{name}: reading the checkpoint…").format(name=Path(path).name))
            self._describe(path)
        self.changed.emit()

    def _describe(self, path: str) -> BackendTask:
        """Ask the backend (``info``) for a checkpoint's bands and size, in a task."""
        task = BackendTask(_tr("Terraprobe: read {name}").format(name=Path(path).name),
                           info_request(path).to_argv())

        def show(result) -> None:
            if self.path() == path:
                self.info = model_info_from_stats(path, result.stats)
                self.label.setText(self.info.summary())
                self.changed.emit()

        task.finished_ok.connect(show)
        task.failed.connect(lambda error: self.label.setText(_tr("{name}: {error}").format(
            name=Path(path).name, error=getattr(error, "message", error))))
        self._info_task = task
        QgsApplication.taskManager().addTask(task)
        return task

    def _add_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.dock, _tr("Add a model"), "",
                                              _tr("Models (*.safetensors *.json *.pt *.pth);;All files (*)"))
        if path:
            self.add(path)

    def add(self, path: str) -> BackendTask | None:
        """Add a model file: Terraprobe files are copied; CROMA checkpoints are imported in a task."""
        source = Path(path)
        folder = user_models_folder()
        if source.suffix.lower() in (".safetensors", ".json"):
            target = import_model(source, folder)
            self.reload(select=str(target.with_suffix(".safetensors")))
            return None
        request = import_weights_request(source, folder)
        task = BackendTask(_tr("Terraprobe: import {name}").format(name=source.name), request.to_argv())
        task.progress_message.connect(self.progress)
        task.finished_ok.connect(lambda _result: self.reload(select=request.out))
        task.failed.connect(lambda error: self.dock.iface.messageBar().pushMessage(
            "Terraprobe", _tr("could not import {name}: {error}").format(
                name=source.name, error=getattr(error, "message", error)), Qgis.Critical, 0))
        self.status.emit(_tr("Importing {name} (this converts the checkpoint once)…")
                         .format(name=source.name))
        self._import_task = task
        QgsApplication.taskManager().addTask(task)
        return task

    def pick_auto(self, optical: QgsRasterLayer | None, sensor_choice: str, radar: bool) -> None:
        """With the *Auto* model: the bundled model the backend will pick for the layer, shown."""
        if self.path() is not None:
            return
        sensor = "sentinel2"
        if optical is not None:
            sensor = resolve_sensor(layer_facts(optical), sensor_choice)[0]
        self.info = bundled_model_for(sensor, radar, self.bundled_infos)
        if self.info is None:
            self.label.setText(_tr("CROMA bands: Sentinel-2 (12, no B10) and Sentinel-1 VV/VH"))
        elif self.info.sensor in (sensor, _model_files.ANY_SENSOR) or optical is None:
            self.label.setText(_tr("Auto → {summary}").format(summary=self.info.summary()))
        else:
            text = _tr("Auto → {name} (no bundled {sensor} model)")
            self.label.setText(text.format(name=self.info.name, sensor=_tr(sensor_label(sensor))))
