"""Band names: one canonical spelling, and matching a file's bands to a model's bands by name.

Pure Python (no rasterio), so models and training code can import it cheaply.

* ``canonical_band_name(name) -> str``: ``"b2"``/``"B2"``/``"B02"``/``" b 02 "`` -> ``"B02"``;
  ``"b8a"``/``"B08A"`` -> ``"B8A"``; ``"vv"`` -> ``"VV"``; anything else upper-case without spaces.
* ``band_positions(names) -> dict[str, int]``: canonical name -> 1-based position (first wins).
* ``find_bands(names, wanted) -> (indexes, missing)``: 1-based positions of the wanted bands.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_SENTINEL_BAND = re.compile(r"^B0*(\d{1,2})(A?)$")


def canonical_band_name(name: str) -> str:
    """Normalise a band name: Sentinel-2 bands to ``B01``..``B12``/``B8A``, others upper-case."""
    cleaned = name.strip().upper().replace(" ", "")
    match = _SENTINEL_BAND.match(cleaned)
    if match:
        number, suffix = match.groups()
        return f"B{int(number)}{suffix}" if suffix else f"B{int(number):02d}"
    return cleaned


def band_positions(names: Sequence[str | None]) -> dict[str, int]:
    """Canonical band name -> 1-based position; empty names are skipped, the first duplicate wins."""
    positions: dict[str, int] = {}
    for index, name in enumerate(names, start=1):
        if name:
            positions.setdefault(canonical_band_name(name), index)
    return positions


def find_bands(names: Sequence[str | None], wanted: Sequence[str]) -> tuple[list[int], list[str]]:
    """Locate ``wanted`` bands among ``names`` (e.g. a raster's band descriptions) by canonical name.

    Returns:
        ``(indexes, missing)``: the 1-based position of each wanted band that was found, in
        ``wanted`` order, and the canonical names of those not found (empty when all were).
    """
    positions = band_positions(names)
    keys = [canonical_band_name(w) for w in wanted]
    return [positions[k] for k in keys if k in positions], [k for k in keys if k not in positions]
