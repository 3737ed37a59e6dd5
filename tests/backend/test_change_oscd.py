"""``change``'s default (spectral change fused with the embedding change, pixel level) on real data.

* A 256 x 256 px crop of the OSCD city Nantes (Sentinel-2 Level-1C, 2015-08-21 -> 2017-10-14, the
  dataset's urban change map as truth, 2.0 % of the crop changed): the default mask's pixel F1 and
  the magnitude's average precision are at least the raw-band baseline's on the same crop (the
  data folder's ``raw_band_baseline.py``: Otsu on the norm of the z-scored B02 B03 B04 B08
  difference); the changed share is in the stats and the log. The whole-city figures are in
  ``docs/change_detection.md`` (``scripts/score_oscd.py``).
* ssl4eo-s12 irrigated cropland, June -> August 2020: fields turn from bare soil to crops over a
  large part of the scene; Otsu's threshold (``--threshold otsu``) splits that seasonal change off,
  the changed share exceeds 20 % (30 % with Galileo nano) and the run warns with advice. The
  default robust threshold marks almost nothing, and the run warns that the dates' bands barely
  agree (median correlation 0.14; OSCD's city pairs 0.82-0.84).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from scripts.score_oscd import baseline_module, change_map_truth, raw_band_score, stack_city
from tests.backend.conftest import events_of, result_of
from tests.backend.test_change import S2_DATES, run_cli, stack_ssl4eo_s2

OSCD = "oscd-change"
CITY = "nantes"
CROP = Window(0, 160, 256, 256)


def test_default_change_beats_the_raw_bands_on_an_oscd_crop(shared_data: Path, tmp_path: Path) -> None:
    city = shared_data / OSCD / CITY
    before = stack_city(city, "imgs_1", tmp_path / "before.tif", CROP)
    after = stack_city(city, "imgs_2", tmp_path / "after.tif", CROP)
    truth = change_map_truth(city, CROP).ravel()
    proc = run_cli("change", "--before-optical", before, "--after-optical", after, "--out",
                   tmp_path / "change.tif", cache=tmp_path / "cache")
    result = result_of(proc)
    stats, outputs = result["stats"], result["outputs"]
    with rasterio.open(outputs["mask"]) as src:
        mask = src.read(1).ravel()
    with rasterio.open(outputs["magnitude"]) as src:
        magnitude = src.read(1).ravel()
    base = baseline_module(shared_data / OSCD)
    raw = raw_band_score(base, before, after).ravel()
    raw_f1 = base.prf(raw > base.otsu_threshold(raw), truth)[2]
    raw_ap = base.curve_stats(raw, truth)[2]
    f1 = base.prf(mask == 2, truth)[2]
    ap = base.curve_stats(np.where(np.isfinite(magnitude), magnitude, -np.inf), truth)[2]
    print(f"{CITY} crop: default F1 {f1:.3f} AP {ap:.3f} ({100 * stats['changed_fraction']:.1f} % changed); "
          f"raw bands F1 {raw_f1:.3f} AP {raw_ap:.3f}")
    assert f1 >= raw_f1 and ap >= raw_ap
    assert stats["method"] == "fused" and stats["cell"] == "pixel" and stats["threshold_how"] == "robust"
    assert stats["valid_pixels"] == CROP.width * CROP.height == (mask > 0).sum()
    assert stats["changed_pixels"] == (mask == 2).sum()
    assert stats["changed_fraction"] == stats["changed_pixels"] / stats["valid_pixels"] < 0.2
    logs = [e["message"] for e in events_of(proc) if e["event"] == "log"]
    share = f"({100 * stats['changed_fraction']:.1f} % of the valid area)"
    assert any(share in m for m in logs), logs
    warnings = [e["message"] for e in events_of(proc) if e["event"] == "warning"]
    assert not any("of the valid area is marked" in m or "barely agree" in m for m in warnings), warnings
    assert stats["band_correlation"] > 0.5


def test_an_implausible_changed_share_is_warned(shared_data: Path, tmp_path: Path) -> None:
    june = stack_ssl4eo_s2(shared_data, S2_DATES[0], tmp_path / "june.tif")
    august = stack_ssl4eo_s2(shared_data, S2_DATES[1], tmp_path / "august.tif")
    proc = run_cli("change", "--before-optical", june, "--after-optical", august, "--threshold", "otsu",
                   "--out", tmp_path / "change.tif", cache=tmp_path / "cache")
    stats = result_of(proc)["stats"]
    warnings = [e["message"] for e in events_of(proc) if e["event"] == "warning"]
    print(f"June -> August: {100 * stats['changed_fraction']:.1f} % changed; {warnings}")
    assert stats["changed_fraction"] > 0.2
    assert any("of the valid area is marked as changed" in m and "--threshold robust" in m for m in warnings)
    # The default threshold marks only the strongest differences; the dates' disagreement is warned.
    proc = run_cli("change", "--before-optical", june, "--after-optical", august, "--out",
                   tmp_path / "default.tif", cache=tmp_path / "cache")
    stats = result_of(proc)["stats"]
    warnings = [e["message"] for e in events_of(proc) if e["event"] == "warning"]
    print(f"default: {100 * stats['changed_fraction']:.1f} % changed, band correlation "
          f"{stats['band_correlation']:.2f}; {warnings}")
    assert stats["changed_fraction"] < 0.2 and stats["band_correlation"] < 0.5
    assert any("bands barely agree" in m for m in warnings), warnings
