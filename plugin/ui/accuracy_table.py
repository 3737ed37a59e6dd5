"""The dock's per-class accuracy table after Classify, and Segment's accuracy with its caveat.

Classify's result carries per-class figures as ``{class name: value}`` dictionaries (sample patches and
polygons per class, leave-one-polygon-out and spatially blocked accuracy, and whatever per-class figures a
newer backend adds under a ``class_*`` / ``*_class_*`` key); the table shows those present, so an older or
newer backend never breaks it.
"""

from __future__ import annotations

from collections.abc import Mapping

from qgis.PyQt.QtCore import QCoreApplication, Qt
from qgis.PyQt.QtGui import QBrush, QColor
from qgis.PyQt.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

#: Known per-class figures, in column order: stats key -> column title (translated when shown).
KNOWN_COLUMNS = {"class_counts": "Patches", "blocked_cv_class_accuracy": "Blocked", "class_f1": "F1",
                 "lopo_class_accuracy": "LOPO", "baseline_class_accuracy": "Raw"}
#: Shown in each class's tooltip rather than a column (the dock is narrow).
POLYGONS_KEY = "polygon_counts"
#: The fields of a result's ``per_class`` rows, as the columns above.
ROW_FIELDS = {"samples": "class_counts", "polygons": "polygon_counts",
              "blocked_accuracy": "blocked_cv_class_accuracy", "f1": "class_f1",
              "lopo_accuracy": "lopo_class_accuracy", "baseline_blocked_accuracy": "baseline_class_accuracy"}
#: Keys of accuracies (shown as percentages and coloured), whatever their column.
ACCURACY_WORDS = ("accuracy", "precision", "recall", "f1")
#: Below this, a class's accuracy is shown in red (it is mostly wrong on the map).
WEAK_ACCURACY = 0.5
#: The table's tallest (more classes scroll inside it).
MAX_HEIGHT_PX = 260
#: Segment's held-out accuracy under the names a backend may use.
HELD_OUT_KEYS = ("held_out_accuracy", "heldout_accuracy", "validation_accuracy", "val_accuracy")


def _tr(text: str) -> str:
    return QCoreApplication.translate("AccuracyTable", text)


def per_class_figures(stats: Mapping) -> dict:
    """``stats`` with its ``per_class`` rows (``name``, ``samples``, ``blocked_accuracy``, ``f1``...) turned
    into the ``{column key: {class name: value}}`` dictionaries the table reads; others as they are."""
    figures = dict(stats)
    rows = stats.get("per_class")
    if isinstance(rows, list):
        for field, key in ROW_FIELDS.items():
            values = {str(row.get("name", row.get("class"))): row.get(field) for row in rows
                      if isinstance(row, Mapping)}
            if any(value is not None for value in values.values()):
                figures[key] = values
    return figures


def per_class_columns(stats: Mapping) -> list[str]:
    """The stats keys holding one figure per class: the known ones first, then any other ``class``
    dictionary of numbers (e.g. per-class precision a newer backend adds)."""
    def per_class(key: str) -> bool:
        value = stats.get(key)
        return (isinstance(value, Mapping) and bool(value)
                and all(v is None or isinstance(v, (int, float)) for v in value.values()))

    known = [key for key in KNOWN_COLUMNS if per_class(key)]
    extra = sorted(key for key in stats if key not in KNOWN_COLUMNS and "class" in key and key != "classes"
                   and key != POLYGONS_KEY and per_class(key))
    return known + extra


def column_title(key: str) -> str:
    """A column's title: the known ones by name, others from their key (``class_f1`` -> ``F1``)."""
    if key in KNOWN_COLUMNS:
        return _tr(KNOWN_COLUMNS[key])
    words = [w for w in key.split("_") if w not in ("class", "cv")]
    return " ".join(words).capitalize() or key


def is_accuracy(key: str) -> bool:
    return any(word in key for word in ACCURACY_WORDS)


def cell_text(key: str, value) -> str:
    if value is None:
        return "–"
    return f"{float(value):.0%}" if is_accuracy(key) else str(int(value))


class AccuracyTable(QTableWidget):
    """Class by class: sample counts and accuracies; hidden until a Classify result fills it."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, 0, parent)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setToolTip(_tr("Per-class figures of the last Classify run: sample patches, accuracy and "
                            "F1 (a class's polygons: its tooltip). Trust the spatially blocked accuracy: "
                            "leave-one-polygon-out (LOPO) flatters classes whose polygons share context. "
                            "Raw: the blocked accuracy of a classifier on the raw band statistics alone. "
                            "Red: under 50 %, mostly wrong on the map"))
        self.setVisible(False)

    def show_stats(self, stats: Mapping) -> bool:
        """Fill the table from a Classify result (``False`` and hidden when it has no per-class figures)."""
        stats = per_class_figures(stats)
        columns = per_class_columns(stats)
        names: list[str] = []
        for key in columns:
            names += [str(name) for name in stats[key] if str(name) not in names]
        if not columns or not names:
            self.clear_table()
            return False
        self.setColumnCount(len(columns) + 1)
        self.setRowCount(len(names))
        self.setHorizontalHeaderLabels([_tr("Class"), *map(column_title, columns)])
        polygons = {str(k): v for k, v in (stats.get(POLYGONS_KEY) or {}).items()}
        for row, name in enumerate(names):
            label = QTableWidgetItem(name)
            if polygons.get(name) is not None:
                label.setToolTip(_tr("{name}: {n} sample polygon(s)").format(name=name, n=polygons[name]))
            self.setItem(row, 0, label)
            for column, key in enumerate(columns, start=1):
                value = {str(k): v for k, v in stats[key].items()}.get(name)
                item = QTableWidgetItem(cell_text(key, value))
                item.setTextAlignment(int(Qt.AlignRight | Qt.AlignVCenter))
                if is_accuracy(key) and value is not None and float(value) < WEAK_ACCURACY:
                    item.setForeground(QBrush(QColor(200, 0, 0)))
                self.setItem(row, column, item)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setStretchLastSection(True)
        self.resizeRowsToContents()
        rows_height = sum(self.rowHeight(row) for row in range(self.rowCount()))
        scrollbar = self.style().pixelMetric(self.style().PM_ScrollBarExtent)  # when the dock is narrower
        frame = 2 * self.frameWidth() + 2
        self.setFixedHeight(min(rows_height + header.sizeHint().height() + scrollbar + frame, MAX_HEIGHT_PX))
        self.setVisible(True)
        return True

    def clear_table(self) -> None:
        self.setRowCount(0)
        self.setColumnCount(0)
        self.setVisible(False)


def segment_accuracy_text(stats: Mapping) -> str:
    """Segment's accuracies for the status line: the training accuracy with its caveat, and the held-out
    accuracy when the run measured one (``""`` when it reported neither)."""
    parts = []
    train = stats.get("train_accuracy")
    if train is not None:
        parts.append(_tr("training accuracy {accuracy} (on the very pixels it learned from: it shows the "
                         "head fits the samples, not that the map is right)")
                     .format(accuracy=f"{float(train):.0%}"))
    held = next((stats[key] for key in HELD_OUT_KEYS if stats.get(key) is not None), None)
    if held is not None:
        parts.append(_tr("held-out accuracy {accuracy} (pixels it did not train on: trust this one)")
                     .format(accuracy=f"{float(held):.0%}"))
    elif train is not None:
        parts.append(_tr("no held-out accuracy: check the map, or run Classify for a cross-validated one"))
    return " · ".join(parts)
