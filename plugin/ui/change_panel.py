"""The dock's *Change between dates* and *Vectorise* boxes (thin widgets; requests built elsewhere)."""

from __future__ import annotations

from qgis.gui import QgsCollapsibleGroupBox
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QWidget,
)

from ..contract import outputs as _outputs
from ..contract import requests as _requests
from .widgets import choice_combo, offered_spin, optional_raster_combo, run_button, section, side_by_side

#: Change inputs: key (``plugin.job_inputs.DATE_KINDS``) and label (translated in the box).
CHANGE_KINDS = (("embeddings", "Embedding fields"), ("optical", "Optical layers (same model)"),
                ("sar", "Radar layers (same model)"))
#: Threshold choices: the backend's automatic modes and a fixed value.
THRESHOLD_CHOICES = (("auto", "Automatic (robust: median + 5 robust SD)"), ("otsu", "Otsu"),
                     ("otsu3", "Otsu, 3 classes (dates of different seasons)"),
                     ("robust", "Robust (median + 5 robust SD)"), ("value", "Fixed value"))
FIXED = "value"
#: Vectorise's class choices: every class, a change mask's changed areas, or the classes typed.
ONLY_CHOICES = (("all", "All classes"), ("changed", "Only changed (change mask)"),
                ("classes", "Only classes…"))


def _tr(text: str) -> str:
    return QCoreApplication.translate("ChangePanel", text)


class ChangeBox(QgsCollapsibleGroupBox):
    """Before/after layers (two fields, or two optical or radar layers), threshold, change types, Change."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        section(self, self.tr("Change between dates"), "TerraprobeChangeBox", collapsed=True)
        form = QFormLayout(self)
        self.change_kind_combo = choice_combo(CHANGE_KINDS, self.tr(
            "Compare two embedding fields (AlphaEarth, TESSERA, Embed's), or two layers of two dates "
            "embedded with the Inputs' model (S2 alone, or S1 alone for all-weather flood mapping)"), _tr)
        form.addRow(self.tr("Compare"), self.change_kind_combo)
        self.before_combo = optional_raster_combo(self.tr("The earlier date"))
        self.after_combo = optional_raster_combo(self.tr("The later date (another grid is aligned on the "
                                                         "fly)"))
        form.addRow(self.tr("Before"), self.before_combo)
        form.addRow(self.tr("After"), self.after_combo)
        self.threshold_combo = choice_combo(THRESHOLD_CHOICES, self.tr(
            "Where the change magnitude becomes change (--threshold)"), _tr)
        self.threshold_spin = QDoubleSpinBox(maximum=1000.0, decimals=3, singleStep=0.01, value=0.1, toolTip=(
            self.tr("Fixed threshold on the change magnitude (cosine distance)")))
        form.addRow(self.tr("Threshold"), side_by_side((self.threshold_combo, 1), self.threshold_spin))
        self.change_types_spin = offered_spin(
            "change_clusters", specialValueText=self.tr("off"), toolTip=self.tr(
            "Group the changed patches into this many change types (\"from–to\"; --change-clusters; off: "
            "none)"))
        form.addRow(self.tr("Change types"), self.change_types_spin)
        self.change_button = run_button(self.tr("Detect change"), self.tr(
            "Change magnitude, change mask and (optionally) change types between the two dates"))
        form.addRow(self.change_button)
        self.threshold_combo.currentIndexChanged.connect(self._show_threshold)
        self._show_threshold()

    def _show_threshold(self, *_args) -> None:
        self.threshold_spin.setEnabled(self.threshold_combo.currentData() == FIXED)

    def kind(self) -> str:
        return str(self.change_kind_combo.currentData())

    def options(self) -> dict:
        """The change options as request fields (``threshold``, ``change_clusters``)."""
        mode = self.threshold_combo.currentData()
        threshold = self.threshold_spin.value() if mode == FIXED else mode
        return {"threshold": threshold if threshold != _requests.DEFAULT_THRESHOLD else None,
                "change_clusters": self.change_types_spin.value() or None}


class VectoriseBox(QgsCollapsibleGroupBox):
    """A class, cluster, segmentation or change result to polygons: layer, minimum area, simplification."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        section(self, self.tr("Vectorise a result"), "TerraprobeVectoriseBox", collapsed=True)
        form = QFormLayout(self)
        self.vectorise_combo = optional_raster_combo(self.tr(
            "A class, cluster, segmentation or change mask/types layer"))
        form.addRow(self.tr("Class map"), self.vectorise_combo)
        self.min_area_spin = QDoubleSpinBox(
            maximum=1e9, decimals=0, singleStep=1000.0, suffix=self.tr(" m²"),
            specialValueText=self.tr("off (keep every region)"),
            toolTip=self.tr("Smaller regions merge into their largest neighbour (--min-area)"))
        form.addRow(self.tr("Minimum area"), self.min_area_spin)
        self.simplify_spin = QDoubleSpinBox(maximum=1e6, decimals=6, specialValueText=self.tr(
            "off (exact pixel outlines)"), toolTip=self.tr(
            "Douglas-Peucker tolerance in the layer's map units (0: exact pixel outlines; --simplify)"))
        form.addRow(self.tr("Simplify"), self.simplify_spin)
        self.only_combo = choice_combo(ONLY_CHOICES, self.tr(
            "Which classes become polygons (--only): all, the changed areas of a change mask, or the classes "
            "you list"), _tr)
        self.only_edit = QLineEdit(placeholderText=self.tr("e.g. 1,3 or water,urban"),
                                   toolTip=self.tr("Class values or names, separated by commas"))
        form.addRow(self.tr("Classes"), side_by_side((self.only_combo, 1), (self.only_edit, 1)))
        self.only_combo.currentIndexChanged.connect(self._show_only)
        self._show_only()
        self.vectorise_button = run_button(self.tr("Vectorise"), self.tr(
            "Polygons (GeoPackage) with class, area and mean confidence, styled in the map's colours"))
        form.addRow(self.vectorise_button)

    def _show_only(self, *_args) -> None:
        self.only_edit.setEnabled(self.only_combo.currentData() == "classes")

    def only(self) -> str | None:
        """``--only``: ``None`` for every class, the change mask's changed class, or the classes typed."""
        choice = self.only_combo.currentData()
        if choice == "changed":
            return _outputs.CHANGED_CLASS
        return self.only_edit.text().strip() or None if choice == "classes" else None
