"""Second sensors for X-STARS: simulated from Sentinel-2 onto the same 10 m grid.

X-STARS aligns sensors token by token, so both sensors' images must lie on one pixel grid:
token ``t`` must cover the same ground in both. A sensor of coarser resolution is therefore
*resampled onto the common grid* rather than given a smaller image: its pixels are averaged
over ``factor x factor`` blocks (what a coarser instrument integrates) and interpolated back
to the 10 m grid, so it carries only coarse detail but keeps the 8-pixel patch alignment.

Simulation works on the normalised ``[0, 1]`` Sentinel-2 batch the data pipeline provides.
The per-band stretch is affine up to clipping, so averaging normalised values equals averaging
raw values except near saturation; the simulated sensor thus keeps the Sentinel-2 statistics
of the bands it takes, and a model adapted to it is saved with those statistics.

Band names stay the Sentinel-2 names of the matching bands, so an adapted model can be run on
a Sentinel-2 raster as it is, and a real raster of the new sensor is read by mapping its bands
to these names (``--optical-bands``, or the ``--sensor`` presets that match bands by wavelength).

**Landsat 8/9 OLI** (``landsat-oli``; ``landsat`` is the same sensor): the seven reflective
30 m bands, each taken from the Sentinel-2 band with the overlapping spectral response
(centre wavelengths in nm, OLI / MSI):

====  ============  =====  =====  ===========
OLI   name          OLI    S2     S2 band
====  ============  =====  =====  ===========
B1    coastal        443    443   B01
B2    blue           482    492   B02
B3    green          561    560   B03
B4    red            655    665   B04
B5    NIR            865    865   B8A (narrow NIR; not B08, not B05)
B6    SWIR 1        1609   1614   B11
B7    SWIR 2        2201   2202   B12
====  ============  =====  =====  ===========

Each OLI band lies inside (or within ~10 nm of) its MSI band, so the mix is one-to-one (weight
1); the remaining bandpass differences are a few percent of reflectance, below the radiometric
jitter of the training views. OLI's pan (B8), cirrus (B9) and thermal bands are not simulated.
Ground sampling: 3 x 3 blocks of 10 m pixels are averaged into one 30 m pixel (the 60 m B01 is
already coarser and only gets smoother), then resampled back onto the 10 m grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from backend.errors import UserError
from backend.models.config import S2_BANDS

if TYPE_CHECKING:
    from backend.models.config import ModalityConfig
    from backend.models.croma import CromaModel


@dataclass(frozen=True)
class SimulatedSensor:
    """A sensor derived from Sentinel-2 by band selection and coarser ground sampling.

    Attributes:
        name: name used on the command line.
        bands: Sentinel-2 band names the sensor observes, in the sensor's band order.
        factor: ground-sampling factor relative to 10 m (3 for a 30 m sensor, 1 for none).
        description: one line for help texts.
        native_bands: the sensor's own names of its bands (same order as ``bands``), if any.
    """

    name: str
    bands: tuple[str, ...]
    factor: int = 1
    description: str = ""
    native_bands: tuple[str, ...] = ()

    def simulate(self, optical: Tensor, optical_bands: Sequence[str] = S2_BANDS,
                 upsample_mode: str = "bilinear", clamp: bool = True) -> Tensor:
        """The sensor's image of the scene in ``optical``, on the same grid.

        Args:
            optical: ``[B, C, H, W]`` normalised Sentinel-2 batch.
            optical_bands: names of the channels of ``optical``.
            upsample_mode: interpolation back to the common grid (``"bilinear"`` as a typical
                reprojection would do, or ``"nearest"`` for blocky 30 m pixels).
            clamp: clip the result to ``[0, 1]`` (normalised input); ``False`` for raw values.

        Returns:
            ``[B, len(bands), H, W]``.
        """
        index = band_indices(optical_bands, self.bands)
        image = optical[:, index]
        if self.factor == 1:
            return image
        height, width = image.shape[-2:]
        coarse_size = (math.ceil(height / self.factor), math.ceil(width / self.factor))
        coarse = F.adaptive_avg_pool2d(image, coarse_size)
        align = {} if upsample_mode == "nearest" else {"align_corners": False}
        upsampled = F.interpolate(coarse, size=(height, width), mode=upsample_mode, **align)
        return upsampled.clamp(0, 1) if clamp else upsampled


#: Landsat 8/9 OLI from Sentinel-2 (see the module docstring for the band correspondence).
LANDSAT_OLI = SimulatedSensor(
    "landsat-oli", ("B01", "B02", "B03", "B04", "B8A", "B11", "B12"), factor=3,
    description="Landsat 8/9 OLI: 7 bands (coastal, blue, green, red, NIR, SWIR1, SWIR2) at 30 m",
    native_bands=("B1", "B2", "B3", "B4", "B5", "B6", "B7"))

SENSORS: dict[str, SimulatedSensor] = {
    "landsat-oli": LANDSAT_OLI,
    "landsat": LANDSAT_OLI,
    "rgbn": SimulatedSensor(
        "rgbn", ("B04", "B03", "B02", "B08"), factor=1,
        description="4-band aerial RGBN (red, green, blue, NIR) on the 10 m grid"),
}


def get_sensor(name: str) -> SimulatedSensor:
    """The simulated sensor called ``name``; :class:`UserError` for an unknown one."""
    try:
        return SENSORS[name]
    except KeyError:
        raise UserError(f"unknown sensor {name!r}; choose one of: {', '.join(sorted(SENSORS))}") from None


def band_indices(available: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Positions of ``wanted`` bands in ``available``; :class:`UserError` if one is missing."""
    missing = [band for band in wanted if band not in available]
    if missing:
        raise UserError(f"bands {', '.join(missing)} are not among the input bands {', '.join(available)}")
    return [list(available).index(band) for band in wanted]


def map_band_weights(old_weight: Tensor, old_bands: Sequence[str], new_bands: Sequence[str],
                     channel_dim: int = 1) -> Tensor:
    """Initial weights for a layer whose input channels change from ``old_bands`` to ``new_bands``.

    Channels whose band also exists in ``old_bands`` copy that band's weights; the others are
    drawn from a normal distribution with the standard deviation of the old weights. (Copying is
    the useful default: a new sensor's red band sees what the old sensor's red band saw.)

    Args:
        old_weight: weight with one slice per input band along ``channel_dim``.
        old_bands: names of the old input channels.
        new_bands: names of the new input channels.
        channel_dim: the input-channel axis of ``old_weight``.
    """
    slices = []
    std = float(old_weight.std())
    for band in new_bands:
        if band in old_bands:
            slices.append(old_weight.select(channel_dim, list(old_bands).index(band)))
        else:
            shape = list(old_weight.shape)
            del shape[channel_dim]
            slices.append(torch.randn(shape, dtype=old_weight.dtype, device=old_weight.device) * std)
    return torch.stack(slices, dim=channel_dim)


def restrict_to_modality(model: CromaModel, modality: str) -> CromaModel:
    """A copy of ``model`` with only the ``modality`` encoder (and its pooling head).

    Single-sensor objectives (CMID, X-STARS continual) train one encoder; exporting a model
    without the untouched encoders keeps a randomly initialised radar or joint encoder from
    being mistaken for a trained one.
    """
    from backend.models import ModelConfig, build_model

    if modality not in model.config.modalities:
        raise UserError(f"the encoder has no {modality} stream (it has {', '.join(model.modalities)})")
    if tuple(model.config.modalities) == (modality,):
        return model
    data = model.config.to_dict()
    data["modalities"] = {modality: data["modalities"][modality]}
    restricted = build_model(ModelConfig.from_dict(data))
    prefixes = ("s1_",) if modality == "sar" else ("s2_",)
    state = {k: v for k, v in model.state_dict().items() if k.startswith(prefixes)}
    restricted.load_state_dict(state, strict=True)
    return restricted


def adapt_to_sensor(old: CromaModel, sensor: SimulatedSensor,
                    statistics: ModalityConfig | None = None) -> CromaModel:
    """A new optical-only model for ``sensor``, initialised from ``old``'s optical encoder.

    Every transformer weight (and the pooling head) is copied. The patch embedding, whose input
    width depends on the band count, is rebuilt for the new band list: the weight slice of each
    band the old encoder also had is copied, other bands get fresh random weights (see
    :func:`map_band_weights`), and the bias is kept. Band weights are copied unscaled: with fewer
    bands the first-layer activations shrink, which the pre-norm transformer absorbs and
    continual training corrects.

    The new model's config lists the sensor's bands with their statistics taken from
    ``statistics`` (the optical statistics the training data is normalised with) or else from
    the old model: simulation happens on the normalised values (see the module docstring).
    """
    from backend.models import ModalityConfig, ModelConfig, build_model

    if "optical" not in old.config.modalities:
        raise UserError("continual X-STARS adapts an optical encoder, but this model has none")
    old_optical = old.config.modalities["optical"]
    band_indices(old_optical.bands, sensor.bands)
    source = statistics if statistics is not None and statistics.has_stats else old_optical

    def subset(values: list[float] | None) -> list[float] | None:
        return None if values is None else [values[list(source.bands).index(b)] for b in sensor.bands]

    data = old.config.to_dict()
    data["modalities"] = {"optical": ModalityConfig(list(sensor.bands), subset(source.mean),
                                                    subset(source.std))}
    data["name"] = f"{old.config.name}-{sensor.name}"
    data["sensor"] = sensor.name            # the preset the model's band names stand for
    data["provenance"] = {**old.config.provenance, "adapted_to_sensor": sensor.name,
                          "adapted_from_bands": list(old_optical.bands)}
    new = build_model(ModelConfig.from_dict(data))
    state = {k: v for k, v in old.state_dict().items()
             if k.startswith("s2_") and not k.startswith("s2_encoder.linear_input.weight")}
    patch = old.config.patch_size
    old_weight = old.s2_encoder.linear_input.weight.detach()
    per_band = old_weight.reshape(old_weight.shape[0], len(old_optical.bands), patch * patch)
    new_weight = map_band_weights(per_band, old_optical.bands, sensor.bands, channel_dim=1)
    state["s2_encoder.linear_input.weight"] = new_weight.reshape(old_weight.shape[0], -1)
    new.load_state_dict(state, strict=True)
    return new
