"""Model file names and the model config reader, without torch.

A Terraprobe model is ``name.safetensors`` (weights) beside ``name.json`` (its config); anything
else with a torch suffix is a checkpoint. Reading a model's config, hashing its files and the
embedding-cache lookup need only this module (and :mod:`backend.models.config`), so commands that
start from cached embeddings never import torch to learn about the model.

* ``model_paths(path) -> (weights, config)``: the pair named by either file or the bare stem.
* ``is_model_file(path) -> bool``: a Terraprobe model rather than a torch checkpoint.
* ``read_model_file_config(path) -> ModelConfig``: the config of a Terraprobe model file.
* ``save_safetensors(tensors, path, metadata)``: the one writer of ``.safetensors`` files (models,
  checkpoints, converted weights): equal tensors and metadata give equal bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backend.errors import UserError
from backend.models.config import ModelConfig

#: Suffixes of torch checkpoints (official / TorchGeo weights), read by ``backend.models.weights``.
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar")


def model_paths(path: str | Path) -> tuple[Path, Path]:
    """The ``(weights, config)`` pair of a Terraprobe model given either file or the bare stem."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def is_model_file(path: str | Path) -> bool:
    """Whether ``path`` names (either file of) a Terraprobe model rather than a torch checkpoint."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        return True
    return path.suffix not in TORCH_SUFFIXES and model_paths(path)[0].exists()


def read_model_file_config(path: str | Path) -> ModelConfig:
    """The :class:`ModelConfig` of a Terraprobe model file (its JSON; the weights are not read).

    Raises:
        UserError: the config file is missing, unreadable or from a newer Terraprobe.
    """
    config_path = model_paths(path)[1]
    if not config_path.exists():
        raise UserError(f"model config not found: {config_path} (a model is a .safetensors + .json pair)")
    return ModelConfig.load_json(config_path)


#: safetensors files start with the header's length, a little-endian u64.
_HEADER_LENGTH_BYTES = 8


def save_safetensors(tensors: Mapping[str, Any], path: str | os.PathLike[str],
                     metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` (name -> contiguous torch tensor) and ``metadata`` as a safetensors file.

    The library writes the metadata in its hash map's order, which differs from process to
    process; the header is rewritten here with the metadata keys sorted, so equal weights give a
    byte-identical file (and equal model hashes, cache keys and checksums). ``path`` is the
    caller's temporary file (see ``backend.io.atomic``).
    """
    from safetensors.torch import save_file

    save_file(dict(tensors), str(path), metadata=dict(metadata) if metadata else None)
    if metadata and len(metadata) > 1:
        _sort_header_metadata(Path(path))


def _sort_header_metadata(path: Path) -> None:
    """Rewrite a safetensors header in place with its ``__metadata__`` keys in sorted order."""
    with path.open("r+b") as handle:
        length = int.from_bytes(handle.read(_HEADER_LENGTH_BYTES), "little")
        header = json.loads(handle.read(length))
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) > length:  # never: the same keys and values, only reordered
            raise ValueError(f"cannot sort the safetensors header of {path}: it grew")
        handle.seek(_HEADER_LENGTH_BYTES)
        handle.write(text.ljust(length, b" "))  # the format pads headers with spaces
