"""Band names: one canonical spelling for both halves, and the models' default band lists (pure Python).

Only relative imports, or none: the plugin imports this module as ``terraprobe.backend.contract``.

* ``canonical_band_name(name) -> str``: ``"b2"``/``"B2"``/``"B02"``/``"B_02"``/``" b 02 "`` -> ``"B02"``;
  ``"b8a"``/``"B08A"`` -> ``"B8A"``; ``"vv"`` -> ``"VV"``; QGIS's ``"Band 09: B8A"`` -> ``"B8A"``;
  anything else upper-case without spaces.
* ``description_from_band_name(name) -> str``: the description part of a QGIS band name.
* ``band_positions(names) -> dict[str, int]``: canonical name -> 1-based position (first wins).
* ``find_bands(names, wanted) -> (indexes, missing)``: 1-based positions of the wanted bands.
* ``match_bands(model_bands, descriptions) -> list[int | None]``: the layer band of each model band.
* ``S2_BANDS``, ``S1_BANDS``, ``DEFAULT_MODALITIES``: the released CROMA encoders' bands;
  ``GALILEO_S2_BANDS``: Galileo's Sentinel-2 bands.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: Sentinel-2 bands of CROMA's optical encoder, in model order (13 L1C bands minus B10).
S2_BANDS: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A",
                             "B09", "B11", "B12")
#: Sentinel-1 bands of CROMA's radar encoder, in model order (backscatter in dB).
S1_BANDS: tuple[str, ...] = ("VV", "VH")
#: Sentinel-2 bands of Galileo's space-time channel groups, in model order (CROMA's without the 60 m
#: B01 and B09).
GALILEO_S2_BANDS: tuple[str, ...] = tuple(b for b in S2_BANDS if b not in ("B01", "B09"))
#: Bands per modality of a model whose file says nothing about them.
DEFAULT_MODALITIES: dict[str, tuple[str, ...]] = {"optical": S2_BANDS, "sar": S1_BANDS}

_SENTINEL_BAND = re.compile(r"^B_?0*(\d{1,2})(A?)$")
_QGIS_PREFIX = re.compile(r"^Band\s*\d+\s*:\s*", re.IGNORECASE)


def description_from_band_name(band_name: str) -> str:
    """The description part of QGIS's band name (``"Band 09: B8A"`` -> ``"B8A"``; ``""`` if none)."""
    if _QGIS_PREFIX.match(band_name):
        return _QGIS_PREFIX.sub("", band_name).strip()
    return "" if re.fullmatch(r"Band\s*\d+", band_name.strip(), re.IGNORECASE) else band_name.strip()


def canonical_band_name(name: str) -> str:
    """Normalise a band name: Sentinel-2 bands to ``B01``..``B12``/``B8A``, others upper-case."""
    if _QGIS_PREFIX.match(name):
        name = _QGIS_PREFIX.sub("", name)
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


def match_bands(model_bands: Sequence[str], descriptions: Sequence[str | None]) -> list[int | None]:
    """For each model band, the 1-based layer band with the same canonical name, else ``None``.

    When the layer has no descriptions at all and exactly as many bands as the model, bands are
    taken in order.
    """
    positions = band_positions(descriptions)
    if not positions and len(descriptions) == len(model_bands):
        return list(range(1, len(model_bands) + 1))
    return [positions.get(canonical_band_name(band)) for band in model_bands]


def format_band_list(mapping: Sequence[int | str]) -> str:
    """The ``--optical-bands``/``--sar-bands`` value: ``"1,2,3"`` (indexes or names, model order)."""
    return ",".join(str(entry) for entry in mapping)


def parse_band_list(text: str) -> list[int | str]:
    """``"1,2,B03"`` -> ``[1, 2, "B03"]`` (the inverse of :func:`format_band_list`)."""
    entries: list[int | str] = []
    for part in text.replace(" ", "").split(","):
        if part:
            entries.append(int(part) if part.isdigit() else part)
    return entries
