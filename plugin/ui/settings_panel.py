"""Settings section of the dock: backend interpreter, default device, cache folder, "Check backend"."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import QCoreApplication, QTimer
from qgis.PyQt.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from ..install import diagnostics_report
from ..interpreter import (
    PLUGIN_ROOT,
    BackendNotFound,
    find_backend_python,
    remote_client_python,
    setup_instructions,
)
from ..process_client import BackendError
from ..settings import DEVICES, Settings, backend_env_dir, models_dir
from ..tasks import BackendTask
from ..worker_client import shutdown_workers
from .widgets import choice_combo, file_widget, side_by_side


def _tr(text: str) -> str:
    return QCoreApplication.translate("TerraprobeSettings", text)


#: How long after the last edit of *Backend Python* the backend is checked again.
RECHECK_DELAY_MS = 700


class SettingsPanel(QWidget):
    """Edits :class:`Settings` in place; "Check backend" runs ``python -m backend version`` in a task."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.task: BackendTask | None = None
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.python_widget = file_widget(QgsFileWidget.GetFile, settings.backend_python, _tr(
            "Python interpreter of the backend environment (not QGIS's Python); empty: the one Set up "
            "backend… installed"), _tr("auto: the environment of Set up backend…"))
        form.addRow(_tr("Backend Python"), self.python_widget)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setCurrentText(settings.device)
        form.addRow(_tr("Default device"), self.device_combo)
        self.cache_widget = file_widget(QgsFileWidget.GetDirectory, settings.cache_dir, _tr(
            "Where embeddings are kept so that later actions on the same inputs reuse them"),
            "default: ~/.cache/terraprobe/embeddings")
        form.addRow(_tr("Cache folder"), self.cache_widget)
        self.keep_running_check = QCheckBox(_tr("Keep the backend running between actions"),
                                            checked=settings.keep_backend_running, toolTip=_tr(
            "Cluster, Classify, Segment, Similarity, Change, Vectorise and Embed reuse one backend process "
            "instead of starting PyTorch for every action"))
        form.addRow(self.keep_running_check)
        self._add_remote_rows(form)
        self.check_button = QPushButton(_tr("Check backend"))
        self.setup_button = QPushButton(_tr("Set up backend…"), toolTip=_tr(
            "Install PyTorch and the backend's packages into a per-user environment ({folder}), kept across "
            "plugin upgrades").format(folder=backend_env_dir()))
        self.copy_button = QPushButton(_tr("Copy report"))
        form.addRow(side_by_side(self.check_button, self.setup_button, self.copy_button))
        self.setup_dialog = None
        self.report = QLabel("", wordWrap=True)
        self.report.setTextInteractionFlags(self.report.textInteractionFlags() | 1)  # selectable
        form.addRow(self.report)
        #: A changed *Backend Python* is checked again once typing pauses: no stale report stays.
        self.recheck_timer = QTimer(self, singleShot=True, interval=RECHECK_DELAY_MS)
        self.recheck_timer.timeout.connect(self.check_backend)
        self.python_widget.fileChanged.connect(self._python_changed)
        self.device_combo.currentTextChanged.connect(lambda text: setattr(self.settings, "device", text))
        self.cache_widget.fileChanged.connect(lambda path: setattr(self.settings, "cache_dir", path))
        self.keep_running_check.toggled.connect(self._keep_running_changed)
        self.check_button.clicked.connect(self.check_backend)
        self.setup_button.clicked.connect(self.open_setup)
        self.copy_button.clicked.connect(lambda: QApplication.clipboard().setText(self.report.text()))
        self.show_first_run_hint()

    def _add_remote_rows(self, form: QFormLayout) -> None:
        """Backend: local / remote, the job server's URL and token file (docs/remote.md)."""
        self.mode_combo = choice_combo(
            (("local", _tr("local (this machine)")), ("remote", _tr("remote (job server)"))), _tr(
                "remote: Embed, Cluster, Classify, Segment, Similarity, Change and Vectorise run on a "
                "Terraprobe job server (see docs/remote.md)"), current=self.settings.backend_mode)
        form.addRow(_tr("Backend"), self.mode_combo)
        self.url_edit = QLineEdit(self.settings.text(Settings.REMOTE_URL),
                                  placeholderText="https://gpu-server:8765")
        form.addRow(_tr("Server URL"), self.url_edit)
        self.token_widget = file_widget(QgsFileWidget.GetFile, self.settings.text(Settings.REMOTE_TOKEN_FILE),
                                        _tr("a copy of the server's token file (the file \"token\" in its "
                                            "work folder)"))
        form.addRow(_tr("Token file"), self.token_widget)
        self.mode_combo.currentIndexChanged.connect(self._remote_changed)
        self.url_edit.editingFinished.connect(
            lambda: self.settings.set_text(Settings.REMOTE_URL, self.url_edit.text()))
        self.token_widget.fileChanged.connect(
            lambda path: self.settings.set_text(Settings.REMOTE_TOKEN_FILE, path))
        self._remote_changed()

    def _python_changed(self, path: str) -> None:
        """Store the new interpreter and check it shortly (the old report no longer applies)."""
        self.settings.backend_python = path
        shutdown_workers()  # a worker of the previous interpreter must not serve the next action
        self.report.setText(_tr("Backend Python changed: checking it…"))
        self.recheck_timer.start()

    def _keep_running_changed(self, checked: bool) -> None:
        self.settings.keep_backend_running = checked
        if not checked:
            shutdown_workers()

    def _remote_changed(self, *_args: object) -> None:
        remote = self.mode_combo.currentData() == "remote"
        self.settings.backend_mode = "remote" if remote else "local"
        self.url_edit.setEnabled(remote)
        self.token_widget.setEnabled(remote)

    def show_first_run_hint(self, root: Path = PLUGIN_ROOT) -> bool:
        """Point at "Set up backend…" when no backend environment exists yet (file checks only)."""
        if self.settings.backend_python or self.settings.remote_backend():
            return False  # an explicit choice: "Check backend" explains any problem with it
        try:
            find_backend_python(None, root=root, allow_host=False)
            return False
        except BackendNotFound:
            self.report.setText(_tr("No backend environment yet: click \"Set up backend…\" once "
                                    "(a few minutes; it is kept across plugin upgrades)."))
            self.setup_button.setDefault(True)
            return True

    def open_setup(self):
        """Show the "Set up backend…" dialog; a finished installation is checked right away."""
        from .setup_dialog import SetupDialog

        if self.setup_dialog is None:
            self.setup_dialog = SetupDialog(self.settings, self)
            self.setup_dialog.installed.connect(lambda _python: self.check_backend())
        self.setup_dialog.show()
        self.setup_dialog.raise_()
        return self.setup_dialog

    def check_backend(self) -> BackendTask | None:
        """Find the interpreter and run ``version`` in a task; the report label shows the outcome."""
        try:
            python = (remote_client_python() if self.settings.remote_backend()  # `version` runs on the server
                      else find_backend_python(self.settings.backend_python or None))
        except BackendNotFound as exc:
            self.task = None
            self.check_button.setEnabled(True)
            self.report.setText(str(exc))
            return None
        self.report.setText(_tr("Checking {python} …").format(python=python))
        self.check_button.setEnabled(False)
        task = BackendTask("Terraprobe: check backend", ["version"], python=python)
        task.finished_ok.connect(lambda result: self._done(task, diagnostics_report(
            result.stats, python, backend_env_dir(), models_dir())))
        task.failed.connect(lambda error: self._done(task, self._failure_text(python, error)))
        task.cancelled_run.connect(lambda: self._done(task, _tr("Check cancelled.")))
        self.task = task
        QgsApplication.taskManager().addTask(task)
        return task

    @staticmethod
    def _failure_text(python: str, error: Exception) -> str:
        if isinstance(error, BackendError) and error.kind == "environment":
            return error.message  # names the interpreter and what it lacks
        message = error.message if isinstance(error, BackendError) else str(error)
        failure = _tr("The backend does not run with {python}: {message}").format(python=python,
                                                                                    message=message)
        return failure + "\n" + _tr("To get a working backend environment:") + "\n" + setup_instructions()

    def _done(self, task: BackendTask, text: str) -> None:
        """Show a check's outcome, unless a later check (another interpreter) replaced it."""
        if task is not self.task:
            return
        self.task = None
        self.report.setText(text)
        self.check_button.setEnabled(True)
