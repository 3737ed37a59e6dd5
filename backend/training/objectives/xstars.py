"""X-STARS: self-distillation plus dense cross-sensor alignment (MSAD), from scratch or continual.

X-STARS (Marsocci et al., IEEE JSTARS 2025) learns sensor-agnostic features by adding the MSAD
loss (:mod:`backend.training.losses.msad`) to a self-distillation base loss:
``L = L_DINO + alpha * L_MSAD`` with ``alpha = 0.1``.

**Base loss.** DINO as published: a prototype head (3-layer MLP, bottleneck 256, weight-normed
prototypes; 1024 prototypes here instead of 65,536, option ``dino_dim``) on the pooled tokens
(mean of the tokens through the model's own pooling head), an EMA teacher (momentum cosine
0.996 -> 1), teacher centring (momentum 0.9) and sharpening (teacher 0.04, student 0.1); the
prototype layer is frozen for the first ``freeze_last_layer`` steps (DINO: the first epoch).
Multi-crop is reduced to two global crops of each chip (random resized crop, area 0.4-1,
flips, light radiometric jitter — see :mod:`backend.training.losses.views`); each crop's
teacher output supervises the student on the other crop.

**Resolution handling.** MSAD compares token ``t`` of one sensor with token ``t`` of the
other, so both sensors must lie on one pixel grid. The data pipeline already resamples radar
onto the optical grid, and a coarser simulated sensor is resampled back onto the 10 m grid
(:mod:`backend.training.simulated_sensors`). MSAD then runs on the *first global crop*, which is cut with
identical geometry (box and flips) from both sensors: the crop keeps the grids aligned and the
student's crop encodings are reused, so MSAD costs no extra encoder pass. (The released code
encodes separate, unaugmented copies of the images instead.)

**Modes** (option ``mode``):

* ``scratch``: the two sensors are the radar and optical images of the paired data; both go
  through the trainable student; DINO runs on each sensor's crops (shared head and centre),
  averaged. The joint encoder is not part of X-STARS and stays frozen at its initial weights
  (recorded in the exported model's provenance). Option ``encoder`` (``pretrain
  --xstars-encoder``):

  - ``shared`` (default, the paper's form): ONE encoder for both sensors. The transformer and the
    pooling head are a single module used by both streams (radar depth = optical depth); only the
    patch embedding is per sensor, because the sensors have different band counts (2 vs 12). The
    exported model stores the shared transformer under both the radar and the optical encoder, so
    it loads and embeds like any other model.
  - ``separate``: CROMA's two modality-specific encoders (radar half as deep), each seeing one sensor.
* ``continual``: adapts an existing optical encoder (``pretrain --init MODEL``) to a new sensor
  (option ``sensor``: ``landsat-oli`` = Landsat 8/9 OLI, 7 bands at 30 m, ``rgbn`` = 4-band
  aerial). The student is a new optical encoder for the sensor's bands whose transformer is
  copied from the old encoder and whose patch embedding is mapped band by band
  (:func:`~backend.training.simulated_sensors.adapt_to_sensor`).
  DINO runs on the new sensor's crops (teacher = EMA of the student); MSAD aligns the student's
  tokens on the new sensor with the tokens of a *frozen* copy of the old encoder on the old
  sensor's image of the same crop. The export is a model whose optical stream lists the new
  sensor's bands.

Both fixes of the released code apply: MSAD has a gradient and its three heads are trained.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.errors import UserError
from backend.models import CromaModel, ModelConfig, ViTEncoder, build_model
from backend.training.losses.distillation import (
    CenteredDistillationLoss,
    PrototypeHead,
    ema_momentum,
    ema_update,
    make_teacher,
)
from backend.training.losses.msad import MSADLoss
from backend.training.losses.options import objective_options
from backend.training.losses.views import CropGeometry, ViewMaker
from backend.training.objective import Objective
from backend.training.objectives.cmid import initial_model
from backend.training.simulated_sensors import SimulatedSensor, adapt_to_sensor, get_sensor

#: Every X-STARS option with its default (published values unless noted).
DEFAULTS: dict[str, Any] = {
    "mode": "scratch",            # "scratch" or "continual"
    "encoder": "shared",          # scratch: "shared" (one encoder for both sensors, as published) or
                                  # "separate" (CROMA's radar and optical encoders)
    "sensor": "landsat-oli",      # continual: the new sensor (see backend.training.simulated_sensors.SENSORS)
    "alpha": 0.1,
    "msad_dim": 1024,
    "msad_tau": 1.0,
    "label_smoothing": 0.3,
    "msad_dropout": 0.2,
    "dino_dim": 1024,             # 65,536 published
    "dino_hidden": 2048,
    "dino_bottleneck": 256,
    "student_temp": 0.1,
    "teacher_temp": 0.04,
    "center_momentum": 0.9,
    "momentum": 0.996,
    "freeze_last_layer": 100,     # steps the DINO prototypes stay fixed (DINO: the first epoch)
    "view_size": 0,               # global crop side in px; 0 = the chip size
    "crop_scale_min": 0.4,
    "jitter": True,
    "upsample": "bilinear",       # how a coarse sensor is resampled back onto the 10 m grid
}


def _encoder(model: CromaModel, modality: str) -> tuple[ViTEncoder, nn.Module]:
    if modality == "sar":
        return model.s1_encoder, model.s1_GAP_FFN
    return model.s2_encoder, model.s2_GAP_FFN


def _frozen(module: nn.Module) -> nn.Module:
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


class XStarsObjective(Objective):
    """X-STARS pretraining (see the module docstring).

    Args:
        model: the student model (both ``sar`` and ``optical`` for ``scratch``; the already
            adapted new-sensor model for ``continual``).
        view_size: global crop side in pixels.
        old_model: ``continual`` only: the pretrained model whose optical encoder stays frozen.
        sensor: ``continual`` only: the new sensor simulated from the optical batch.
        **options: any other key of :data:`DEFAULTS`.
    """

    name = "xstars"
    #: ``build`` loads ``--init`` itself (the engine must not copy it into the exported encoder)
    handles_init = True

    def __init__(self, model: CromaModel, view_size: int, old_model: CromaModel | None = None,
                 sensor: SimulatedSensor | None = None, **options: Any) -> None:
        super().__init__()
        opts = {**DEFAULTS, **options}
        self.continual = old_model is not None
        self.model = model
        self.sensor = sensor
        self.upsample = opts["upsample"]
        self.alpha = opts["alpha"]
        self.shared = not self.continual and opts["encoder"] == "shared"
        if self.shared:
            share_encoder(model)        # idempotent; checks the depths
        self.base_momentum = opts["momentum"]
        self.freeze_last_layer = int(opts["freeze_last_layer"])
        if self.freeze_last_layer < 0:
            raise UserError("objective option freeze_last_layer must be 0 or more steps")
        # optimiser steps taken (a buffer: saved and resumed with the run, like the DINO centre)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        # DDP must tolerate the prototypes' missing gradient while they are frozen
        self.find_unused_parameters = self.freeze_last_layer > 0
        if self.continual:
            if sensor is None:
                raise ValueError("continual X-STARS needs the new sensor")
            self.old_model = _frozen(old_model.eval())
            self.old_bands = list(old_model.config.modalities["optical"].bands)
            self.sensors = ("optical",)
        else:
            missing = {"sar", "optical"} - set(model.modalities)
            if missing:
                raise UserError("X-STARS from scratch aligns radar and optical images: the data must "
                                f"provide both (missing: {', '.join(sorted(missing))})")
            self.sensors = ("optical", "sar")
            _frozen(model.joint_encoder)
            model.config.joint_encoder_trained = False
            model.config.provenance = {**model.config.provenance, "joint_encoder":
                                       "untrained (X-STARS trains the radar and optical encoders): "
                                       "embed one modality at a time",
                                       "xstars_encoder": opts["encoder"]}
        dim = model.config.dim
        self.views = ViewMaker(view_size, model.config.patch_size, (opts["crop_scale_min"], 1.0),
                               opts["jitter"])
        self.dino_head = PrototypeHead(dim, opts["dino_dim"], opts["dino_hidden"], opts["dino_bottleneck"])
        self.teacher = make_teacher(nn.ModuleDict({"model": model, "head": self.dino_head}))
        self.dino = CenteredDistillationLoss(opts["dino_dim"], opts["student_temp"], opts["teacher_temp"],
                                             opts["center_momentum"])
        self.msad = MSADLoss(dim, opts["msad_dim"], opts["msad_tau"], opts["label_smoothing"],
                             opts["msad_dropout"])

    @classmethod
    def build(cls, config: ModelConfig, settings: dict[str, Any]) -> XStarsObjective:
        """Construct from ``pretrain`` settings (``init``, ``crop`` and ``options``)."""
        opts = objective_options(settings, DEFAULTS, cls.name)
        if opts["mode"] not in ("scratch", "continual"):
            raise UserError(f"objective option mode={opts['mode']!r}: choose scratch or continual")
        view_size = opts.pop("view_size") or int(settings.get("crop") or 96)
        view_size -= view_size % config.patch_size
        if opts["encoder"] not in ("shared", "separate"):
            raise UserError(f"objective option encoder={opts['encoder']!r}: choose shared or separate")
        if opts.pop("mode") == "scratch":
            if opts["encoder"] == "shared":
                config = ModelConfig.from_dict({**config.to_dict(), "sar_depth": config.optical_depth})
            return cls(initial_model(config, settings.get("init")), view_size, **opts)
        if settings.get("init") is None:
            raise UserError("X-STARS continual pretraining adapts an existing encoder: pass --init MODEL")
        old = initial_model(config, settings["init"])
        if "optical" not in old.config.modalities:
            raise UserError("X-STARS continual pretraining adapts an optical encoder, but --init has none")
        data_optical = config.modalities.get("optical")
        if data_optical is None or list(data_optical.bands) != list(old.config.modalities["optical"].bands):
            raise UserError("X-STARS continual pretraining reads the old sensor's bands: the data's optical "
                            f"bands must be {', '.join(old.config.modalities['optical'].bands)}")
        sensor = get_sensor(opts.pop("sensor"))
        student = adapt_to_sensor(old, sensor, data_optical)
        return cls(student, view_size, old_model=old, sensor=sensor, **opts)

    def train(self, mode: bool = True) -> XStarsObjective:
        super().train(mode)
        if self.continual:
            self.old_model.eval()
        return self

    def _crops(self, batch: dict[str, Tensor]) -> tuple[dict[str, list[Tensor]], list[CropGeometry]]:
        """Two crops per sensor, the i-th crop of every sensor cut with the same geometry."""
        reference = batch["optical"]
        geometries = [self.views.geometry(reference), self.views.geometry(reference)]
        images = {"optical": reference}
        if self.continual:
            images["optical"] = self.sensor.simulate(reference, self.old_bands, self.upsample)
        else:
            images["sar"] = batch["sar"]
        crops = {m: [self.views(images[m], g).images for g in geometries] for m in self.sensors}
        return crops, geometries

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        crops, geometries = self._crops(batch)
        tokens: dict[str, list[Tensor]] = {}
        dino_losses = []
        teacher_logits_all = []
        for modality in self.sensors:
            encoder, pool = _encoder(self.model, modality)
            tokens[modality] = [encoder(crop) for crop in crops[modality]]
            student_logits = [self._student_head(pool(t.mean(1))) for t in tokens[modality]]
            with torch.no_grad():
                t_encoder, t_pool = _encoder(self.teacher["model"], modality)
                teacher_logits = [self.teacher["head"](t_pool(t_encoder(crop).mean(1)))
                                  for crop in crops[modality]]
            self.dino.warm_start(torch.cat(teacher_logits))
            probs = [self.dino.teacher_probs(t) for t in teacher_logits]
            dino_losses.append((self.dino.cross_entropy(probs[0], student_logits[1])
                                + self.dino.cross_entropy(probs[1], student_logits[0])) / 2)
            teacher_logits_all.extend(teacher_logits)
        self.dino.update_center(torch.cat(teacher_logits_all))
        loss_dino = sum(dino_losses) / len(dino_losses)

        if self.continual:
            with torch.no_grad():
                old_crop = self.views(batch["optical"], geometries[0]).images
                other = self.old_model.s2_encoder(old_crop)
            loss_msad = self.msad(tokens["optical"][0], other)
        else:
            loss_msad = self.msad(tokens["optical"][0], tokens["sar"][0])
        loss = loss_dino + self.alpha * loss_msad
        return {"loss": loss, "dino": loss_dino.detach(), "msad": loss_msad.detach()}

    @property
    def prototypes_frozen(self) -> bool:
        """Whether the DINO prototype layer is still held fixed (the first ``freeze_last_layer`` steps)."""
        return int(self.steps_done) < self.freeze_last_layer

    def _student_head(self, pooled: Tensor) -> Tensor:
        """The student's DINO logits; while frozen, the prototype layer gets no gradient.

        DINO zeroes the last layer's gradient during the first epoch, which stabilises the start;
        here the prototype weight is used detached, so its gradient stays ``None`` and the
        optimiser (weight decay included) leaves it untouched.
        """
        if not self.prototypes_frozen:
            return self.dino_head(pooled)
        head = self.dino_head
        return F.linear(F.normalize(head.mlp(pooled), dim=-1), head.prototypes.weight.detach())

    def after_step(self, step: int, total_steps: int) -> None:
        self.steps_done.fill_(step + 1)
        momentum = ema_momentum(step, total_steps, self.base_momentum)
        ema_update(self.teacher["model"], self.model, momentum)
        ema_update(self.teacher["head"], self.dino_head, momentum)

    def export_encoder(self) -> CromaModel:
        """The student; with a shared encoder an untied copy (each stream owns its tensors)."""
        if not self.shared:
            return self.model
        copy = build_model(self.model.config)
        copy.load_state_dict({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        return copy


def share_encoder(model: CromaModel) -> CromaModel:
    """Make ``model``'s radar stream use the optical stream's transformer and pooling head (in place).

    Only the patch embeddings stay per sensor. Needs equal radar and optical depths.

    Raises:
        UserError: when the model lacks a stream or the depths differ (e.g. an ``--init`` model).
    """
    if not {"sar", "optical"} <= set(model.modalities):
        raise UserError("a shared X-STARS encoder needs radar and optical streams")
    if model.config.sar_depth != model.config.optical_depth:
        raise UserError(f"a shared X-STARS encoder needs equal radar and optical depths (this model: "
                        f"{model.config.sar_depth} and {model.config.optical_depth}); "
                        "use --xstars-encoder separate")
    model.s1_encoder.transformer = model.s2_encoder.transformer
    model.s1_GAP_FFN = model.s2_GAP_FFN
    return model


def is_shared(model: CromaModel) -> bool:
    """Whether the radar and optical streams share one transformer (see :func:`share_encoder`)."""
    return (hasattr(model, "s1_encoder") and hasattr(model, "s2_encoder")
            and model.s1_encoder.transformer is model.s2_encoder.transformer)
