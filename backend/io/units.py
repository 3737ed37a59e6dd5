"""Decide the radiometric units of an input raster and convert its values to the model's units.

The models expect optical values in the Sentinel-2 digital-number scale of processing baselines
before 04.00 (reflectance x 10000, no offset) and radar backscatter in dB. The vocabulary is in
:mod:`backend.contract.units`; this module decides, for one opened raster and its mapped bands,
which unit the values are in and how to convert them.

Public API:

* ``sample_bands(view, bands, window=None, side=SAMPLE_SIDE) -> np.ma.MaskedArray``: a decimated
  (nearest) masked read of at most ``side`` x ``side`` pixels: bounded memory on any raster.
* ``decide_optical_units(src, bands, requested="auto", sensor=None, sample=None) -> UnitsDecision``
* ``decide_sar_units(src, bands, requested="auto", sample=None) -> UnitsDecision``
* ``UnitsDecision.to_model(raw)`` converts raw ``[C, h, w]`` file values to model units (float32);
  ``describe()`` is the one log line.

Auto-detection, optical (first rule that applies):

1. GDAL scale/offset metadata on a mapped band (``src.scales``/``src.offsets``) -> ``scaled``.
2. ``BOA_ADD_OFFSET``/``RADIO_ADD_OFFSET`` tags (dataset or band) or ``PROCESSING_BASELINE`` >= 04.00
   -> ``dn-offset`` (offset from the tag, else -1000).
3. Landsat metadata (:func:`backend.contract.sensors.landsat_level`): ``PROCESSING_LEVEL``, a USGS
   product ID in the tags, band names or file name (``LC08_L1TP_...`` -> ``landsat-l1``,
   ``LC09_L2SP_...`` -> ``landsat-c2``), or MTL ``REFLECTANCE_MULT_BAND_x`` tags -> ``landsat-l1``
   (8-bit TM/ETM+ Level-1 DN only with those tags: OLI's default factors do not fit them).
4. ``uint8`` -> ``brightness`` (warned: uncalibrated; mapped linearly, 255 -> reflectance
   :data:`BRIGHTNESS_FULL_SCALE` / 10000, i.e. 0.30).
5. Floats: sampled 99th percentile <= 1.5 -> ``reflectance``; <= 150 -> ``percent``; else ``dn``.
6. Integers: with a Landsat (or no) sensor hint and every band's 1st percentile >= 7000 (Collection 2
   Level-2 zero reflectance is 7273) -> ``landsat-c2``; with a Landsat sensor (named or detected),
   a lowest band 1st percentile in 4000-7000 and a median up to 35000 -> ``landsat-l1`` (Level-1
   TOA reflectance 0 is DN 5000: dark water's red and NIR sit at 5500-7000, below any Level-2 value;
   a real L1 stack's red p1 was 6732); else ``dn`` (warned as ambiguous when every band's 1st
   percentile is in 1000-3000, the mark of an undeclared +1000 offset, or above 3000).

Auto-detection, radar: a negative median (or many negative values) -> ``db``; non-negative values
are linear power or amplitude, told apart by the VH/VV median ratio (power ~0.15-0.32, amplitude
~0.4-0.57; boundary 0.36) and the VV median (power ~0.03-0.15, amplitude ~0.18-0.4).
Borderline cases are flagged ambiguous and warned with the choice made and ``--sar-units``.

Conversions: optical ``model = raw * scale + offset``, clamped at 0 (negative reflectance does not
exist in the model's units: products before baseline 04.00 clipped it to 0); radar
``model = factor * log10(max(raw, LINEAR_FLOOR))`` with factor 10 (power) or 20 (amplitude), so
zero or negative linear values (thermal-noise removal) become -50 dB, far below any real
backscatter and below the stretch's lower end. A declared unit always wins; when it contradicts
the values (e.g. ``reflectance`` on values in the thousands) a warning says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rasterio.enums import Resampling
from rasterio.windows import Window

from backend.contract.sensors import band_key, landsat_level
from backend.contract.units import OPTICAL_UNITS, SAR_UNITS
from backend.errors import UserError

SAMPLE_SIDE = 256
"""Side of the decimated sample used to decide units (pixels per band at most ``SAMPLE_SIDE``²)."""
MODEL_DN = 10000.0
"""Reflectance 1.0 in the model's optical units."""
DEFAULT_S2_OFFSET = -1000.0
"""Sentinel-2 ``BOA_ADD_OFFSET`` of processing baselines >= 04.00, in DN."""
BRIGHTNESS_FULL_SCALE = 3000.0
"""Model DN that 8-bit brightness 255 maps to (reflectance 0.30, about the visible bands' mean + 2 std)."""
LANDSAT_C2_SCALE, LANDSAT_C2_OFFSET = 2.75e-5, -0.2
"""Landsat Collection 2 Level-2 surface reflectance = DN x scale + offset."""
LANDSAT_C2_MIN_P1 = 7000.0
"""Every band's 1st percentile at or above this (zero reflectance is DN 7273) means Collection 2."""
LANDSAT_L1_SCALE, LANDSAT_L1_OFFSET = 2e-5, -0.1
"""Landsat Collection 2 Level-1 TOA reflectance = DN x scale + offset (the usual MTL values)."""
LANDSAT_L1_MIN_P1, LANDSAT_L1_MAX_MEDIAN = 4000.0, 35000.0
"""Landsat Level-1 DN by values: lowest band p1 at or above this (TOA 0 is DN 5000), median at most this."""
OFFSET_HINT_MIN_P1, OFFSET_HINT_MAX_P1 = 1000.0, 3000.0
"""Every band's 1st percentile in this range hints at an undeclared +1000 offset (above: not clear S2 DN)."""
REFLECTANCE_MAX_P99 = 1.5
PERCENT_MAX_P99 = 150.0
LINEAR_FLOOR = 1e-5
"""Linear power floor before taking logs (-50 dB); amplitude floor is its square root."""
POWER_AMPLITUDE_RATIO = 0.36
"""VH/VV median ratio between typical power (0.17-0.32 on the shared S1 data) and amplitude (0.41-0.57)."""
RATIO_AMBIGUOUS = (0.30, 0.42)
POWER_AMPLITUDE_VV = 0.17
"""VV median between typical power (~0.03-0.15) and amplitude (~0.18-0.4) values."""
VV_AMBIGUOUS = (0.12, 0.25)
_OFFSET_TAG = re.compile(r"^(BOA|RADIO)_ADD_OFFSET")


@dataclass
class UnitsDecision:
    """What unit a modality's values are in and how they become model units.

    Attributes:
        modality: ``"optical"`` or ``"sar"``.
        units: the unit used (never ``auto``).
        how: how it was decided (``declared``, or the metadata/values that decided it).
        scale: optical per-band factor (model = raw x scale + offset).
        offset: optical per-band addend, in model DN.
        log_factor: radar: ``None`` (already dB), 10 (power) or 20 (amplitude).
        warnings: messages for the analyst (ambiguity, contradictions, uncalibrated input).
        ambiguous: the values fit more than one unit.
    """

    modality: str
    units: str
    how: str
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    log_factor: float | None = None
    warnings: list[str] = field(default_factory=list)
    ambiguous: bool = False

    def to_model(self, raw: np.ndarray) -> np.ndarray:
        """Raw file values ``[C, h, w]`` -> float32 values in the model's units."""
        values = np.asarray(raw, dtype=np.float32)
        if self.modality == "sar":
            if self.log_factor is None:
                return values.copy() if values is raw else values
            floor = LINEAR_FLOOR if self.log_factor == 10 else math.sqrt(LINEAR_FLOOR)
            with np.errstate(invalid="ignore"):
                clamped = np.where(values > floor, values, np.float32(floor))
            clamped = np.where(np.isnan(values), np.float32(np.nan), clamped)
            return (np.float32(self.log_factor) * np.log10(clamped)).astype(np.float32)
        scale = self.scale.astype(np.float32)[:, None, None]
        offset = self.offset.astype(np.float32)[:, None, None]
        if np.all(scale == 1) and np.all(offset == 0):
            return values.copy() if values is raw else values
        converted = values * scale + offset
        with np.errstate(invalid="ignore"):
            return np.maximum(converted, np.float32(0), where=~np.isnan(converted), out=converted)

    def describe(self) -> str:
        """One log line: ``optical units: reflectance (values: float, p99 0.31) -> x 10000``."""
        if self.modality == "sar":
            how = {None: "used as dB", 10: "-> 10 log10", 20: "-> 20 log10"}[self.log_factor]
            return f"radar units: {self.units} ({self.how}) {how}"
        if np.all(self.scale == 1) and np.all(self.offset == 0):
            conversion = "used as they are"
        else:
            conversion = f"-> x {_short(self.scale)}"
            if np.any(self.offset):
                conversion += f" {_signed(self.offset)}"
        return f"optical units: {self.units} ({self.how}) {conversion}"

    def key(self) -> dict[str, Any]:
        """What determines the conversion (for the embedding cache key)."""
        return {"units": self.units, "scale": [float(v) for v in self.scale],
                "offset": [float(v) for v in self.offset], "log_factor": self.log_factor}

    def facts(self) -> dict[str, Any]:
        """JSON-friendly summary (cache key, sidecar, result stats)."""
        return {"units": self.units, "how": self.how, "scale": [float(v) for v in self.scale],
                "offset": [float(v) for v in self.offset], "log_factor": self.log_factor,
                "ambiguous": self.ambiguous}


def _short(values: np.ndarray) -> str:
    unique = np.unique(values)
    return f"{unique[0]:g}" if len(unique) == 1 else "[" + ",".join(f"{v:g}" for v in values) + "]"


def _signed(values: np.ndarray) -> str:
    unique = np.unique(values)
    if len(unique) == 1:
        return f"{'+' if unique[0] >= 0 else '-'} {abs(unique[0]):g}"
    return "+ [" + ",".join(f"{v:g}" for v in values) + "]"


# -- sampling ---------------------------------------------------------------------------------
def sample_bands(view: Any, bands: Sequence[int], window: Window | None = None,
                 side: int = SAMPLE_SIDE) -> np.ma.MaskedArray:
    """A decimated nearest-neighbour masked read of ``bands`` over ``window`` (whole raster default)."""
    if window is None:
        window = Window(0, 0, view.width, view.height)
    step = max(1.0, max(window.width, window.height) / side)
    shape = (len(bands), max(1, round(window.height / step)), max(1, round(window.width / step)))
    return view.read(list(bands), window=window, out_shape=shape, resampling=Resampling.nearest,
                     masked=True)


def _band_values(sample: np.ma.MaskedArray, drop_zeros: bool = False) -> list[np.ndarray]:
    """Valid, finite values of each band (exact zeros dropped when asked: integer nodata)."""
    out = []
    for band in sample:
        values = np.ma.compressed(band).astype(np.float64)
        values = values[np.isfinite(values)]
        if drop_zeros:
            values = values[values != 0]
        out.append(values)
    return out


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


# -- optical ----------------------------------------------------------------------------------
def _offset_tags(src: Any, bands: Sequence[int]) -> tuple[np.ndarray | None, str]:
    """Per-band additive offsets (DN) from S2 tags, or ``None``; and the tag that gave them."""
    dataset = {k.upper(): v for k, v in src.tags().items()}
    dataset_offset = next((v for k, v in dataset.items() if _OFFSET_TAG.match(k)), None)
    found, where = [], ""
    for band in bands:
        tags = {k.upper(): v for k, v in src.tags(band).items()}
        value = next((v for k, v in tags.items() if _OFFSET_TAG.match(k)), dataset_offset)
        found.append(value)
        if value is not None and not where:
            key = next((k for k in tags if _OFFSET_TAG.match(k)), None)
            where = key or next(k for k in dataset if _OFFSET_TAG.match(k))
    if any(v is not None for v in found):
        try:
            return np.array([float(v) if v is not None else DEFAULT_S2_OFFSET for v in found]), where
        except ValueError:
            return None, ""
    baselines = [dataset.get("PROCESSING_BASELINE")] + [src.tags(b).get("PROCESSING_BASELINE") for b in bands]
    baseline = next((b for b in baselines if b), None)
    try:
        if baseline is not None and float(baseline) >= 4.0:
            return np.full(len(bands), DEFAULT_S2_OFFSET), f"PROCESSING_BASELINE={baseline}"
    except ValueError:
        pass
    return None, ""


def _optical_params(units: str, src: Any, bands: Sequence[int],
                    tag_offsets: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    n = len(bands)
    ones, zeros = np.ones(n), np.zeros(n)
    if units in ("dn", "auto"):
        return ones, zeros
    if units == "dn-offset":
        return ones, tag_offsets if tag_offsets is not None else np.full(n, DEFAULT_S2_OFFSET)
    if units == "reflectance":
        return np.full(n, MODEL_DN), zeros
    if units == "percent":
        return np.full(n, MODEL_DN / 100), zeros
    if units == "landsat-c2":
        return np.full(n, LANDSAT_C2_SCALE * MODEL_DN), np.full(n, LANDSAT_C2_OFFSET * MODEL_DN)
    if units == "brightness":
        return np.full(n, BRIGHTNESS_FULL_SCALE / 255), zeros
    if units == "landsat-l1":
        return _landsat_l1_params(src, bands)
    if units == "scaled":
        scales = np.array([src.scales[b - 1] for b in bands], dtype=np.float64)
        offsets = np.array([src.offsets[b - 1] for b in bands], dtype=np.float64)
        return scales * MODEL_DN, offsets * MODEL_DN
    raise ValueError(f"unknown optical units {units!r}")


def _landsat_l1_params(src: Any, bands: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Level-1 DN -> model DN per band: the MTL's REFLECTANCE_MULT/ADD_BAND_x (band number from the band's
    name, else its position) and SUN_ELEVATION when tagged, else DN x 2e-5 - 0.1."""
    dataset = {k.upper(): v for k, v in src.tags().items()}
    sun = _tag_float(dataset, "SUN_ELEVATION")
    divisor = math.sin(math.radians(sun)) if sun is not None and 0 < sun <= 90 else 1.0
    scale, offset = [], []
    for band in bands:
        tags = {**dataset, **{k.upper(): v for k, v in src.tags(band).items()}}
        match = re.search(r"B(\d+)$", band_key(src.descriptions[band - 1] or f"B{band}"))
        number = match.group(1) if match else str(band)
        mult = _tag_float(tags, f"REFLECTANCE_MULT_BAND_{number}")
        add = _tag_float(tags, f"REFLECTANCE_ADD_BAND_{number}")
        scale.append((mult if mult is not None else LANDSAT_L1_SCALE) / divisor * MODEL_DN)
        offset.append((add if add is not None else LANDSAT_L1_OFFSET) / divisor * MODEL_DN)
    return np.array(scale), np.array(offset)


def _mtl_calibrated(src: Any, bands: Sequence[int]) -> bool:
    """Whether the raster carries the MTL's REFLECTANCE_MULT_BAND_x tags (dataset or mapped bands).

    TM/ETM+ Level-1 DN are 8-bit, their scene-specific factors far from OLI's 2e-5 (255 DN span the
    reflectance range): without the tags they are read as uncalibrated brightness, not with OLI's.
    """
    tags = [*src.tags(), *(k for b in bands for k in src.tags(b))]
    return any(k.upper().startswith("REFLECTANCE_MULT_BAND_") for k in tags)


def _tag_float(tags: dict[str, str], key: str) -> float | None:
    try:
        return float(tags[key]) if key in tags else None
    except ValueError:
        return None


def _has_scaling(src: Any, bands: Sequence[int]) -> bool:
    return any(src.scales[b - 1] not in (1.0, None) or src.offsets[b - 1] not in (0.0, None) for b in bands)


def _level1_names(src: Any, bands: Sequence[int]) -> bool:
    """Whether every mapped band is named as a USGS Level-1 file band (``B4``), not ``SR_B4``."""
    names = [src.descriptions[b - 1] for b in bands]
    return all(name and re.fullmatch(r"B\d+", band_key(name)) for name in names)


def _optical_guess(p99: float, min_p1: float, median: float, integer: bool, uint8: bool,
                   sensor: str | None) -> tuple[str, str]:
    """Unit from the values alone, and why."""
    if uint8:
        return "brightness", "8-bit values"
    if not integer:
        if p99 <= REFLECTANCE_MAX_P99:
            return "reflectance", f"float values, p99 {p99:.3g}"
        if p99 <= PERCENT_MAX_P99:
            return "percent", f"float values, p99 {p99:.3g}"
        return "dn", f"float values, p99 {p99:.4g}"
    landsat_hint = sensor in (None, "auto", "landsat-oli", "landsat-tm")
    if landsat_hint and min_p1 >= LANDSAT_C2_MIN_P1 and median <= 44000:
        return "landsat-c2", f"integer values, every band's p1 >= {min_p1:.0f}"
    if (sensor in ("landsat-oli", "landsat-tm") and min_p1 >= LANDSAT_L1_MIN_P1
            and median <= LANDSAT_L1_MAX_MEDIAN):
        return "landsat-l1", (f"integer values, lowest band p1 {min_p1:.0f}: below Collection 2 Level-2's "
                              f"zero reflectance (7273), in Level-1's range (TOA 0 = DN 5000)")
    return "dn", f"integer values, p99 {p99:.4g}"


def _contradiction(units: str, p99: float, median: float) -> str | None:
    """Why values obviously do not fit a declared optical unit, or ``None``."""
    if not math.isfinite(p99):
        return None
    if units == "reflectance" and p99 > 2 * REFLECTANCE_MAX_P99:
        return f"values reach {p99:.4g} (p99), not 0-1 reflectance"
    if units == "percent" and (p99 > 2 * PERCENT_MAX_P99 or p99 <= REFLECTANCE_MAX_P99):
        return f"values reach {p99:.4g} (p99), not 0-100 percent"
    if units in ("dn", "dn-offset") and p99 <= PERCENT_MAX_P99:
        return f"values only reach {p99:.4g} (p99), far below Sentinel-2 digital numbers"
    if units == "landsat-l1" and median < LANDSAT_L1_MIN_P1 / 2:
        return f"the median {median:.4g} is below Landsat Level-1 values (TOA reflectance 0 is DN 5000)"
    if units == "landsat-c2" and median < LANDSAT_C2_MIN_P1 / 2:
        return f"the median {median:.4g} is below Landsat Collection 2 values (zero reflectance is 7273)"
    if units == "brightness" and p99 > 255:
        return f"values reach {p99:.4g} (p99), not 8-bit brightness"
    return None


def decide_optical_units(src: Any, bands: Sequence[int], requested: str = "auto", sensor: str | None = None,
                         sample: np.ma.MaskedArray | None = None) -> UnitsDecision:
    """Decide the units of an optical raster's mapped bands (see the module docstring).

    Args:
        src: the opened raster file (metadata: dtype, scales/offsets, tags).
        bands: 1-based band indexes of ``src`` in model order.
        requested: ``--optical-units`` (``auto`` detects).
        sensor: the sensor preset name, or ``None``/``"auto"`` when unknown.
        sample: a masked ``[C, h, w]`` sample of those bands (read here when ``None``).

    Returns:
        The decision, with its conversion parameters and warnings.
    """
    if requested not in OPTICAL_UNITS:
        raise UserError(f"--optical-units must be one of {', '.join(OPTICAL_UNITS)}; got {requested!r}")
    dtype = np.dtype(src.dtypes[bands[0] - 1])
    integer, uint8 = np.issubdtype(dtype, np.integer), dtype == np.uint8
    if sample is None:
        sample = sample_bands(src, bands)
    per_band = _band_values(sample, drop_zeros=bool(integer and src.nodata is None))
    everything = np.concatenate(per_band) if per_band else np.zeros(0)
    p99, median = _percentile(everything, 99), _percentile(everything, 50)
    p1s = [_percentile(v, 1) for v in per_band if len(v)]
    min_p1 = min(p1s) if p1s else float("nan")
    tag_offsets, tag = _offset_tags(src, bands)
    warnings: list[str] = []
    ambiguous = False
    if requested != "auto":
        units, how = requested, "declared"
        if units == "scaled" and not _has_scaling(src, bands):
            raise UserError("--optical-units scaled: the optical raster has no scale/offset metadata on its "
                            "bands; declare the units instead (e.g. --optical-units reflectance)")
        scale, offset = _optical_params(units, src, bands, tag_offsets)
        why = _contradiction(units, p99, median) if units != "scaled" else None
        if why:
            guess, _ = _optical_guess(p99, min_p1, median, integer, uint8, sensor)
            warnings.append(f"--optical-units {units} was declared but {why}; they look like {guess}. "
                            f"Keeping {units}; pass --optical-units {guess} (or auto) if that is wrong")
    elif _has_scaling(src, bands):
        units, how = "scaled", "GDAL scale/offset metadata"
        scale, offset = _optical_params(units, src, bands, None)
        scaled_p99 = _percentile(everything * scale.mean() / MODEL_DN + offset.mean() / MODEL_DN, 99)
        if math.isfinite(scaled_p99) and scaled_p99 > 2 * REFLECTANCE_MAX_P99:
            warnings.append(f"the optical raster's scale/offset metadata gives values up to "
                            f"{scaled_p99:.4g}, not 0-1 reflectance; pass --optical-units dn (or the right "
                            "unit) to ignore it")
    elif tag_offsets is not None and np.any(tag_offsets):
        units, how = "dn-offset", f"metadata {tag}"
        scale, offset = _optical_params(units, src, bands, tag_offsets)
    elif (landsat := landsat_level(src.descriptions, src.tags(), src.name)) and not (
            uint8 and landsat[0] == "landsat-l1" and not _mtl_calibrated(src, bands)):
        units, how = landsat[0], f"metadata: {landsat[1]}"
        scale, offset = _optical_params(units, src, bands, None)
    elif not len(everything):
        units, how = "dn", "no valid values to sample"
        scale, offset = _optical_params(units, src, bands, None)
    else:
        units, how = _optical_guess(p99, min_p1, median, integer, uint8, sensor)
        how = f"values: {how}"
        if units == "landsat-c2" and sensor in ("landsat-oli", "landsat-tm") and _level1_names(src, bands):
            units, how, ambiguous = "landsat-l1", f"{how}, plain B# band names as USGS Level-1 files", True
            warnings.append(f"the Landsat values (every band's p1 >= {min_p1:.0f}) fit Level-1 and "
                            "Collection 2 Level-2 alike; the plain B# band names (Level-2 files are SR_B#) "
                            "make them Level-1 DN (TOA reflectance = DN x 2e-5 - 0.1). If they are Level-2 "
                            "surface reflectance, pass --optical-units landsat-c2")
        scale, offset = _optical_params(units, src, bands, None)
        if units == "dn" and integer and min_p1 >= OFFSET_HINT_MAX_P1:
            ambiguous = True
            warnings.append(f"every optical band's values start at {min_p1:.0f} or more, too bright for "
                            "Sentinel-2 digital numbers of a clear scene: clouds or snow, or another product "
                            "(Landsat: --sensor landsat-oli/landsat-tm, or --optical-units landsat-l1 for "
                            "Level-1, landsat-c2 for Collection 2 Level-2); read as plain digital numbers "
                            "(dn)")
        elif units == "dn" and integer and min_p1 >= OFFSET_HINT_MIN_P1:
            ambiguous = True
            warnings.append(f"every optical band's values start at {min_p1:.0f} or more, as Sentinel-2 "
                            "processing baseline 04.00+ data with its +1000 offset do; read as plain digital "
                            "numbers (dn). If the product is baseline 04.00 or later, pass --optical-units "
                            "dn-offset")
        if units == "percent":
            ambiguous = True
            warnings.append(f"optical float values up to {p99:.3g} (p99) read as reflectance in percent; "
                            "pass --optical-units reflectance or dn if that is wrong")
        if units == "dn" and not integer and p99 > 30000:
            warnings.append(f"optical values up to {p99:.4g} (p99) are unusually high for Sentinel-2 digital "
                            "numbers; check the product's units and pass --optical-units")
    if units == "brightness":
        warnings.append("the optical raster holds uncalibrated 8-bit brightness (e.g. an RGB photo or NAIP), "
                        "not Sentinel-2 reflectance: it is mapped linearly (255 -> reflectance 0.30), so its "
                        "embeddings are not comparable with Sentinel-2 ones and may mean little; use "
                        "calibrated reflectance where you have it")
    return UnitsDecision("optical", units, how, scale, offset, None, warnings, ambiguous)


# -- radar ------------------------------------------------------------------------------------
def _linear_guess(medians: list[float]) -> tuple[str, str, bool]:
    """Power or amplitude for non-negative radar values: ``(units, why, ambiguous)``.

    Two cues: the VH/VV median ratio (when both bands are there) and the VV median. A cue inside
    its borderline zone is unsure; the decision is ambiguous when no cue is sure, or when two sure
    cues disagree (the ratio then wins: it does not depend on the scene's brightness).
    """
    vv = medians[0]
    by_vv = "linear" if vv < POWER_AMPLITUDE_VV else "amplitude"
    vv_sure = not VV_AMBIGUOUS[0] <= vv <= VV_AMBIGUOUS[1]
    if len(medians) < 2 or vv <= 0:
        return by_vv, f"non-negative values, median {vv:.3g}", not vv_sure
    ratio = medians[1] / vv
    by_ratio = "linear" if ratio < POWER_AMPLITUDE_RATIO else "amplitude"
    ratio_sure = not RATIO_AMBIGUOUS[0] <= ratio <= RATIO_AMBIGUOUS[1]
    why = f"non-negative values, VH/VV median ratio {ratio:.3g}, VV median {vv:.3g}"
    if ratio_sure:
        return by_ratio, why, vv_sure and by_vv != by_ratio
    if vv_sure:
        return by_vv, why, False
    return by_ratio, why, True


def decide_sar_units(src: Any, bands: Sequence[int], requested: str = "auto",
                     sample: np.ma.MaskedArray | None = None) -> UnitsDecision:
    """Decide the units of a radar raster's mapped bands (VV, VH in model order; see the module docstring).

    Args:
        src: the opened raster (or its aligned view).
        bands: 1-based band indexes in model order.
        requested: ``--sar-units`` (``auto`` detects).
        sample: a masked ``[C, h, w]`` sample of those bands (read here when ``None``).
    """
    if requested not in SAR_UNITS:
        raise UserError(f"--sar-units must be one of {', '.join(SAR_UNITS)}; got {requested!r}")
    if sample is None:
        sample = sample_bands(src, bands)
    per_band = _band_values(sample)
    medians = [_percentile(v, 50) for v in per_band]
    everything = np.concatenate(per_band) if per_band else np.zeros(0)
    negative = float((everything < 0).mean()) if len(everything) else 0.0
    median = _percentile(everything, 50)
    warnings: list[str] = []
    ambiguous = False
    looks_db = bool(len(everything)) and (median < 0 or negative > 0.2)
    if requested != "auto":
        units, how = requested, "declared"
        if units == "db" and len(everything) and not looks_db:
            guess, _, _ = _linear_guess(medians)
            warnings.append(f"--sar-units db was declared but no radar value is negative (median "
                            f"{median:.3g}); they look like {guess}. Keeping db; pass --sar-units {guess} "
                            "(or auto) if that is wrong")
        elif units != "db" and looks_db:
            warnings.append(f"--sar-units {units} was declared but {negative:.0%} of the radar values are "
                            "negative, as in dB; they become -50 dB. Keeping it; pass --sar-units db "
                            "(or auto) if that is wrong")
    elif not len(everything):
        units, how = "db", "no valid values to sample"
    elif looks_db:
        units, how = "db", f"values: median {median:.3g}"
    else:
        units, why, ambiguous = _linear_guess(medians)
        how = f"values: {why}"
        if ambiguous:
            other = "amplitude" if units == "linear" else "linear"
            warnings.append(f"radar values could be linear power or amplitude ({why}); read as {units}. "
                            f"If they are {other}, pass --sar-units {other}")
        if median > 50:
            warnings.append(f"radar values have a median of {median:.4g}: that is not calibrated backscatter "
                            "(dB, power or amplitude) but probably raw digital numbers; calibrate them first")
    log_factor = {"db": None, "linear": 10.0, "amplitude": 20.0}[units]
    n = len(bands)
    return UnitsDecision("sar", units, how, np.ones(n), np.zeros(n), log_factor, warnings, ambiguous)
