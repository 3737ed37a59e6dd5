"""Dual-encoder contrastive pretraining (Jain, Wilson, Gulshan 2022) on CROMA's encoders.

Sentinel-1 and Sentinel-2 chips of the same place and (nearby) time are positive pairs; the
other chips of the global batch are negatives. The co-registered sensor pair itself is the
"augmentation", so no hand-made augmentations are used (only the crops and flips the data
pipeline shares between both modalities).

Radar and optical ViT encoders (our :class:`CromaModel`'s ``s1_encoder`` / ``s2_encoder`` with
their GAP-FFNs) see every token; each pooled vector goes through its own projection head
(``Linear -> GELU -> Linear``), is L2-normalised, and a symmetric InfoNCE with a learnable
temperature (initial 0.07, logit scale clamped at 100 as in CLIP) pulls pairs together. The
paper's exact encoder, head and temperature are not published (spec section 4): these choices
are ours.

The exported model has both encoders and the joint encoder, which this objective never trains
(it stays at its random initialisation and is frozen here): use the exported model with one
modality at a time in ``embed`` (the plugin warns when both are given).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.errors import UserError
from backend.models import CromaModel, ModelConfig, build_model
from backend.training.objective import Objective
from backend.training.objectives.croma import symmetric_info_nce

#: CLIP's cap on the logit scale (temperature >= 0.01), against runaway sharpening.
MAX_LOGIT_SCALE = math.log(100.0)


def projection_head(dim: int, out_dim: int) -> nn.Sequential:
    """Two-layer MLP projection head."""
    return nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out_dim))


class DualEncoderObjective(Objective):
    """Symmetric InfoNCE between radar and optical embeddings of the same chip.

    Args:
        config: encoder architecture and bands (needs ``sar`` and ``optical``).
        projection_dim: output width of the projection heads.
        temperature: initial softmax temperature.
    """

    name = "dual"
    required_modalities = ("sar", "optical")

    def __init__(self, config: ModelConfig, projection_dim: int = 256, temperature: float = 0.07) -> None:
        super().__init__()
        if not config.has_joint:
            raise UserError("the dual objective needs both sar and optical modalities")
        self.model = build_model(config)
        self.model.joint_encoder.requires_grad_(False)
        self.model.config.joint_encoder_trained = False  # embed radar + optical by concatenation
        self.radar_head = projection_head(config.dim, projection_dim)
        self.optical_head = projection_head(config.dim, projection_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    @classmethod
    def build(cls, config: ModelConfig, settings: dict[str, Any]) -> DualEncoderObjective:
        options = settings.get("options") or {}
        return cls(config, projection_dim=int(options.get("projection_dim", 256)),
                   temperature=float(options.get("temperature", 0.07)))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        encoder = self.model
        radar = encoder.s1_GAP_FFN(encoder.s1_encoder(batch["sar"]).mean(dim=1))
        optical = encoder.s2_GAP_FFN(encoder.s2_encoder(batch["optical"]).mean(dim=1))
        z_radar = F.normalize(self.radar_head(radar).float(), dim=-1)
        z_optical = F.normalize(self.optical_head(optical).float(), dim=-1)
        logit_scale = self.logit_scale.clamp(max=MAX_LOGIT_SCALE)
        loss = symmetric_info_nce(z_optical, z_radar, logit_scale)
        with torch.no_grad():
            labels = torch.arange(len(z_radar), device=z_radar.device)
            accuracy = (z_optical @ z_radar.T).argmax(dim=1) == labels
        return {"loss": loss, "pair_accuracy": accuracy.float().mean(),
                "temperature": (-logit_scale).exp().detach()}

    def export_encoder(self) -> CromaModel:
        return self.model
