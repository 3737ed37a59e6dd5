"""The interface every pretraining objective implements, so one engine trains them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

if TYPE_CHECKING:
    from backend.models.croma import CromaModel


class Objective(nn.Module):
    """A self-supervised objective wrapping the encoder(s) it trains.

    The engine calls ``forward`` on each batch and back-propagates ``losses["loss"]``; all
    trainable parameters (encoders and any heads or projections) must be registered sub-modules
    so they reach the optimiser. Batches are dicts of float tensors already normalised to
    [0, 1]: ``"sar"`` [B, 2, H, W] and/or ``"optical"`` [B, 12, H, W] (plus objective-specific
    entries that the data pipeline documents).
    """

    #: name used on the command line (``pretrain --objective NAME``)
    name: str = ""

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Return a dict of scalar losses; ``"loss"`` is the total to minimise."""
        raise NotImplementedError

    def after_step(self, step: int, total_steps: int) -> None:
        """Hook after each optimiser step (EMA teacher updates, queues, schedules)."""

    def export_encoder(self) -> CromaModel:
        """The encoder to save in the backend's model format (usable by ``embed`` at once)."""
        raise NotImplementedError
