"""Which project layers go with an optical layer: its radar layer and its sample polygons.

A radar layer names VV/VH bands (Sentinel-1) and overlaps the optical layer; a sample layer is a polygon
layer with a class-like field whose extent overlaps it. Layers of another scene never qualify, so
switching the optical layer drops them.
"""

from __future__ import annotations

from collections.abc import Iterable

from qgis.core import (
    QgsCoordinateTransform,
    QgsMapLayer,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
    QgsWkbTypes,
)

from .bands import canonical_band_name, layer_band_descriptions
from .layers import KIND_PROPERTY
from .samples import pick_class_field

#: Band names of a radar layer the models take (Sentinel-1 polarisations).
RADAR_BANDS = frozenset({"VV", "VH", "HH", "HV"})


def extent_in(layer: QgsMapLayer, target: QgsMapLayer) -> QgsRectangle:
    """``layer``'s extent in ``target``'s CRS (empty when it cannot be transformed)."""
    extent = layer.extent()
    if layer.crs() == target.crs() or not layer.crs().isValid() or not target.crs().isValid():
        return extent
    try:
        transform = QgsCoordinateTransform(layer.crs(), target.crs(), QgsProject.instance())
        return transform.transformBoundingBox(extent)
    except Exception:  # QgsCsException: an extent the target CRS cannot hold
        return QgsRectangle()


def overlaps(layer: QgsMapLayer | None, raster: QgsMapLayer | None) -> bool:
    """Whether ``layer`` covers part of ``raster`` (both present and valid)."""
    if layer is None or raster is None or not layer.isValid() or not raster.isValid():
        return False
    other = extent_in(layer, raster)
    return not other.isEmpty() and other.intersects(raster.extent())


def is_result(layer: QgsMapLayer) -> bool:
    """A layer Terraprobe added (a result: never an input picked for the analyst)."""
    return layer.customProperty(KIND_PROPERTY) is not None


def is_radar(layer: QgsMapLayer) -> bool:
    """A raster naming Sentinel-1 polarisations (VV, VH...) as its bands."""
    if not isinstance(layer, QgsRasterLayer) or is_result(layer):
        return False
    names = {canonical_band_name(d).upper() for d in layer_band_descriptions(layer) if d}
    return bool(names) and names <= RADAR_BANDS


def is_samples(layer: QgsMapLayer) -> bool:
    """A polygon layer with a class-like field."""
    return (isinstance(layer, QgsVectorLayer) and layer.geometryType() == QgsWkbTypes.PolygonGeometry
            and not is_result(layer) and pick_class_field(layer) is not None)


def radar_for(optical: QgsRasterLayer, layers: Iterable[QgsMapLayer]) -> QgsRasterLayer | None:
    """The radar layer that goes with ``optical`` (the first overlapping one), or ``None``."""
    return next((layer for layer in layers
                 if layer is not optical and is_radar(layer) and overlaps(layer, optical)), None)


def samples_for(optical: QgsRasterLayer, layers: Iterable[QgsMapLayer]) -> QgsVectorLayer | None:
    """The sample layer that goes with ``optical`` (the first overlapping one), or ``None``."""
    return next((layer for layer in layers if is_samples(layer) and overlaps(layer, optical)), None)
