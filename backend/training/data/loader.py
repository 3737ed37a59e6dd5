"""Batches of the chip stream: collation into the batch format and the torch DataLoader."""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.training.data.dataset import PairedChipDataset
from backend.training.data.sampler import StreamBatchSampler


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack a list of samples into the batch format documented in :mod:`backend.training.data`."""
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
