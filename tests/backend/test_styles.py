"""QML styles: valid QGIS 3.22 XML that QGIS itself loads onto real result rasters."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from backend.downstream.styles import (
    class_colors,
    paletted_qml,
    pseudocolor_qml,
    write_paletted_style,
    write_pseudocolor_style,
)


def _raster(path, dtype: str, values: np.ndarray, nodata) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype=dtype, nodata=nodata, crs="EPSG:32630",
                       transform=from_origin(500000, 4200000, 80, 80)) as dst:
        dst.write(values.astype(dtype)[np.newaxis])


def test_class_colors_are_distinct_beyond_the_fixed_palette() -> None:
    colors = class_colors(300)
    assert len(set(colors)) == 300
    assert all(len(c) == 7 and c.startswith("#") for c in colors)


def test_paletted_xml_has_one_entry_per_class() -> None:
    root = ET.fromstring(paletted_qml({1: "forest", 2: "water & <river>"}).split("\n", 1)[1])
    renderer = root.find("pipe/rasterrenderer")
    assert renderer.get("type") == "paletted"
    entries = renderer.findall("colorPalette/paletteEntry")
    assert [(e.get("value"), e.get("label")) for e in entries] == [("1", "forest"), ("2", "water & <river>")]


def test_pseudocolor_xml_spans_min_max() -> None:
    root = ET.fromstring(pseudocolor_qml(-0.25, 0.9).split("\n", 1)[1])
    shader = root.find("pipe/rasterrenderer/rastershader/colorrampshader")
    values = [float(item.get("value")) for item in shader.findall("item")]
    assert values[0] == pytest.approx(-0.25) and values[-1] == pytest.approx(0.9)
    assert values == sorted(values)


def test_qgis_loads_the_paletted_style_with_class_names(qgis_app, tmp_path) -> None:
    from qgis.core import QgsRasterLayer

    raster = tmp_path / "labels.tif"
    _raster(raster, "uint8", np.arange(64).reshape(8, 8) % 4, 0)
    names = {1: "dryout", 2: "forest", 3: "village"}
    qml = write_paletted_style(raster, names)
    layer = QgsRasterLayer(str(raster), "labels")
    try:
        assert layer.isValid()
        message, ok = layer.loadNamedStyle(str(qml))
        assert ok, message
        assert layer.renderer().type() == "paletted"
        assert [c.label for c in layer.renderer().classes()] == list(names.values())
        assert [c.value for c in layer.renderer().classes()] == [1, 2, 3]
    finally:
        del layer


def test_qgis_loads_the_pseudocolor_style(qgis_app, tmp_path) -> None:
    from qgis.core import QgsRasterLayer

    raster = tmp_path / "similarity.tif"
    _raster(raster, "float32", np.linspace(-1, 1, 64).reshape(8, 8), float("nan"))
    qml = write_pseudocolor_style(raster, -0.5, 0.75)
    layer = QgsRasterLayer(str(raster), "similarity")
    try:
        message, ok = layer.loadNamedStyle(str(qml))
        assert ok, message
        renderer = layer.renderer()
        assert renderer.type() == "singlebandpseudocolor"
        assert renderer.classificationMin() == pytest.approx(-0.5)
        assert renderer.classificationMax() == pytest.approx(0.75)
        items = renderer.shader().rasterShaderFunction().colorRampItemList()
        assert len(items) == 5 and items[0].color.name() == "#440154"
    finally:
        del layer


def test_known_class_names_get_conventional_colours() -> None:
    from backend.downstream.styles import label_colors

    colors = label_colors(["water", "Forest", "village", "cluster 1", "cluster 2"])
    assert colors[:3] == ["#0064c8", "#006400", "#fa0000"]
    assert len(set(colors)) == 5  # unknown names still get distinct colours
