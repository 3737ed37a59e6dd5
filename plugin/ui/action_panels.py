"""The dock's lower boxes: area and processing, actions, *Advanced* options, progress (thin widgets)."""

from __future__ import annotations

from qgis.core import QgsFieldProxyModel, QgsMapLayerProxyModel
from qgis.gui import QgsCollapsibleGroupBox, QgsFieldComboBox, QgsMapLayerComboBox
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..contract import requests as _requests
from ..requests_builder import (
    ADVANCED_OPTIONS,
    CLASSIFIER_LABELS,
    CLUSTER_METHOD_LABELS,
    FIELD_CHOICES,
    OFFERED,
)
from ..settings import DEVICES
from .accuracy_table import AccuracyTable

#: Area choices: key (the logic's) and label (shown, translated in the panel).
AREA_KEYS = ("layer", "canvas", "drawn")


def _tr(text: str) -> str:
    return QCoreApplication.translate("ActionPanels", text)


class AreaBox(QgsCollapsibleGroupBox):
    """Area (layer, canvas or drawn rectangle), window and device."""

    def __init__(self, device: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Area and processing"))
        self.setObjectName("TerraprobeAreaBox")
        self.setSaveCollapsedState(False)
        form = QFormLayout(self)
        row = QHBoxLayout()
        self.area_combo = QComboBox()
        labels = (self.tr("Layer extent"), self.tr("Map canvas extent"), self.tr("Drawn rectangle"))
        for key, label in zip(AREA_KEYS, labels):
            self.area_combo.addItem(label, key)
        self.draw_button = QToolButton()
        self.draw_button.setText(self.tr("Draw"))
        self.draw_button.setCheckable(True)
        self.draw_button.setToolTip(self.tr("Drag a rectangle on the map"))
        row.addWidget(self.area_combo, 1)
        row.addWidget(self.draw_button)
        form.addRow(self.tr("Area"), row)
        self.window_spin = QSpinBox()
        window = OFFERED["window"][0].plugin
        self.window_spin.setRange(window.minimum, window.maximum)
        self.window_spin.setSingleStep(window.step)
        self.window_spin.setValue(int(_requests.DEFAULTS["window"]))
        self.window_spin.setSuffix(self.tr(" px"))
        self.window_spin.setToolTip(self.tr("Window the encoder sees at once (multiple of 8)"))
        form.addRow(self.tr("Window"), self.window_spin)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setCurrentText(device)
        form.addRow(self.tr("Device"), self.device_combo)
        self.replace_check = QCheckBox(self.tr("Replace previous result"))
        self.replace_check.setToolTip(self.tr(
            "Off: each run adds new layers named by what made them (model, classifier, k, date), beside the "
            "earlier ones. On: a run replaces the earlier result of the same action on the same layer"))
        form.addRow(self.tr("Results"), self.replace_check)
        folder_row = QHBoxLayout()
        self.folder_label = QLabel()
        self.folder_label.setWordWrap(True)
        self.folder_button = QToolButton()
        self.folder_button.setText(self.tr("Folder…"))
        self.folder_button.setPopupMode(QToolButton.InstantPopup)
        self.folder_button.setToolTip(self.tr("Where results and new sample layers are saved"))
        menu = QMenu(self.folder_button)
        self.choose_folder_action = menu.addAction(self.tr("Choose a folder…"))
        self.project_folder_action = menu.addAction(self.tr("Beside the project (terraprobe/)"))
        self.folder_button.setMenu(menu)
        folder_row.addWidget(self.folder_label, 1)
        folder_row.addWidget(self.folder_button)
        form.addRow(self.tr("Saved in"), folder_row)


class ActionsBox(QgsCollapsibleGroupBox):
    """Embed, Similarity, Cluster (method, k or minimum size), samples and class field, Classify (classifier,
    band statistics), Segment."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Actions"))
        self.setObjectName("TerraprobeActionsBox")
        self.setSaveCollapsedState(False)
        grid = QGridLayout(self)
        self.embed_button = QPushButton(self.tr("Embed"))
        self.embed_button.setToolTip(self.tr("Compute embeddings and an RGB preview (first 3 principal "
                                             "components)"))
        grid.addWidget(self.embed_button, 0, 0)
        self.similarity_button = QPushButton(self.tr("Similarity…"))
        self.similarity_button.setCheckable(True)
        self.similarity_button.setToolTip(self.tr("Click a point on the map to find similar places"))
        grid.addWidget(self.similarity_button, 0, 1, 1, 2)
        self.cluster_method_combo = QComboBox()
        for key, label in CLUSTER_METHOD_LABELS.items():
            self.cluster_method_combo.addItem(_tr(label), key)
        self.cluster_method_combo.setToolTip(self.tr("k-means: k clusters; HDBSCAN: density clusters, no k, "
                                                     "unclustered patches in a grey noise class"))
        self.k_spin = QSpinBox()
        k = OFFERED["k"][0].plugin
        self.k_spin.setRange(k.minimum, k.maximum)
        self.k_spin.setValue(k.default)
        self.k_spin.setPrefix(self.tr("k = "))
        self.k_spin.setToolTip(self.tr("Number of clusters"))
        self.min_cluster_spin = QSpinBox()
        self.min_cluster_spin.setRange(0, 100_000)
        self.min_cluster_spin.setSpecialValueText(self.tr("min size: auto"))
        self.min_cluster_spin.setPrefix(self.tr("min size "))
        self.min_cluster_spin.setToolTip(self.tr("HDBSCAN's smallest cluster, in sampled patches (auto: 1 % "
                                                 "of the sample; --min-cluster-size)"))
        self.cluster_button = QPushButton(self.tr("Cluster"))
        self.cluster_button.setToolTip(self.tr("Clusters of the embeddings (k-means or HDBSCAN)"))
        cluster_row = QHBoxLayout()
        cluster_row.addWidget(self.cluster_method_combo, 1)
        cluster_row.addWidget(self.k_spin)
        cluster_row.addWidget(self.min_cluster_spin)
        grid.addLayout(cluster_row, 1, 0, 1, 2)
        grid.addWidget(self.cluster_button, 1, 2)
        self.cluster_method_combo.currentIndexChanged.connect(self._show_cluster_options)
        self._show_cluster_options()
        self.samples_combo = QgsMapLayerComboBox()
        self.samples_combo.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        self.samples_combo.setAllowEmptyLayer(True)
        self.samples_combo.setToolTip(self.tr("Sample polygons with a class field"))
        self.field_combo = QgsFieldComboBox()
        self.field_combo.setFilters(QgsFieldProxyModel.String | QgsFieldProxyModel.Int
                                    | QgsFieldProxyModel.LongLong)
        self.field_combo.setAllowEmptyFieldName(True)
        self.field_combo.setToolTip(self.tr("The field holding each polygon's class (not an identifier)"))
        self.new_samples_button = QToolButton()
        self.new_samples_button.setText(self.tr("New…"))
        self.new_samples_button.setToolTip(self.tr("Create a sample polygon layer (GeoPackage, field "
                                                   "'class') and start digitising"))
        grid.addWidget(QLabel(self.tr("Samples")), 2, 0)
        grid.addWidget(self.samples_combo, 2, 1)
        grid.addWidget(self.new_samples_button, 2, 2)
        grid.addWidget(QLabel(self.tr("Class field")), 3, 0)
        grid.addWidget(self.field_combo, 3, 1, 1, 2)
        self.classifier_combo = QComboBox()
        for key, label in CLASSIFIER_LABELS.items():
            self.classifier_combo.addItem(_tr(label), key)
        self.classifier_combo.setToolTip(self.tr("kNN vote in embedding space, or a random forest / gradient "
                                                 "boosting on the embeddings (--classifier)"))
        self.band_stats_check = QCheckBox(self.tr("+ band statistics"))
        self.band_stats_check.setToolTip(self.tr("Add each patch's band mean and std of the optical layer to "
                                                 "the embeddings (--band-stats; needs the optical layer)"))
        grid.addWidget(QLabel(self.tr("Classifier")), 4, 0)
        classifier_row = QHBoxLayout()
        classifier_row.addWidget(self.classifier_combo, 1)
        classifier_row.addWidget(self.band_stats_check)
        grid.addLayout(classifier_row, 4, 1, 1, 2)
        self.classify_button = QPushButton(self.tr("Classify"))
        self.segment_button = QPushButton(self.tr("Segment"))
        self.classify_button.setToolTip(self.tr("Label every pixel with the nearest samples' class"))
        self.segment_button.setToolTip(self.tr("Train a small segmentation head on the samples and apply it"))
        grid.addWidget(self.classify_button, 5, 0, 1, 2)
        grid.addWidget(self.segment_button, 5, 2)
        grid.setColumnStretch(1, 1)
        for button in self.run_buttons():
            button.setProperty("base_tooltip", button.toolTip())

    def _show_cluster_options(self, *_args) -> None:
        hdbscan = self.cluster_method_combo.currentData() == "hdbscan"
        self.k_spin.setVisible(not hdbscan)
        self.min_cluster_spin.setVisible(hdbscan)

    def cluster_options(self) -> dict:
        """Cluster's request fields: ``method`` and ``k`` (k-means) or ``min_cluster_size`` (HDBSCAN)."""
        if self.cluster_method_combo.currentData() == "hdbscan":
            return {"method": "hdbscan", "min_cluster_size": self.min_cluster_spin.value() or None}
        return {"k": self.k_spin.value()}

    def classify_options(self) -> dict:
        """Classify's request fields: ``classifier`` and ``band_stats``."""
        return {"classifier": self.classifier_combo.currentData(),
                "band_stats": self.band_stats_check.isChecked() or None}

    def run_buttons(self) -> tuple[QPushButton, ...]:
        return (self.embed_button, self.similarity_button, self.cluster_button, self.classify_button,
                self.segment_button)


class AdvancedBox(QgsCollapsibleGroupBox):
    """Encoder tiling and the downstream heads' options, named as the Processing parameters.

    ``spins`` maps each :data:`plugin.requests_builder.ADVANCED_OPTIONS` name to its spin box;
    ``normalise_combo`` and ``distance_combo`` (Classify, Similarity, Change) choose how embedding vectors
    are read and compared (``FIELD_CHOICES``; Processing's NORMALISE and DISTANCE).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Advanced"))
        self.setObjectName("TerraprobeAdvancedBox")
        form = QFormLayout(self)
        self.spins: dict[str, QSpinBox] = {}
        for option in ADVANCED_OPTIONS:
            spin = QSpinBox()
            spin.setRange(option.minimum, option.maximum)
            spin.setSingleStep(option.step)
            spin.setValue(option.default)
            if option.name == "overlap":
                spin.setSuffix(self.tr(" px"))
            spin.setToolTip(_tr(option.help))
            spin.setObjectName(option.parameter)
            form.addRow(_tr(option.label), spin)
            self.spins[option.name] = spin
        self.normalise_combo = self._choice_combo("normalise", self.tr(
            "How Classify, Similarity and Change read the embedding vectors (--normalise): auto scales "
            "Embed's and unit-length fields to length 1, L2 scales every vector to length 1, as they are "
            "keeps their lengths (magnitudes then count)"))
        form.addRow(self.tr("Vectors"), self.normalise_combo)
        self.distance_combo = self._choice_combo("distance", self.tr(
            "How Classify's kNN, Similarity and Change compare vectors (--distance): cosine (angle) or "
            "euclidean (straight-line, after the Vectors choice)"))
        form.addRow(self.tr("Distance"), self.distance_combo)
        self.setSaveCollapsedState(False)
        self.setCollapsed(True)

    @staticmethod
    def _choice_combo(name: str, tooltip: str) -> QComboBox:
        combo = QComboBox()
        for key, label in FIELD_CHOICES[name].items():
            combo.addItem(_tr(label), key)
        combo.setToolTip(tooltip)
        combo.setObjectName(name.upper())
        return combo

    def values(self) -> dict:
        """Every option's value, by request field name (``normalise`` and ``distance``: the choice)."""
        return {**{name: spin.value() for name, spin in self.spins.items()},
                "normalise": self.normalise_combo.currentData(),
                "distance": self.distance_combo.currentData()}


class ProgressBox(QWidget):
    """Progress bar, Cancel, the status line and Classify's per-class accuracy table."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.setToolTip(self.tr("Stop the running action (nothing is added)"))
        self.cancel_button.setEnabled(False)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.status_label = QLabel(self.tr("Ready."))
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        self.accuracy_table = AccuracyTable()
        layout.addWidget(self.accuracy_table)
