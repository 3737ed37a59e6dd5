"""Terraprobe model files: ``name.safetensors`` (weights) beside ``name.json`` (its config).

Pure Python (no torch, numpy, rasterio or qgis). The backend builds its ``ModelConfig`` from what
:func:`read_model_json` returns; the plugin reads bands, size and sensor for the dock.

* ``FORMAT_VERSION``: the newest config format this Terraprobe reads (and writes).
* ``check_format_version(data, path)``: refuse a config made by a newer Terraprobe.
* ``read_model_json(path) -> dict``: parse and check a config (``ModelFileError`` with a clear reason).
* ``config_path(model_path)``, ``weights_path(model_path)``: the two files of a model.
* ``modality_bands(data) -> dict[str, list[str]]``: bands per modality (``optical``, ``sar``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: The newest model-config format this Terraprobe understands; files without the field are version 1.
FORMAT_VERSION = 1
#: Weight files a model config may sit beside.
WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".pt", ".pth", ".ckpt")
#: The sensor of a config written before the field existed.
DEFAULT_SENSOR = "sentinel2"
#: The ``sensor`` of a model that takes any sensor's bands (Galileo's channel groups).
ANY_SENSOR = "any"
#: The bundled model used when none is chosen, for every sensor (backend and dock): Galileo-nano
#: scores best on every task measured (README, *Models*) and needs no spectral fill.
DEFAULT_MODEL = "galileo-nano"
#: The bundled Sentinel-2 CROMA model: the default where Galileo-nano is not bundled.
CROMA_MODEL = "terraprobe-croma-small"


class ModelFileError(ValueError):
    """A model config that cannot be used (unreadable, not JSON, or from a newer Terraprobe)."""


def check_format_version(data: dict[str, Any], path: str | os.PathLike[str] = "model config") -> int:
    """The config's ``format_version`` (1 when absent); refuse one newer than :data:`FORMAT_VERSION`."""
    version = data.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{path}: format_version must be a positive whole number (got {version!r})")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: this model file was made by a newer Terraprobe (format version "
                             f"{version}; this one reads up to {FORMAT_VERSION}); update Terraprobe")
    return version


def read_model_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a model config and check its format version.

    Raises:
        ModelFileError: the file is unreadable, not a JSON object, or from a newer Terraprobe.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the model config ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise ModelFileError(f"{path}: the model config is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: the model config is not a JSON object")
    check_format_version(data, path)
    return data


def config_path(model_path: str | os.PathLike[str]) -> Path:
    """The ``.json`` config beside a Terraprobe model file."""
    path = Path(model_path)
    return path if path.suffix == ".json" else path.with_suffix(".json")


def weights_path(model_path: str | os.PathLike[str]) -> Path | None:
    """The weights file of a model (the path itself for a weights file, else a ``.safetensors`` beside)."""
    path = Path(model_path)
    if path.suffix in WEIGHT_SUFFIXES:
        return path
    candidate = path.with_suffix(".safetensors")
    return candidate if candidate.exists() else None


def modality_bands(data: dict[str, Any]) -> dict[str, list[str]]:
    """Bands per modality of a config (``{"optical": [...], "sar": [...]}``), in model order."""
    return {name: [str(b) for b in spec.get("bands", [])]
            for name, spec in (data.get("modalities") or {}).items() if isinstance(spec, dict)}
