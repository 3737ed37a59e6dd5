"""X-STARS' MSAD loss: vectorised maths equals a per-token loop, and its gradient trains everything.

Also holds the small helpers the X-STARS and CMID tests share (real chips, ``pretrain`` runs).
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from backend.models import ModalityConfig, ModelConfig, build_model
from backend.training.losses.msad import MSADLoss, msad_token_losses
from tests.backend.conftest import run_backend
from tests.conftest import SHARED_DATA, shared_path

FLOODS = SHARED_DATA / "sen1floods11"
TINY_HEADS = ["-O", "msad_dim=64", "-O", "dino_dim=64", "-O", "dino_hidden=64", "-O", "dino_bottleneck=32"]


@functools.lru_cache(maxsize=4)
def real_batch(crop: int = 64, batch: int = 8,
               first_item: int = 0) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """A normalised S1+S2 batch of real Sen1Floods11 chips and a tiny model config with its statistics."""
    from backend.training import data

    shared_path(FLOODS.name)
    config = data.DataConfig()
    sources = data.discover_sources([str(FLOODS)], config, crop).sources
    raw = data.PairedChipDataset(sources, config, crop, normalize=False)
    for name, stats in data.compute_statistics(raw, 8).items():
        config.modalities[name].mean, config.modalities[name].std = stats["mean"], stats["std"]
    dataset = data.PairedChipDataset(sources, config, crop)
    chips = data.collate([dataset[first_item + i] for i in range(batch)])
    dataset.close()
    modalities = {name: ModalityConfig(list(m.bands), list(m.mean), list(m.std))
                  for name, m in config.modalities.items()}
    model_config = ModelConfig(dim=32, heads=4, sar_depth=1, optical_depth=2, joint_depth=1,
                               modalities=modalities)
    return chips, model_config


def run_pretrain(out: Path, *args: str, steps: int = 24, timeout: float = 240) -> list[dict[str, float]]:
    """Run ``python -m backend pretrain`` on Sen1Floods11 with a tiny model; return metrics rows."""
    shared_path(FLOODS.name)
    proc = run_backend("pretrain", "--data", FLOODS, "--out", out, "--steps", steps, "--warmup", "3", "--lr",
                       "1e-3", "--crop", "48", "--batch-size", "8", "--stats-samples", "8", "--save-every",
                       "1000", *args, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in rows]


def first_and_last(rows: list[dict[str, float]], key: str = "loss", n: int = 5) -> tuple[float, float]:
    values = [row[key] for row in rows]
    assert len(values) >= 2 * n
    return sum(values[:n]) / n, sum(values[-n:]) / n


def loop_reference(e_a: torch.Tensor, e_b: torch.Tensor, tau: float = 1.0,
                   smoothing: float = 0.3) -> torch.Tensor:
    """The published per-token loop, written plainly, with the losses stacked (not torch.tensor'd)."""
    per_token = []
    for t in range(e_a.shape[1]):
        a, b = e_a[:, t], e_b[:, t]
        logits = b @ a.T / tau
        targets = F.softmax(tau * (a @ a.T + b @ b.T) / 2, dim=-1)
        loss_b = F.cross_entropy(logits, targets, reduction="none", label_smoothing=smoothing)
        loss_a = F.cross_entropy(logits.T, targets.T, reduction="none", label_smoothing=smoothing)
        per_token.append(((loss_a + loss_b) / 2).mean())
    return torch.stack(per_token)


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_vectorised_msad_equals_per_token_loop(tau: float) -> None:
    generator = torch.Generator().manual_seed(0)
    e_a = torch.randn(6, 17, 24, generator=generator, dtype=torch.float64)
    e_b = torch.randn(6, 17, 24, generator=generator, dtype=torch.float64)
    expected = loop_reference(e_a, e_b, tau)
    torch.testing.assert_close(msad_token_losses(e_a, e_b, tau), expected, atol=1e-5, rtol=0)


def test_msad_module_equals_loop_through_its_heads() -> None:
    torch.manual_seed(0)
    msad = MSADLoss(32, proj_dim=48).eval()  # eval: no dropout, so both paths see the same heads
    tokens_a, tokens_b = torch.randn(5, 9, 32), torch.randn(5, 9, 32)
    e_a = torch.stack([msad.head_a(msad.shared(tokens_a[:, t])) for t in range(9)], dim=1)
    e_b = torch.stack([msad.head_b(msad.shared(tokens_b[:, t])) for t in range(9)], dim=1)
    torch.testing.assert_close(msad(tokens_a, tokens_b), loop_reference(e_a, e_b).mean(), atol=1e-5, rtol=0)


def test_msad_gradient_reaches_both_encoders_and_all_three_heads() -> None:
    chips, config = real_batch()
    torch.manual_seed(0)
    model = build_model(config)
    msad = MSADLoss(config.dim, proj_dim=64)
    loss = msad(model.s2_encoder(chips["optical"]), model.s1_encoder(chips["sar"]))
    loss.backward()
    assert torch.isfinite(loss)
    modules = [("optical encoder", model.s2_encoder), ("radar encoder", model.s1_encoder),
               ("shared head P", msad.shared), ("head P_a", msad.head_a), ("head P_b", msad.head_b)]
    for name, module in modules:
        for param_name, parameter in module.named_parameters():
            assert parameter.grad is not None, f"{name}.{param_name} got no gradient"
        assert any(p.grad.abs().sum() > 0 for p in module.parameters()), f"{name} gradient is all zero"
    assert msad.shared.project.weight.grad.abs().sum() > 0
    assert msad.head_a.hidden.weight.grad.abs().sum() > 0 and msad.head_b.hidden.weight.grad.abs().sum() > 0


def test_msad_rejects_misaligned_grids() -> None:
    with pytest.raises(ValueError, match="matching token grids"):
        msad_token_losses(torch.randn(4, 9, 8), torch.randn(4, 16, 8))
