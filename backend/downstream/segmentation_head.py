"""The segmentation head and its files: the model, and saving / loading it.

Two forms:

* ``"pixels"``: ``logits(pixel) = upsample_x8(MLP(embedding of each patch)) + Linear(standardised
  bands of the pixel)``, on the input raster's pixel grid (the embeddings on its 8x8 patch grid).
* ``"field"``: ``logits(cell) = MLP(embedding of each cell)``, on the embedding field's own grid,
  when there is no input raster (no per-pixel term, no upsampling).

Embeddings are L2-normalised (scaled by sqrt(dim)); bands are standardised with statistics of the
training pixels, stored in the head. A head is saved as ``name.safetensors`` + ``name.json``
(form, classes, embedding dim, the kind of embeddings it was trained on, bands, hidden size).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from backend.errors import UserError

PATCH = 8
HEAD_FORMAT = "terraprobe-segmentation-head"
FORMS = ("pixels", "field")


class SegmentationHead(nn.Module):
    """Patch MLP upsampled x8 plus a per-pixel linear term on standardised bands (``band_count`` > 0),
    or the MLP alone on the field's own cells (``band_count`` = 0, the ``"field"`` form)."""

    def __init__(self, embedding_dim: int, band_count: int, class_count: int, hidden: int = 64) -> None:
        super().__init__()
        self.embedding_dim, self.band_count, self.class_count, self.hidden = (
            embedding_dim, band_count, class_count, hidden)
        self.patch_mlp = nn.Sequential(nn.Linear(embedding_dim, hidden), nn.GELU(),
                                       nn.Linear(hidden, class_count))
        self.pixel_linear = nn.Conv2d(band_count, class_count, kernel_size=1) if band_count else None
        self.register_buffer("band_mean", torch.zeros(band_count))
        self.register_buffer("band_std", torch.ones(band_count))

    @property
    def form(self) -> str:
        """``"pixels"`` (embedding + per-pixel band term) or ``"field"`` (embedding term only)."""
        return "pixels" if self.band_count else "field"

    @property
    def scale(self) -> int:
        """Output cells per embedding cell along each axis: 8 (pixels form) or 1 (field form)."""
        return PATCH if self.band_count else 1

    def forward(self, embeddings: torch.Tensor, pixels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, K, s*h, s*w]`` from embeddings ``[B, dim, h, w]`` and pixels ``[B, C, 8h, 8w]``
        (``s`` = :attr:`scale`; ``pixels`` is ignored by the field form).

        NaN embeddings or pixels (nodata) are treated as zeros; mask them in the output.
        """
        vectors = torch.nan_to_num(embeddings, nan=0.0).permute(0, 2, 3, 1)
        scale = math.sqrt(self.embedding_dim)
        vectors = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12) * scale
        patch_logits = self.patch_mlp(vectors).permute(0, 3, 1, 2)
        if self.pixel_linear is None:
            return patch_logits
        upsampled = F.interpolate(patch_logits, scale_factor=PATCH, mode="bilinear", align_corners=False)
        bands = (pixels - self.band_mean[:, None, None]) / self.band_std[:, None, None]
        return upsampled + self.pixel_linear(torch.nan_to_num(bands, nan=0.0))


@dataclass
class HeadInfo:
    """What a saved head needs besides its weights (``bands`` is empty for the field form).

    ``embedding`` describes the embeddings it was trained on (see
    :func:`backend.downstream.segmentation.embedding_kind`); empty for heads saved before it existed.
    """

    classes: list[str]
    embedding_dim: int
    bands: list[str]
    hidden: int = 64
    embedding: dict[str, Any] = field(default_factory=dict)

    @property
    def form(self) -> str:
        return "pixels" if self.bands else "field"

    def to_json(self) -> dict[str, Any]:
        return {"format": HEAD_FORMAT, "version": 3, "form": self.form, "classes": self.classes,
                "embedding_dim": self.embedding_dim, "embedding": self.embedding, "bands": self.bands,
                "band_count": len(self.bands), "hidden": self.hidden}


def head_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``x.safetensors`` and ``x.json`` for a head path given with or without the suffix."""
    base = Path(path)
    if base.suffix == ".safetensors":
        base = base.with_suffix("")
    return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")


def save_head(head: SegmentationHead, info: HeadInfo, path: str | os.PathLike[str]) -> Path:
    """Write the head's weights and JSON atomically; returns the ``.safetensors`` path."""
    from backend.io.atomic import atomic_paths
    from backend.models.files import save_safetensors

    weights, meta = head_paths(path)
    tensors = {name: value.detach().cpu().contiguous() for name, value in head.state_dict().items()}
    with atomic_paths(weights, meta) as (weights_tmp, meta_tmp):
        save_safetensors(tensors, weights_tmp)
        meta_tmp.write_text(json.dumps(info.to_json(), indent=2) + "\n", encoding="utf-8")
    return weights


def load_head(path: str | os.PathLike[str]) -> tuple[SegmentationHead, HeadInfo]:
    """Load a head saved by :func:`save_head` (clear errors for missing or foreign files).

    Heads saved before the field form existed (version 1, no ``form``) are pixels heads.
    """
    from safetensors.torch import load_file

    weights, meta = head_paths(path)
    for file in (weights, meta):
        if not file.exists():
            raise UserError(f"segmentation head file not found: {file}")
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        if data.get("format") != HEAD_FORMAT:
            raise ValueError("not a segmentation head")
        info = HeadInfo(list(data["classes"]), int(data["embedding_dim"]), list(data["bands"]),
                        int(data.get("hidden", 64)), dict(data.get("embedding") or {}))
        if data.get("form", "pixels") != info.form:
            raise ValueError(f"its form {data.get('form')!r} does not match its bands")
        head = SegmentationHead(info.embedding_dim, len(info.bands), len(info.classes), info.hidden)
        head.load_state_dict(load_file(str(weights)))
    except Exception as exc:
        raise UserError(f"{weights} is not a segmentation head saved by `segment`: {exc}") from None
    return head.eval(), info


def check_head_form(info: HeadInfo, with_pixels: bool, path: str | os.PathLike[str]) -> None:
    """One clear error when a head is applied in the other form than it was trained in."""
    name = head_paths(path)[0].name
    if info.form == "field" and with_pixels:
        raise UserError(f"the head {name} was trained on the embedding field alone (no per-pixel band term); "
                        "apply it without --optical/--sar (the map is then on the field's own grid)")
    if info.form == "pixels" and not with_pixels:
        raise UserError(f"the head {name} has a per-pixel band term ({', '.join(info.bands)}); give the "
                        "raster to segment with --optical/--sar")
