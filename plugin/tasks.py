"""QgsTask that runs one backend command off the GUI thread."""

from __future__ import annotations

from typing import Any, Callable

from qgis.core import Qgis, QgsMessageLog, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from .backend_client import run_backend
from .contract import protocol
from .interpreter import BackendNotFound
from .process_client import BackendCancelled, BackendError, BackendResult

LOG_TAG = "Terraprobe"


def log(message: str, level: Qgis.MessageLevel = Qgis.Info) -> None:
    """Write to the "Terraprobe" tab of QGIS's log panel."""
    QgsMessageLog.logMessage(message, LOG_TAG, level)


def warning_text(event: dict[str, Any]) -> str | None:
    """The message of a backend warning: a ``warning`` event or a ``log`` event at level warning."""
    kind = event.get("event")
    level = str(event.get("level", "")).lower()
    if kind == protocol.WARNING or (kind == protocol.LOG and level in ("warning", "warn")):
        return str(event.get("message", "")).strip() or None
    return None


class BackendTask(QgsTask):
    """Run ``python -m backend ARGS`` in QGIS's task manager.

    The task thread does all the work (``prepare`` too, e.g. exporting a non-file raster); the
    GUI thread only receives signals. ``finished_ok``/``failed``/``cancelled_run`` are emitted on
    the GUI thread once the task ends. A cancelled run ends as a *complete* task (with
    :attr:`was_cancelled` set), so QGIS's task manager does not report it as "Task failed". The
    backend's warnings are written to the log panel as they come and collected in
    :attr:`warnings` (each message once) for the message bar.

    Args:
        description: shown in the task manager.
        args: backend arguments, e.g. ``["cluster", "--optical", path, ...]``.
        prepare: optional callable run first in the task thread; it returns extra arguments
            appended to ``args`` (or ``None``), and may check ``task.isCanceled()``.
        python: the backend interpreter (``None``: found from settings / ``.venv``).
        heartbeat_timeout: seconds of silence after which the backend counts as stuck.
    """

    progress_message = pyqtSignal(float, str)
    log_message = pyqtSignal(str)
    warning_message = pyqtSignal(str)
    process_started = pyqtSignal(int)
    finished_ok = pyqtSignal(object)
    failed = pyqtSignal(object)
    cancelled_run = pyqtSignal()

    def __init__(self, description: str, args: list[str],
                 prepare: Callable[[BackendTask], list[str] | None] | None = None,
                 python: str | None = None, heartbeat_timeout: float = 60.0) -> None:
        super().__init__(description, QgsTask.CanCancel)
        self.args = list(args)
        self.prepare = prepare
        self.python = python
        self.heartbeat_timeout = heartbeat_timeout
        self.result: BackendResult | None = None
        self.error: Exception | None = None
        self.pid: int | None = None
        self.warnings: list[str] = []
        self.was_cancelled = False

    def run(self) -> bool:
        try:
            if self.prepare is not None:
                self.args += self.prepare(self) or []
            if self.isCanceled():
                raise BackendCancelled("cancelled", kind=protocol.CANCELLED)
            self.result = run_backend(self.args, on_event=self._on_event, is_canceled=self.isCanceled,
                                      python=self.python, heartbeat_timeout=self.heartbeat_timeout,
                                      on_start=self._on_start)
            return True
        except (BackendError, BackendNotFound) as exc:
            self.error = exc
        except Exception as exc:  # a bug on the plugin side must still end as a message
            self.error = exc
        if isinstance(self.error, BackendCancelled) or self.isCanceled():
            self.was_cancelled = True  # the user's choice, not a failure: the task ends "complete"
            return True
        return False

    def _on_start(self, pid: int) -> None:
        self.pid = pid
        self.process_started.emit(pid)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == protocol.PROGRESS:
            fraction = float(event.get("fraction", 0.0))
            self.setProgress(100.0 * fraction)
            self.progress_message.emit(fraction, str(event.get("message", "")))
        elif warning_text(event) is not None:
            message = warning_text(event) or ""
            if message not in self.warnings:
                self.warnings.append(message)
                log(message, Qgis.Warning)
                self.warning_message.emit(message)
        elif kind == protocol.LOG:
            self.log_message.emit(str(event.get("message", "")))

    def finished(self, ok: bool) -> None:  # runs on the GUI thread
        if self.was_cancelled or isinstance(self.error, BackendCancelled) or (self.isCanceled() and not ok):
            self.cancelled_run.emit()
        elif ok and self.result is not None:
            self.finished_ok.emit(self.result)
        else:
            self.failed.emit(self.error or BackendCancelled("cancelled", kind=protocol.CANCELLED))
