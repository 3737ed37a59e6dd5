"""Galileo encoder (Tseng et al. 2025, arXiv 2502.09356; MIT): inference-only re-implementation.

Written from ``shared/spec/galileo.md``; parameter names follow the official state dict, so the
released ``encoder.pt`` loads strictly. Inputs are channel groups, one token per (patch, time step,
group); any group may be absent (masked, 1) and is then never computed. Masks: 0 = present,
>= 1 = absent. Months are 0-based.

* ``GALILEO_SPACE_TIME_GROUPS`` / ``GALILEO_SPACE_TIME_BANDS``: the space-time groups and their
  13 channels (canonical band names, official order).
* ``normalise_space_time(raw)``: the pretraining 2-std rule for those 13 channels.
* ``GalileoEncoder``: ``forward`` (all four token kinds, like the official encoder) and
  ``embed_space_time`` (the fast path: one vector per patch from the space-time groups only).
* ``load_galileo(path)``: the project's ``.safetensors`` + ``.json`` pair or the official ``.pt``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.errors import UserError

Group = tuple[str, tuple[str, ...]]

#: Space-time channel groups in official order (the order fixes each group's channel embedding).
GALILEO_SPACE_TIME_GROUPS: tuple[Group, ...] = (
    ("S1", ("VV", "VH")),
    ("S2_RGB", ("B02", "B03", "B04")),
    ("S2_Red_Edge", ("B05", "B06", "B07")),
    ("S2_NIR_10m", ("B08",)),
    ("S2_NIR_20m", ("B8A",)),
    ("S2_SWIR", ("B11", "B12")),
    ("NDVI", ("NDVI",)),
)
#: The 13 channels of ``s_t_x``, in order.
GALILEO_SPACE_TIME_BANDS: tuple[str, ...] = tuple(b for _, bands in GALILEO_SPACE_TIME_GROUPS for b in bands)
_DW = ("water", "trees", "grass", "flooded_vegetation", "crops", "shrub_and_scrub", "built", "bare",
       "snow_and_ice")
_WC = ("temporarycrops", "maize", "wintercereals", "springcereals", "irrigation")
#: Space groups (``sp_x``: B, H, W, 16).
GALILEO_SPACE_GROUPS: tuple[Group, ...] = (
    ("SRTM", ("elevation", "slope")),
    ("DW", tuple(f"DW_{c}" for c in _DW)),
    ("WC", tuple(f"WC_{c}" for c in _WC)),
)
#: Time groups (``t_x``: B, T, 6).
GALILEO_TIME_GROUPS: tuple[Group, ...] = (
    ("ERA5", ("temperature_2m", "total_precipitation_sum")),
    ("TC", ("def", "soil", "aet")),
    ("VIIRS", ("avg_rad",)),
)
#: Static groups (``st_x``: B, 18).
GALILEO_STATIC_GROUPS: tuple[Group, ...] = (
    ("LS", ("b1",)),
    ("location", ("x", "y", "z")),
    ("DW_static", tuple(f"DW_{c}_static" for c in _DW)),
    ("WC_static", tuple(f"WC_{c}_static" for c in _WC)),
)

#: Pretraining mean and std of the S1 (dB) and S2 (L1C DN) channels (official normalization.json).
GALILEO_SPACE_TIME_STATS: dict[str, tuple[float, float]] = {
    "VV": (-11.728724389184965, 4.887145774840316),
    "VH": (-18.85558188024017, 5.730270320384293),
    "B02": (1395.3408730676722, 917.7041440370853),
    "B03": (1338.4026921784578, 913.2988423581528),
    "B04": (1343.09883810357, 1092.678723527555),
    "B05": (1543.8607982512297, 1047.2206083460424),
    "B06": (2186.2022069512263, 1048.0101611156767),
    "B07": (2525.0932853316694, 1143.6903026819996),
    "B08": (2410.3377187373408, 1098.979177731649),
    "B8A": (2750.2854646886753, 1204.472755085893),
    "B11": (2234.911100061487, 1145.9774063078878),
    "B12": (1474.5311266077113, 980.2429840007796),
}
#: x' = (x - (mean - STD_MULTIPLIER * std)) / (2 * STD_MULTIPLIER * std); NDVI is left unchanged.
STD_MULTIPLIER = 2.0
#: Exit depth per group of the pretraining config's ``token_exit_cfg`` (training targets only).
PRETRAINING_TOKEN_EXIT: dict[str, int] = {
    "S1": 4, "S2_RGB": 4, "S2_Red_Edge": 4, "S2_NIR_10m": 4, "S2_NIR_20m": 4, "S2_SWIR": 4, "NDVI": 2,
    "ERA5": 2, "TC": 2, "VIIRS": 4, "SRTM": 2, "DW": 0, "WC": 0, "LS": 0, "location": 4, "DW_static": 0,
    "WC_static": 0,
}
#: Ground sampling distance (m) at which the spatial encoding counts one pixel as one unit.
BASE_GSD_M = 10.0

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, Tensor)


# -- preprocessing --------------------------------------------------------------------------------
def space_time_shift_div() -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(shift, div)`` (float64, 13 values) of the 2-std rule; NDVI gets (0, 1)."""
    shift, div = np.zeros(len(GALILEO_SPACE_TIME_BANDS)), np.ones(len(GALILEO_SPACE_TIME_BANDS))
    for i, band in enumerate(GALILEO_SPACE_TIME_BANDS):
        if band in GALILEO_SPACE_TIME_STATS:
            mean, std = GALILEO_SPACE_TIME_STATS[band]
            shift[i], div[i] = mean - STD_MULTIPLIER * std, 2 * STD_MULTIPLIER * std
    return shift, div


def normalise_space_time(raw: ArrayOrTensor) -> ArrayOrTensor:
    """Normalise raw ``s_t_x`` (last axis = the 13 channels: S1 dB, S2 L1C DN, NDVI) to float32.

    Computed in float64 and cast to float32, as the official normaliser does.
    """
    if raw.shape[-1] != len(GALILEO_SPACE_TIME_BANDS):
        raise ValueError(f"expected {len(GALILEO_SPACE_TIME_BANDS)} channels on the last axis, "
                         f"got {raw.shape[-1]}")
    shift, div = space_time_shift_div()
    if isinstance(raw, Tensor):
        wide = raw.to(torch.float64)
        return ((wide - wide.new_tensor(shift)) / wide.new_tensor(div)).to(torch.float32)
    return ((np.asarray(raw, dtype=np.float64) - shift) / div).astype(np.float32)


def galileo_ndvi(red: ArrayOrTensor, nir: ArrayOrTensor) -> ArrayOrTensor:
    """NDVI from raw B4 and B8 as pretraining computed it: (B8 - B4) / (B8 + B4), 0 where the sum <= 0."""
    total = nir + red
    if isinstance(total, Tensor):
        safe = torch.where(total > 0, total, torch.ones_like(total))
        return torch.where(total > 0, (nir - red) / safe, torch.zeros_like(total))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (nir - red) / np.where(total > 0, total, 1), 0).astype(np.float32)


# -- fixed encodings ------------------------------------------------------------------------------
def sincos_1d(positions: Tensor, dim: int) -> Tensor:
    """``[sin(q w_j), cos(q w_j)]`` with w_j = 10000^(-j / (2 dim)), j < dim/2 (Galileo's frequencies)."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, device=positions.device, dtype=torch.float32) / dim / 2.0)
    angles = positions.reshape(-1, 1).to(torch.float32) * omega
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def month_table(dim: int) -> Tensor:
    """12 x dim: row m = dim/2 copies of sin(2 pi m / 12), then dim/2 copies of cos."""
    angles = torch.arange(12, dtype=torch.float32) / (12 / (2 * math.pi))
    half = dim // 2
    sin, cos = torch.sin(angles)[:, None], torch.cos(angles)[:, None]
    return torch.cat([sin.expand(12, half), cos.expand(12, half)], dim=-1)


def spatial_encoding(rows: int, cols: int, gsd_ratio: float, dim: int, device: torch.device | str) -> Tensor:
    """rows x cols x dim: first half encodes the column (j * gsd_ratio), second half the row."""
    grid = torch.arange(max(rows, cols), device=device, dtype=torch.float32) * torch.tensor(
        gsd_ratio, dtype=torch.float32, device=device)
    col = sincos_1d(grid[:cols], dim // 2)
    row = sincos_1d(grid[:rows], dim // 2)
    return torch.cat([col[None, :, :].expand(rows, cols, -1), row[:, None, :].expand(rows, cols, -1)], dim=-1)


# -- patch embedding with flexible patch size -----------------------------------------------------
@functools.lru_cache(maxsize=16)
def resize_pinv(base: int, patch_size: int) -> Tensor:
    """P+ (p^2 x base^2): pseudo-inverse of the bicubic antialiased resize base x base -> p x p (FlexiViT)."""
    basis = torch.eye(base * base, dtype=torch.float32).reshape(base * base, 1, base, base)
    resized = F.interpolate(basis, (patch_size, patch_size), mode="bicubic", antialias=True)
    return torch.linalg.pinv(resized.reshape(base * base, patch_size * patch_size))


class GroupPatchEmbed(nn.Module):
    """One channel group's patch projection: a stride-p convolution whose base kernel is resized for p."""

    def __init__(self, channels: int, dim: int, base_patch_size: int = 8) -> None:
        super().__init__()
        self.base_patch_size = base_patch_size
        self.proj = nn.Conv2d(channels, dim, kernel_size=base_patch_size, stride=base_patch_size)

    def kernel(self, patch_size: int) -> Tensor:
        """The projection kernel for ``patch_size`` (the stored one at the base size)."""
        weight = self.proj.weight
        if patch_size == self.base_patch_size:
            return weight
        pinv = resize_pinv(self.base_patch_size, patch_size).to(weight.device, weight.dtype)
        out_ch, in_ch = weight.shape[:2]
        flat = weight.reshape(out_ch * in_ch, -1) @ pinv.T
        return flat.reshape(out_ch, in_ch, patch_size, patch_size)

    def forward(self, images: Tensor, patch_size: int) -> Tensor:
        """``[N, C, H, W]`` -> ``[N, H/p, W/p, D]``."""
        tokens = F.conv2d(images, self.kernel(patch_size), self.proj.bias, stride=patch_size)
        return tokens.permute(0, 2, 3, 1)


# -- transformer ----------------------------------------------------------------------------------
class GalileoAttention(nn.Module):
    """Multi-head self-attention with separate biased q, k, v (fused at call time) and a key mask."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """``key_mask``: ``[B, N]`` bool, True = may be attended to (None: every token)."""
        batch, tokens, dim = x.shape
        weight = torch.cat([self.q.weight, self.k.weight, self.v.weight])
        bias = torch.cat([self.q.bias, self.k.bias, self.v.bias])
        qkv = F.linear(x, weight, bias).reshape(batch, tokens, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class GalileoMlp(nn.Module):
    """Linear -> exact GELU -> Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class GalileoBlock(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)) (no layer-scale; drop-path off)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = GalileoAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = GalileoMlp(dim, dim * mlp_ratio)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x), key_mask)
        return x + self.mlp(self.norm2(x))


class _Packing:
    """Visible tokens moved to the front of each row and the rows cut to the longest visible count.

    Nothing is gathered when every token is visible; the key mask is only kept when rows differ in
    their visible count (it then hides the padding).
    """

    def __init__(self, visible: Tensor) -> None:
        self.visible = visible
        self.order: Tensor | None = None
        self.key_mask: Tensor | None = None
        if bool(visible.all()):
            return
        counts = visible.sum(dim=1)
        length = max(int(counts.max()), 1)
        self.order = torch.sort((~visible).to(torch.int8), dim=1, stable=True).indices[:, :length]
        if bool((counts != counts[0]).any()):
            self.key_mask = torch.arange(length, device=visible.device)[None, :] < counts[:, None]

    def pack(self, x: Tensor) -> Tensor:
        if self.order is None:
            return x
        return x.gather(1, self.order[..., None].expand(-1, -1, x.shape[-1]))

    def unpack(self, packed: Tensor) -> Tensor:
        """Back to the full sequence, with zeros at the hidden tokens."""
        if self.order is None:
            return packed
        full = packed.new_zeros(*self.visible.shape, packed.shape[-1])
        full.scatter_(1, self.order[..., None].expand(-1, -1, packed.shape[-1]), packed)
        return torch.where(self.visible[..., None], full, torch.zeros_like(full))


# -- the encoder ----------------------------------------------------------------------------------
class GalileoEncoder(nn.Module):
    """The Galileo encoder (nano: width 128, 4 blocks, 8 heads); call ``.eval()`` (load_galileo does).

    Args:
        dim: token width, split into four equal encoding slots (channel, time, month, space).
        depth: transformer blocks.
        heads: attention heads.
        mlp_ratio: MLP hidden width / dim.
        max_sequence_length: rows of the time-position table (most time steps per input).
        base_patch_size: the stored kernel size (other patch sizes are resized from it).
    """

    def __init__(self, dim: int = 128, depth: int = 4, heads: int = 8, mlp_ratio: int = 4,
                 max_sequence_length: int = 24, base_patch_size: int = 8) -> None:
        super().__init__()
        if dim % 4 or (dim // 4) % 4:
            raise ValueError(f"dim must split into four slots of a multiple of 4, got {dim}")
        self.dim = dim
        self.base_patch_size = base_patch_size
        slot = dim // 4
        self.space_time_embed = nn.ModuleDict({name: GroupPatchEmbed(len(bands), dim, base_patch_size)
                                               for name, bands in GALILEO_SPACE_TIME_GROUPS})
        self.space_embed = nn.ModuleDict({name: GroupPatchEmbed(len(bands), dim, base_patch_size)
                                          for name, bands in GALILEO_SPACE_GROUPS})
        self.time_embed = nn.ModuleDict({name: nn.Linear(len(bands), dim)
                                         for name, bands in GALILEO_TIME_GROUPS})
        self.static_embed = nn.ModuleDict({name: nn.Linear(len(bands), dim)
                                           for name, bands in GALILEO_STATIC_GROUPS})
        self.s_t_channel_embed = nn.Parameter(torch.zeros(len(GALILEO_SPACE_TIME_GROUPS), slot))
        self.sp_channel_embed = nn.Parameter(torch.zeros(len(GALILEO_SPACE_GROUPS), slot))
        self.t_channel_embed = nn.Parameter(torch.zeros(len(GALILEO_TIME_GROUPS), slot))
        self.st_channel_embed = nn.Parameter(torch.zeros(len(GALILEO_STATIC_GROUPS), slot))
        self.pos_embed = nn.Parameter(sincos_1d(torch.arange(max_sequence_length), slot), requires_grad=False)
        self.month_embed = nn.Embedding.from_pretrained(month_table(slot), freeze=True)
        self.blocks = nn.ModuleList([GalileoBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        #: Run under bfloat16 autocast when the input is on CUDA (outputs stay float32).
        self.cuda_autocast = True

    def _autocast(self, x: Tensor) -> torch.autocast:
        enabled = x.device.type == "cuda" and self.cuda_autocast
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled)

    # -- tokenisation ------------------------------------------------------------------------------
    def _project_space_time(self, s_t_x: Tensor, token_mask: Tensor, patch_size: int,
                            groups: Sequence[int]) -> Tensor:
        """``[B, h, w, T, len(groups), D]``; a group hidden everywhere in the batch is zeros, not computed."""
        b, height, width, t, _ = s_t_x.shape
        images = s_t_x.permute(0, 3, 4, 1, 2).reshape(b * t, -1, height, width)
        out = []
        for g in groups:
            name, bands = GALILEO_SPACE_TIME_GROUPS[g]
            if bool((token_mask[..., g] >= 1).all()):
                out.append(s_t_x.new_zeros(b, height // patch_size, width // patch_size, t, self.dim))
                continue
            first = GALILEO_SPACE_TIME_BANDS.index(bands[0])
            tokens = self.space_time_embed[name](images[:, first:first + len(bands)], patch_size)
            out.append(tokens.reshape(b, t, *tokens.shape[1:]).permute(0, 2, 3, 1, 4))
        return torch.stack(out, dim=-2)

    def _project_space(self, sp_x: Tensor, token_mask: Tensor, patch_size: int) -> Tensor:
        b, height, width, _ = sp_x.shape
        images = sp_x.permute(0, 3, 1, 2)
        out, start = [], 0
        for g, (name, bands) in enumerate(GALILEO_SPACE_GROUPS):
            if bool((token_mask[..., g] >= 1).all()):
                out.append(sp_x.new_zeros(b, height // patch_size, width // patch_size, self.dim))
            else:
                out.append(self.space_embed[name](images[:, start:start + len(bands)], patch_size))
            start += len(bands)
        return torch.stack(out, dim=-2)

    @staticmethod
    def _project_linear(x: Tensor, mask: Tensor, groups: tuple[Group, ...], layers: nn.ModuleDict,
                        dim: int) -> Tensor:
        """Time (``[B, T, C]``) or static (``[B, C]``) groups -> ``[..., groups, D]``."""
        out, start = [], 0
        for g, (name, bands) in enumerate(groups):
            if bool((mask[..., g] >= 1).all()):
                out.append(x.new_zeros(*x.shape[:-1], dim))
            else:
                out.append(layers[name](x[..., start:start + len(bands)]))
            start += len(bands)
        return torch.stack(out, dim=-2)

    def _space_time_encoding(self, months: Tensor, rows: int, cols: int, groups: Sequence[int],
                             gsd_ratio: float) -> Tensor:
        """``[B, h, w, T, len(groups), D]`` of added encodings: channel | time index | month | space."""
        b, t = months.shape
        slot = self.dim // 4
        device = months.device
        channel = self.s_t_channel_embed[list(groups)]
        shape = (b, rows, cols, t, len(groups), slot)
        return torch.cat([
            channel[None, None, None, None].expand(shape),
            self.pos_embed[:t][None, None, None, :, None].expand(shape),
            self.month_embed(months)[:, None, None, :, None].expand(shape),
            spatial_encoding(rows, cols, gsd_ratio, slot, device)[None, :, :, None, None].expand(shape),
        ], dim=-1)

    def _encode_tokens(self, s_t: Tensor, sp: Tensor, t_tok: Tensor, st: Tensor, months: Tensor,
                       gsd_ratio: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Add the four encoding slots to every token kind (spec section 5)."""
        b, rows, cols, t = s_t.shape[:4]
        slot = self.dim // 4
        s_t = s_t + self._space_time_encoding(months, rows, cols, range(s_t.shape[-2]), gsd_ratio)
        space = spatial_encoding(rows, cols, gsd_ratio, slot, months.device)
        sp_groups, t_groups, st_groups = sp.shape[-2], t_tok.shape[-2], st.shape[-2]
        sp = sp + torch.cat([
            self.sp_channel_embed[None, None, None].expand(b, rows, cols, -1, -1),
            sp.new_zeros(b, rows, cols, sp_groups, 2 * slot),
            space[None, :, :, None].expand(b, -1, -1, sp_groups, -1)], dim=-1)
        t_tok = t_tok + torch.cat([
            self.t_channel_embed[None, None].expand(b, t, -1, -1),
            self.pos_embed[:t][None, :, None].expand(b, -1, t_groups, -1),
            self.month_embed(months)[:, :, None].expand(-1, -1, t_groups, -1),
            t_tok.new_zeros(b, t, t_groups, slot)], dim=-1)
        st = st + torch.cat([self.st_channel_embed[None].expand(b, -1, -1),
                             st.new_zeros(b, st_groups, 3 * slot)], dim=-1)
        return s_t, sp, t_tok, st

    # -- transformer -------------------------------------------------------------------------------
    def _run_blocks(self, x: Tensor, visible: Tensor, exit_after: int | None = None,
                    exit_depth: Tensor | None = None, exit_start: Tensor | None = None) -> Tensor:
        """Blocks over the visible tokens of ``x`` ``[B, N, D]``; hidden tokens come back as zeros.

        ``exit_depth`` ``[N]`` (token exit): a token's value is its state after that many blocks
        (0: ``exit_start``, its projection before the encodings).
        """
        packing = _Packing(visible)
        x = packing.pack(x)
        depth = len(self.blocks) if exit_after is None else min(exit_after, len(self.blocks))
        exited = exit_ids = None
        if exit_depth is not None:
            exit_ids = packing.pack(exit_depth[None, :, None].expand(visible.shape[0], -1, 1))
            exited = packing.pack(exit_start) if exit_start is not None else torch.zeros_like(x)
        for i, block in enumerate(self.blocks[:depth]):
            if exited is not None and i > 0:
                exited = torch.where(exit_ids == i, x, exited)
            x = block(x, packing.key_mask)
        if exited is not None:
            x = torch.where(exit_ids >= depth, x, exited)
        return packing.unpack(x)

    # -- public API --------------------------------------------------------------------------------
    def forward(self, s_t_x: Tensor, sp_x: Tensor, t_x: Tensor, st_x: Tensor, s_t_m: Tensor, sp_m: Tensor,
                t_m: Tensor, st_m: Tensor, months: Tensor, patch_size: int = 8,
                input_res_m: float = BASE_GSD_M, exit_after: int | None = None,
                token_exit_cfg: Mapping[str, int] | None = None,
                add_layernorm_on_exit: bool = True) -> tuple[Tensor, ...]:
        """All token kinds, as the official encoder returns them.

        Returns:
            ``(s_t [B,h,w,T,7,D], sp [B,h,w,3,D], t [B,T,3,D], st [B,4,D], s_t_m, sp_m, t_m, st_m,
            months)`` with the masks subsampled to the patch grid (top-left pixel of each patch).
            Hidden tokens carry no meaning (LayerNorm of zeros); pool with the masks.
        """
        _check_patching(s_t_x.shape[1], s_t_x.shape[2], patch_size)
        masks = (s_t_m[:, ::patch_size, ::patch_size], sp_m[:, ::patch_size, ::patch_size], t_m, st_m)
        with self._autocast(s_t_x):
            tokens = self._project_all(s_t_x, sp_x, t_x, st_x, masks, patch_size)
            if exit_after is None or exit_after > 0:
                tokens = self._transform(tokens, masks, months, patch_size * input_res_m / BASE_GSD_M,
                                         exit_after, token_exit_cfg)
            if add_layernorm_on_exit:
                tokens = tuple(self.norm(a) for a in tokens)
        return *(a.float() for a in tokens), *masks, months

    def _project_all(self, s_t_x: Tensor, sp_x: Tensor, t_x: Tensor, st_x: Tensor,
                     masks: tuple[Tensor, ...], patch_size: int) -> tuple[Tensor, ...]:
        """The four token kinds' projections (before any encoding)."""
        s_t_tm, sp_tm, t_m, st_m = masks
        return (self._project_space_time(s_t_x, s_t_tm, patch_size, range(len(GALILEO_SPACE_TIME_GROUPS))),
                self._project_space(sp_x, sp_tm, patch_size),
                self._project_linear(t_x, t_m, GALILEO_TIME_GROUPS, self.time_embed, self.dim),
                self._project_linear(st_x, st_m, GALILEO_STATIC_GROUPS, self.static_embed, self.dim))

    def _transform(self, tokens: tuple[Tensor, ...], masks: tuple[Tensor, ...], months: Tensor,
                   gsd_ratio: float, exit_after: int | None,
                   token_exit_cfg: Mapping[str, int] | None) -> tuple[Tensor, ...]:
        """Encodings, then the blocks over the visible tokens of all kinds (token exit when configured)."""
        shapes = [tuple(a.shape) for a in tokens]
        projections = _flatten_tokens(*tokens) if token_exit_cfg else None
        encoded = self._encode_tokens(*tokens, months, gsd_ratio)
        visible = _flatten_tokens(*masks, masks=True) < 1
        exit_depth = _exit_depths(shapes, token_exit_cfg, months.device) if token_exit_cfg else None
        x = self._run_blocks(_flatten_tokens(*encoded), visible, exit_after, exit_depth, projections)
        return _split_tokens(x, shapes)

    def embed_space_time(self, s_t_x: Tensor, s_t_m: Tensor, months: Tensor, patch_size: int = 8,
                         input_res_m: float = BASE_GSD_M) -> Tensor:
        """One vector per patch from the space-time groups only (space, time and static groups absent).

        Groups hidden everywhere in the batch are skipped and attention never sees hidden tokens.
        Equals ``forward`` (with sp/t/st masked) followed by the per-patch mean over the visible
        (time step, group) tokens after the final LayerNorm.

        Args:
            s_t_x: ``[B, H, W, T, 13]`` normalised (:func:`normalise_space_time`).
            s_t_m: ``[B, H, W, T, 7]`` group masks (0 present, 1 absent).
            months: ``[B, T]`` 0-based months.

        Returns:
            ``[B, H/p, W/p, D]``; NaN at patches with no visible token.
        """
        _check_patching(s_t_x.shape[1], s_t_x.shape[2], patch_size)
        with self._autocast(s_t_x):
            return self._embed_space_time(s_t_x, s_t_m, months, patch_size, input_res_m).float()

    def _embed_space_time(self, s_t_x: Tensor, s_t_m: Tensor, months: Tensor, patch_size: int,
                          input_res_m: float) -> Tensor:
        hidden = s_t_m[:, ::patch_size, ::patch_size] >= 1  # B, h, w, T, 7
        groups = [g for g in range(len(GALILEO_SPACE_TIME_GROUPS)) if not bool(hidden[..., g].all())]
        b, rows, cols, t = hidden.shape[:4]
        if not groups:
            return s_t_x.new_full((b, rows, cols, self.dim), float("nan"))
        visible = ~hidden[..., groups]  # B, h, w, T, G
        tokens = self._project_space_time(s_t_x, hidden.to(s_t_x.dtype), patch_size, groups)
        tokens = tokens + self._space_time_encoding(months, rows, cols, groups,
                                                    patch_size * input_res_m / BASE_GSD_M)
        x = self._run_blocks(tokens.reshape(b, -1, self.dim), visible.reshape(b, -1))
        x = self.norm(x).reshape(b, rows, cols, t * len(groups), self.dim)
        weights = visible.reshape(b, rows, cols, -1, 1).to(x.dtype)
        return (x * weights).sum(dim=3) / weights.sum(dim=3)


def average_visible_tokens(s_t: Tensor, sp: Tensor, t_tok: Tensor, st: Tensor, s_t_m: Tensor, sp_m: Tensor,
                           t_m: Tensor, st_m: Tensor) -> Tensor:
    """``[B, D]``: the mean of every visible token of every kind (the official ``average_tokens``)."""
    x = _flatten_tokens(s_t, sp, t_tok, st)
    weights = (_flatten_tokens(s_t_m, sp_m, t_m, st_m, masks=True) < 1).to(x.dtype)[..., None]
    return (x * weights).sum(dim=1) / weights.sum(dim=1)


def per_patch_visible_mean(s_t: Tensor, sp: Tensor, t_tok: Tensor, st: Tensor, s_t_m: Tensor, sp_m: Tensor,
                           t_m: Tensor, st_m: Tensor) -> Tensor:
    """``[B, h*w, D]`` (patches row-major): per patch, the mean of its visible space-time and space
    tokens and of every visible time and static token (the official per-patch average)."""
    b, rows, cols = s_t.shape[:3]
    patches, dim = rows * cols, s_t.shape[-1]
    shared = torch.cat([t_tok.reshape(b, -1, dim), st.reshape(b, -1, dim)], dim=1)
    shared_m = torch.cat([t_m.reshape(b, -1), st_m.reshape(b, -1)], dim=1)
    x = torch.cat([s_t.reshape(b, patches, -1, dim), sp.reshape(b, patches, -1, dim),
                   shared[:, None].expand(-1, patches, -1, -1)], dim=2)
    m = torch.cat([s_t_m.reshape(b, patches, -1), sp_m.reshape(b, patches, -1),
                   shared_m[:, None].expand(-1, patches, -1)], dim=2)
    weights = (m < 1).to(x.dtype)[..., None]
    return (x * weights).sum(dim=2) / weights.sum(dim=2)


def _check_patching(height: int, width: int, patch_size: int) -> None:
    if not 1 <= patch_size <= 8 or height % patch_size or width % patch_size:
        raise ValueError(f"patch size {patch_size} must be 1..8 and divide the input ({height} x {width})")


def _flatten_tokens(s_t: Tensor, sp: Tensor, t_tok: Tensor, st: Tensor, masks: bool = False) -> Tensor:
    """One sequence in the official order: space-time (h, w, T, g), space (h, w, g), time (T, g), static."""
    b = s_t.shape[0]
    tail = () if masks else (s_t.shape[-1],)
    return torch.cat([a.reshape(b, -1, *tail) for a in (s_t, sp, t_tok, st)], dim=1)


def _split_tokens(x: Tensor, shapes: Sequence[tuple[int, ...]]) -> tuple[Tensor, ...]:
    sizes = [math.prod(shape[1:-1]) for shape in shapes]
    return tuple(part.reshape(shape) for part, shape in zip(x.split(sizes, dim=1), shapes, strict=True))


def _exit_depths(shapes: Sequence[tuple[int, ...]], config: Mapping[str, int],
                 device: torch.device) -> Tensor:
    """Per-token exit depth ``[N]`` from a group -> depth mapping, in :func:`_flatten_tokens` order."""
    kinds = (GALILEO_SPACE_TIME_GROUPS, GALILEO_SPACE_GROUPS, GALILEO_TIME_GROUPS, GALILEO_STATIC_GROUPS)
    parts = []
    for shape, groups in zip(shapes, kinds, strict=True):
        depths = torch.tensor([config[name] for name, _ in groups], device=device)
        parts.append(depths.repeat(math.prod(shape[1:-2])))
    return torch.cat(parts)


# -- loading --------------------------------------------------------------------------------------
def _strict_state(model: nn.Module, state: Mapping[str, Tensor], source: Path) -> dict[str, Tensor]:
    """``state`` as float32, refusing missing, unexpected, mis-shaped or non-finite tensors."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = []
    for label, keys in (("missing", sorted(set(expected) - set(state))),
                        ("unexpected", sorted(set(state) - set(expected))),
                        ("with wrong shape", sorted(f"{k} {list(state[k].shape)} != {list(expected[k])}"
                                                    for k in set(expected) & set(state)
                                                    if tuple(state[k].shape) != expected[k]))):
        if keys:
            problems.append(f"{len(keys)} {label} ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})")
    if problems:
        raise UserError(f"{source} is not a Galileo-nano encoder ({len(expected)} tensors expected): "
                        + "; ".join(problems))
    tensors = {k: v.to(torch.float32) for k, v in state.items()}
    damaged = [k for k, v in tensors.items() if not bool(torch.isfinite(v).all())]
    if damaged:
        raise UserError(f"{source} has non-finite (NaN or inf) weights in {', '.join(damaged[:4])}; "
                        "the model file is damaged")
    return tensors


def _read_official(path: Path) -> dict[str, Tensor]:
    """The official ``encoder.pt`` state dict (weights only: a pickle that needs code is refused)."""
    import pickle

    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        lines = str(exc).splitlines()
        detail = next((line.strip() for line in lines if "GLOBAL" in line), "not weights only")
        raise UserError(f"refused to load {path}: it holds Python objects other than tensors, which could "
                        f"run code when unpickled ({detail[:200]})") from None
    except (RuntimeError, OSError, EOFError, ValueError, AttributeError) as exc:
        raise UserError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"{path}: not a Galileo encoder state dict (expected a mapping of names to tensors)")
    return {str(k).replace(".backbone", ""): v for k, v in state.items()}


def _read_project(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Weights and config of a project model pair (``.safetensors`` + ``.json``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from backend.io.atomic import read_json
    from backend.models.files import model_paths

    weights, config_path = model_paths(path)
    for needed in (weights, config_path):
        if not needed.exists():
            raise UserError(f"model file not found: {needed} (a model is a .safetensors + .json pair)")
    config = read_json(config_path, "model config")
    if config.get("architecture") != "galileo":
        raise UserError(f"{config_path}: architecture is {config.get('architecture')!r}, not 'galileo'")
    try:
        return load_file(str(weights), device="cpu"), config
    except (SafetensorError, OSError) as exc:
        raise UserError(f"cannot read model weights {weights}: {exc}") from None


#: Architecture arguments read from a project config (the nano values when absent).
_ARCHITECTURE_KEYS = ("dim", "depth", "heads", "mlp_ratio", "max_sequence_length")


def load_galileo(path: str | Path, device: torch.device | str = "cpu") -> GalileoEncoder:
    """Load a Galileo encoder in eval mode from a project model pair or the official ``encoder.pt``.

    Raises:
        UserError: missing or unreadable file, a pickle that would run code, or keys / shapes that
            are not the encoder's.
    """
    from backend.models.files import is_model_file

    path = Path(path)
    if is_model_file(path):
        state, config = _read_project(path)
        arguments = {k: int(config[k]) for k in _ARCHITECTURE_KEYS if k in config}
        arguments["base_patch_size"] = int(config.get("patch_size", 8))
    else:
        state, arguments = _read_official(path), {}
    with torch.device("meta"):
        model = GalileoEncoder(**arguments)
    model.load_state_dict(_strict_state(model, state, path), strict=True, assign=True)
    return model.to(device).eval()
