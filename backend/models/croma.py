"""CROMA encoders: radar (S1) and optical (S2) ViTs with 2D-ALiBi and a joint cross-attention encoder.

Module and parameter names follow the released checkpoints (``s1_encoder``, ``s2_GAP_FFN``,
``transformer.layers.{l}.0.to_qkv`` ...), so an official state_dict loads by a fixed remap and
TorchGeo's flattened form is ``"<top>.<inner>"``. Positions enter only through ALiBi biases: any
image whose sides are multiples of the patch size works with the same weights, square or not.
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from backend.errors import UserError
from backend.models.alibi import AlibiBias, grid_positions
from backend.models.config import ModelConfig

#: Attention kernels: "auto" (SDPA; FlexAttention for large full grids on CUDA), "sdpa", "eager"
#: (einsum + softmax, the published maths) and "flex" (ALiBi computed inside the kernel).
ATTENTION_BACKENDS = ("auto", "sdpa", "eager", "flex")
#: From this many tokens on, "auto" on CUDA uses FlexAttention instead of a dense bias.
FLEX_MIN_TOKENS = 2048

_backend: contextvars.ContextVar[str] = contextvars.ContextVar("attention_backend", default="auto")


@contextlib.contextmanager
def attention_backend(name: str) -> Iterator[None]:
    """Select the attention kernel inside a ``with`` block (e.g. ``"eager"`` for the reference)."""
    if name not in ATTENTION_BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; choose from {ATTENTION_BACKENDS}")
    token = _backend.set(name)
    try:
        yield
    finally:
        _backend.reset(token)


def current_attention_backend() -> str:
    """The attention kernel selected by :func:`attention_backend` (``"auto"`` by default)."""
    return _backend.get()


def patchify(images: Tensor, patch_size: int) -> Tensor:
    """Cut ``[B, C, H, W]`` images into row-major patches ``[B, N, C*p*p]`` (channel-major features)."""
    return rearrange(images, "b c (h i) (w j) -> b (h w) (c i j)", i=patch_size, j=patch_size)


def unpatchify(patches: Tensor, patch_size: int, rows: int, cols: int) -> Tensor:
    """Inverse of :func:`patchify`: ``[B, rows*cols, C*p*p]`` back to ``[B, C, rows*p, cols*p]``."""
    return rearrange(patches, "b (h w) (c i j) -> b c (h i) (w j)", h=rows, w=cols,
                     i=patch_size, j=patch_size)


def random_keep_indices(batch: int, num_tokens: int, keep: int,
                        generator: torch.Generator | None = None,
                        device: torch.device | str = "cpu") -> Tensor:
    """Per-sample random token subsets (MAE-style shuffle), sorted, as ``LongTensor[batch, keep]``."""
    if not 0 < keep <= num_tokens:
        raise ValueError(f"keep must be in 1..{num_tokens}, got {keep}")
    noise = torch.rand(batch, num_tokens, generator=generator)
    kept = noise.argsort(dim=1)[:, :keep]
    return kept.sort(dim=1).values.to(device)


_COMPILED_FLEX: list[Callable[..., Tensor]] = []
_FLEX_FAILED: list[str] = []


def _flex_kernel(cuda: bool) -> Callable[..., Tensor]:
    """FlexAttention: compiled on CUDA (fused kernel, no N x N scores); eager elsewhere (tests)."""
    from torch.nn.attention.flex_attention import flex_attention

    if not cuda:
        return flex_attention
    if not _COMPILED_FLEX:
        _COMPILED_FLEX.append(torch.compile(flex_attention, dynamic=False))
    return _COMPILED_FLEX[0]


def _flex_attention(q: Tensor, k: Tensor, v: Tensor, bias: AlibiBias) -> Tensor:
    slopes = bias_slopes(bias.heads, q.device)
    cols = bias.cols
    q_pos = None if bias.q_positions is None else bias.q_positions.to(q.device)
    k_pos = None if bias.k_positions is None else bias.k_positions.to(q.device)

    def score_mod(score: Tensor, b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        qi = q_idx if q_pos is None else q_pos[b, q_idx]
        ki = kv_idx if k_pos is None else k_pos[b, kv_idx]
        dr = qi // cols - ki // cols
        dc = qi % cols - ki % cols
        dist = (dr * dr + dc * dc).to(torch.float32).sqrt()
        return score - slopes[h] * dist

    return _flex_kernel(q.is_cuda)(q, k, v, score_mod=score_mod)


_SLOPES: dict[tuple[int, str], Tensor] = {}


def bias_slopes(heads: int, device: torch.device) -> Tensor:
    """ALiBi slopes on ``device`` (cached)."""
    from backend.models.alibi import alibi_slopes

    key = (heads, str(device))
    if key not in _SLOPES:
        _SLOPES[key] = alibi_slopes(heads).to(device)
    return _SLOPES[key]


def attend(q: Tensor, k: Tensor, v: Tensor, bias: AlibiBias) -> Tensor:
    """Scaled dot-product attention of ``[B, H, N, dh]`` heads with an ALiBi bias.

    The kernel is chosen by :func:`attention_backend`: SDPA with the bias as an additive float
    mask, the eager published maths, or FlexAttention computing the bias inside the kernel.
    """
    backend = chosen = _backend.get()
    if backend == "auto":
        large = bias.is_full_grid and bias.rows * bias.cols >= FLEX_MIN_TOKENS
        backend = "flex" if q.is_cuda and large and not _FLEX_FAILED else "sdpa"
    if backend == "flex":
        try:
            return _flex_attention(q, k, v, bias)
        except Exception as exc:  # a kernel/compiler limitation: fall back to the dense bias
            if chosen == "flex":
                raise
            _FLEX_FAILED.append(f"{type(exc).__name__}: {exc}")
            warnings.warn(f"FlexAttention unavailable ({_FLEX_FAILED[0][:200]}); using SDPA with a "
                          "dense ALiBi bias", RuntimeWarning, stacklevel=2)
    mask = bias.dense(q.device, q.dtype)
    if backend == "eager":
        logits = torch.einsum("bhid,bhjd->bhij", q, k) * q.shape[-1] ** -0.5
        return torch.einsum("bhij,bhjd->bhid", (logits + mask).softmax(dim=-1), v)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class FeedForward(nn.Module):
    """Pre-norm MLP: LayerNorm -> Linear(d, r d) -> GELU -> Dropout(0) -> Linear(r d, d)."""

    def __init__(self, dim: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.input_norm = nn.LayerNorm(dim)
        self.net = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Dropout(0.0),
                                 nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.input_norm(x))


class Attention(nn.Module):
    """Pre-norm multi-head self-attention with an ALiBi bias (bias-free qkv, biased output)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.input_norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, bias: AlibiBias) -> Tensor:
        q, k, v = self.to_qkv(self.input_norm(x)).chunk(3, dim=-1)
        q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in (q, k, v))
        out = attend(q, k, v, bias)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


class CrossAttention(nn.Module):
    """Pre-norm cross-attention; one LayerNorm shared by the query stream and the context."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.input_norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor, bias: AlibiBias) -> Tensor:
        x = self.input_norm(x)
        context = self.input_norm(context)
        q = rearrange(self.to_q(x), "b n (h d) -> b h n d", h=self.heads)
        k = rearrange(self.to_k(context), "b n (h d) -> b h n d", h=self.heads)
        v = rearrange(self.to_v(context), "b n (h d) -> b h n d", h=self.heads)
        out = attend(q, k, v, bias)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))


class TransformerBlock(nn.ModuleList):
    """Self-attention then MLP, each residual (children ``0`` and ``1`` as in the release)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__([Attention(dim, heads), FeedForward(dim, mlp_ratio)])

    def forward(self, x: Tensor, bias: AlibiBias) -> Tensor:  # type: ignore[override]
        attention, mlp = self
        x = x + attention(x, bias)
        return x + mlp(x)


class JointBlock(nn.ModuleList):
    """Self-attention, cross-attention to the context, MLP (children ``0``, ``1``, ``2``)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__([Attention(dim, heads), CrossAttention(dim, heads), FeedForward(dim, mlp_ratio)])

    def forward(self, x: Tensor, context: Tensor, self_bias: AlibiBias,  # type: ignore[override]
                cross_bias: AlibiBias) -> Tensor:
        attention, cross_attention, mlp = self
        x = x + attention(x, self_bias)
        x = x + cross_attention(x, context, cross_bias)
        return x + mlp(x)


class Transformer(nn.Module):
    """A stack of :class:`TransformerBlock` followed by a final LayerNorm ``norm_out``."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.layers = nn.ModuleList([TransformerBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: Tensor, bias: AlibiBias) -> Tensor:
        for layer in self.layers:
            x = layer(x, bias)
        return self.norm_out(x)


class ViTEncoder(nn.Module):
    """CROMA's unimodal encoder: linear patch embedding and a 2D-ALiBi transformer.

    Args:
        in_channels: input bands.
        dim: token width.
        depth: transformer layers.
        heads: attention heads.
        patch_size: pixels per patch side.
        mlp_ratio: hidden width of the MLP relative to ``dim``.
    """

    def __init__(self, in_channels: int, dim: int, depth: int, heads: int, patch_size: int = 8,
                 mlp_ratio: int = 4) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.heads = heads
        self.linear_input = nn.Linear(in_channels * patch_size**2, dim)
        self.transformer = Transformer(dim, depth, heads, mlp_ratio)

    def grid(self, image: Tensor) -> tuple[int, int]:
        """Patch rows and columns of ``image`` ``[B, C, H, W]``."""
        height, width = image.shape[-2:]
        return height // self.patch_size, width // self.patch_size

    def forward(self, image: Tensor, keep: Tensor | None = None) -> Tensor:
        """Encode ``image`` ``[B, C, H, W]``; with ``keep`` ``[B, K]`` only those tokens.

        Returns:
            Encodings ``[B, K or N, dim]`` after the final LayerNorm.
        """
        rows, cols = self.grid(image)
        patches = patchify(image, self.patch_size)
        if keep is not None:
            keep = keep.to(patches.device)
            patches = patches.gather(1, keep.unsqueeze(-1).expand(-1, -1, patches.shape[-1]))
        bias = AlibiBias(rows, cols, self.heads, keep, keep)
        return self.transformer(self.linear_input(patches), bias)


class JointEncoder(nn.Module):
    """CROMA's joint encoder: radar tokens attend to themselves and to optical tokens (X-ALiBi).

    Args:
        dim: token width.
        depth: joint layers.
        heads: attention heads.
        mlp_ratio: hidden width of the MLP relative to ``dim``.
    """

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.layers = nn.ModuleList([JointBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: Tensor, context: Tensor, x_positions: Tensor | None = None,
                context_positions: Tensor | None = None, grid: tuple[int, int] | None = None,
                self_bias_mode: str = "radar") -> Tensor:
        """Fuse radar encodings ``x`` ``[B, Nx, d]`` with optical ``context`` ``[B, Nc, d]``.

        Args:
            x: radar token encodings (the stream that is updated).
            context: optical token encodings (fixed keys/values).
            x_positions: grid indices ``[B, Nx]`` of the radar tokens, ``None`` for all.
            context_positions: grid indices ``[B, Nc]`` of the optical tokens, ``None`` for all.
            grid: patch rows and columns; required when positions are given, else inferred
                from a square token count.
            self_bias_mode: ``"radar"`` gives the self-attention radar-radar 2D-ALiBi;
                ``"released"`` reproduces the published pretraining code, whose self-attention
                reuses the cross (radar query x optical key) bias.

        Returns:
            Joint encodings ``[B, Nx, d]`` after the final LayerNorm.
        """
        if self_bias_mode not in ("radar", "released"):
            raise ValueError(f"self_bias_mode must be 'radar' or 'released', got {self_bias_mode!r}")
        if grid is None:
            side = round(x.shape[1] ** 0.5)
            if side * side != x.shape[1] or x_positions is not None or context_positions is not None:
                raise ValueError("grid=(rows, cols) is required for non-square or subset tokens")
            grid = (side, side)
        rows, cols = grid
        cross = AlibiBias(rows, cols, self.heads, x_positions, context_positions)
        own = cross if self_bias_mode == "released" else AlibiBias(rows, cols, self.heads, x_positions,
                                                                  x_positions)
        for layer in self.layers:
            x = layer(x, context, own, cross)
        return self.norm_out(x)


class GapFFN(nn.Sequential):
    """Head on mean-pooled tokens: LayerNorm -> Linear(d, r d) -> GELU -> Linear(r d, d)."""

    def __init__(self, dim: int, mlp_ratio: int = 4) -> None:
        super().__init__(nn.LayerNorm(dim), nn.Linear(dim, mlp_ratio * dim), nn.GELU(),
                         nn.Linear(mlp_ratio * dim, dim))


class CromaModel(nn.Module):
    """CROMA radar/optical/joint encoders for the modalities of ``config``.

    Sub-modules (only those the modalities need): ``s1_encoder``, ``s1_GAP_FFN``,
    ``s2_encoder``, ``s2_GAP_FFN``, ``joint_encoder`` — the names of the released checkpoint.

    Args:
        config: architecture and input description.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        #: Use bfloat16 autocast when the input is on CUDA.
        self.cuda_autocast = True
        c = config
        if "sar" in c.modalities:
            self.s1_encoder = ViTEncoder(len(c.modalities["sar"].bands), c.dim, c.sar_depth, c.heads,
                                         c.patch_size, c.mlp_ratio)
            self.s1_GAP_FFN = GapFFN(c.dim, c.mlp_ratio)
        if "optical" in c.modalities:
            self.s2_encoder = ViTEncoder(len(c.modalities["optical"].bands), c.dim, c.optical_depth,
                                         c.heads, c.patch_size, c.mlp_ratio)
            self.s2_GAP_FFN = GapFFN(c.dim, c.mlp_ratio)
        if c.has_joint:
            self.joint_encoder = JointEncoder(c.dim, c.joint_depth, c.heads, c.mlp_ratio)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in ("sar", "optical") if m in self.config.modalities)

    def _check(self, name: str, image: Tensor) -> None:
        if name not in self.config.modalities:
            raise UserError(f"this model has no {name} encoder (modalities: {', '.join(self.modalities)})")
        bands = len(self.config.modalities[name].bands)
        if image.ndim != 4 or image.shape[1] != bands:
            raise UserError(f"{name} input must be [B, {bands}, H, W], got {list(image.shape)}")
        p = self.config.patch_size
        if image.shape[-1] % p or image.shape[-2] % p or image.shape[-1] == 0 or image.shape[-2] == 0:
            raise UserError(f"{name} input height and width must be positive multiples of {p}, "
                            f"got {image.shape[-2]} x {image.shape[-1]}")

    def forward(self, sar: Tensor | None = None, optical: Tensor | None = None) -> dict[str, Tensor]:
        """Encode normalised images (values in [0, 1]).

        Args:
            sar: radar images ``[B, C_sar, H, W]``.
            optical: optical images ``[B, C_opt, H, W]`` (same H, W as ``sar`` when both).

        Returns:
            ``{sar,optical,joint}_encodings`` ``[B, N, dim]`` and ``{...}_pooled`` ``[B, dim]``
            for the given streams (joint only when both are given), float32.
        """
        if sar is None and optical is None:
            raise UserError("give at least one of sar= or optical=")
        for name, image in (("sar", sar), ("optical", optical)):
            if image is not None:
                self._check(name, image)
        if sar is not None and optical is not None and sar.shape[-2:] != optical.shape[-2:]:
            raise UserError(f"sar and optical sizes differ: {tuple(sar.shape[-2:])} vs "
                            f"{tuple(optical.shape[-2:])}")
        device = (sar if sar is not None else optical).device  # type: ignore[union-attr]
        use_autocast = device.type == "cuda" and self.cuda_autocast
        out: dict[str, Tensor] = {}
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_autocast):
            if sar is not None:
                out["sar_encodings"] = self.s1_encoder(sar)
                out["sar_pooled"] = self.s1_GAP_FFN(out["sar_encodings"].mean(dim=1))
            if optical is not None:
                out["optical_encodings"] = self.s2_encoder(optical)
                out["optical_pooled"] = self.s2_GAP_FFN(out["optical_encodings"].mean(dim=1))
            if sar is not None and optical is not None:
                grid = self.s2_encoder.grid(optical)
                out["joint_encodings"] = self.joint_encoder(out["sar_encodings"],
                                                            out["optical_encodings"], grid=grid)
                out["joint_pooled"] = out["joint_encodings"].mean(dim=1)
        return {k: v.float() for k, v in out.items()}


def build_model(config: ModelConfig) -> CromaModel:
    """A randomly initialised :class:`CromaModel` for ``config``."""
    return CromaModel(config)


def full_grid_positions(batch: int, rows: int, cols: int, device: torch.device | str = "cpu") -> Tensor:
    """Every token index of a grid for each sample, ``LongTensor[batch, rows*cols]``."""
    return grid_positions(rows, cols, device).unsqueeze(0).expand(batch, -1)
