""""Get models…": the known models (bundled, official CROMA releases) and what is installed.

Every action is a backend ``models`` command run in a task (``list``, ``download``, ``verify``,
``remove``) on the per-user models folder, which plugin upgrades keep.
"""

from __future__ import annotations

import re
from pathlib import Path

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..settings import Settings, models_dir
from ..tasks import BackendTask
from .widgets import side_by_side

COLUMNS = (QT_TRANSLATE_NOOP("TerraprobeModels", "Model"), QT_TRANSLATE_NOOP("TerraprobeModels", "Size"),
           QT_TRANSLATE_NOOP("TerraprobeModels", "Bands"), QT_TRANSLATE_NOOP("TerraprobeModels", "Licence"),
           QT_TRANSLATE_NOOP("TerraprobeModels", "Status"))


def _tr(text: str) -> str:
    return QCoreApplication.translate("TerraprobeModels", text)


def human_size(size: int) -> str:
    """Bytes as KB/MB/GB (decimal, as download sites show them)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def row_cells(row: dict) -> list[str]:
    """The table cells of one ``models list`` row."""
    bands = row.get("bands") or {}
    band_text = " + ".join(f"{name} {len(values)}" for name, values in bands.items()) or "—"
    size = row.get("installed_bytes") if row.get("installed") else row.get("size_bytes")
    if row.get("kind") == "bundled":
        status = _tr("bundled")
    elif row.get("installed"):
        status = _tr("installed")
    else:
        status = _tr("not installed")
    licence = (row.get("licence") or "—").split(" (")[0]
    return [row["name"], human_size(int(size or 0)) if size else "—", band_text, licence, status]


#: The backend's command-line advice (``models download`` options) -> this dialog's words.
_CLI_ADVICE = (
    (r"give another source with --url / --mirror",
     QT_TRANSLATE_NOOP("TerraprobeModels", "put another address in the Source field")),
    (r"use --url / --file for a mirror or a local copy",
     QT_TRANSLATE_NOOP("TerraprobeModels",
                       "put a mirror in the Source field, or use From file… for a local copy")),
    (r"\(or give --url / --file[^)]*\)",
     QT_TRANSLATE_NOOP("TerraprobeModels", "(or use From file… with a local copy)")),
    (r"use --url or --file", QT_TRANSLATE_NOOP("TerraprobeModels", "use From file… with a local copy")),
    (r"run the command again to retry, or raise --timeout",
     QT_TRANSLATE_NOOP("TerraprobeModels", "click Download again: it resumes")),
    (r"--mirror", QT_TRANSLATE_NOOP("TerraprobeModels", "the Source field")),
    (r"--url", QT_TRANSLATE_NOOP("TerraprobeModels", "the Source field")),
    (r"--file", QT_TRANSLATE_NOOP("TerraprobeModels", "From file…")),
)


def dialog_advice(message: str) -> str:
    """A backend message with its command-line advice in the dialog's terms (*Source*, *From file…*)."""
    for pattern, words in _CLI_ADVICE:
        message = re.sub(pattern, _tr(words), message)
    return message


class ModelsDialog(QDialog):
    """List, download (with progress and cancel), verify and remove models.

    Signals:
        model_installed: a model file became ready (its path).
        model_removed: model files were removed (their paths): whoever uses one must drop it.
    """

    model_installed = pyqtSignal(str)
    model_removed = pyqtSignal(list)

    def __init__(self, settings: Settings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(_tr("Get models"))
        self.settings = settings or Settings()
        self.folder = models_dir()
        self.rows: list[dict] = []
        self.task: BackendTask | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(_tr("Models are stored in {folder} and kept when the plugin is upgraded. "
                                    "Downloads resume where they stopped and are verified before use.")
                                .format(folder=self.folder), wordWrap=True))
        self.table = QTableWidget(0, len(COLUMNS), selectionBehavior=QAbstractItemView.SelectRows,
                                  selectionMode=QAbstractItemView.SingleSelection,
                                  editTriggers=QAbstractItemView.NoEditTriggers)
        self.table.setHorizontalHeaderLabels([_tr(c) for c in COLUMNS])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        layout.addWidget(self.table, 1)
        form = QFormLayout()
        self.mirror_edit = QLineEdit(
            self.settings.text(Settings.MODEL_MIRROR),
            placeholderText=_tr("official release; or a mirror folder URL / local folder"),
            toolTip=_tr("A folder (http://, https://, file:// or a path) holding the release files under "
                        "their original names, e.g. CROMA_base.pt"))
        form.addRow(_tr("Source"), self.mirror_edit)
        layout.addLayout(form)
        self.progress = QProgressBar(minimum=0, maximum=100)
        layout.addWidget(self.progress)
        self.status = QLabel("", wordWrap=True)
        layout.addWidget(self.status)
        self.download_button = QPushButton(_tr("Download"))
        self.file_button = QPushButton(_tr("From file…"))
        self.verify_button = QPushButton(_tr("Verify"))
        self.remove_button = QPushButton(_tr("Remove"))
        self.cancel_button = QPushButton(_tr("Cancel"))
        self.close_button = QPushButton(_tr("Close"))
        buttons = side_by_side(self.download_button, self.file_button, self.verify_button, self.remove_button,
                               self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        self.download_button.clicked.connect(lambda: self.download())
        self.file_button.clicked.connect(self._from_file)
        self.verify_button.clicked.connect(self.verify)
        self.remove_button.clicked.connect(self.remove)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.resize(780, 420)
        self._update_buttons()

    # -- state ----------------------------------------------------------------------------------
    def selected(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows()
        return self.rows[rows[0].row()] if rows and rows[0].row() < len(self.rows) else None

    def select(self, name: str) -> None:
        for index, row in enumerate(self.rows):
            if row["name"] == name:
                self.table.selectRow(index)

    def _update_buttons(self) -> None:
        row = self.selected()
        busy = self.task is not None
        downloadable = bool(row) and row.get("kind") == "checkpoint" and not row.get("installed")
        self.download_button.setEnabled(not busy and downloadable)
        self.file_button.setEnabled(not busy and bool(row) and row.get("kind") == "checkpoint")
        self.verify_button.setEnabled(not busy and bool(row) and bool(row.get("installed")))
        self.remove_button.setEnabled(not busy and bool(row) and bool(row.get("installed"))
                                      and row.get("kind") != "bundled")
        self.cancel_button.setEnabled(busy)

    def show_rows(self, rows: list[dict]) -> None:
        """Fill the table from ``models list`` rows."""
        selected = (self.selected() or {}).get("name")
        self.rows = list(rows)
        self.table.setRowCount(len(self.rows))
        for index, row in enumerate(self.rows):
            for column, text in enumerate(row_cells(row)):
                item = QTableWidgetItem(text)
                item.setToolTip("\n".join(str(part) for part in (
                    row.get("title"), row.get("url") or row.get("path"), row.get("licence"), row.get("notes"))
                    if part))
                if column == 0:
                    item.setData(Qt.UserRole, row["name"])
                self.table.setItem(index, column, item)
        if selected:
            self.select(selected)
        self._update_buttons()

    # -- backend runs ---------------------------------------------------------------------------
    def _run(self, description: str, args: list[str], on_ok) -> BackendTask:
        task = BackendTask(description, [*args, "--models-dir", str(self.folder)])
        task.progress_message.connect(self._on_progress)
        task.finished_ok.connect(lambda result: (self._done(), on_ok(result)))
        task.failed.connect(lambda error: (self._done(), self.status.setText(
            _tr("Failed: {message}").format(message=dialog_advice(getattr(error, "message", str(error)))))))
        task.cancelled_run.connect(lambda: (self._done(), self.status.setText(
            _tr("Cancelled; a download resumes where it stopped."))))
        self.task = task
        self._update_buttons()
        QgsApplication.taskManager().addTask(task)
        return task

    def _done(self) -> None:
        self.task = None
        self._update_buttons()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(100 * fraction))
        if message:
            self.status.setText(message)

    def refresh(self, outcome: str = "") -> BackendTask:
        """Ask the backend for the list (``models list``); ``outcome`` stays in the status line."""
        if not outcome:
            self.status.setText(_tr("Reading the model list…"))
        return self._run(_tr("Terraprobe: list models"), ["models", "list"],
                         lambda result: (self.show_rows(result.stats.get("models") or []),
                                         self.status.setText(outcome)))

    def download(self, name: str | None = None, file: str | None = None) -> BackendTask | None:
        """Download (or read ``file``), verify and convert the selected model."""
        row = self.selected() if name is None else {"name": name}
        if not row:
            return None
        self.settings.set_text(Settings.MODEL_MIRROR, self.mirror_edit.text())
        args = ["models", "download", row["name"]]
        mirror = self.mirror_edit.text().strip()
        if file:
            args += ["--file", file]
        elif mirror:
            args += ["--mirror", mirror]
        self.progress.setValue(0)
        self.status.setText(_tr("Getting {name}…").format(name=row["name"]))

        def done(result) -> None:
            weights = str(result.outputs.get("weights", ""))
            outcome = _tr("{name} is installed and selected in the dock's model list ({path}).").format(
                name=row["name"], path=weights)
            self.status.setText(outcome)
            self.progress.setValue(100)
            if weights:
                self.model_installed.emit(weights)
            self.refresh(outcome)

        return self._run(_tr("Terraprobe: get {name}").format(name=row["name"]), args, done)

    def _from_file(self) -> None:
        row = self.selected()
        path, _ = QFileDialog.getOpenFileName(self, _tr("Checkpoint file"), "",
                                              _tr("Checkpoints (*.pt *.pth *.ckpt);;All files (*)"))
        if row and path:
            self.download(row["name"], file=path)

    def verify(self) -> BackendTask | None:
        row = self.selected()
        if not row:
            return None
        def done(result) -> None:
            self.status.setText(_tr("{name}: valid ({tensors} tensors, dim {dim})").format(
                name=row["name"], tensors=result.stats.get("tensors"), dim=result.stats.get("dim")))

        return self._run(_tr("Terraprobe: verify {name}").format(name=row["name"]),
                         ["models", "verify", row.get("path") or row["name"]], done)

    def confirm_remove(self, row: dict) -> bool:
        """Ask before deleting ``row``'s files (their size named)."""
        size = row.get("installed_bytes")
        question = _tr("Remove {name} ({size}) from {folder}? Getting it again means downloading it again.")
        answer = QMessageBox.question(
            self, _tr("Remove model"),
            question.format(name=row["name"], size=human_size(int(size)) if size else _tr("size unknown"),
                            folder=self.folder),
            QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Cancel)
        return answer == QMessageBox.Yes

    def remove(self) -> BackendTask | None:
        """Delete the selected model's files after confirmation; ``model_removed`` names them."""
        row = self.selected()
        if not row or not self.confirm_remove(row):
            return None

        def done(result) -> None:
            removed = [str(path) for path in result.stats.get("removed") or []]
            self.model_removed.emit(removed)
            self.refresh(_tr("{name} removed.").format(name=row["name"]))

        return self._run(_tr("Terraprobe: remove {name}").format(name=row["name"]),
                         ["models", "remove", row["name"]], done)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


def forget_removed_model(dock, removed: list[str]) -> None:
    """Refill the dock's model list; a removed model that was chosen falls back to Auto."""
    current = dock.model_path() or ""
    gone = {Path(path).resolve() for path in removed}
    dock.set_model_path("" if current and Path(current).resolve() in gone else current)


def open_models_dialog(dock) -> ModelsDialog:
    """Show the dialog for the dock; an installed model is selected in the dock's model picker."""
    dialog = ModelsDialog(getattr(dock, "settings", None), dock)
    dialog.model_installed.connect(lambda path: dock.set_model_path(str(Path(path))))
    dialog.model_removed.connect(lambda paths: forget_removed_model(dock, paths))
    dialog.show()
    dialog.refresh()
    return dialog
