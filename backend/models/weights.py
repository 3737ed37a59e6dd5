"""Reading and writing CROMA weights: our model files and official / TorchGeo checkpoints.

* Terraprobe model file: ``name.safetensors`` (flat state_dict, float32) + ``name.json``
  (:class:`~backend.models.config.ModelConfig`: architecture, bands, statistics, provenance).
* Official release (``CROMA_base.pt`` / ``CROMA_large.pt``): a dict of five state_dicts keyed
  ``s1_encoder``, ``s1_GAP_FFN``, ``s2_encoder``, ``s2_GAP_FFN``, ``joint_encoder``.
* TorchGeo: the same tensors flattened as ``"<top>.<inner>"`` (optionally wrapped in
  ``{"state_dict": ...}`` / ``{"model": ...}`` or prefixed ``model.``).

Checkpoints are always read with ``torch.load(weights_only=True, map_location="cpu")``: a file
that would need to run code to unpickle is refused.
"""

from __future__ import annotations

import datetime
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from backend.errors import UserError
from backend.io.atomic import atomic_paths
from backend.models.config import (
    S1_BANDS,
    S2_BANDS,
    ModalityConfig,
    ModelConfig,
    base_config,
    large_config,
)
from backend.models.croma import CromaModel
from backend.models.files import is_model_file, model_paths, read_model_file_config, save_safetensors

#: The five top-level entries of the official checkpoint, in release order.
TOP_LEVEL_KEYS = ("s1_encoder", "s1_GAP_FFN", "s2_encoder", "s2_GAP_FFN", "joint_encoder")
#: Wrapper keys stripped from TorchGeo / Lightning style checkpoints.
_WRAPPERS = ("state_dict", "model_state_dict", "model")
_PREFIXES = ("model.", "module.")
#: Keys some TorchGeo versions may store for the ALiBi bias; derived data, never weights.
_DERIVED_KEY = re.compile(r"(^|\.)attn_bias$")
SAFETENSORS_FORMAT = "terraprobe-croma"
#: How torch's two file formats start: a zip archive, or a pickle (PROTO opcode).
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80


# -- official layout ----------------------------------------------------------------------------
def official_state_dicts(model: CromaModel) -> dict[str, OrderedDict[str, Tensor]]:
    """The model's weights in the official five-key layout (only the sub-modules it has)."""
    return {top: getattr(model, top).state_dict() for top in TOP_LEVEL_KEYS if hasattr(model, top)}


def flatten_official(nested: Mapping[str, Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """``{top: {inner: tensor}}`` -> ``{"top.inner": tensor}`` (TorchGeo's flat form)."""
    return {f"{top}.{inner}": tensor for top, sub in nested.items() for inner, tensor in sub.items()}


def _unwrap(obj: Any, path: Path) -> dict[str, Tensor]:
    """Reduce any supported checkpoint object to a flat ``{key: tensor}`` dict."""
    for _ in range(3):
        if isinstance(obj, Mapping) and len(obj) and not any(k in obj for k in TOP_LEVEL_KEYS):
            wrapper = next((k for k in _WRAPPERS if isinstance(obj.get(k), Mapping)), None)
            if wrapper is not None:
                obj = obj[wrapper]
                continue
        break
    if not isinstance(obj, Mapping):
        raise UserError(f"{path}: not a CROMA checkpoint (found a {type(obj).__name__}, expected a dict)")
    if any(isinstance(obj.get(top), Mapping) for top in TOP_LEVEL_KEYS):
        extra = [k for k in obj if k not in TOP_LEVEL_KEYS]
        if extra:
            raise UserError(f"{path}: unexpected top-level entries {extra[:5]} in an official-layout "
                            f"checkpoint (expected only {', '.join(TOP_LEVEL_KEYS)})")
        obj = flatten_official(obj)
    flat = dict(obj)
    for prefix in _PREFIXES:
        if flat and all(k.startswith(prefix) for k in flat):
            flat = {k[len(prefix):]: v for k, v in flat.items()}
    not_tensors = [k for k, v in flat.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise UserError(f"{path}: not a CROMA state_dict ({len(not_tensors)} entries are not tensors, "
                        f"e.g. {not_tensors[:3]})")
    return {k: v for k, v in flat.items() if not _DERIVED_KEY.search(k)}


def _unpickling_detail(message: str) -> str:
    """The informative line of torch's long weights-only error message."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line or "Unsupported" in line or "unsupported" in line:
            return line[:200]
    return (lines[0] if lines else "unpickling failed")[:200]


def _check_torch_signature(path: Path) -> None:
    """Refuse a file that is neither of torch's formats (a zip archive, or a pickle: protocol 2+)."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(_ZIP_MAGIC) or (len(head) >= 2 and head[0] == _PICKLE_PROTO and head[1] >= 2):
        return
    raise UserError(f"{path} is not a PyTorch checkpoint (a .pt/.pth file is a zip archive or a pickle; "
                    f"this file starts with {head!r})")


def read_torch_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], str]:
    """Read an official or TorchGeo checkpoint safely.

    Returns:
        The flat state_dict and the layout found (``"official"`` or ``"flat"``).

    Raises:
        UserError: missing/unreadable file, or a pickle that would need to run code.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    _check_torch_signature(path)
    try:
        mmap = zipfile.is_zipfile(path)
        obj = torch.load(path, weights_only=True, map_location="cpu", mmap=mmap)
    except pickle.UnpicklingError as exc:
        detail = _unpickling_detail(str(exc))
        if "global" in detail.lower():
            raise UserError(f"refused to load {path}: it contains Python objects other than tensors, "
                            f"which could run code when unpickled ({detail})") from None
        raise UserError(f"cannot read checkpoint {path}: not a weights-only PyTorch file "
                        f"({detail})") from None
    except (RuntimeError, OSError, EOFError, ValueError, AttributeError, IndexError, KeyError, TypeError,
            struct.error) as exc:  # a malformed pickle trips the unpickler anywhere
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"cannot read checkpoint {path}: {first}") from None
    layout = "official" if isinstance(obj, Mapping) and any(
        isinstance(obj.get(top), Mapping) for top in TOP_LEVEL_KEYS) else "flat"
    return _unwrap(obj, path), layout


# -- config inference -------------------------------------------------------------------------
def _depth(flat: Mapping[str, Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(m.group(1)) for k in flat if (m := pattern.match(k))}
    return max(indices) + 1 if indices else 0


def infer_config(flat: Mapping[str, Tensor], heads: int = 16, patch_size: int = 8) -> ModelConfig:
    """Infer a :class:`ModelConfig` from checkpoint shapes (base, large, or a custom size).

    Head count is not visible in the shapes; the released models use 16.
    """
    modalities: dict[str, ModalityConfig] = {}
    dims: list[int] = []
    mlp_ratio = 4
    for name, top, bands in (("sar", "s1_encoder", S1_BANDS), ("optical", "s2_encoder", S2_BANDS)):
        weight = flat.get(f"{top}.linear_input.weight")
        if weight is None:
            continue
        if weight.ndim != 2 or weight.shape[1] % patch_size**2:
            raise UserError(f"{top}.linear_input.weight has shape {list(weight.shape)}; expected "
                            f"[dim, channels*{patch_size**2}]")
        channels = weight.shape[1] // patch_size**2
        names = list(bands) if channels == len(bands) else [f"band_{i + 1}" for i in range(channels)]
        modalities[name] = ModalityConfig(names)
        dims.append(weight.shape[0])
        hidden = flat.get(f"{top}.transformer.layers.0.1.net.0.weight")
        if hidden is not None and hidden.shape[0] % weight.shape[0] == 0:
            mlp_ratio = hidden.shape[0] // weight.shape[0]
    if not modalities:
        sample = ", ".join(list(flat)[:3])
        raise UserError(f"not a CROMA checkpoint: no s1_encoder/s2_encoder weights (first keys: {sample})")
    if len(set(dims)) > 1:
        raise UserError(f"not a consistent CROMA checkpoint: encoder widths differ ({dims})")
    dim = dims[0]
    if dim % heads:
        raise UserError(f"checkpoint width {dim} is not divisible by {heads} heads")
    depths = {"sar_depth": _depth(flat, "s1_encoder.transformer.layers."),
              "optical_depth": _depth(flat, "s2_encoder.transformer.layers."),
              "joint_depth": _depth(flat, "joint_encoder.layers.")}
    for released in (base_config(), large_config()):
        same = (released.dim == dim and mlp_ratio == 4 and all(
            depths[k] in (0, getattr(released, k)) for k in depths))
        if same:
            depths = {k: getattr(released, k) for k in depths}
            name = released.name
            break
    else:
        name = "croma-custom"
    return ModelConfig(dim=dim, heads=heads, patch_size=patch_size, mlp_ratio=mlp_ratio,
                       modalities=modalities, name=name, **depths)


# -- strict loading -----------------------------------------------------------------------------
def _few(keys: list[str], count: int = 4) -> str:
    shown = ", ".join(keys[:count])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > count else "")


def load_state_strict(model: CromaModel, flat: Mapping[str, Tensor], source: str | Path) -> CromaModel:
    """Load ``flat`` into ``model`` requiring exactly the same keys and shapes.

    ``model`` may live on the ``meta`` device: tensors are then assigned, not copied.

    Raises:
        UserError: naming the first few missing, unexpected and mismatched keys and their counts.
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(flat))
    unexpected = sorted(set(flat) - set(expected))
    mismatched = sorted(f"{k} {list(flat[k].shape)} != {list(expected[k])}" for k in set(expected) & set(flat)
                        if tuple(flat[k].shape) != expected[k])
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_few(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_few(unexpected)})")
    if mismatched:
        problems.append(f"{len(mismatched)} with wrong shape ({_few(mismatched)})")
    if problems:
        raise UserError(f"{source} does not match a {model.config.name} model "
                        f"({len(expected)} tensors expected): " + "; ".join(problems))
    tensors = {k: v.to(torch.float32) for k, v in flat.items()}
    # NaN/inf weights would give all-NaN embeddings that still look valid: refuse them here.
    damaged = sorted(f"{k} ({int((~torch.isfinite(v)).sum())} of {v.numel()} values)"
                     for k, v in tensors.items() if not v.is_meta and not bool(torch.isfinite(v).all()))
    if damaged:
        raise UserError(f"{source} has non-finite (NaN or inf) weights in {len(damaged)} tensor(s): "
                        f"{_few(damaged)}; the model file is damaged")
    meta = any(p.is_meta for p in model.parameters())
    model.load_state_dict(tensors, strict=True, assign=meta)
    return model


def _empty_model(config: ModelConfig) -> CromaModel:
    with torch.device("meta"):
        return CromaModel(config)


# -- public API ---------------------------------------------------------------------------------
def save_model(model: CromaModel, path: str | Path,
               storage_dtype: torch.dtype = torch.float32) -> tuple[Path, Path]:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` atomically (both or neither).

    Args:
        model: the model; its ``config`` (bands, statistics, provenance) goes to the JSON file.
        path: the stem, or either file name of the pair.
        storage_dtype: float32, or float16/bfloat16 to halve the file (weights are cast back to
            float32 on load; the bundled model ships this way to keep the plugin zip small).

    Returns:
        The paths of the weights and the config written.
    """
    import json

    weights_path, config_path = model_paths(path)
    tensors = {k: v.detach().to("cpu", storage_dtype).contiguous() for k, v in model.state_dict().items()}
    with atomic_paths(weights_path, config_path) as (tmp_weights, tmp_config):
        save_safetensors(tensors, tmp_weights, metadata={"format": SAFETENSORS_FORMAT,
                                                         "name": model.config.name})
        tmp_config.write_text(json.dumps(model.config.to_dict(), indent=2) + "\n", encoding="utf-8")
    return weights_path, config_path


def load_model_config(path: str | Path, heads: int = 16) -> ModelConfig:
    """The config of a model file (JSON only) or of a checkpoint (inferred from its shapes).

    ``heads`` applies to checkpoints only (head count is invisible in shapes; released: 16).
    """
    if is_model_file(path):
        return read_model_file_config(path)
    flat, layout = read_torch_checkpoint(path)
    return _checkpoint_config(flat, layout, path, heads)


def _checkpoint_config(flat: Mapping[str, Tensor], layout: str, path: str | Path,
                       heads: int = 16) -> ModelConfig:
    config = infer_config(flat, heads=heads)
    config.provenance = {
        "source": str(Path(path).resolve()),
        "source_format": "official CROMA release" if layout == "official" else "TorchGeo / flat state_dict",
        "imported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "statistics": "none recorded: sampled from the input raster at inference",
    }
    return config


def load_encoder(path: str | Path, device: torch.device | str = "cpu", heads: int = 16) -> CromaModel:
    """Load a CROMA model from our model files or from an official / TorchGeo checkpoint.

    A model file whose config says ``"architecture": "galileo"`` is loaded by
    :func:`backend.models.galileo.load_galileo` (a ``GalileoEncoder``) instead.

    Args:
        path: ``name.safetensors`` / ``name.json`` / the stem, or a ``.pt`` checkpoint (official
            five-key dict or TorchGeo flat state_dict; base, large or custom size inferred).
        device: where to put the model.
        heads: attention heads of a ``.pt`` checkpoint (not visible in its shapes; the released
            models use 16). Our model files record their own.

    Returns:
        The model in eval mode on ``device``.

    Raises:
        UserError: unreadable or unsafe file, or keys/shapes that do not match.
    """
    if is_model_file(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        weights_path = model_paths(path)[0]
        config = load_model_config(path)
        if config.is_galileo:
            from backend.models.galileo import load_galileo

            return load_galileo(path, device)
        if not weights_path.exists():
            raise UserError(f"model weights not found: {weights_path}")
        try:
            flat = load_file(str(weights_path), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise UserError(f"cannot read model weights {weights_path}: {exc}") from None
        source: Path = weights_path
    else:
        flat, layout = read_torch_checkpoint(path)
        config = _checkpoint_config(flat, layout, path, heads)
        source = Path(path)
    model = load_state_strict(_empty_model(config), flat, source)
    return model.to(device).eval()


def parameter_count(config: ModelConfig) -> int:
    """Number of parameters of a model with ``config`` (built on the meta device, no memory)."""
    return sum(p.numel() for p in _empty_model(config).parameters())
