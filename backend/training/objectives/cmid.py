"""CMID on our ViT encoders: global contrast + dense self-distillation + masked reconstruction.

CMID (Muhtar et al., IEEE TGRS 2023) is backbone-agnostic; the published code trains ResNet-50
and Swin-B on RGB imagery. Here it trains one CROMA encoder (optical by default, or radar) of
our models. Per batch:

* **Views.** Two views of every chip: random resized crops (area 0.3-1) with horizontal and
  vertical flips and a light radiometric jitter (see :mod:`backend.training.losses.views`; the
  RGB colour jitter, grayscale, blur and solarisation of the paper are replaced by
  spectrally faithful gain/offset/noise). Each token knows its centre in the original chip.
* **Masks.** Block-wise masks on the patch grid: blocks of ``mask_block`` x ``mask_block``
  patches, ``ceil(ratio * blocks)`` of them masked (ratio 0.6 as published), independently per
  view and sample. Masked pixels are filled with the view's per-band mean and, in the
  network, a learnable mask token is *added* to the masked patch embeddings (as published).
* **Teacher.** An EMA copy of encoder, pooling head, projector and local head (momentum cosine
  0.996 -> 1) encodes the *unmasked* views; the student encodes the masked ones.
* **L_global.** MoCo v2 InfoNCE: mean of the tokens (global average pooling, as published;
  option ``global_head=gap_ffn`` puts the model's GAP-FFN before the projector, as earlier
  versions did) -> projector (Linear, ReLU, Linear to 256) -> L2 norm; positive = the teacher's
  key of the *other* view, negatives = a queue of past teacher keys (default 4096, 65,536
  published; gathered from all ranks; the first step, before the queue holds earlier keys, uses
  the batch's other keys so a query never meets its own key as a negative); temperature 0.2;
  symmetric.
* **L_local.** Dense DINO-style self-distillation: a prototype head on every token; each student
  token of one view is paired with the teacher token of the other view whose centre is nearest
  in the original chip (crop and flip aware), and only the ``match_fraction`` best-overlapping
  pairs are kept (20 of 49 published); cross-entropy between the centred, sharpened teacher
  distribution (temperature warm-up 0.04 -> 0.07 over the first 12.5 % of training) and the
  student's (temperature 0.1); symmetric.
* **L_rec.** A linear decoder maps each student token to its ``p x p x C`` pixels; focal L1
  (A2MIM form) on masked patches. Targets are in standard-score units (``4 * (x - 0.5)``: our
  [0, 1] stretch spans mean +- 2 std), the scale the published loss was tuned for. The paper's
  additional focal-frequency (FFT) term is not implemented.

Total: ``L_rec + L_global + L_local``. Options (``--objective-option KEY=VALUE``): see
:data:`DEFAULTS`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.errors import UserError
from backend.models import AlibiBias, CromaModel, ModelConfig, ViTEncoder, build_model, load_encoder, patchify
from backend.training.losses.contrastive import QueueInfoNCE
from backend.training.losses.distillation import (
    CenteredDistillationLoss,
    PrototypeHead,
    ema_momentum,
    ema_update,
    make_teacher,
)
from backend.training.losses.options import objective_options
from backend.training.losses.reconstruction import focal_l1
from backend.training.losses.views import View, ViewMaker
from backend.training.objective import Objective
from backend.training.simulated_sensors import restrict_to_modality

#: Every CMID option with its default (published values unless noted).
DEFAULTS: dict[str, Any] = {
    "modality": "optical",       # which encoder of the model CMID trains
    "view_size": 0,              # view side in px; 0 = the chip size (rounded down to the patch size)
    "crop_scale_min": 0.3,
    "mask_ratio": 0.6,
    "mask_block": 2,             # mask block side in patches (published: one output token)
    "queue_size": 4096,          # 65,536 published
    "global_head": "mean",       # "mean" (GAP -> projector, published) or "gap_ffn" (GAP-FFN -> projector)
    "proj_hidden": 2048,
    "proj_dim": 256,
    "temperature": 0.2,
    "prototypes": 2048,
    "local_hidden": 2048,
    "local_bottleneck": 256,
    "match_fraction": 0.4,       # 20 of 49 tokens published
    "student_temp": 0.1,
    "teacher_temp": 0.04,
    "teacher_temp_final": 0.07,
    "teacher_temp_warmup": 0.125,  # fraction of training (50 of 400 epochs published)
    "momentum": 0.996,
    "jitter": True,
}


def block_mask(batch: int, rows: int, cols: int, ratio: float, block: int = 1,
               device: torch.device | str = "cpu") -> Tensor:
    """Random block-wise masks ``[B, rows*cols]`` (True = masked) on a patch grid.

    The grid is covered by ``block x block`` blocks (the last row/column of blocks may be cut);
    exactly ``ceil(ratio * blocks)`` blocks are masked per sample.
    """
    block_rows, block_cols = math.ceil(rows / block), math.ceil(cols / block)
    blocks = block_rows * block_cols
    masked = math.ceil(ratio * blocks)
    order = torch.rand(batch, blocks, device=device).argsort(dim=1)
    block_masked = torch.zeros(batch, blocks, dtype=torch.bool, device=device)
    block_masked.scatter_(1, order[:, :masked], True)
    grid = block_masked.view(batch, block_rows, 1, block_cols, 1).expand(-1, -1, block, -1, block)
    grid = grid.reshape(batch, block_rows * block, block_cols * block)[:, :rows, :cols]
    return grid.reshape(batch, rows * cols)


def encode_tokens(encoder: ViTEncoder, images: Tensor, mask: Tensor | None = None,
                  mask_token: Tensor | None = None) -> Tensor:
    """Encode all tokens of ``images``, adding ``mask_token`` to the masked patch embeddings."""
    rows, cols = encoder.grid(images)
    tokens = encoder.linear_input(patchify(images, encoder.patch_size))
    if mask is not None and mask_token is not None:
        tokens = tokens + mask.unsqueeze(-1).to(tokens.dtype) * mask_token.to(tokens.dtype)
    return encoder.transformer(tokens, AlibiBias(rows, cols, encoder.heads))


def fill_masked(images: Tensor, mask: Tensor, patch_size: int) -> Tensor:
    """Replace the pixels of masked patches by each image's per-band mean."""
    rows, cols = images.shape[-2] // patch_size, images.shape[-1] // patch_size
    pixel_mask = mask.view(-1, 1, rows, 1, cols, 1).expand(-1, 1, -1, patch_size, -1, patch_size)
    pixel_mask = pixel_mask.reshape(-1, 1, rows * patch_size, cols * patch_size)
    return torch.where(pixel_mask, images.mean(dim=(2, 3), keepdim=True), images)


def nearest_token_pairs(student_centres: Tensor, teacher_centres: Tensor, keep: int) -> tuple[Tensor, Tensor]:
    """For each sample, the ``keep`` student tokens closest to some teacher token, and that token.

    Args:
        student_centres: ``[B, Ns, 2]`` token centres of the student view (source pixels).
        teacher_centres: ``[B, Nt, 2]`` token centres of the teacher view.
        keep: pairs to keep per sample.

    Returns:
        Student and teacher token indices, both ``LongTensor[B, keep]``.
    """
    distance = torch.cdist(student_centres.float(), teacher_centres.float())   # [B, Ns, Nt]
    nearest_distance, nearest = distance.min(dim=2)
    student_index = nearest_distance.topk(keep, dim=1, largest=False).indices
    return student_index, nearest.gather(1, student_index)


def _gather_tokens(tokens: Tensor, index: Tensor) -> Tensor:
    return tokens.gather(1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


class GlobalProjector(nn.Sequential):
    """MoCo v2 projector: Linear -> ReLU -> Linear (no batch norm, as in CMID's MoCo variant)."""

    def __init__(self, in_dim: int, hidden_dim: int = 2048, out_dim: int = 256) -> None:
        super().__init__(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))


class CmidObjective(Objective):
    """CMID self-supervision of one encoder of a :class:`CromaModel` (see the module docstring).

    Args:
        model: the model whose ``modality`` encoder is trained (other encoders are dropped).
        modality: ``"optical"`` or ``"sar"``.
        view_size: side of the views in pixels (multiple of the patch size).
        **options: any key of :data:`DEFAULTS`.
    """

    name = "cmid"
    #: ``build`` loads ``--init`` itself (the engine must not copy it into the exported encoder)
    handles_init = True

    def __init__(self, model: CromaModel, view_size: int, **options: Any) -> None:
        super().__init__()
        opts = {**DEFAULTS, **options}
        self.modality = opts["modality"]
        self.model = restrict_to_modality(model, self.modality)
        config = self.model.config
        self.patch_size = config.patch_size
        self.channels = len(config.modalities[self.modality].bands)
        self.views = ViewMaker(view_size, self.patch_size, (opts["crop_scale_min"], 1.0), opts["jitter"])
        self.mask_ratio = opts["mask_ratio"]
        self.mask_block = opts["mask_block"]
        self.match_fraction = opts["match_fraction"]
        self.base_momentum = opts["momentum"]
        if opts["global_head"] not in ("mean", "gap_ffn"):
            raise UserError(f"objective option global_head={opts['global_head']!r}: choose mean or gap_ffn")
        self.global_head = opts["global_head"]
        self.teacher_temp_schedule = (opts["teacher_temp"], opts["teacher_temp_final"],
                                      opts["teacher_temp_warmup"])

        self.mask_token = nn.Parameter(torch.zeros(config.dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.projector = GlobalProjector(config.dim, opts["proj_hidden"], opts["proj_dim"])
        self.local_head = PrototypeHead(config.dim, opts["prototypes"], opts["local_hidden"],
                                        opts["local_bottleneck"])
        self.decoder = nn.Linear(config.dim, self.patch_size**2 * self.channels)
        self.teacher = make_teacher(nn.ModuleDict({
            "encoder": self.encoder, "pool": self.pool, "projector": self.projector,
            "local_head": self.local_head}))
        self.contrast = QueueInfoNCE(opts["proj_dim"], opts["queue_size"], opts["temperature"])
        self.distill = CenteredDistillationLoss(opts["prototypes"], opts["student_temp"],
                                                opts["teacher_temp"])

    @property
    def encoder(self) -> ViTEncoder:
        return self.model.s1_encoder if self.modality == "sar" else self.model.s2_encoder

    @property
    def pool(self) -> nn.Module:
        return self.model.s1_GAP_FFN if self.modality == "sar" else self.model.s2_GAP_FFN

    @classmethod
    def build(cls, config: ModelConfig, settings: dict[str, Any]) -> CmidObjective:
        """Construct from ``pretrain`` settings (``init``, ``crop`` and ``options``)."""
        opts = objective_options(settings, DEFAULTS, cls.name)
        model = initial_model(config, settings.get("init"))
        view_size = opts.pop("view_size") or int(settings.get("crop") or 96)
        view_size -= view_size % config.patch_size
        return cls(model, view_size, **opts)

    def _student_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.teacher["encoder"], self.encoder), (self.teacher["pool"], self.pool),
                (self.teacher["projector"], self.projector), (self.teacher["local_head"], self.local_head)]

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        images = batch[self.modality]
        views = [self.views(images), self.views(images)]
        rows, cols = self.encoder.grid(views[0].images)
        masks = [block_mask(len(images), rows, cols, self.mask_ratio, self.mask_block, images.device)
                 for _ in views]

        student = [encode_tokens(self.encoder, fill_masked(v.images, m, self.patch_size), m, self.mask_token)
                   for v, m in zip(views, masks)]
        with torch.no_grad():
            teacher = [encode_tokens(self.teacher["encoder"], v.images) for v in views]

        loss_rec = sum(self._reconstruction(tokens, view, mask)
                       for tokens, view, mask in zip(student, views, masks)) / 2
        loss_global = self._global(student, teacher)
        loss_local = self._local(student, teacher, views)
        loss = loss_rec + loss_global + loss_local
        return {"loss": loss, "reconstruction": loss_rec.detach(), "global": loss_global.detach(),
                "local": loss_local.detach()}

    def _reconstruction(self, tokens: Tensor, view: View, mask: Tensor) -> Tensor:
        target = 4 * (patchify(view.images, self.patch_size) - 0.5)
        return focal_l1(self.decoder(tokens), target, mask)

    def _pooled(self, tokens: Tensor, pool: nn.Module) -> Tensor:
        """Global feature of ``[B, N, dim]`` tokens: their mean, through ``pool`` for ``gap_ffn``."""
        return pool(tokens.mean(1)) if self.global_head == "gap_ffn" else tokens.mean(1)

    def _global(self, student: list[Tensor], teacher: list[Tensor]) -> Tensor:
        queries = [F.normalize(self.projector(self._pooled(tokens, self.pool)), dim=-1) for tokens in student]
        with torch.no_grad():
            keys = [F.normalize(self.teacher["projector"](self._pooled(tokens, self.teacher["pool"])), dim=-1)
                    for tokens in teacher]
        loss = (self.contrast(queries[0], keys[1]) + self.contrast(queries[1], keys[0])) / 2
        self.contrast.enqueue(torch.cat(keys))
        return loss

    def _local(self, student: list[Tensor], teacher: list[Tensor], views: list[View]) -> Tensor:
        keep = max(1, round(self.match_fraction * student[0].shape[1]))
        teacher_logits_all = []
        losses = []
        for s, t in ((0, 1), (1, 0)):
            student_index, teacher_index = nearest_token_pairs(views[s].centres, views[t].centres, keep)
            student_logits = self.local_head(_gather_tokens(student[s], student_index))
            with torch.no_grad():
                teacher_logits = self.teacher["local_head"](_gather_tokens(teacher[t], teacher_index))
            self.distill.warm_start(teacher_logits)
            teacher_logits_all.append(teacher_logits)
            teacher_probs = self.distill.teacher_probs(teacher_logits)
            losses.append(self.distill.cross_entropy(teacher_probs, student_logits))
        self.distill.update_center(torch.cat(teacher_logits_all, dim=1))
        return sum(losses) / 2

    def after_step(self, step: int, total_steps: int) -> None:
        momentum = ema_momentum(step, total_steps, self.base_momentum)
        for teacher_part, student_part in self._student_pairs():
            ema_update(teacher_part, student_part, momentum)
        start, final, warmup = self.teacher_temp_schedule
        progress = min(step / max(warmup * total_steps, 1), 1.0)
        self.distill.teacher_temp.fill_(start + (final - start) * progress)

    def export_encoder(self) -> CromaModel:
        return self.model


def initial_model(config: ModelConfig, init: Any) -> CromaModel:
    """The model to start from: ``init`` (a model file path or a model) or a fresh one for ``config``."""
    if init is None:
        return build_model(config)
    if isinstance(init, CromaModel):
        return init
    model = load_encoder(Path(init))
    model.train()
    return model
