"""Global contrastive loss against a queue of teacher keys (MoCo v2 style), as CMID uses it."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn


def gather_across_ranks(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every rank along dim 0 (no gradient); ``x`` itself when not distributed."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


class QueueInfoNCE(nn.Module):
    """InfoNCE of student queries against their teacher key, with queued keys as negatives.

    The queue is a buffer, so it is saved in checkpoints and a resumed run continues with the
    same negatives. Keys are enqueued after the loss is computed (gathered from all ranks).

    MoCo starts from a queue of random unit vectors: such negatives are trivially easy, so the
    loss starts near zero and climbs while real keys replace them (``queue_size / batch``
    steps). Here the empty queue is instead filled with the first batch's keys, tiled
    (:meth:`warm_start`, at the first :meth:`enqueue`), so the loss has its working scale from
    the second step. The first step, whose queue is still empty, contrasts each query with the
    *other* keys of the batch: filling the queue before that step would put every query's own
    positive key among its negatives (``queue_size / batch`` copies of it).

    Args:
        dim: embedding width (256 published).
        queue_size: number of stored negative keys (65,536 published).
        temperature: softmax temperature (0.2 published).
    """

    def __init__(self, dim: int = 256, queue_size: int = 4096, temperature: float = 0.2) -> None:
        super().__init__()
        self.temperature = temperature
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_ready", torch.tensor(False))

    @torch.no_grad()
    def warm_start(self, keys: Tensor) -> None:
        """Fill the still empty queue with ``keys`` from all ranks, repeated (once per run)."""
        if not bool(self.queue_ready):
            keys = gather_across_ranks(keys.detach().to(self.queue.dtype))
            repeats = -(-len(self.queue) // len(keys))
            self.queue.copy_(keys.repeat(repeats, 1)[: len(self.queue)])
            self.queue_ready.fill_(True)

    def forward(self, queries: Tensor, keys: Tensor) -> Tensor:
        """Loss of L2-normalised ``[B, dim]`` queries whose positives are the matching keys."""
        keys = keys.detach()
        positive = (queries * keys).sum(-1, keepdim=True)
        if bool(self.queue_ready):
            negative = queries @ self.queue.clone().detach().T
        else:   # first step: the other keys of the (gathered) batch, never the query's own key
            others = gather_across_ranks(keys)
            negative = queries @ others.T
            offset = len(queries) * (dist.get_rank() if dist.is_available() and dist.is_initialized() else 0)
            own = torch.arange(len(queries), device=queries.device) + offset
            negative = negative.scatter(1, own.unsqueeze(1), float("-inf"))
        logits = torch.cat([positive, negative], dim=1).float() / self.temperature
        return F.cross_entropy(logits, torch.zeros(len(queries), dtype=torch.long, device=queries.device))

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Replace the oldest queue entries with ``keys`` (from all ranks); the first call fills it."""
        if not bool(self.queue_ready):
            self.warm_start(keys)
            return
        keys = gather_across_ranks(keys.detach().to(self.queue.dtype))
        size = len(self.queue)
        keys = keys[-size:]
        index = (torch.arange(len(keys), device=keys.device) + self.queue_pointer) % size
        self.queue[index] = keys
        self.queue_pointer.copy_((self.queue_pointer + len(keys)) % size)
