"""Units, sensors and warnings in the dock and in Processing, against the real backend process.

Rasters are tiny crops of the shared data (64 px) so every backend run takes seconds with the tiny
model: an 8-bit RGB photo forced into the Sentinel-2 bands (the backend must warn), and a
Landsat-8-like Collection-2 raster (USGS band names SR_B1..SR_B7, DN = (reflectance + 0.2) / 2.75e-5)
made from the Major-TOM Sentinel-2 L2A scene.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import Qt

from .test_dock import _add_raster, _result_layers, _wait_done

MAJOR_TOM = ("major-tom-core/S2L2A/199U/199U_1099R/"
             "S2B_MSIL2A_20200223T032739_N9999_R018_T48QUE_20230924T183543")
#: Landsat 8/9 OLI band <- the Sentinel-2 band over the same wavelengths (B5 NIR <- B8A).
OLI_FROM_S2 = {"SR_B1": "B01", "SR_B2": "B02", "SR_B3": "B03", "SR_B4": "B04", "SR_B5": "B8A",
               "SR_B6": "B11", "SR_B7": "B12"}
MODEL_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]


def write_landsat_like(shared_data: Path, out: Path, size: int = 64) -> Path:
    """A Landsat 8 Collection-2 Level-2 like GeoTIFF: ``size`` px at 30 m, uint16, SR_B1..SR_B7."""
    folder = shared_data / MAJOR_TOM
    x0, y0 = 366000.0, 1980000.0
    bounds = (x0, y0, x0 + 30 * size, y0 + 30 * size)
    driver = gdal.GetDriverByName("GTiff")
    target = driver.Create(str(out), size, size, len(OLI_FROM_S2), gdal.GDT_UInt16)
    for index, (name, s2_band) in enumerate(OLI_FROM_S2.items(), start=1):
        warped = gdal.Warp("", str(folder / f"{s2_band}.tif"), format="MEM", outputBounds=bounds,
                           xRes=30, yRes=30, resampleAlg="average")
        if index == 1:
            target.SetGeoTransform(warped.GetGeoTransform())
            target.SetProjection(warped.GetProjection())
        reflectance = warped.GetRasterBand(1).ReadAsArray().astype(np.float64) / 10000.0
        digital = np.clip(np.round((reflectance + 0.2) / 2.75e-5), 1, 65535).astype(np.uint16)
        band = target.GetRasterBand(index)
        band.WriteArray(digital)
        band.SetDescription(name)
    target.FlushCache()
    target = None
    return out


def write_rgb_crop(shared_data: Path, out: Path, size: int = 64) -> Path:
    """A ``size`` px crop of the 8-bit RGB photo (rasterio's RGB.byte.tif), from its centre."""
    gdal.Translate(str(out), str(shared_data / "rasterio-rgb-byte" / "RGB.byte.tif"),
                   srcWin=[360, 320, size, size])
    return out


@pytest.fixture
def landsat_path(shared_data: Path, tmp_path: Path) -> Path:
    return write_landsat_like(shared_data, tmp_path / "LC08_like_SR.tif")


@pytest.fixture
def rgb_path(shared_data: Path, tmp_path: Path) -> Path:
    return write_rgb_crop(shared_data, tmp_path / "rgb_byte.tif")


@pytest.fixture
def log_messages(qgis_app) -> Iterator[list[tuple[str, str, int]]]:
    """What reaches QGIS's log panel during the test: (message, tag, level)."""
    received: list[tuple[str, str, int]] = []

    def record(message, tag, level) -> None:
        received.append((message, tag, int(level)))

    QgsApplication.messageLog().messageReceived.connect(record)
    yield received
    QgsApplication.messageLog().messageReceived.disconnect(record)


class RecordingFeedback(QgsProcessingFeedback):
    """Processing feedback that remembers warnings and non-fatal errors."""

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []
        self.errors: list[tuple[str, bool]] = []

    def pushWarning(self, warning: str) -> None:
        self.warnings.append(warning)
        super().pushWarning(warning)

    def reportError(self, error: str, fatalError: bool = False) -> None:
        self.errors.append((error, fatalError))
        super().reportError(error, fatalError)


def parse_backend_argv(args: list[str]):
    """The backend's own parser on the plugin's argv (``backend.cli`` imports no torch to parse)."""
    from backend.cli import build_parser

    before = set(sys.modules)
    parsed = build_parser().parse_args(args)
    assert not {name for name in set(sys.modules) - before if name.split(".")[0] == "torch"}
    return parsed


# -- dock: choices ---------------------------------------------------------------------------------
def test_dock_offers_contract_choices_and_they_reach_the_backend_argv(dock, landsat_path):
    from backend.contract.sensors import SENSOR_NAMES
    from backend.contract.units import OPTICAL_UNITS, SAR_UNITS, UNIT_HELP

    combo_values = [dock.optical_units_combo.itemData(i) for i in range(dock.optical_units_combo.count())]
    assert combo_values == list(OPTICAL_UNITS)
    assert [dock.sar_units_combo.itemData(i) for i in range(dock.sar_units_combo.count())] == list(SAR_UNITS)
    assert [dock.sensor_combo.itemData(i) for i in range(dock.sensor_combo.count())] == list(SENSOR_NAMES)
    index = dock.optical_units_combo.findData("reflectance")
    assert dock.optical_units_combo.itemData(index, Qt.ToolTipRole) == UNIT_HELP["reflectance"]

    layer = _add_raster(landsat_path, "landsat")
    sar = _add_raster(landsat_path, "radar stand-in")
    dock.optical_combo.setLayer(layer)
    dock.area_combo.setCurrentText("Layer extent")
    # Defaults: nothing but the inputs goes on the command line; the backend decides.
    request, _, _ = dock.build_request("embed")
    assert not {"--optical-units", "--sar-units", "--sensor"} & set(request.to_argv())
    parsed = parse_backend_argv(request.to_argv())
    assert (parsed.optical_units, parsed.sar_units, parsed.sensor) == ("auto", "auto", "auto")

    dock.sar_combo.setLayer(sar)
    for r in range(2):
        dock.set_band("sar", r, r + 1)
    assert dock.set_units(optical="landsat-c2", sar="linear") and dock.set_sensor("landsat-oli")
    request, _, _ = dock.build_request("cluster", {"k": 3})
    parsed = parse_backend_argv(request.to_argv())
    assert (parsed.optical_units, parsed.sar_units, parsed.sensor) == ("landsat-c2", "linear", "landsat-oli")
    assert parsed.command == "cluster" and parsed.k == 3


def test_bad_or_missing_choices_never_crash_the_dock(dock, landsat_path, rgb_path):
    layer = _add_raster(landsat_path, "landsat")
    dock.optical_combo.setLayer(layer)
    assert not dock.set_sensor("landsat-99") and dock.sensor_choice() == "auto"
    assert not dock.set_units(optical="kelvin", sar="furlongs")
    assert (dock.optical_units_choice(), dock.sar_units_choice()) == ("auto", "auto")
    for combo in (dock.sensor_combo, dock.optical_units_combo, dock.sar_units_combo):
        combo.setCurrentIndex(-1)  # nothing selected
    assert (dock.sensor_choice(), dock.optical_units_choice(), dock.sar_units_choice()) == ("auto",) * 3
    request, _, _ = dock.build_request("embed")
    assert "--sensor" not in request.to_argv()
    # A sensor that does not fit the layer: the table says why and asks for a hand mapping.
    rgb = _add_raster(rgb_path, "rgb")
    dock.optical_combo.setLayer(rgb)
    dock.set_sensor("landsat-tm")
    assert dock.band_plan.error and not dock.band_note.isHidden()
    assert not dock.embed_button.isEnabled()
    assert "Map a layer band" in dock.status_label.text()
    assert not dock.run_embed()  # refused with a message, no exception
    dock.set_sensor("auto")
    assert dock.band_plan.sensor == "rgb" and not dock.band_plan.error


# -- dock: Landsat ---------------------------------------------------------------------------------
def test_band_table_maps_landsat_by_wavelength_sr_b5_to_b8a(dock, landsat_path):
    layer = _add_raster(landsat_path, "landsat")
    dock.optical_combo.setLayer(layer)
    plan = dock.band_plan
    assert plan.sensor == "landsat-oli" and plan.detected
    mapping = dict(zip(MODEL_BANDS, dock.band_mapping("optical")))
    assert mapping["B8A"] == 5  # SR_B5 is NIR (865 nm): the model's narrow NIR
    assert mapping["B05"] is None  # red edge: spectrally filled, never Landsat B5
    assert (mapping["B02"], mapping["B04"], mapping["B11"], mapping["B12"]) == (2, 4, 6, 7)
    assert set(dock.filled_bands()) >= {"B05", "B06", "B07"}
    note = dock.band_note.text()
    assert not dock.band_note.isHidden() and "Landsat 8/9 OLI" in note and "B05" in note
    assert "spectral" in note.lower()
    row = MODEL_BANDS.index("B05")
    assert dock.band_table.cellWidget(row, 1).currentText() == "— spectral fill —"
    assert dock.embed_button.isEnabled()
    # Choosing Sentinel-2 reads the same file by name: nothing matches, nothing is filled.
    dock.set_sensor("sentinel2")
    assert dock.filled_bands() == [] and not dock.embed_button.isEnabled()
    dock.set_sensor("auto")
    assert dict(zip(MODEL_BANDS, dock.band_mapping("optical")))["B8A"] == 5


def test_landsat_runs_end_to_end_through_the_dock_with_default_choices(dock, landsat_path, qtbot,
                                                                        test_iface, log_messages):
    layer = _add_raster(landsat_path, "landsat")
    dock.optical_combo.setLayer(layer)
    dock.area_combo.setCurrentText("Layer extent")
    dock.window_spin.setValue(64)
    dock.k_spin.setValue(3)
    # The table is the sensor's own plan: the backend matches (and fills) by wavelength itself.
    request, _, _ = dock.build_request("cluster", {"k": 3})
    assert "--optical-bands" not in request.to_argv() and "--sensor" not in request.to_argv()
    test_iface.message_bar.pushed.clear()
    assert dock.cluster_button.isEnabled()
    qtbot.mouseClick(dock.cluster_button, Qt.LeftButton)
    _wait_done(qtbot, dock)
    clusters = _result_layers("clusters")
    assert len(clusters) == 1, dock.status_label.text()
    assert clusters[0].crs() == layer.crs()
    assert clusters[0].width() in (64 // 8, 64)
    logged = " ".join(m for m, tag, _ in log_messages if tag == "Terraprobe")
    assert "landsat-oli" in logged and "B8A<-SR_B5" in logged, logged[-2000:]
    # The filled bands are named on the message bar, in orange.
    fills = [text for _, text, level in test_iface.message_bar.pushed
             if level == Qgis.Warning and "spectral fill" in text]
    assert fills and "B05" in fills[0], test_iface.message_bar.pushed


# -- warnings ----------------------------------------------------------------------------------------
def test_8bit_rgb_forced_into_the_bands_shows_an_orange_warning(dock, rgb_path, qtbot, test_iface,
                                                               log_messages):
    layer = _add_raster(rgb_path, "rgb photo")
    dock.optical_combo.setLayer(layer)
    dock.set_sensor("sentinel2")  # force: read the photo as if it were Sentinel-2
    forced = {"B02": 3, "B03": 2, "B04": 1}
    for row, band in enumerate(MODEL_BANDS):
        dock.set_band("optical", row, forced.get(band, 1))
    dock.area_combo.setCurrentText("Layer extent")
    dock.window_spin.setValue(64)
    test_iface.message_bar.pushed.clear()
    assert dock.embed_button.isEnabled()
    qtbot.mouseClick(dock.embed_button, Qt.LeftButton)
    _wait_done(qtbot, dock)
    assert _result_layers("preview"), dock.status_label.text()  # warned, never blocked
    pushed = test_iface.message_bar.pushed
    warnings = [(title, text) for title, text, level in pushed if level == Qgis.Warning]
    assert warnings, test_iface.message_bar.pushed
    assert all(title == "Terraprobe" for title, _ in warnings)
    backend_warnings = dock.controller.last_warnings
    assert backend_warnings
    assert [text for _, text in warnings] == [w.splitlines()[0] for w in backend_warnings]
    assert any("8-bit" in w or "brightness" in w for w in backend_warnings), backend_warnings
    logged = [m for m, tag, level in log_messages if tag == "Terraprobe" and level == Qgis.Warning]
    assert set(backend_warnings) <= set(logged)
    assert "warning" in dock.status_label.text()


# -- Processing --------------------------------------------------------------------------------------
def test_every_inference_algorithm_has_units_and_sensor_enums(loaded_plugin):
    from backend.contract.sensors import SENSOR_NAMES
    from backend.contract.units import OPTICAL_UNITS, SAR_UNITS

    registry = QgsApplication.processingRegistry()
    for name in ("embed", "cluster", "classify", "segment", "similar"):
        algorithm = registry.algorithmById(f"terraprobe:{name}")
        for parameter, choices in (("OPTICAL_UNITS", OPTICAL_UNITS), ("SAR_UNITS", SAR_UNITS),
                                   ("SENSOR", SENSOR_NAMES)):
            definition = algorithm.parameterDefinition(parameter)
            assert definition is not None, (name, parameter)
            assert len(definition.options()) == len(choices) and definition.defaultValue() == 0


def test_processing_reports_the_8bit_warning_through_feedback(loaded_plugin, processing_ready, tiny_model,
                                                             rgb_path, tmp_path):
    import processing

    feedback = RecordingFeedback()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    result = processing.run("terraprobe:embed", {
        "OPTICAL": str(rgb_path), "MODEL": str(tiny_model), "WINDOW": 64,
        "OPTICAL_BANDS": "1,3,2,1,1,1,1,1,1,1,1,1", "SENSOR": 1,  # forced into the Sentinel-2 bands
        "OUTPUT": str(tmp_path / "emb.tif"), "PREVIEW": str(tmp_path / "preview.tif"),
    }, context=context, feedback=feedback)
    assert Path(result["OUTPUT"]).is_file()
    reported = feedback.warnings + [text for text, fatal in feedback.errors if not fatal]
    assert reported, "no warning reached Processing's feedback"
    assert any("8-bit" in w or "brightness" in w for w in reported), reported


def test_processing_runs_landsat_with_default_choices(loaded_plugin, processing_ready, tiny_model,
                                                      landsat_path, tmp_path):
    import processing

    feedback = RecordingFeedback()
    out = tmp_path / "clusters.tif"
    result = processing.run("terraprobe:cluster", {
        "OPTICAL": str(landsat_path), "MODEL": str(tiny_model), "WINDOW": 64, "K": 3, "OUTPUT": str(out),
    }, feedback=feedback)
    assert Path(result["OUTPUT"]) == out and out.is_file()
    layer = QgsRasterLayer(str(out), "clusters", "gdal")
    assert layer.isValid() and layer.crs().authid() == "EPSG:32648"
    assert any("spectral fill" in w and "B05" in w for w in feedback.warnings), feedback.warnings


def test_screenshot_of_the_dock_with_units_and_sensor(dock, landsat_path, qtbot):
    """docs/images/terraprobe_dock_units.png: the dock with a Landsat layer, its sensor and fills."""
    layer = _add_raster(landsat_path, "LC08 SR (simulated)")
    dock.set_model_path("")  # Auto: the bundled model for the layer's sensor
    dock.optical_combo.setLayer(layer)
    dock.setFloating(True)
    dock.resize(440, dock.widget().widget().sizeHint().height() + 40)
    dock.widget().verticalScrollBar().setValue(0)
    qtbot.wait(200)
    png = Path(__file__).resolve().parents[2] / "docs" / "images" / "terraprobe_dock_units.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    assert dock.grab().save(str(png))
    dock.setFloating(False)
    assert png.stat().st_size > 10_000


def test_exported_layers_keep_band_names_for_sensor_detection(landsat_path, tmp_path, qgis_app):
    """A VRT layer is copied to a GeoTIFF before the run: the copy keeps SR_B1..SR_B7."""
    from plugin.rasters import RasterExport

    vrt = tmp_path / "landsat.vrt"
    gdal.Translate(str(vrt), str(landsat_path), format="VRT")
    layer = QgsRasterLayer(str(vrt), "landsat vrt", "gdal")
    target = Path(RasterExport(layer, None, tmp_path / "export.tif").write())
    dataset = gdal.Open(str(target))
    names = [dataset.GetRasterBand(i).GetDescription() for i in range(1, dataset.RasterCount + 1)]
    assert names == list(OLI_FROM_S2)


def test_job_request_puts_only_non_auto_choices_on_the_command_line():
    from plugin.jobs import JobRequest

    plain = JobRequest("embed", optical="s2.tif", sar="s1.tif", out="e.tif").to_argv()
    assert not {"--optical-units", "--sar-units", "--sensor"} & set(plain)
    chosen = JobRequest("cluster", optical="l8.tif", sar="s1.tif", out="c.tif", optical_units="landsat-c2",
                        sar_units="amplitude", sensor="landsat-oli").to_argv()
    assert chosen[chosen.index("--optical-units") + 1] == "landsat-c2"
    assert chosen[chosen.index("--sar-units") + 1] == "amplitude"
    assert chosen[chosen.index("--sensor") + 1] == "landsat-oli"
    # Radar units without a radar raster, or any units on given embeddings, would mean nothing.
    no_sar = JobRequest("embed", optical="a.tif", out="e.tif", sar_units="linear").to_argv()
    assert "--sar-units" not in no_sar
    given = JobRequest("cluster", embeddings="emb.tif", out="c.tif", optical_units="dn").to_argv()
    assert "--optical-units" not in given
    for bad in ({"optical_units": "kelvin"}, {"sar_units": "db2"}, {"sensor": "landsat-99"}):
        with pytest.raises(ValueError, match="choose one of"):
            JobRequest("embed", optical="a.tif", out="e.tif", **bad)
    assert JobRequest("embed", optical="a.tif", out="e.tif", sensor="").sensor == "auto"


def test_auto_model_is_the_bundled_model_for_the_layers_sensor(loaded_plugin, project, landsat_path):
    from plugin.models import ModelInfo, bundled_model_for

    s2 = ModelInfo(Path("terraprobe-croma-small.safetensors"), "s2", {"optical": MODEL_BANDS, "sar": ["VV"]})
    oli = ModelInfo(Path("landsat.safetensors"), "oli", {"optical": MODEL_BANDS}, sensor="landsat-oli")
    assert bundled_model_for("landsat-oli", False, [s2, oli]) is oli
    assert bundled_model_for("landsat-oli", True, [s2, oli]) is s2  # the Landsat model has no radar encoder
    assert bundled_model_for("rgbn", False, [s2, oli]) is s2
    assert bundled_model_for("sentinel2", False, [oli, s2]) is s2
    galileo = ModelInfo(Path("galileo-nano.safetensors"), "galileo-nano", {"optical": MODEL_BANDS},
                        sensor="any")
    for sensor, radar in (("landsat-oli", False), ("landsat-oli", True), ("rgbn", False),
                          ("sentinel2", True)):
        assert bundled_model_for(sensor, radar, [s2, oli, galileo]) is galileo  # the default, any sensor

    dock = loaded_plugin.dock
    dock.set_model_path("")
    assert dock.model_combo.currentIndex() == 0 and dock.model_path() is None
    dock.optical_combo.setLayer(_add_raster(landsat_path, "landsat"))
    dock.area_combo.setCurrentText("Layer extent")
    assert dock.model_label.text().startswith("Auto → ")
    if dock.bundled_infos and all(info.sensor not in ("landsat-oli", "any") for info in dock.bundled_infos):
        assert "no bundled Landsat 8/9 OLI model" in dock.model_label.text()
    request, _, _ = dock.build_request("embed")
    assert "--model" not in request.to_argv()  # the backend picks by sensor
