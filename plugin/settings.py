"""Terraprobe settings stored in QgsSettings under ``terraprobe/``."""

from __future__ import annotations

import tempfile
from pathlib import Path

from qgis.core import QgsProject, QgsSettings

PREFIX = "terraprobe"
DEVICES = ("auto", "cpu", "cuda")


class Settings:
    """Typed access to the plugin's QgsSettings keys."""

    BACKEND_PYTHON = f"{PREFIX}/backend_python"
    DEVICE = f"{PREFIX}/device"
    CACHE_DIR = f"{PREFIX}/cache_dir"
    MODEL = f"{PREFIX}/model"

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


def output_folder() -> Path:
    """Where dock runs write results: ``terraprobe/`` beside the saved project, else a temp folder."""
    home = QgsProject.instance().homePath()
    base = Path(home) / "terraprobe" if home else Path(tempfile.gettempdir()) / "terraprobe"
    base.mkdir(parents=True, exist_ok=True)
    return base
