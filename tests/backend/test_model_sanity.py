"""Damaged models are errors, not silent NaN rasters: non-finite weights or encoder outputs, and
``info`` on a model whose weights are missing or mis-shaped."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from backend.models import ModelConfig, build_model, save_model
from tests.backend.conftest import ONE_THREAD, run_backend

TINY = {"dim": 32, "heads": 4, "sar_depth": 1, "optical_depth": 1, "joint_depth": 1}


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture()
def tiny_model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    weights, _ = save_model(build_model(ModelConfig(**TINY, name="tiny")), tmp_path / "tiny")
    return weights


def _rewrite(weights: Path, change: dict[str, torch.Tensor | None]) -> None:
    """Rewrite the model's tensors: replace (or drop, for ``None``) the named ones."""
    tensors = load_file(str(weights))
    for name, value in change.items():
        if value is None:
            del tensors[name]
        else:
            tensors[name] = value
    save_file(tensors, str(weights))


def _embed(model: Path, tmp_path: Path, shared_data: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "emb.tif"
    proc = run_backend("embed", "--optical", str(shared_data / "sen1floods11" / "Spain_7370579_S2Hand.tif"),
                       "--model", str(model), "--window", "64", "--overlap", "0", "--out", str(out),
                       "--cache-dir", str(tmp_path / "cache"), env=ONE_THREAD)
    return proc, out


def test_nan_and_inf_weights_are_refused_naming_the_tensors(tiny_model: Path, tmp_path: Path,
                                                             shared_data: Path) -> None:
    tensors = load_file(str(tiny_model))
    nan = tensors["s2_encoder.linear_input.weight"].clone()
    nan[0, :3] = float("nan")
    inf = tensors["s1_encoder.transformer.norm_out.bias"].clone()
    inf[1] = float("inf")
    _rewrite(tiny_model, {"s2_encoder.linear_input.weight": nan, "s1_encoder.transformer.norm_out.bias": inf})
    expected = (f"error: {tiny_model} has non-finite (NaN or inf) weights in 2 tensor(s): "
                f"s1_encoder.transformer.norm_out.bias (1 of 32 values), "
                f"s2_encoder.linear_input.weight (3 of {32 * 12 * 64} values); the model file is damaged")
    info = run_backend("info", str(tiny_model), env=ONE_THREAD)
    assert info.returncode == 2 and _error_line(info) == expected
    proc, out = _embed(tiny_model, tmp_path, shared_data)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == expected
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not [p for p in (tmp_path / "cache").rglob("*.tif")]


def test_non_finite_encoder_output_is_an_error_not_a_nan_raster(tiny_model: Path, tmp_path: Path,
                                                                shared_data: Path) -> None:
    # Finite but huge weights overflow float32 inside the encoder: every embedding would be NaN.
    weight = load_file(str(tiny_model))["s2_encoder.linear_input.weight"]
    _rewrite(tiny_model, {"s2_encoder.linear_input.weight": weight * 1e37})
    proc, out = _embed(tiny_model, tmp_path, shared_data)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the encoder produced non-finite values (NaN or inf) for ")
    assert last.endswith(" patches: the model's weights or the input values are unusable; "
                         "no embedding was written")
    assert not out.exists() and not out.with_name("emb_pca.tif").exists()
    assert not [p for p in (tmp_path / "cache").rglob("*.tif")]


def test_info_verifies_the_weights(tiny_model: Path, tmp_path: Path) -> None:
    ok = run_backend("info", str(tiny_model), "--events", "json", env=ONE_THREAD)
    assert ok.returncode == 0, ok.stderr
    stats = json.loads(ok.stdout.splitlines()[-1])["stats"]
    assert stats["weights"].startswith("verified") and stats["dim"] == 32
    # Mis-shaped and missing tensors: named, exit 2.
    tensors = load_file(str(tiny_model))
    _rewrite(tiny_model, {"s2_encoder.linear_input.weight": tensors["s2_encoder.linear_input.weight"][:16],
                          "joint_encoder.norm_out.bias": None})
    proc = run_backend("info", str(tiny_model), env=ONE_THREAD)
    assert proc.returncode == 2
    line = _error_line(proc)
    assert line.startswith(f"error: {tiny_model} does not match a tiny model (")
    assert "1 missing (joint_encoder.norm_out.bias)" in line
    assert f"1 with wrong shape (s2_encoder.linear_input.weight [16, {12 * 64}] != [32, {12 * 64}])" in line
    # The weights file is gone: the config alone is not a model.
    tiny_model.unlink()
    proc = run_backend("info", str(tiny_model.with_suffix(".json")), env=ONE_THREAD)
    assert proc.returncode == 2 and _error_line(proc) == (
        f"error: model file not found: {tiny_model} (a model is a .safetensors + .json pair)")
