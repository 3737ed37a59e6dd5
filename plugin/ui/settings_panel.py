"""Settings section of the dock: backend interpreter, default device, cache folder, "Check backend"."""

from __future__ import annotations

from qgis.core import QgsApplication
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtWidgets import QComboBox, QFormLayout, QLabel, QPushButton, QWidget

from ..backend_client import BackendError, BackendNotFound, find_backend_python
from ..settings import DEVICES, Settings
from ..tasks import BackendTask


def describe_versions(stats: dict) -> str:
    """The ``version`` command's stats as a few lines for the analyst."""
    cuda = stats.get("cuda_available")
    devices = ", ".join(stats.get("cuda_devices") or []) or "none"
    return (f"Backend {stats.get('backend', '?')} · Python {stats.get('python', '?')}\n"
            f"PyTorch {stats.get('torch', '?')} · NumPy {stats.get('numpy', '?')} · "
            f"rasterio {stats.get('rasterio', '?')} (GDAL {stats.get('gdal', '?')})\n"
            f"Device: {stats.get('default_device', '?')} · CUDA {'available' if cuda else 'not available'}"
            f" ({devices})\nInterpreter: {stats.get('executable', '?')}")


class SettingsPanel(QWidget):
    """Edits :class:`Settings` in place; "Check backend" runs ``python -m backend version`` in a task."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.task: BackendTask | None = None
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.python_widget = QgsFileWidget()
        self.python_widget.setStorageMode(QgsFileWidget.GetFile)
        self.python_widget.setFilePath(settings.backend_python)
        self.python_widget.lineEdit().setPlaceholderText("auto: the plugin's .venv")
        self.python_widget.setToolTip("Python interpreter of the backend environment (not QGIS's Python)")
        form.addRow("Backend Python", self.python_widget)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setCurrentText(settings.device)
        form.addRow("Default device", self.device_combo)
        self.cache_widget = QgsFileWidget()
        self.cache_widget.setStorageMode(QgsFileWidget.GetDirectory)
        self.cache_widget.setFilePath(settings.cache_dir)
        self.cache_widget.lineEdit().setPlaceholderText("default: ~/.cache/terraprobe/embeddings")
        form.addRow("Cache folder", self.cache_widget)
        self.check_button = QPushButton("Check backend")
        form.addRow(self.check_button)
        self.report = QLabel("")
        self.report.setWordWrap(True)
        self.report.setTextInteractionFlags(self.report.textInteractionFlags() | 1)  # selectable
        form.addRow(self.report)
        self.python_widget.fileChanged.connect(lambda path: setattr(self.settings, "backend_python", path))
        self.device_combo.currentTextChanged.connect(lambda text: setattr(self.settings, "device", text))
        self.cache_widget.fileChanged.connect(lambda path: setattr(self.settings, "cache_dir", path))
        self.check_button.clicked.connect(self.check_backend)

    def check_backend(self) -> BackendTask | None:
        """Find the interpreter and run ``version`` in a task; the report label shows the outcome."""
        try:
            python = find_backend_python(self.settings.backend_python or None)
        except BackendNotFound as exc:
            self.report.setText(str(exc))
            return None
        self.report.setText(f"Checking {python} …")
        self.check_button.setEnabled(False)
        task = BackendTask("Terraprobe: check backend", ["version"], python=python)
        task.finished_ok.connect(lambda result: self._done(describe_versions(result.stats)))
        task.failed.connect(lambda error: self._done(self._failure_text(python, error)))
        task.cancelled_run.connect(lambda: self._done("Check cancelled."))
        self.task = task
        QgsApplication.taskManager().addTask(task)
        return task

    @staticmethod
    def _failure_text(python: str, error: Exception) -> str:
        from ..backend_client import setup_instructions

        message = error.message if isinstance(error, BackendError) else str(error)
        return (f"The backend does not run with {python}: {message}\n"
                f"To get a working backend environment:\n{setup_instructions()}")

    def _done(self, text: str) -> None:
        self.task = None
        self.report.setText(text)
        self.check_button.setEnabled(True)
