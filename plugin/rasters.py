"""Raster layers as files the backend can read, and areas as bounds.

A layer backed by a plain GeoTIFF (or any GDAL file that is not a VRT) is passed by path; any
other layer (VRT, WMS, in-memory, ...) is written to a temporary GeoTIFF of the area first. The
export runs in the task thread on a cloned data provider, never in the GUI thread. An export is
identified by :attr:`RasterExport.key` (source, area, pixel grid), so a caller can write it once
and reuse the file: same bytes at the same path keep the backend's embedding cache hitting.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsProject,
    QgsRasterDataProvider,
    QgsRasterFileWriter,
    QgsRasterLayer,
    QgsRasterPipe,
    QgsRectangle,
)

from .bands import layer_facts
from .i18n import tr

EXPORT_SUFFIXES_NEEDING_COPY = {".vrt"}


def plain_file_path(layer: QgsRasterLayer) -> str | None:
    """The file behind ``layer`` when the backend can read it directly, else ``None``."""
    if layer.providerType() != "gdal":
        return None
    path = layer.source().split("|")[0]
    file = Path(path)
    if not file.is_file() or file.suffix.lower() in EXPORT_SUFFIXES_NEEDING_COPY:
        return None
    return str(file)


def layer_rectangle(rect: QgsRectangle, rect_crs: QgsCoordinateReferenceSystem,
                    layer: QgsRasterLayer) -> QgsRectangle:
    """``rect`` in the layer's CRS, clipped to the layer's extent."""
    if rect_crs.isValid() and rect_crs != layer.crs():
        transform = QgsCoordinateTransform(rect_crs, layer.crs(), QgsProject.instance())
        rect = transform.transformBoundingBox(rect)
    return rect.intersect(layer.extent())


class RasterExport:
    """A deferred export of (part of) a raster layer to GeoTIFF.

    Create it in the GUI thread (this clones the data provider); call :meth:`write` in a task.

    Args:
        layer: the source layer.
        extent: area in the layer's CRS (``None`` = whole layer).
        target: the GeoTIFF to write.
    """

    def __init__(self, layer: QgsRasterLayer, extent: QgsRectangle | None, target: Path) -> None:
        self.provider: QgsRasterDataProvider = layer.dataProvider().clone()
        self.crs = layer.crs()
        self.transform_context = QgsProject.instance().transformContext()
        self.extent = QgsRectangle(extent) if extent is not None else layer.extent()
        self.target = Path(target)
        # Band names and metadata tell the backend the sensor and units: carried into the copy.
        self.facts = layer_facts(layer)
        units_x = layer.rasterUnitsPerPixelX() or 1.0
        units_y = layer.rasterUnitsPerPixelY() or 1.0
        self.width = max(1, math.ceil(self.extent.width() / units_x))
        self.height = max(1, math.ceil(self.extent.height() / units_y))
        if not layer.dataProvider().capabilities() & QgsRasterDataProvider.Size:
            self.width = min(self.width, 4096)
            self.height = min(self.height, 4096)
        self.key: tuple = (layer.id(), layer.providerType(), layer.source(), self.crs.authid(),
                           self.extent.toString(9), self.width, self.height)

    def write(self, is_canceled: Callable[[], bool] | None = None) -> str:
        """Write the GeoTIFF (in the calling thread, once); returns its path."""
        if is_canceled is not None and is_canceled():
            raise RuntimeError(tr("cancelled before the export"))
        self.target.parent.mkdir(parents=True, exist_ok=True)
        pipe = QgsRasterPipe()
        if not pipe.set(self.provider):
            raise RuntimeError(tr("cannot read the raster layer's data provider"))
        writer = QgsRasterFileWriter(str(self.target))
        writer.setOutputFormat("GTiff")
        writer.setCreateOptions(["COMPRESS=DEFLATE", "TILED=YES", "BIGTIFF=IF_SAFER"])
        status = writer.writeRaster(pipe, self.width, self.height, self.extent, self.crs,
                                    self.transform_context)
        if status != QgsRasterFileWriter.NoError:
            raise RuntimeError(tr("could not write a temporary GeoTIFF of the layer ({status})")
                               .format(status=status))
        self._write_band_facts()
        return str(self.target)

    def _write_band_facts(self) -> None:
        """Band descriptions and dataset metadata of the layer, written into the exported GeoTIFF."""
        from osgeo import gdal

        dataset = gdal.Open(str(self.target), gdal.GA_Update)
        if dataset is None:
            return
        for index, description in enumerate(self.facts.descriptions, start=1):
            if description and index <= dataset.RasterCount:
                dataset.GetRasterBand(index).SetDescription(description)
        if self.facts.tags:
            dataset.SetMetadata({**self.facts.tags, **(dataset.GetMetadata() or {})})
        dataset.FlushCache()
        dataset = None
