"""Validation of a candidate sample: open every file, map bands, check readability and overlap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.errors import UserError
from backend.io.bands import canonical_band_name, find_bands
from backend.models.config import S1_BANDS, S2_BANDS
from backend.training.data.config import DataConfig
from backend.training.data.grid import PortableGrid, overlap_window
from backend.training.data.layouts import Candidate
from backend.training.data.sources import BandRef, PairedSource

#: Band order of 13-band Sentinel-2 L1C files without band descriptions.
S2_L1C_ORDER: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09",
                                 "B10", "B11", "B12")
#: Minimum share of a tile's footprint the other modality must cover.
MIN_TILE_OVERLAP = 0.9


class CorruptTile(Exception):
    """A file of a sample could not be opened or read."""


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


def validate_candidate(candidate: Candidate, config: DataConfig) -> PairedSource:
    """Open every file, map bands, check readability and footprint overlap.

    Raises:
        UserError: a band is missing or the modalities do not overlap (bad input, fatal).
        CorruptTile: a file cannot be opened or read (the sample is skipped).
    """
    import rasterio
    from rasterio.errors import RasterioError

    bands: dict[str, list[BandRef]] = {}
    grids: dict[str, PortableGrid] = {}
    finest: dict[str, PortableGrid] = {}
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
                        grid = PortableGrid.of(src)
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
                    finest[modality] = PortableGrid.of(src)
        except RasterioError as exc:
            raise CorruptTile(f"{candidate.name}: {exc}") from None
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
        window = overlap_window(ref_grid, grid)
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
