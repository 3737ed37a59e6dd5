"""Out-of-distribution guard: warn when the input, or its embeddings, cannot mean what the model learnt.

Two checks, both warnings only (a user who knows better is never blocked):

* :func:`input_warning`: after the units conversion, a modality's sampled per-band statistics are
  compared with the model's fixed ones. A band is *far* when its mean lies more than
  :data:`MEAN_LIMIT` model standard deviations from the model's mean (clouds, snow, digital numbers
  read as reflectance), or its standard deviation is below :data:`STD_RATIO_LOW` or above
  :data:`STD_RATIO_HIGH` times the model's. Reflectance read as digital numbers has a ratio of
  2e-5-1e-4; a real 64x64 px open-water EuroSAT chip still has 0.003-0.015 (its 60 m B01 the
  lowest), so only ratios under 1e-3 count. Subtler unit mix-ups (dB declared on linear values,
  percent on 0-1 floats) are caught by the units decision's own contradiction warnings.
  The warning needs at least a quarter of the bands far (:data:`FAR_SHARE`; one radar band of two):
  a single odd band, such as a constant 60 m B09 in a 64x64 px chip, is no reason to worry.
  The warning names the far bands, the likely causes and the options.
* :func:`degenerate_reason`: after embedding, the sampled valid patch vectors are degenerate: near-
  identical (mean pairwise cosine of a subsample >= :data:`COLLAPSE_COSINE`), near-constant (their
  spread around the mean under :data:`CONSTANT_SPREAD` of their norm, which also catches all-zero
  vectors that the cosine cannot see) or a handful of distinct vectors (at most
  :data:`FEW_DISTINCT` among :data:`FEW_DISTINCT_SAMPLE` or more). Such embeddings carry no
  information about the scene, whatever downstream step follows: every command that embeds refuses
  them (:func:`degenerate_error`, exit 2, nothing written); ``evaluate`` only warns
  (:func:`collapse_warning`), since a degenerate encoder is what it measures. Measured with the
  bundled model: real scenes 0.31-0.90 (sen1floods11 S2 0.31, S1 0.36, joint 0.76; rstoolbox as
  reflectance 0.65; a EuroSAT forest chip 0.90); tiny random-weight test models 0.94-0.96;
  reflectance read as DN 0.9999997, linear power read as dB 0.9999999, 0-1 reflectance declared as
  percent 0.9998; but also a featureless 64x64 px open-water chip 0.99995, so the message names
  both causes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MEAN_LIMIT = 4.0
STD_RATIO_LOW = 1e-3
STD_RATIO_HIGH = 20.0
FAR_SHARE = 0.25
COLLAPSE_COSINE = 0.999
COLLAPSE_SUBSAMPLE = 2000
CONSTANT_SPREAD = 1e-3
FEW_DISTINCT = 2
FEW_DISTINCT_SAMPLE = 50
ROLE = {"optical": "optical", "sar": "radar"}


def far_bands(mean: Sequence[float], std: Sequence[float], model_mean: Sequence[float],
              model_std: Sequence[float]) -> list[tuple[int, float, float]]:
    """Bands whose sampled statistics are far from the model's: ``(index, z, std ratio)`` each."""
    far = []
    for i, (m, s, mm, ms) in enumerate(zip(mean, std, model_mean, model_std)):
        ms = max(float(ms), 1e-12)
        z = (float(m) - float(mm)) / ms
        ratio = float(s) / ms
        if not np.isfinite(z) or abs(z) > MEAN_LIMIT or not STD_RATIO_LOW <= ratio <= STD_RATIO_HIGH:
            far.append((i, z, ratio))
    return far


def input_warning(modality: str, band_names: Sequence[str], mean: Sequence[float], std: Sequence[float],
                  model_mean: Sequence[float], model_std: Sequence[float], units: str) -> str | None:
    """One warning when a modality's sampled statistics are far from the model's, else ``None``.

    Args:
        modality: ``"optical"`` or ``"sar"``.
        band_names: the model's band names, in order.
        mean: sampled per-band mean of the converted values (model units).
        std: sampled per-band standard deviation of the converted values.
        model_mean: the model's per-band mean.
        model_std: the model's per-band standard deviation.
        units: the units the values were read in (named in the message).
    """
    far = far_bands(mean, std, model_mean, model_std)
    if not far or len(far) < FAR_SHARE * len(band_names):
        return None
    details = ", ".join(f"{band_names[i]} (mean {z:+.1f} std, spread x{ratio:.2g})"
                        for i, z, ratio in far[:6])
    if len(far) > 6:
        details += f" and {len(far) - 6} more"
    if modality == "sar":
        causes = ("radar units other than read (pass --sar-units db|linear|amplitude), another radar "
                  "(not Sentinel-1 C-band VV/VH), or nodata/border values not flagged as nodata")
    else:
        causes = ("another sensor (pass --sensor), optical units other than read (pass --optical-units, e.g. "
                  "reflectance, dn, dn-offset, landsat-l1, landsat-c2), clouds, snow or nodata values not "
                  "flagged as nodata")
    return (f"the {ROLE.get(modality, modality)} input, read as {units}, is far from what the model was "
            f"trained on in {len(far)} of {len(band_names)} band(s): {details}. Likely causes: {causes}. "
            "The embeddings may carry little information")


def mean_pairwise_cosine(vectors: np.ndarray, limit: int = COLLAPSE_SUBSAMPLE, seed: int = 0) -> float:
    """Mean cosine similarity between distinct rows of a random subsample of ``vectors`` ``[N, dim]``."""
    rows = vectors[np.isfinite(vectors).all(axis=1)]
    if len(rows) > limit:
        rows = rows[np.random.default_rng(seed).choice(len(rows), limit, replace=False)]
    n = len(rows)
    if n < 2:
        return float("nan")
    unit = rows.astype(np.float64)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    total = unit.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def degenerate_reason(vectors: np.ndarray) -> str | None:
    """Why the sampled patch embeddings ``[N, dim]`` are degenerate (one phrase), else ``None``."""
    rows = vectors[np.isfinite(vectors).all(axis=1)] if vectors.ndim == 2 else vectors[:0]
    if len(rows) < 2:
        return None
    if len(rows) > COLLAPSE_SUBSAMPLE:
        rows = rows[np.random.default_rng(0).choice(len(rows), COLLAPSE_SUBSAMPLE, replace=False)]
    rows = rows.astype(np.float64)
    spread = float(np.sqrt(((rows - rows.mean(axis=0)) ** 2).sum(axis=1).mean()))
    size = float(np.sqrt((rows ** 2).sum(axis=1).mean()))
    if spread <= CONSTANT_SPREAD * size or size == 0.0:
        return f"near-constant: their spread is {spread / max(size, 1e-30):.2g} of their length"
    distinct = len(np.unique(rows, axis=0))
    if len(rows) >= FEW_DISTINCT_SAMPLE and distinct <= FEW_DISTINCT:
        return f"only {distinct} distinct vector(s) among {len(rows)} sampled patches"
    cosine = mean_pairwise_cosine(rows)
    if np.isfinite(cosine) and cosine >= COLLAPSE_COSINE:
        return f"near-identical: mean pairwise cosine {cosine:.5f} over {len(rows)} sampled patches"
    return None


def degenerate_error(reason: str, read_as: Sequence[str]) -> str:
    """The refusal of degenerate embeddings: what, the likely cause with what was detected, the fix.

    ``read_as``: one phrase per input saying how it was read (sensor and units, as detected).
    """
    return (f"the embeddings are degenerate ({reason}): they cannot tell the area's patches apart, so "
            "maps, clusters, classes or similarities made from them would be noise; nothing was written. "
            f"The input was read as: {'; '.join(read_as)}. Likely cause: the raster's sensor or units are "
            "not these: pass --sensor (sentinel2, landsat-oli, landsat-tm, rgbn, rgb) and "
            "--optical-units (e.g. landsat-l1 for Landsat Level-1 DN, landsat-c2 for Collection 2 "
            "Level-2, dn, dn-offset, reflectance) or --sar-units (db, linear, amplitude) as the product "
            "says. If the area is truly featureless (open water only), embed a larger, more varied area")


def collapse_warning(vectors: np.ndarray) -> str | None:
    """One warning when the sampled patch embeddings ``[N, dim]`` are degenerate, else ``None``."""
    reason = degenerate_reason(vectors)
    if reason is None:
        return None
    return (f"the embeddings have collapsed ({reason}), so they tell the area's patches apart hardly at "
            "all and clusters, labels or similarities built on them are mostly noise. Either the input "
            "values are in units or a range the model does not expect (check --optical-units / --sar-units "
            "/ --sensor and the warnings above), or the area is featureless (e.g. open water only)")
