"""Layers as the files and band mappings of a request: the same export logic for the dock and Processing.

A plain file is passed by path with the area as ``--bounds``; any other layer (VRT, WMS, memory)
is exported by the caller's ``export`` function, clipped to the area (the radar layer to the area
in its own CRS), and then needs no bounds. An embedding field is passed as its file (GeoTIFF or VRT);
a change run's dates are fields or rasters (:func:`date_files`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from qgis.core import QgsRasterLayer, QgsRectangle

from .bands import layer_band_descriptions, layer_facts, plan_optical_bands
from .rasters import layer_rectangle, plain_file_path
from .requests_builder import InputFiles, optical_bands_argument, sar_bands_argument

#: Writes (or schedules) a GeoTIFF of a layer over an extent in the layer's CRS; returns its path.
Exporter = Callable[[QgsRasterLayer, "QgsRectangle | None"], str]


def layer_files(optical: QgsRasterLayer, sar: QgsRasterLayer | None, area: QgsRectangle | None,
                export: Exporter) -> InputFiles:
    """The input files of a run over ``area`` (in the optical layer's CRS; ``None``: whole layer)."""
    files = InputFiles()
    optical_file = plain_file_path(optical)
    if optical_file:
        files.optical = optical_file
        if area is not None:
            files.bounds = (area.xMinimum(), area.yMinimum(), area.xMaximum(), area.yMaximum())
            files.bounds_crs = optical.crs().authid() or None
    else:
        files.optical = export(optical, area)
    if sar is not None:
        sar_file = plain_file_path(sar)
        if sar_file:
            files.sar = sar_file
        else:
            sar_area = layer_rectangle(area, optical.crs(), sar) if area is not None else None
            files.sar = export(sar, sar_area)
    return files


def layer_optical_bands(optical: QgsRasterLayer, model_bands: Sequence[str], sensor: str,
                        explicit: Sequence[int | None] | None = None) -> list[int] | None:
    """``--optical-bands`` for a layer: the explicit mapping, else the layer's band plan for ``sensor``."""
    plan = plan_optical_bands(model_bands, layer_facts(optical), sensor)
    try:
        return optical_bands_argument(explicit, plan, model_bands)
    except ValueError:
        if explicit is not None:
            raise
        return None  # the backend explains what is missing


def layer_sar_bands(sar: QgsRasterLayer | None, model_bands: Sequence[str],
                    explicit: Sequence[int | None] | None = None) -> list[int] | None:
    """``--sar-bands`` for a radar layer: the explicit mapping, else matched from its band names."""
    if sar is None:
        return None
    return sar_bands_argument(explicit, model_bands, layer_band_descriptions(sar))


#: What each date of a change run is: an embedding field, an optical raster or a radar raster.
DATE_KINDS: tuple[str, ...] = ("embeddings", "optical", "sar")


def field_file(layer: QgsRasterLayer, export: Exporter) -> str:
    """An embedding field layer as a file: its own GeoTIFF or VRT (the backend reads both), else exported."""
    if layer.providerType() == "gdal":
        path = Path(layer.source().split("|")[0])
        if path.is_file():
            return str(path)
    return export(layer, None)


def date_files(layer: QgsRasterLayer, kind: str, area: QgsRectangle | None, export: Exporter) -> InputFiles:
    """One date of a change run: ``kind`` (:data:`DATE_KINDS`) and the area in ``layer``'s CRS."""
    if kind == "embeddings":
        return InputFiles(embeddings=field_file(layer, export))
    files = layer_files(layer, None, area, export)
    if kind == "sar":
        files.sar, files.optical = files.optical, None
    return files
