"""Pretraining data: paired S1/S2 tiles or co-registered scenes, read as random chips.

Data config (``--data-config cfg.json``; every key optional)::

    {
      "modalities": {
        "sar":     {"bands": ["VV", "VH"], "mean": [...], "std": [...]},
        "optical": {"bands": ["B01", ..., "B12"], "mean": [...], "std": [...]}
      },
      "ssl4eo_optical_product": "s2c",
      "data": ["path/or/scene-pair", ...]
    }

Band lists are in model order; statistics are raw raster units (``python -m backend stats``
computes them). Without a config: ``sar`` = VV, VH and ``optical`` = the 12 CROMA S2 bands.
Modality names other than ``sar``/``optical`` are allowed (for objectives that use other
sensors); ``sar`` means Sentinel-1-like files and everything else optical-like files.

Sources (``DATA`` arguments, any mix):

* an SSL4EO-S12-like folder: ``s1/<loc>/<product>/VV.tif, VH.tif`` and ``s2c`` (or ``s2a``,
  ``s2``) ``/<loc>/<date>/B1.tif ... B12.tif``; S1 products are paired with the S2 date
  nearest in time;
* a BigEarthNet-like folder: S1 patch folders whose ``*_labels_metadata.json`` names the
  ``corresponding_s2_patch`` folder (found anywhere under the given folders);
* a folder of co-registered scene pairs ``*S1*.tif`` / ``*S2*.tif`` (same name but S1 -> S2),
  or an explicit pair ``RADAR.tif,OPTICAL.tif`` (for other modality names:
  ``name=PATH,name=PATH``).

Per-band files at 20/60 m are resampled (bilinear) onto the finest grid of the optical
modality; the second modality of a scene pair is warped onto the first's grid with a
``WarpedVRT``. Multi-band files find their bands by description (``B1``, ``B8A``, ``VV``...),
extra bands (B10) are dropped by name. Only windows are ever read.

Sampling is a pure function of ``(seed, item)``: item ``k`` of the stream (``k = step *
global_batch + rank * local_batch + i``) is chip ``k % epoch_len`` of the permutation of epoch
``k // epoch_len`` (seeded by ``(seed, epoch)``), with crop offset and flips drawn from a
generator seeded by ``(seed, k)``. Workers therefore need no state, and resuming at step ``s``
reproduces the exact batches of an uninterrupted run.

Batch format (what objectives receive, after :func:`collate`): a dict with

* one float32 tensor ``[B, C, H, W]`` per modality (``"sar"``, ``"optical"``...), normalised
  with the config statistics to [0, 1] (``clip((x - (mean - 2 std)) / (4 std), 0, 1)``);
  invalid pixels (NaN or the file's nodata) are set to the band mean before normalising;
* ``"item"``: int64 ``[B]`` stream index of each chip; ``"source"``: int64 ``[B]`` index of the
  tile/scene pair in :attr:`PairedChipDataset.sources`.

Public API: :class:`DataConfig`, :func:`discover_sources`, :class:`PairedChipDataset`,
:class:`StreamBatchSampler`, :func:`collate`, :func:`make_loader`, :func:`canonical_band` (an alias of
:func:`backend.io.bands.canonical_band_name`).
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import UserError
from backend.io.bands import canonical_band_name, find_bands
from backend.models.config import S1_BANDS, S2_BANDS

#: Default band lists per modality (model order).
DEFAULT_BANDS: dict[str, tuple[str, ...]] = {"sar": S1_BANDS, "optical": S2_BANDS}
#: Band order of 13-band Sentinel-2 L1C files without band descriptions.
S2_L1C_ORDER: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09",
                                 "B10", "B11", "B12")
#: Minimum share of a tile's footprint the other modality must cover.
MIN_TILE_OVERLAP = 0.9
_DATE = re.compile(r"(\d{8})T\d{6}")
_RASTER_SUFFIXES = (".tif", ".tiff")


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
#: Canonical band spelling (``B1``/``b01`` -> ``B01``, ``B8a`` -> ``B8A``, ``vv`` -> ``VV``).
canonical_band = canonical_band_name


@dataclass
class ModalityData:
    """Bands (model order) and raw-unit statistics of one modality."""

    bands: list[str]
    mean: list[float] | None = None
    std: list[float] | None = None

    @property
    def has_stats(self) -> bool:
        return self.mean is not None and self.std is not None


@dataclass
class DataConfig:
    """What to read: modalities with bands and statistics, plus optional data paths."""

    modalities: dict[str, ModalityData] = field(default_factory=lambda: {
        name: ModalityData(list(bands)) for name, bands in DEFAULT_BANDS.items()})
    ssl4eo_optical_product: str | None = None
    data: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        mods = {}
        for name, mod in self.modalities.items():
            if not isinstance(mod, ModalityData):
                if not isinstance(mod, dict) or "bands" not in mod:
                    raise UserError(f"data config: modality {name!r} needs a 'bands' list")
                mod = ModalityData(bands=list(mod["bands"]), mean=mod.get("mean"), std=mod.get("std"))
            mod.bands = [canonical_band_name(b) for b in mod.bands]
            for key in ("mean", "std"):
                values = getattr(mod, key)
                if values is not None and len(values) != len(mod.bands):
                    raise UserError(f"data config: modality {name!r} has {len(values)} {key} values "
                                    f"for {len(mod.bands)} bands")
            if mod.std is not None and any(not s > 0 for s in mod.std):
                raise UserError(f"data config: modality {name!r} has a std that is not positive")
            mods[name] = mod
        if not mods:
            raise UserError("data config: no modalities")
        self.modalities = mods

    @property
    def has_stats(self) -> bool:
        return all(m.has_stats for m in self.modalities.values())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"modalities": {
            name: {"bands": m.bands, "mean": m.mean, "std": m.std} for name, m in self.modalities.items()}}
        if self.ssl4eo_optical_product:
            out["ssl4eo_optical_product"] = self.ssl4eo_optical_product
        if self.data:
            out["data"] = list(self.data)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        if not isinstance(data, dict):
            raise UserError("data config must be a JSON object")
        defaults = {n: {"bands": list(b)} for n, b in DEFAULT_BANDS.items()}
        return cls(modalities=data.get("modalities") or defaults,
                   ssl4eo_optical_product=data.get("ssl4eo_optical_product"),
                   data=list(data.get("data") or []))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DataConfig:
        from backend.io.atomic import read_json

        return cls.from_dict(read_json(path, "data config"))

    def save(self, path: str | os.PathLike[str]) -> None:
        from backend.io.atomic import write_text_atomic

        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------
@dataclass
class Grid:
    """A raster grid: CRS (WKT), affine transform (6 numbers) and size."""

    crs: str
    transform: tuple[float, ...]
    width: int
    height: int

    @property
    def pixel_area(self) -> float:
        a, b, _, d, e, _ = self.transform
        return abs(a * e - b * d)

    def bounds(self) -> tuple[float, float, float, float]:
        from rasterio.transform import Affine, array_bounds

        return array_bounds(self.height, self.width, Affine(*self.transform))


@dataclass
class BandRef:
    """One band of a file (1-based index)."""

    path: str
    index: int


@dataclass
class PairedSource:
    """One co-registered tile or scene pair: per modality the band files in model order.

    ``grid`` is the reference grid (finest optical band, or the first scene of a pair);
    ``area`` is the readable window ``(col, row, width, height)`` on that grid (the overlap
    of every modality).
    """

    name: str
    bands: dict[str, list[BandRef]]
    grid: Grid
    area: tuple[int, int, int, int]

    def chips(self, crop: int) -> int:
        """How many chips this source contributes to one epoch (non-overlapping crops, >= 1)."""
        return max(1, (self.area[2] // crop) * (self.area[3] // crop))


def _grid_of(src: Any) -> Grid:
    return Grid(src.crs.to_wkt() if src.crs else "", tuple(src.transform)[:6], src.width, src.height)


def _band_token(path: Path) -> str:
    return canonical_band_name(path.stem.split("_")[-1])


def _rasters_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _RASTER_SUFFIXES)


def _per_band_files(folder: Path, bands: Sequence[str]) -> dict[str, Path]:
    """Map wanted band names to per-band files of ``folder`` (by the file name's last token)."""
    found = {}
    for path in _rasters_in(folder):
        token = _band_token(path)
        if token in bands:
            found[token] = path
    return found


def _date_of(name: str) -> str | None:
    match = _DATE.search(name)
    return match.group(1) if match else None


def _day_number(date: str) -> int:
    import datetime

    return datetime.date(int(date[:4]), int(date[4:6]), int(date[6:8])).toordinal()


@dataclass
class _Candidate:
    """A sample before validation: per modality either per-band files or one multi-band file."""

    name: str
    files: dict[str, dict[str, Path] | Path]


class _Discovery:
    """Finds paired samples under the DATA arguments for the configured modalities."""

    def __init__(self, config: DataConfig) -> None:
        self.config = config
        self.modalities = list(config.modalities)
        self.notes: list[str] = []

    # -- layouts -------------------------------------------------------------------------------
    def find(self, entry: str) -> list[_Candidate]:
        if "," in entry and not Path(entry).exists():
            return [self._explicit_pair(entry)]
        path = Path(entry)
        if not path.exists():
            raise UserError(f"data path not found: {entry}")
        if path.is_file():
            if len(self.modalities) > 1:
                raise UserError(f"{entry} is a single file; give a pair RADAR.tif,OPTICAL.tif or a folder")
            return [_Candidate(path.stem, {self.modalities[0]: path})]
        if self._is_ssl4eo(path):
            return self._ssl4eo(path)
        ben = self._bigearthnet(path)
        if ben is not None:
            return ben
        return self._scene_pairs(path)

    def _explicit_pair(self, entry: str) -> _Candidate:
        parts = [p.strip() for p in entry.split(",") if p.strip()]
        files: dict[str, Path] = {}
        for position, part in enumerate(parts):
            if "=" in part:
                name, value = part.split("=", 1)
            else:
                default = ["sar", "optical"]
                name, value = (default[position] if position < 2 else f"#{position}"), part
            if name not in self.config.modalities:
                raise UserError(f"data pair {entry!r}: modality {name!r} is not in the data config "
                                f"({', '.join(self.modalities)})")
            if not Path(value).is_file():
                raise UserError(f"data pair {entry!r}: file not found: {value}")
            files[name] = Path(value)
        missing = [m for m in self.modalities if m not in files]
        if missing:
            raise UserError(f"data pair {entry!r} lacks modality {', '.join(missing)}")
        return _Candidate(Path(files[self.modalities[0]]).stem, files)

    @staticmethod
    def _is_ssl4eo(path: Path) -> bool:
        return (path / "s1").is_dir() or any((path / p).is_dir() for p in ("s2c", "s2a", "s2"))

    def _modality_kind(self, name: str) -> str:
        return "sar" if name == "sar" else "optical"

    def _ssl4eo(self, root: Path) -> list[_Candidate]:
        product = self.config.ssl4eo_optical_product
        products = [product] if product else [p for p in ("s2c", "s2a", "s2") if (root / p).is_dir()]
        s2_root = next((root / p for p in products if (root / p).is_dir()), None)
        s1_root = root / "s1"
        roots = {}
        for name in self.modalities:
            kind = self._modality_kind(name)
            if kind == "sar":
                if not s1_root.is_dir():
                    raise UserError(f"{root}: no s1/ folder for modality {name!r}")
                roots[name] = s1_root
            else:
                if s2_root is None:
                    raise UserError(f"{root}: no Sentinel-2 folder ({' or '.join(products or ['s2c'])}/) "
                                    f"for modality {name!r}")
                roots[name] = s2_root
        locations = {name: sorted(p.name for p in r.iterdir() if p.is_dir()) for name, r in roots.items()}
        if "sar" in roots and len(roots) > 1:
            other = next(n for n in roots if n != "sar")
            lonely = sorted(set(locations["sar"]) - set(locations[other]))
            if lonely:
                raise UserError(f"unpaired data in {root}: S1 location(s) {', '.join(lonely[:5])} have no "
                                f"Sentinel-2 folder in {roots[other].name}/")
            extra = sorted(set(locations[other]) - set(locations["sar"]))
            if extra:
                self.notes.append(f"{len(extra)} S2 location(s) without S1 in {root} ignored")
        common = sorted(set.intersection(*(set(v) for v in locations.values())))
        candidates = []
        for loc in common:
            acquisitions = {name: sorted(p for p in (roots[name] / loc).iterdir() if p.is_dir())
                            for name in roots}
            for name, items in acquisitions.items():
                if not items:
                    raise UserError(f"unpaired data in {root}: location {loc} has no {name} acquisition")
            first = self.modalities[0]
            for anchor in acquisitions[first]:
                files: dict[str, dict[str, Path] | Path] = {}
                anchor_date = _date_of(anchor.name)
                for name, items in acquisitions.items():
                    if name == first:
                        chosen = anchor
                    elif anchor_date is None:
                        chosen = items[0]
                    else:
                        chosen = min(items, key=lambda p, d=anchor_date: abs(
                            _day_number(_date_of(p.name) or d) - _day_number(d)))
                    files[name] = self._band_folder(chosen, name)
                candidates.append(_Candidate(f"{loc}/{anchor.name}", files))
        return candidates

    def _band_folder(self, folder: Path, modality: str) -> dict[str, Path] | Path:
        bands = self.config.modalities[modality].bands
        per_band = _per_band_files(folder, bands)
        if per_band:
            return per_band
        rasters = _rasters_in(folder)
        if len(rasters) == 1:
            return rasters[0]
        raise UserError(f"{folder}: no GeoTIFF with bands {', '.join(bands)} for modality {modality!r}")

    def _bigearthnet(self, root: Path) -> list[_Candidate] | None:
        metadata = sorted(root.rglob("*_labels_metadata.json"))
        if not metadata:
            return None
        folders = {p.parent.name: p.parent for p in metadata}
        s1_patches = []
        for meta in metadata:
            try:
                info = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                self.notes.append(f"unreadable metadata {meta} ignored")
                continue
            if "corresponding_s2_patch" in info:
                s1_patches.append((meta.parent, str(info["corresponding_s2_patch"])))
        paired_s2 = {s2 for _, s2 in s1_patches}
        sar = [m for m in self.modalities if self._modality_kind(m) == "sar"]
        optical = [m for m in self.modalities if self._modality_kind(m) != "sar"]
        candidates = []
        if sar:
            for s1_folder, s2_name in s1_patches:
                files: dict[str, dict[str, Path] | Path] = {sar[0]: self._band_folder(s1_folder, sar[0])}
                if optical:
                    s2_folder = folders.get(s2_name)
                    if s2_folder is None:
                        raise UserError(f"unpaired data: S1 patch {s1_folder.name} names S2 patch {s2_name}, "
                                        f"which is not under {root}")
                    for name in optical:
                        files[name] = self._band_folder(s2_folder, name)
                candidates.append(_Candidate(s1_folder.name, files))
            extra = [n for n in folders if n not in paired_s2 and n not in {f.name for f, _ in s1_patches}]
            if extra and optical:
                self.notes.append(f"{len(extra)} S2 patch(es) without S1 in {root} ignored")
        else:
            s1_names = {f.name for f, _ in s1_patches}
            for name, folder in sorted(folders.items()):
                if name in s1_names:
                    continue
                candidates.append(_Candidate(name, {m: self._band_folder(folder, m) for m in optical}))
        return candidates

    def _scene_pairs(self, root: Path) -> list[_Candidate]:
        rasters = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _RASTER_SUFFIXES)
        if not rasters:
            raise UserError(f"no imagery found in {root} (expected SSL4EO-S12 or BigEarthNet folders, "
                            f"or *S1*.tif / *S2*.tif scene pairs)")
        if len(self.modalities) == 1:
            token = "S1" if self.modalities[0] == "sar" else "S2"
            named = [p for p in rasters if token in p.name]
            return [_Candidate(p.stem, {self.modalities[0]: p}) for p in named or rasters]
        if set(self.modalities) != {"sar", "optical"}:
            raise UserError(f"{root}: modalities {self.modalities} need explicit pairs name=PATH,name=PATH")
        names = {p.name for p in rasters}
        candidates = []
        lonely = []
        for path in rasters:
            if "S1" not in path.name:
                continue
            partner = path.with_name(path.name.replace("S1", "S2", 1))
            if partner.name in names:
                candidates.append(_Candidate(path.stem, {"sar": path, "optical": partner}))
            else:
                lonely.append(path.name)
        if lonely:
            raise UserError(f"unpaired data in {root}: no S2 scene for {', '.join(lonely[:5])} "
                            f"(expected the same file name with S1 replaced by S2)")
        if not candidates:
            raise UserError(f"unpaired data in {root}: {len(rasters)} GeoTIFF(s) but no "
                            f"*S1*.tif / *S2*.tif pair")
        return candidates


def _file_band_names(src: Any, modality: str) -> list[str]:
    described = [canonical_band_name(d) if d else "" for d in src.descriptions]
    if any(described):
        return described
    if modality == "sar" and src.count == 2:
        return list(S1_BANDS)
    if src.count == 12:
        return list(S2_BANDS)
    if src.count == 13:
        return list(S2_L1C_ORDER)
    return [""] * src.count


def _check_readable(src: Any, index: int) -> None:
    """Read a decimated version of one band: truncated or garbage files fail here."""
    src.read(index, out_shape=(16, 16))


def _overlap_window(ref: Grid, other: Grid) -> tuple[int, int, int, int] | None:
    """The part of ``ref`` covered by ``other`` as a pixel window, or None if they do not overlap."""
    from rasterio.crs import CRS
    from rasterio.transform import Affine
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    left, bottom, right, top = other.bounds()
    if ref.crs and other.crs and CRS.from_wkt(ref.crs) != CRS.from_wkt(other.crs):
        left, bottom, right, top = transform_bounds(CRS.from_wkt(other.crs), CRS.from_wkt(ref.crs),
                                                    left, bottom, right, top)
    window = from_bounds(left, bottom, right, top, Affine(*ref.transform))
    col0 = max(0, math.ceil(window.col_off - 1e-6))
    row0 = max(0, math.ceil(window.row_off - 1e-6))
    col1 = min(ref.width, math.floor(window.col_off + window.width + 1e-6))
    row1 = min(ref.height, math.floor(window.row_off + window.height + 1e-6))
    if col1 <= col0 or row1 <= row0:
        return None
    return col0, row0, col1 - col0, row1 - row0


def _validate(candidate: _Candidate, config: DataConfig) -> PairedSource:
    """Open every file, map bands, check readability and footprint overlap.

    Raises:
        UserError: a band is missing or the modalities do not overlap (bad input, fatal).
        _CorruptTile: a file cannot be opened or read (the sample is skipped).
    """
    import rasterio
    from rasterio.errors import RasterioError

    bands: dict[str, list[BandRef]] = {}
    grids: dict[str, Grid] = {}
    finest: dict[str, Grid] = {}
    for modality, files in candidate.files.items():
        wanted = config.modalities[modality].bands
        refs: list[BandRef] = []
        try:
            if isinstance(files, dict):
                missing = [b for b in wanted if b not in files]
                if missing:
                    raise UserError(f"{candidate.name}: band(s) {', '.join(missing)} missing for modality "
                                    f"{modality!r} (found {', '.join(sorted(files)) or 'none'})")
                for band in wanted:
                    with rasterio.open(files[band]) as src:
                        _check_readable(src, 1)
                        grid = _grid_of(src)
                    refs.append(BandRef(str(files[band]), 1))
                    if modality not in finest or grid.pixel_area < finest[modality].pixel_area:
                        finest[modality] = grid
            else:
                with rasterio.open(files) as src:
                    names = _file_band_names(src, modality)
                    indexes, missing = find_bands(names, wanted)
                    if missing:
                        raise UserError(f"{files}: band(s) {', '.join(missing)} missing for modality "
                                        f"{modality!r} (file bands: {', '.join(n or '?' for n in names)}; "
                                        f"set "
                                        f"band descriptions or change the band list in the data config)")
                    refs.extend(BandRef(str(files), index) for index in indexes)
                    _check_readable(src, refs[-1].index)
                    finest[modality] = _grid_of(src)
        except RasterioError as exc:
            raise _CorruptTile(f"{candidate.name}: {exc}") from None
        bands[modality] = refs
        grids[modality] = finest[modality]
    names = list(candidate.files)
    reference = "optical" if "optical" in grids and not all(
        isinstance(candidate.files[n], Path) for n in names) else names[0]
    ref_grid = grids[reference]
    area = (0, 0, ref_grid.width, ref_grid.height)
    for modality, grid in grids.items():
        if modality == reference:
            continue
        window = _overlap_window(ref_grid, grid)
        if window is None:
            raise UserError(f"misaligned data: {candidate.name}: the {modality} footprint does not overlap "
                            f"the {reference} footprint")
        col0 = max(area[0], window[0])
        row0 = max(area[1], window[1])
        col1 = min(area[0] + area[2], window[0] + window[2])
        row1 = min(area[1] + area[3], window[1] + window[3])
        area = (col0, row0, max(0, col1 - col0), max(0, row1 - row0))
    share = area[2] * area[3] / (ref_grid.width * ref_grid.height)
    if all(isinstance(candidate.files[n], dict) for n in names) and share < MIN_TILE_OVERLAP:
        raise UserError(f"misaligned data: {candidate.name}: modalities overlap on only {share:.0%} "
                        f"of the tile")
    if area[2] <= 0 or area[3] <= 0:
        raise UserError(f"misaligned data: {candidate.name}: the modalities do not overlap")
    return PairedSource(candidate.name, bands, ref_grid, area)


class _CorruptTile(Exception):
    """A file of a sample could not be opened or read."""


@dataclass
class DiscoveryReport:
    """Sources found plus what was skipped and why."""

    sources: list[PairedSource]
    skipped: list[str]
    notes: list[str]


def discover_sources(paths: Sequence[str], config: DataConfig, crop: int | None = None) -> DiscoveryReport:
    """Find and validate every paired sample under ``paths``.

    Corrupt files skip their sample (counted in ``skipped``); bad layouts, missing bands,
    unpaired or misaligned data raise :class:`UserError`. Fatal when nothing usable remains.

    Args:
        paths: DATA arguments (folders, files, ``a.tif,b.tif`` pairs).
        config: modalities and bands to read.
        crop: chip size; sources smaller than it are skipped.
    """
    if not paths:
        raise UserError("no data given: pass one or more DATA folders or scene pairs")
    discovery = _Discovery(config)
    candidates: list[_Candidate] = []
    for entry in paths:
        found = discovery.find(str(entry))
        if not found:
            raise UserError(f"no paired samples found in {entry}")
        candidates.extend(found)
    sources: list[PairedSource] = []
    skipped: list[str] = []
    for candidate in candidates:
        try:
            source = _validate(candidate, config)
        except _CorruptTile as exc:
            skipped.append(f"corrupt tile skipped: {exc}")
            continue
        if crop is not None and (source.area[2] < crop or source.area[3] < crop):
            skipped.append(f"{source.name}: {source.area[2]}x{source.area[3]} px is smaller than the "
                           f"{crop} px crop, skipped")
            continue
        sources.append(source)
    if not sources:
        detail = "; ".join(skipped[:3])
        raise UserError(f"no usable samples: all {len(candidates)} were skipped ({detail})")
    return DiscoveryReport(sources, skipped, discovery.notes)


# ---------------------------------------------------------------------------------------------
# Reading chips
# ---------------------------------------------------------------------------------------------
class _HandleCache:
    """Open rasterio datasets (and warped views) per process, least recently used closed first."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, tuple], Any] = OrderedDict()

    def get(self, path: str, grid: Grid) -> Any:
        import rasterio
        from rasterio.crs import CRS
        from rasterio.transform import Affine

        from backend.io.align import grid_view

        key = (path, (grid.crs, grid.transform, grid.width, grid.height))
        handle = self._items.get(key)
        if handle is not None:
            self._items.move_to_end(key)
            return handle
        src = rasterio.open(path)
        # Unlike the inference views (float32, NaN), chips keep the file's dtype and nodata.
        view = grid_view(src, CRS.from_wkt(grid.crs) if grid.crs else src.crs, Affine(*grid.transform),
                         grid.width, grid.height, src_nodata=src.nodata,
                         nodata=src.nodata if src.nodata is not None else np.nan)
        handle = (src, view)
        self._items[key] = handle
        while len(self._items) > self.size:
            _, (old_src, old_view) = self._items.popitem(last=False)
            if old_view is not old_src:
                old_view.close()
            old_src.close()
        return handle

    def close(self) -> None:
        while self._items:
            _, (src, view) = self._items.popitem()
            if view is not src:
                view.close()
            src.close()


def read_window(source: PairedSource, modality: str, window: tuple[int, int, int, int],
                cache: _HandleCache) -> tuple[np.ndarray, np.ndarray]:
    """Read one modality of ``source`` over ``window`` (reference-grid pixels) as float32.

    Returns:
        ``(values [C, h, w], valid [C, h, w] bool)``; invalid = NaN or the file's nodata.
    """
    from rasterio.windows import Window

    col, row, width, height = window
    refs = source.bands[modality]
    out = np.empty((len(refs), height, width), dtype=np.float32)
    valid = np.empty((len(refs), height, width), dtype=bool)
    by_path: dict[str, list[tuple[int, int]]] = {}
    for position, ref in enumerate(refs):
        by_path.setdefault(ref.path, []).append((position, ref.index))
    for path, members in by_path.items():
        _, view = cache.get(path, source.grid)
        indexes = [index for _, index in members]
        data = view.read(indexes, window=Window(col, row, width, height)).astype(np.float32, copy=False)
        nodata = view.nodata
        ok = np.isfinite(data)
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            ok &= data != nodata
        for (position, _), band, mask in zip(members, data, ok):
            out[position] = band
            valid[position] = mask
    return out, valid


def normalize_chip(values: np.ndarray, valid: np.ndarray, mean: Sequence[float],
                   std: Sequence[float]) -> np.ndarray:
    """Fixed-statistics stretch to [0, 1]; invalid pixels become the band mean (0.5)."""
    mean_arr = np.asarray(mean, dtype=np.float32)[:, None, None]
    std_arr = np.asarray(std, dtype=np.float32)[:, None, None]
    filled = np.where(valid, values, mean_arr)
    return np.clip((filled - (mean_arr - 2 * std_arr)) / (4 * std_arr), 0.0, 1.0).astype(np.float32)


class PairedChipDataset:
    """Map-style dataset over the infinite chip stream: ``dataset[k]`` is stream item ``k``.

    Args:
        sources: validated tile/scene pairs.
        config: modalities (bands, statistics) to read.
        crop: chip size in reference-grid pixels (multiple of 8).
        seed: base seed of the data order.
        flips: random horizontal/vertical flips (the same for every modality of a chip).
        normalize: stretch with the config statistics (False: raw values + validity masks, for
            ``stats``).
    """

    def __init__(self, sources: Sequence[PairedSource], config: DataConfig, crop: int, seed: int = 0,
                 flips: bool = True, normalize: bool = True) -> None:
        if crop <= 0 or crop % 8:
            raise UserError(f"--crop must be a positive multiple of 8, got {crop}")
        if normalize and not config.has_stats:
            raise UserError("the data config has no per-band statistics; run `python -m backend stats` first")
        self.sources = list(sources)
        self.config = config
        self.crop = crop
        self.seed = seed
        self.flips = flips
        self.normalize = normalize
        self.modalities = list(config.modalities)
        counts = [s.chips(crop) for s in self.sources]
        self._entry_source = np.repeat(np.arange(len(self.sources)), counts)
        self._cache: _HandleCache | None = None
        self._epoch_cache: tuple[int, np.ndarray] | None = None
        self.failed_reads = 0

    @property
    def epoch_length(self) -> int:
        """Chips per epoch (every source contributes its non-overlapping crop count)."""
        return len(self._entry_source)

    def __len__(self) -> int:  # a large nominal length; the stream is indexed by item number
        return 2**62

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch, 0x5EED])
            self._epoch_cache = (epoch, rng.permutation(self.epoch_length))
        return self._epoch_cache[1]

    def locate(self, item: int) -> tuple[int, tuple[int, int, int, int], bool, bool]:
        """Source index, window and flips of stream item ``item`` (a pure function of seed and item)."""
        epoch, position = divmod(int(item), self.epoch_length)
        source_index = int(self._entry_source[self._permutation(epoch)[position]])
        source = self.sources[source_index]
        rng = np.random.default_rng([self.seed, int(item), 0xC809])
        col0, row0, width, height = source.area
        col = col0 + int(rng.integers(0, width - self.crop + 1))
        row = row0 + int(rng.integers(0, height - self.crop + 1))
        flip_h, flip_v = (bool(v) for v in rng.integers(0, 2, size=2))
        if not self.flips:
            flip_h = flip_v = False
        return source_index, (col, row, self.crop, self.crop), flip_h, flip_v

    def read(self, item: int) -> dict[str, Any]:
        """Raw chip: ``{modality: (values, valid)}`` plus ``source`` and window."""
        if self._cache is None:
            self._cache = _HandleCache()
        source_index, window, flip_h, flip_v = self.locate(item)
        source = self.sources[source_index]
        out: dict[str, Any] = {"source": source_index, "window": window}
        for modality in self.modalities:
            values, valid = read_window(source, modality, window, self._cache)
            if flip_h:
                values, valid = values[:, :, ::-1], valid[:, :, ::-1]
            if flip_v:
                values, valid = values[:, ::-1, :], valid[:, ::-1, :]
            out[modality] = (np.ascontiguousarray(values), np.ascontiguousarray(valid))
        return out

    def __getitem__(self, item: int) -> dict[str, Any]:
        import torch
        from rasterio.errors import RasterioError

        # A file that breaks mid-run (truncated on disk) is replaced by the next items, a
        # deterministic choice, so resumed runs still see the same chips.
        for attempt in range(16):
            try:
                raw = self.read(item + attempt * self.epoch_length * 7919)
                break
            except RasterioError as exc:
                self.failed_reads += 1
                warnings.warn(f"unreadable chip skipped: {exc}", stacklevel=2)
        else:
            raise UserError("16 consecutive chips could not be read; the data files are damaged")
        sample: dict[str, Any] = {"item": torch.tensor(int(item)), "source": torch.tensor(raw["source"])}
        for modality in self.modalities:
            values, valid = raw[modality]
            if self.normalize:
                mod = self.config.modalities[modality]
                sample[modality] = torch.from_numpy(normalize_chip(values, valid, mod.mean, mod.std))
            else:
                sample[modality] = torch.from_numpy(values)
                sample[f"{modality}_valid"] = torch.from_numpy(valid)
        return sample

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = None  # open rasterio handles stay in their process
        return state

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None


class StreamBatchSampler:
    """Yields the stream items of this rank's batches from ``start_step`` on (endless).

    Step ``s`` of rank ``r`` holds items ``s * B * W + r * B + i`` for ``i < B`` (``B`` the
    local batch, ``W`` the world size), so every rank reads a disjoint share and the order is
    a pure function of the step.
    """

    def __init__(self, local_batch: int, start_step: int = 0, rank: int = 0, world_size: int = 1,
                 stop_step: int | None = None) -> None:
        self.local_batch = local_batch
        self.start_step = start_step
        self.rank = rank
        self.world_size = world_size
        self.stop_step = stop_step

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while self.stop_step is None or step < self.stop_step:
            base = step * self.local_batch * self.world_size + self.rank * self.local_batch
            yield list(range(base, base + self.local_batch))
            step += 1

    def __len__(self) -> int:
        if self.stop_step is None:
            raise TypeError("endless sampler")
        return max(0, self.stop_step - self.start_step)


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack a list of samples into the batch format documented at the top of this module."""
    import torch

    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


def _worker_init(worker_id: int) -> None:
    import torch

    # Chips are drawn from per-item generators; seeding here only guards third-party randomness.
    info = torch.utils.data.get_worker_info()
    if info is not None:
        np.random.seed((info.seed + worker_id) % 2**32)
    torch.set_num_threads(1)


def make_loader(dataset: PairedChipDataset, local_batch: int, start_step: int, stop_step: int,
                rank: int = 0, world_size: int = 1, workers: int = 0) -> Any:
    """A torch DataLoader over this rank's batches for steps ``start_step .. stop_step - 1``."""
    import torch

    sampler = StreamBatchSampler(local_batch, start_step, rank, world_size, stop_step)
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
        worker_init_fn=_worker_init if workers else None, persistent_workers=False,
        prefetch_factor=2 if workers else None)


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------
def compute_statistics(dataset: PairedChipDataset, samples: int,
                       progress: Any = None) -> dict[str, dict[str, list[float]]]:
    """Per-band mean and std (raw units) over ``samples`` chips of the stream (valid pixels only).

    Args:
        dataset: a dataset built with ``normalize=False``.
        samples: number of chips to read (spread over the stream from item 0).
        progress: optional wrapper ``progress(iterable, total)`` for a progress bar.
    """
    sums = {m: np.zeros(len(dataset.config.modalities[m].bands), dtype=np.float64)
            for m in dataset.modalities}
    squares = {m: np.zeros_like(v) for m, v in sums.items()}
    counts = {m: np.zeros_like(v) for m, v in sums.items()}
    items = range(samples)
    iterator = progress(items, samples) if progress else items
    for item in iterator:
        raw = dataset.read(item)
        for modality in dataset.modalities:
            values, valid = raw[modality]
            values = np.where(valid, values, 0.0).astype(np.float64)
            sums[modality] += values.sum(axis=(1, 2))
            squares[modality] += (values * values).sum(axis=(1, 2))
            counts[modality] += valid.sum(axis=(1, 2))
    result = {}
    for modality in dataset.modalities:
        bands = dataset.config.modalities[modality].bands
        if np.any(counts[modality] < 2):
            empty = [b for b, c in zip(bands, counts[modality]) if c < 2]
            raise UserError(f"no valid pixels for band(s) {', '.join(empty)} of {modality!r} "
                            f"in the sampled chips")
        mean = sums[modality] / counts[modality]
        var = (squares[modality] - counts[modality] * mean**2) / (counts[modality] - 1)
        std = np.sqrt(np.maximum(var, 0.0))
        std = np.where(std > 0, std, 1.0)
        result[modality] = {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}
    return result


def resolve_data_config(config_path: str | None = None, modalities: str | None = None,
                        sar_bands: str | None = None, optical_bands: str | None = None) -> DataConfig:
    """The data config from ``--data-config`` plus the command-line overrides.

    Args:
        config_path: JSON data config, or None for the defaults.
        modalities: comma-separated subset/order of modalities (e.g. ``optical``).
        sar_bands: comma-separated radar bands (replaces the config's list and its statistics).
        optical_bands: comma-separated optical bands (likewise).
    """
    config = DataConfig.load(config_path) if config_path else DataConfig()
    for name, bands in (("sar", sar_bands), ("optical", optical_bands)):
        if bands:
            wanted = [canonical_band_name(b) for b in bands.split(",") if b.strip()]
            old = config.modalities.get(name)
            if old is not None and old.bands == wanted:
                continue
            config.modalities[name] = ModalityData(wanted)
    if modalities:
        chosen = [m.strip() for m in modalities.split(",") if m.strip()]
        unknown = [m for m in chosen if m not in config.modalities and m not in DEFAULT_BANDS]
        if unknown:
            raise UserError(f"unknown modality {', '.join(unknown)}; the data config has "
                            f"{', '.join(config.modalities)}")
        config.modalities = {m: config.modalities.get(m) or ModalityData(list(DEFAULT_BANDS[m]))
                             for m in chosen}
    return config
