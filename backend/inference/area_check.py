"""Up-front size checks of an embedding run: refuse an absurd area or one whose outputs cannot fit.

Run after the inputs are opened (the area is known) and before the model loads, so a 3 kB VRT that
declares a 10⁶ x 10⁶ px raster is refused in a moment instead of growing memory for hours. Jobs on
the server run the same command line, so they are refused the same way.

* ``max_pixels() -> int``: the largest area one run embeds: ``$TERRAPROBE_MAX_PIXELS``, else
  :data:`DEFAULT_MAX_PIXELS` (10¹¹ px: about 800 Sentinel-2 tiles; at 10 m a continent).
* ``output_bytes(cols, rows, embedding_dim, dtype) -> int``: uncompressed bytes of the embedding
  raster and its preview on a ``cols x rows`` patch grid (an upper bound: the files are
  deflate-compressed).
* ``check_area(inputs, embedding_dim, dtype, folders)``: ``UserError`` (exit 2) for an area over
  :func:`max_pixels`; ``EnvironmentFault`` (exit 3) when a file system among ``folders`` (the cache
  entry's folder, the folders the result is copied to) has less room than the outputs it receives.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backend.errors import EnvironmentFault, UserError
from backend.io.geotiff import embedding_profile, preview_profile
from backend.io.write_checks import estimate_bytes, format_bytes, free_bytes, room_by_file_system

DEFAULT_MAX_PIXELS = 10**11
MAX_PIXELS_VARIABLE = "TERRAPROBE_MAX_PIXELS"


def max_pixels() -> int:
    """``$TERRAPROBE_MAX_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`."""
    value = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        return int(float(value))
    except ValueError:
        raise UserError(f"{MAX_PIXELS_VARIABLE} must be a number of pixels, got {value!r}") from None


def output_bytes(cols: int, rows: int, embedding_dim: int, dtype: str) -> int:
    """Uncompressed bytes of the embedding raster and the preview on a ``cols x rows`` patch grid."""
    profiles = (embedding_profile(None, None, cols, rows, embedding_dim, dtype),
                preview_profile(None, None, cols, rows))
    return sum(int(estimate_bytes(profile) or 0) for profile in profiles)


def _size(count: int) -> str:
    return format_bytes(count, units=("bytes", "kB", "MB", "GB", "TB"))


def _area_text(width: int, height: int) -> str:
    return f"{width} x {height} px ({width * height:.3g} px)"


def check_area(inputs: Any, embedding_dim: int, dtype: str, folders: Sequence[Path]) -> None:
    """Refuse an area too large for one run (exit 2) or for the disks it is written to (exit 3).

    Args:
        inputs: the opened ``InputSet`` (the area's size in px and in patches).
        embedding_dim: bands of the embedding raster.
        dtype: ``float16`` or ``float32``.
        folders: where the outputs are written in full: the cache entry's folder, then the folders
            of the copies (``--out``); folders on one file system add up.
    """
    width, height = int(inputs.width), int(inputs.height)
    needed = output_bytes(int(inputs.patch_width), int(inputs.patch_height), embedding_dim, dtype)
    limit = max_pixels()
    if width * height > limit:
        raise UserError(f"the area is {_area_text(width, height)}: more than the {limit:.3g} px one run "
                        f"embeds (its embeddings would take about {_size(needed)}); choose a "
                        f"smaller area with --bounds, or set {MAX_PIXELS_VARIABLE} on a machine made for it")
    for folder, total in room_by_file_system([(Path(f), needed) for f in folders]):
        free = free_bytes(folder)
        if free is not None and free < total:
            area = _area_text(width, height)
            raise EnvironmentFault(f"not enough disk space for the embeddings of {area}: about "
                                   f"{_size(total)} needed at {folder}, {_size(free)} free; "
                                   "free some space, give --cache-dir on another disk, or a smaller area "
                                   "(--bounds)", code=errno.ENOSPC)
