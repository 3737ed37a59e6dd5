"""Named encoder sizes for training from scratch (``pretrain --model-size``, ``bench train``).

Pure data, no heavy imports: the command-line parsers read it at start-up.
"""

from __future__ import annotations

#: name -> (dim, heads, optical depth); radar and joint encoders get half the optical depth.
MODEL_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (32, 4, 2),
    "small": (384, 8, 8),
    "base": (768, 16, 12),
    "large": (1024, 16, 24),
}
