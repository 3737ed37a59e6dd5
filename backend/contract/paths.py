"""Per-user folders that survive plugin upgrades: the backend environment and downloaded models.

Pure Python (no torch, numpy, rasterio or qgis): the backend imports it to find downloaded models,
the plugin to find the backend environment. QGIS replaces the plugin folder on every upgrade, so
nothing the user installs or downloads may live there.

Default home (``TERRAPROBE_HOME`` overrides it):

* Linux: ``$XDG_DATA_HOME/terraprobe`` (``~/.local/share/terraprobe``)
* Windows: ``%APPDATA%\\terraprobe``
* macOS: ``~/Library/Application Support/terraprobe``

Inside the plugin the home is the QGIS profile's ``terraprobe/`` folder instead
(``QgsApplication.qgisSettingsDirPath()``); it is passed to these helpers explicitly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Environment variable that moves the whole per-user home (models and backend environment).
HOME_ENV = "TERRAPROBE_HOME"
#: Environment variable that moves only the models folder.
MODELS_ENV = "TERRAPROBE_MODELS_DIR"
MODELS_FOLDER = "models"
ENV_FOLDER = "venv"


def platform_data_dir(platform: str | None = None) -> Path:
    """The platform's per-user data folder for Terraprobe (not created).

    Args:
        platform: ``sys.platform`` value to compute the folder for (default: this machine's).
    """
    platform = platform or sys.platform
    home = Path.home()
    if platform == "win32":
        appdata = os.environ.get("APPDATA")
        return (Path(appdata) if appdata else home / "AppData" / "Roaming") / "terraprobe"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "terraprobe"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else home / ".local" / "share") / "terraprobe"


def user_home() -> Path:
    """``$TERRAPROBE_HOME`` when set, else :func:`platform_data_dir`."""
    override = os.environ.get(HOME_ENV, "").strip()
    return Path(override).expanduser() if override else platform_data_dir()


def models_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """The downloaded-models folder: ``$TERRAPROBE_MODELS_DIR``, else ``<home>/models`` (not created)."""
    if home is None:
        override = os.environ.get(MODELS_ENV, "").strip()
        if override:
            return Path(override).expanduser()
    return Path(home if home is not None else user_home()) / MODELS_FOLDER


def backend_env_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """The backend's virtual environment folder: ``<home>/venv`` (not created)."""
    return Path(home if home is not None else user_home()) / ENV_FOLDER


def env_python(env_dir: str | os.PathLike[str], platform: str | None = None) -> Path:
    """The interpreter inside a virtual environment folder (may not exist)."""
    if (platform or sys.platform) == "win32":
        return Path(env_dir) / "Scripts" / "python.exe"
    return Path(env_dir) / "bin" / "python"
