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
)
from ..settings import DEVICES
from .accuracy_table import AccuracyTable
from .widgets import choice_combo, offered_spin, run_button, section, side_by_side

#: Area choices: key (the logic's) and label (shown, translated in the panel).
AREA_KEYS = ("layer", "canvas", "drawn")


def _tr(text: str) -> str:
    return QCoreApplication.translate("ActionPanels", text)


class AreaBox(QgsCollapsibleGroupBox):
    """Area (layer, canvas or drawn rectangle), window and device."""

    def __init__(self, device: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        section(self, self.tr("Area and processing"), "TerraprobeAreaBox")
        form = QFormLayout(self)
        labels = (self.tr("Layer extent"), self.tr("Map canvas extent"), self.tr("Drawn rectangle"))
        self.area_combo = choice_combo(zip(AREA_KEYS, labels))
        self.draw_button = QToolButton(text=self.tr("Draw"), checkable=True,
                                       toolTip=self.tr("Drag a rectangle on the map"))
        form.addRow(self.tr("Area"), side_by_side((self.area_combo, 1), self.draw_button))
        self.window_spin = offered_spin("window", int(_requests.DEFAULTS["window"]))
        self.window_spin.setSuffix(self.tr(" px"))
        self.window_spin.setToolTip(self.tr("Window the encoder sees at once (multiple of 8)"))
        form.addRow(self.tr("Window"), self.window_spin)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.device_combo.setCurrentText(device)
        form.addRow(self.tr("Device"), self.device_combo)
        self.replace_check = QCheckBox(self.tr("Replace previous result"), toolTip=self.tr(
            "Off: each run adds new layers named by what made them (model, classifier, k, date), beside the "
            "earlier ones. On: a run replaces the earlier result of the same action on the same layer"))
        form.addRow(self.tr("Results"), self.replace_check)
        self.folder_label = QLabel(wordWrap=True)
        self.folder_button = QToolButton(text=self.tr("Folder…"), popupMode=QToolButton.InstantPopup,
                                         toolTip=self.tr("Where results and new sample layers are saved"))
        menu = QMenu(self.folder_button)
        self.choose_folder_action = menu.addAction(self.tr("Choose a folder…"))
        self.project_folder_action = menu.addAction(self.tr("Beside the project (terraprobe/)"))
        self.folder_button.setMenu(menu)
        form.addRow(self.tr("Saved in"), side_by_side((self.folder_label, 1), self.folder_button))


class ActionsBox(QgsCollapsibleGroupBox):
    """Embed, Similarity, Cluster (method, k or minimum size), samples and class field, Classify (classifier,
    band statistics), Segment."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        section(self, self.tr("Actions"), "TerraprobeActionsBox")
        grid = QGridLayout(self)
        self.embed_button = run_button(self.tr("Embed"), self.tr(
            "Compute embeddings and an RGB preview (first 3 principal components)"))
        grid.addWidget(self.embed_button, 0, 0)
        self.similarity_button = run_button(self.tr("Similarity…"), self.tr(
            "Click a point on the map to find similar places"), checkable=True)
        grid.addWidget(self.similarity_button, 0, 1, 1, 2)
        self.cluster_method_combo = choice_combo(CLUSTER_METHOD_LABELS.items(), self.tr(
            "k-means: k clusters; HDBSCAN: density clusters, no k, unclustered patches in a grey noise "
            "class"), _tr)
        self.k_spin = offered_spin("k")
        self.k_spin.setPrefix(self.tr("k = "))
        self.k_spin.setToolTip(self.tr("Number of clusters"))
        self.min_cluster_spin = QSpinBox(maximum=100_000, specialValueText=self.tr("min size: auto"),
                                         prefix=self.tr("min size "), toolTip=self.tr(
            "HDBSCAN's smallest cluster, in sampled patches (auto: 1 % of the sample; --min-cluster-size)"))
        self.cluster_button = run_button(self.tr("Cluster"), self.tr(
            "Clusters of the embeddings (k-means or HDBSCAN)"))
        cluster_row = side_by_side((self.cluster_method_combo, 1), self.k_spin, self.min_cluster_spin)
        grid.addLayout(cluster_row, 1, 0, 1, 2)
        grid.addWidget(self.cluster_button, 1, 2)
        self.cluster_method_combo.currentIndexChanged.connect(self._show_cluster_options)
        self._show_cluster_options()
        self.samples_combo = QgsMapLayerComboBox(filters=QgsMapLayerProxyModel.PolygonLayer,
                                                 allowEmptyLayer=True,
                                                 toolTip=self.tr("Sample polygons with a class field"))
        self.field_combo = QgsFieldComboBox(
            filters=QgsFieldProxyModel.String | QgsFieldProxyModel.Int | QgsFieldProxyModel.LongLong,
            allowEmptyFieldName=True,
            toolTip=self.tr("The field holding each polygon's class (not an identifier)"))
        self.new_samples_button = QToolButton(text=self.tr("New…"), toolTip=self.tr(
            "Create a sample polygon layer (GeoPackage, field 'class') and start digitising"))
        grid.addWidget(QLabel(self.tr("Samples")), 2, 0)
        grid.addWidget(self.samples_combo, 2, 1)
        grid.addWidget(self.new_samples_button, 2, 2)
        grid.addWidget(QLabel(self.tr("Class field")), 3, 0)
        grid.addWidget(self.field_combo, 3, 1, 1, 2)
        self.classifier_combo = choice_combo(CLASSIFIER_LABELS.items(), self.tr(
            "kNN vote in embedding space, or a random forest / gradient boosting on the embeddings "
            "(--classifier)"), _tr)
        self.band_stats_check = QCheckBox(self.tr("+ band statistics"), toolTip=self.tr(
            "Add each patch's band mean and std of the optical layer to the embeddings (--band-stats; needs "
            "the optical layer)"))
        grid.addWidget(QLabel(self.tr("Classifier")), 4, 0)
        grid.addLayout(side_by_side((self.classifier_combo, 1), self.band_stats_check), 4, 1, 1, 2)
        self.classify_button = run_button(self.tr("Classify"), self.tr(
            "Label every pixel with the nearest samples' class"))
        self.segment_button = run_button(self.tr("Segment"), self.tr(
            "Train a small segmentation head on the samples and apply it"))
        grid.addWidget(self.classify_button, 5, 0, 1, 2)
        grid.addWidget(self.segment_button, 5, 2)
        grid.setColumnStretch(1, 1)

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


class AdvancedBox(QgsCollapsibleGroupBox):
    """Encoder tiling and the downstream heads' options, named as the Processing parameters.

    ``spins`` maps each :data:`plugin.requests_builder.ADVANCED_OPTIONS` name to its spin box;
    ``normalise_combo`` and ``distance_combo`` (Classify, Similarity, Change) choose how embedding vectors
    are read and compared (``FIELD_CHOICES``; Processing's NORMALISE and DISTANCE).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        section(self, self.tr("Advanced"), "TerraprobeAdvancedBox", collapsed=True)
        form = QFormLayout(self)
        self.spins: dict[str, QSpinBox] = {}
        for option in ADVANCED_OPTIONS:
            spin = QSpinBox(minimum=option.minimum, maximum=option.maximum, singleStep=option.step,
                            value=option.default)
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

    @staticmethod
    def _choice_combo(name: str, tooltip: str) -> QComboBox:
        combo = choice_combo(FIELD_CHOICES[name].items(), tooltip, _tr)
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
        self.progress_bar = QProgressBar(minimum=0, maximum=100, value=0)
        self.cancel_button = QPushButton(self.tr("Cancel"), enabled=False,
                                         toolTip=self.tr("Stop the running action (nothing is added)"))
        layout.addLayout(side_by_side((self.progress_bar, 1), self.cancel_button))
        self.status_label = QLabel(self.tr("Ready."), wordWrap=True)
        layout.addWidget(self.status_label)
        self.accuracy_table = AccuracyTable()
        layout.addWidget(self.accuracy_table)
