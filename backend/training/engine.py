"""The training loop shared by every objective: optimiser, schedule, precision, DDP, checkpoints.

* AdamW; weight decay on weight matrices only (not on norms, biases, mask tokens, logit scales).
* Learning rate: linear warm-up over ``warmup`` steps, then cosine decay to ``min_lr``; the rate
  is a pure function of the step, so the schedule needs no state of its own.
* bf16 autocast on CUDA, fp32 on the CPU; gradient clipping by global norm.
* DistributedDataParallel when the job has several processes (``torchrun``); every rank reads its
  own share of the chip stream (see :mod:`backend.training.data`).
* Reproducibility: before each step the global torch RNG is seeded from ``(seed, rank, step)``,
  so the objective's random masks depend only on the step; together with the data stream and
  the restored optimiser state, a resumed run ends with the same weights, bit for bit, as an
  uninterrupted one (same device, thread count and world size).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backend import distributed as dist_utils
from backend.errors import UserError
from backend.events import Reporter
from backend.training import checkpoint as ckpt
from backend.training.data import PairedChipDataset, make_loader
from backend.training.metrics import MetricsLog
from backend.training.objective import Objective

#: Parameter-name fragments never weight-decayed (besides 1-D tensors: norms and biases).
NO_DECAY_NAMES = ("mask_token", "logit_scale", "pos_embed", "temperature")


@dataclass
class TrainOptions:
    """Settings of the loop (all from the ``pretrain`` command line)."""

    steps: int = 1000
    batch_size: int = 8
    lr: float = 1e-4
    min_lr: float = 0.0
    warmup: int = 100
    weight_decay: float = 0.05
    clip: float | None = 1.0
    save_every: int = 500
    seed: int = 0
    workers: int = 0
    log_every: int = 1
    max_steps: int | None = None
    debug_dump_weights: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def learning_rate(step: int, options: TrainOptions) -> float:
    """The rate for optimiser step ``step`` (0-based): linear warm-up, then cosine to ``min_lr``."""
    if options.warmup > 0 and step < options.warmup:
        return options.lr * (step + 1) / options.warmup
    span = max(1, options.steps - options.warmup)
    progress = min(1.0, (step - options.warmup) / span)
    return options.min_lr + 0.5 * (options.lr - options.min_lr) * (1.0 + math.cos(math.pi * progress))


def parameter_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay for weight matrices, none for norms, biases and special tokens."""
    decay, no_decay = [], []
    for name, parameter in module.named_parameters():
        if not parameter.requires_grad:
            continue
        if parameter.ndim < 2 or any(tag in name for tag in NO_DECAY_NAMES):
            no_decay.append(parameter)
        else:
            decay.append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def step_seed(seed: int, rank: int, step: int) -> int:
    """Seed of the objective's randomness at ``step`` on ``rank`` (independent streams)."""
    digest = hashlib.blake2b(f"{seed}/{rank}/{step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def weights_digest(module: nn.Module) -> str:
    """SHA-256 over every tensor of ``module``'s state (names and raw bytes)."""
    return state_digest(module.state_dict())


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names and raw bytes of a state_dict's tensors."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


class Trainer:
    """Runs an :class:`Objective` over the chip stream and checkpoints it into ``run_dir``.

    Args:
        objective: the objective (holding the encoder and its heads), on the CPU.
        dataset: the chip stream.
        options: loop settings.
        run_dir: output folder.
        reporter: progress and log events (only rank 0 reports).
        device: where to train.
        dist_info: this process's rank and the world size.
        run_record: JSON-able settings stored in every state file (objective name and settings,
            model and data configs), so ``--resume`` can rebuild the run.
        provenance: extra entries for the saved model's provenance.
    """

    def __init__(self, objective: Objective, dataset: PairedChipDataset, options: TrainOptions, run_dir: Path,
                 reporter: Reporter, device: torch.device, dist_info: dist_utils.DistInfo,
                 run_record: dict[str, Any], provenance: dict[str, Any] | None = None) -> None:
        self.objective = objective.to(device)
        self.dataset = dataset
        self.options = options
        self.run_dir = Path(run_dir)
        self.reporter = reporter
        self.device = device
        self.dist = dist_info
        self.run_record = run_record
        self.provenance = provenance or {}
        self.optimizer = torch.optim.AdamW(parameter_groups(self.objective, options.weight_decay),
                                           lr=options.lr, betas=(0.9, 0.95))
        self.step = 0
        self.last_saved_step: int | None = None
        self.model: nn.Module = self.objective
        if dist_info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(
                self.objective, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=bool(getattr(self.objective, "find_unused_parameters", False)))

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"step": self.step, "lr": learning_rate(max(0, self.step - 1), self.options)},
            "rng": ckpt.capture_rng(),
            "data": {"seed": self.dataset.seed, "next_item": self.step * self.options.batch_size
                     * self.dist.world_size, "world_size": self.dist.world_size,
                     "local_batch": self.options.batch_size},
            "options": self.options.to_dict(),
            "run": self.run_record,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved state (weights, optimiser, step, RNG)."""
        fallback = state.get("resumed_from")
        if fallback and self.dist.is_main:
            self.reporter.warning(f"the latest checkpoint is damaged ({fallback['reason']}); resuming from "
                                  f"the previous one in {fallback['path']} (step {fallback['step']})")
        data = state.get("data", {})
        same_layout = (data.get("world_size", 1) == self.dist.world_size
                       and data.get("local_batch") == self.options.batch_size)
        if not same_layout:
            self.reporter.warning("resuming with a different world size or batch size: the data order and "
                                  "results will differ from an uninterrupted run")
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.last_saved_step = self.step
        ckpt.restore_rng(state["rng"])

    # -- saving --------------------------------------------------------------------------------
    def save(self) -> None:
        """Checkpoint on rank 0; every rank fails together if the save fails."""
        error: UserError | None = None
        if self.dist.is_main:
            encoder = self.objective.export_encoder()
            encoder.config.provenance = {**encoder.config.provenance, **self.provenance, "step": self.step}
            try:
                ckpt.save_checkpoint(self.run_dir, encoder, self.state_dict())
            except UserError as exc:
                if self.last_saved_step is not None:
                    exc.args = (f"{exc.args[0]} (step {self.last_saved_step})",)
                error = exc
        if not dist_utils.all_ok(error is None):
            raise error or UserError("rank 0 could not save the checkpoint", kind="io_error")
        self.last_saved_step = self.step

    # -- loop ----------------------------------------------------------------------------------
    def train(self, on_step: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
        """Train from ``self.step`` to ``options.steps`` (or ``max_steps``); return a summary."""
        options = self.options
        stop = options.steps if options.max_steps is None else min(options.steps, options.max_steps)
        start = self.step
        metrics = None
        if self.dist.is_main:
            if ckpt.remove_stale_temporaries(self.run_dir):
                self.reporter.log("removed a half-written checkpoint left by an interrupted run")
            metrics = MetricsLog(self.run_dir, resume_step=start)
        loader = make_loader(self.dataset, options.batch_size, start, stop, self.dist.rank,
                             self.dist.world_size, options.workers)
        use_autocast = self.device.type == "cuda"
        global_batch = options.batch_size * self.dist.world_size
        parameters = [p for p in self.objective.parameters() if p.requires_grad]
        self.model.train()
        history: list[dict[str, float]] = []
        steps = range(start, stop)
        iterator = (self.reporter.track(steps, total=len(steps), description="pretraining", unit="step")
                    if self.dist.is_main else steps)
        batches = iter(loader)
        report_every = max(1, len(steps) // 10)
        window_start, window_samples = time.perf_counter(), 0
        pending: list[dict[str, torch.Tensor]] = []
        for step in iterator:
            batch = _to_device(next(batches), self.device)
            torch.manual_seed(step_seed(options.seed, self.dist.rank, step))
            lr = learning_rate(step, options)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_autocast):
                losses = self.model(batch)
            loss = losses["loss"]
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = (torch.nn.utils.clip_grad_norm_(parameters, options.clip) if options.clip
                         else torch.zeros((), device=self.device))
            self.optimizer.step()
            self.objective.after_step(step, options.steps)
            self.step = step + 1
            window_samples += global_batch
            pending.append({**{k: v.detach().float() for k, v in losses.items() if v.numel() == 1},
                            "grad_norm": grad_norm.detach().float()})
            if self.step % options.log_every == 0 or self.step == stop:
                values = self._reduce(pending)
                pending = []
                if not math.isfinite(values["loss"]):
                    raise UserError(f"the loss became {values['loss']} at step {self.step}; try a lower --lr "
                                    f"or --clip (last checkpoint: step {self.last_saved_step})",
                                    kind="diverged")
                elapsed = time.perf_counter() - window_start
                values["lr"] = lr
                values["samples_per_s"] = window_samples / elapsed if elapsed > 0 else 0.0
                window_start, window_samples = time.perf_counter(), 0
                history.append({"step": self.step, **values})
                if metrics is not None:
                    metrics.log(self.step, values)
                if on_step is not None:
                    on_step(self.step, values)
                if self.dist.is_main and (self.step % report_every == 0 or self.step == stop):
                    self.reporter.log(f"step {self.step}/{options.steps} loss {values['loss']:.4f} "
                                      f"lr {lr:.2e} {values['samples_per_s']:.1f} samples/s")
            if self.step % options.save_every == 0 or self.step == stop:
                self.save()
        summary: dict[str, Any] = {"steps_done": self.step, "start_step": start}
        if history:
            summary["final_loss"] = history[-1]["loss"]
            summary["first_loss"] = history[0]["loss"]
        if metrics is not None:
            metrics.close()
            plot = metrics.plot()
            summary["plot"] = str(plot) if plot else None
        if options.debug_dump_weights:
            debug = self.run_dir / "debug"
            debug.mkdir(parents=True, exist_ok=True)
            (debug / f"weights-rank{self.dist.rank}.sha256").write_text(weights_digest(self.objective) + "\n")
        dist_utils.barrier()
        return summary

    def _reduce(self, pending: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """Mean of the pending step values over steps and ranks, as Python floats."""
        keys = sorted(pending[0])
        stacked = torch.stack([torch.stack([p[k] for k in keys]) for p in pending]).mean(dim=0)
        if self.dist.enabled:
            torch.distributed.all_reduce(stacked)
            stacked /= self.dist.world_size
        return dict(zip(keys, stacked.cpu().tolist()))
