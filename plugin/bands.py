"""Match a layer's bands to a model's bands from their descriptions (pure Python).

Sentinel-2 layers match by band name. Other sensors (Landsat, RGBN, RGB) match by centre
wavelength through the backend contract's sensor presets, so Landsat ``B5`` (NIR, 865 nm) feeds the
model's ``B8A``, never its red-edge ``B05``; model bands the sensor lacks are spectrally filled by
the backend (an approximation the dock names).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .contract import bands as _bands
from .contract import sensors as _sensors

AUTO = "auto"
SENTINEL2 = "sentinel2"
#: The sensor presets' names as the dock and Processing show them (``--sensor`` values are the keys).
SENSOR_LABELS: dict[str, str] = {
    "auto": "Auto (from band names)",
    "sentinel2": "Sentinel-2 MSI",
    "landsat-oli": "Landsat 8/9 OLI",
    "landsat-tm": "Landsat 4-7 TM/ETM+",
    "rgbn": "RGB + NIR (NAIP, PlanetScope)",
    "rgb": "RGB",
}


def sensor_label(name: str) -> str:
    """A sensor's name for people (the preset's title when the contract has one)."""
    if name in SENSOR_LABELS:
        return SENSOR_LABELS[name]
    preset = _sensors.PRESETS.get(name)
    return preset.title if preset is not None else name


#: One canonicaliser for both halves (``"B_02"`` -> ``"B02"``, ``"Band 09: B8A"`` -> ``"B8A"``).
canonical_band_name = _bands.canonical_band_name
description_from_band_name = _bands.description_from_band_name
match_bands = _bands.match_bands
DEFAULT_MODALITIES: dict[str, list[str]] = {name: list(b) for name, b in _bands.DEFAULT_MODALITIES.items()}


def bands_argument(mapping: Sequence[int | None]) -> str:
    """The ``--optical-bands``/``--sar-bands`` value (1-based indexes in model order).

    Raises:
        ValueError: when a model band has no layer band.
    """
    if any(index is None for index in mapping):
        raise ValueError("every model band needs a layer band")
    return _bands.format_band_list([index for index in mapping if index is not None])


def layer_band_descriptions(layer) -> list[str]:
    """Band descriptions of a QgsRasterLayer (``""`` where a band has none)."""
    return [description_from_band_name(layer.bandName(i)) for i in range(1, layer.bandCount() + 1)]


@dataclass
class BandPlan:
    """How a layer's bands feed a model's optical bands.

    Attributes:
        sensor: the sensor the layer is read as (``"sentinel2"``, ``"landsat-oli"``, ...).
        detected: ``True`` when ``sensor`` was recognised from the layer (the choice was ``auto``).
        reason: why that sensor (detection), or why matching failed (``error``).
        mapping: the 1-based layer band for each model band, ``None`` where there is none.
        filled: model bands the backend fills spectrally (no layer band of that wavelength).
        error: the contract's matching error (the analyst maps the bands by hand).
        named: whether the layer names any band (``False``: the band order is only assumed).
    """

    sensor: str
    detected: bool
    mapping: list[int | None]
    filled: list[str] = field(default_factory=list)
    reason: str = ""
    error: str = ""
    named: bool = True

    @property
    def can_fill(self) -> bool:
        """Whether model bands without a layer band are filled (a non-Sentinel-2 sensor that matched)."""
        return self.sensor != SENTINEL2 and not self.error


@dataclass
class LayerFacts:
    """What sensor detection reads from a layer: band descriptions, count, data type, metadata."""

    descriptions: list[str]
    dtype: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def resolve_sensor(facts: LayerFacts, choice: str = AUTO) -> tuple[str, str, bool]:
    """``(sensor, reason, detected)``: the chosen preset, else the one the contract recognises."""
    if choice in _sensors.PRESETS:
        return choice, "", False
    names = [d or None for d in facts.descriptions]
    sensor, reason = _sensors.detect_sensor(names, facts.tags, len(names), facts.dtype)
    return sensor, reason, True


def plan_optical_bands(model_bands: Sequence[str], facts: LayerFacts | Sequence[str],
                       sensor: str = AUTO) -> BandPlan:
    """Match a layer's bands to ``model_bands`` for ``sensor`` (``"auto"``: recognised from the layer).

    Sentinel-2 matches by band name (B10 skipped); other sensors by centre wavelength through the
    contract's presets (:func:`backend.contract.sensors.match_by_wavelength`), the model bands they
    lack listed in :attr:`BandPlan.filled`.
    """
    if not isinstance(facts, LayerFacts):
        facts = LayerFacts(list(facts))
    names = [d or None for d in facts.descriptions]
    sensor, reason, detected = resolve_sensor(facts, sensor)
    named = any(names)
    if sensor == SENTINEL2:
        return BandPlan(sensor, detected, match_bands(model_bands, facts.descriptions), reason=reason,
                        named=named)
    try:
        plan = _sensors.match_by_wavelength(sensor, names, list(model_bands))
    except ValueError as exc:  # SensorMatchError: no band of the layer is recognised
        return BandPlan(sensor, detected, [None] * len(model_bands), reason=reason, error=str(exc),
                        named=named)
    mapping = [None if source.approximated else int(source.weights[0][0]) for source in plan.sources]
    return BandPlan(sensor, detected, mapping, list(plan.approximated), reason=reason, named=named)


_GDAL_TYPES = {1: "uint8", 2: "uint16", 3: "int16", 4: "uint32", 5: "int32", 6: "float32", 7: "float64"}


def layer_facts(layer) -> LayerFacts:
    """A QgsRasterLayer's :class:`LayerFacts` (dataset metadata read with GDAL for file layers)."""
    provider = layer.dataProvider()
    dtype = _GDAL_TYPES.get(int(provider.dataType(1))) if layer.bandCount() else None
    tags: dict[str, str] = {}
    if layer.providerType() == "gdal":
        try:
            from osgeo import gdal

            dataset = gdal.Open(layer.source().split("|")[0])
            tags = dict(dataset.GetMetadata() or {}) if dataset is not None else {}
        except (ImportError, RuntimeError):
            tags = {}
    return LayerFacts(layer_band_descriptions(layer), dtype, tags)
