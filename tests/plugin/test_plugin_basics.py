"""The analyst's QGIS session around the dock (issue 21 items 10, 15, 20, 21), in real QGIS offscreen.

A wrong *Backend Python* is named for what it is; *Get models* speaks in the dialog's terms, asks
before removing and leaves the dock on a model that exists.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QMessageBox

from plugin.backend_client import run_backend
from plugin.interpreter import interpreter_problem
from plugin.process_client import BackendError

from ..conftest import REPO_ROOT, backend_python
from .test_install import TINY_CHECKPOINT

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's Python: no torch, no rasterio (the backend's are in .venv)


def _system_python_without_torch() -> str:
    if not Path(SYSTEM_PYTHON).is_file() or interpreter_problem(SYSTEM_PYTHON) is None:
        pytest.skip(f"{SYSTEM_PYTHON} is missing or has the backend's packages")
    return SYSTEM_PYTHON


# -- item 10: a wrong Backend Python ----------------------------------------------------------------
def test_a_wrong_interpreter_is_named_not_an_internal_error(tmp_path: Path) -> None:
    not_python = shutil.which("true")
    assert interpreter_problem(not_python).startswith(f"{not_python} is not a Python interpreter")
    assert interpreter_problem(backend_python()) is None
    python = _system_python_without_torch()
    with pytest.raises(BackendError) as info:
        run_backend(["version"], python=python, remote=False, keep_running=False)
    assert info.value.kind == "environment"
    assert info.value.message.startswith(f"{python} is Python 3.")
    assert "without torch" in info.value.message and "--debug" not in info.value.message
    assert "Set up backend" in info.value.message


def test_settings_report_follows_the_backend_python_setting(loaded_plugin, qtbot) -> None:
    panel = loaded_plugin.dock.settings_panel
    python = _system_python_without_torch()
    try:
        panel.python_widget.setFilePath(python)  # typed or picked: checked again without a click
        qtbot.waitUntil(lambda: "without torch" in panel.report.text(), timeout=60_000)
        assert "internal error" not in panel.report.text()
        panel.python_widget.setFilePath(shutil.which("true"))
        qtbot.waitUntil(lambda: "is not a Python interpreter" in panel.report.text(), timeout=60_000)
        panel.python_widget.setFilePath("")  # fixed: back to the environment found automatically
        qtbot.waitUntil(lambda: "PyTorch" in panel.report.text() and panel.task is None, timeout=120_000)
        assert "not a Python" not in panel.report.text() and panel.check_button.isEnabled()
    finally:
        panel.python_widget.setFilePath("")
        qtbot.waitUntil(lambda: panel.task is None, timeout=120_000)


# -- item 15: Get models ----------------------------------------------------------------------------
def test_backend_advice_is_put_in_the_dialogs_terms() -> None:
    from plugin.ui.models_dialog import dialog_advice

    offline = dialog_advice("cannot reach https://x/CROMA_base.pt: [Errno -3] (check the address and the "
                            "network, or use --url / --file for a mirror or a local copy)")
    assert "Source field" in offline and "From file…" in offline and "--" not in offline
    failed = dialog_advice("download of u failed: HTTP 503 x (a problem on the server's side; try again "
                           "later, or give another source with --url / --mirror)")
    assert "Source field" in failed and "--" not in failed
    assert "--" not in dialog_advice("download of u timed out: no answer within 60 s (run the command again "
                                     "to retry, or raise --timeout)")


def _answer_next_question(button: int) -> None:
    """Click ``button`` on the next modal message box (a real one; the test drives it as a user)."""
    def click() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            box.button(button).click()
        else:
            QTimer.singleShot(50, click)

    QTimer.singleShot(50, click)


@pytest.fixture
def models_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TERRAPROBE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TERRAPROBE_MODELS_DIR", raising=False)
    return tmp_path / "home"


def test_get_models_confirms_removal_and_the_dock_drops_the_removed_model(loaded_plugin, models_home: Path,
                                                                        tmp_path: Path, qtbot) -> None:
    dock = loaded_plugin.dock
    checkpoint = tmp_path / "CROMA_local.pt"
    subprocess.run([backend_python(), "-c", TINY_CHECKPOINT, str(checkpoint)], check=True, cwd=REPO_ROOT,
                   timeout=300)
    dock.get_models_button.click()
    dialog = dock.models_dialog
    try:
        qtbot.waitUntil(lambda: dialog.task is None and bool(dialog.rows), timeout=60_000)
        with qtbot.waitSignal(dialog.model_installed, timeout=180_000):
            dialog.download("croma-local", file=str(checkpoint))
        installed = str(models_home / "models" / "croma-local.safetensors")
        assert dock.model_path() == installed
        qtbot.waitUntil(lambda: dialog.task is None, timeout=60_000)
        assert "croma-local is installed" in dialog.status.text()  # the success stays after the refresh
        dialog.select("croma-local")
        assert dialog.remove_button.isEnabled()

        _answer_next_question(QMessageBox.Cancel)
        assert dialog.remove() is None  # declined: nothing deleted
        assert Path(installed).is_file()

        _answer_next_question(QMessageBox.Yes)
        with qtbot.waitSignal(dialog.model_removed, timeout=60_000):
            assert dialog.remove() is not None
        qtbot.waitUntil(lambda: dialog.task is None, timeout=60_000)
        assert not Path(installed).exists()
        assert dock.model_path() is None  # Auto again, not the deleted file
        assert dock.model_combo.findData(installed) < 0
        assert dialog.status.text() == "croma-local removed."
    finally:
        dialog.close()
        dock.set_model_path("")


# -- item 20: setup steps ---------------------------------------------------------------------------
def test_setup_has_the_same_steps_on_a_retry(tmp_path: Path) -> None:
    from plugin.install import InstallOptions, plan

    options = InstallOptions(env_dir=tmp_path / "venv")
    fresh = plan(options, "cpu", "pip")
    subprocess.run([SYSTEM_PYTHON if Path(SYSTEM_PYTHON).is_file() else backend_python(), "-m", "venv",
                    "--without-pip", str(tmp_path / "venv")], check=True, timeout=120)
    retry = plan(options, "cpu", "pip")
    assert len(retry) == len(fresh) == 5  # "Step n of 5" on the first run and on Retry alike
    assert fresh[0].description.startswith("creating the environment")
    assert retry[0].description == "checking the existing environment"
    checked = subprocess.run(retry[0].argv, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and checked.stdout.startswith("3.")
    assert [step.description for step in retry[1:]] == [step.description for step in fresh[1:]]
    assert not any("--" in step.description or "(version)" in step.description for step in retry)


# -- item 21: plugin basics -------------------------------------------------------------------------
def test_every_algorithm_has_help_text_and_a_help_url(loaded_plugin) -> None:
    from qgis.core import QgsApplication

    from plugin.help_links import homepage

    provider = QgsApplication.processingRegistry().providerById("terraprobe")
    algorithms = provider.algorithms()
    assert len(algorithms) == 7
    for algorithm in algorithms:
        assert len(algorithm.shortHelpString()) > 40, algorithm.id()
        assert algorithm.helpUrl() == homepage() + "#processing-and-qgis_process", algorithm.id()
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "### Processing and qgis_process" in readme and "## Using it in QGIS" in readme
    assert homepage() == "https://github.com/terraprobe/terraprobe"


def test_help_action_opens_the_readme_section(loaded_plugin, test_iface) -> None:
    from qgis.PyQt.QtCore import QObject, pyqtSlot
    from qgis.PyQt.QtGui import QDesktopServices

    class Catcher(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.urls: list[str] = []

        @pyqtSlot("QUrl")
        def open(self, url) -> None:
            self.urls.append(url.toString())

    catcher = Catcher()
    QDesktopServices.setUrlHandler("https", catcher, "open")
    try:
        help_action = next(a for a in loaded_plugin.actions if a.objectName() == "TerraprobeHelpAction")
        submenu = next(a.menu() for a in test_iface.rasterMenu().actions() if a.text() == "&Terraprobe")
        assert help_action in submenu.actions()
        help_action.trigger()
    finally:
        QDesktopServices.unsetUrlHandler("https")
    assert catcher.urls == ["https://github.com/terraprobe/terraprobe#using-it-in-qgis"]


def test_load_demo_data_adds_the_bundled_scene_and_samples(loaded_plugin, project, test_iface) -> None:
    from qgis.core import QgsMultiBandColorRenderer, QgsRasterLayer, QgsVectorLayer

    demo_action = next(a for a in loaded_plugin.actions if a.objectName() == "TerraprobeDemoAction")
    demo_action.trigger()
    layers = {layer.name(): layer for layer in project.mapLayers().values()}
    assert set(layers) == {"Sen1Floods11 S2 (demo)", "Sen1Floods11 S1 (demo)", "Sen1Floods11 samples (demo)"}
    optical = layers["Sen1Floods11 S2 (demo)"]
    assert isinstance(optical, QgsRasterLayer) and optical.isValid() and optical.bandCount() == 13
    renderer = optical.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer)
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (4, 3, 2)  # true colour
    assert layers["Sen1Floods11 S1 (demo)"].bandCount() == 2
    samples = layers["Sen1Floods11 samples (demo)"]
    assert isinstance(samples, QgsVectorLayer) and samples.featureCount() == 14 and samples.readOnly()
    assert {f["class"] for f in samples.getFeatures()} == {"water", "land", "urban"}
    assert project.crs().authid() == "EPSG:4326"
    assert test_iface.mapCanvas().extent().intersects(optical.extent())
    assert loaded_plugin.dock_action.isChecked()  # the panel is shown, on the scene
    dock = loaded_plugin.dock
    assert dock.optical_combo.currentLayer() is optical
    assert dock.sar_combo.currentLayer() is layers["Sen1Floods11 S1 (demo)"]
    assert dock.samples_combo.currentLayer() is samples
    demo_action.trigger()  # a second click adds nothing twice
    assert len(project.mapLayers()) == 3


def test_the_plugin_speaks_german_when_qgis_does(plugin_parent_dir, test_iface) -> None:
    import qgis.utils
    from qgis.core import QgsApplication, QgsSettings

    from .conftest import PACKAGE, add_plugin_folder

    settings = QgsSettings()
    settings.setValue("locale/overrideFlag", True)
    settings.setValue("locale/userLocale", "de_DE")
    add_plugin_folder(plugin_parent_dir, test_iface)
    try:
        assert QgsApplication.locale() == "de_DE"
        assert qgis.utils.loadPlugin(PACKAGE) and qgis.utils.startPlugin(PACKAGE)
        plugin = qgis.utils.plugins[PACKAGE]
        assert plugin.translator is not None
        assert plugin.dock_action.text() == "Terraprobe-Bedienfeld"
        panel = plugin.dock.settings_panel
        assert panel.check_button.text() == "Backend prüfen"
        assert panel.setup_button.text() == "Backend einrichten…"
        assert plugin.dock.get_models_button.text() == "Modelle holen…"
        classify = QgsApplication.processingRegistry().algorithmById("terraprobe:classify")
        assert classify.displayName().startswith("Klassifizieren (kNN")  # the toolbox too
        assert qgis.utils.unloadPlugin(PACKAGE)
    finally:
        settings.remove("locale/overrideFlag")
        settings.remove("locale/userLocale")
        if PACKAGE in qgis.utils.active_plugins:
            qgis.utils.unloadPlugin(PACKAGE)
    assert qgis.utils.loadPlugin(PACKAGE) and qgis.utils.startPlugin(PACKAGE)  # English again
    try:
        plugin = qgis.utils.plugins[PACKAGE]
        assert plugin.translator is None and plugin.dock.settings_panel.check_button.text() == "Check backend"
    finally:
        qgis.utils.unloadPlugin(PACKAGE)


def test_the_compiled_translation_is_the_one_of_its_source(tmp_path: Path) -> None:
    lrelease = shutil.which("lrelease")
    if lrelease is None:
        pytest.skip("lrelease not installed (Debian: qttools5-dev-tools)")
    source = REPO_ROOT / "i18n" / "terraprobe_de.ts"
    subprocess.run([lrelease, "-silent", str(source), "-qm", str(tmp_path / "de.qm")], check=True, timeout=60)
    assert (tmp_path / "de.qm").read_bytes() == source.with_suffix(".qm").read_bytes(), \
        "run scripts/update_translations.py"
