"""Augmented views of a batch for self-distillation objectives (CMID, X-STARS' DINO loss).

Views are random resized crops with horizontal and vertical flips, cut for the whole batch at
once with one ``grid_sample`` call (each sample its own box). Every view also knows where its
tokens came from: :func:`token_centres` gives each token's centre in the pixel coordinates of
the original chip (flip-aware), which is how CMID matches tokens between two views and how
X-STARS cuts two sensors with identical geometry so their tokens stay aligned.

Vertical flips are included (the published recipes use horizontal flips only) because overhead
imagery has no preferred up direction. The radiometric jitter is deliberately light and
spectrally faithful: one brightness gain per image, a small gain per band, a small offset and
Gaussian noise, all on the normalised [0, 1] values. Colour-jitter of RGB recipes (hue,
saturation, grayscale, solarisation) is left out: it would destroy the spectral signatures that
multispectral and radar encoders are meant to learn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class CropGeometry:
    """Per-sample crop boxes and flips, in pixels of the source chip.

    Attributes:
        boxes: ``[B, 4]`` float (top, left, height, width).
        flips: ``[B, 2]`` bool (vertical, horizontal).
        source_size: (height, width) of the source chip.
    """

    boxes: Tensor
    flips: Tensor
    source_size: tuple[int, int]


def sample_geometry(batch: int, source_size: tuple[int, int], scale: tuple[float, float] = (0.3, 1.0),
                    ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = True,
                    device: torch.device | str = "cpu") -> CropGeometry:
    """Random resized crop boxes (area fraction in ``scale``, aspect ratio in ``ratio``) and flips."""
    height, width = source_size
    area = torch.empty(batch, device=device).uniform_(*scale) * height * width
    log_ratio = torch.empty(batch, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    aspect = log_ratio.exp()
    crop_w = (area * aspect).sqrt().clamp(1, width)
    crop_h = (area / aspect).sqrt().clamp(1, height)
    top = torch.rand(batch, device=device) * (height - crop_h)
    left = torch.rand(batch, device=device) * (width - crop_w)
    flips = torch.rand(batch, 2, device=device) < 0.5 if flip else torch.zeros(batch, 2, dtype=torch.bool,
                                                                               device=device)
    return CropGeometry(torch.stack([top, left, crop_h, crop_w], dim=1), flips, (height, width))


def _signed_extent(geometry: CropGeometry) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    top, left, crop_h, crop_w = geometry.boxes.unbind(1)
    sign_y = 1 - 2 * geometry.flips[:, 0].to(top.dtype)
    sign_x = 1 - 2 * geometry.flips[:, 1].to(top.dtype)
    centre_y = top + crop_h / 2
    centre_x = left + crop_w / 2
    return centre_y, centre_x, sign_y * crop_h, sign_x * crop_w


def apply_geometry(images: Tensor, geometry: CropGeometry, size: tuple[int, int]) -> Tensor:
    """Cut and resize (bilinear) each sample's box to ``size``, flipping where asked."""
    height, width = geometry.source_size
    if images.shape[-2:] != (height, width):
        raise ValueError(f"images are {tuple(images.shape[-2:])}, geometry was sampled for {(height, width)}")
    centre_y, centre_x, extent_y, extent_x = _signed_extent(geometry)
    theta = torch.zeros(len(images), 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = (extent_x / width).to(images.dtype)
    theta[:, 0, 2] = (2 * centre_x / width - 1).to(images.dtype)
    theta[:, 1, 1] = (extent_y / height).to(images.dtype)
    theta[:, 1, 2] = (2 * centre_y / height - 1).to(images.dtype)
    grid = F.affine_grid(theta, [len(images), images.shape[1], *size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def token_centres(geometry: CropGeometry, size: tuple[int, int], patch_size: int) -> Tensor:
    """Centres ``[B, N, 2]`` (y, x) of a view's row-major tokens in source-chip pixels."""
    rows, cols = size[0] // patch_size, size[1] // patch_size
    device = geometry.boxes.device
    # Position of each token centre in the view, as a fraction in [-1/2, 1/2] around its middle.
    frac_y = (torch.arange(rows, device=device) + 0.5) * patch_size / size[0] - 0.5
    frac_x = (torch.arange(cols, device=device) + 0.5) * patch_size / size[1] - 0.5
    centre_y, centre_x, extent_y, extent_x = _signed_extent(geometry)
    y = centre_y[:, None] + extent_y[:, None] * frac_y[None]               # [B, rows]
    x = centre_x[:, None] + extent_x[:, None] * frac_x[None]               # [B, cols]
    return torch.stack([y[:, :, None].expand(-1, -1, cols), x[:, None, :].expand(-1, rows, -1)],
                       dim=-1).reshape(len(y), rows * cols, 2)


def radiometric_jitter(images: Tensor, probability: float = 0.8, brightness: float = 0.2,
                       band_gain: float = 0.05, offset: float = 0.05, noise: float = 0.01) -> Tensor:
    """Light, spectrally faithful jitter of normalised images, applied per sample with ``probability``."""
    batch, channels = images.shape[:2]
    shape = (batch, 1, 1, 1)
    gain = 1 + torch.empty(shape, device=images.device).uniform_(-brightness, brightness)
    per_band = torch.empty(batch, channels, 1, 1, device=images.device).uniform_(-band_gain, band_gain)
    gain = gain * (1 + per_band)
    shift = torch.empty(shape, device=images.device).uniform_(-offset, offset)
    jittered = images * gain + shift + noise * torch.randn_like(images)
    apply = (torch.rand(shape, device=images.device) < probability).to(images.dtype)
    return (apply * jittered + (1 - apply) * images).clamp(0, 1)


@dataclass
class View:
    """One augmented view of a batch: images and where their tokens lie in the source chip."""

    images: Tensor
    centres: Tensor
    geometry: CropGeometry


class ViewMaker:
    """Makes views of ``[B, C, H, W]`` batches (crop, flip, optional jitter).

    Args:
        size: output side in pixels (a multiple of ``patch_size``).
        patch_size: encoder patch size (for token centres).
        scale: area fraction range of the random resized crop.
        jitter: apply :func:`radiometric_jitter`.
    """

    def __init__(self, size: int, patch_size: int = 8, scale: tuple[float, float] = (0.3, 1.0),
                 jitter: bool = True) -> None:
        if size % patch_size:
            raise ValueError(f"view size {size} is not a multiple of the patch size {patch_size}")
        self.size = (size, size)
        self.patch_size = patch_size
        self.scale = scale
        self.jitter = jitter

    def geometry(self, images: Tensor) -> CropGeometry:
        return sample_geometry(len(images), tuple(images.shape[-2:]), self.scale, device=images.device)

    def __call__(self, images: Tensor, geometry: CropGeometry | None = None) -> View:
        """A view of ``images``; pass ``geometry`` to cut another sensor exactly like a previous view."""
        geometry = geometry if geometry is not None else self.geometry(images)
        view = apply_geometry(images, geometry, self.size)
        if self.jitter:
            view = radiometric_jitter(view)
        return View(view, token_centres(geometry, self.size, self.patch_size), geometry)
