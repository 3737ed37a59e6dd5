"""Model files the dock offers: the bundled default and any file the analyst picks."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .contract import bands as _bands
from .contract import model_files as _model_files

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_MODELS = PLUGIN_ROOT / "resources" / "models"
WEIGHT_SUFFIXES = _model_files.WEIGHT_SUFFIXES


@dataclass
class ModelInfo:
    """What the dock shows about a model file."""

    path: Path
    name: str
    modalities: dict[str, list[str]] = field(default_factory=dict)
    dim: int | None = None
    size_bytes: int = 0
    sensor: str = "sentinel2"

    def summary(self) -> str:
        parts = [self.name]
        if self.dim:
            parts.append(f"dim {self.dim}")
        for modality, bands in self.modalities.items():
            parts.append(f"{modality}: {len(bands)} bands")
        if self.size_bytes:
            parts.append(_human_size(self.size_bytes))
        return " · ".join(parts)


def _human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


config_path = _model_files.config_path
weights_path = _model_files.weights_path


def read_model_info(model_path: str | Path) -> ModelInfo | None:
    """Read bands and size from a Terraprobe model's JSON config (``None`` if it has none or is unusable).

    A config made by a newer Terraprobe is unusable (see :func:`model_problem` for the reason).
    """
    cfg = config_path(model_path)
    if not cfg.is_file():
        return None
    try:
        data = _model_files.read_model_json(cfg)
    except _model_files.ModelFileError:
        return None
    weights = weights_path(model_path)
    size = weights.stat().st_size if weights and weights.exists() else 0
    return ModelInfo(path=weights or cfg, name=str(data.get("name") or cfg.stem),
                     modalities=_model_files.modality_bands(data), dim=data.get("dim"), size_bytes=size,
                     sensor=str(data.get("sensor") or _model_files.DEFAULT_SENSOR))


def model_problem(model_path: str | Path) -> str | None:
    """Why a model's config cannot be used (e.g. "made by a newer Terraprobe"); ``None`` when it can."""
    cfg = config_path(model_path)
    if not cfg.is_file():
        return None
    try:
        _model_files.read_model_json(cfg)
    except _model_files.ModelFileError as exc:
        return str(exc).replace(str(cfg), cfg.name)
    return None


def model_info_from_stats(model_path: str | Path, stats: dict) -> ModelInfo:
    """A :class:`ModelInfo` from the stats of ``python -m backend info FILE``."""
    path = Path(model_path)
    modalities = {name: list(spec.get("bands", [])) for name, spec in (stats.get("modalities") or {}).items()}
    size = path.stat().st_size if path.is_file() else 0
    return ModelInfo(path=path, name=str(stats.get("name") or path.stem), modalities=modalities,
                     dim=stats.get("dim"), size_bytes=size, sensor=str(stats.get("sensor") or "sentinel2"))


def bundled_models(folder: Path = BUNDLED_MODELS) -> list[Path]:
    """Model files shipped with the plugin (``resources/models/*.json`` with weights beside)."""
    if not folder.is_dir():
        return []
    found = []
    for cfg in sorted(folder.glob("*.json")):
        weights = weights_path(cfg)
        if weights is not None:
            found.append(weights)
    return found


def model_from_name(text: str | None) -> str | None:
    """A model chosen by name (``galileo-nano``: bundled, or added to the user's models folder) as its
    weights path; a path or an empty value is returned as given (empty: ``None``)."""
    if not text or any(sep in text for sep in "/\\") or Path(text).suffix:
        return text or None
    folders = [BUNDLED_MODELS]
    with contextlib.suppress(ImportError, OSError):
        folders.append(user_models_folder())
    for folder in folders:
        for weights in bundled_models(folder):
            if weights.stem == text:
                return str(weights)
    return text


def bundled_model_names() -> list[str]:
    """Names of the models shipped with the plugin (``galileo-nano``, ``terraprobe-croma-small``...)."""
    return [path.stem for path in bundled_models()]


def bundled_model_for(sensor: str, radar: bool, models: list[ModelInfo]) -> ModelInfo | None:
    """The bundled model the backend picks without ``--model`` (``backend.inference.model``'s rule).

    The default model when it takes any sensor (``galileo-nano``); else the model trained for the
    layer's ``sensor`` (with a radar encoder when ``radar``), else the Sentinel-2 model
    (``terraprobe-croma-small`` first), whose missing bands are filled spectrally.
    """
    def usable(info: ModelInfo) -> bool:
        return "optical" in info.modalities and (not radar or "sar" in info.modalities)

    for info in models:
        if info.path.stem == _model_files.DEFAULT_MODEL and info.sensor == _model_files.ANY_SENSOR:
            return info

    if sensor not in ("", "auto", "sentinel2"):
        for info in models:
            if info.sensor == sensor and usable(info):
                return info
    for wanted in (lambda m: m.path.stem == _model_files.CROMA_MODEL, lambda m: m.sensor == "sentinel2",
                   lambda m: True):
        for info in models:
            if wanted(info):
                return info
    return None


def user_models_folder() -> Path:
    """Where "Add model..." copies checkpoints and "Get models..." downloads (per user, kept on upgrade)."""
    from .settings import models_dir

    return models_dir()


def import_model(source: str | Path, folder: Path) -> Path:
    """Copy a model file (and its ``.json`` config when present) into ``folder``."""
    source = Path(source)
    target = folder / source.name
    shutil.copy2(source, target)
    cfg = config_path(source)
    if cfg.is_file() and cfg != source:
        shutil.copy2(cfg, folder / cfg.name)
    return target


def model_bands(model_path: str | None, sensor: str, radar: bool,
                bundled: list[ModelInfo] | None = None) -> dict[str, list[str]]:
    """The bands per modality of the model a run uses: the file's, or the bundled pick for ``sensor``.

    Falls back to the released CROMA bands (:data:`backend.contract.bands.DEFAULT_MODALITIES`) when
    the model file says nothing (a checkpoint without a config).
    """
    info = read_model_info(model_path) if model_path else None
    if not model_path:
        infos = bundled if bundled is not None else [i for i in map(read_model_info, bundled_models()) if i]
        info = bundled_model_for(sensor, radar, infos)
    if info is not None and info.modalities:
        return info.modalities
    return {name: list(bands) for name, bands in _bands.DEFAULT_MODALITIES.items()}
