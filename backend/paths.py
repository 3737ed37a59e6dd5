"""Where the backend finds what ships with the plugin."""

from __future__ import annotations

from pathlib import Path

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
RESOURCES = PLUGIN_ROOT / "resources"
MODELS_DIR = RESOURCES / "models"
#: The small CROMA pretrained by ``pretrain`` on the shared S1/S2 imagery (issue 7).
BUNDLED_MODEL = MODELS_DIR / "terraprobe-croma-small.safetensors"


def bundled_model() -> Path | None:
    """The bundled CROMA model (``evaluate``'s *bundled* row), or ``None`` when this checkout has none yet.

    Not the default of ``embed``: that is ``backend.inference.model.default_model_path``.
    """
    return BUNDLED_MODEL if BUNDLED_MODEL.exists() else None
