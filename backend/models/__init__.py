"""CROMA encoders: architecture, ALiBi biases, weight loading and preprocessing.

The names below are re-exported lazily (PEP 562): ``from backend.models import ModelConfig`` or
``import backend.models.config`` does not import torch; only the names that need it
(architecture, ALiBi, weights, ``normalize`` on tensors) import their module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("AlibiBias", "alibi_bias", "alibi_bias_between", "alibi_slopes", "clear_alibi_cache",
                     "reference_alibi_loop"), "alibi"),
    **dict.fromkeys(("S1_BANDS", "S2_BANDS", "ModalityConfig", "ModelConfig", "base_config", "large_config"),
                    "config"),
    **dict.fromkeys(("Attention", "CromaModel", "CrossAttention", "FeedForward", "GapFFN", "JointEncoder",
                     "TransformerBlock", "ViTEncoder", "attention_backend", "build_model", "patchify",
                     "random_keep_indices", "unpatchify"), "croma"),
    "normalize": "preprocessing",
    **dict.fromkeys(("TOP_LEVEL_KEYS", "flatten_official", "load_encoder", "load_model_config",
                     "official_state_dicts", "parameter_count", "read_torch_checkpoint", "save_model"),
                    "weights"),
}

__all__ = [
    "S1_BANDS",
    "S2_BANDS",
    "TOP_LEVEL_KEYS",
    "AlibiBias",
    "Attention",
    "CromaModel",
    "CrossAttention",
    "FeedForward",
    "GapFFN",
    "JointEncoder",
    "ModalityConfig",
    "ModelConfig",
    "TransformerBlock",
    "ViTEncoder",
    "alibi_bias",
    "alibi_bias_between",
    "alibi_slopes",
    "attention_backend",
    "base_config",
    "build_model",
    "clear_alibi_cache",
    "flatten_official",
    "large_config",
    "load_encoder",
    "load_model_config",
    "normalize",
    "official_state_dicts",
    "parameter_count",
    "patchify",
    "random_keep_indices",
    "read_torch_checkpoint",
    "reference_alibi_loop",
    "save_model",
    "unpatchify",
]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first access (and cache the name here)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
