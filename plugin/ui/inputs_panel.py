"""The dock's *Inputs* box: layers, sensor, units, model picker and the band table (thin widgets).

Matching lives in :mod:`plugin.bands`; this panel shows the plan and lets the analyst change a row.
"""

from __future__ import annotations

from qgis.core import QgsMapLayerProxyModel, QgsRasterLayer
from qgis.gui import QgsCollapsibleGroupBox, QgsMapLayerComboBox
from qgis.PyQt.QtCore import QCoreApplication, Qt
from qgis.PyQt.QtGui import QBrush, QColor
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QWidget,
)

from ..bands import (
    BandPlan,
    layer_band_descriptions,
    layer_facts,
    match_bands,
    plan_optical_bands,
    sensor_label,
)
from ..contract import OPTICAL_UNITS, SAR_UNITS, SENSOR_NAMES, UNIT_HELP
from .widgets import choice_combo, optional_raster_combo, section, side_by_side

AUTO = "auto"
#: Shown for model bands the backend fills by wavelength interpolation.
FILL_COLOUR = QColor(200, 110, 0)


def _tr(text: str) -> str:
    return QCoreApplication.translate("InputsPanel", text)


class InputsPanel(QgsCollapsibleGroupBox):
    """Optical and radar layers, an optional embedding field, sensor and units, the model row and the band
    table."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        section(self, self.tr("Inputs"), "TerraprobeInputsBox")
        self.band_plan: BandPlan | None = None
        form = QFormLayout(self)
        self.optical_combo = QgsMapLayerComboBox(filters=QgsMapLayerProxyModel.RasterLayer, toolTip=self.tr(
            "Optical layer (Sentinel-2 or any layer whose bands the model knows)"))
        form.addRow(self.tr("Optical"), self.optical_combo)
        self.sar_combo = optional_raster_combo(self.tr(
            "Optional radar layer (Sentinel-1 VV/VH), aligned onto the optical grid"))
        form.addRow(self.tr("Radar"), self.sar_combo)
        self.embedding_field_combo = optional_raster_combo(self.tr(
            "Optional embedding field: a raster made by Embed, or any multi-band float raster such as an "
            "AlphaEarth or TESSERA export. When set, Cluster, Classify, Segment and Similarity run on it "
            "instead of the encoder"))
        form.addRow(self.tr("Embedding field"), self.embedding_field_combo)
        self.sensor_combo = choice_combo(((name, sensor_label(name)) for name in SENSOR_NAMES), self.tr(
            "Which sensor the optical layer comes from. Auto recognises it from the band names; other "
            "sensors than Sentinel-2 are matched to the model's bands by wavelength"), _tr)
        self.sensor_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.sensor_combo.setMinimumContentsLength(12)
        form.addRow(self.tr("Sensor"), self.sensor_combo)
        self.optical_units_combo = self._units_combo(OPTICAL_UNITS, self.tr(
            "Units of the optical values; auto detects them from the data type, metadata and values"))
        form.addRow(self.tr("Optical units"), self.optical_units_combo)
        self.sar_units_combo = self._units_combo(SAR_UNITS, self.tr(
            "Units of the radar values (the model expects dB); auto detects them"))
        form.addRow(self.tr("Radar units"), self.sar_units_combo)
        form.addRow(self.tr("Model"), self._model_row())
        self.model_label = QLabel(wordWrap=True, styleSheet="color: palette(mid);")
        form.addRow("", self.model_label)
        self.band_table = QTableWidget(0, 2, minimumHeight=200, toolTip=self.tr(
            "Which layer band feeds each model band (matched from band names; editable)"))
        self.band_table.setHorizontalHeaderLabels([self.tr("Model band"), self.tr("Layer band")])
        self.band_table.verticalHeader().setVisible(False)
        self.band_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.band_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        form.addRow(self.band_table)
        self.band_note = QLabel(wordWrap=True, visible=False)
        form.addRow(self.band_note)

    def _model_row(self) -> QHBoxLayout:
        self.model_combo = QComboBox(toolTip=self.tr("Encoder: the bundled default, or a model file you "
                                                     "added"))
        self.model_combo.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.add_model_button = QToolButton(text=self.tr("Add…"), toolTip=self.tr(
            "Add a model file (Terraprobe .safetensors + .json, or an imported CROMA checkpoint)"))
        self.get_models_button = QToolButton(text=self.tr("Get models…"), toolTip=self.tr(
            "Download CROMA base/large (verified, kept across plugin upgrades) or see the bundled models"))
        return side_by_side(self.model_combo, self.add_model_button, self.get_models_button)

    def _units_combo(self, choices: tuple[str, ...], tooltip: str) -> QComboBox:
        combo = QComboBox()
        combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(8)
        for index, name in enumerate(choices):
            combo.addItem(self.tr(name), name)
            combo.setItemData(index, _tr(UNIT_HELP.get(name, name)), Qt.ToolTipRole)
        combo.setProperty("base_tooltip", tooltip)
        combo.currentIndexChanged.connect(lambda _index, c=combo: self._explain_units(c))
        self._explain_units(combo)
        return combo

    @staticmethod
    def _explain_units(combo: QComboBox) -> None:
        name = combo.currentData()
        help_text = _tr(UNIT_HELP.get(name, "")) if name else ""
        base = combo.property("base_tooltip") or ""
        combo.setToolTip(f"{base}\n{name}: {help_text}" if help_text else base)

    # -- choices -------------------------------------------------------------------------------
    @staticmethod
    def _choice(combo: QComboBox, allowed: tuple[str, ...]) -> str:
        value = combo.currentData()
        return value if value in allowed else AUTO

    @staticmethod
    def _set_choice(combo: QComboBox, value: str | None) -> bool:
        index = combo.findData(value or AUTO)
        if index < 0:
            return False
        combo.setCurrentIndex(index)
        return True

    def sensor_choice(self) -> str:
        """The chosen ``--sensor`` (``"auto"`` when nothing valid is selected)."""
        return self._choice(self.sensor_combo, SENSOR_NAMES)

    def optical_units_choice(self) -> str:
        return self._choice(self.optical_units_combo, OPTICAL_UNITS)

    def sar_units_choice(self) -> str:
        return self._choice(self.sar_units_combo, SAR_UNITS)

    def set_sensor(self, name: str | None) -> bool:
        """Select a sensor preset; an unknown name changes nothing and returns ``False``."""
        return self._set_choice(self.sensor_combo, name)

    def set_units(self, optical: str | None = None, sar: str | None = None) -> bool:
        """Select optical and/or radar units; unknown names change nothing (returns ``False``)."""
        ok = True
        if optical is not None:
            ok = self._set_choice(self.optical_units_combo, optical) and ok
        if sar is not None:
            ok = self._set_choice(self.sar_units_combo, sar) and ok
        return ok

    # -- band table ----------------------------------------------------------------------------
    def update_band_table(self, modalities: dict[str, list[str]], on_change) -> None:
        """Rebuild the table for the model's ``modalities``; ``on_change`` is called when a row changes."""
        sources = {"optical": self.optical_combo.currentLayer(), "sar": self.sar_combo.currentLayer()}
        rows: list[tuple[str, str, QgsRasterLayer | None]] = []
        for modality in ("optical", "sar"):
            layer = sources[modality]
            if modality not in modalities or (modality == "sar" and layer is None):
                continue
            rows += [(modality, band, layer) for band in modalities[modality]]
        self.band_table.setRowCount(len(rows))
        matches: dict[str, list[int | None]] = {}
        self.band_plan = None
        optical, sar = sources["optical"], sources["sar"]
        if "optical" in modalities and optical is not None:
            self.band_plan = plan_optical_bands(modalities["optical"], layer_facts(optical),
                                                self.sensor_choice())
            matches["optical"] = self.band_plan.mapping
        if "sar" in modalities and sar is not None:
            matches["sar"] = match_bands(modalities["sar"], layer_band_descriptions(sar))
        can_fill = self.band_plan is not None and self.band_plan.can_fill
        counters = {"optical": 0, "sar": 0}
        for row, (modality, band, layer) in enumerate(rows):
            text = band if modality == "optical" else self.tr("{band} (radar)").format(band=band)
            label = QTableWidgetItem(text)
            label.setFlags(Qt.ItemIsEnabled)
            self.band_table.setItem(row, 0, label)
            combo = QComboBox()
            fills = modality == "optical" and can_fill
            combo.addItem(self.tr("— spectral fill —") if fills else self.tr("— none —"), None)
            if fills:
                combo.setItemData(0, self.tr("No layer band: the backend interpolates this band from the "
                                             "neighbouring wavelengths (an approximation)"), Qt.ToolTipRole)
            if layer is not None:
                for index in range(1, layer.bandCount() + 1):
                    combo.addItem(layer.bandName(index), index)
                match = matches[modality][counters[modality]]
                if match is not None and combo.findData(match) >= 0:
                    combo.setCurrentIndex(combo.findData(match))
            counters[modality] += 1
            combo.setProperty("modality", modality)
            combo.setProperty("model_band", band)
            combo.currentIndexChanged.connect(on_change)
            self.band_table.setCellWidget(row, 1, combo)
        self.band_table.resizeRowsToContents()
        self.sar_units_combo.setEnabled(sar is not None)

    def band_mapping(self, modality: str) -> list[int | None]:
        """The layer band chosen for each model band of ``modality`` (table order = model order)."""
        mapping = []
        for row in range(self.band_table.rowCount()):
            combo = self.band_table.cellWidget(row, 1)
            if combo is not None and combo.property("modality") == modality:
                mapping.append(combo.currentData())
        return mapping

    def set_band(self, modality: str, model_band_row: int, layer_band: int | None) -> None:
        """Set the layer band of the ``model_band_row``-th model band of ``modality``."""
        rows = [r for r in range(self.band_table.rowCount())
                if self.band_table.cellWidget(r, 1).property("modality") == modality]
        combo = self.band_table.cellWidget(rows[model_band_row], 1)
        combo.setCurrentIndex(combo.findData(layer_band) if layer_band else 0)

    def filled_bands(self, optical_bands: list[str]) -> list[str]:
        """Model optical bands without a layer band that the backend fills spectrally (in model order)."""
        plan = self.band_plan
        if plan is None or not plan.can_fill:
            return []
        return [band for band, index in zip(optical_bands, self.band_mapping("optical")) if index is None]

    def mark_filled_rows(self, filled: list[str]) -> None:
        """Colour the model bands the backend fills, with a tooltip saying so."""
        for row in range(self.band_table.rowCount()):
            item = self.band_table.item(row, 0)
            combo = self.band_table.cellWidget(row, 1)
            if item is None or combo is None:
                continue
            is_filled = combo.property("modality") == "optical" and item.text() in filled
            item.setForeground(QBrush(FILL_COLOUR) if is_filled else QBrush())
            item.setToolTip(self.tr("Spectrally filled from neighbouring wavelengths (approximation)")
                            if is_filled else "")

    def show_band_note(self, filled: list[str]) -> None:
        """Name the sensor the layer is read as and the model bands that will be spectrally filled."""
        plan = self.band_plan
        if plan is None or not plan.sensor:
            self.band_note.setVisible(False)
            return
        sensor = _tr(sensor_label(plan.sensor))
        if not plan.detected:
            text = self.tr("Read as {sensor} (your choice).").format(sensor=sensor)
        elif not plan.named:
            text = self.tr("Read as {sensor}: order assumed (no band names); check the table.").format(
                sensor=sensor)
        else:
            text = self.tr("Read as {sensor} (recognised from the layer).").format(sensor=sensor)
        self.band_note.setToolTip(plan.reason.replace(",", ", "))
        if plan.error:
            text += " " + self.tr("Map the bands by hand: {error}").format(error=plan.error)
        if filled:
            text += " " + self.tr("Spectrally filled (approximation): {bands}.").format(
                bands=", ".join(filled))
            self.band_note.setStyleSheet(f"color: {FILL_COLOUR.name()};")
        else:
            self.band_note.setStyleSheet("")
        self.band_note.setText(text)
        self.band_note.setVisible(True)
