"""QGIS 3.22 style (``.qml``) of a polygon layer categorised by class, in the class raster's colours."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

from backend.downstream.styles import QGIS_VERSION

OUTLINE = "35,35,35,255"


def _rgba(color: str, alpha: int = 255) -> str:
    return f"{int(color[1:3], 16)},{int(color[3:5], 16)},{int(color[5:7], 16)},{alpha}"


def _fill_symbol(parent: ET.Element, name: str, color: str) -> None:
    symbol = ET.SubElement(parent, "symbol", {"type": "fill", "name": name, "alpha": "1",
                                              "clip_to_extent": "1", "force_rhr": "0"})
    layer = ET.SubElement(symbol, "layer", {"class": "SimpleFill", "enabled": "1", "pass": "0",
                                            "locked": "0"})
    properties = {"color": _rgba(color), "outline_color": OUTLINE, "outline_style": "solid",
                  "outline_width": "0.1", "outline_width_unit": "MM", "style": "solid",
                  "joinstyle": "bevel", "offset": "0,0", "offset_unit": "MM"}
    options = ET.SubElement(layer, "Option", {"type": "Map"})
    for key, value in properties.items():
        ET.SubElement(options, "Option", {"type": "QString", "name": key, "value": value})
    for key, value in properties.items():  # the pre-3.26 form, read by QGIS 3.22
        ET.SubElement(layer, "prop", {"k": key, "v": value})


def categorised_qml(classes: Mapping[int, tuple[str, str]], field: str = "class_id") -> str:
    """A categorised fill style: one category per class value ``{value: (label, "#rrggbb")}`` on ``field``."""
    root = ET.Element("qgis", {"version": QGIS_VERSION, "styleCategories": "AllStyleCategories",
                               "hasScaleBasedVisibilityFlag": "0", "minScale": "1e+08", "maxScale": "0"})
    renderer = ET.SubElement(root, "renderer-v2", {"type": "categorizedSymbol", "attr": field,
                                                   "symbollevels": "0", "enableorderby": "0",
                                                   "forceraster": "0", "referencescale": "-1"})
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for index, (value, (label, color)) in enumerate(classes.items()):
        ET.SubElement(categories, "category", {"symbol": str(index), "value": str(int(value)),
                                               "label": str(label), "render": "true", "type": "integer"})
        _fill_symbol(symbols, str(index), color)
    ET.SubElement(root, "blendMode").text = "0"
    ET.SubElement(root, "featureBlendMode").text = "0"
    ET.SubElement(root, "layerOpacity").text = "1"
    ET.SubElement(root, "layerGeometryType").text = "2"
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body + "\n"
