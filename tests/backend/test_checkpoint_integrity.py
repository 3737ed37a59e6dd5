"""Pretraining checkpoints that survive faults: checksums, fallback to the previous one, full disk."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from backend.training.checkpoint import MANIFEST_FILE, PREVIOUS_DIR, load_state, verify_checkpoint
from backend.training.engine import state_digest
from tests.backend.conftest import ONE_THREAD, events_of, run_backend

#: A very small CROMA objective: its checkpoint (weights, optimiser, decoder) is about 0.8 MB.
SMALL = ["--objective", "croma", "--model-size", "custom", "--dim", "16", "--heads", "2", "--depth", "1",
         "-O", "decoder_dim=16", "-O", "decoder_heads=2", "--crop", "32", "--stats-samples", "8",
         "--warmup", "1", "--batch-size", "2", "--lr", "1e-3"]


def _pretrain(*args: str) -> subprocess.CompletedProcess[str]:
    return run_backend("pretrain", *args, env=ONE_THREAD)


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture(scope="module")
def stopped_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run stopped at step 4 of 6 (checkpoints at 2 and 4) and the same run uninterrupted."""
    root = tmp_path_factory.mktemp("ckpt")
    data = ["--data", str(shared_data / "sen1floods11")]
    stopped = _pretrain(*data, "--out", str(root / "stopped"), *SMALL, "--steps", "6", "--save-every", "2",
                        "--max-steps", "4", "--events", "json")
    assert stopped.returncode == 0, stopped.stderr
    clean = _pretrain(*data, "--out", str(root / "clean"), *SMALL, "--steps", "6", "--save-every", "2",
                      "--events", "json")
    assert clean.returncode == 0, clean.stderr
    return root / "stopped", root / "clean"


@pytest.mark.slow
def test_checkpoints_carry_checksums_and_the_previous_one(stopped_run: tuple[Path, Path]) -> None:
    run, _ = stopped_run
    manifest = json.loads((run / MANIFEST_FILE).read_text())
    assert manifest["step"] == 4
    assert set(manifest["files"]) == {"model.safetensors", "model.json", "state.pt"}
    assert json.loads((run / PREVIOUS_DIR / MANIFEST_FILE).read_text())["step"] == 2
    assert verify_checkpoint(run) is None and verify_checkpoint(run / PREVIOUS_DIR) is None
    assert not list(run.glob(".checkpoint-*")) and not list(run.glob(".previous-*"))


@pytest.mark.slow
@pytest.mark.parametrize("damage", [_flip_byte, _truncate], ids=["flipped", "truncated"])
def test_damaged_latest_falls_back_to_previous(stopped_run: tuple[Path, Path], tmp_path: Path,
                                               damage) -> None:
    source, clean = stopped_run
    run = tmp_path / "run"
    shutil.copytree(source, run)
    damage(run / "state.pt")
    proc = _pretrain("--resume", str(run), "--events", "json")
    assert proc.returncode == 0, proc.stderr
    warnings = [e["message"] for e in events_of(proc) if "warning" in (e.get("event"), e.get("level"))]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith(f"the latest checkpoint is damaged ({run / 'state.pt'}: state.pt is ")
    assert warnings[0].endswith(f"resuming from the previous one in {run / PREVIOUS_DIR} (step 2)")
    # The rerun ends exactly where an uninterrupted run does, with two sound checkpoints.
    resumed, reference = load_state(run), load_state(clean)
    assert resumed["step"] == reference["step"] == 6 and "resumed_from" not in resumed
    assert state_digest(resumed["objective"]) == state_digest(reference["objective"])
    ours, theirs = load_file(str(run / "model.safetensors")), load_file(str(clean / "model.safetensors"))
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    # a resumed run's model file is byte-identical (sorted header metadata): equal model hashes, cache keys
    assert (run / "model.safetensors").read_bytes() == (clean / "model.safetensors").read_bytes()
    assert verify_checkpoint(run) is None and verify_checkpoint(run / PREVIOUS_DIR) is None
    assert json.loads((run / PREVIOUS_DIR / MANIFEST_FILE).read_text())["step"] == 4


@pytest.mark.slow
def test_both_damaged_is_one_clear_error(stopped_run: tuple[Path, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(stopped_run[0], run)
    _flip_byte(run / "state.pt")
    _truncate(run / PREVIOUS_DIR / "state.pt")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    proc = _pretrain("--resume", str(run))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot resume {run}: both checkpoints are damaged ({run / 'state.pt'}: state.pt is corrupt "
        f"(its SHA-256 differs from the one recorded); {run / PREVIOUS_DIR / 'state.pt'}: state.pt is "
        f"truncated or changed ({len(before[run / PREVIOUS_DIR / 'state.pt'])} bytes, "
        f"{json.loads((run / PREVIOUS_DIR / MANIFEST_FILE).read_text())['files']['state.pt']['bytes']} "
        f"recorded))"]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_full_disk_during_a_checkpoint(shared_data: Path, tmp_path: Path) -> None:
    """A 2 MB tmpfs holds two checkpoints of this model but not a third being written."""
    run = tmp_path / "tmpfs"
    run.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(run)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.decode().strip()}")
    try:
        proc = _pretrain("--data", str(shared_data / "sen1floods11"), "--out", str(run), *SMALL, "--steps",
                         "6", "--save-every", "1", "--events", "json")
        assert proc.returncode == 3, proc.stderr
        errors = [e for e in events_of(proc) if e["event"] == "error"]
        assert len(errors) == 1 and errors[0]["kind"] == "disk_full"
        message = errors[0]["message"]
        assert message.startswith(f"could not save the checkpoint at step 3 in {run}: the disk is full: ")
        assert re.search(r": \d+\.\d MB free, about 0\.\d MB needed at ", message), message
        assert message.endswith(f" needed at {run}; the previous checkpoint there is intact (step 2)")
        assert proc.stderr == ""
        assert load_state(run)["step"] == 2 and verify_checkpoint(run) is None
        assert verify_checkpoint(run / PREVIOUS_DIR) is None
        assert not list(run.glob(".checkpoint-*"))
        shutil.rmtree(run / PREVIOUS_DIR)  # in human mode the error is the last line, after the bar
        for leftover in run.iterdir():
            leftover.unlink() if leftover.is_file() else shutil.rmtree(leftover)
        proc = _pretrain("--data", str(shared_data / "sen1floods11"), "--out", str(run), *SMALL, "--steps",
                         "6", "--save-every", "1")
        assert proc.returncode == 3
        lines = proc.stderr.replace("\r", "\n").strip().splitlines()
        assert lines[-1].startswith("error: could not save the checkpoint at step 3"), lines[-3:]
        assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    finally:
        subprocess.run(["umount", str(run)], check=False)


def test_safetensors_header_metadata_is_written_in_sorted_order(tmp_path: Path) -> None:
    from safetensors import safe_open

    from backend.models.files import save_safetensors

    metadata = {key: f"value {key}" for key in ("name", "format", "zeta", "alpha", "kind", "step")}
    tensors = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3)}
    save_safetensors(tensors, tmp_path / "a.safetensors", metadata)
    save_safetensors(tensors, tmp_path / "b.safetensors", dict(reversed(metadata.items())))
    data = (tmp_path / "a.safetensors").read_bytes()
    assert data == (tmp_path / "b.safetensors").read_bytes()
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    assert list(header["__metadata__"]) == sorted(metadata)
    with safe_open(str(tmp_path / "a.safetensors"), "pt") as handle:  # still a valid file
        assert handle.metadata() == metadata and torch.equal(handle.get_tensor("w"), tensors["w"])
