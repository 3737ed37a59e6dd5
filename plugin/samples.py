"""Sample polygons for Classify/Segment/Similarity: a ready-to-digitise layer, and export to a file."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsCoordinateReferenceSystem,
    QgsEditorWidgetSetup,
    QgsFeature,
    QgsField,
    QgsFields,
    QgsFillSymbol,
    QgsProject,
    QgsRendererCategory,
    QgsVectorFileWriter,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from .contract import outputs as _outputs
from .i18n import tr

DEFAULT_CLASSES = ("water", "forest", "cropland", "built-up", "bare soil")
CLASS_FIELD = "class"
#: Field names that say "class" in the usual ways, preferred in this order.
CLASS_LIKE = ("class", "classname", "class_name", "label", "landcover", "land_cover", "lc", "type")
#: Identifier-like names: never a class field, whatever their values.
ID_LIKE = re.compile(r"^(id|fid|gid|oid|objectid|ogc_fid|uid|pk|.*_id|id_.*)$", re.IGNORECASE)
INTEGER_TYPES = (QVariant.Int, QVariant.LongLong, QVariant.UInt, QVariant.ULongLong)


def pick_class_field(layer: QgsVectorLayer) -> str | None:
    """The field of ``layer`` that most likely holds each polygon's class, or ``None``.

    A field named like a class (``class``, ``label``…) wins; else a text field whose values repeat;
    else an integer field whose values repeat. Identifier-like fields (``id``, ``fid``, ``*_id``)
    and integer fields with one value per polygon are never picked: they would make one class per
    polygon.
    """
    fields = layer.fields()
    usable = [f for f in fields if f.type() == QVariant.String or f.type() in INTEGER_TYPES]
    by_name = {f.name().lower(): f.name() for f in usable}
    for name in CLASS_LIKE:
        if name in by_name:
            return by_name[name]
    count = layer.featureCount()
    candidates = [f for f in usable if not ID_LIKE.match(f.name())]
    for wanted in ("text", "integer"):
        for field in candidates:
            is_text = field.type() == QVariant.String
            if is_text != (wanted == "text"):
                continue
            distinct = len(layer.uniqueValues(fields.indexOf(field.name())))
            if 1 <= distinct < count or (is_text and count == 1):
                return field.name()
    return None


def one_class_problem(layer: QgsVectorLayer, field_name: str) -> str | None:
    """Why ``layer``'s polygons cannot train a classifier: fewer than two classes in ``field_name``
    (``None``: two or more). Pending edits count; empty values are not a class."""
    index = layer.fields().indexOf(field_name)
    if index < 0:
        return None
    classes = sorted(str(v) for v in layer.uniqueValues(index) if v is not None and str(v).strip()
                     and str(v) != "NULL")
    if len(classes) >= 2:
        return None
    if not classes:
        return tr("the samples in '{layer}' have no class in '{field}' yet: give each polygon a "
                  "class").format(layer=layer.name(), field=field_name)
    return tr("the samples in '{layer}' have one class only ('{name}'): Classify and Segment need "
              "polygons of at least two classes").format(layer=layer.name(), name=classes[0])


def thin_classes(class_counts: Mapping[str, int], neighbors: int) -> dict[str, int]:
    """Classes with fewer samples than the ``neighbors`` of the kNN vote (they can be outvoted)."""
    return {str(name): int(n) for name, n in class_counts.items() if int(n) < neighbors}


def create_sample_layer(path: Path, crs: QgsCoordinateReferenceSystem,
                        class_names: Sequence[str] = DEFAULT_CLASSES, name: str | None = None,
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
        raise RuntimeError(tr("cannot create {path}: {error}").format(path=path, error=writer.errorMessage()))
    del writer  # closes the file
    layer = QgsVectorLayer(f"{path}|layername=samples", name or tr("Terraprobe samples"), "ogr")
    if not layer.isValid():
        raise RuntimeError(tr("cannot open the new sample layer {path}").format(path=path))
    index = layer.fields().indexOf(CLASS_FIELD)
    value_map = {"map": [{label: label} for label in class_names]}
    layer.setEditorWidgetSetup(index, QgsEditorWidgetSetup("ValueMap", value_map))
    layer.setRenderer(class_renderer(class_names))
    (project or QgsProject.instance()).addMapLayer(layer)
    layer.startEditing()
    return layer


def class_renderer(class_names: Sequence[str]) -> QgsCategorizedSymbolRenderer:
    """A half-transparent fill of its own colour per class (land-cover colours for known names), so the
    analyst sees which class each drawn polygon got."""
    categories = []
    for name, colour in zip(class_names, _outputs.label_colors(list(class_names))):
        symbol = QgsFillSymbol.createSimple({"color": colour, "outline_color": colour,
                                             "outline_width": "0.6"})
        symbol.setOpacity(0.6)
        categories.append(QgsRendererCategory(name, symbol, name))
    return QgsCategorizedSymbolRenderer(CLASS_FIELD, categories)


def parse_class_names(text: str) -> list[str]:
    """Class names typed one a line or separated by commas: trimmed, empty and repeated ones left out."""
    names: list[str] = []
    for part in re.split(r"[\n,;]", text):
        name = part.strip()
        if name and name not in names:
            names.append(name)
    return names


class SamplesSnapshot:
    """Polygons and one field of a layer, copied in the GUI thread, written to GeoPackage in a task.

    Pending (unsaved) edits are included, since features come from the layer's edit buffer.
    """

    def __init__(self, layer: QgsVectorLayer, field_name: str) -> None:
        if layer.fields().indexOf(field_name) < 0:
            raise ValueError(tr("layer '{layer}' has no field '{field}'").format(layer=layer.name(),
                                                                                   field=field_name))
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
            raise ValueError(tr("layer '{layer}' has no polygons yet: draw some samples first")
                             .format(layer=layer.name()))

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
            raise RuntimeError(tr("cannot write samples to {path}: {error}").format(
                path=path, error=writer.errorMessage()))
        for feature in self.features:
            geometry = feature.geometry()
            geometry.convertToMultiType()
            feature.setGeometry(geometry)
            writer.addFeature(feature)
        del writer
        return str(path)
