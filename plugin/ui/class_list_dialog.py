"""*New…* sample layer: the analyst's own class list, one class a line (at least two to train on)."""

from __future__ import annotations

from collections.abc import Sequence

from qgis.PyQt.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from ..samples import parse_class_names


class ClassListDialog(QDialog):
    """Edit the classes of a new sample layer; OK needs two or more distinct names."""

    def __init__(self, initial: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("New sample layer — classes"))
        layout = QVBoxLayout(self)
        intro = QLabel(self.tr("The classes you will draw, one a line (or separated by commas). Each gets "
                               "its own colour; Classify and Segment need at least two."))
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.editor = QPlainTextEdit("\n".join(initial))
        layout.addWidget(self.editor)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.editor.textChanged.connect(self._check)
        self._check()

    def class_names(self) -> list[str]:
        return parse_class_names(self.editor.toPlainText())

    def _check(self) -> None:
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(len(self.class_names()) >= 2)


def ask_class_names(parent: QWidget | None, initial: Sequence[str]) -> list[str] | None:
    """The class list the analyst confirms (``None``: cancelled)."""
    dialog = ClassListDialog(initial, parent)
    return dialog.class_names() if dialog.exec_() == QDialog.Accepted else None
