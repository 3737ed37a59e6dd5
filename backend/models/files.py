"""Model file names and the model config reader, without torch.

A Terraprobe model is ``name.safetensors`` (weights) beside ``name.json`` (its config); anything
else with a torch suffix is a checkpoint. Reading a model's config, hashing its files and the
embedding-cache lookup need only this module (and :mod:`backend.models.config`), so commands that
start from cached embeddings never import torch to learn about the model.

* ``model_paths(path) -> (weights, config)``: the pair named by either file or the bare stem.
* ``is_model_file(path) -> bool``: a Terraprobe model rather than a torch checkpoint.
* ``read_model_file_config(path) -> ModelConfig``: the config of a Terraprobe model file.
"""

from __future__ import annotations

from pathlib import Path

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
