"""Run one dock action: prepare inputs and the backend in a QgsTask, then add styled layers."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from qgis.core import Qgis, QgsApplication, QgsProject, QgsRasterLayer, QgsRectangle
from qgis.PyQt.QtCore import QObject, pyqtSignal

from .i18n import tr
from .interpreter import BackendNotFound
from .jobs import JobRequest, output_path
from .layers import add_results, point_label
from .process_client import BackendError, BackendResult
from .rasters import RasterExport
from .result_names import run_details
from .tasks import BackendTask, log

PrepareStep = Callable[[BackendTask], None]
#: The title of every message the plugin pushes to QGIS's message bar.
MESSAGE_TITLE = "Terraprobe"


def clear_messages(bar) -> int:
    """Take Terraprobe's earlier messages off QGIS's message bar (a new run: the bar shows its state);
    other plugins' messages stay. Returns how many were removed."""
    earlier = [item for item in bar.items() if item.title() == MESSAGE_TITLE]
    for item in earlier:
        bar.popWidget(item)
    return len(earlier)


def first_line(text: str) -> str:
    """The first non-empty line of ``text`` (the reason a message bar must show up front)."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return str(text).strip()


@dataclass
class RunNaming:
    """How a run's layers are named and kept: the input's name and id, replace or keep earlier results,
    and the texts a date is read from (the input's file and layer names)."""

    source_name: str
    source_id: str
    replace: bool
    source_texts: list[str]


def request_inputs(request: JobRequest) -> list[str]:
    """The input files of ``request`` (for the date in layer names)."""
    names = ("optical", "sar", "embeddings", "before_optical", "after_optical", "before_sar", "after_sar",
             "before_embeddings", "after_embeddings", "raster")
    return [str(value) for value in (getattr(request, name, None) for name in names) if value]


class RunController(QObject):
    """Starts backend tasks for the dock, one at a time, and turns their results into layers.

    Signals are emitted on the GUI thread. Exports of non-file layers are kept (one per source,
    area and pixel grid) until the project is cleared, so repeated actions reuse the same file and
    the backend's embedding cache hits.
    """

    started = pyqtSignal(str)
    progress = pyqtSignal(float, str)
    succeeded = pyqtSignal(str, object, list)  # action, BackendResult, added layers
    failed = pyqtSignal(str, str)  # action, message
    cancelled = pyqtSignal(str)

    def __init__(self, iface, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.iface = iface
        self.task: BackendTask | None = None
        self.temp_dir = Path(tempfile.mkdtemp(prefix="terraprobe-inputs-"))
        self.exports: dict[tuple, str] = {}  # RasterExport.key -> written GeoTIFF
        self._clear_when_idle = False
        self.last_result: BackendResult | None = None
        self.last_warnings: list[str] = []
        self.python: str | None = None  # None: settings / .venv
        self.heartbeat_timeout = 60.0
        QgsProject.instance().cleared.connect(self.clear_exports)

    @property
    def running(self) -> bool:
        return self.task is not None

    def prepare_export(self, layer: QgsRasterLayer,
                       extent: QgsRectangle | None) -> tuple[str, PrepareStep | None]:
        """The GeoTIFF for ``layer`` over ``extent``, and the step that writes it (``None``: reused)."""
        export = RasterExport(layer, extent, self.temp_dir / "pending.tif")
        written = self.exports.get(export.key)
        if written and Path(written).is_file():
            return written, None
        export.target = output_path(self.temp_dir, layer.name(), "input")

        def write(task: BackendTask, e: RasterExport = export) -> None:
            e.write(task.isCanceled)
            self.exports[e.key] = str(e.target)

        return str(export.target), write

    def clear_exports(self) -> None:
        """Delete the temporary exports and sample copies (project closed; deferred while a run is on)."""
        if self.task is not None:
            self._clear_when_idle = True
            return
        self._clear_when_idle = False
        self.exports.clear()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    def start(self, request: JobRequest, source: QgsRasterLayer, prepare: list[PrepareStep],
              replace: bool = False, source_name: str | None = None) -> BackendTask:
        """Run ``request`` after the ``prepare`` steps (exports), all in the task thread.

        ``replace``: the result replaces earlier ones of the same kind from ``source`` (else both stay);
        ``source_name``: how layer names call the input (default: the layer's name).
        """
        if self.task is not None:
            raise RuntimeError(tr("a Terraprobe run is already in progress"))
        self.temp_dir.mkdir(parents=True, exist_ok=True)

        def build_arguments(task: BackendTask) -> list[str]:
            for step in prepare:
                if task.isCanceled():
                    return []
                step(task)
            return request.to_argv()

        naming = RunNaming(source_name or source.name(), source.id(), replace,
                           [source.source(), source.name(), *request_inputs(request)])
        title = tr("Terraprobe {action}: {layer}").format(action=request.action, layer=naming.source_name)
        task = BackendTask(title, [], prepare=build_arguments, python=self.python,
                           heartbeat_timeout=self.heartbeat_timeout)
        task.progress_message.connect(self.progress)
        task.log_message.connect(lambda message: log(message))
        task.finished_ok.connect(lambda result: self._on_success(request, naming, result, task.warnings))
        task.failed.connect(lambda error: self._on_failure(request.action, error, task.warnings))
        task.cancelled_run.connect(lambda: self._on_cancel(request.action))
        self.task = task
        clear_messages(self.iface.messageBar())
        log(f"{request.action}: starting")
        QgsApplication.taskManager().addTask(task)
        self.started.emit(request.action)
        return task

    def cancel(self) -> None:
        """Stop the run; the task ends *complete* and its name says "cancelled" in QGIS's task list."""
        if self.task is not None:
            self.task.setDescription(tr("{task} (cancelled)").format(task=self.task.description()))
            self.task.cancel()

    def _ended(self) -> None:
        self.task = None
        if self._clear_when_idle:
            self.clear_exports()

    def _on_success(self, request: JobRequest, naming: RunNaming, result: BackendResult,
                    warnings: list[str] | None = None) -> None:
        self._ended()
        self.last_result = result
        self._show_warnings(warnings or [])
        detail = ""
        if request.action == "similar" and request.point is not None:
            x, y = request.point
            detail = point_label(float(x), float(y), request.point_crs)
        try:
            details = run_details(request, result.stats, naming.source_texts, naming.source_name)
            layers = add_results(result.outputs, result.stats, request.action, naming.source_name,
                                 naming.source_id, QgsProject.instance(), detail=detail, details=details,
                                 replace=naming.replace)
        except Exception as exc:
            message = tr("the result could not be added: {error}").format(error=exc)
            self._report_error(request.action, message, str(exc))
            return
        log(f"{request.action}: done; outputs: {result.outputs}")
        self.succeeded.emit(request.action, result, layers)

    def _on_failure(self, action: str, error: Exception, warnings: list[str] | None = None) -> None:
        self._ended()
        self.last_warnings = list(warnings or [])
        if isinstance(error, BackendError):
            message, details = error.message, error.details()
        elif isinstance(error, BackendNotFound):
            message = tr("no backend interpreter found (see Settings › Check backend)")
            details = str(error)
        else:
            message, details = f"{type(error).__name__}: {error}", repr(error)
        if warnings:  # under "Show more", so that the failure itself stays the bar's visible message
            details += "\n\n" + tr("Warnings before the failure:") + "\n" + "\n".join(warnings)
        self._report_error(action, message, details)

    def _show_warnings(self, warnings: list[str]) -> None:
        """Each backend warning as an orange message: its first line, the rest under "Show more"."""
        self.last_warnings = list(warnings)
        bar = self.iface.messageBar()
        for message in warnings:
            first, _, rest = message.strip().partition("\n")
            if rest.strip():
                bar.pushMessage(MESSAGE_TITLE, first, rest.strip(), Qgis.Warning, 0)
            else:
                bar.pushMessage(MESSAGE_TITLE, first, Qgis.Warning, 0)

    def _report_error(self, action: str, message: str, details: str) -> None:
        """One critical message: the reason on its first line, the full details under "Show more"."""
        log(f"{action} failed: {details}", Qgis.Critical)
        reason = first_line(message)
        rest = message.strip()[len(reason):].strip() if message.strip().startswith(reason) else ""
        if rest:
            details = f"{rest}\n\n{details}"
        text = tr("{action} failed: {reason}").format(action=action, reason=reason)
        self.iface.messageBar().pushMessage(MESSAGE_TITLE, text, details, Qgis.Critical, 0)
        self.failed.emit(action, reason)

    def _on_cancel(self, action: str) -> None:
        self._ended()
        log(f"{action}: cancelled")
        self.cancelled.emit(action)

    def shutdown(self) -> None:
        """Cancel a running task (plugin unload) and wait briefly for it."""
        task = self.task
        if task is not None:
            task.cancel()
            task.waitForFinished(3000)
        self.task = None
        with contextlib.suppress(TypeError):
            QgsProject.instance().cleared.disconnect(self.clear_exports)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
