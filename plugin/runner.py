"""Run one dock action: prepare inputs and the backend in a QgsTask, then add styled layers."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable

from qgis.core import Qgis, QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QObject, pyqtSignal

from .backend_client import BackendError, BackendNotFound, BackendResult
from .jobs import JobRequest
from .layers import add_results
from .tasks import BackendTask, log

PrepareStep = Callable[[BackendTask], None]


class RunController(QObject):
    """Starts backend tasks for the dock, one at a time, and turns their results into layers.

    Signals are emitted on the GUI thread.
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
        self.last_result: BackendResult | None = None
        self.last_warnings: list[str] = []
        self.python: str | None = None  # None: settings / .venv
        self.heartbeat_timeout = 60.0

    @property
    def running(self) -> bool:
        return self.task is not None

    def start(self, request: JobRequest, source: QgsRasterLayer, prepare: list[PrepareStep]) -> BackendTask:
        """Run ``request`` after the ``prepare`` steps (exports), all in the task thread."""
        if self.task is not None:
            raise RuntimeError("a Terraprobe run is already in progress")
        self.temp_dir.mkdir(parents=True, exist_ok=True)

        def build_arguments(task: BackendTask) -> list[str]:
            for step in prepare:
                if task.isCanceled():
                    return []
                step(task)
            return request.arguments()

        task = BackendTask(f"Terraprobe {request.action}: {source.name()}", [], prepare=build_arguments,
                           python=self.python, heartbeat_timeout=self.heartbeat_timeout)
        task.progress_message.connect(self.progress)
        task.log_message.connect(lambda message: log(message))
        task.finished_ok.connect(lambda result: self._on_success(request, source.name(), source.id(), result,
                                                                 task.warnings))
        task.failed.connect(lambda error: self._on_failure(request.action, error, task.warnings))
        task.cancelled_run.connect(lambda: self._on_cancel(request.action))
        self.task = task
        log(f"{request.action}: starting")
        QgsApplication.taskManager().addTask(task)
        self.started.emit(request.action)
        return task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _on_success(self, request: JobRequest, source_name: str, source_id: str,
                    result: BackendResult, warnings: list[str] | None = None) -> None:
        self.task = None
        self.last_result = result
        self._show_warnings(warnings or [])
        try:
            layers = add_results(result.outputs, result.stats, request.action, source_name, source_id,
                                 QgsProject.instance())
        except Exception as exc:
            self._report_error(request.action, f"the result could not be added: {exc}", str(exc))
            return
        log(f"{request.action}: done; outputs: {result.outputs}")
        self.succeeded.emit(request.action, result, layers)

    def _on_failure(self, action: str, error: Exception, warnings: list[str] | None = None) -> None:
        self.task = None
        self._show_warnings(warnings or [])
        if isinstance(error, BackendError):
            message, details = error.message, error.details()
        elif isinstance(error, BackendNotFound):
            message, details = "no backend interpreter found (see Settings › Check backend)", str(error)
        else:
            message, details = f"{type(error).__name__}: {error}", repr(error)
        self._report_error(action, message, details)

    def _show_warnings(self, warnings: list[str]) -> None:
        """Each backend warning as an orange message: its first line, the rest under "Show more"."""
        self.last_warnings = list(warnings)
        bar = self.iface.messageBar()
        for message in warnings:
            first, _, rest = message.strip().partition("\n")
            if rest.strip():
                bar.pushMessage("Terraprobe", first, rest.strip(), Qgis.Warning, 0)
            else:
                bar.pushMessage("Terraprobe", first, Qgis.Warning, 0)

    def _report_error(self, action: str, message: str, details: str) -> None:
        log(f"{action} failed: {details}", Qgis.Critical)
        self.iface.messageBar().pushMessage("Terraprobe", f"{action} failed: {message}", details,
                                            Qgis.Critical, 0)
        self.failed.emit(action, message)

    def _on_cancel(self, action: str) -> None:
        self.task = None
        log(f"{action}: cancelled")
        self.cancelled.emit(action)

    def shutdown(self) -> None:
        """Cancel a running task (plugin unload) and wait briefly for it."""
        task = self.task
        if task is not None:
            task.cancel()
            task.waitForFinished(3000)
        self.task = None
        shutil.rmtree(self.temp_dir, ignore_errors=True)
