"""X-STARS objective: shared or separate encoders from scratch, continual mode, recipe fixes, OLI simulation.

Also checks the shipped Landsat 8/9 OLI model (``resources/models/terraprobe-xstars-landsat.*``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from backend.errors import UserError
from backend.models import build_model, load_encoder, save_model
from backend.models.config import S2_BANDS
from backend.paths import MODELS_DIR
from backend.training.objectives.xstars import XStarsObjective, is_shared
from backend.training.simulated_sensors import LANDSAT_OLI, adapt_to_sensor, get_sensor
from tests.backend.conftest import run_backend
from tests.backend.test_msad import TINY_HEADS, first_and_last, real_batch, run_pretrain

LANDSAT_MODEL = MODELS_DIR / "terraprobe-xstars-landsat"

TINY_OPTIONS = {"msad_dim": "64", "dino_dim": "64", "dino_hidden": "64", "dino_bottleneck": "32"}


@pytest.mark.slow
def test_scratch_training_lowers_the_loss_and_exports_an_embeddable_model(tmp_path: Path) -> None:
    rows = run_pretrain(tmp_path / "run", "--objective", "xstars", *TINY_HEADS)
    first, last = first_and_last(rows)
    assert last < first, f"X-STARS loss did not fall: {first:.3f} -> {last:.3f}"
    assert first_and_last(rows, "msad")[1] < first_and_last(rows, "msad")[0]
    model = load_encoder(tmp_path / "run" / "model")
    assert set(model.modalities) == {"sar", "optical"}
    assert model.config.provenance["xstars_encoder"] == "shared"          # the paper's form is the default
    state = model.state_dict()
    shared = [k for k in state if k.startswith("s2_encoder.transformer.")]
    assert shared and all(torch.equal(state[k], state[k.replace("s2_", "s1_", 1)]) for k in shared)
    chips, _ = real_batch()
    out = model(sar=chips["sar"][:2], optical=chips["optical"][:2])
    assert out["optical_encodings"].shape == (2, 64, 32) and torch.isfinite(out["sar_encodings"]).all()


def _old_encoder(tmp_path: Path) -> Path:
    _, config = real_batch()
    torch.manual_seed(1)
    save_model(build_model(config), tmp_path / "old")
    return tmp_path / "old"


@pytest.mark.slow
def test_continual_cli_keeps_the_frozen_copy_and_adapts_the_student(tmp_path: Path) -> None:
    old_path = _old_encoder(tmp_path)
    rows = run_pretrain(tmp_path / "run", "--objective", "xstars", "--init", str(old_path),
                        "-O", "mode=continual", "-O", "sensor=landsat-oli", *TINY_HEADS)
    first, last = first_and_last(rows)
    assert last < first, f"continual X-STARS loss did not fall: {first:.3f} -> {last:.3f}"

    old = load_file(str(old_path) + ".safetensors")
    state = torch.load(tmp_path / "run" / "state.pt", map_location="cpu", weights_only=True)["objective"]
    frozen = {k.removeprefix("old_model."): v for k, v in state.items() if k.startswith("old_model.")}
    assert frozen and all(torch.equal(frozen[k], old[k]) for k in frozen), "the frozen old encoder changed"
    student = load_encoder(tmp_path / "run" / "model")
    assert student.config.modalities["optical"].bands == list(LANDSAT_OLI.bands)
    name = "s2_encoder.transformer.layers.0.0.to_qkv.weight"
    assert not torch.equal(student.state_dict()[name], old[name]), "the student did not train"
    landsat = torch.rand(2, 7, 32, 32)
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
    new = adapt_to_sensor(old, get_sensor("landsat-oli"))
    p2 = config.patch_size**2
    old_w = old.s2_encoder.linear_input.weight.view(config.dim, 12, p2)
    new_w = new.s2_encoder.linear_input.weight.view(config.dim, 7, p2)
    for i, band in enumerate(LANDSAT_OLI.bands):
        assert torch.equal(new_w[:, i], old_w[:, S2_BANDS.index(band)])
    assert torch.equal(new.s2_encoder.linear_input.bias, old.s2_encoder.linear_input.bias)
    assert new.config.modalities["optical"].mean == [config.modalities["optical"].mean[S2_BANDS.index(b)]
                                                     for b in LANDSAT_OLI.bands]


def test_oli_simulation_has_the_seven_oli_bands_at_30m_on_the_10m_grid() -> None:
    chips, _ = real_batch()
    assert get_sensor("landsat") is LANDSAT_OLI and LANDSAT_OLI.name == "landsat-oli"
    assert LANDSAT_OLI.native_bands == ("B1", "B2", "B3", "B4", "B5", "B6", "B7")
    assert dict(zip(LANDSAT_OLI.native_bands, LANDSAT_OLI.bands))["B5"] == "B8A"   # NIR, not red edge
    optical = chips["optical"][:, :, :63, :63]
    landsat = LANDSAT_OLI.simulate(optical, S2_BANDS, upsample_mode="nearest")
    assert landsat.shape == (8, 7, 63, 63)
    assert float(landsat.min()) >= 0 and float(landsat.max()) <= 1 and float(landsat.std()) > 0.01
    blocks = landsat.unfold(2, 3, 3).unfold(3, 3, 3)                       # [B, 7, 21, 21, 3, 3]
    assert torch.equal(blocks, blocks[..., :1, :1].expand_as(blocks)), "30 m pixels are not constant"
    for oli, s2 in ((3, "B04"), (4, "B8A"), (6, "B12")):
        band = optical[:, S2_BANDS.index(s2)]
        expected = band.unfold(1, 3, 3).unfold(2, 3, 3).mean((-1, -2))
        torch.testing.assert_close(landsat[:, oli, ::3, ::3], expected)
    smooth = LANDSAT_OLI.simulate(chips["optical"], S2_BANDS)
    assert float(smooth.min()) >= 0 and float(smooth.max()) <= 1
    detail = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()  # noqa: E731
    assert detail(smooth) < 0.7 * detail(chips["optical"][:, [S2_BANDS.index(b) for b in LANDSAT_OLI.bands]])


def _scratch(config: object, **options: str) -> XStarsObjective:
    return XStarsObjective.build(config, {"crop": 64, "init": None, "options": {**TINY_OPTIONS, **options}})


@pytest.mark.slow
def test_shared_encoder_is_one_transformer_trained_by_both_sensors() -> None:
    chips, config = real_batch()
    torch.manual_seed(0)
    objective = _scratch(config, freeze_last_layer="0")
    model = objective.model
    assert is_shared(model) and model.s1_GAP_FFN is model.s2_GAP_FFN
    assert model.config.sar_depth == model.config.optical_depth == 2
    assert is_shared(objective.teacher["model"]), "the EMA teacher must share its encoder too"
    shared_params = list(model.s2_encoder.transformer.parameters())
    optimizer = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for step in range(12):
        out = objective(chips)
        optimizer.zero_grad()
        out["loss"].backward()
        if step == 0:
            # the patch embeddings are reached only through the shared transformer: both got gradient
            for stream in (model.s1_encoder, model.s2_encoder):
                assert stream.linear_input.weight.grad.abs().sum() > 0
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in shared_params)
            # the radar stream alone sends gradient into the shared weights
            radar_loss = model.s1_encoder(chips["sar"][:2]).square().mean()
            radar_only = torch.autograd.grad(radar_loss, shared_params)
            assert all(g.abs().sum() > 0 for g in radar_only)
        optimizer.step()
        objective.after_step(step, 12)
        losses.append(float(out["msad"]))
    assert sum(losses[-3:]) < sum(losses[:3]), f"MSAD did not fall: {losses}"
    assert is_shared(model)
    exported = objective.export_encoder()
    assert not is_shared(exported)
    name = "transformer.layers.1.0.to_qkv.weight"
    assert torch.equal(exported.s1_encoder.get_parameter(name), exported.s2_encoder.get_parameter(name))


def test_separate_encoders_stay_available_and_shared_rejects_unequal_init(tmp_path: Path) -> None:
    chips, config = real_batch()
    separate = _scratch(config, encoder="separate")
    assert not is_shared(separate.model) and separate.model.config.sar_depth == 1
    assert separate.model.config.provenance["xstars_encoder"] == "separate"
    assert torch.isfinite(separate(chips)["loss"])
    with pytest.raises(UserError, match="shared or separate"):
        _scratch(config, encoder="both")
    with pytest.raises(UserError, match="equal radar and optical depths"):
        XStarsObjective.build(config, {"crop": 64, "init": str(_old_encoder(tmp_path)),
                                       "options": TINY_OPTIONS})
    proc = run_backend("pretrain", "--objective", "croma", "--xstars-encoder", "shared", "--data", tmp_path,
                       "--out", tmp_path / "r", timeout=120)
    assert proc.returncode != 0 and "--xstars-encoder applies to --objective xstars" in proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_dino_prototypes_stay_frozen_for_the_first_steps() -> None:
    chips, config = real_batch()
    torch.manual_seed(0)
    objective = _scratch(config, freeze_last_layer="2")
    prototypes = objective.dino_head.prototypes.parametrizations.weight.original1
    optimizer = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=1e-2,
                                  weight_decay=0.5)
    before = prototypes.detach().clone()
    for step in range(3):
        frozen = objective.prototypes_frozen
        assert frozen == (step < 2)
        optimizer.zero_grad()
        objective(chips)["loss"].backward()
        assert (prototypes.grad is None) == frozen
        assert objective.dino_head.mlp[0].weight.grad is not None
        optimizer.step()
        objective.after_step(step, 10)
        if frozen:
            assert torch.equal(prototypes, before), "frozen prototypes moved (weight decay included)"
    assert not torch.equal(prototypes, before)
    assert int(objective.state_dict()["steps_done"]) == 3          # saved and resumed with the run
    with pytest.raises(UserError, match="freeze_last_layer"):
        _scratch(config, freeze_last_layer="-1")


def test_shipped_landsat_model_loads_strictly_and_embeds_simulated_oli() -> None:
    config = json.loads(LANDSAT_MODEL.with_suffix(".json").read_text())
    assert config["sensor"] == "landsat-oli"
    optical = config["modalities"]["optical"]
    assert optical["bands"] == list(LANDSAT_OLI.bands) and len(optical["mean"]) == len(optical["std"]) == 7
    model = load_encoder(LANDSAT_MODEL)
    stored = load_file(str(LANDSAT_MODEL) + ".safetensors")
    assert set(stored) == set(build_model(model.config).state_dict()), "not a strict key match"
    assert all(v.dtype == torch.float16 for v in stored.values())
    assert LANDSAT_MODEL.with_suffix(".safetensors").stat().st_size < 10e6
    chips, _ = real_batch()
    landsat = LANDSAT_OLI.simulate(chips["optical"][:4, :, :32, :32], S2_BANDS)
    with torch.no_grad():
        out = model(optical=landsat)
    assert out["optical_encodings"].shape == (4, 16, model.config.dim)
    pooled = torch.nn.functional.normalize(out["optical_encodings"].mean(1), dim=1)
    assert torch.isfinite(pooled).all() and float((pooled @ pooled.T).min()) < 0.999, "collapsed embeddings"


def test_bad_sensor_and_missing_init_are_clear_errors() -> None:
    _, config = real_batch()
    with pytest.raises(UserError, match="unknown sensor"):
        get_sensor("spot")
    with pytest.raises(UserError, match="--init"):
        XStarsObjective.build(config, {"crop": 64, "init": None, "options": {"mode": "continual"}})
    with pytest.raises(UserError, match="no option"):
        XStarsObjective.build(config, {"crop": 64, "init": None, "options": {"alpah": "1"}})
