"""Which file bands feed a model's optical bands, given the raster's sensor.

* ``check_sensor_options(sensor, spectral_fill)``: one clear error for a bad option value.
* ``optical_sensor(path, declared="auto") -> sensor | None``: the same for a raster file (model choice).
* ``raster_sensor(src, declared="auto") -> (sensor, reason)``: the declared ``--sensor``, else the
  one :func:`backend.contract.sensors.detect_sensor` finds from the band names and metadata.
* ``map_optical_bands(src, expected, explicit=None, sensor="auto", spectral_fill="auto")
  -> OpticalBands``: ``--optical-bands`` when given (it always wins); Sentinel-2 rasters by band
  name (:func:`backend.io.rasters.map_bands`, as always); any other sensor by centre wavelength
  (:func:`backend.contract.sensors.match_by_wavelength`), with a spectral fill for model bands
  the sensor lacks (``spectral_fill="off"``: an error listing them instead).
* ``mix_bands(matrix, values) -> values``: apply a fill plan's weights to file bands ``[C, h, w]``.

Spectral fill is an approximation: a filled band is a linear interpolation in wavelength between
the two nearest bands the sensor has (or the nearest one's value beyond its first/last band), not
a measurement. It keeps a Sentinel-2 model runnable on Landsat, RGBN or RGB imagery; a model
adapted to the sensor (X-STARS) needs no fill and is preferred when one is bundled.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.contract.sensors import (
    PRESETS,
    SENSOR_NAMES,
    BandPlan,
    SensorMatchError,
    detect_sensor,
    match_by_wavelength,
    non_optical_bands,
)
from backend.errors import UserError
from backend.io.rasters import map_bands, open_raster

SPECTRAL_FILL_CHOICES: tuple[str, ...] = ("auto", "off")


@dataclass
class OpticalBands:
    """How an optical raster is read for a model.

    Attributes:
        sensor: the raster's sensor (a ``PRESETS`` key).
        reason: why (declared, or what detection saw).
        bands: 1-based file bands to read.
        matrix: ``[model bands, len(bands)]`` weights when bands are filled, else ``None`` (the
            bands are then already in model order).
        plan: the wavelength plan (``None`` for Sentinel-2 by name or ``--optical-bands``).
        notes: one log line per decision.
        warnings: lines to show as warnings (the filled bands).
    """

    sensor: str
    reason: str
    bands: list[int]
    matrix: np.ndarray | None = None
    plan: BandPlan | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def filled(self) -> list[str]:
        """Model bands made by spectral fill."""
        return self.plan.approximated if self.plan is not None else []


def check_sensor_options(sensor: str | None, spectral_fill: str | None) -> None:
    """One clear ``UserError`` for a ``--sensor`` or ``--spectral-fill`` value outside the choices."""
    if sensor not in (None, *SENSOR_NAMES):
        raise UserError(f"--sensor must be one of {', '.join(SENSOR_NAMES)}; got {sensor!r}")
    if spectral_fill not in (None, *SPECTRAL_FILL_CHOICES):
        raise UserError(f"--spectral-fill must be one of {', '.join(SPECTRAL_FILL_CHOICES)}; "
                        f"got {spectral_fill!r}")


def optical_sensor(path: str | os.PathLike[str] | None, declared: str | None = "auto") -> str | None:
    """The sensor of the optical raster at ``path`` (``None`` without one), declared or detected."""
    if path is None:
        return None
    if declared and declared != "auto":
        return raster_sensor(None, declared)[0]
    with open_raster(path, "optical") as src:
        return raster_sensor(src, declared)[0]


def raster_sensor(src: Any, declared: str | None = "auto") -> tuple[str, str]:
    """The sensor of the open raster ``src``: ``declared`` unless ``auto``/``None``, else detected."""
    if declared and declared != "auto":
        if declared not in PRESETS:
            raise UserError(f"--sensor must be one of auto, {', '.join(PRESETS)}; got {declared!r}")
        return declared, "declared with --sensor"
    return detect_sensor(src.descriptions, src.tags(), src.count, src.dtypes[0], src.name)


def map_optical_bands(src: Any, expected: Sequence[str], explicit: str | None = None,
                      sensor: str | None = "auto", spectral_fill: str = "auto") -> OpticalBands:
    """The file bands (and fill weights) that give the model's ``expected`` optical bands.

    Args:
        src: the open optical raster.
        expected: the model's optical band names (Sentinel-2 names), in model order.
        explicit: ``--optical-bands`` (one file band per model band), or ``None``.
        sensor: ``--sensor`` (``auto`` detects).
        spectral_fill: ``auto`` fills missing bands by wavelength; ``off`` refuses them.
    """
    if spectral_fill not in SPECTRAL_FILL_CHOICES:
        raise UserError(f"--spectral-fill must be auto or off, got {spectral_fill!r}")
    name, reason = raster_sensor(src, sensor)
    note = f"sensor: {name} ({reason})"
    if explicit:
        bands = map_bands(src, expected, explicit, "optical", "--optical-bands")
        return OpticalBands(name, reason, bands, notes=[note, "optical bands: as given by --optical-bands"])
    if name == "sentinel2":
        try:
            bands = map_bands(src, expected, None, "optical", "--optical-bands")
        except UserError as error:
            raise UserError(f"read as Sentinel-2 ({reason}): {error}. If the raster is not Sentinel-2, pass "
                            f"--sensor first ({', '.join(PRESETS)})") from None
        return OpticalBands(name, reason, bands, notes=[note])
    try:
        plan = match_by_wavelength(name, src.descriptions, expected)
    except SensorMatchError as error:
        raise UserError(f"optical raster ({name}): {error}") from None
    notes = [note, f"optical bands by wavelength: {plan.describe()}"]
    ignored = non_optical_bands(name, src.descriptions)
    if ignored:
        notes.append(f"not optical reflectance, left out: {', '.join(ignored)}")
    direct = plan.direct
    if direct is not None:
        return OpticalBands(name, reason, direct, plan=plan, notes=notes)
    missing = ", ".join(plan.approximated)
    if spectral_fill == "off":
        raise UserError(f"the {PRESETS[name].title} raster has no band for the model's {missing}; use a "
                        f"model adapted to the sensor, --spectral-fill auto, or --optical-bands")
    matrix = np.asarray(plan.matrix(), dtype=np.float32)
    warning = (f"spectral fill: the model's {missing} are approximated from neighbouring wavelengths of "
               f"the {PRESETS[name].title} bands (interpolated, not measured); --model galileo-nano reads "
               f"the raster's own bands without any fill (channel groups)")
    return OpticalBands(name, reason, plan.file_bands, matrix, plan, notes, [warning])


def mix_bands(matrix: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Model bands ``[M, h, w]`` = ``matrix [M, C]`` x file bands ``values [C, h, w]`` (float32)."""
    mixed = np.tensordot(matrix, values.astype(np.float32, copy=False), axes=(1, 0))
    return mixed.astype(np.float32, copy=False)
