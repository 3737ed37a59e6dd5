"""Which model file and device an inference run uses, and a content hash of the model for the cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from backend.errors import UserError

BUNDLED_MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"
_HASHES: dict[tuple[str, int, int], str] = {}


def default_model_path() -> Path | None:
    """The bundled model in ``resources/models/`` (first ``*.safetensors`` by name), if any."""
    if not BUNDLED_MODELS.is_dir():
        return None
    found = sorted(BUNDLED_MODELS.glob("*.safetensors"))
    return found[0] if found else None


def resolve_model_path(path: str | os.PathLike[str] | None) -> Path:
    """The model file to use: ``path`` when given, else the bundled model."""
    if path is None:
        bundled = default_model_path()
        if bundled is None:
            raise UserError("no model given and none bundled in resources/models/: pass --model PATH")
        return bundled
    from backend.models.weights import is_model_file, model_paths

    chosen = Path(path).expanduser()
    if is_model_file(chosen):
        weights, config = model_paths(chosen)
        for needed in (weights, config):
            if not needed.exists():
                raise UserError(f"model file not found: {needed} (a model is a .safetensors + .json pair)")
        return weights
    if not chosen.is_file():
        raise UserError(f"model file not found: {chosen}")
    return chosen


def model_files(path: Path) -> list[Path]:
    """The files whose content defines the model (weights + config, or the checkpoint)."""
    from backend.models.weights import is_model_file, model_paths

    return list(model_paths(path)) if is_model_file(path) else [path]


def _file_hash(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def model_hash(path: Path) -> str:
    """sha256 over the content of every file of the model."""
    digest = hashlib.sha256()
    for file in model_files(path):
        digest.update(_file_hash(file).encode())
    return digest.hexdigest()


def model_config(path: Path) -> Any:
    """The ``ModelConfig`` of a model file without loading the weights where possible."""
    from backend.models import load_model_config

    return load_model_config(path)


def resolve_device(name: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a CUDA device is present, else ``cpu``."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise UserError(f"--device must be auto, cpu or cuda, not {name!r}")
    return name
