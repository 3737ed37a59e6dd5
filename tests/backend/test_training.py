"""Training engine and the CROMA / dual objectives: losses fall, exact resume, safe checkpoints."""

from __future__ import annotations

import csv
import errno
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from backend.cli import main
from backend.models import ModelConfig, load_encoder
from backend.training import checkpoint
from backend.training.data import DataConfig, PairedChipDataset, compute_statistics, discover_sources
from backend.training.engine import TrainOptions, learning_rate, parameter_groups
from backend.training.objectives.croma import CromaObjective, sincos_position_embedding
from tests.backend.conftest import ONE_THREAD, run_backend, run_json, start_backend

TINY = ["--model-size", "tiny", "-O", "decoder_dim=64", "-O", "decoder_heads=4"]


@pytest.fixture(scope="module")
def ben_config(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data config with statistics of the BigEarthNet pairs (computed once)."""
    config = DataConfig(data=[str(shared_data / "bigearthnet-v1")])
    report = discover_sources(config.data, config, crop=32)
    stats = compute_statistics(PairedChipDataset(report.sources, config, 32, normalize=False), 12)
    for name, values in stats.items():
        config.modalities[name].mean, config.modalities[name].std = values["mean"], values["std"]
    path = tmp_path_factory.mktemp("ben") / "ben.json"
    config.save(path)
    return path


def _losses(run_dir: Path, key: str = "loss") -> list[float]:
    with (run_dir / "metrics.csv").open() as handle:
        return [float(row[key]) for row in csv.DictReader(handle)]


def _pretrain(config: Path, out: Path, *extra: str) -> int:
    return main(["pretrain", "--data-config", str(config), "--out", str(out), "--crop", "32",
                 "--batch-size", "6", "--warmup", "3", "--events", "json", *TINY, *extra])


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: faster than two on a shared 2-core machine, and restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize(("objective", "lr"), [("croma", "1e-3"), ("dual", "2e-3")])
def test_loss_falls(objective: str, lr: str, ben_config: Path, tmp_path: Path) -> None:
    out = tmp_path / objective
    assert _pretrain(ben_config, out, "--objective", objective, "--steps", "30", "--lr", lr,
                     "--save-every", "100") == 0
    losses = _losses(out)
    assert len(losses) == 30
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.9 * first, (first, last)
    assert (out / "loss.png").stat().st_size > 1000
    # The checkpoint carries the data statistics and loads as an encoder at once.
    model = load_encoder(out / "model.safetensors")
    stats = DataConfig.load(ben_config)
    assert model.config.modalities["optical"].mean == pytest.approx(stats.modalities["optical"].mean)
    assert model.config.provenance["objective"] == objective and model.config.provenance["step"] == 30
    with torch.no_grad():
        result = model(sar=torch.rand(1, 2, 32, 40), optical=torch.rand(1, 12, 32, 40))
    assert result["joint_encodings"].shape == (1, 20, 32)


def test_croma_losses_and_joint_bias_modes() -> None:
    config = ModelConfig(dim=32, heads=4, sar_depth=1, optical_depth=2, joint_depth=1)
    batch = {"sar": torch.rand(4, 2, 32, 48), "optical": torch.rand(4, 12, 32, 48)}
    radar = CromaObjective(config, decoder_dim=64, decoder_heads=4)
    released = CromaObjective(config, decoder_dim=64, decoder_heads=4, joint_self_bias="released")
    released.load_state_dict(radar.state_dict())
    torch.manual_seed(0)
    a = radar(batch)
    torch.manual_seed(0)
    b = released(batch)
    assert torch.equal(a["contrastive"], b["contrastive"])  # same masks, same unimodal path
    assert not torch.equal(a["mae_optical"], b["mae_optical"])  # the joint bias differs
    assert radar.keep_count(4 * 6) == 6
    a["loss"].backward()
    for name in ("logit_scale", "radar_proj.weight", "decoder.mask_token",
                 "model.joint_encoder.norm_out.weight",
                 "model.s1_encoder.linear_input.weight", "model.s2_GAP_FFN.1.weight"):
        assert radar.get_parameter(name).grad is not None, name
    assert a["temperature"].item() == pytest.approx(0.07)
    # Sin-cos position embedding for any grid (not only 15 x 15).
    assert sincos_position_embedding(4, 6, 64).shape == (1, 24, 64)


def test_schedule_and_weight_decay_groups() -> None:
    options = TrainOptions(steps=100, warmup=10, lr=1.0, min_lr=0.0)
    rates = [learning_rate(s, options) for s in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(x >= y for x, y in zip(rates[9:], rates[10:])) and rates[-1] < 0.01
    objective = CromaObjective(ModelConfig(dim=32, heads=4, sar_depth=1, optical_depth=1, joint_depth=1),
                               decoder_dim=64, decoder_heads=4)
    decay, no_decay = parameter_groups(objective, 0.05)
    assert all(p.ndim >= 2 for p in decay["params"])
    no_decay_ids = {id(p) for p in no_decay["params"]}
    assert id(objective.logit_scale) in no_decay_ids and id(objective.decoder.mask_token) in no_decay_ids


def _same_run(a: Path, b: Path) -> None:
    weights_a, weights_b = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    state_a, state_b = checkpoint.load_state(a), checkpoint.load_state(b)
    assert state_a["step"] == state_b["step"]
    for key, tensor in state_a["objective"].items():
        assert torch.equal(tensor, state_b["objective"][key]), key
    for index, values in state_a["optimizer"]["state"].items():
        assert torch.equal(values["exp_avg_sq"], state_b["optimizer"]["state"][index]["exp_avg_sq"])


@pytest.mark.slow
def test_resume_after_stop_equals_uninterrupted(ben_config: Path, tmp_path: Path) -> None:
    common = ["--steps", "8", "--save-every", "3", "--lr", "1e-3", "--workers", "1"]
    assert _pretrain(ben_config, tmp_path / "full", *common) == 0
    assert _pretrain(ben_config, tmp_path / "parts", *common, "--max-steps", "5") == 0
    assert checkpoint.load_state(tmp_path / "parts")["step"] == 5
    assert main(["pretrain", "--resume", str(tmp_path / "parts"), "--events", "json"]) == 0
    _same_run(tmp_path / "full", tmp_path / "parts")
    assert [int(float(s)) for s in _losses(tmp_path / "parts", "step")] == list(range(1, 9))
    assert _losses(tmp_path / "parts") == _losses(tmp_path / "full")


@pytest.mark.slow
def test_killed_process_resumes_exactly(ben_config: Path, tmp_path: Path) -> None:
    args = ["--data-config", str(ben_config), "--crop", "32", "--batch-size", "6", "--warmup", "3",
            "--events", "json", *TINY, "--steps", "400", "--save-every", "2", "--lr", "1e-3"]
    victim = start_backend("pretrain", *args, "--out", tmp_path / "killed", env=ONE_THREAD,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = tmp_path / "killed" / checkpoint.MANIFEST_FILE  # replaced last, atomically, by each save
    deadline = time.monotonic() + 180
    while not (manifest.exists() and json.loads(manifest.read_text())["step"] >= 4) and \
            time.monotonic() < deadline:  # killed past its second checkpoint, mid-training
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    stopped = checkpoint.load_state(tmp_path / "killed")["step"]
    target = stopped + 4
    resume = run_json("pretrain", "--resume", tmp_path / "killed", "--max-steps", target, env=ONE_THREAD)
    assert resume.returncode == 0, resume.stderr
    reference = run_backend("pretrain", *args, "--out", tmp_path / "reference", "--max-steps", target,
                            env=ONE_THREAD)
    assert reference.returncode == 0, reference.stderr
    _same_run(tmp_path / "reference", tmp_path / "killed")
    assert not list((tmp_path / "killed").glob(".checkpoint-*"))


def test_disk_full_keeps_previous_checkpoint(ben_config: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    calls = []
    real_write = checkpoint._write_state

    def failing_write(state: dict, path: Path) -> None:
        calls.append(state["step"])
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(state, path)

    monkeypatch.setattr(checkpoint, "_write_state", failing_write)
    out = tmp_path / "run"
    assert _pretrain(ben_config, out, "--steps", "4", "--save-every", "2") == 3  # environment error
    captured = capsys.readouterr()
    error = json.loads(captured.out.strip().splitlines()[-1])
    assert error["event"] == "error" and error["kind"] == "disk_full"
    assert "disk is full" in error["message"] and "previous checkpoint" in error["message"]
    assert "Traceback" not in captured.err
    assert checkpoint.load_state(out)["step"] == 2
    assert load_encoder(out / "model.safetensors").config.provenance["step"] == 2
    assert not list(out.glob(".checkpoint-*"))
