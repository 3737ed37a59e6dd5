"""``embed`` end to end on the real shared rasters with a tiny random-init model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from backend.cli import main
from backend.io.stack import stack_band_files
from backend.io.windows import plan_axis
from backend.models import ModalityConfig, ModelConfig, build_model, load_encoder, normalize, save_model
from tests.backend.conftest import run_backend

S2_FILE = "sen1floods11/Spain_7370579_S2Hand.tif"
S1_FILE = "sen1floods11/Spain_7370579_S1Hand.tif"
S2_INDEXES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]  # B10 skipped


def _sampled_stats(path: Path, indexes: list[int]) -> tuple[list[float], list[float]]:
    with rasterio.open(path) as src:
        data = src.read(indexes, out_shape=(len(indexes), 128, 128), masked=True).astype(float)
    flat = data.reshape(len(indexes), -1)
    return flat.mean(axis=1).tolist(), flat.std(axis=1).tolist()


@pytest.fixture(scope="module")
def tiny_model(shared_data, tmp_path_factory) -> Path:
    """A tiny random CROMA (both encoders) with per-band statistics, saved as a model file."""
    torch.manual_seed(0)
    opt_mean, opt_std = _sampled_stats(shared_data / S2_FILE, S2_INDEXES)
    sar_mean, sar_std = _sampled_stats(shared_data / S1_FILE, [1, 2])
    base = ModelConfig()
    config = ModelConfig(dim=32, heads=4, sar_depth=1, optical_depth=2, joint_depth=1, modalities={
        "sar": ModalityConfig(base.modalities["sar"].bands, sar_mean, sar_std),
        "optical": ModalityConfig(base.modalities["optical"].bands, opt_mean, opt_std)})
    weights, _ = save_model(build_model(config), tmp_path_factory.mktemp("model") / "tiny")
    return weights


def embed(*args: str | Path) -> int:
    return main(["embed", *[str(a) for a in args]])


def _read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(), dict(src.profile, descriptions=src.descriptions)


def test_embed_cli_outputs_georeferenced_rasters_and_hits_cache(shared_data, tiny_model, tmp_path) -> None:
    command = ["embed", "--optical", shared_data / S2_FILE, "--sar", shared_data / S1_FILE, "--model",
               tiny_model, "--cache-dir", tmp_path / "cache", "--events", "json"]
    first = run_backend(*command, "--out", tmp_path / "a" / "emb.tif", timeout=120)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout.splitlines()[-1])
    assert result["event"] == "result" and result["stats"]["cache_hit"] is False
    assert result["stats"]["embedding"] == "joint_encodings"
    emb_path, preview_path = Path(result["outputs"]["embeddings"]), Path(result["outputs"]["preview"])
    assert preview_path == tmp_path / "a" / "emb_pca.tif"
    embeddings, profile = _read(emb_path)
    with rasterio.open(shared_data / S2_FILE) as src:
        assert profile["crs"] == src.crs
        assert profile["transform"].almost_equals(src.transform @ Affine.scale(8))
    assert (profile["width"], profile["height"], profile["count"]) == (64, 64, 32)
    assert profile["descriptions"][:2] == ("emb_000", "emb_001") and profile["tiled"]
    assert np.isnan(profile["nodata"]) and np.isfinite(embeddings).all()
    with rasterio.open(emb_path) as src:
        assert src.tags(1, "IMAGE_STRUCTURE").get("NBITS") == "16"  # float16 on disk
    preview, preview_profile = _read(preview_path)
    assert preview.shape == (3, 64, 64) and preview.dtype == np.uint8 and preview_profile["nodata"] == 0
    assert preview.min() >= 1 and preview.std() > 10

    second = run_backend(*command, "--out", tmp_path / "b" / "emb.tif", timeout=120)
    assert second.returncode == 0, second.stderr
    events = [json.loads(line) for line in second.stdout.splitlines()]
    assert events[-1]["stats"]["cache_hit"] is True
    assert any(e["event"] == "log" and "cache hit" in e["message"] for e in events)
    assert np.array_equal(_read(tmp_path / "b" / "emb.tif")[0], embeddings)


def test_one_window_equals_the_encoder_on_the_whole_array(shared_data, tiny_model, tmp_path) -> None:
    path = shared_data / S2_FILE
    with rasterio.open(path) as src:
        area = Window(40, 24, 72, 64)  # 9 x 8 patches, fits in one 120 px window
        left, bottom, right, top = src.window_bounds(area)
        raw = src.read(S2_INDEXES, window=area).astype(np.float32)
    assert embed("--optical", path, "--model", tiny_model, "--bounds", left + 1e-7, bottom + 1e-7,
                 right - 1e-7, top - 1e-7, "--dtype", "float32", "--cache-dir", tmp_path / "cache",
                 "--out", tmp_path / "emb.tif") == 0
    model = load_encoder(tiny_model)
    stats = model.config.modalities["optical"]
    image = normalize(torch.from_numpy(raw)[None], stats.mean, stats.std).float()
    with torch.inference_mode():
        expected = model(optical=image)["optical_encodings"][0].reshape(8, 9, -1).permute(2, 0, 1).numpy()
    embeddings, _ = _read(tmp_path / "emb.tif")
    assert embeddings.shape == expected.shape
    np.testing.assert_allclose(embeddings, expected, atol=1e-5, rtol=0)


def test_nodata_is_masked_through(shared_data, tiny_model, tmp_path) -> None:
    with rasterio.open(shared_data / S2_FILE) as src:
        crop = Window(0, 0, 160, 152)
        profile = dict(src.profile, width=160, height=152, transform=src.window_transform(crop))
        data = src.read(window=Window(0, 0, 160, 152))
        descriptions = src.descriptions
    data[:, 21:62, 35:91] = 0  # nodata block, not patch-aligned
    holed = tmp_path / "holed.tif"
    with rasterio.open(holed, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = descriptions
    assert embed("--optical", holed, "--model", tiny_model, "--window", "64", "--overlap", "16",
                 "--cache-dir", tmp_path / "cache", "--out", tmp_path / "emb.tif") == 0
    invalid = np.zeros((152, 160), bool)
    invalid[21:62, 35:91] = True
    expected_nodata = invalid.reshape(19, 8, 20, 8).sum(axis=(1, 3)) > 32  # more than half invalid
    embeddings, _ = _read(tmp_path / "emb.tif")
    assert np.array_equal(np.isnan(embeddings).all(axis=0), expected_nodata)
    assert np.isfinite(embeddings[:, ~expected_nodata]).all()
    preview, _ = _read(tmp_path / "emb_pca.tif")
    assert np.array_equal((preview == 0).all(axis=0), expected_nodata)


def test_radar_on_another_grid_is_aligned(shared_data, tiny_model, tmp_path) -> None:
    from rasterio.warp import calculate_default_transform, reproject

    def joint(sar: Path, name: str) -> np.ndarray:
        assert embed("--optical", shared_data / S2_FILE, "--sar", sar, "--model", tiny_model, "--dtype",
                     "float32", "--cache-dir", tmp_path / "cache", "--out", tmp_path / f"{name}.tif") == 0
        return _read(tmp_path / f"{name}.tif")[0]

    with rasterio.open(shared_data / S1_FILE) as src:
        transform, width, height = calculate_default_transform(src.crs, "EPSG:32630", src.width, src.height,
                                                               *src.bounds, resolution=8.0)
        utm_profile = dict(src.profile, crs="EPSG:32630", transform=transform, width=width, height=height)
        shifted_profile = dict(src.profile, transform=src.transform @ Affine.translation(24, 0))
        data = src.read()
        descriptions = src.descriptions
        with rasterio.open(tmp_path / "s1_utm.tif", "w", **utm_profile) as dst:
            for band in (1, 2):
                reproject(rasterio.band(src, band), rasterio.band(dst, band), resampling=Resampling.bilinear)
            dst.descriptions = descriptions
    with rasterio.open(tmp_path / "s1_shifted.tif", "w", **shifted_profile) as dst:  # a wrong alignment
        dst.write(data)
        dst.descriptions = descriptions

    def similarity(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a[:, 4:-4, 4:-4].reshape(a.shape[0], -1), b[:, 4:-4, 4:-4].reshape(b.shape[0], -1)
        finite = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)
        a, b = a[:, finite], b[:, finite]
        return float(((a * b).sum(0) / np.linalg.norm(a, axis=0) / np.linalg.norm(b, axis=0)).mean())

    original = joint(shared_data / S1_FILE, "original")
    aligned = similarity(original, joint(tmp_path / "s1_utm.tif", "utm"))
    misaligned = similarity(original, joint(tmp_path / "s1_shifted.tif", "shifted"))
    assert aligned > 0.97
    assert 1 - aligned < (1 - misaligned) / 3  # far closer than a 3-pixel misregistration


def test_stitching_is_seamless_on_a_real_scene(shared_data, tiny_model, tmp_path) -> None:
    folder = next((shared_data / "major-tom-core" / "S2L2A").glob("*/*/*/"))
    bands = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
    scene = stack_band_files([folder / f"{b}.tif" for b in bands], tmp_path / "scene.tif")
    with rasterio.open(scene) as src:
        left, bottom, right, top = src.window_bounds(Window(96, 200, 480, 480))
    assert embed("--optical", scene, "--model", tiny_model, "--bounds", left, bottom, right, top,
                 "--window", "120", "--overlap", "32", "--dtype", "float32", "--cache-dir",
                 tmp_path / "cache", "--out", tmp_path / "emb.tif") == 0
    embeddings, _ = _read(tmp_path / "emb.tif")
    n = embeddings.shape[1]
    assert embeddings.shape[1:] == (60, 60)
    borders = set()  # patch index p such that (p - 1, p) straddles a tile edge or a core cut
    for span in plan_axis(n, 15, 4):
        borders |= {span.start, span.start + span.size, span.keep_stop}
    borders -= {0, n}
    assert len(borders) >= 8
    step_x = np.linalg.norm(np.diff(embeddings, axis=2), axis=0)  # [rows, cols - 1]
    step_y = np.linalg.norm(np.diff(embeddings, axis=1), axis=0)  # [rows - 1, cols]
    at_border = np.array([p + 1 in borders for p in range(n - 1)])
    across = np.concatenate([step_x[:, at_border].ravel(), step_y[at_border, :].ravel()]).mean()
    inside = np.concatenate([step_x[:, ~at_border].ravel(), step_y[~at_border, :].ravel()]).mean()
    assert abs(across / inside - 1) < 0.10, (across, inside)


@pytest.fixture()
def bad_inputs(shared_data, tmp_path) -> dict[str, Path]:
    not_raster = tmp_path / "notes.tif"
    not_raster.write_text("not a raster\n")
    far = tmp_path / "s1_far.tif"
    with rasterio.open(shared_data / S1_FILE) as src:
        moved = dict(src.profile, transform=src.transform @ Affine.translation(5000, 0))
        with rasterio.open(far, "w", **moved) as dst:
            dst.write(src.read())
            dst.descriptions = src.descriptions
        empty = tmp_path / "s2_nodata.tif"
    with rasterio.open(shared_data / S2_FILE) as src:
        profile = dict(src.profile, width=64, height=64)
        with rasterio.open(empty, "w", **profile) as dst:
            dst.write(np.zeros((13, 64, 64), np.int16))
            dst.descriptions = src.descriptions
        left, bottom, _, top = src.bounds
    return {"not_raster": not_raster, "far": far, "all_nodata": empty,
            "zero_bounds": (left + 1e-3, top - 2e-3, left + 1e-3, top - 1e-3),
            "outside_bounds": (10.0, 10.0, 10.1, 10.1), "_": bottom}


@pytest.mark.parametrize(("case", "message"), [
    ("missing", "optical raster not found"),
    ("not_raster", "not a raster GDAL can read"),
    ("wrong_band_count", "--optical-bands lists 3 bands but the model expects 12"),
    ("missing_bands", "lacks the band(s) B01"),
    ("no_overlap", "radar raster does not overlap"),
    ("bounds_outside", "does not overlap the raster"),
    ("empty_area", "area given by --bounds is empty"),
    ("all_nodata", "no valid pixels"),
    ("bad_window", "--window must be a multiple of 8"),
])
def test_bad_input_gives_one_clear_error_and_no_output(case, message, shared_data, tiny_model, bad_inputs,
                                                       tmp_path, capsys) -> None:
    s2, s1 = shared_data / S2_FILE, shared_data / S1_FILE
    args = {
        "missing": ["--optical", tmp_path / "nope.tif"],
        "not_raster": ["--optical", bad_inputs["not_raster"]],
        "wrong_band_count": ["--optical", s2, "--optical-bands", "1,2,3"],
        "missing_bands": ["--optical", s1],
        "no_overlap": ["--optical", s2, "--sar", bad_inputs["far"]],
        "bounds_outside": ["--optical", s2, "--bounds", *bad_inputs["outside_bounds"]],
        "empty_area": ["--optical", s2, "--bounds", *bad_inputs["zero_bounds"]],
        "all_nodata": ["--optical", bad_inputs["all_nodata"]],
        "bad_window": ["--optical", s2, "--window", "100"],
    }[case]
    out_dir = tmp_path / "out"
    code = embed(*args, "--model", tiny_model, "--cache-dir", tmp_path / "cache", "--out",
                 out_dir / "emb.tif")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: ") and message in err[-1], err
    assert "Traceback" not in "\n".join(err)
    assert not out_dir.exists() or not any(out_dir.iterdir())
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("*.tif"))


def test_bad_input_exit_code_from_a_real_process(tiny_model, tmp_path) -> None:
    proc = run_backend("embed", "--optical", tmp_path / "none.tif", "--model", tiny_model, "--out",
                       tmp_path / "emb.tif", timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: optical raster not found: {tmp_path / 'none.tif'}"]
    assert not (tmp_path / "emb.tif").exists()
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_seams_are_measured_and_a_context_sensitive_model_says_so(shared_data, tmp_path, capsys) -> None:
    """QA: with the small bundled model a homogeneous forest split into two clusters along a tile
    overlap. The stitcher measures how much overlapping tiles disagree against how much neighbouring
    patches differ, and the log says when seams may show (one tile: nothing to say)."""
    from backend.inference.embed import seam_note

    assert seam_note(0.99, 0.90, 120) is None and seam_note(None, 0.9, 120) is None
    assert "--window than 120 (e.g. 248)" in seam_note(0.96, 0.955, 120)
    scene = shared_data / "rstoolbox-sen2" / "sen2.tif"  # 247 x 237 px: several 120 px tiles, one 248 px
    for window, expect_note in ((120, True), (248, False)):
        capsys.readouterr()
        assert embed("--optical", scene, "--window", str(window), "--cache-dir", tmp_path / f"c{window}",
                     "--model", "terraprobe-croma-small",  # context-sensitive (galileo: each patch alone)
                     "--out", tmp_path / f"e{window}.tif", "--events", "json") == 0
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        stats = events[-1]["stats"]
        assert 0.5 < stats["neighbour_similarity"] <= 1.0
        assert (stats["tile_agreement"] is None) == (window == 248)
        noted = any("tile seams may show" in e.get("message", "") for e in events if e["event"] == "log")
        assert noted == expect_note
