"""Labelled patch folders (``<class>/<name>.tif``, like EuroSAT-MS) read into feature matrices."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.errors import UserError

#: EuroSAT-MS files hold B01..B12 with B10 and then B8A LAST; these 1-based indices give the
#: 12 bands of CROMA's optical encoder (S2_BANDS order: ..., B08, B8A, B09, B11, B12).
EUROSAT_TO_S2_BANDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 13, 9, 11, 12)

RASTER_SUFFIXES = (".tif", ".tiff")


@dataclass
class PatchFolder:
    """The files and labels of a labelled patch folder.

    Attributes:
        files: one raster per sample.
        labels: class index of each file (into ``classes``).
        classes: class names (sub-folder names), sorted.
    """

    files: list[Path]
    labels: np.ndarray
    classes: list[str]

    def __len__(self) -> int:
        return len(self.files)


def scan_patch_folder(folder: str | Path, limit_per_class: int | None = None) -> PatchFolder:
    """List ``folder/<class>/*.tif``; ``limit_per_class`` keeps the first files of each class."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"patch folder not found: {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        members = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
        if limit_per_class is not None:
            members = members[:limit_per_class]
        files += members
        labels += [index] * len(members)
    if len(classes) < 2 or not files:
        raise UserError(f"{root} needs at least two class sub-folders holding .tif patches")
    return PatchFolder(files, np.asarray(labels, dtype=np.int64), classes)


def parse_band_indices(spec: str | None, count: int) -> list[int]:
    """Turn ``--bands`` (comma-separated 1-based indices, or ``eurosat``) into indices."""
    if spec is None:
        if count == 13:
            return list(EUROSAT_TO_S2_BANDS)
        if count == 12:
            return list(range(1, 13))
        raise UserError(f"patches have {count} bands: give --bands with the 12 band indices "
                        "in model order (B01..B08, B8A, B09, B11, B12)")
    if spec.strip().lower() == "eurosat":
        return list(EUROSAT_TO_S2_BANDS)
    try:
        indices = [int(part) for part in spec.split(",")]
    except ValueError:
        raise UserError(f"--bands must be comma-separated 1-based band indices, got {spec!r}") from None
    if any(i < 1 or i > count for i in indices):
        raise UserError(f"--bands {spec}: the patches have bands 1..{count}")
    return indices


def iter_patch_batches(files: Sequence[Path], bands: Sequence[int],
                       batch_size: int = 64) -> Iterator[np.ndarray]:
    """Yield float32 arrays [b, len(bands), H, W] of the files in order."""
    import rasterio

    for start in range(0, len(files), batch_size):
        arrays = []
        for path in files[start:start + batch_size]:
            try:
                with rasterio.open(path) as src:
                    arrays.append(src.read(list(bands)).astype(np.float32))
            except rasterio.errors.RasterioIOError as exc:
                raise UserError(f"cannot read patch {path}: {exc}") from None
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise UserError(f"patches differ in shape {sorted(shapes)}; evaluate needs equal sizes")
        yield np.stack(arrays)


def band_statistics_features(batch: np.ndarray) -> np.ndarray:
    """Per-band mean and standard deviation of each patch: the raw-statistics baseline."""
    flat = batch.reshape(batch.shape[0], batch.shape[1], -1)
    return np.concatenate([flat.mean(-1), flat.std(-1)], axis=1)


def extract_features(folder: PatchFolder, bands: Sequence[int],
                     featurize: Callable[[np.ndarray], np.ndarray],
                     batch_size: int = 64, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Run ``featurize`` over the folder in batches; returns [n, features] float32."""
    chunks = []
    for batch in iter_patch_batches(folder.files, bands, batch_size):
        chunks.append(np.asarray(featurize(batch), dtype=np.float32))
        if progress:
            progress(len(batch))
    return np.concatenate(chunks)
