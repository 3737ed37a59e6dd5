"""Reading labelled sample polygons from any OGR vector (GeoPackage, GeoJSON, Shapefile, ...)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.errors import UserError

POLYGON_TYPES = ("Polygon", "MultiPolygon")


@dataclass
class SamplePolygon:
    """One labelled polygon, its geometry already in the target CRS (GeoJSON mapping)."""

    index: int
    class_name: str
    geometry: dict[str, Any]


@dataclass
class SampleSet:
    """Labelled polygons of one layer.

    Attributes:
        polygons: the usable polygons, in layer order.
        classes: the distinct class names in output order (numeric names sorted as numbers,
            others alphabetically); class value ``i + 1`` in result rasters is ``classes[i]``.
        skipped: reasons → number of features left out (no geometry, not a polygon, no class).
        source_crs: the layer's CRS as a string ("" when the layer has none).
    """

    polygons: list[SamplePolygon]
    classes: list[str]
    skipped: dict[str, int] = field(default_factory=dict)
    source_crs: str = ""

    def value_of(self, class_name: str) -> int:
        """The raster value (1..K) of a class name."""
        return self.classes.index(class_name) + 1

    @property
    def class_values(self) -> dict[int, str]:
        return {i + 1: name for i, name in enumerate(self.classes)}

    def to_crs(self, dst_crs: Any) -> SampleSet:
        """A copy with every geometry reprojected from the layer's CRS to ``dst_crs``.

        A layer without a CRS is taken to be in ``dst_crs`` already.
        """
        from rasterio.crs import CRS
        from rasterio.warp import transform_geom

        if not self.source_crs:
            return self
        src, dst = CRS.from_wkt(self.source_crs), CRS.from_user_input(dst_crs)
        if src == dst:
            return self
        polygons = [SamplePolygon(p.index, p.class_name, transform_geom(src, dst, p.geometry))
                    for p in self.polygons]
        return SampleSet(polygons, list(self.classes), dict(self.skipped), dst.to_wkt())


def _class_sort_key(name: str) -> tuple[int, float, str]:
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def _class_name(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    name = str(value).strip()
    return name or None


def read_sample_polygons(path: str | os.PathLike[str], class_field: str | None, dst_crs: Any = None,
                         layer: str | int | None = None) -> SampleSet:
    """Read the polygons of a vector layer with their class, reprojected to ``dst_crs``.

    Args:
        path: any vector file fiona/OGR can open.
        class_field: the attribute holding each polygon's class (text or number); None puts
            every polygon in one class named ``query`` (similarity queries).
        dst_crs: the CRS of the raster the polygons will be rasterised onto (None: keep the
            layer's CRS; reproject later with :meth:`SampleSet.to_crs`).
        layer: layer name or index for multi-layer sources (default: the first layer).

    Raises:
        UserError: unreadable file, missing class field, or no usable polygon.
    """
    import fiona
    source = Path(path)
    if not source.exists():
        raise UserError(f"sample file not found: {source}")
    try:
        collection = fiona.open(source, layer=layer) if layer is not None else fiona.open(source)
    except Exception as exc:  # fiona raises several driver-specific error types
        raise UserError(f"cannot read samples {source} as a vector layer: {exc}") from None
    with collection:
        fields = list(collection.schema.get("properties", {}))
        if class_field is not None and class_field not in fields:
            available = ", ".join(fields) if fields else "none"
            raise UserError(f"sample layer {source.name} has no field '{class_field}' "
                            f"(fields: {available}); choose one with --class-field")
        src_crs = collection.crs_wkt or ""
        polygons: list[SamplePolygon] = []
        skipped: dict[str, int] = {}
        try:
            features = list(collection)
        except Exception as exc:
            raise UserError(f"cannot read the features of {source}: {exc}") from None
    for feature in features:
        geometry = feature.geometry
        if geometry is None:
            skipped["no geometry"] = skipped.get("no geometry", 0) + 1
            continue
        mapping = dict(geometry.__geo_interface__) if hasattr(geometry, "__geo_interface__") else geometry
        if mapping.get("type") not in POLYGON_TYPES:
            skipped["not a polygon"] = skipped.get("not a polygon", 0) + 1
            continue
        name = _class_name(feature.properties.get(class_field)) if class_field is not None else "query"
        if name is None:
            skipped["empty class"] = skipped.get("empty class", 0) + 1
            continue
        polygons.append(SamplePolygon(index=len(polygons), class_name=name, geometry=mapping))
    if not polygons:
        detail = ", ".join(f"{n} {why}" for why, n in skipped.items()) or "the layer is empty"
        raise UserError(f"no usable sample polygons in {source.name} ({detail})")
    classes = sorted({p.class_name for p in polygons}, key=_class_sort_key)
    samples = SampleSet(polygons=polygons, classes=classes, skipped=skipped, source_crs=src_crs)
    return samples.to_crs(dst_crs) if dst_crs is not None else samples
