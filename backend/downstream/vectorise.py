"""Class maps (classify, cluster, segment, change) to polygons in a GeoPackage, styled like the raster.

Input: any single-band integer class raster with a paletted ``.qml`` beside it or nodata 0. Class
names and colours come from that ``.qml`` (else the raster's colour table, else "class N").
Nodata (0 without a nodata value) is never vectorised.

Steps (the class raster is read whole: it is small, 1/64 of the input for patch maps; a full
resolution segmentation of up to :data:`MAX_CELLS` cells is accepted, about 10 bytes per cell):

1. ``--min-area`` (m²): ``rasterio.features.sieve`` merges connected regions (4-connected) of fewer
   pixels into their largest neighbour; regions that cannot merge (only nodata around them) and
   are still smaller are dropped.
2. Connected regions of each class are labelled (``scipy.ndimage.label``, 4-connectivity as
   ``rasterio.features.shapes``), which gives each polygon its pixel count, its area (m², per
   pixel: exact on projected grids, spherical cell areas on geographic ones) and its mean
   confidence from ``--confidence`` (a raster on the same grid, e.g. classify's confidence).
3. ``rasterio.features.shapes`` traces one polygon (with holes) per region.
4. ``--simplify`` (map units: degrees on a geographic CRS, with a warning): Douglas–Peucker on
   each ring; a shell that would collapse keeps its original shape, a hole goes (both warned).
   Polygons are simplified one by one, so shared edges may open hairline gaps or overlaps at the
   tolerance's scale.

Output: a GeoPackage layer (named after the file) with ``class_id``, ``class_name``, ``area_m2``,
``pixels`` and ``confidence`` (mean, when a confidence raster is given, else null), written
atomically with a categorised ``.qml`` in the raster's colours, beside it and as the layer's
default style inside the GeoPackage (QGIS's ``layer_styles`` table).
"""

from __future__ import annotations

import contextlib
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import UserError

#: Largest class raster read whole (cells; about 10 bytes of memory each).
MAX_CELLS = 100_000_000
#: Rows per strip of the per-region sums.
STRIP_ROWS = 256
EARTH_RADIUS = 6_371_008.8
INTEGER_TYPES = ("uint8", "uint16", "int16", "uint32", "int32")


@dataclass
class VectoriseStats:
    """What :func:`vectorise` wrote, for the result event."""

    polygons: int
    classes: dict[int, str]
    polygons_per_class: dict[str, int]
    area_per_class_m2: dict[str, float]
    sieved_pixels: int
    dropped_small: int
    min_area_m2: float
    min_area_pixels: int
    simplify: float
    confidence: bool
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_qml_palette(path: Path) -> dict[int, tuple[str, str]]:
    """``{value: (label, "#rrggbb")}`` of a paletted raster ``.qml`` (empty when it has none)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    palette: dict[int, tuple[str, str]] = {}
    for entry in root.iter("paletteEntry"):
        try:
            palette[int(float(entry.get("value", "")))] = (entry.get("label") or entry.get("value", ""),
                                                           entry.get("color", "#808080")[:7])
        except ValueError:
            continue
    return palette


def check_class_raster(src: Any, path: Path) -> dict[int, tuple[str, str]]:
    """The raster's palette; refuses rasters that are not single-band integer class maps.

    Raises:
        UserError: several bands, float values, or neither a paletted ``.qml`` nor nodata 0.
    """
    what = (f"{path.name} is not a class raster (vectorise needs one band of integer class values with a "
            "paletted .qml beside it or nodata 0, as classify, cluster, segment and change write)")
    if src.count != 1:
        raise UserError(f"{what}: it has {src.count} bands")
    if src.dtypes[0] not in INTEGER_TYPES:
        raise UserError(f"{what}: its values are {src.dtypes[0]}")
    palette = read_qml_palette(path.with_suffix(".qml"))
    if not palette and src.nodata != 0:
        raise UserError(f"{what}: no paletted .qml beside it and its nodata is "
                        f"{'unset' if src.nodata is None else src.nodata}, not 0")
    if src.width * src.height > MAX_CELLS:
        raise UserError(f"{path.name} has {src.width * src.height} cells, more than the {MAX_CELLS} "
                        "vectorise reads at once; vectorise a part (gdal_translate -srcwin) or a coarser map")
    return palette


def _colour_table(src: Any) -> dict[int, str]:
    try:
        table = src.colormap(1)
    except ValueError:
        return {}
    return {int(v): f"#{c[0]:02x}{c[1]:02x}{c[2]:02x}" for v, c in table.items()}


def row_pixel_areas(src: Any) -> np.ndarray:
    """Area in m² of one pixel of each row (rows differ on geographic grids)."""
    transform = src.transform
    if src.crs is not None and src.crs.is_geographic:
        top = transform.f + transform.e * np.arange(src.height + 1)
        lat = np.radians(np.clip(top, -90, 90))
        band = np.abs(np.sin(lat[:-1]) - np.sin(lat[1:]))
        return EARTH_RADIUS ** 2 * math.radians(abs(transform.a)) * band
    factor = 1.0
    if src.crs is not None:
        try:
            factor = float(src.crs.linear_units_factor[1])
        except Exception:  # a CRS without linear units: take map units as metres
            factor = 1.0
    return np.full(src.height, abs(transform.a * transform.e - transform.b * transform.d) * factor ** 2)


def _perpendicular(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    segment = end - start
    length = math.hypot(*segment)
    if length == 0:
        return np.hypot(*(points - start).T)
    return np.abs(segment[0] * (points[:, 1] - start[1]) - segment[1] * (points[:, 0] - start[0])) / length


def douglas_peucker(line: np.ndarray, tolerance: float) -> np.ndarray:
    """Points of ``line`` ``[n, 2]`` kept by Douglas–Peucker at ``tolerance`` (first and last always)."""
    keep = np.zeros(len(line), bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(line) - 1)]
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        distance = _perpendicular(line[first + 1:last], line[first], line[last])
        worst = int(distance.argmax())
        if distance[worst] > tolerance:
            middle = first + 1 + worst
            keep[middle] = True
            stack += [(first, middle), (middle, last)]
    return line[keep]


def simplify_ring(ring: list[tuple[float, float]], tolerance: float) -> list[tuple[float, float]] | None:
    """A closed ring simplified at ``tolerance``; ``None`` when it collapses (under 4 points or no area)."""
    points = np.asarray(ring, np.float64)
    if len(points) < 5:
        return ring
    # Split at the point farthest from the start so that the closing point is not special.
    far = int(np.hypot(*(points - points[0]).T).argmax())
    kept = np.concatenate([douglas_peucker(points[:far + 1], tolerance)[:-1],
                           douglas_peucker(points[far:], tolerance)])
    if len(kept) < 4:
        return None
    x, y = kept[:, 0], kept[:, 1]
    if abs(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1])) == 0:
        return None
    return [tuple(p) for p in kept.tolist()]


def simplify_polygon(geometry: dict[str, Any], tolerance: float,
                     collapsed: list[int] | None = None) -> dict[str, Any]:
    """A GeoJSON polygon with each ring simplified; collapsed holes go, a collapsed shell stays as it was.

    ``collapsed``: when given, ``[shells, holes]`` counts of collapsed rings, incremented.
    """
    rings = geometry["coordinates"]
    simple = simplify_ring(rings[0], tolerance)
    shell = simple or rings[0]
    holes = [ring for ring in (simplify_ring(r, tolerance) for r in rings[1:]) if ring is not None]
    if collapsed is not None:
        collapsed[0] += simple is None
        collapsed[1] += len(rings) - 1 - len(holes)
    return {"type": "Polygon", "coordinates": [shell, *holes]}


def store_default_style(gpkg: Path, layer: str, qml: str, geometry_column: str = "geom") -> None:
    """Store ``qml`` as the layer's default style inside the GeoPackage (QGIS's ``layer_styles`` table)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(gpkg)) as db, db:
        db.execute("CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                   "f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256), "
                   "f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT, "
                   "useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), "
                   "update_time DATETIME DEFAULT CURRENT_TIMESTAMP)")
        db.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                   "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, owner) "
                   "VALUES ('', '', ?, ?, ?, ?, '', 1, 'Terraprobe class colours', '')",
                   (layer, geometry_column, layer, qml))
        db.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier) "
                   "VALUES ('layer_styles', 'attributes', 'layer_styles')")


def vectorise(raster: str | os.PathLike[str], out: str | os.PathLike[str], min_area: float = 0.0,
              simplify: float = 0.0, confidence: str | os.PathLike[str] | None = None,
              only: list[str] | None = None, reporter: Any = None) -> VectoriseStats:
    """Polygons of a class raster into the GeoPackage ``out`` (+ ``.qml``); see the module docstring.

    ``only``: class values or names to write (e.g. ``["change"]`` of a change mask); default all.
    The sieve still sees every class, so the kept classes' outlines do not depend on ``only``.

    Raises:
        UserError: not a class raster, a confidence raster on another grid, or no class pixel.
    """
    import fiona
    import rasterio
    from rasterio.features import shapes, sieve
    from scipy import ndimage

    from backend.downstream.styles import label_colors
    from backend.downstream.vector_style import categorised_qml
    from backend.io.atomic import atomic_paths

    if min_area < 0:
        raise UserError(f"--min-area must be 0 or more m² (got {min_area})")
    if simplify < 0:
        raise UserError(f"--simplify must be 0 or more map units (got {simplify})")
    raster, out = Path(raster), Path(out)
    warnings: list[str] = []
    with rasterio.open(raster) as src:
        palette = check_class_raster(src, raster)
        classes = src.read(1)
        nodata = 0 if src.nodata is None else src.nodata
        transform, crs = src.transform, src.crs
        areas = row_pixel_areas(src)
        table = _colour_table(src)
    valid = classes != nodata
    if confidence is not None:
        with rasterio.open(confidence) as conf:
            if (conf.width, conf.height) != (classes.shape[1], classes.shape[0]) or \
                    not conf.transform.almost_equals(transform, precision=1e-9) or conf.crs != crs:
                raise UserError(f"--confidence {Path(confidence).name} is not on the class raster's grid "
                                f"({conf.width}x{conf.height} vs {classes.shape[1]}x{classes.shape[0]} "
                                "cells, or another transform or CRS)")
            scores = conf.read(1, out_dtype="float32", masked=True).filled(np.nan)
    if not valid.any():
        raise UserError(f"{raster.name} has no class pixel (all nodata): nothing to vectorise")
    if simplify > 0 and crs is not None and crs.is_geographic:
        warnings.append(f"--simplify {simplify:g} is in map units, here degrees ({raster.name} is in a "
                        f"geographic CRS): about {simplify * 111_320:.6g} m; for metres reproject the "
                        "raster (gdalwarp -t_srs) or use a tolerance in degrees")
    pixel_area = float(np.median(areas))
    min_pixels = math.ceil(min_area / pixel_area) if min_area > 0 else 0
    sieved = 0
    if min_pixels >= classes.size:
        raise UserError(f"--min-area {min_area:g} m² is not smaller than the whole of {raster.name} "
                        f"({float(areas.sum()) * classes.shape[1]:.6g} m², {classes.size} pixels): "
                        "no polygon would be left; choose a smaller --min-area")
    if min_pixels > 1:
        work = classes.astype(np.int32) if classes.dtype not in (np.uint8, np.uint16, np.int16, np.int32) \
            else classes
        merged = sieve(work, size=min_pixels, mask=valid, connectivity=4)
        sieved = int((merged != work).sum())
        classes = merged.astype(classes.dtype)
    values = [int(v) for v in np.unique(classes[valid])]
    if only:
        wanted = {str(v).strip().lower() for v in only}
        values = [v for v in values if str(v) in wanted or palette.get(v, ("",))[0].lower() in wanted]
        if not values:
            known = ", ".join(f"{v} ({palette.get(v, (f'class {v}',))[0]})"
                              for v in np.unique(classes[valid]).tolist())
            raise UserError(f"--only {','.join(only)} matches no class of {raster.name} (it has {known})")
    # Connected regions of each class → one id per polygon.
    regions = np.zeros(classes.shape, np.int32)
    region_class: list[int] = []
    for value in values:
        labelled, count = ndimage.label(classes == value)
        inside = labelled > 0
        regions[inside] = labelled[inside] + len(region_class)
        region_class += [value] * count
    total = len(region_class) + 1
    pixels, counts = np.zeros(total, np.int64), np.zeros(total, np.int64)
    area, sums = np.zeros(total, np.float64), np.zeros(total, np.float64)
    for row in range(0, classes.shape[0], STRIP_ROWS):  # strips: float64 temporaries stay small
        ids = regions[row:row + STRIP_ROWS]
        pixels += np.bincount(ids.ravel(), minlength=total)
        area += np.bincount(ids.ravel(), weights=np.repeat(areas[row:row + STRIP_ROWS], ids.shape[1]),
                            minlength=total)
        if confidence is not None:
            part = scores[row:row + STRIP_ROWS]
            finite = np.isfinite(part)
            sums += np.bincount(ids[finite], weights=part[finite], minlength=total)
            counts += np.bincount(ids[finite], minlength=total)
    mean_conf = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan) if confidence is not None else None
    keep = area >= min_area
    dropped = int((~keep[1:]).sum())
    if dropped:
        warnings.append(f"{dropped} region(s) under --min-area with only nodata around them were dropped")
    names = {v: palette.get(v, (f"class {v}", ""))[0] for v in values}
    fallback = dict(zip(values, label_colors([names[v] for v in values])))
    colours = {v: palette.get(v, ("", ""))[1] or table.get(v) or fallback[v] for v in values}
    schema = {"geometry": "Polygon", "properties": {"class_id": "int", "class_name": "str",
                                                    "area_m2": "float", "pixels": "int",
                                                    "confidence": "float"}}
    per_class: dict[str, int] = dict.fromkeys(names.values(), 0)
    area_per_class: dict[str, float] = dict.fromkeys(names.values(), 0.0)
    written = 0
    collapsed = [0, 0]

    def check(tmp: Path) -> None:
        if tmp.suffix.lower() != ".gpkg":
            return
        with fiona.open(tmp, layer=out.stem) as layer:
            if len(layer) != written:
                raise UserError(f"{out.name}: {len(layer)} polygons read back, {written} written")

    with atomic_paths(out, out.with_suffix(".qml"), verify=check) as (tmp, style_tmp):
        tmp.unlink()  # fiona creates the GeoPackage itself
        with fiona.open(tmp, "w", driver="GPKG", layer=out.stem, schema=schema,
                        crs_wkt=crs.to_wkt() if crs is not None else None) as layer:
            mask = (regions > 0) & keep[regions]
            for geometry, region in shapes(regions, mask=mask, connectivity=4, transform=transform):
                region = int(region)
                if simplify > 0:
                    geometry = simplify_polygon(geometry, simplify, collapsed)
                value = region_class[region - 1]
                score = None if mean_conf is None or not np.isfinite(mean_conf[region]) \
                    else float(mean_conf[region])
                layer.write({"geometry": geometry, "properties": {
                    "class_id": value, "class_name": names[value], "area_m2": float(area[region]),
                    "pixels": int(pixels[region]), "confidence": score}})
                per_class[names[value]] += 1
                area_per_class[names[value]] += float(area[region])
                written += 1
        if not written:
            raise UserError(f"every region of {raster.name} is smaller than --min-area {min_area} m²; "
                            "nothing to write")
        qml = categorised_qml({v: (names[v], colours[v]) for v in values})
        store_default_style(tmp, out.stem, qml)
        style_tmp.write_text(qml, encoding="utf-8")
    if collapsed[0]:
        holes = f", and dropped {collapsed[1]} hole(s)" if collapsed[1] else ""
        warnings.append(f"--simplify {simplify:g} collapsed {collapsed[0]} of {written} polygon(s), kept "
                        f"with their exact pixel outlines{holes}: the tolerance is too large for them")
    elif collapsed[1]:
        warnings.append(f"--simplify {simplify:g} collapsed and dropped {collapsed[1]} hole(s)")
    return VectoriseStats(polygons=written, classes=names, polygons_per_class=per_class,
                          area_per_class_m2=area_per_class, sieved_pixels=sieved, dropped_small=dropped,
                          min_area_m2=min_area, min_area_pixels=min_pixels, simplify=simplify,
                          confidence=confidence is not None, warnings=warnings)
