"""Self-distillation pieces shared by X-STARS (DINO base loss) and CMID (dense local loss).

A student network is trained to match the output distribution of a teacher whose weights are
an exponential moving average (EMA) of the student's. Collapse is avoided as in DINO: the
teacher's logits are *centred* (a running mean is subtracted, which prevents one prototype from
dominating) and *sharpened* (a low temperature, which prevents the uniform solution).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn


class PrototypeHead(nn.Module):
    """DINO-style head: 3-layer MLP -> bottleneck -> L2 norm -> weight-normalised prototypes.

    Args:
        in_dim: encoder width.
        out_dim: number of prototypes (65,536 in DINO; smaller here by default).
        hidden_dim: MLP width (2048 published).
        bottleneck_dim: width before the prototype layer (256 published).
        norm_last_layer: fix the prototypes' norm to 1 (DINO's default).
    """

    def __init__(self, in_dim: int, out_dim: int = 1024, hidden_dim: int = 2048,
                 bottleneck_dim: int = 256, norm_last_layer: bool = True) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim), nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim),
        )
        for module in self.mlp:
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        self.prototypes = nn.utils.parametrizations.weight_norm(
            nn.Linear(bottleneck_dim, out_dim, bias=False))
        self.prototypes.parametrizations.weight.original0.data.fill_(1.0)
        if norm_last_layer:
            self.prototypes.parametrizations.weight.original0.requires_grad = False

    def forward(self, x: Tensor) -> Tensor:
        return self.prototypes(F.normalize(self.mlp(x), dim=-1))


class CenteredDistillationLoss(nn.Module):
    """Cross-entropy from a centred, sharpened teacher distribution to the student's.

    The loss is ``-sum softmax((t - c) / tau_t) * log_softmax(s / tau_s)`` averaged over the
    leading dimensions; ``c`` is updated after each call as an EMA (momentum ``center_momentum``)
    of the teacher logits' mean, averaged over ranks when distributed. Unlike DINO, whose centre
    starts at zero, the centre is set to the first batch's teacher mean (:meth:`warm_start`): a
    zero centre leaves the first teacher targets uncentred, so the loss starts artificially low
    and climbs for the first ~``1 / (1 - momentum)`` steps before learning shows.

    Args:
        out_dim: number of prototypes.
        student_temp: student temperature (0.1 published).
        teacher_temp: teacher temperature (0.04 published); a buffer a schedule may update.
        center_momentum: EMA momentum of the centre (0.9 published).
    """

    def __init__(self, out_dim: int, student_temp: float = 0.1, teacher_temp: float = 0.04,
                 center_momentum: float = 0.9) -> None:
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(out_dim))
        # A buffer, not a float, so a schedule's current value is saved and resumed with the run.
        self.register_buffer("teacher_temp", torch.tensor(float(teacher_temp)))
        self.register_buffer("center_ready", torch.tensor(False))

    @torch.no_grad()
    def warm_start(self, teacher_logits: Tensor) -> None:
        """Set the centre from the first teacher logits seen (once per training run)."""
        if not bool(self.center_ready):
            self.center.copy_(_mean_over_ranks(teacher_logits))
            self.center_ready.fill_(True)

    def teacher_probs(self, teacher_logits: Tensor) -> Tensor:
        """Centred and sharpened teacher distribution (no gradient)."""
        return torch.softmax((teacher_logits.detach().float() - self.center) / self.teacher_temp, dim=-1)

    def cross_entropy(self, teacher_probs: Tensor, student_logits: Tensor) -> Tensor:
        log_student = F.log_softmax(student_logits.float() / self.student_temp, dim=-1)
        return -(teacher_probs * log_student).sum(-1).mean()

    @torch.no_grad()
    def update_center(self, teacher_logits: Tensor) -> None:
        """EMA update of the centre from teacher logits of any leading shape."""
        self.center.mul_(self.center_momentum).add_(_mean_over_ranks(teacher_logits),
                                                    alpha=1 - self.center_momentum)


def _mean_over_ranks(logits: Tensor) -> Tensor:
    mean = logits.detach().float().reshape(-1, logits.shape[-1]).mean(0)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(mean)
        mean /= dist.get_world_size()
    return mean


def ema_momentum(step: int, total_steps: int, base: float = 0.996, final: float = 1.0) -> float:
    """Cosine schedule of the teacher's EMA momentum from ``base`` to ``final`` over training."""
    progress = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2


def make_teacher(student: nn.Module) -> nn.Module:
    """A gradient-free copy of ``student`` to be updated by :func:`ema_update` only."""
    teacher = copy.deepcopy(student)
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``teacher = momentum * teacher + (1 - momentum) * student``, parameter by parameter.

    Buffers (e.g. normalisation statistics) are copied from the student.
    """
    for t_param, s_param in zip(teacher.parameters(), student.parameters()):
        t_param.mul_(momentum).add_(s_param.detach(), alpha=1 - momentum)
    for t_buffer, s_buffer in zip(teacher.buffers(), student.buffers()):
        t_buffer.copy_(s_buffer)
