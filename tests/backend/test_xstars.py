"""X-STARS objective: trains from scratch and in continual mode through ``pretrain``; sensor simulation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from backend.errors import UserError
from backend.models import build_model, load_encoder, save_model
from backend.models.config import S2_BANDS
from backend.training.objectives.xstars import XStarsObjective
from backend.training.sensors import SENSORS, adapt_to_sensor, get_sensor
from tests.backend.test_msad import TINY_HEADS, first_and_last, real_batch, run_pretrain

TINY_OPTIONS = {"msad_dim": "64", "dino_dim": "64", "dino_hidden": "64", "dino_bottleneck": "32"}


def test_scratch_training_lowers_the_loss_and_exports_an_embeddable_model(tmp_path: Path) -> None:
    rows = run_pretrain(tmp_path / "run", "--objective", "xstars", *TINY_HEADS)
    first, last = first_and_last(rows)
    assert last < first, f"X-STARS loss did not fall: {first:.3f} -> {last:.3f}"
    assert first_and_last(rows, "msad")[1] < first_and_last(rows, "msad")[0]
    model = load_encoder(tmp_path / "run" / "model")
    assert set(model.modalities) == {"sar", "optical"}
    chips, _ = real_batch()
    out = model(sar=chips["sar"][:2], optical=chips["optical"][:2])
    assert out["optical_encodings"].shape == (2, 64, 32) and torch.isfinite(out["sar_encodings"]).all()


def _old_encoder(tmp_path: Path) -> Path:
    _, config = real_batch()
    torch.manual_seed(1)
    save_model(build_model(config), tmp_path / "old")
    return tmp_path / "old"


def test_continual_cli_keeps_the_frozen_copy_and_adapts_the_student(tmp_path: Path) -> None:
    old_path = _old_encoder(tmp_path)
    rows = run_pretrain(tmp_path / "run", "--objective", "xstars", "--init", str(old_path),
                        "-O", "mode=continual", "-O", "sensor=landsat", *TINY_HEADS)
    first, last = first_and_last(rows)
    assert last < first, f"continual X-STARS loss did not fall: {first:.3f} -> {last:.3f}"

    old = load_file(str(old_path) + ".safetensors")
    state = torch.load(tmp_path / "run" / "state.pt", map_location="cpu", weights_only=True)["objective"]
    frozen = {k.removeprefix("old_model."): v for k, v in state.items() if k.startswith("old_model.")}
    assert frozen and all(torch.equal(frozen[k], old[k]) for k in frozen), "the frozen old encoder changed"
    student = load_encoder(tmp_path / "run" / "model")
    assert student.config.modalities["optical"].bands == list(SENSORS["landsat"].bands)
    name = "s2_encoder.transformer.layers.0.0.to_qkv.weight"
    assert not torch.equal(student.state_dict()[name], old[name]), "the student did not train"
    landsat = torch.rand(2, 6, 32, 32)
    assert student(optical=landsat)["optical_encodings"].shape == (2, 16, 32)


def test_continual_steps_update_student_only(tmp_path: Path) -> None:
    chips, config = real_batch()
    torch.manual_seed(0)
    objective = XStarsObjective.build(config, {"crop": 64, "init": str(_old_encoder(tmp_path)),
                                               "options": {**TINY_OPTIONS, "mode": "continual",
                                                           "sensor": "rgbn"}})
    frozen_before = {k: v.clone() for k, v in objective.old_model.state_dict().items()}
    student_before = {k: v.clone() for k, v in objective.model.state_dict().items()}
    teacher_before = {k: v.clone() for k, v in objective.teacher.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=1e-3)
    for step in range(3):
        losses = objective(chips)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        objective.after_step(step, 10)
    assert all(torch.equal(v, frozen_before[k]) for k, v in objective.old_model.state_dict().items())
    assert all(p.grad is None for p in objective.old_model.parameters())
    assert any(not torch.equal(v, student_before[k]) for k, v in objective.model.state_dict().items())
    assert any(not torch.equal(v, teacher_before[k]) for k, v in objective.teacher.state_dict().items())
    for head in (objective.msad.shared, objective.msad.head_a, objective.msad.head_b):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    assert objective.export_encoder().config.modalities["optical"].bands == ["B04", "B03", "B02", "B08"]


def test_adapted_patch_embedding_copies_matching_bands() -> None:
    _, config = real_batch()
    old = build_model(config)
    new = adapt_to_sensor(old, get_sensor("landsat"))
    p2 = config.patch_size**2
    old_w = old.s2_encoder.linear_input.weight.view(config.dim, 12, p2)
    new_w = new.s2_encoder.linear_input.weight.view(config.dim, 6, p2)
    for i, band in enumerate(SENSORS["landsat"].bands):
        assert torch.equal(new_w[:, i], old_w[:, S2_BANDS.index(band)])
    assert torch.equal(new.s2_encoder.linear_input.bias, old.s2_encoder.linear_input.bias)
    assert new.config.modalities["optical"].mean == [config.modalities["optical"].mean[S2_BANDS.index(b)]
                                                     for b in SENSORS["landsat"].bands]


def test_landsat_simulation_is_30m_on_the_10m_grid() -> None:
    chips, _ = real_batch()
    optical = chips["optical"][:, :, :63, :63]
    landsat = get_sensor("landsat").simulate(optical, S2_BANDS, upsample_mode="nearest")
    assert landsat.shape == (8, 6, 63, 63)
    blocks = landsat.unfold(2, 3, 3).unfold(3, 3, 3)                       # [B, 6, 21, 21, 3, 3]
    assert torch.equal(blocks, blocks[..., :1, :1].expand_as(blocks)), "30 m pixels are not constant"
    red = optical[:, S2_BANDS.index("B04")]
    expected = red.unfold(1, 3, 3).unfold(2, 3, 3).mean((-1, -2))
    torch.testing.assert_close(landsat[:, 2, ::3, ::3], expected)
    smooth = get_sensor("landsat").simulate(chips["optical"], S2_BANDS)
    detail = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()  # noqa: E731
    assert detail(smooth) < 0.7 * detail(chips["optical"][:, [1, 2, 3, 8, 10, 11]])


def test_bad_sensor_and_missing_init_are_clear_errors() -> None:
    _, config = real_batch()
    with pytest.raises(UserError, match="unknown sensor"):
        get_sensor("spot")
    with pytest.raises(UserError, match="--init"):
        XStarsObjective.build(config, {"crop": 64, "init": None, "options": {"mode": "continual"}})
    with pytest.raises(UserError, match="no option"):
        XStarsObjective.build(config, {"crop": 64, "init": None, "options": {"alpah": "1"}})
