"""The dock's *Change between dates* and *Vectorise* boxes (thin widgets; requests built elsewhere)."""

from __future__ import annotations

from qgis.core import QgsMapLayerProxyModel
from qgis.gui import QgsCollapsibleGroupBox, QgsMapLayerComboBox
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ..contract import outputs as _outputs
from ..contract import requests as _requests

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


def _raster_combo(tooltip: str) -> QgsMapLayerComboBox:
    combo = QgsMapLayerComboBox()
    combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
    combo.setAllowEmptyLayer(True)
    combo.setLayer(None)
    combo.setToolTip(tooltip)
    return combo


class ChangeBox(QgsCollapsibleGroupBox):
    """Before/after layers (two fields, or two optical or radar layers), threshold, change types, Change."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Change between dates"))
        self.setObjectName("TerraprobeChangeBox")
        form = QFormLayout(self)
        self.change_kind_combo = QComboBox()
        for key, label in CHANGE_KINDS:
            self.change_kind_combo.addItem(_tr(label), key)
        self.change_kind_combo.setToolTip(self.tr(
            "Compare two embedding fields (AlphaEarth, TESSERA, Embed's), or two layers of two dates "
            "embedded with the Inputs' model (S2 alone, or S1 alone for all-weather flood mapping)"))
        form.addRow(self.tr("Compare"), self.change_kind_combo)
        self.before_combo = _raster_combo(self.tr("The earlier date"))
        self.after_combo = _raster_combo(self.tr("The later date (another grid is aligned on the fly)"))
        form.addRow(self.tr("Before"), self.before_combo)
        form.addRow(self.tr("After"), self.after_combo)
        row = QHBoxLayout()
        self.threshold_combo = QComboBox()
        for key, label in THRESHOLD_CHOICES:
            self.threshold_combo.addItem(_tr(label), key)
        self.threshold_combo.setToolTip(self.tr("Where the change magnitude becomes change (--threshold)"))
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 1000.0)
        self.threshold_spin.setDecimals(3)
        self.threshold_spin.setSingleStep(0.01)
        self.threshold_spin.setValue(0.1)
        self.threshold_spin.setToolTip(self.tr("Fixed threshold on the change magnitude (cosine distance)"))
        row.addWidget(self.threshold_combo, 1)
        row.addWidget(self.threshold_spin)
        form.addRow(self.tr("Threshold"), row)
        self.change_types_spin = QSpinBox()
        self.change_types_spin.setRange(0, 32)
        self.change_types_spin.setSpecialValueText(self.tr("off"))
        self.change_types_spin.setToolTip(self.tr("Group the changed patches into this many change types "
                                                  "(\"from–to\"; --change-clusters; off: none)"))
        form.addRow(self.tr("Change types"), self.change_types_spin)
        self.change_button = QPushButton(self.tr("Detect change"))
        self.change_button.setToolTip(self.tr("Change magnitude, change mask and (optionally) change types "
                                              "between the two dates"))
        self.change_button.setProperty("base_tooltip", self.change_button.toolTip())
        form.addRow(self.change_button)
        self.threshold_combo.currentIndexChanged.connect(self._show_threshold)
        self._show_threshold()
        self.setSaveCollapsedState(False)
        self.setCollapsed(True)  # the dock stays short; a click opens it

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
        self.setTitle(self.tr("Vectorise a result"))
        self.setObjectName("TerraprobeVectoriseBox")
        form = QFormLayout(self)
        self.vectorise_combo = _raster_combo(self.tr("A class, cluster, segmentation or change mask/types "
                                                     "layer"))
        form.addRow(self.tr("Class map"), self.vectorise_combo)
        self.min_area_spin = QDoubleSpinBox()
        self.min_area_spin.setRange(0.0, 1e9)
        self.min_area_spin.setDecimals(0)
        self.min_area_spin.setSingleStep(1000.0)
        self.min_area_spin.setSuffix(self.tr(" m²"))
        self.min_area_spin.setSpecialValueText(self.tr("off (keep every region)"))
        self.min_area_spin.setToolTip(self.tr("Smaller regions merge into their largest neighbour "
                                              "(--min-area)"))
        form.addRow(self.tr("Minimum area"), self.min_area_spin)
        self.simplify_spin = QDoubleSpinBox()
        self.simplify_spin.setRange(0.0, 1e6)
        self.simplify_spin.setDecimals(6)
        self.simplify_spin.setSpecialValueText(self.tr("off (exact pixel outlines)"))
        self.simplify_spin.setToolTip(self.tr("Douglas-Peucker tolerance in the layer's map units (0: exact "
                                              "pixel outlines; --simplify)"))
        form.addRow(self.tr("Simplify"), self.simplify_spin)
        row = QHBoxLayout()
        self.only_combo = QComboBox()
        for key, label in ONLY_CHOICES:
            self.only_combo.addItem(_tr(label), key)
        self.only_combo.setToolTip(self.tr("Which classes become polygons (--only): all, the changed areas "
                                           "of a change mask, or the classes you list"))
        self.only_edit = QLineEdit()
        self.only_edit.setPlaceholderText(self.tr("e.g. 1,3 or water,urban"))
        self.only_edit.setToolTip(self.tr("Class values or names, separated by commas"))
        row.addWidget(self.only_combo, 1)
        row.addWidget(self.only_edit, 1)
        form.addRow(self.tr("Classes"), row)
        self.only_combo.currentIndexChanged.connect(self._show_only)
        self._show_only()
        self.vectorise_button = QPushButton(self.tr("Vectorise"))
        self.vectorise_button.setToolTip(self.tr("Polygons (GeoPackage) with class, area and mean "
                                                 "confidence, styled in the map's colours"))
        self.vectorise_button.setProperty("base_tooltip", self.vectorise_button.toolTip())
        form.addRow(self.vectorise_button)
        self.setSaveCollapsedState(False)
        self.setCollapsed(True)  # the dock stays short; a click opens it

    def _show_only(self, *_args) -> None:
        self.only_edit.setEnabled(self.only_combo.currentData() == "classes")

    def only(self) -> str | None:
        """``--only``: ``None`` for every class, the change mask's changed class, or the classes typed."""
        choice = self.only_combo.currentData()
        if choice == "changed":
            return _outputs.CHANGED_CLASS
        return self.only_edit.text().strip() or None if choice == "classes" else None
