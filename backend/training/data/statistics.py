"""Per-band mean and standard deviation of the pretraining data (what ``stats`` writes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.errors import UserError
from backend.training.data.dataset import PairedChipDataset


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
