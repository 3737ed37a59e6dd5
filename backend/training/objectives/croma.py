"""CROMA pretraining (Fuller, Millard, Green 2023): masked contrastive radar-optical learning + MAE.

Per batch of co-registered radar (S1) and optical (S2) chips:

1. Independent random masks per modality with the same number of kept tokens
   (``keep = int(N * (1 - mask_ratio))``); each unimodal encoder sees only its kept tokens with
   the matching 2D-ALiBi.
2. Contrastive: GAP-FFN on the mean of the kept-token encodings, a per-modality
   ``Linear(d, d)`` projection, L2 normalisation, symmetric InfoNCE with a learnable logit
   scale (initial temperature 0.07, no clamp, as published); negatives are gathered from every
   rank without gradient, and the local slice keeps its gradient, so each loss direction also
   trains its key side (CLIP practice). Option ``contrastive_keys=released`` detaches the keys
   entirely, as the released code's plain ``all_gather`` does (each direction trains only its
   query encoder).
3. Joint encoder: radar kept tokens (queries) attend to optical kept tokens with X-ALiBi.
   Self-attention bias (``joint_self_bias``): ``"radar"`` (default) uses radar-radar 2D-ALiBi
   between the radar tokens' own positions, the geometrically right bias and the one used at
   inference; ``"released"`` reproduces the published pretraining code, whose self-attention
   reuses the radar-query x optical-key cross bias (distances to the wrong positions once the
   masks differ). The released encoders were trained with the quirk; we default to the
   correct bias because at inference (no masking) both are the same matrix, so training with
   the radar bias matches what the joint encoder later sees.
4. Light MAE decoder: ``Linear(d, 512)``, learned mask tokens, the joint tokens scattered back
   to their radar positions, fixed 2D sin-cos position embedding for the chip's grid (any
   size), one pre-norm transformer layer (8 heads, no ALiBi), final LayerNorm,
   ``Linear(512, p*p*(C_opt + C_sar))``.
5. Target: the stacked optical+radar patch normalised per patch (mean and unbiased variance
   pooled over both modalities, eps 1e-6), split back into optical and radar parts;
   ``mae_optical`` averages over optical-masked patches and ``mae_radar`` over radar-masked ones.

``loss = contrastive_weight * contrastive + mae_weight * (mae_optical + mae_radar)``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.distributed import gather_with_local_grad, rank
from backend.errors import UserError
from backend.models import CromaModel, ModelConfig, build_model, patchify, random_keep_indices
from backend.training.objective import Objective


@lru_cache(maxsize=16)
def _sincos_table(rows: int, cols: int, dim: int) -> Tensor:
    """Fixed 2D sin-cos position embedding ``[rows*cols, dim]`` (half the channels per axis)."""
    if dim % 4:
        raise ValueError(f"sin-cos position embedding needs dim divisible by 4, got {dim}")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    row_pos = torch.arange(rows, dtype=torch.float64).repeat_interleave(cols)
    col_pos = torch.arange(cols, dtype=torch.float64).repeat(rows)

    def axis(positions: Tensor) -> Tensor:
        angles = positions[:, None] * omega[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([axis(col_pos), axis(row_pos)], dim=1).float()


def sincos_position_embedding(rows: int, cols: int, dim: int, device: torch.device | str = "cpu") -> Tensor:
    """2D sin-cos position embedding for a ``rows x cols`` patch grid, ``[1, rows*cols, dim]``."""
    return _sincos_table(rows, cols, dim).to(device).unsqueeze(0)


class MaeDecoder(nn.Module):
    """CROMA's light decoder: joint tokens + mask tokens -> per-patch pixels of both modalities.

    Args:
        encoder_dim: width of the joint encodings.
        out_features: values predicted per patch (``p * p * (C_opt + C_sar)``).
        dim: decoder width (512 published).
        depth: transformer layers (1 published).
        heads: attention heads (8 published).
    """

    def __init__(self, encoder_dim: int, out_features: int, dim: int = 512, depth: int = 1,
                 heads: int = 8) -> None:
        super().__init__()
        self.dim = dim
        self.embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.blocks = nn.ModuleList([
            nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.predict = nn.Linear(dim, out_features)

    def forward(self, tokens: Tensor, positions: Tensor, rows: int, cols: int) -> Tensor:
        """Predict every patch of the grid from the kept tokens at ``positions`` ``[B, K]``.

        Returns:
            ``[B, rows*cols, out_features]`` in row-major patch order.
        """
        batch = tokens.shape[0]
        x = self.embed(tokens)
        full = self.mask_token.to(x.dtype).expand(batch, rows * cols, -1).clone()
        full = full.scatter(1, positions.unsqueeze(-1).expand(-1, -1, self.dim), x)
        full = full + sincos_position_embedding(rows, cols, self.dim, full.device).to(full.dtype)
        for block in self.blocks:
            full = block(full)
        return self.predict(self.norm(full))


def per_patch_normalized(patches: Tensor, eps: float = 1e-6) -> Tensor:
    """Normalise each patch vector by its own mean and unbiased variance (MAE norm-pix)."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps).sqrt()


def symmetric_info_nce(z_a: Tensor, z_b: Tensor, logit_scale: Tensor, key_grad: bool = True) -> Tensor:
    """CLIP loss of L2-normalised ``[B, d]`` pairs; negatives gathered over ranks.

    Rank ``r``'s labels are offset by ``r * B`` into the gathered batch. ``key_grad=False``
    detaches the gathered keys (the released CROMA code).
    """
    all_a = gather_with_local_grad(z_a)
    all_b = gather_with_local_grad(z_b)
    if not key_grad:
        all_a, all_b = all_a.detach(), all_b.detach()
    scale = logit_scale.exp()
    labels = torch.arange(z_a.shape[0], device=z_a.device) + rank() * z_a.shape[0]
    logits_a = scale * z_a @ all_b.T
    logits_b = scale * z_b @ all_a.T
    return 0.5 * (F.cross_entropy(logits_a.float(), labels) + F.cross_entropy(logits_b.float(), labels))


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of per-patch ``values`` ``[B, N]`` over patches where ``mask`` is 1."""
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


class CromaObjective(Objective):
    """CROMA's published objective over a :class:`CromaModel` with radar and optical encoders.

    Args:
        config: encoder architecture and bands (needs ``sar`` and ``optical``).
        mask_ratio: share of tokens removed per modality (0.75 by default).
        contrastive_weight: weight of the InfoNCE term.
        mae_weight: weight of the reconstruction term.
        joint_self_bias: ``"radar"`` or ``"released"`` (see the module docstring).
        decoder_dim: MAE decoder width.
        decoder_depth: MAE decoder layers.
        decoder_heads: MAE decoder heads.
        contrastive_keys: ``"local_grad"`` (keys keep the gradient of this rank's slice) or
            ``"released"`` (keys detached, as the released code).
    """

    name = "croma"
    required_modalities = ("sar", "optical")

    def __init__(self, config: ModelConfig, mask_ratio: float = 0.75, contrastive_weight: float = 1.0,
                 mae_weight: float = 1.0, joint_self_bias: str = "radar", decoder_dim: int = 512,
                 decoder_depth: int = 1, decoder_heads: int = 8,
                 contrastive_keys: str = "local_grad") -> None:
        super().__init__()
        if not config.has_joint:
            raise UserError("the croma objective needs both sar and optical modalities")
        if not 0.0 <= mask_ratio < 1.0:
            raise UserError(f"--mask-ratio must be in [0, 1), got {mask_ratio}")
        if joint_self_bias not in ("radar", "released"):
            raise UserError(f"--joint-self-bias must be 'radar' or 'released', got {joint_self_bias!r}")
        if contrastive_keys not in ("local_grad", "released"):
            raise UserError(f"objective option contrastive_keys={contrastive_keys!r}: choose local_grad or "
                            "released")
        self.key_grad = contrastive_keys == "local_grad"
        self.mask_ratio = mask_ratio
        self.contrastive_weight = contrastive_weight
        self.mae_weight = mae_weight
        self.joint_self_bias = joint_self_bias
        self.model = build_model(config)
        dim = config.dim
        self.optical_channels = len(config.modalities["optical"].bands)
        self.sar_channels = len(config.modalities["sar"].bands)
        self.patch_size = config.patch_size
        self.radar_proj = nn.Linear(dim, dim)
        self.optical_proj = nn.Linear(dim, dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        out_features = self.patch_size**2 * (self.optical_channels + self.sar_channels)
        self.decoder = MaeDecoder(dim, out_features, decoder_dim, decoder_depth, decoder_heads)

    @classmethod
    def build(cls, config: ModelConfig, settings: dict[str, Any]) -> CromaObjective:
        options = settings.get("options") or {}
        return cls(config,
                   mask_ratio=float(settings.get("mask_ratio", 0.75)),
                   contrastive_weight=float(settings.get("contrastive_weight", 1.0)),
                   mae_weight=float(settings.get("mae_weight", 1.0)),
                   joint_self_bias=str(settings.get("joint_self_bias") or "radar"),
                   decoder_dim=int(options.get("decoder_dim", 512)),
                   decoder_depth=int(options.get("decoder_depth", 1)),
                   decoder_heads=int(options.get("decoder_heads", 8)),
                   contrastive_keys=str(options.get("contrastive_keys", "local_grad")))

    def keep_count(self, tokens: int) -> int:
        """Tokens kept per modality (the same for both, at least one)."""
        return max(1, int(tokens * (1 - self.mask_ratio)))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        sar, optical = batch["sar"], batch["optical"]
        encoder = self.model
        batch_size = sar.shape[0]
        rows, cols = encoder.s2_encoder.grid(optical)
        tokens = rows * cols
        keep = self.keep_count(tokens)
        keep_radar = random_keep_indices(batch_size, tokens, keep, device=sar.device)
        keep_optical = random_keep_indices(batch_size, tokens, keep, device=sar.device)

        radar_tokens = encoder.s1_encoder(sar, keep=keep_radar)
        optical_tokens = encoder.s2_encoder(optical, keep=keep_optical)

        pooled_radar = encoder.s1_GAP_FFN(radar_tokens.mean(dim=1))
        pooled_optical = encoder.s2_GAP_FFN(optical_tokens.mean(dim=1))
        z_radar = F.normalize(self.radar_proj(pooled_radar).float(), dim=-1)
        z_optical = F.normalize(self.optical_proj(pooled_optical).float(), dim=-1)
        contrastive = symmetric_info_nce(z_optical, z_radar, self.logit_scale, self.key_grad)

        joint = encoder.joint_encoder(radar_tokens, optical_tokens, x_positions=keep_radar,
                                      context_positions=keep_optical, grid=(rows, cols),
                                      self_bias_mode=self.joint_self_bias)
        prediction = self.decoder(joint, keep_radar, rows, cols).float()

        target = per_patch_normalized(patchify(torch.cat([optical, sar], dim=1).float(), self.patch_size))
        split = self.patch_size**2 * self.optical_channels
        removed_optical = torch.ones(batch_size, tokens, device=sar.device).scatter(1, keep_optical, 0.0)
        removed_radar = torch.ones(batch_size, tokens, device=sar.device).scatter(1, keep_radar, 0.0)
        error = (prediction - target) ** 2
        mae_optical = masked_mean(error[..., :split].mean(dim=-1), removed_optical)
        mae_radar = masked_mean(error[..., split:].mean(dim=-1), removed_radar)

        loss = self.contrastive_weight * contrastive + self.mae_weight * (mae_optical + mae_radar)
        return {"loss": loss, "contrastive": contrastive.detach(), "mae_optical": mae_optical.detach(),
                "mae_radar": mae_radar.detach(), "temperature": (-self.logit_scale).exp().detach()}

    def export_encoder(self) -> CromaModel:
        return self.model
