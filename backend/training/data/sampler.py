"""Which stream items each rank reads at each step (disjoint shares, a pure function of the step)."""

from __future__ import annotations

from collections.abc import Iterator


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
