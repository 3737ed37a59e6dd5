"""The bundled Galileo-nano model in real QGIS: offered by the dock's model picker and by Processing's
model parameter (by name), and an RGB layer embeds with it end to end (128-d, the model recorded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import Qt
from rasterio.windows import Window

from tests.conftest import REPO_ROOT

GALILEO = REPO_ROOT / "resources" / "models" / "galileo-nano.safetensors"
RUN_TIMEOUT_MS = 120_000


@pytest.fixture
def rgb_crop(shared_data: Path, tmp_path: Path) -> Path:
    """A 64 x 64 px crop of the real RGB photo (one Galileo window: the run takes seconds)."""
    source = shared_data / "rasterio-rgb-byte" / "RGB.byte.tif"
    out = tmp_path / "rgb_crop.tif"
    window = Window(300, 300, 64, 64)
    with rasterio.open(source) as src:
        profile = dict(src.profile, width=64, height=64, transform=src.window_transform(window))
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(src.read(window=window))
    return out


def _embedding_facts(path: str | Path) -> tuple[int, dict[str, str], bool]:
    with rasterio.open(path) as src:
        return src.count, src.tags(), bool(np.isfinite(src.read()).all())


def test_dock_offers_galileo_and_embeds_an_rgb_layer_with_it(dock, rgb_crop, qtbot) -> None:
    index = dock.model_combo.findData(str(GALILEO))
    assert index >= 0 and dock.model_combo.itemText(index) == "galileo-nano (bundled)"
    dock.model_combo.setCurrentIndex(index)
    assert dock.model_path() == str(GALILEO)
    assert dock.model_info.name == "galileo-nano" and dock.model_info.dim == 128
    assert dock.model_modalities()["sar"] == ["VV", "VH"] and len(dock.model_modalities()["optical"]) == 10
    layer = QgsRasterLayer(str(rgb_crop), "rgb crop", "gdal")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    dock.optical_combo.setLayer(layer)
    dock.area_combo.setCurrentText("Layer extent")
    dock.window_spin.setValue(64)
    assert dock.embed_button.isEnabled()
    qtbot.mouseClick(dock.embed_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not dock.controller.running, timeout=RUN_TIMEOUT_MS)
    embeddings = [layer for layer in QgsProject.instance().mapLayers().values()
                  if layer.customProperty("terraprobe/kind") == "embeddings"]
    assert embeddings, dock.status_label.text()
    count, tags, finite = _embedding_facts(embeddings[0].source())
    assert count == 128 and finite
    assert tags["TERRAPROBE_MODEL"] == "galileo-nano" and tags["TERRAPROBE_GALILEO_GROUPS"] == "S2_RGB"


def test_processing_offers_galileo_as_a_bundled_model(loaded_plugin, processing_ready, rgb_crop,
                                                      tmp_path) -> None:
    import processing

    embed = QgsApplication.processingRegistry().algorithmById("terraprobe:embed")
    options = embed.parameterDefinition("BUNDLED_MODEL").options()
    assert options[0] == "Auto" and "galileo-nano" in options
    for name in ("cluster", "classify", "segment", "similar", "change"):
        algorithm = QgsApplication.processingRegistry().algorithmById(f"terraprobe:{name}")
        assert algorithm.parameterDefinition("BUNDLED_MODEL").options() == options, name
    result = processing.run("terraprobe:embed", {
        "OPTICAL": str(rgb_crop), "BUNDLED_MODEL": options.index("galileo-nano"), "WINDOW": 64,
        "OUTPUT": str(tmp_path / "emb.tif"), "PREVIEW": str(tmp_path / "emb_pca.tif")})
    count, tags, finite = _embedding_facts(result["OUTPUT"])
    assert count == 128 and finite and tags["TERRAPROBE_MODEL"] == "galileo-nano"
