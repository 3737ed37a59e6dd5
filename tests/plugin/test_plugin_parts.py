"""Plugin building blocks without the backend: band matching, requests, exports, samples, settings."""

from __future__ import annotations

from pathlib import Path

from osgeo import gdal
from qgis.core import QgsProject, QgsRasterLayer, QgsRectangle, QgsVectorLayer

from plugin.bands import bands_argument, canonical_band_name, description_from_band_name, match_bands
from plugin.jobs import JobRequest

S2_MODEL = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]


def test_band_matching_skips_b10_and_handles_names():
    l1c = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
    assert match_bands(S2_MODEL, l1c) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    assert match_bands(["VV", "VH"], ["vh", "vv"]) == [2, 1]
    assert match_bands(S2_MODEL, [""] * 12) == list(range(1, 13))
    assert match_bands(S2_MODEL, ["red", "green", "blue"])[:2] == [None, None]
    assert canonical_band_name("b8a") == "B8A" and canonical_band_name("B2") == "B02"
    assert description_from_band_name("Band 09: B8A") == "B8A"
    assert description_from_band_name("Band 3") == ""
    assert bands_argument([1, 2, 4]) == "1,2,4"


def test_job_request_arguments_follow_the_cli_contract(tmp_path: Path):
    request = JobRequest(action="classify", optical="/data/s2.tif", optical_bands=[1, 2],
                         model="m.safetensors",
                         bounds=(1.0, 2.0, 3.0, 4.0), bounds_crs="EPSG:4326", window=64, device="cpu",
                         samples="s.gpkg", class_field="crop", neighbors=5, out=str(tmp_path / "labels.tif"))
    args = request.to_argv()
    assert args[:5] == ["classify", "--optical", "/data/s2.tif", "--optical-bands", "1,2"]
    assert args[args.index("--bounds") + 1:args.index("--bounds") + 5] == ["1.0", "2.0", "3.0", "4.0"]
    assert args[args.index("--class-field") + 1] == "crop"
    # a value equal to the declared default is left to the backend: the same choice, one argv
    assert "--class-field" not in request.replace(class_field="class").to_argv()
    assert JobRequest.from_argv(args) == request
    similar = JobRequest(action="similar", optical="a.tif", out="s.tif", point=(5.5, 6.5),
                         point_crs="EPSG:3857").to_argv()
    assert similar[similar.index("--point") + 1:][:4] == ["5.5", "6.5", "--point-crs", "EPSG:3857"]


def test_vrt_layer_is_exported_to_geotiff_of_the_area(shared_data, tmp_path: Path, qgis_app):
    from plugin.rasters import RasterExport, plain_file_path

    source = shared_data / "rstoolbox-sen2" / "sen2.tif"
    vrt = tmp_path / "scene.vrt"
    gdal.BuildVRT(str(vrt), [str(source)]).FlushCache()
    layer = QgsRasterLayer(str(vrt), "vrt", "gdal")
    assert layer.isValid()
    assert plain_file_path(layer) is None
    assert plain_file_path(QgsRasterLayer(str(source), "tif", "gdal")) == str(source)
    extent = layer.extent()
    half = QgsRectangle(extent.xMinimum(), extent.yMinimum(), extent.center().x(), extent.center().y())
    written = RasterExport(layer, half, tmp_path / "out" / "part.tif").write()
    exported = gdal.Open(written)
    assert exported.RasterCount == 12
    assert abs(exported.RasterXSize - layer.width() / 2) <= 1
    assert abs(exported.RasterYSize - layer.height() / 2) <= 1
    assert exported.GetGeoTransform()[0] == extent.xMinimum()


def test_new_sample_layer_is_an_editable_geopackage_with_class_value_map(loaded_plugin, tmp_path: Path):
    project = QgsProject.instance()
    project.clear()
    project.setPresetHomePath(str(tmp_path))
    try:
        layer = loaded_plugin.dock.new_sample_layer(["water", "forest"])
        assert isinstance(layer, QgsVectorLayer) and layer.isEditable()
        assert layer.providerType() == "ogr" and ".gpkg" in layer.source()
        assert Path(layer.source().split("|")[0]).parent == tmp_path / "terraprobe"
        index = layer.fields().indexOf("class")
        setup = layer.editorWidgetSetup(index)
        assert setup.type() == "ValueMap"
        assert {"water": "water"} in setup.config()["map"]
        assert loaded_plugin.dock.samples_combo.currentLayer() is layer
        assert loaded_plugin.dock.field_combo.currentField() == "class"
        layer.rollBack()
    finally:
        project.clear()
        project.setPresetHomePath("")


def test_check_backend_without_interpreter_explains_setup(loaded_plugin, tmp_path: Path):
    panel = loaded_plugin.dock.settings_panel
    panel.python_widget.setFilePath(str(tmp_path / "no-python"))
    try:
        assert panel.check_backend() is None
        text = panel.report.text()
        assert "does not exist" in text and "requirements.txt" in text
        assert "pip install torch" not in text
    finally:
        panel.python_widget.setFilePath("")


def test_check_backend_reports_versions(loaded_plugin, qtbot):
    panel = loaded_plugin.dock.settings_panel
    task = panel.check_backend()
    assert task is not None
    qtbot.waitUntil(lambda: panel.task is None, timeout=60_000)
    text = panel.report.text()
    assert "PyTorch" in text and "CUDA" in text and "Device:" in text
