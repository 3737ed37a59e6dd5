"""Training metrics: a CSV log, TensorBoard scalars when installed, and a PNG loss plot."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.csv"
PLOT_FILE = "loss.png"


class MetricsLog:
    """Appends one row per logged step to ``run_dir/metrics.csv`` (and TensorBoard if present).

    On resume, rows after ``resume_step`` (logged by the killed run after its last checkpoint)
    are dropped so the file reads as one uninterrupted run.

    Args:
        run_dir: the run folder.
        resume_step: the step the run continues from (0 for a new run).
        tensorboard: write TensorBoard event files to ``run_dir/tensorboard`` when importable.
    """

    def __init__(self, run_dir: str | os.PathLike[str], resume_step: int = 0,
                 tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.rows: list[dict[str, Any]] = []
        if resume_step and self.path.exists():
            with self.path.open(newline="", encoding="utf-8") as handle:
                self.rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= resume_step]
        elif self.path.exists():
            self.path.unlink()
        self._fields: list[str] = list(self.rows[0]) if self.rows else []
        self._rewrite()
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=resume_step + 1)
            except Exception:
                self._writer = None

    def _rewrite(self) -> None:
        if not self._fields:
            return
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)

    def log(self, step: int, values: dict[str, float]) -> None:
        """Record ``values`` for ``step`` (1-based: the number of optimiser steps done)."""
        row = {"step": step, **{k: float(v) for k, v in values.items()}}
        if not self._fields or any(k not in self._fields for k in row):
            self._fields = list(dict.fromkeys([*self._fields, *row]))
            self.rows.append(row)
            self._rewrite()
        else:
            self.rows.append(row)
            with self.path.open("a", newline="", encoding="utf-8") as handle:
                csv.DictWriter(handle, fieldnames=self._fields, extrasaction="ignore").writerow(row)
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, float(value), step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def plot(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Draw every loss column against the step into a PNG (None when nothing was logged)."""
        if not self.rows:
            return None
        import warnings

        import matplotlib

        matplotlib.use("Agg")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a system-wide matplotlib may warn about Axes3D
            import matplotlib.pyplot as plt

        from backend.io.atomic import atomic_path

        out = Path(path) if path else self.path.with_name(PLOT_FILE)
        keys = [k for k in self._fields if k not in NOT_LOSSES]
        steps = [int(float(r["step"])) for r in self.rows]
        figure, axis = plt.subplots(figsize=(7, 4), dpi=100)
        for key in keys:
            values = [float(r[key]) if r.get(key) not in (None, "") else float("nan") for r in self.rows]
            axis.plot(steps, values, label=key, linewidth=1.5 if key == "loss" else 1.0)
        axis.set_xlabel("step")
        axis.set_ylabel("loss")
        axis.grid(alpha=0.3)
        axis.legend(loc="upper right", fontsize=8)
        figure.tight_layout()
        with atomic_path(out) as tmp:
            figure.savefig(tmp, format="png")
        plt.close(figure)
        return out


#: Logged columns that are not losses (left off the plot).
NOT_LOSSES = frozenset({"step", "lr", "samples_per_s", "grad_norm", "temperature", "logit_scale", "epoch",
                        "momentum", "teacher_temperature", "pair_accuracy", "accuracy"})
