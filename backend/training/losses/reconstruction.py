"""Masked-image reconstruction loss of CMID (A2MIM-style focal L1)."""

from __future__ import annotations

import torch
from torch import Tensor


def focal_l1(prediction: Tensor, target: Tensor, mask: Tensor, gamma: float = 0.2) -> Tensor:
    """Focal L1 averaged over masked patches: ``|d| * (2 sigmoid(gamma |d|) - 1)``.

    The factor down-weights already small errors, so the hard pixels dominate the gradient.

    Args:
        prediction: ``[B, N, P]`` per-patch pixel predictions (``P = p * p * C``).
        target: ``[B, N, P]`` the true pixels of each patch.
        mask: ``[B, N]`` boolean, ``True`` where the patch was masked.
        gamma: sharpness of the focal factor (0.2 published).
    """
    error = (prediction.float() - target.float()).abs()
    weighted = error * (2 * torch.sigmoid(gamma * error) - 1)
    per_patch = weighted.mean(-1)
    weights = mask.to(per_patch.dtype)
    return (per_patch * weights).sum() / weights.sum().clamp_min(1.0)
