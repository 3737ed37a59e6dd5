"""What a run writes: output kinds, their result keys, default file names, styles and palettes (pure Python).

Only relative imports, or none: the plugin imports this module as ``terraprobe.backend.contract``.

* ``OUTPUTS``: one :class:`OutputKind` per result key of the ``result`` event (``embeddings``,
  ``preview``, ``clusters``, ``labels``, ``confidence``, ``probabilities``, ``segmentation``,
  ``head``, ``similarity``, change's ``magnitude``, ``mask`` and ``types``, vectorise's
  ``polygons``): the layer kind the plugin adds it as, its style key, its default name.
* ``RASTER_OUTPUTS``: result key -> layer kind, for the rasters the plugin adds to the project;
  ``VECTOR_OUTPUTS``: the same for vector layers (GeoPackages).
* ``VECTORISABLE``: the result keys of class maps ``vectorise`` takes; ``CHANGED_CLASS``: the change
  mask's class name of changed patches (``vectorise --only change``).
* ``STYLE_KEYS``: result key -> the result key of its ``.qml`` style.
* ``default_output(out, key) -> Path``: the default file of an output beside the main ``--out``
  (``emb.tif`` -> ``emb_pca.tif``, ``labels.tif`` -> ``labels_confidence.tif``,
  ``seg.tif`` -> ``seg_head.safetensors``).
* Palettes: ``QUALITATIVE_PALETTE``, ``VIRIDIS_STOPS``, ``LAND_COVER_COLORS``, ``class_colors(n)``,
  ``label_colors(labels)``.
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Layer kinds: an RGB preview, a paletted class map, a pseudocolour float map, embeddings, polygons
#: (a styled vector layer), a plain file.
LAYER_KINDS: tuple[str, ...] = ("rgb", "classes", "continuous", "embeddings", "vector", "file")


@dataclass(frozen=True)
class OutputKind:
    """One output of a run.

    Attributes:
        key: its key in the ``result`` event's ``outputs``.
        layer: how the plugin shows it (one of :data:`LAYER_KINDS`).
        style_key: the ``outputs`` key of its ``.qml`` style, ``""`` when it has none.
        suffix: default file name suffix after the main output's stem (``""``: the main ``--out``).
        option: the command-line option that names the file.
    """

    key: str
    layer: str
    style_key: str = ""
    suffix: str = ""
    option: str = "--out"


OUTPUTS: dict[str, OutputKind] = {kind.key: kind for kind in (
    OutputKind("embeddings", "embeddings"),
    OutputKind("preview", "rgb", suffix="_pca.tif", option="--preview-out"),
    OutputKind("clusters", "classes", "style"),
    OutputKind("labels", "classes", "style"),
    OutputKind("confidence", "continuous", "confidence_style", "_confidence.tif", "--confidence-out"),
    OutputKind("probabilities", "file", option="--probabilities-out"),
    OutputKind("segmentation", "classes", "style"),
    OutputKind("head", "file", suffix="_head.safetensors", option="--head-out"),
    OutputKind("similarity", "continuous", "style"),
    OutputKind("magnitude", "continuous", "style"),
    OutputKind("mask", "classes", "mask_style", "_mask.tif", "--mask-out"),
    OutputKind("types", "classes", "types_style", "_types.tif", "--types-out"),
    OutputKind("before_embeddings", "file"),
    OutputKind("after_embeddings", "file"),
    OutputKind("polygons", "vector", "style"),
)}
#: Result keys of the rasters the plugin adds to the project, with the kind of layer they are.
RASTER_OUTPUTS: dict[str, str] = {key: kind.layer for key, kind in OUTPUTS.items()
                                  if kind.layer in ("rgb", "classes", "continuous")}
#: Result keys of the vector layers the plugin adds to the project, with their kind.
VECTOR_OUTPUTS: dict[str, str] = {key: kind.layer for key, kind in OUTPUTS.items() if kind.layer == "vector"}
#: Result keys of the class maps ``vectorise`` turns into polygons.
VECTORISABLE: tuple[str, ...] = ("clusters", "labels", "segmentation", "mask", "types")
#: The change mask's class of changed patches (``vectorise --only change``: the changes alone).
CHANGED_CLASS = "change"
#: For each styled output, the result key of its style.
STYLE_KEYS: dict[str, str] = {key: kind.style_key for key, kind in OUTPUTS.items() if kind.style_key}
#: The main output key of each inference command.
MAIN_OUTPUT: dict[str, str] = {"embed": "embeddings", "cluster": "clusters", "classify": "labels",
                               "segment": "segmentation", "similar": "similarity", "change": "magnitude",
                               "vectorise": "polygons"}


def default_output(out: str | os.PathLike[str], key: str) -> Path:
    """The default file of output ``key`` beside the main output ``out`` (``emb.tif`` -> ``emb_pca.tif``)."""
    suffix = OUTPUTS[key].suffix
    if not suffix:
        raise ValueError(f"output {key!r} has no default name: it is the main --out or optional")
    path = Path(out)
    return path.with_name(path.stem + suffix)


# -- palettes ----------------------------------------------------------------------------------
#: A fixed qualitative palette: neighbouring entries differ strongly in hue and lightness.
QUALITATIVE_PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#ffd92f", "#003f5c", "#a6d854", "#fb9a99", "#6a3d9a", "#b15928",
    "#66c2a5", "#fc8d62", "#8da0cb", "#e5c494", "#000000", "#b3b3b3", "#ff1493", "#00ff7f",
)
#: Stops of a perceptually uniform dark-blue -> green -> yellow ramp (viridis-like).
VIRIDIS_STOPS: tuple[str, ...] = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
#: Conventional land-cover colours (ESA WorldCover legend) for class names analysts commonly use, so a
#: "water" class is blue and a "forest" class green rather than whatever palette slot they fall in.
LAND_COVER_COLORS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("water", "sea", "lake", "river", "flood", "reservoir", "ocean"), "#0064c8"),
    (("wetland", "marsh", "swamp", "mangrove"), "#0096a0"),
    (("forest", "tree", "wood"), "#006400"),
    (("shrub", "bush"), "#ffbb22"),
    (("grass", "pasture", "meadow", "herbaceous", "prairie"), "#ffff4c"),
    (("crop", "agri", "farm", "paddy", "orchard", "vineyard"), "#f096ff"),
    (("urban", "village", "town", "city", "built", "building", "residential", "industrial",
      "settlement"), "#fa0000"),
    (("land", "field", "ground"), "#d2b48c"),
    (("road", "highway", "street", "railway"), "#505050"),
    (("bare", "soil", "dry", "sand", "desert", "rock"), "#b4b4b4"),
    (("snow", "ice", "glacier", "cloud"), "#f0f0f0"),
)


def class_colors(count: int) -> list[str]:
    """``count`` distinct colours: the fixed palette first, then evenly spread golden-ratio hues."""
    colors = list(QUALITATIVE_PALETTE[:count])
    hue = 0.0
    while len(colors) < count:
        hue = (hue + 0.618033988749895) % 1.0
        lightness = 0.35 + 0.3 * ((len(colors) // len(QUALITATIVE_PALETTE)) % 2)
        r, g, b = colorsys.hls_to_rgb(hue, lightness, 0.75)
        colors.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return colors


def label_colors(labels: Sequence[str]) -> list[str]:
    """A colour per class label: conventional land-cover colours for known names, else distinct ones."""
    chosen: list[str | None] = []
    for label in labels:
        name = str(label).lower()
        chosen.append(next((color for words, color in LAND_COVER_COLORS
                            if any(word in name for word in words)), None))
    spare = iter(c for c in class_colors(len(labels) + len(LAND_COVER_COLORS)) if c not in chosen)
    return [color or next(spare) for color in chosen]
