"""The plugin with a remote backend: the process client and the dock run through a real job server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsProject, QgsRasterLayer, QgsRectangle, QgsSettings
from qgis.PyQt.QtCore import Qt

from tests.backend.server_helpers import ServerProcess, start_server, write_crop

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
REMOTE_KEYS = ("terraprobe/backend_mode", "terraprobe/remote/url", "terraprobe/remote/token_file")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> ServerProcess:
    process = start_server(tmp_path_factory.mktemp("plugin-server"))
    yield process
    process.stop()


@pytest.fixture
def remote_settings(server):
    settings = QgsSettings()
    settings.setValue("terraprobe/backend_mode", "remote")
    settings.setValue("terraprobe/remote/url", server.url)
    settings.setValue("terraprobe/remote/token_file", str(server.token_file))
    yield settings
    for key in REMOTE_KEYS:
        settings.remove(key)


def test_process_client_runs_remotely_with_any_python(qgis_app, server, tmp_path) -> None:
    from plugin.backend_client import run_backend

    crop = write_crop(tmp_path / "in" / "crop.tif", size=96)
    args = ["embed", "--optical", str(crop), "--window", "64", "--cache-dir", str(tmp_path / "cache")]
    local = run_backend([*args, "--out", str(tmp_path / "local" / "emb.tif")], remote=False)
    events: list[dict] = []
    remote = run_backend([*args, "--out", str(tmp_path / "remote" / "emb.tif")], on_event=events.append,
                         remote=(server.url, str(server.token_file)), python=shutil.which("python3"))
    assert remote.outputs["embeddings"] == str(tmp_path / "remote" / "emb.tif")
    assert Path(local.outputs["embeddings"]).read_bytes() == Path(remote.outputs["embeddings"]).read_bytes()
    assert any("remote job" in e.get("message", "") for e in events)
    # commands a server does not run (models, info) stay local
    from plugin.process_client import BackendError

    with pytest.raises(BackendError) as failure:
        run_backend(["embed", "--optical", str(crop), "--out", str(tmp_path / "x.tif")],
                    remote=(server.url, str(tmp_path / "no-token")))
    assert "--token-file" in failure.value.message and failure.value.exit_code == 2


def test_dock_embeds_through_the_remote_backend(dock, server, qtbot, tmp_path) -> None:
    crop = write_crop(tmp_path / "crop.tif", size=96)
    layer = QgsRasterLayer(str(crop), "S2 crop", "gdal")
    QgsProject.instance().addMapLayer(layer)
    dock.optical_combo.setLayer(layer)
    extent = layer.extent()
    dock.set_drawn_rectangle(QgsRectangle(extent.xMinimum(), extent.yMinimum(), extent.xMaximum(),
                                          extent.yMaximum()), QgsCoordinateReferenceSystem("EPSG:4326"))
    files: dict[str, bytes] = {}
    settings = QgsSettings()
    for mode in ("local", "remote"):
        if mode == "remote":
            settings.setValue("terraprobe/backend_mode", "remote")
            settings.setValue("terraprobe/remote/url", server.url)
            settings.setValue("terraprobe/remote/token_file", str(server.token_file))
        before = server.get("/stats")[1]["jobs"]["done"]
        earlier = set(QgsProject.instance().mapLayers())  # results are kept side by side
        try:
            qtbot.mouseClick(dock.embed_button, Qt.LeftButton)
            qtbot.waitUntil(lambda: not dock.controller.running, timeout=120_000)
        finally:
            for key in REMOTE_KEYS:
                settings.remove(key)
        previews = [lyr for key, lyr in QgsProject.instance().mapLayers().items()
                    if key not in earlier and lyr.customProperty("terraprobe/kind") == "preview"]
        assert len(previews) == 1, dock.status_label.text()
        files[mode] = Path(previews[0].source()).read_bytes()
        assert server.get("/stats")[1]["jobs"]["done"] == before + (mode == "remote")
    assert files["local"] == files["remote"]


def test_settings_panel_checks_the_remote_backend(qgis_app, remote_settings, server, qtbot) -> None:
    from plugin.settings import Settings
    from plugin.ui.settings_panel import SettingsPanel

    panel = SettingsPanel(Settings())
    assert panel.mode_combo.currentData() == "remote" and panel.url_edit.text() == server.url
    before = server.get("/stats")[1]["jobs"]["done"]
    task = panel.check_backend()
    assert task is not None
    qtbot.waitUntil(lambda: panel.task is None, timeout=60_000)
    assert "does not run" not in panel.report.text(), panel.report.text()
    assert server.get("/stats")[1]["jobs"]["done"] == before + 1  # `version` ran on the server
    panel.mode_combo.setCurrentIndex(0)
    assert Settings().remote_backend() is None and not panel.url_edit.isEnabled()
