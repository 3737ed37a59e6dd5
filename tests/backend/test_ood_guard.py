"""The out-of-distribution guard and ``warning`` events, on real rasters through the real CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from rasterio.windows import Window

from backend.events import Reporter
from backend.inference.guard import collapse_warning, degenerate_reason, input_warning, mean_pairwise_cosine
from tests.backend.conftest import events_of, run_backend, run_json

SEN2 = "rstoolbox-sen2/sen2.tif"
SEN2_POLYGONS = "rstoolbox-sen2/trainingPolygons_sen2.geojson"
RGB_BYTE = "rasterio-rgb-byte/RGB.byte.tif"


#: Every run pins the CROMA model: the guard's thresholds and figures are measured on it.
CROMA = ("--model", "terraprobe-croma-small")


def run_croma(*args: str | Path, timeout: float = 180) -> list[dict]:
    """Run the backend (CROMA model) with JSON events; every event, the last one the result."""
    done = run_json(*args, *CROMA, timeout=timeout)
    assert done.returncode == 0, done.stderr + done.stdout[-2000:]
    events = events_of(done)
    assert events[-1]["event"] == "result"
    return events


def warnings_of(events: list[dict]) -> list[str]:
    return [e["message"] for e in events if e["event"] == "warning"]


def test_warning_is_its_own_event(capsys) -> None:
    stream = io.StringIO()
    Reporter("json", stream).warning("values look odd")
    assert json.loads(stream.getvalue()) == {"event": "warning", "message": "values look odd"}
    Reporter("human").warning("values look odd")
    assert capsys.readouterr().err == "warning: values look odd\n"


def test_eight_bit_rgb_forced_into_the_bands_warns(shared_data, tmp_path) -> None:
    crop = Window(256, 224, 256, 256)
    with rasterio.open(shared_data / RGB_BYTE) as src:
        profile = dict(src.profile, width=256, height=256, transform=src.window_transform(crop))
        data = src.read(window=crop)
    rgb = tmp_path / "rgb.tif"
    with rasterio.open(rgb, "w", **profile) as dst:
        dst.write(data)
    events = run_croma("embed", "--optical", rgb, "--optical-bands", "3,3,2,1,1,1,1,1,1,1,1,1",
                       "--out", tmp_path / "emb.tif", "--cache-dir", tmp_path / "cache")
    found = warnings_of(events)
    assert any("uncalibrated 8-bit brightness" in w and "not comparable with Sentinel-2" in w for w in found)
    result = events[-1]["stats"]
    assert result["units"] == {"optical": "brightness"} and set(found) <= set(result["warnings"])


def _cluster_of_classes(clusters: Path, polygons: Path) -> dict[str, np.ndarray]:
    """Cluster label counts under each class's polygons."""
    features = json.loads(polygons.read_text())["features"]
    with rasterio.open(clusters) as src:
        labels = src.read(1)
        counts = {}
        for name in {f["properties"]["class"] for f in features}:
            shapes = [transform_geom("OGC:CRS84", src.crs, f["geometry"]) for f in features
                      if f["properties"]["class"] == name]
            inside = rasterize(shapes, out_shape=labels.shape, transform=src.transform, all_touched=True)
            counts[name] = np.bincount(labels[inside.astype(bool)], minlength=5)[1:]
    return counts


def test_reflectance_input_clusters_into_a_real_map(shared_data, tmp_path) -> None:
    events = run_croma("cluster", "--optical", shared_data / SEN2, "--k", "4", "--out", tmp_path / "k.tif",
                       "--cache-dir", tmp_path / "cache")
    stats = events[-1]["stats"]
    assert stats["units"] == {"optical": "reflectance"}
    assert stats["warnings"] == [] and not warnings_of(events)
    assert stats["iterations"] > 1
    sizes = np.array(list(stats["cluster_sizes"].values()))
    assert len(sizes) == 4 and sizes.min() >= 0.05 * stats["valid_patches"]
    counts = _cluster_of_classes(tmp_path / "k.tif", shared_data / SEN2_POLYGONS)
    majority = {name: int(c.argmax()) for name, c in counts.items()}
    assert len({majority["forest"], majority["water"], majority["village"]}) == 3, counts
    assert counts["village"].max() >= 0.6 * counts["village"].sum(), counts


def test_reflectance_read_as_dn_is_refused_by_every_embedding_command(shared_data, tmp_path) -> None:
    """Degenerate embeddings are an error (exit 2), written nowhere, with the detected units and the fix."""
    cache = tmp_path / "cache"
    common = [str(a) for a in ("--optical", shared_data / SEN2, "--optical-units", "dn", "--cache-dir", cache,
                                "--events", "json", *CROMA)]
    for command, extra in (("embed", ()), ("cluster", ("--k", "4")),
                           ("classify", ("--samples", shared_data / SEN2_POLYGONS, "--class-field", "class")),
                           ("similar", ("--point", "-56.36", "-1.47"))):
        out = tmp_path / f"{command}.tif"
        done = run_backend(command, *common, *extra, "--out", out, timeout=180)
        assert done.returncode == 2, (command, done.stderr[-2000:])
        errors = [json.loads(line)["message"] for line in done.stdout.splitlines()
                  if line.startswith("{") and json.loads(line)["event"] == "error"]
        assert len(errors) == 1 and "Traceback" not in done.stderr, (command, done.stdout[-2000:])
        assert "the embeddings are degenerate (near-" in errors[0] and "nothing was written" in errors[0]
        assert "optical units dn (declared)" in errors[0] and "sensor sentinel2" in errors[0]
        assert "--sensor" in errors[0] and "--optical-units" in errors[0]
        assert not out.exists() and not list(cache.glob("*.tif")) and not list(cache.glob("*.json"))


def test_guard_thresholds_on_real_statistics(shared_data) -> None:
    with rasterio.open(shared_data / SEN2) as src:
        values = src.read(masked=True).reshape(src.count, -1).astype(np.float64)
    names = [f"b{i}" for i in range(12)]
    mean, std = values.mean(axis=1), values.std(axis=1)
    model_mean, model_std = mean * 10000, std * 10000
    assert input_warning("optical", names, mean * 10000, std * 10000, model_mean, model_std, "dn") is None
    warning = input_warning("optical", names, mean, std, model_mean, model_std, "dn")
    assert warning is not None and "12 of 12 band(s)" in warning


def test_collapse_guard_on_real_embeddings(shared_data, tmp_path) -> None:
    run_croma("embed", "--optical", shared_data / SEN2, "--out", tmp_path / "emb.tif",
              "--cache-dir", tmp_path / "cache")
    with rasterio.open(tmp_path / "emb.tif") as src:
        vectors = src.read().reshape(src.count, -1).T
    assert mean_pairwise_cosine(vectors) < 0.9 and collapse_warning(vectors) is None
    assert collapse_warning(vectors[:1].repeat(50, axis=0) + 1e-4 * vectors[:50]) is not None
    assert degenerate_reason(vectors) is None
    assert "near-constant" in degenerate_reason(0 * vectors)  # the cosine cannot see all-zero vectors
    two = vectors[[0, len(vectors) // 2]].repeat(40, axis=0)  # e.g. land and nodata-filled patches only
    assert "only 2 distinct vector(s) among 80" in degenerate_reason(two)


def test_a_cache_entry_recorded_as_collapsed_is_refused(shared_data, tmp_path) -> None:
    """Entries written before degenerate embeddings became an error carry the collapse warning only."""
    cache = tmp_path / "cache"
    common = ("--optical", shared_data / SEN2, "--cache-dir", cache, *CROMA)
    run_croma("embed", *common, "--out", tmp_path / "emb.tif")
    (sidecar,) = cache.glob("*.json")
    record = json.loads(sidecar.read_text())
    record["stats"]["warnings"] = ["the embeddings have collapsed: sampled patch vectors are near-identical"]
    sidecar.write_text(json.dumps(record))
    out = tmp_path / "k.tif"
    done = run_backend("cluster", *common, "--k", "4", "--out", out, timeout=180)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cache hit" in done.stdout + done.stderr and not out.exists()
    assert "error: the embeddings are degenerate (collapsed, as recorded in the cache entry)" in done.stderr
