"""Galileo's channel groups from any optical sensor and/or Sentinel-1, and the encoder call on them.

Galileo (``backend.models.galileo``) takes its inputs as channel groups (S1, S2_RGB, S2_Red_Edge,
S2_NIR_10m, S2_NIR_20m, S2_SWIR, NDVI), each one token per patch, and any group may be absent
(masked). So a raster of any sensor feeds the groups whose bands it really has, with no spectral
fill:

* ``galileo_optical_bands(src, expected, explicit=None, sensor="auto") -> (OpticalBands, names)``:
  each Galileo Sentinel-2 band takes the file band with the nearest centre wavelength when one
  matches directly (the sensor presets and matcher of ``backend.contract.sensors``; Sentinel-2
  files by name or position, Landsat OLI ``B5`` feeds both B08 and B8A, RGB feeds S2_RGB only);
  a group is used only when ALL of its bands match; bands of incomplete groups are not read.
* ``acquisition_month(src, declared=None) -> (month, how)``: 0-based month: ``--month`` when given,
  else from a date in the raster's metadata
  (:data:`DATE_TAGS`) or in its file or folder name (``..._20200831.tif``,
  ``S2B_MSIL2A_20200223T...``), else :data:`DEFAULT_MONTH` (July, as the official wrapper).
* ``GalileoChannels``: the groups used and masked and the month of one run; ``describe()`` is the
  log line (``galileo groups used: S2_RGB, S2_NIR_10m, NDVI; masked: S1, ...``), ``key()`` goes
  into the embedding cache key.
* ``GalileoEmbedder(encoder, config, channels)``: what ``backend.inference.embed`` calls instead of a
  CROMA model: ``embedder(optical=[B, C, H, W], sar=[B, 2, H, W])`` (the ``InputSet``'s values:
  model units, Sentinel-2 DN scale and dB, as ``backend.io.units`` converts them, normalised by
  Galileo's pretraining rule ``(x - (mean - 2 std)) / (4 std)`` with the model file's statistics,
  unclipped) -> ``{EMBEDDING_KEY: [B, H/8, W/8, 128]}``: NDVI from the raw B04/B08 when both are
  present, the masks of absent groups set, one time step at the run's month; each 8x8 patch is the
  mean of its visible group tokens after the final norm (``embed_space_time``).
  ``normalise_optical(config, bands, raw)`` is that normalisation, for callers with raw patches.

Units: Galileo was pretrained on Level-1C TOA reflectance x 1e4 and Sentinel-1 backscatter in dB,
which are the scales ``backend.io.units`` already converts every input to (reflectance, percent,
Landsat Collection 2, 8-bit brightness, offset DN; linear power or amplitude radar -> dB).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.contract.sensors import SensorMatchError, match_by_wavelength
from backend.errors import UserError
from backend.io.rasters import map_bands
from backend.io.sensor_bands import OpticalBands, raster_sensor

#: The model output ``backend.inference.embed`` reads for a Galileo model.
EMBEDDING_KEY = "galileo_encodings"
#: Month (0-based) used when the raster says nothing about its date: July, like the official
#: ``GalileoWrapper``.
DEFAULT_MONTH = 6
#: Each 8 x 8 patch is encoded on its own (one token per channel group, the patch alone in
#: Galileo's window), not as part of a larger window. In a window, the per-patch vectors carry the
#: patch's position there (the 2-D sin-cos slot survives the blocks): on rstoolbox-sen2 the same
#: ground at another window position was less similar (cosine 0.68) than other ground at the same
#: position (0.88), so cluster and similarity maps showed stripes one window apart. Alone, every
#: patch gets the same encodings and the vector is about the ground only. Held-out kNN (k=20,
#: scripts/score_classify.py): rstoolbox-sen2 0.246 -> 0.456, Sen1Floods11 0.925 -> 0.985,
#: Landsat OLI simulated 0.897 -> 0.997 (window 120 -> alone). Tiles then need no overlap.
GALILEO_TILING = (128, 0)
#: Dataset metadata keys that may hold an acquisition date (``TIFFTAG_DATETIME`` is the file's
#: write time, not the acquisition, and is not read).
DATE_TAGS = ("ACQUISITION_DATE", "DATE_ACQUIRED", "ACQUISITIONDATE", "SENSING_TIME", "SENSING_DATE",
             "SENSING_START", "DATATAKE_1_DATATAKE_SENSING_START", "PRODUCT_START_TIME", "START_TIME",
             "TIME_START", "DATE", "DATETIME_ORIGINAL")
_DATE = re.compile(r"(?<!\d)((?:19[7-9]|20\d)\d)-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])(?!\d)")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
#: How many folder levels above the file are searched for a date (S2 product folders).
_NAME_LEVELS = 2


def space_time_groups() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Galileo's space-time channel groups, in token order (from the encoder module)."""
    from backend.models.galileo import GALILEO_SPACE_TIME_GROUPS

    return tuple(GALILEO_SPACE_TIME_GROUPS)


def _complete_groups(available: set[str]) -> list[str]:
    """Names of the groups all of whose bands are ``available`` (NDVI: when B04 and B08 are)."""
    used = []
    for group, bands in space_time_groups():
        needed = ("B04", "B08") if group == "NDVI" else bands
        if all(band in available for band in needed):
            used.append(group)
    return used


def _direct_matches(src: Any, sensor: str, expected: Sequence[str]) -> dict[str, int]:
    """Galileo band -> file band for the bands the sensor measures (no fills)."""
    try:
        plan = match_by_wavelength(sensor, src.descriptions, expected)
    except SensorMatchError as error:
        raise UserError(f"optical raster ({sensor}): {error}") from None
    return {s.model_band: s.weights[0][0] for s in plan.sources if not s.approximated}


def galileo_optical_bands(src: Any, expected: Sequence[str], explicit: str | None = None,
                          sensor: str | None = "auto") -> tuple[OpticalBands, list[str]]:
    """The file bands of the Galileo Sentinel-2 bands the optical raster fills, and their names.

    Args:
        src: the open optical raster.
        expected: the model's optical band names (Galileo's ten Sentinel-2 bands, model order).
        explicit: ``--optical-bands`` (one file band per model band: every group is then used).
        sensor: ``--sensor`` (``auto`` detects).

    Returns:
        ``(bands, names)``: ``bands.bands`` are the 1-based file bands of ``names``, the model's
        bands of the complete groups, in model order.

    Raises:
        UserError: no optical channel group is complete.
    """
    name, reason = raster_sensor(src, sensor)
    notes = [f"sensor: {name} ({reason})"]
    if explicit:
        indexes = map_bands(src, expected, explicit, "optical", "--optical-bands")
        matched = dict(zip(expected, indexes))
        notes.append("optical bands: as given by --optical-bands")
    else:
        matched = _direct_matches(src, name, expected)
        notes.append("optical bands by wavelength (no spectral fill): " + (
            ", ".join(f"{band}<-{_file_band(src, index)}" for band, index in matched.items()) or "none"))
    groups = set(_complete_groups(set(matched)))
    names = [band for band in expected if any(band in bands for group, bands in space_time_groups()
                                              if group in groups)]
    if not names:
        found = ", ".join(matched) or "none"
        raise UserError(f"the {name} raster fills no Galileo channel group completely (bands matched: "
                        f"{found}; groups need B02,B03,B04 or B05,B06,B07 or B08 or B8A or B11,B12); pass "
                        f"--sensor or --optical-bands")
    return OpticalBands(name, reason, [matched[band] for band in names], notes=notes), names


def _file_band(src: Any, index: int) -> str:
    description = src.descriptions[index - 1] if index - 1 < len(src.descriptions) else None
    return description or f"band {index}"


def _date_month(text: str) -> int | None:
    match = _DATE.search(text)
    return int(match.group(2)) - 1 if match else None


def acquisition_month(src: Any, declared: int | None = None) -> tuple[int, str]:
    """The 0-based acquisition month of a raster and how it was found (see the module docstring).

    ``declared``: ``--month`` (1-12), which wins over anything the raster says.
    """
    if declared is not None:
        if not 1 <= declared <= 12:
            raise UserError(f"--month must be 1 (January) to 12 (December), got {declared}")
        return declared - 1, "declared with --month"
    tags = {key.upper(): value for key, value in src.tags().items()}
    for key in DATE_TAGS:
        month = _date_month(str(tags.get(key, "")))
        if month is not None:
            return month, f"metadata {key}={tags[key]}"
    path = Path(src.name)
    for part in [path.name, *(p.name for p in list(path.parents)[:_NAME_LEVELS])]:
        month = _date_month(part)
        if month is not None:
            return month, f"date in the name {part}"
    return DEFAULT_MONTH, "no date in the metadata or file name: the official default"


@dataclass(frozen=True)
class GalileoChannels:
    """Which of Galileo's channel groups one run fills, and its month.

    Attributes:
        optical: the Galileo Sentinel-2 bands read from the optical raster, in model order.
        sar: whether a radar (VV, VH) raster is given.
        month: 0-based month of the single time step.
        month_how: where the month comes from.
        ndvi: whether the NDVI group is fed when B04 and B08 are present (pretraining always had it;
            the official benchmark wrapper masks it).
    """

    optical: tuple[str, ...]
    sar: bool
    month: int
    month_how: str
    ndvi: bool = True

    @property
    def used(self) -> list[str]:
        """The groups fed, in token order."""
        groups = [g for g in _complete_groups(set(self.optical)) if self.ndvi or g != "NDVI"]
        return ["S1", *groups] if self.sar else groups

    @property
    def masked(self) -> list[str]:
        """The groups left out (masked), in token order."""
        return [group for group, _ in space_time_groups() if group not in self.used]

    def describe(self) -> str:
        """The log line naming the groups used and masked, and the month."""
        masked = ", ".join(self.masked) or "none"
        return (f"galileo groups used: {', '.join(self.used)}; masked: {masked}; month "
                f"{_MONTHS[self.month]} ({self.month_how})")

    def key(self) -> dict[str, Any]:
        """What the embedding cache key needs (groups, month and how patches are encoded decide the
        embeddings; entries of the former shared-window encoding must not be served)."""
        return {"groups": self.used, "month": self.month, "patches": "alone"}


def normalise_optical(config: Any, bands: Sequence[str], raw: Any) -> Any:
    """Raw ``[..., C, H, W]`` DN of ``bands`` normalised as the ``InputSet`` does for a Galileo model."""
    from backend.models.preprocessing import normalize

    spec = config.modalities["optical"].select(list(bands))
    return normalize(raw, spec.mean, spec.std, clip=False)


class GalileoEmbedder:
    """A Galileo encoder called like a CROMA model by ``backend.inference.embed`` (module docstring).

    Args:
        encoder: a loaded ``GalileoEncoder`` in eval mode.
        config: its ``ModelConfig`` (``modalities`` give the optical and radar band names).
        channels: the groups and month of the run.
        each_patch_alone: encode every patch as its own window (``embed``; default), or the whole tile
            as one window (image-level features, the official benchmark pooling of ``evaluate``).
    """

    def __init__(self, encoder: Any, config: Any, channels: GalileoChannels,
                 each_patch_alone: bool = True) -> None:
        from backend.models.galileo import GALILEO_SPACE_TIME_BANDS

        self.encoder, self.config, self.channels = encoder, config, channels
        self.each_patch_alone = each_patch_alone
        self.patch_size = int(config.patch_size)
        channel = {band: i for i, band in enumerate(GALILEO_SPACE_TIME_BANDS)}
        self._optical = [channel[band] for band in channels.optical]
        self._sar = [channel[band] for band in config.modalities["sar"].bands] if channels.sar else []
        self._ndvi = "NDVI" in channels.used
        self._red, self._nir = (self._raw_scale(config, band) for band in ("B04", "B08"))
        self._red_nir = [channels.optical.index(band) for band in ("B04", "B08")] if self._ndvi else []
        self._ndvi_channel = channel["NDVI"]
        self._channels = len(GALILEO_SPACE_TIME_BANDS)
        groups = [group for group, _ in space_time_groups()]
        self._masked = [groups.index(group) for group in channels.masked]

    @staticmethod
    def _raw_scale(config: Any, band: str) -> tuple[float, float]:
        """``(shift, div)`` turning a normalised optical ``band`` back into model-unit DN."""
        optical = config.modalities["optical"]
        if not optical.has_stats:
            raise UserError(f"the Galileo model file {config.name} has no optical band statistics")
        mean, std = (values[optical.bands.index(band)] for values in (optical.mean, optical.std))
        return mean - 2 * std, 4 * std

    def __call__(self, optical: Any = None, sar: Any = None) -> dict[str, Any]:
        """``[B, C, H, W]`` normalised tiles -> ``{EMBEDDING_KEY: [B, H/8, W/8, D]}``."""
        import torch

        from backend.models.galileo import galileo_ndvi

        first = optical if optical is not None else sar
        batch, _, height, width = first.shape
        device = first.device
        s_t_x = torch.zeros(batch, height, width, 1, self._channels, device=device)
        if optical is not None:
            s_t_x[..., 0, self._optical] = optical.permute(0, 2, 3, 1).float()
        if sar is not None and self._sar:
            s_t_x[..., 0, self._sar] = sar.permute(0, 2, 3, 1).float()
        if self._ndvi:  # from the raw DN, as in pretraining (NDVI itself is not rescaled)
            red, nir = (optical[:, i].double() * div + shift
                        for i, (shift, div) in zip(self._red_nir, (self._red, self._nir), strict=True))
            s_t_x[..., 0, self._ndvi_channel] = galileo_ndvi(red, nir).float()
        mask = torch.zeros(batch, height, width, 1, len(space_time_groups()), device=device)
        mask[..., self._masked] = 1
        months = torch.full((batch, 1), self.channels.month, dtype=torch.int64, device=device)
        if not self.each_patch_alone:  # the whole tile as one window (image-level features)
            return {EMBEDDING_KEY: self.encoder.embed_space_time(s_t_x, mask, months, self.patch_size)}
        return {EMBEDDING_KEY: self._each_patch_alone(s_t_x, mask, months)}

    def _each_patch_alone(self, s_t_x: Any, mask: Any, months: Any) -> Any:
        """``[B, H/p, W/p, D]``: every p x p patch encoded as its own one-token window."""
        batch, height, width = s_t_x.shape[:3]
        alone = self.encoder.embed_space_time(*patches_alone(s_t_x, mask, months, self.patch_size),
                                              patch_size=self.patch_size)
        return alone.reshape(batch, height // self.patch_size, width // self.patch_size, -1)


def patches_alone(s_t_x: Any, mask: Any, months: Any, patch_size: int) -> tuple[Any, Any, Any]:
    """Galileo inputs ``[B, H, W, ...]`` cut into ``B * H/p * W/p`` one-patch windows (row-major)."""
    batch, height, width = s_t_x.shape[:3]
    rows, cols = height // patch_size, width // patch_size

    def cut(x: Any) -> Any:
        x = x.reshape(batch, rows, patch_size, cols, patch_size, *x.shape[3:]).transpose(2, 3)
        return x.reshape(batch * rows * cols, patch_size, patch_size, *x.shape[5:])

    return cut(s_t_x), cut(mask), months.repeat_interleave(rows * cols, dim=0)
