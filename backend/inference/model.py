"""Which model file and device an inference run uses, and a content hash of the model for the cache.

Nothing here imports torch except :func:`resolve_device` (and :func:`model_config` for a torch
checkpoint, whose config is inferred from its tensors), so a command served from the embedding
cache learns about its model without it. The sha256 of a large model file is remembered on disk
(``model_hashes.json`` in the embedding cache folder) under the same fingerprint the cache trusts
for its inputs (size, mtime, ctime, inode and a sampled content hash), so a 1 GB model is not
read again on every run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.contract.model_files import ANY_SENSOR, CROMA_MODEL, DEFAULT_MODEL
from backend.errors import UserError
from backend.io.checksums import file_sha256 as _sha256

BUNDLED_MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"
_HASHES: dict[tuple[str, int, int], str] = {}
#: Files at least this large have their sha256 remembered on disk (smaller ones are hashed faster
#: than the memo is read).
HASH_MEMO_MIN_BYTES = 64 << 20
#: The on-disk memo, in the embedding cache folder; it keeps the most recently hashed files.
HASH_MEMO_NAME = "model_hashes.json"
HASH_MEMO_ENTRIES = 32


#: The default bundled model (every sensor) and the Sentinel-2 CROMA model (fallback); see the contract.
DEFAULT_MODEL_NAME, CROMA_MODEL_NAME = DEFAULT_MODEL, CROMA_MODEL


def bundled_models() -> list[tuple[Path, str, tuple[str, ...]]]:
    """``(weights path, sensor, modalities)`` of each model in ``resources/models/``, by name."""
    import json

    found = []
    if BUNDLED_MODELS.is_dir():
        for weights in sorted(BUNDLED_MODELS.glob("*.safetensors")):
            try:
                data = json.loads(weights.with_suffix(".json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            found.append((weights, str(data.get("sensor", "sentinel2")), tuple(data.get("modalities", {}))))
    return found


def default_model_path() -> Path | None:
    """The bundled default model (``galileo-nano``, else ``terraprobe-croma-small``, else a Sentinel-2
    model, else the first by name), if any."""
    models = bundled_models()
    for wanted in (lambda p, s: p.stem == DEFAULT_MODEL_NAME, lambda p, s: p.stem == CROMA_MODEL_NAME,
                   lambda p, s: s == "sentinel2", lambda p, s: True):
        for path, sensor, _ in models:
            if wanted(path, sensor):
                return path
    return None


def bundled_model_for(sensor: str | None, radar: bool = False) -> tuple[Path, str]:
    """The bundled model for an optical ``sensor``, and why it was picked.

    The rule, from the measured evidence (README, *Models*): the default model when it takes any
    sensor (``galileo-nano``: every sensor and radar through its channel groups, no spectral fill).
    Without it: the bundled model whose config ``sensor`` is the raster's (and that has a radar
    encoder when ``radar``); else the Sentinel-2 model, whose missing bands the input then fills by
    wavelength (``backend.io.sensor_bands``).
    """
    default = default_model_path()
    if default is None:
        raise UserError("no model given and none bundled in resources/models/: pass --model PATH")
    if dict((p, s) for p, s, _ in bundled_models()).get(default) == ANY_SENSOR:
        return default, "the bundled default for every sensor: no spectral fill, best measured (README)"
    if sensor in (None, "auto", "sentinel2"):
        return default, "the bundled Sentinel-2 model"
    matches = [(p, m) for p, s, m in bundled_models() if s == sensor]
    usable = [p for p, m in matches if "optical" in m and (not radar or "sar" in m)]
    if usable:
        return usable[0], f"the bundled model adapted to {sensor}"
    if matches:
        return default, (f"the bundled {sensor} model has no radar encoder; the Sentinel-2 model with "
                         f"spectral fill")
    return default, f"no bundled model for {sensor}: the Sentinel-2 model with spectral fill"


def resolve_model_path(path: str | os.PathLike[str] | None, sensor: str | None = None, radar: bool = False,
                       log: Callable[[str], None] | None = None) -> Path:
    """The model file to use: ``path`` when given, else the bundled model for ``sensor``.

    Args:
        path: ``--model``, or ``None`` for a bundled model.
        sensor: the optical raster's sensor (declared or detected), for the bundled choice.
        radar: whether a radar raster is given too (the bundled choice needs a radar encoder).
        log: called with one line saying which bundled model was picked and why.
    """
    if path is None:
        bundled, why = bundled_model_for(sensor, radar)
        if log is not None:
            log(f"model: {bundled.name} ({why})")
        return bundled
    from backend.models.files import is_model_file, model_paths
    from backend.models.registry import named_model_path

    chosen = Path(path).expanduser()
    if not chosen.exists():  # a bare name: a model installed by `models download`, or a bundled one
        chosen = named_model_path(str(path)) or chosen
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
    from backend.models.files import is_model_file, model_paths

    return list(model_paths(path)) if is_model_file(path) else [path]


def _hash_memo_path() -> Path:
    from backend.inference.cache import default_cache_dir

    return default_cache_dir() / HASH_MEMO_NAME


def _read_hash_memo(memo: Path) -> dict[str, Any]:
    try:
        data = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def _write_hash_memo(memo: Path, files: dict[str, Any]) -> None:
    """Best effort: an unwritable cache folder only means hashing again next time."""
    kept = dict(list(files.items())[-HASH_MEMO_ENTRIES:])
    tmp = memo.with_name(f".{memo.name}.{os.getpid()}.part")
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"files": kept}, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, memo)
    except OSError:
        tmp.unlink(missing_ok=True)


def _file_hash(path: Path) -> str:
    """sha256 of one file: remembered in this process, and on disk for large files."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _HASHES:
        return _HASHES[key]
    if stat.st_size < HASH_MEMO_MIN_BYTES:
        _HASHES[key] = _sha256(path)
        return _HASHES[key]
    from backend.inference.cache import content_fingerprint

    memo = _hash_memo_path()
    files = _read_hash_memo(memo)
    fingerprint = content_fingerprint(path)
    known = files.get(key[0])
    if isinstance(known, dict) and known.get("fingerprint") == fingerprint and known.get("sha256"):
        _HASHES[key] = str(known["sha256"])
        return _HASHES[key]
    _HASHES[key] = _sha256(path)
    if content_fingerprint(path) == fingerprint:  # not changed while it was read
        files.pop(key[0], None)
        files[key[0]] = {"fingerprint": fingerprint, "sha256": _HASHES[key]}
        _write_hash_memo(memo, files)
    return _HASHES[key]


def model_hash(path: Path) -> str:
    """sha256 over the content of every file of the model."""
    digest = hashlib.sha256()
    for file in model_files(path):
        digest.update(_file_hash(file).encode())
    return digest.hexdigest()


def model_config(path: Path) -> Any:
    """The ``ModelConfig`` of a model file (its JSON, without torch), or of a torch checkpoint."""
    from backend.models.files import is_model_file, read_model_file_config

    if is_model_file(path):
        return read_model_file_config(path)
    from backend.models.weights import load_model_config

    return load_model_config(path)


def load_model_for(path: Path, inputs: Any, device: str) -> Any:
    """The encoder of ``path`` ready for ``inputs`` (an ``InputSet``), in eval mode on ``device``.

    A CROMA model as loaded; a Galileo encoder wrapped for the run's channel groups and month
    (``backend.inference.galileo_inputs.GalileoEmbedder``).
    """
    from backend.models import load_encoder

    model = load_encoder(path, device=device)
    if getattr(inputs, "galileo", None) is None:
        return model
    from backend.inference.galileo_inputs import GalileoEmbedder

    return GalileoEmbedder(model, model_config(path), inputs.galileo)


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
