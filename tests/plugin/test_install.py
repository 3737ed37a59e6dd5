"""Backend setup from inside QGIS: the install plan, a real installation, a plugin upgrade.

The slow tests install the backend into a fresh environment folder with the plugin's own install
logic (venv + pip, pinned ``requirements.txt``), using the package sources this machine's pip is
configured with (a local torch wheel, local indexes). ``TERRAPROBE_HOME`` points the per-user
folder at a temporary directory so nothing touches the real profile.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugin.backend_client import run_backend
from plugin.install import (
    TORCH_CPU_INDEX,
    InstallOptions,
    diagnostics_report,
    install,
    plan,
    torch_index,
    torch_requirement,
)
from plugin.interpreter import find_backend_python, user_env_dirs

from ..conftest import REPO_ROOT

PACKAGE = "terraprobe"
IMAGES = REPO_ROOT / "docs" / "images"
TINY_CHECKPOINT = (
    "import sys, torch\n"
    "from backend.models import ModelConfig, build_model, official_state_dicts\n"
    "torch.manual_seed(0)\n"
    "model = build_model(ModelConfig(dim=64, heads=16, sar_depth=1, optical_depth=2, joint_depth=1))\n"
    "torch.save(official_state_dicts(model), sys.argv[1])\n"
)


def test_plan_pins_torch_and_picks_the_build(tmp_path: Path) -> None:
    requirements = REPO_ROOT / "requirements.txt"
    assert torch_requirement(requirements).startswith("torch==")
    assert torch_index("cpu", platform="linux") == TORCH_CPU_INDEX
    assert torch_index("cuda", platform="linux") is None  # PyPI's Linux wheels are the CUDA builds
    assert torch_index("cuda", platform="win32").startswith("https://download.pytorch.org/whl/cu")
    assert torch_index("cpu", platform="darwin") is None
    assert torch_index("cpu", "none") is None and torch_index("cpu", "https://mirror/torch") == "https://mirror/torch"
    options = InstallOptions(env_dir=tmp_path / "venv", base_python=sys.executable, torch_index_url="",
                             find_links=["/srv/wheels"])
    steps = plan(options, "cpu", "pip")
    assert steps[0].argv[:3] == [sys.executable, "-m", "venv"]
    torch_step = steps[1].argv
    assert torch_requirement(requirements) in torch_step and TORCH_CPU_INDEX in torch_step
    assert torch_step[-2:] == ["--find-links", "/srv/wheels"]
    assert steps[2].argv[-4:-2] == ["-r", str(requirements)]
    assert [s.argv[3] for s in steps[3:]] == ["version", "selftest"]
    # a site's own pip sources (mirror, wheel folder) win over PyTorch's index unless one is set
    assert TORCH_CPU_INDEX not in plan(options, "cpu", "pip", own_sources=True)[1].argv
    uv_steps = plan(options, "cuda", "uv")
    assert uv_steps[0].argv[1] == "venv" and "pip" in uv_steps[1].argv


def test_report_lists_python_torch_cuda_gpu_and_gdal() -> None:
    text = diagnostics_report({"backend": "0.1.0", "python": "3.11.2", "torch": "2.13.0+cu128",
                               "torch_cuda": "12.8", "cuda_available": True, "cuda_devices": ["NVIDIA H200"],
                               "cuda_memory_gb": [150.0], "default_device": "cuda", "numpy": "1.24",
                               "rasterio": "1.4.4", "gdal": "3.10.3"}, "/env/bin/python", "/env")
    for needed in ("Python 3.11.2", "PyTorch 2.13.0+cu128", "CUDA available: yes", "NVIDIA H200 (150.0 GB)",
                   "GDAL 3.10.3", "Backend environment: /env"):
        assert needed in text


def test_settings_point_at_setup_when_no_backend_exists(loaded_plugin, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERRAPROBE_HOME", str(tmp_path / "home"))
    panel = loaded_plugin.dock.settings_panel
    assert panel.show_first_run_hint(root=tmp_path)
    assert "Set up backend" in panel.report.text() and panel.setup_button.isDefault()
    assert not panel.show_first_run_hint(root=REPO_ROOT)  # scripts/setup.sh's .venv counts


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A per-user Terraprobe home in a temporary folder (``TERRAPROBE_HOME``)."""
    folder = tmp_path_factory.mktemp("terraprobe-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TERRAPROBE_HOME", str(folder))
        yield folder  # left to pytest's temporary-folder rotation: deleting 1.4 GB here takes a minute


@pytest.fixture(scope="module")
def installed(home: Path) -> dict:
    """The backend installed by the plugin's install logic into ``<home>/venv`` (fresh, isolated)."""
    lines: list[str] = []
    steps: list[str] = []
    options = InstallOptions(env_dir=home / "venv")  # defaults: auto installer, auto build, auto index
    result = install(options, on_line=lines.append, on_step=lambda i, n, what: steps.append(what))
    return {"result": result, "lines": lines, "steps": steps}


@pytest.mark.slow
def test_install_task_logic_creates_a_working_backend(installed: dict, home: Path) -> None:
    result = installed["result"]
    assert result.python == home / "venv" / "bin" / "python" and result.python.is_file()
    assert result.torch_build == "cpu" and result.installer == "pip"  # no nvidia-smi, no uv here
    torch_command = next(line for line in installed["lines"] if line.startswith("$") and " torch==" in line)
    assert "download.pytorch.org" not in torch_command  # pip's own configured sources (local wheel) win
    assert installed["steps"][0].startswith("creating the environment")
    assert result.versions["torch"].startswith("2.13.0")
    assert result.versions["executable"] == str(result.python)
    cfg = (home / "venv" / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg
    assert user_env_dirs()[0] == home / "venv"
    assert find_backend_python(None) == str(result.python)  # the plugin's client finds it first
    selftest = run_backend(["selftest", "--steps", "2"])
    assert selftest.stats == {"steps": 2}


def _plugin_copy(zip_path: Path, plugins: Path) -> Path:
    """Install the zip into a plugins folder the way QGIS does (the old folder replaced)."""
    target = plugins / PACKAGE
    if target.exists():
        shutil.rmtree(target)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(plugins)
    return target


@pytest.mark.slow
def test_plugin_upgrade_keeps_environment_and_models(installed: dict, home: Path, tmp_path: Path) -> None:
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "build_plugin_zip.sh"), "--out-dir", str(tmp_path)],
                   check=True, capture_output=True, timeout=120)
    zip_path = next(tmp_path.glob("terraprobe-*.zip"))
    plugins = tmp_path / "profile" / "python" / "plugins"
    old = _plugin_copy(zip_path, plugins)
    python = find_backend_python(None, root=old, allow_host=False)
    assert python == str(home / "venv" / "bin" / "python")
    checkpoint = tmp_path / "CROMA_tiny.pt"
    subprocess.run([python, "-c", TINY_CHECKPOINT, str(checkpoint)], check=True, cwd=old, timeout=120)
    got = run_backend(["models", "download", "croma-tiny", "--file", str(checkpoint),
                       "--models-dir", str(home / "models")], root=old)
    assert Path(got.outputs["weights"]) == home / "models" / "croma-tiny.safetensors"

    new = _plugin_copy(zip_path, plugins)  # the upgrade: QGIS deletes and re-extracts the folder
    assert not (new / ".venv").exists()
    assert find_backend_python(None, root=new, allow_host=False) == python
    listing = run_backend(["models", "list", "--models-dir", str(home / "models")], root=new)
    rows = {row["name"]: row for row in listing.stats["models"]}
    assert rows["croma-tiny"]["installed"]
    from plugin.models import user_models_folder

    assert (user_models_folder() / "croma-tiny.json").is_file()  # what the dock's picker lists
    out = tmp_path / "emb.tif"
    embedded = run_backend(["embed", "--optical", str(new / "resources/samples/Spain_7370579_S2Hand.tif"),
                            "--model", "croma-tiny", "--window", "64", "--bounds", "-0.75", "38.10", "-0.74",
                            "38.11", "--bounds-crs", "EPSG:4326", "--cache-dir", str(tmp_path / "cache"),
                            "--out", str(out)], root=new)
    assert embedded.stats["model"] == str(home / "models" / "croma-tiny.safetensors") and out.is_file()


@pytest.mark.slow
def test_dialogs_complete_the_install_list_models_and_show_in_settings(installed: dict, home: Path,
                                                                        loaded_plugin, qtbot) -> None:
    from plugin.settings import Settings
    from plugin.ui.models_dialog import ModelsDialog
    from plugin.ui.setup_dialog import SetupDialog

    settings = Settings()
    panel = loaded_plugin.dock.settings_panel
    assert panel.setup_button.text() == "Set up backend…"
    assert loaded_plugin.dock.get_models_button.text() == "Get models…"
    try:
        dialog = SetupDialog(settings)
        assert dialog.env_dir == home / "venv" and dialog.installer_combo.currentData() == "auto"
        dialog.show()
        task = dialog.start()  # the environment exists: the retry completes it, it is not rebuilt
        qtbot.waitUntil(lambda: dialog.task is None, timeout=300_000)
        assert task.result is not None, dialog.status.text() + dialog.report_view.toPlainText()
        report = dialog.report_view.toPlainText()
        assert "PyTorch 2.13.0" in report and "GDAL" in report and str(home / "venv") in report
        assert dialog.install_button.text() == "Reinstall"
        IMAGES.mkdir(parents=True, exist_ok=True)
        assert dialog.grab().save(str(IMAGES / "setup_backend_dialog.png"))
        dialog.close()

        models = ModelsDialog(settings)
        models.show()
        models.refresh()
        qtbot.waitUntil(lambda: models.task is None and bool(models.rows), timeout=60_000)
        names = [row["name"] for row in models.rows]
        assert {"terraprobe-croma-small", "croma-base", "croma-large"} <= set(names)
        models.select("croma-base")
        assert models.download_button.isEnabled() and not models.remove_button.isEnabled()
        assert models.table.item(names.index("croma-base"), 1).text() == "778.0 MB"
        assert models.grab().save(str(IMAGES / "get_models_dialog.png"))
        models.close()

        # "Get models…" from the dock: a checkpoint from a local file lands in the dock's model picker
        dock = loaded_plugin.dock
        checkpoint = home / "CROMA_local.pt"
        subprocess.run([str(installed["result"].python), "-c", TINY_CHECKPOINT, str(checkpoint)], check=True,
                       cwd=REPO_ROOT, timeout=120)
        dock.get_models_button.click()
        from_dock = dock.models_dialog
        qtbot.waitUntil(lambda: from_dock.task is None and bool(from_dock.rows), timeout=60_000)
        with qtbot.waitSignal(from_dock.model_installed, timeout=120_000):
            from_dock.download("croma-local", file=str(checkpoint))
        wanted = str(home / "models" / "croma-local.safetensors")
        assert dock.model_path() == wanted and dock.model_combo.findData(wanted) >= 0
        qtbot.waitUntil(lambda: from_dock.task is None, timeout=60_000)
        from_dock.close()
    finally:
        loaded_plugin.dock.set_model_path("")
        for key in (Settings.MODEL, Settings.TORCH_INDEX_URL, Settings.INSTALLER, Settings.TORCH_BUILD,
                    Settings.INDEX_URL, Settings.FIND_LINKS, Settings.BASE_PYTHON, Settings.MODEL_MIRROR):
            settings._settings.remove(key)
