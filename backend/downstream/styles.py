"""QGIS 3.22 layer styles (``.qml``) for class and continuous result rasters.

A ``.qml`` file beside a GeoTIFF with the same name is applied by QGIS when the layer is added.
Class rasters get a paletted renderer (one colour and label per class value); continuous rasters
such as similarity maps get a single-band pseudocolour renderer with an interpolated ramp.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from backend.contract.outputs import (  # noqa: F401  (palettes re-exported: one copy, in the contract)
    LAND_COVER_COLORS,
    QUALITATIVE_PALETTE,
    VIRIDIS_STOPS,
    class_colors,
    label_colors,
)
from backend.io.atomic import write_text_atomic

QGIS_VERSION = "3.22.16-Białowieża"


def _document() -> tuple[ET.Element, ET.Element]:
    root = ET.Element("qgis", {"version": QGIS_VERSION, "styleCategories": "AllStyleCategories",
                               "hasScaleBasedVisibilityFlag": "0", "minScale": "1e+08", "maxScale": "0"})
    pipe = ET.SubElement(root, "pipe")
    provider = ET.SubElement(pipe, "provider")
    ET.SubElement(provider, "resampling", {"enabled": "false", "maxOversampling": "2",
                                           "zoomedInResamplingMethod": "nearestNeighbour",
                                           "zoomedOutResamplingMethod": "nearestNeighbour"})
    return root, pipe


def _finish(root: ET.Element, pipe: ET.Element) -> str:
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(pipe, "huesaturation", {"saturation": "0", "grayscaleMode": "0", "colorizeOn": "0",
                                          "colorizeRed": "255", "colorizeGreen": "128",
                                          "colorizeBlue": "128", "colorizeStrength": "100",
                                          "invertColors": "0"})
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    ET.SubElement(pipe, "resamplingStage").text = "resamplingFilter"
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body + "\n"


def _min_max_origin(parent: ET.Element) -> None:
    origin = ET.SubElement(parent, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Estimated"),
                      ("cumulativeCutLower", "0.02"), ("cumulativeCutUpper", "0.98"),
                      ("stdDevFactor", "2")):
        ET.SubElement(origin, tag).text = text


def paletted_qml(classes: Mapping[int, str], colors: Sequence[str] | None = None) -> str:
    """A paletted (unique values) style: one entry per class value with its label.

    Args:
        classes: class value → label, e.g. ``{1: "forest", 2: "water"}``.
        colors: ``#rrggbb`` per class in the order of ``classes``; default :func:`label_colors`.
    """
    values = list(classes)
    colors = list(colors) if colors is not None else label_colors([str(classes[v]) for v in values])
    root, pipe = _document()
    renderer = ET.SubElement(pipe, "rasterrenderer", {"type": "paletted", "opacity": "1",
                                                      "alphaBand": "-1", "band": "1", "nodataColor": ""})
    ET.SubElement(renderer, "rasterTransparency")
    _min_max_origin(renderer)
    palette = ET.SubElement(renderer, "colorPalette")
    for value, color in zip(values, colors):
        ET.SubElement(palette, "paletteEntry", {"value": str(int(value)), "color": color,
                                                "label": str(classes[value]), "alpha": "255"})
    return _finish(root, pipe)


def _rgba(color: str) -> str:
    return f"{int(color[1:3], 16)},{int(color[3:5], 16)},{int(color[5:7], 16)},255"


def pseudocolor_qml(minimum: float, maximum: float, stops: Sequence[str] = VIRIDIS_STOPS,
                    precision: int = 3) -> str:
    """A single-band pseudocolour style with an interpolated ramp from ``minimum`` to ``maximum``."""
    if not maximum > minimum:
        maximum = minimum + 1e-6
    root, pipe = _document()
    renderer = ET.SubElement(pipe, "rasterrenderer", {
        "type": "singlebandpseudocolor", "opacity": "1", "alphaBand": "-1", "band": "1",
        "classificationMin": repr(float(minimum)), "classificationMax": repr(float(maximum)),
        "nodataColor": ""})
    ET.SubElement(renderer, "rasterTransparency")
    _min_max_origin(renderer)
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader", {
        "colorRampType": "INTERPOLATED", "classificationMode": "1", "clip": "0",
        "minimumValue": repr(float(minimum)), "maximumValue": repr(float(maximum)),
        "labelPrecision": str(precision)})
    ramp = ET.SubElement(shader, "colorramp", {"type": "gradient", "name": "[source]"})
    options = ET.SubElement(ramp, "Option", {"type": "Map"})
    inner = ";".join(f"{i / (len(stops) - 1):.4f};{_rgba(c)}" for i, c in enumerate(stops[1:-1], 1))
    for name, value in (("color1", _rgba(stops[0])), ("color2", _rgba(stops[-1])),
                        ("discrete", "0"), ("rampType", "gradient"), ("stops", inner)):
        ET.SubElement(options, "Option", {"type": "QString", "name": name, "value": value})
    for i, color in enumerate(stops):
        value = minimum + (maximum - minimum) * i / (len(stops) - 1)
        ET.SubElement(shader, "item", {"alpha": "255", "value": repr(float(value)),
                                       "label": f"{value:.{precision}f}", "color": color})
    return _finish(root, pipe)


def style_path(raster_path: str | os.PathLike[str]) -> Path:
    """The sidecar style path QGIS looks for: the raster's path with ``.qml``."""
    return Path(raster_path).with_suffix(".qml")


def write_paletted_style(raster_path: str | os.PathLike[str], classes: Mapping[int, str]) -> Path:
    """Write a paletted ``.qml`` beside ``raster_path`` (atomically) and return its path."""
    return write_text_atomic(style_path(raster_path), paletted_qml(classes))


def write_pseudocolor_style(raster_path: str | os.PathLike[str], minimum: float, maximum: float) -> Path:
    """Write a pseudocolour ``.qml`` beside ``raster_path`` (atomically) and return its path."""
    return write_text_atomic(style_path(raster_path), pseudocolor_qml(minimum, maximum))
