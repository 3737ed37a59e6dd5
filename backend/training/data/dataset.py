"""The chip stream as a map-style dataset: item ``k`` is a pure function of ``(seed, k)``."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from backend.errors import UserError
from backend.training.data.chips import normalize_chip, read_window
from backend.training.data.config import DataConfig
from backend.training.data.handles import HandleCache
from backend.training.data.sources import PairedSource


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
        self._cache: HandleCache | None = None
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
            self._cache = HandleCache()
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
