"""Band names, re-exported from the pure contract (:mod:`backend.contract.bands`): one spelling.

* ``canonical_band_name(name) -> str``: ``"b2"``/``"B2"``/``"B02"``/``"B_02"`` -> ``"B02"``;
  ``"b8a"``/``"B08A"`` -> ``"B8A"``; ``"vv"`` -> ``"VV"``; anything else upper-case without spaces.
* ``band_positions(names) -> dict[str, int]``: canonical name -> 1-based position (first wins).
* ``find_bands(names, wanted) -> (indexes, missing)``: 1-based positions of the wanted bands.
"""

from __future__ import annotations

from backend.contract.bands import band_positions, canonical_band_name, find_bands

__all__ = ["band_positions", "canonical_band_name", "find_bands"]
