"""The dock's Vectorise box refuses layers that cannot be class maps, and says why."""

from __future__ import annotations

from qgis.core import QgsRasterLayer

from .conftest import PACKAGE


def test_a_multi_band_layer_is_not_offered_as_a_class_map(loaded_plugin, shared_data) -> None:
    import importlib

    dock_runs = importlib.import_module(f"{PACKAGE}.plugin.ui.dock_runs")
    image = QgsRasterLayer(str(shared_data / "rasterio-rgb-byte" / "RGB.byte.tif"), "photo")
    labels = QgsRasterLayer(str(shared_data / "sen1floods11" / "Spain_7370579_LabelHand.tif"), "labels")
    assert image.isValid() and labels.isValid()
    problem = dock_runs.vectorise_problem(image)
    assert problem is not None and "one band" in problem and "photo has 3" in problem
    assert dock_runs.vectorise_problem(labels) is None
    assert "choose" in dock_runs.vectorise_problem(None)
