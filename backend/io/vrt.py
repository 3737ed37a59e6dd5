"""A GDAL VRT mosaic of rasters that share a CRS, a resolution, a band count and a data type.

Public API:

* ``mosaic_vrt(sources) -> str``: the VRT XML. ``sources`` are ``(read_path, href)`` pairs: the
  raster to read the grid from now, and the path the VRT names (relative to the VRT's folder).
  The mosaic's extent is rounded outwards to whole pixels of the first source's grid; a source
  shifted by a fraction of a pixel gets a fractional ``DstRect`` (GDAL resamples it).
* ``grid_offsets(paths)``: the rasters shifted from the first's pixel grid by a fraction of a pixel.
  Sources are placed at their georeferenced offsets in one grid spanning them all; nodata pixels
  (NaN or the band's nodata value) let the sources below show through, later sources win
  elsewhere. Rasters in different CRSs or resolutions are refused (``UserError``).
"""

from __future__ import annotations

import math
from pathlib import Path
from xml.sax.saxutils import escape

from backend.errors import UserError

#: GDAL data type names by numpy/rasterio dtype.
GDAL_TYPES = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32", "int32": "Int32",
              "float32": "Float32", "float64": "Float64"}


def _number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _grid(path: Path) -> dict:
    import rasterio

    with rasterio.open(path) as src:
        t = src.transform
        if t.b or t.d:
            raise UserError(f"{path} is rotated; a mosaic needs north-up rasters")
        return {"crs": src.crs, "transform": t, "width": src.width, "height": src.height, "count": src.count,
                "dtype": src.dtypes[0], "nodata": src.nodata, "descriptions": src.descriptions,
                "colorinterp": [c.name.capitalize() for c in src.colorinterp]}


def grid_offsets(paths: list[Path]) -> list[tuple[Path, float, float]]:
    """``(path, dx, dy)`` of each raster whose pixel grid is shifted from the first's by a fraction of a
    pixel (``dx``, ``dy`` in pixels, in ``(-0.5, 0.5]``); aligned rasters are left out."""
    grids = [_grid(path)["transform"] for path in paths]
    shifted = []
    for path, t in zip(paths[1:], grids[1:]):
        x, y = (t.c - grids[0].c) / grids[0].a, (t.f - grids[0].f) / grids[0].e
        dx, dy = (v - math.floor(v) for v in (x, y))
        dx, dy = (v - 1 if v > 0.5 + 1e-6 else v for v in (dx, dy))
        if abs(dx) > 1e-3 or abs(dy) > 1e-3:
            shifted.append((path, dx, dy))
    return shifted


def mosaic_vrt(sources: list[tuple[Path, str]]) -> str:
    """The VRT XML mosaicking ``sources`` (``(read_path, href)`` pairs, see the module docstring)."""
    if not sources:
        raise UserError("a mosaic needs at least one raster")
    grids = [_grid(path) for path, _ in sources]
    first = grids[0]
    a, e = first["transform"].a, first["transform"].e
    for (path, _), grid in zip(sources, grids):
        t = grid["transform"]
        if grid["crs"] != first["crs"]:
            raise UserError(f"{path} is in {grid['crs']}, {sources[0][0]} in {first['crs']}: a mosaic "
                            f"needs one CRS (reproject the scenes first)")
        if not (math.isclose(t.a, a, rel_tol=1e-9) and math.isclose(t.e, e, rel_tol=1e-9)):
            raise UserError(f"{path} has pixels of {t.a:g} x {-t.e:g}, {sources[0][0]} of {a:g} x {-e:g}: "
                            f"a mosaic needs one resolution")
        if (grid["count"], grid["dtype"]) != (first["count"], first["dtype"]):
            raise UserError(f"{path} has {grid['count']} {grid['dtype']} bands, {sources[0][0]} "
                            f"{first['count']} {first['dtype']}: they cannot be mosaicked")
    left = min(g["transform"].c for g in grids)
    top = max(g["transform"].f for g in grids)
    right = max(g["transform"].c + g["width"] * a for g in grids)
    bottom = min(g["transform"].f + g["height"] * e for g in grids)
    # Outwards: a source offset by a fraction of a pixel still fits whole (no lost row or column).
    width, height = math.ceil((right - left) / a - 1e-6), math.ceil((bottom - top) / e - 1e-6)
    wkt = first["crs"].to_wkt() if first["crs"] else ""
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">']
    if wkt:
        lines.append(f"  <SRS>{escape(wkt)}</SRS>")
    lines.append(f"  <GeoTransform>{_number(left)}, {_number(a)}, 0, {_number(top)}, 0, {_number(e)}"
                 f"</GeoTransform>")
    gdal_type = GDAL_TYPES.get(first["dtype"], "Float32")
    nodata = first["nodata"]
    for band in range(1, first["count"] + 1):
        lines.append(f'  <VRTRasterBand dataType="{gdal_type}" band="{band}">')
        description = first["descriptions"][band - 1]
        if description:
            lines.append(f"    <Description>{escape(description)}</Description>")
        if nodata is not None:
            lines.append(f"    <NoDataValue>{_number(nodata)}</NoDataValue>")
        interp = first["colorinterp"][band - 1]
        if interp in ("Red", "Green", "Blue", "Alpha", "Gray"):
            lines.append(f"    <ColorInterp>{interp}</ColorInterp>")
        for (_, href), grid in zip(sources, grids):
            t = grid["transform"]
            x, y = (t.c - left) / a, (t.f - top) / e
            lines += ["    <ComplexSource>",
                      f'      <SourceFilename relativeToVRT="1">{escape(href)}</SourceFilename>',
                      f"      <SourceBand>{band}</SourceBand>",
                      f'      <SrcRect xOff="0" yOff="0" xSize="{grid["width"]}" ySize="{grid["height"]}"/>',
                      f'      <DstRect xOff="{_number(round(x, 6))}" yOff="{_number(round(y, 6))}" '
                      f'xSize="{grid["width"]}" ySize="{grid["height"]}"/>']
            if grid["nodata"] is not None:
                lines.append(f"      <NODATA>{_number(grid['nodata'])}</NODATA>")
            lines.append("    </ComplexSource>")
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    return "\n".join(lines) + "\n"
