"""The memory guard of ``embed``: a batch that would not fit is made smaller; a tile that would not fit
is refused with the estimate, the memory available and a window that fits, and nothing is written."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio

from backend.inference.inputs import InputSet
from backend.inference.memory import MB, SAFETY, embed_plan, estimate_memory
from backend.models import load_model_config
from backend.paths import BUNDLED_MODEL  # a CROMA model: the dense ALiBi bias these tests measure
from tests.backend.conftest import ONE_THREAD, events_of, run_json


def _embed(optical: Path, out: Path, cache: Path, *extra: str, limit_mb: float | None = None,
           ) -> subprocess.CompletedProcess[str]:
    limit = {"TERRAPROBE_MEMORY_LIMIT_MB": None if limit_mb is None else str(limit_mb)}
    return run_json("embed", "--optical", optical, "--out", out, "--cache-dir", cache, "--device", "cpu",
                    "--model", BUNDLED_MODEL, *extra, env={**ONE_THREAD, **limit})


@pytest.fixture(scope="module")
def chip(shared_data: Path) -> Path:
    return shared_data / "sen1floods11" / "Spain_7370579_S2Hand.tif"


def test_estimate_counts_the_dense_bias_and_scales_with_batch() -> None:
    config = load_model_config(BUNDLED_MODEL)
    one = estimate_memory(config, 64, 64, 1, ["optical"], 192, 64, 64, fused_attention=True)
    assert one.bias == (config.heads + 1) * 4096**2 * 4 and one.scores == 0
    four = estimate_memory(config, 64, 64, 4, ["optical"], 192, 64, 64, fused_attention=True)
    assert four.bias == one.bias and four.activations == 4 * one.activations
    math_path = estimate_memory(config, 64, 64, 4, ["optical"], 192, 64, 64, fused_attention=False)
    assert math_path.scores == 2 * 4 * config.heads * 4096**2 * 4
    # FlexAttention on CUDA never builds the N x N bias for large grids.
    assert estimate_memory(config, 64, 64, 1, ["optical"], 192, 64, 64, device="cuda").bias == 0


def test_big_window_is_refused_with_a_window_that_fits(chip: Path, tmp_path: Path) -> None:
    out, cache = tmp_path / "emb.tif", tmp_path / "cache"
    proc = _embed(chip, out, cache, "--window", "1024", limit_mb=300)
    assert proc.returncode == 3, proc.stderr
    errors = [e for e in events_of(proc) if e["event"] == "error"]
    assert len(errors) == 1 and errors[0]["kind"] == "out_of_memory"
    message = errors[0]["message"]
    found = re.fullmatch(r"not enough memory for --window 1024: one tile needs about (\d+) MB "
                         r"\(ALiBi bias 576 MB\) but 300 MB is available \(TERRAPROBE_MEMORY_LIMIT_MB\); "
                         r"use --window (\d+) or smaller", message)
    assert found, message
    assert int(found.group(1)) > 300 and "\n" not in message
    assert not out.exists() and not out.with_name("emb_pca.tif").exists()
    assert not [p for p in cache.rglob("*") if p.is_file()]
    # The advice holds: the suggested window runs under the same limit.
    window = found.group(2)
    proc = _embed(chip, out, cache, "--window", window, "--overlap", "32", limit_mb=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    with rasterio.open(out) as src:
        assert (src.width, src.height) == (64, 64)


def test_medium_limit_lowers_the_batch_size(chip: Path, tmp_path: Path) -> None:
    config = load_model_config(BUNDLED_MODEL)
    with InputSet(str(chip), None, config) as inputs:
        plan = embed_plan(config, inputs, 32, "cpu")
    # A limit between the estimates of batch 2 and batch 4 (window 240: 9 tiles of 30 x 30 patches).
    limit = math.ceil(plan.estimate(240, 2).total / SAFETY / MB) + 1
    assert plan.estimate(240, 3).total > SAFETY * limit * MB
    lowered = _embed(chip, tmp_path / "low.tif", tmp_path / "cache_low", "--window", "240",
                     "--batch-size", "4", limit_mb=limit)
    assert lowered.returncode == 0, lowered.stdout[-2000:]
    logs = [e["message"] for e in events_of(lowered)
            if e["event"] == "log" and e["message"].startswith("memory:")]
    assert logs == [f"memory: --batch-size 4 at --window 240 needs about "
                    f"{round(plan.estimate(240, 4).total / MB)} MB, {limit} MB available "
                    f"(TERRAPROBE_MEMORY_LIMIT_MB); using --batch-size 2"]
    reference = _embed(chip, tmp_path / "ref.tif", tmp_path / "cache_ref", "--window", "240",
                       "--batch-size", "2")
    assert reference.returncode == 0, reference.stdout[-2000:]
    with rasterio.open(tmp_path / "low.tif") as low, rasterio.open(tmp_path / "ref.tif") as ref:
        assert np.array_equal(low.read(), ref.read(), equal_nan=True)
