"""Terraprobe settings stored in QgsSettings under ``terraprobe/``."""

from __future__ import annotations

import os
from pathlib import Path

from qgis.core import QgsApplication, QgsSettings

from .contract import paths as contract_paths

PREFIX = "terraprobe"
DEVICES = ("auto", "cpu", "cuda")


class Settings:
    """Typed access to the plugin's QgsSettings keys."""

    BACKEND_PYTHON = f"{PREFIX}/backend_python"
    DEVICE = f"{PREFIX}/device"
    CACHE_DIR = f"{PREFIX}/cache_dir"
    MODEL = f"{PREFIX}/model"
    #: Backend setup (issue 13): installer, torch build and package sources; model mirror.
    INSTALLER = f"{PREFIX}/install/installer"
    TORCH_BUILD = f"{PREFIX}/install/torch_build"
    TORCH_INDEX_URL = f"{PREFIX}/install/torch_index_url"
    INDEX_URL = f"{PREFIX}/install/index_url"
    FIND_LINKS = f"{PREFIX}/install/find_links"
    BASE_PYTHON = f"{PREFIX}/install/base_python"
    MODEL_MIRROR = f"{PREFIX}/models/mirror"
    #: Remote backend (issue 15): "local" or "remote", the job server's URL and a copy of its token file.
    BACKEND_MODE = f"{PREFIX}/backend_mode"
    REMOTE_URL = f"{PREFIX}/remote/url"
    REMOTE_TOKEN_FILE = f"{PREFIX}/remote/token_file"
    #: Reuse one backend process across actions (issue 12); "true" / "false".
    KEEP_BACKEND_RUNNING = f"{PREFIX}/keep_backend_running"

    def __init__(self) -> None:
        self._settings = QgsSettings()

    def _get(self, key: str, default: str = "") -> str:
        value = self._settings.value(key, default)
        return str(value) if value is not None else default

    @property
    def backend_python(self) -> str:
        """Path of the backend interpreter; empty means auto-detect."""
        return self._get(self.BACKEND_PYTHON).strip()

    @backend_python.setter
    def backend_python(self, value: str) -> None:
        self._settings.setValue(self.BACKEND_PYTHON, value.strip())

    @property
    def device(self) -> str:
        value = self._get(self.DEVICE, "auto")
        return value if value in DEVICES else "auto"

    @device.setter
    def device(self, value: str) -> None:
        self._settings.setValue(self.DEVICE, value if value in DEVICES else "auto")

    @property
    def cache_dir(self) -> str:
        """Embedding cache folder; empty means the backend's default (~/.cache/terraprobe)."""
        return self._get(self.CACHE_DIR).strip()

    @cache_dir.setter
    def cache_dir(self, value: str) -> None:
        self._settings.setValue(self.CACHE_DIR, value.strip())

    @property
    def model(self) -> str:
        """The last model file picked in the dock; empty means the bundled default."""
        return self._get(self.MODEL).strip()

    @model.setter
    def model(self, value: str) -> None:
        self._settings.setValue(self.MODEL, value.strip())

    @property
    def backend_mode(self) -> str:
        """``local`` (a backend process on this machine) or ``remote`` (a job server)."""
        return "remote" if self._get(self.BACKEND_MODE, "local") == "remote" else "local"

    @backend_mode.setter
    def backend_mode(self, value: str) -> None:
        self._settings.setValue(self.BACKEND_MODE, "remote" if value == "remote" else "local")

    @property
    def keep_backend_running(self) -> bool:
        """Whether cluster / classify / ... reuse a long-lived backend worker between actions."""
        from .worker_client import KEEP_RUNNING_DEFAULT

        default = "true" if KEEP_RUNNING_DEFAULT else "false"
        return self._get(self.KEEP_BACKEND_RUNNING, default).strip().lower() in ("true", "1", "yes")

    @keep_backend_running.setter
    def keep_backend_running(self, value: bool) -> None:
        self._settings.setValue(self.KEEP_BACKEND_RUNNING, "true" if value else "false")

    def remote_backend(self) -> tuple[str, str] | None:
        """``(url, token_file)`` when the backend is remote and a URL is set, else ``None``."""
        url = self.text(self.REMOTE_URL)
        if self.backend_mode != "remote" or not url:
            return None
        return url, self.text(self.REMOTE_TOKEN_FILE)

    def text(self, key: str, default: str = "") -> str:
        """A free-text setting (the install and mirror keys above), stripped."""
        return self._get(key, default).strip()

    def set_text(self, key: str, value: str) -> None:
        self._settings.setValue(key, value.strip())


def plugin_home() -> Path:
    """The per-user Terraprobe folder of this QGIS profile (``$TERRAPROBE_HOME`` when set).

    ``<profile>/terraprobe`` (``QgsApplication.qgisSettingsDirPath()``): outside the plugin folder,
    so the backend environment (``venv/``) and downloaded models (``models/``) survive upgrades.
    """
    override = os.environ.get(contract_paths.HOME_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return Path(QgsApplication.qgisSettingsDirPath()) / "terraprobe"


def profile_homes() -> list[Path]:
    """:func:`plugin_home` first, then the Terraprobe folder of every other QGIS profile.

    ``qgis_process`` runs in the default profile while *Set up backend…* may have installed the
    backend from another one: the backend lookup tries them all (``default`` first, then by name).
    """
    homes = [plugin_home()]
    profiles = Path(QgsApplication.qgisSettingsDirPath()).parent
    if profiles.is_dir():
        others = sorted(profiles.iterdir(), key=lambda folder: (folder.name != "default", folder.name))
        homes += [folder / "terraprobe" for folder in others
                  if (folder / "terraprobe").is_dir() and folder / "terraprobe" not in homes]
    return homes


def backend_env_dir() -> Path:
    """Where "Set up backend…" installs the backend environment."""
    return contract_paths.backend_env_dir(plugin_home())


def models_dir() -> Path:
    """Where "Get models…" and "Add model…" put models (created)."""
    folder = contract_paths.models_dir(plugin_home())
    folder.mkdir(parents=True, exist_ok=True)
    return folder

