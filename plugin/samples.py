"""Sample polygons for Classify/Segment/Similarity: a ready-to-digitise layer, and export to a file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsEditorWidgetSetup,
    QgsFeature,
    QgsField,
    QgsFields,
    QgsProject,
    QgsVectorFileWriter,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

DEFAULT_CLASSES = ("water", "forest", "cropland", "built-up", "bare soil")
CLASS_FIELD = "class"


def create_sample_layer(path: Path, crs: QgsCoordinateReferenceSystem,
                        class_names: Sequence[str] = DEFAULT_CLASSES, name: str = "Terraprobe samples",
                        project: QgsProject | None = None) -> QgsVectorLayer:
    """Create a GeoPackage polygon layer with a ``class`` field (value map of ``class_names``).

    The layer is added to the project and put in editing mode, ready to digitise.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = QgsFields()
    fields.append(QgsField(CLASS_FIELD, QVariant.String, "string", 64))
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = "samples"
    writer = QgsVectorFileWriter.create(str(path), fields, QgsWkbTypes.MultiPolygon, crs,
                                        QgsProject.instance().transformContext(), options)
    if writer.hasError() != QgsVectorFileWriter.NoError:
        raise RuntimeError(f"cannot create {path}: {writer.errorMessage()}")
    del writer  # closes the file
    layer = QgsVectorLayer(f"{path}|layername=samples", name, "ogr")
    if not layer.isValid():
        raise RuntimeError(f"cannot open the new sample layer {path}")
    index = layer.fields().indexOf(CLASS_FIELD)
    value_map = {"map": [{label: label} for label in class_names]}
    layer.setEditorWidgetSetup(index, QgsEditorWidgetSetup("ValueMap", value_map))
    (project or QgsProject.instance()).addMapLayer(layer)
    layer.startEditing()
    return layer


class SamplesSnapshot:
    """Polygons and one field of a layer, copied in the GUI thread, written to GeoPackage in a task.

    Pending (unsaved) edits are included, since features come from the layer's edit buffer.
    """

    def __init__(self, layer: QgsVectorLayer, field_name: str) -> None:
        if layer.fields().indexOf(field_name) < 0:
            raise ValueError(f"layer {layer.name()!r} has no field {field_name!r}")
        self.crs = layer.crs()
        self.field_name = field_name
        self.fields = QgsFields()
        self.fields.append(layer.fields().field(field_name))
        self.features: list[QgsFeature] = []
        for source in layer.getFeatures():
            if not source.hasGeometry():
                continue
            feature = QgsFeature(self.fields)
            feature.setGeometry(source.geometry())
            feature.setAttributes([source[field_name]])
            self.features.append(feature)
        if not self.features:
            raise ValueError(f"layer {layer.name()!r} has no polygons yet: draw some samples first")

    def write(self, path: Path) -> str:
        """Write the snapshot to a GeoPackage (any thread)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName = "GPKG"
        options.layerName = "samples"
        from qgis.core import QgsCoordinateTransformContext

        writer = QgsVectorFileWriter.create(str(path), self.fields, QgsWkbTypes.MultiPolygon, self.crs,
                                            QgsCoordinateTransformContext(), options)
        if writer.hasError() != QgsVectorFileWriter.NoError:
            raise RuntimeError(f"cannot write samples to {path}: {writer.errorMessage()}")
        for feature in self.features:
            geometry = feature.geometry()
            geometry.convertToMultiType()
            feature.setGeometry(geometry)
            writer.addFeature(feature)
        del writer
        return str(path)
