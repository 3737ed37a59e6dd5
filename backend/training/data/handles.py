"""Per-process cache of open rasterio datasets and their warped views onto a source's grid."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from backend.training.data.grid import PortableGrid


class HandleCache:
    """Open rasterio datasets (and warped views) per process, least recently used closed first."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, tuple], Any] = OrderedDict()

    def get(self, path: str, grid: PortableGrid) -> Any:
        import rasterio
        from rasterio.crs import CRS
        from rasterio.transform import Affine

        from backend.io.align import grid_view

        key = (path, (grid.crs, grid.transform, grid.width, grid.height))
        handle = self._items.get(key)
        if handle is not None:
            self._items.move_to_end(key)
            return handle
        src = rasterio.open(path)
        # Unlike the inference views (float32, NaN), chips keep the file's dtype and nodata.
        view = grid_view(src, CRS.from_wkt(grid.crs) if grid.crs else src.crs, Affine(*grid.transform),
                         grid.width, grid.height, src_nodata=src.nodata,
                         nodata=src.nodata if src.nodata is not None else np.nan)
        handle = (src, view)
        self._items[key] = handle
        while len(self._items) > self.size:
            _, (old_src, old_view) = self._items.popitem(last=False)
            if old_view is not old_src:
                old_view.close()
            old_src.close()
        return handle

    def close(self) -> None:
        while self._items:
            _, (src, view) = self._items.popitem()
            if view is not src:
                view.close()
            src.close()
