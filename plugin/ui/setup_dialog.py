""""Set up backend…": install the backend environment in a QgsTask, with log, cancel, retry and report.

The dialog only gathers options and shows progress; :mod:`plugin.install` does the work.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication, QgsTask
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import QCoreApplication, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QApplication,
    QCheckBox,
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..install import (
    INSTALLERS,
    TORCH_BUILDS,
    InstallCancelled,
    InstallError,
    InstallOptions,
    InstallResult,
    diagnostics_report,
    install,
)
from ..settings import Settings, backend_env_dir, models_dir
from .widgets import choice_combo, file_widget, side_by_side


def _tr(text: str) -> str:
    return QCoreApplication.translate("TerraprobeSetup", text)


def options_from_settings(settings: Settings, env_dir: Path | None = None) -> InstallOptions:
    """The install options the settings describe (package sources, torch build, installer)."""
    links = [part for part in settings.text(Settings.FIND_LINKS).replace(";", " ").split() if part]
    installer = settings.text(Settings.INSTALLER, "auto")
    build = settings.text(Settings.TORCH_BUILD, "auto")
    return InstallOptions(
        env_dir=env_dir or backend_env_dir(), base_python=settings.text(Settings.BASE_PYTHON) or None,
        installer=installer if installer in INSTALLERS else "auto",
        torch_build=build if build in TORCH_BUILDS else "auto",
        torch_index_url=settings.text(Settings.TORCH_INDEX_URL), index_url=settings.text(Settings.INDEX_URL),
        find_links=links)


class InstallTask(QgsTask):
    """Runs :func:`plugin.install.install` off the GUI thread; signals arrive on the GUI thread."""

    line = pyqtSignal(str)
    step = pyqtSignal(int, int, str)
    succeeded = pyqtSignal(object)
    failed = pyqtSignal(object)

    def __init__(self, options: InstallOptions) -> None:
        super().__init__(_tr("Terraprobe: set up the backend"), QgsTask.CanCancel)
        self.options = options
        self.result: InstallResult | None = None
        self.error: Exception | None = None

    def run(self) -> bool:
        def on_step(index: int, count: int, description: str) -> None:
            self.setProgress(100.0 * index / max(count, 1))
            self.step.emit(index, count, description)

        try:
            self.result = install(self.options, on_line=self.line.emit, on_step=on_step,
                                  is_canceled=self.isCanceled)
            return True
        except Exception as exc:  # every failure ends as a message in the dialog
            self.error = exc
            return False

    def finished(self, ok: bool) -> None:  # GUI thread
        if ok and self.result is not None:
            self.succeeded.emit(self.result)
        else:
            self.failed.emit(self.error or InstallCancelled(_tr("cancelled")))


class SetupDialog(QDialog):
    """Options, Install/Retry, Cancel, a live log and the diagnostics report (copyable)."""

    installed = pyqtSignal(str)

    def __init__(self, settings: Settings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(_tr("Set up the Terraprobe backend"))
        self.settings = settings or Settings()
        self.task: InstallTask | None = None
        self.env_dir = backend_env_dir()
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(_tr(
            "Creates a Python environment with PyTorch and the backend's pinned packages in your QGIS "
            "profile (kept when the plugin is upgraded). It downloads about 1 GB (CPU) to 3 GB (CUDA) unless "
            "your package sources are local."), wordWrap=True))
        form = QFormLayout()
        self.env_label = QLabel(str(self.env_dir))
        self.env_label.setTextInteractionFlags(self.env_label.textInteractionFlags() | 1)
        form.addRow(_tr("Environment folder"), self.env_label)
        self.build_combo = choice_combo(
            (("auto", _tr("auto (CUDA when an NVIDIA driver is found)")), ("cpu", _tr("CPU")),
             ("cuda", _tr("CUDA (NVIDIA GPU)"))), current=self.settings.text(Settings.TORCH_BUILD, "auto"))
        form.addRow(_tr("PyTorch build"), self.build_combo)
        self.installer_combo = choice_combo(
            (("auto", _tr("auto (uv when installed, else pip)")), ("pip", "pip"), ("uv", "uv")),
            current=self.settings.text(Settings.INSTALLER, "auto"))
        form.addRow(_tr("Installer"), self.installer_combo)
        self.torch_index_edit = QLineEdit(self.settings.text(Settings.TORCH_INDEX_URL), placeholderText=_tr(
            "automatic (PyTorch's index for the build); 'none' = pip's own configuration"))
        form.addRow(_tr("PyTorch index URL"), self.torch_index_edit)
        self.index_edit = QLineEdit(self.settings.text(Settings.INDEX_URL),
                                    placeholderText=_tr("default: PyPI (or your pip configuration)"))
        form.addRow(_tr("Package index URL"), self.index_edit)
        self.find_links_edit = QLineEdit(self.settings.text(Settings.FIND_LINKS), placeholderText=_tr(
            "folders or URLs with wheels, separated by spaces"))
        form.addRow(_tr("Find links"), self.find_links_edit)
        self.base_widget = file_widget(QgsFileWidget.GetFile, self.settings.text(Settings.BASE_PYTHON),
                                       placeholder=_tr("default: QGIS's own Python"))
        form.addRow(_tr("Base Python"), self.base_widget)
        self.recreate_check = QCheckBox(_tr("Delete and recreate an existing environment"))
        form.addRow("", self.recreate_check)
        layout.addLayout(form)
        self.progress = QProgressBar(minimum=0, maximum=100, value=0)
        layout.addWidget(self.progress)
        self.status = QLabel(_tr("Ready."), wordWrap=True)
        layout.addWidget(self.status)
        self.log_view = QPlainTextEdit(readOnly=True, maximumBlockCount=5000,
                                       placeholderText=_tr("Installer output appears here."))
        layout.addWidget(self.log_view, 1)
        self.report_view = QPlainTextEdit(readOnly=True, minimumHeight=120, placeholderText=_tr(
            "Diagnostics (python, torch, CUDA, GPU, GDAL) after the check."))
        layout.addWidget(self.report_view)
        self.install_button = QPushButton(_tr("Install"))
        self.cancel_button = QPushButton(_tr("Cancel"), enabled=False)
        self.copy_button = QPushButton(_tr("Copy report"))
        self.close_button = QPushButton(_tr("Close"))
        buttons = side_by_side(self.install_button, self.cancel_button, self.copy_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        self.install_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.copy_button.clicked.connect(self.copy_report)
        self.close_button.clicked.connect(self.close)
        self.log_view.setMinimumHeight(90)
        self.resize(660, 640)  # fits a 1280x800 screen with its panels

    def save_options(self) -> None:
        """Store the choices so the next run (and the retry) uses them."""
        self.settings.set_text(Settings.TORCH_BUILD, self.build_combo.currentData())
        self.settings.set_text(Settings.INSTALLER, self.installer_combo.currentData())
        self.settings.set_text(Settings.TORCH_INDEX_URL, self.torch_index_edit.text())
        self.settings.set_text(Settings.INDEX_URL, self.index_edit.text())
        self.settings.set_text(Settings.FIND_LINKS, self.find_links_edit.text())
        self.settings.set_text(Settings.BASE_PYTHON, self.base_widget.filePath())

    def start(self) -> InstallTask:
        """Start (or retry) the installation in QGIS's task manager."""
        self.save_options()
        options = options_from_settings(self.settings, self.env_dir)
        options.recreate = self.recreate_check.isChecked()
        self.log_view.clear()
        self.report_view.clear()
        self.progress.setValue(0)
        self.status.setText(_tr("Installing into {folder}…").format(folder=options.env_dir))
        task = InstallTask(options)
        task.line.connect(self.log_view.appendPlainText)
        task.step.connect(self._on_step)
        task.succeeded.connect(self._on_succeeded)
        task.failed.connect(self._on_failed)
        self.task = task
        self.install_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        QgsApplication.taskManager().addTask(task)
        return task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def copy_report(self) -> None:
        text = self.report_view.toPlainText() or self.log_view.toPlainText()
        QApplication.clipboard().setText(text)

    def _on_step(self, index: int, count: int, description: str) -> None:
        self.progress.setValue(int(100 * index / max(count, 1)))
        if index < count:
            self.status.setText(_tr("Step {n} of {count}: {what}…").format(n=index + 1, count=count,
                                                                           what=description))

    def _finish(self) -> None:
        self.task = None
        self.install_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _on_succeeded(self, result: InstallResult) -> None:
        self._finish()
        self.progress.setValue(100)
        self.install_button.setText(_tr("Reinstall"))
        self.status.setText(_tr("The backend is ready ({build} build, {installer}). Terraprobe uses it "
                                "automatically.").format(build=result.torch_build.upper(),
                                                         installer=result.installer))
        self.report_view.setPlainText(diagnostics_report(result.versions, result.python, self.env_dir,
                                                         models_dir()))
        configured = self.settings.backend_python
        if configured and not Path(configured).is_file():
            self.settings.backend_python = ""  # a stale explicit setting would hide the new environment
        self.installed.emit(str(result.python))

    def _on_failed(self, error: Exception) -> None:
        self._finish()
        self.install_button.setText(_tr("Retry"))
        if isinstance(error, InstallCancelled):
            self.status.setText(_tr("Cancelled. Retry continues where it stopped."))
            return
        message = error.message if isinstance(error, InstallError) else f"{type(error).__name__}: {error}"
        self.status.setText(_tr("Setup failed: {message}. Fix the package sources above if needed, "
                                "then Retry.").format(message=message))
        if isinstance(error, InstallError) and error.log:
            self.report_view.setPlainText(error.log)
