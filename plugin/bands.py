"""Match a layer's bands to a model's bands from their descriptions (pure Python)."""

from __future__ import annotations

import re
from collections.abc import Sequence

_SENTINEL_BAND = re.compile(r"^B0*(\d{1,2})(A?)$")
_QGIS_PREFIX = re.compile(r"^Band\s*\d+\s*:\s*", re.IGNORECASE)


def canonical_band_name(name: str) -> str:
    """``"b2"``/``"B02"`` -> ``"B02"``, ``"b8a"`` -> ``"B8A"``, ``"vv"`` -> ``"VV"`` (as the backend)."""
    cleaned = name.strip().upper().replace(" ", "").replace("_", "")
    match = _SENTINEL_BAND.match(cleaned)
    if match:
        number, suffix = match.groups()
        return f"B{int(number)}{suffix}" if suffix else f"B{int(number):02d}"
    return cleaned


def description_from_band_name(band_name: str) -> str:
    """The description part of QGIS's band name (``"Band 09: B8A"`` -> ``"B8A"``; ``""`` if none)."""
    if _QGIS_PREFIX.match(band_name):
        return _QGIS_PREFIX.sub("", band_name).strip()
    return "" if re.fullmatch(r"Band\s*\d+", band_name.strip(), re.IGNORECASE) else band_name.strip()


def match_bands(model_bands: Sequence[str], layer_descriptions: Sequence[str]) -> list[int | None]:
    """For each model band, the 1-based layer band with the same name, else ``None``.

    When the layer has no descriptions at all and exactly as many bands as the model, bands are
    taken in order.
    """
    described = {}
    for index, description in enumerate(layer_descriptions, start=1):
        if description:
            described.setdefault(canonical_band_name(description), index)
    if not described and len(layer_descriptions) == len(model_bands):
        return list(range(1, len(model_bands) + 1))
    return [described.get(canonical_band_name(band)) for band in model_bands]


def bands_argument(mapping: Sequence[int | None]) -> str:
    """The ``--optical-bands``/``--sar-bands`` value (1-based indexes in model order).

    Raises:
        ValueError: when a model band has no layer band.
    """
    if any(index is None for index in mapping):
        raise ValueError("every model band needs a layer band")
    return ",".join(str(index) for index in mapping)


def layer_band_descriptions(layer) -> list[str]:
    """Band descriptions of a QgsRasterLayer (``""`` where a band has none)."""
    return [description_from_band_name(layer.bandName(i)) for i in range(1, layer.bandCount() + 1)]
