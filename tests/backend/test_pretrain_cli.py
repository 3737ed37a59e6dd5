"""``pretrain`` as users run it: torchrun with two processes, checkpoints used by ``embed``, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio
import torch

from backend.cli import main
from backend.training.checkpoint import load_state
from backend.training.engine import state_digest
from tests.backend.conftest import ONE_THREAD, run_backend, torchrun

TINY = ["--model-size", "tiny", "-O", "decoder_dim=64", "-O", "decoder_heads=4", "--crop", "32",
        "--stats-samples", "8", "--warmup", "1"]


@pytest.mark.slow
def test_torchrun_two_ranks_hold_identical_weights(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    proc = run_backend("pretrain", "--objective", "croma", "--data", shared_data / "ssl4eo-s12", "--out", out,
                       "--batch-size", "2", "--steps", "4", "--save-every", "4", "--debug-dump-weights",
                       "--events", "json", *TINY, launcher=torchrun(2), env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if '"result"' in line]
    assert len(results) == 1 and results[0]["stats"]["world_size"] == 2  # only rank 0 reports
    digests = {p.name: p.read_text().strip() for p in (out / "debug").glob("weights-rank*.sha256")}
    assert set(digests) == {"weights-rank0.sha256", "weights-rank1.sha256"}
    assert digests["weights-rank0.sha256"] == digests["weights-rank1.sha256"]
    state = load_state(out)
    assert state["step"] == 4 and state["data"]["world_size"] == 2
    assert state_digest(state["objective"]) == digests["weights-rank0.sha256"]


@pytest.mark.slow
def test_checkpoint_works_in_embed(shared_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = run_backend("pretrain", "--objective", "croma", "--data", str(shared_data / "sen1floods11"),
                       "--out", str(run), "--batch-size", "2", "--steps", "2", "--events", "json", *TINY,
                       env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr
    embeddings = tmp_path / "emb.tif"
    proc = run_backend("embed", "--optical", str(shared_data / "sen1floods11" / "Spain_7370579_S2Hand.tif"),
                       "--sar", str(shared_data / "sen1floods11" / "Spain_7370579_S1Hand.tif"),
                       "--model", str(run / "model.safetensors"), "--window", "64", "--overlap", "0",
                       "--out", str(embeddings), "--cache-dir", str(tmp_path / "cache"), "--events", "json",
                       env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr
    with rasterio.open(embeddings) as src:
        assert src.count == 32 and (src.width, src.height) == (64, 64)
        block = src.read(1, window=((0, 8), (0, 8)))
    assert torch.isfinite(torch.from_numpy(block.astype("float32"))).all()


def test_bad_input_is_one_clear_line(shared_data: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "run"
    proc = run_backend("pretrain", "--data", str(tmp_path / "empty"), "--out", str(out), *TINY,
                       env=ONE_THREAD)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: no imagery found in {tmp_path / 'empty'} (expected "
                                                f"SSL4EO-S12 or BigEarthNet folders, or *S1*.tif / *S2*.tif "
                                                f"scene pairs)"]
    assert not out.exists()
    assert main(["pretrain", "--resume", str(tmp_path / "empty")]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    floods = str(shared_data / "sen1floods11")
    assert main(["pretrain", "--data", floods, "--out", str(out), "--crop", "30"]) == 2
    assert "multiple of 8" in capsys.readouterr().err
    assert main(["pretrain", "--objective", "croma", "--modalities", "optical",
                 "--data", str(shared_data / "sen1floods11"), "--out", str(out), *TINY]) == 2
    assert "needs both sar and optical" in capsys.readouterr().err
    assert not out.exists()
