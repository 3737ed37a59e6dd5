"""The inputs of one inference run: optical and/or radar rasters on one pixel grid, over one area.

``InputSet`` is what ``backend.inference.resolve.open_inputs(options)`` returns. The *reference grid* is
the optical raster's (the radar's when only radar is given); the radar is aligned onto it on the
fly (``backend.io.align``). The *area* is a pixel window of the reference raster (``--bounds``,
whole raster by default); all windows passed to ``read`` are relative to the area.

Grid facts: ``crs``, ``transform`` (of the area's first pixel), ``width``/``height`` (area
pixels), ``bounds`` (area bounds in ``crs``), ``patch_size`` (8), ``patch_width``/``patch_height``
(= ceil(area / 8)) and ``patch_transform`` (= ``transform`` scaled by 8: each patch of the
embedding raster lies exactly over its 8x8 pixels).

Units: each modality's raw values are converted to the model's units first
(``backend.io.units``: optical -> Sentinel-2 DN scale, radar -> dB), detected from dtype, metadata
and a decimated sample of the area, or as declared (``optical_units``/``sar_units``); the decisions
are ``modality.units`` and their warnings, with the out-of-distribution guard's
(``backend.inference.guard``), are in ``InputSet.warnings``.

Reading: ``read(window) -> (arrays, valid)`` where ``arrays`` maps ``"optical"``/``"sar"`` to
normalised float32 ``[C, h, w]`` arrays in the model's band order and ``valid`` is a bool
``[h, w]`` mask (True where every band of every modality is valid). Invalid pixels are filled with
0.5, which is the band mean under the fixed mean +- 2 std stretch, so partially-nodata patches stay
in-distribution for the encoder. ``read_padded`` does the same for a window that may reach past
the area's far edge (by less than one patch): the missing part is a reflection of the area and is
flagged by the returned ``inside`` mask.

Normalisation: ``clip((x - (mean - 2 std)) / (4 std), 0, 1)`` (a Galileo model: the same without
the clip, its pretraining normalisation; only the optical bands of its complete channel groups are
read, ``backend.inference.galileo_inputs``) with per-band statistics from the
model config, or, when the config has none, computed ONCE over the area from a decimated read
(at most ``STATS_SAMPLE_SIDE``\u00b2 pixels per band, converted to model units) - never per tile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from rasterio.windows import Window

from backend.contract.sensors import ASSUMED_REASON
from backend.errors import UserError
from backend.inference.galileo_inputs import GalileoChannels, acquisition_month, galileo_optical_bands
from backend.inference.guard import input_warning
from backend.io.align import aligned_view, same_grid
from backend.io.rasters import area_window, map_bands, open_raster, valid_pixels
from backend.io.sensor_bands import OpticalBands, map_optical_bands, mix_bands
from backend.io.units import UnitsDecision, decide_optical_units, decide_sar_units, sample_bands

PATCH_SIZE = 8
STATS_SAMPLE_SIDE = 512
FILL_VALUE = 0.5
MODALITY_ORDER = ("sar", "optical")
ROLE = {"sar": "radar", "optical": "optical"}


@dataclass
class ModalityInput:
    """One modality read for the model.

    Attributes:
        name: ``"optical"`` or ``"sar"``.
        path: the raster file.
        source: the opened raster file.
        view: what windows are read from (``source``, or a warped VRT on the reference grid).
        bands: 1-based band indexes of ``source`` in model order.
        band_names: the model's band names, in order.
        mean: per-band mean in raw units.
        std: per-band standard deviation in raw units.
        stats_from: ``"model"`` or ``"sampled"``.
        units: how raw values become model units (``None``: used as they are).
        sample_mean: per-band mean of the area's decimated sample, in model units.
        sample_std: per-band standard deviation of that sample, in model units.
        band_mix: ``[model bands, len(bands)]`` spectral-fill weights (``backend.io.sensor_bands``),
            or ``None`` when ``bands`` already are the model's bands.
        clip: whether the stretch clips to [0, 1] (CROMA); Galileo's pretraining normalisation is
            the same stretch without clipping.
    """

    name: str
    path: Path
    source: Any
    view: Any
    bands: list[int]
    band_names: list[str]
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    std: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stats_from: str = "model"
    units: UnitsDecision | None = None
    sample_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sample_std: np.ndarray = field(default_factory=lambda: np.zeros(0))
    band_mix: np.ndarray | None = None
    clip: bool = True

    def prepare(self, raw: np.ndarray) -> np.ndarray:
        """Raw file bands ``[C, h, w]`` -> float32 values in model units, in model band order.

        The one place between reading and :meth:`normalise`: units conversion (then any step that
        completes the bands, e.g. a spectral fill, belongs here too).
        """
        values = self.units.to_model(raw) if self.units is not None else raw.astype(np.float32)
        return values if self.band_mix is None else mix_bands(self.band_mix, values)

    def normalise(self, raw: np.ndarray) -> np.ndarray:
        """The fixed-stats stretch of raw ``[C, h, w]`` values to [0, 1] (float32; unclipped for Galileo).

        See :func:`backend.models.preprocessing.normalize` (the one implementation).
        """
        from backend.models.preprocessing import normalize

        return normalize(raw.astype(np.float32, copy=False), self.mean, self.std, clip=self.clip)

    def close(self) -> None:
        if self.view is not self.source:
            self.view.close()
        self.source.close()


class InputSet:
    """Optical and/or radar inputs on one grid over one area (see the module docstring).

    Args:
        optical: optical raster path or ``None``.
        sar: radar raster path or ``None``.
        config: the model's ``ModelConfig`` (bands and statistics per modality).
        optical_bands: explicit optical band list (``--optical-bands``) or ``None``.
        sar_bands: explicit radar band list (``--sar-bands``) or ``None``.
        bounds: area ``(minx, miny, maxx, maxy)`` or ``None`` for the whole reference raster.
        bounds_crs: CRS of ``bounds`` (default: the reference raster's CRS).
        optical_units: ``--optical-units`` (``auto`` detects; ``backend.contract.units``).
        sar_units: ``--sar-units`` (``auto`` detects).
        sensor: ``--sensor``: the optical raster's sensor preset, ``None``/``auto`` to detect it; it
            decides how bands are matched (``backend.io.sensor_bands``) and hints the units.
        spectral_fill: ``--spectral-fill``: ``auto`` fills model bands the sensor lacks, ``off`` refuses.
        month: ``--month`` (1-12) for a Galileo model, or ``None`` to read it from the raster.
    """

    def __init__(self, optical: str | Path | None, sar: str | Path | None, config: Any,
                 optical_bands: str | None = None, sar_bands: str | None = None,
                 bounds: Sequence[float] | None = None, bounds_crs: str | None = None,
                 optical_units: str = "auto", sar_units: str = "auto", sensor: str | None = None,
                 spectral_fill: str = "auto", month: int | None = None) -> None:
        if optical is None and sar is None:
            raise UserError("give an --optical raster, a --sar raster, or both")
        paths = {"optical": optical, "sar": sar}
        for name, path in paths.items():
            if path is not None and name not in config.modalities:
                raise UserError(f"the model has no {ROLE[name]} encoder; it takes "
                                f"{' and '.join(ROLE[m] for m in config.modalities)} input")
        self.modalities: dict[str, ModalityInput] = {}
        self.warnings: list[str] = []
        self._units_requested = {"optical": optical_units, "sar": sar_units}
        self._sensor = sensor
        self._spectral_fill = spectral_fill
        self._month = month
        self.sensor: OpticalBands | None = None
        self.notes: list[str] = []
        self.galileo: GalileoChannels | None = None
        try:
            self._open(paths, config, {"optical": optical_bands, "sar": sar_bands}, bounds, bounds_crs)
        except BaseException:
            self.close()
            raise

    def _open(self, paths: dict[str, Any], config: Any, explicit: dict[str, str | None],
              bounds: Sequence[float] | None, bounds_crs: str | None) -> None:
        options = {"optical": "--optical-bands", "sar": "--sar-bands"}
        galileo = bool(getattr(config, "is_galileo", False))
        opened = {}
        for name in ("optical", "sar"):
            if paths[name] is None:
                continue
            src = open_raster(paths[name], ROLE[name])
            opened[name] = src
            expected = config.modalities[name].bands
            try:
                if name == "optical" and galileo:
                    self.sensor, expected = galileo_optical_bands(src, expected, explicit[name], self._sensor)
                    bands = self.sensor.bands
                elif name == "optical":
                    self.sensor = map_optical_bands(src, expected, explicit[name], self._sensor,
                                                    self._spectral_fill)
                    bands = self.sensor.bands
                else:
                    bands = map_bands(src, expected, explicit[name], ROLE[name], options[name])
            except BaseException:
                src.close()
                raise
            self.modalities[name] = ModalityInput(name, Path(paths[name]).resolve(), src, src, bands,
                                                  list(expected), clip=not galileo)
            if name == "optical":
                self.modalities[name].band_mix = self.sensor.matrix
                self.notes.extend(self.sensor.notes)
                self.warnings.extend(self.sensor.warnings)
                self._sensor = None if self.sensor.reason == ASSUMED_REASON else self.sensor.sensor
        reference = self.modalities["optical" if "optical" in opened else "sar"].source
        self.reference_path = Path(reference.name)
        if galileo:
            optical = self.modalities.get("optical")
            self.galileo = GalileoChannels(tuple(optical.band_names) if optical else (), "sar" in opened,
                                           *acquisition_month(reference, self._month))
            self.notes.append(self.galileo.describe())
        self.crs = reference.crs
        self.area = area_window(reference, bounds, bounds_crs)
        self.transform: Affine = reference.window_transform(self.area)
        self.width = int(self.area.width)
        self.height = int(self.area.height)
        self.bounds = reference.window_bounds(self.area)
        if "sar" in self.modalities and "optical" in self.modalities:
            radar = self.modalities["sar"]
            if not same_grid(radar.source, reference.crs, reference.transform, reference.width,
                             reference.height):
                radar.view = aligned_view(radar.source, reference.crs, reference.transform,
                                          reference.width, reference.height, self.bounds, "radar")
        for name, modality in self.modalities.items():
            sample = sample_bands(modality.view, modality.bands, self.area, STATS_SAMPLE_SIDE)
            if name == "optical":
                modality.units = decide_optical_units(modality.source, modality.bands,
                                                      self._units_requested["optical"], self._sensor, sample)
            else:
                modality.units = decide_sar_units(modality.source, modality.bands,
                                                  self._units_requested["sar"], sample)
            self.warnings.extend(modality.units.warnings)
            self._set_stats(modality, config.modalities[name].select(modality.band_names), sample)

    # -- grid facts ---------------------------------------------------------------------------
    patch_size = PATCH_SIZE

    @property
    def patch_width(self) -> int:
        return math.ceil(self.width / PATCH_SIZE)

    @property
    def patch_height(self) -> int:
        return math.ceil(self.height / PATCH_SIZE)

    @property
    def patch_transform(self) -> Affine:
        return self.transform @ Affine.scale(PATCH_SIZE)

    @property
    def names(self) -> list[str]:
        """Modalities present, in model order (``sar`` before ``optical``)."""
        return [m for m in MODALITY_ORDER if m in self.modalities]

    # -- statistics ---------------------------------------------------------------------------
    def _set_stats(self, modality: ModalityInput, spec: Any, sample: np.ma.MaskedArray) -> None:
        """Normalisation statistics (the model's, else the sample's) and the input guard's check."""
        valid = valid_pixels(sample)
        if valid.any():
            values = modality.prepare(np.ma.getdata(sample))[:, valid].astype(np.float64)
            modality.sample_mean = values.mean(axis=1)
            modality.sample_std = values.std(axis=1)
        if spec.has_stats:
            modality.mean = np.asarray(spec.mean, dtype=np.float64)
            modality.std = np.asarray(spec.std, dtype=np.float64)
            modality.stats_from = "model"
            if valid.any():
                units = modality.units.units if modality.units is not None else "given"
                warning = input_warning(modality.name, modality.band_names, modality.sample_mean,
                                        modality.sample_std, modality.mean, modality.std, units)
                if warning:
                    self.warnings.append(warning)
            return
        if not valid.any():
            raise UserError(f"the {ROLE[modality.name]} raster has no valid pixels in the area")
        modality.mean = modality.sample_mean
        modality.std = np.maximum(modality.sample_std, 1e-6)
        modality.stats_from = "sampled"

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per-modality band names, statistics and their origin (for logs and cache sidecars)."""
        return {name: {"bands": m.band_names, "file_bands": m.bands, "mean": m.mean.tolist(),
                       "std": m.std.tolist(), "stats_from": m.stats_from,
                       "units": m.units.facts() if m.units is not None else None,
                       "sample_mean": m.sample_mean.tolist(), "sample_std": m.sample_std.tolist()}
                for name, m in self.modalities.items()}

    def units(self) -> dict[str, str]:
        """The units each modality was read in, e.g. ``{"optical": "reflectance", "sar": "db"}``."""
        return {name: m.units.units for name, m in self.modalities.items() if m.units is not None}

    # -- reading ------------------------------------------------------------------------------
    def _absolute(self, window: Window) -> Window:
        return Window(self.area.col_off + window.col_off, self.area.row_off + window.row_off,
                      window.width, window.height)

    def read(self, window: Window | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Normalised arrays and the valid mask of a window (relative to the area, clipped to it)."""
        if window is None:
            window = Window(0, 0, self.width, self.height)
        col0, row0 = max(0, int(window.col_off)), max(0, int(window.row_off))
        col1 = min(self.width, int(window.col_off + window.width))
        row1 = min(self.height, int(window.row_off + window.height))
        if col1 <= col0 or row1 <= row0:
            raise ValueError(f"window {window} lies outside the area")
        absolute = self._absolute(Window(col0, row0, col1 - col0, row1 - row0))
        arrays: dict[str, np.ndarray] = {}
        valid = np.ones((row1 - row0, col1 - col0), dtype=bool)
        for name in self.names:
            modality = self.modalities[name]
            raw = modality.view.read(modality.bands, window=absolute, masked=True)
            valid &= valid_pixels(raw)
            arrays[name] = modality.normalise(modality.prepare(np.ma.getdata(raw)))
        for array in arrays.values():
            array[:, ~valid] = FILL_VALUE
        return arrays, valid

    def read_padded(self, window: Window) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Like :meth:`read` for a window reaching past the area's far edges; reflect-padded.

        Returns:
            ``(arrays, valid, inside)``: ``inside`` marks pixels that belong to the area.
        """
        height, width = int(window.height), int(window.width)
        arrays, valid = self.read(window)
        pad_rows, pad_cols = height - valid.shape[0], width - valid.shape[1]
        if pad_rows or pad_cols:
            arrays = {k: _reflect(v, pad_rows, pad_cols) for k, v in arrays.items()}
            valid = _reflect(valid[None], pad_rows, pad_cols)[0]
        inside = np.zeros((height, width), dtype=bool)
        inside[: height - pad_rows, : width - pad_cols] = True
        return arrays, valid & inside, inside

    def close(self) -> None:
        for modality in self.modalities.values():
            modality.close()

    def __enter__(self) -> InputSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reflect(array: np.ndarray, pad_rows: int, pad_cols: int) -> np.ndarray:
    modes = "reflect" if min(array.shape[1:]) > 1 else "edge"
    return np.pad(array, ((0, 0), (0, pad_rows), (0, pad_cols)), mode=modes)
