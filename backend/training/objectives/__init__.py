"""Registry of pretraining objectives: ``pretrain --objective NAME`` → an :class:`Objective` class.

Each entry maps a command-line name to ``"module:ClassName"`` and is imported only when asked
for, so ``--help`` never imports torch. Adding an objective is one line in :data:`OBJECTIVES`.

Construction contract (what :func:`build_objective` calls)::

    class MyObjective(Objective):
        name = "mine"

        @classmethod
        def build(cls, config: ModelConfig, settings: dict[str, Any]) -> "MyObjective": ...

``config`` is the encoder's :class:`~backend.models.config.ModelConfig` (architecture, bands and
per-band statistics already filled in from the data). ``settings`` is a JSON-able dict with the
``pretrain`` options ``crop``, ``seed``, ``batch_size``, ``steps``, ``flips``, ``mask_ratio``,
``contrastive_weight``, ``mae_weight``, ``joint_self_bias``, ``init`` (absolute path of an
encoder to start from, or ``None``) and ``options``: the ``--objective-option KEY=VALUE`` pairs
as a dict of strings, for settings that only one objective knows. Settings are stored in the
training state, so ``--resume`` rebuilds the objective exactly.

Optional class attributes read by ``pretrain`` / the engine:

* ``required_modalities`` (tuple, default ``()``): checked against the data config before any
  data is read (``("sar", "optical")`` for CROMA and the dual encoder).
* ``handles_init`` (bool, default False): when False and ``--init MODEL`` is given, ``pretrain``
  copies that model's weights into ``export_encoder()`` after ``build``; set True if ``build``
  uses ``settings["init"]`` itself (e.g. continual pretraining with a frozen copy).
* ``find_unused_parameters`` (bool, default False): passed to DistributedDataParallel. Prefer
  freezing (``requires_grad_(False)``) parameters that no loss touches.

The objective's randomness (masks, crops inside the objective) must come from the global torch
RNG: the engine reseeds it from ``(seed, rank, step)`` before every step, which makes resumed
runs bit-identical. The batch format is documented in :mod:`backend.training.data`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from backend.errors import UserError

if TYPE_CHECKING:
    from backend.models.config import ModelConfig
    from backend.training.objective import Objective

#: command-line name -> "module:ClassName" (imported lazily)
OBJECTIVES: dict[str, str] = {
    "croma": "backend.training.objectives.croma:CromaObjective",
    "dual": "backend.training.objectives.dual:DualEncoderObjective",
    "xstars": "backend.training.objectives.xstars:XStarsObjective",
    "cmid": "backend.training.objectives.cmid:CmidObjective",
}


def objective_class(name: str) -> type[Objective]:
    """The class registered as ``name``; a clear error for unknown or not yet available ones."""
    try:
        target = OBJECTIVES[name]
    except KeyError:
        known = ", ".join(sorted(OBJECTIVES))
        raise UserError(f"unknown objective {name!r}; choose one of {known}") from None
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise UserError(f"objective {name!r} is not available in this installation") from None
        raise
    return getattr(module, class_name)


def build_objective(name: str, config: ModelConfig, settings: dict[str, Any]) -> Objective:
    """Instantiate the objective ``name`` for an encoder described by ``config``."""
    return objective_class(name).build(config, settings)
