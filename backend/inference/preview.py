"""A 3-band uint8 colour preview of an embedding raster from its first three principal components.

The PCA is fitted on a sample of valid patch embeddings; each component is stretched between its
2nd and 98th percentile (over the sample) to 1..255, so 0 stays free for nodata. The preview is
written strip by strip from the embedding file (bounded memory).
"""

from __future__ import annotations

import os

import numpy as np

from backend.inference.embedding_raster import EmbeddingRaster
from backend.io.geotiff import open_stream, preview_profile

COMPONENTS = 3
#: Patches per strip when writing the preview (bounded memory whatever the raster size).
PREVIEW_BLOCK_PATCHES = 16_384
CHUNK = 4096


def _chunks(sample: np.ndarray):
    for start in range(0, len(sample), CHUNK):
        yield sample[start:start + CHUNK]


class PcaColours:
    """Projection of embeddings onto 3 principal components, scaled to uint8 colours.

    Args:
        sample: ``[n, dim]`` valid embeddings to fit on.
    """

    def __init__(self, sample: np.ndarray) -> None:
        sample = sample[np.isfinite(sample).all(axis=1)]
        dim = sample.shape[1]
        # Covariance in float64 accumulated over chunks, then an eigendecomposition of the small
        # dim x dim matrix: memory stays at the sample itself, unlike an SVD of the centred sample.
        self.mean = sample.mean(axis=0, dtype=np.float64) if len(sample) else np.zeros(dim)
        covariance = np.zeros((dim, dim))
        for chunk in _chunks(sample):
            centred = chunk.astype(np.float64) - self.mean
            covariance += centred.T @ centred
        if len(sample) >= 2:
            values, vectors = np.linalg.eigh(covariance)
            components = vectors[:, np.argsort(values)[::-1][:COMPONENTS]].T
            components *= np.sign(components.sum(axis=1, keepdims=True) + 1e-30)  # stable colours
        else:
            components = np.zeros((0, dim))
        if len(components) < COMPONENTS:  # fewer patches or dims than colours: pad with zeros
            components = np.vstack([components, np.zeros((COMPONENTS - len(components), dim))])
        self.components = components
        projected = (np.concatenate([(c.astype(np.float64) - self.mean) @ components.T
                                     for c in _chunks(sample)])
                     if len(sample) else np.zeros((1, COMPONENTS)))
        self.low = np.percentile(projected, 2, axis=0)
        self.high = np.percentile(projected, 98, axis=0)

    def colours(self, array: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """``[dim, h, w]`` embeddings -> ``[3, h, w]`` uint8 (0 where not valid)."""
        dim, h, w = array.shape
        vectors = np.nan_to_num(array.reshape(dim, -1).T, nan=0.0, posinf=0.0, neginf=0.0)
        projected = (vectors @ self.components.T.astype(np.float32)
                     - (self.mean @ self.components.T).astype(np.float32))
        span = np.maximum(self.high - self.low, 1e-12)
        scaled = 1 + np.clip((projected - self.low) / span, 0, 1) * 254
        out = np.rint(scaled).astype(np.uint8).T.reshape(COMPONENTS, h, w)
        out[:, ~valid] = 0
        return out


def write_pca_preview(embedding_path: str | os.PathLike[str], preview_path: str | os.PathLike[str],
                      sample: np.ndarray) -> None:
    """Write the preview of ``embedding_path`` to ``preview_path`` using a PCA fitted on ``sample``."""
    with EmbeddingRaster(embedding_path) as emb:
        if sample.size == 0:
            sample = np.zeros((0, emb.dim), np.float32)
        pca = PcaColours(sample)
        profile = preview_profile(emb.crs, emb.transform, emb.width, emb.height)
        with open_stream(preview_path, profile, ["pca_1", "pca_2", "pca_3"]) as writer:
            for _, array, valid in emb.iter_blocks(max_patches=PREVIEW_BLOCK_PATCHES):
                writer.write_rows(pca.colours(array, valid))
