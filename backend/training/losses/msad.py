"""Multi-Sensor Alignment Dense (MSAD) loss of X-STARS, vectorised over tokens.

MSAD aligns two sensors token by token. Both sensors' images of the same place are resampled
to one pixel grid beforehand, so token ``t`` covers the same ground footprint in both. For
every token position the batch forms a small contrastive problem: image ``i`` of sensor a must
pick image ``i`` of sensor b among the ``B`` images of the batch at that same position (the
negatives are the other images at the same token, never other tokens).

Embeddings go through a shared :class:`ProjectionHead` ``P`` and then one head per sensor slot
(``P_a``, ``P_b``), as published. Logits are ``Z = e_b e_a^T / tau`` and the soft targets
``Y = softmax(tau (e_a e_a^T + e_b e_b^T) / 2)`` (row-wise); the loss is the label-smoothed
(0.3) cross-entropy in both directions, averaged over the batch, then over tokens.

Two defects of the released code are fixed here: the per-token losses were combined with
``torch.tensor(list)``, which drops their autograd history (MSAD then never trains anything),
and the heads were never handed to the optimiser. All heads are sub-modules of
:class:`MSADLoss`, and the loss is computed for all tokens at once as batched ``[T, B, B]``
similarity matrices, which also removes the released per-token Python loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ProjectionHead(nn.Module):
    """Linear -> GELU -> Linear -> Dropout, with a residual around the last three, then LayerNorm.

    Args:
        in_dim: input width.
        out_dim: output width (1024 published).
        dropout: dropout after the second linear layer (0.2 published).
    """

    def __init__(self, in_dim: int, out_dim: int = 1024, dropout: float = 0.2) -> None:
        super().__init__()
        self.project = nn.Linear(in_dim, out_dim)
        self.hidden = nn.Linear(out_dim, out_dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        projected = self.project(x)
        x = self.dropout(self.hidden(F.gelu(projected)))
        return self.norm(x + projected)


def msad_token_losses(e_a: Tensor, e_b: Tensor, tau: float = 1.0, label_smoothing: float = 0.3) -> Tensor:
    """Per-token MSAD loss for already projected embeddings.

    Args:
        e_a: sensor-a embeddings ``[B, T, E]``.
        e_b: sensor-b embeddings ``[B, T, E]`` on the same token grid.
        tau: logit temperature (1.0 published).
        label_smoothing: smoothing of the soft targets (0.3 published).

    Returns:
        ``[T]`` losses, each the mean over the batch of the two directions' average.
    """
    if e_a.shape != e_b.shape:
        raise ValueError(f"MSAD needs matching token grids, got {tuple(e_a.shape)} and {tuple(e_b.shape)}")
    batch = e_a.shape[0]
    logits = torch.einsum("bte,cte->tbc", e_b, e_a) / tau            # [T, B(b), B(a)]
    self_a = torch.einsum("bte,cte->tbc", e_a, e_a)
    self_b = torch.einsum("bte,cte->tbc", e_b, e_b)
    targets = torch.softmax(tau * (self_a + self_b) / 2, dim=-1)
    # Probability-target cross-entropy with smoothing, as F.cross_entropy defines it.
    targets = targets * (1 - label_smoothing) + label_smoothing / batch
    loss_b = -(targets * F.log_softmax(logits, dim=-1)).sum(-1)        # rows: sensor-b queries
    loss_a = -(targets.transpose(1, 2) * F.log_softmax(logits.transpose(1, 2), dim=-1)).sum(-1)
    return ((loss_a + loss_b) / 2).mean(dim=1)


class MSADLoss(nn.Module):
    """MSAD between two sensor slots, with the shared and the per-slot projection heads.

    Args:
        in_dim: width of the encoder tokens.
        proj_dim: width of the projection heads (1024 published).
        tau: logit temperature.
        label_smoothing: smoothing of the soft targets.
        dropout: dropout inside the projection heads.
    """

    def __init__(self, in_dim: int, proj_dim: int = 1024, tau: float = 1.0,
                 label_smoothing: float = 0.3, dropout: float = 0.2) -> None:
        super().__init__()
        self.shared = ProjectionHead(in_dim, proj_dim, dropout)
        self.head_a = ProjectionHead(proj_dim, proj_dim, dropout)
        self.head_b = ProjectionHead(proj_dim, proj_dim, dropout)
        self.tau = tau
        self.label_smoothing = label_smoothing

    def embed(self, tokens_a: Tensor, tokens_b: Tensor) -> tuple[Tensor, Tensor]:
        """Project ``[B, T, D]`` tokens of both slots to ``[B, T, proj_dim]``."""
        return self.head_a(self.shared(tokens_a)), self.head_b(self.shared(tokens_b))

    def forward(self, tokens_a: Tensor, tokens_b: Tensor) -> Tensor:
        """Mean MSAD over all token positions of two ``[B, T, D]`` token grids."""
        e_a, e_b = self.embed(tokens_a, tokens_b)
        return msad_token_losses(e_a, e_b, self.tau, self.label_smoothing).mean()
