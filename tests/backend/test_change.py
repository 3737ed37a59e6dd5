"""``change`` through the real CLI on real multi-date data.

* ssl4eo-s12 (one location, June and August 2020): a water body from Sen1Floods11 (its hand label
  says where the water is) is pasted into the August date; the change mask is scored against the
  pasted area at patch level (F1), and the pasted change must stand far above the seasonal one.
  Both the S2-only (L2A, 12 bands) and the S1-only (VV, VH dB) paths.
* naip-opengeos (2009 and 2020, slightly different grids): rasters embedded with one model and
  aligned on the fly; change types.
* Bad input: not a field, grids that do not overlap, different dimensions, an all-nodata date, a
  mixed pairing: one error line, exit 2, nothing written.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.windows import Window

from tests.backend.conftest import error_of, events_of, result_of, run_json

SSL4EO = "ssl4eo-s12"
S2_DATES = ("20200604T054639_20200604T054831_T43RCP", "20200813T054639_20200813T054952_T43RCP")
S1_DATES = ("S1A_IW_GRDH_1SDV_20200607T010800_20200607T010825_032904_03CFBA_D457",
            "S1A_IW_GRDH_1SDV_20200903T131212_20200903T131237_034195_03F8F5_AC1C")
S2_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12")
FLOODS_S2 = "sen1floods11/Spain_7370579_S2Hand.tif"
FLOODS_S1 = "sen1floods11/Spain_7370579_S1Hand.tif"
FLOODS_LABEL = "sen1floods11/Spain_7370579_LabelHand.tif"
NAIP = ("naip-opengeos/m_4709963_se_14_1_20090818.tif", "naip-opengeos/m_4709963_se_14_1_20200831.tif")
#: The Sen1Floods11 window with the most water (81 % water) and where it is pasted in ssl4eo (pixels).
WATER_WINDOW = Window(416, 80, 96, 96)
PASTE_AT = (88, 120)  # row, col
PATCH = 8
#: Measured patch-level F1 of the change mask against the pasted water (docs/change_detection.md).
F1_FLOOR_S2 = 0.55  # measured 0.63 with --threshold otsu3 (0.47 with the default otsu)
F1_FLOOR_S1 = 0.45  # measured 0.54 with --threshold otsu3 (June descending vs September ascending orbit)


def run_cli(*args: object, cache: Path) -> subprocess.CompletedProcess:
    return run_json(*args, "--cache-dir", cache, timeout=600)


def stack_ssl4eo_s2(shared: Path, date: str, out: Path) -> Path:
    """The 12 L2A bands of one ssl4eo date on the 10 m grid (264 x 264), named B1...B12."""
    folder = shared / SSL4EO / "s2a" / "0000200" / date
    with rasterio.open(folder / "B4.tif") as ref:
        profile = dict(ref.profile, count=len(S2_BANDS), compress="deflate")
        shape = (ref.height, ref.width)
    with rasterio.open(out, "w", **profile) as dst:
        for index, band in enumerate(S2_BANDS, 1):
            with rasterio.open(folder / f"{band}.tif") as src:
                dst.write(src.read(1, out_shape=shape, resampling=Resampling.bilinear), index)
            dst.set_band_description(index, band)
    return out


def stack_ssl4eo_s1(shared: Path, date: str, out: Path) -> Path:
    """VV and VH (dB) of one ssl4eo radar date as one 2-band raster."""
    folder = shared / SSL4EO / "s1" / "0000200" / date
    with rasterio.open(folder / "VV.tif") as ref:
        profile = dict(ref.profile, count=2, compress="deflate")
    with rasterio.open(out, "w", **profile) as dst:
        for index, band in enumerate(("VV", "VH"), 1):
            with rasterio.open(folder / f"{band}.tif") as src:
                dst.write(src.read(1), index)
            dst.set_band_description(index, band)
    return out


def paste_water(shared: Path, target: Path, source: str, out: Path) -> np.ndarray:
    """Copy ``target`` to ``out`` with the Sen1Floods11 water pixels pasted in; the pasted-pixel mask.

    Bands are matched by name (the floods S2 is L1C with B10, which ssl4eo's L2A lacks).
    """
    with rasterio.open(shared / FLOODS_LABEL) as src:
        water = src.read(1, window=WATER_WINDOW) == 1
    with rasterio.open(shared / source) as src:
        names = list(src.descriptions)
        donor = src.read(window=WATER_WINDOW)
    with rasterio.open(target) as src:
        data, profile, bands = src.read(), src.profile, list(src.descriptions)
    if source == FLOODS_S1:
        names = ["VV", "VH"]
    row, col = PASTE_AT
    h, w = water.shape
    for index, band in enumerate(bands):
        region = data[index, row:row + h, col:col + w]
        region[water] = donor[names.index(band)][water].astype(data.dtype)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = tuple(bands)
    pasted = np.zeros(data.shape[1:], bool)
    pasted[row:row + h, col:col + w] = water
    return pasted


def patch_truth(pasted: np.ndarray) -> np.ndarray:
    """Patches at least half covered by pasted water (edge patches of the raster padded)."""
    rows, cols = -(-pasted.shape[0] // PATCH), -(-pasted.shape[1] // PATCH)
    padded = np.zeros((rows * PATCH, cols * PATCH))
    padded[:pasted.shape[0], :pasted.shape[1]] = pasted
    return padded.reshape(rows, PATCH, cols, PATCH).mean(axis=(1, 3)) >= 0.5


def f1_score(predicted: np.ndarray, truth: np.ndarray) -> float:
    tp = float((predicted & truth).sum())
    return 2 * tp / max(float(predicted.sum() + truth.sum()), 1.0)


def score(outputs: dict, truth: np.ndarray) -> tuple[float, float, float]:
    """F1 of the change mask against ``truth``; the pasted patches' median magnitude over the
    background's median, and over the background's 90th percentile."""
    with rasterio.open(outputs["mask"]) as src:
        mask = src.read(1)
    with rasterio.open(outputs["magnitude"]) as src:
        magnitude = src.read(1)
    valid = mask > 0
    pasted, background = np.median(magnitude[truth & valid]), magnitude[valid & ~truth]
    return (f1_score((mask == 2) & valid, truth & valid), float(pasted / np.median(background)),
            float(pasted / np.percentile(background, 90)))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def s2_pair(shared_data, tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("s2")
    before = stack_ssl4eo_s2(shared_data, S2_DATES[0], folder / "s2_june.tif")
    august = stack_ssl4eo_s2(shared_data, S2_DATES[1], folder / "s2_august.tif")
    pasted = paste_water(shared_data, august, FLOODS_S2, folder / "s2_august_water.tif")
    return before, folder / "s2_august_water.tif", patch_truth(pasted)


@pytest.fixture(scope="module")
def s1_pair(shared_data, tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("s1")
    before = stack_ssl4eo_s1(shared_data, S1_DATES[0], folder / "s1_june.tif")
    september = stack_ssl4eo_s1(shared_data, S1_DATES[1], folder / "s1_september.tif")
    pasted = paste_water(shared_data, september, FLOODS_S1, folder / "s1_september_water.tif")
    return before, folder / "s1_september_water.tif", patch_truth(pasted)


@pytest.mark.slow
def test_s2_only_pasted_water_is_found_above_the_seasonal_change(s2_pair, cache, tmp_path) -> None:
    before, after, truth = s2_pair
    dates = ("--before-optical", before, "--after-optical", after, "--method", "embedding")
    result = result_of(run_cli("change", *dates, "--out", tmp_path / "change.tif", "--change-clusters", 3,
                               cache=cache))
    outputs, stats = result["outputs"], result["stats"]
    f1, over_median, over_p90 = score(outputs, truth)
    seasonal = result_of(run_cli("change", *dates, "--threshold", "otsu3", "--out", tmp_path / "c3.tif",
                                 cache=cache))
    f1_seasonal = score(seasonal["outputs"], truth)[0]
    print(f"S2-only: F1 {f1:.3f} (otsu, threshold {stats['threshold']:.3f}), {f1_seasonal:.3f} (otsu3, "
          f"{seasonal['stats']['threshold']:.3f}); pasted median / background median {over_median:.2f}, "
          f"/ background p90 {over_p90:.2f}")
    assert f1_seasonal >= F1_FLOOR_S2 and f1 >= 0.4
    assert over_median > 2.2 and over_p90 > 1.2  # the pasted water stands far above the June -> August season
    assert stats["threshold_how"] == "otsu" and stats["distance"] == "cosine"
    assert seasonal["stats"]["threshold_how"] == "otsu3"
    assert seasonal["stats"]["threshold"] > stats["threshold"]
    for key in ("magnitude", "style", "mask", "mask_style", "types", "types_style"):
        assert Path(outputs[key]).exists(), key
    assert "change type 1" in Path(outputs["types_style"]).read_text()
    assert 'label="change"' in Path(outputs["mask_style"]).read_text()
    with rasterio.open(outputs["types"]) as src:
        types = src.read(1)
    with rasterio.open(outputs["mask"]) as src:
        mask = src.read(1)
    assert ((types > 0) == (mask == 2)).all() and set(np.unique(types)) <= {0, 1, 2, 3}


def test_s1_only_pasted_water_is_found(s1_pair, cache, tmp_path) -> None:
    before, after, truth = s1_pair
    result = result_of(run_cli("change", "--before-sar", before, "--after-sar", after, "--threshold", "otsu3",
                               "--method", "embedding", "--out", tmp_path / "flood.tif", cache=cache))
    f1, over_median, over_p90 = score(result["outputs"], truth)
    print(f"S1-only: F1 {f1:.3f} (otsu3, threshold {result['stats']['threshold']:.3f}); pasted median / "
          f"background median {over_median:.2f}, / background p90 {over_p90:.2f}")
    assert f1 >= F1_FLOOR_S1
    assert over_median > 1.6 and over_p90 > 1.05


def test_fields_given_euclidean_and_threshold_override(s2_pair, cache, tmp_path) -> None:
    """The embedding fields of a first run, given back as fields: same magnitude; --threshold wins."""
    before, after, _ = s2_pair
    first = result_of(run_cli("change", "--before-optical", before, "--after-optical", after,
                              "--method", "embedding", "--out", tmp_path / "a.tif", cache=cache))["outputs"]
    fields = ("--before-embeddings", first["before_embeddings"],
              "--after-embeddings", first["after_embeddings"])
    again = result_of(run_cli("change", *fields, "--out", tmp_path / "b.tif", cache=cache))["outputs"]
    with rasterio.open(first["magnitude"]) as a, rasterio.open(again["magnitude"]) as b:
        assert np.allclose(a.read(), b.read(), equal_nan=True)
    result = result_of(run_cli("change", *fields, "--distance", "euclidean", "--threshold", "0.5",
                               "--out", tmp_path / "c.tif", cache=cache))
    assert result["stats"]["threshold"] == 0.5 and result["stats"]["threshold_how"] == "given"
    assert result["stats"]["distance"] == "euclidean" and result["stats"]["normalised"]
    with rasterio.open(result["outputs"]["magnitude"]) as src:
        values = src.read(1)
    assert np.nanmax(values) <= 2.0 + 1e-5  # unit vectors: euclidean distance at most 2


def test_identical_dates_show_no_change_not_otsu_noise(s2_pair, cache, tmp_path) -> None:
    """Otsu always splits a histogram; on two copies of one date it would call float noise 'change'."""
    before, _, _ = s2_pair
    proc = run_cli("change", "--before-optical", before, "--after-optical", before, "--out",
                   tmp_path / "same.tif", cache=cache)
    stats = result_of(proc)["stats"]
    assert stats["changed_pixels"] == 0 and stats["maximum"] < 0.02
    assert "noise floor" in stats["threshold_how"]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert any(e["event"] == "warning" and "barely differ" in e["message"] for e in events)


@pytest.mark.slow
def test_naip_dates_on_slightly_different_grids(shared_data, cache, tmp_path) -> None:
    """Two NAIP years (rgbn preset, with warnings); the 2020 grid differs and is aligned on the fly."""
    crops = []
    for index, name in enumerate(NAIP):
        with rasterio.open(shared_data / name) as src:
            window = Window(200, 200, 320, 320)
            profile = dict(src.profile, width=320, height=320, transform=src.window_transform(window))
            crops.append(tmp_path / f"naip{index}.tif")
            with rasterio.open(crops[-1], "w", **profile) as dst:
                dst.write(src.read(window=window))
    with rasterio.open(crops[0]) as a, rasterio.open(crops[1]) as b:
        assert a.transform != b.transform
    result = result_of(run_cli("change", "--before-optical", crops[0], "--after-optical", crops[1],
                               "--change-clusters", 4, "--out", tmp_path / "naip.tif", cache=cache))
    stats = result["stats"]
    assert stats["valid_pixels"] == 320 * 320 and stats["method"] == "fused"
    assert 0.0 < stats["changed_fraction"] < 0.8
    assert sum(stats["type_counts"].values()) == stats["changed_pixels"]


def _field(path: Path, data: np.ndarray, crs: str = "EPSG:4326",
           transform: Affine = Affine(0.001, 0, 10, 0, -0.001, 50), **extra: object) -> Path:
    profile = {"driver": "GTiff", "width": data.shape[2], "height": data.shape[1], "count": data.shape[0],
               "dtype": str(data.dtype), "crs": crs, "transform": transform, **extra}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def test_bad_inputs_are_refused_with_nothing_written(shared_data, cache, tmp_path) -> None:
    rng = np.random.default_rng(0)
    field = _field(tmp_path / "a.tif", rng.normal(size=(16, 20, 20)).astype(np.float32))
    far = _field(tmp_path / "far.tif", rng.normal(size=(16, 20, 20)).astype(np.float32),
                 transform=Affine(0.001, 0, 100, 0, -0.001, -20))
    wider = _field(tmp_path / "wider.tif", rng.normal(size=(32, 20, 20)).astype(np.float32))
    empty = _field(tmp_path / "empty.tif", np.full((16, 20, 20), np.nan, np.float32), nodata=float("nan"))
    image = shared_data / "rasterio-rgb-byte/RGB.byte.tif"
    out = tmp_path / "out.tif"
    cases = {
        ("--before-embeddings", image, "--after-embeddings", field): "looks like an image",
        ("--before-embeddings", field, "--after-embeddings", far): "does not overlap",
        ("--before-embeddings", field, "--after-embeddings", wider): "different dimensions",
        ("--before-embeddings", field, "--after-embeddings", empty): "after date holds no valid patch",
        ("--before-embeddings", empty, "--after-embeddings", field): "before date holds no valid patch",
        ("--before-embeddings", field, "--after-optical", image): "same kind of input",
        ("--before-embeddings", field): "give both dates",
        ("--before-embeddings", field, "--after-embeddings", field, "--change-clusters", 500):
            "between 0 and",
    }
    for args, expected in cases.items():
        message = error_of(run_cli("change", *args, "--out", out, cache=cache))
        assert expected in message, (args, message)
        assert "\n" not in message
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "empty.tif", "far.tif", "wider.tif"]
    before = field.read_bytes()
    message = error_of(run_cli("change", "--before-embeddings", field, "--after-embeddings", wider,
                               "--mask-out", field, "--out", out, cache=cache))
    assert "would destroy the input" in message and field.read_bytes() == before and not out.exists()


def _crop(source: Path, window: Window, out: Path, crs: str | None = None) -> Path:
    """A crop of ``source``; with ``crs``, reprojected (bilinear, ~ the same pixel size) into that CRS."""
    from rasterio.warp import calculate_default_transform, reproject

    with rasterio.open(source) as src:
        data, transform = src.read(window=window), src.window_transform(window)
        profile = dict(src.profile, width=window.width, height=window.height, transform=transform)
        if crs is not None:
            bounds = rasterio.windows.bounds(window, src.transform)
            dst_transform, width, height = calculate_default_transform(src.crs, crs, window.width,
                                                                       window.height, *bounds)
            warped = np.zeros((src.count, height, width), data.dtype)
            reproject(data, warped, src_transform=transform, src_crs=src.crs, src_nodata=src.nodata,
                      dst_transform=dst_transform, dst_crs=crs, dst_nodata=src.nodata,
                      resampling=Resampling.bilinear)
            data = warped
            profile.update(crs=crs, transform=dst_transform, width=width, height=height)
        descriptions = src.descriptions
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = descriptions
    return out


@pytest.mark.slow
def test_shifted_and_reprojected_copies_of_one_date_show_no_change(shared_data, cache, tmp_path) -> None:
    """The after raster is embedded on the before raster's pixel grid: a copy shifted by half a patch
    (4 px) or reprojected to UTM is the same ground, not change (it was 17.5 % / 14.5 % "changed")."""
    scene = shared_data / FLOODS_S2
    before = _crop(scene, Window(64, 64, 128, 128), tmp_path / "s2.tif")
    shifted = _crop(scene, Window(60, 60, 136, 136), tmp_path / "s2_shift4.tif")
    utm = _crop(scene, Window(48, 48, 160, 160), tmp_path / "s2_utm.tif", crs="EPSG:32630")
    for after, floor in ((shifted, 1e-3), (utm, 2.3)):
        proc = run_cli("change", "--before-optical", before, "--after-optical", after,
                       "--out", tmp_path / f"change_{after.stem}.tif", cache=cache)
        stats = result_of(proc)["stats"]
        logs = [e["message"] for e in events_of(proc) if e["event"] == "log"]
        print(f"{after.stem}: changed {stats['changed_pixels']} of {stats['valid_pixels']}, "
              f"largest change {stats['maximum']:.3g}, mean {stats['mean']:.3g}")
        assert any("warped onto the before raster's pixel grid" in m for m in logs), logs
        assert stats["valid_pixels"] == 128 * 128
        assert stats["changed_pixels"] == 0 and stats["maximum"] < floor, stats
        assert stats["maximum"] < stats["threshold"] and "noise floor" in stats["threshold_how"]
    # a rerun finds both dates' embeddings in the cache: the warped after VRT is written once
    proc = run_cli("change", "--before-optical", before, "--after-optical", shifted,
                   "--out", tmp_path / "change_again.tif", cache=cache)
    hits = [e["message"] for e in events_of(proc)
            if e["event"] == "log" and e["message"].startswith("cache hit")]
    assert len(hits) == 2, hits
    fields = result_of(proc)["outputs"]
    # Given fields on patch grids half a cell apart, or in another CRS: a warning names the offset.
    with rasterio.open(fields["after_embeddings"]) as src:
        data, profile = src.read(), src.profile
    moved = dict(profile, transform=profile["transform"] * Affine.translation(0.3, 0.25))
    with rasterio.open(tmp_path / "moved.tif", "w", **moved) as dst:
        dst.write(data)
    utm_field = _crop(Path(fields["after_embeddings"]), Window(0, 0, 16, 16), tmp_path / "utm_field.tif",
                      crs="EPSG:32630")
    for field, named in ((tmp_path / "moved.tif", "+0.30 cell in x and +0.25 cell in y"),
                         (utm_field, "EPSG:32630")):
        proc = run_cli("change", "--before-embeddings", fields["before_embeddings"], "--after-embeddings",
                       field, "--out", tmp_path / f"{field.stem}_change.tif", cache=cache)
        result_of(proc)
        warnings = [e["message"] for e in events_of(proc) if e["event"] == "warning"]
        assert any("misregistration shows up as change" in m and named in m for m in warnings), warnings
    same = run_cli("change", "--before-embeddings", fields["before_embeddings"], "--after-embeddings",
                   fields["after_embeddings"], "--out", tmp_path / "same_change.tif", cache=cache)
    result_of(same)
    assert not any("misregistration" in e["message"] for e in events_of(same) if e["event"] == "warning")
