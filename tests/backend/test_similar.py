"""Similarity maps from a point or polygons on rstoolbox-sen2 patch embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from backend.cli import main
from backend.downstream.similarity import similarity_map
from backend.errors import UserError
from backend.io.vectors import read_sample_polygons
from tests.backend.conftest import events_of, run_json
from tests.backend.downstream_data import SEN2, SEN2_POLYGONS, write_embedding_raster


@pytest.fixture(scope="module")
def sen2_embeddings(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("emb")
    return write_embedding_raster(shared_data / SEN2, folder / "emb.tif", nodata_corner=2)


def test_point_similarity_is_one_at_the_point(sen2_embeddings, tmp_path) -> None:
    with rasterio.open(sen2_embeddings) as emb:
        x, y = emb.xy(12, 20)  # centre of patch (row 12, col 20)
        crs = emb.crs
    out = tmp_path / "sim.tif"
    stats = similarity_map(sen2_embeddings, out, point=(x, y), point_crs=crs)
    with rasterio.open(out) as sim:
        values = sim.read(1)
        assert values[12, 20] == pytest.approx(1.0, abs=1e-5)
        assert np.isnan(values[:2, :2]).all() and np.isfinite(values[2:, 2:]).all()
        assert np.nanmin(values) >= -1 and np.nanmax(values) <= 1
    assert stats.query_patches == 1 and stats.maximum == pytest.approx(1.0, abs=1e-5)
    assert "singlebandpseudocolor" in out.with_suffix(".qml").read_text()


def test_point_in_another_crs_and_polygon_query(shared_data, sen2_embeddings, tmp_path) -> None:
    from rasterio.warp import transform

    with rasterio.open(sen2_embeddings) as emb:
        x, y = emb.xy(12, 20)
        (ux,), (uy,) = transform(emb.crs, "EPSG:32721", [x], [y])
        crs = emb.crs
    similarity_map(sen2_embeddings, tmp_path / "utm.tif", point=(ux, uy), point_crs="EPSG:32721")
    with rasterio.open(tmp_path / "utm.tif") as sim:
        assert sim.read(1)[12, 20] == pytest.approx(1.0, abs=1e-5)
    water = read_sample_polygons(shared_data / SEN2_POLYGONS, "class", crs)
    water.polygons = [p for p in water.polygons if p.class_name == "water"]
    stats = similarity_map(sen2_embeddings, tmp_path / "water.tif", samples=water)
    assert stats.query_patches > 1 and stats.maximum > 0.8 and stats.minimum < 0


def test_bad_points_are_clear_errors_without_output(sen2_embeddings, tmp_path, capsys) -> None:
    with rasterio.open(sen2_embeddings) as emb:
        corner = emb.xy(0, 0)
    with pytest.raises(UserError, match="nodata patch"):
        similarity_map(sen2_embeddings, tmp_path / "a.tif", point=corner)
    code = main(["similar", "--embeddings", str(sen2_embeddings), "--point", "10", "10", "--out",
                 str(tmp_path / "b.tif")])
    assert code == 2 and "outside the raster" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_euclidean_map_is_a_similarity_like_the_cosine_map(sen2_embeddings, tmp_path) -> None:
    """``--distance euclidean`` writes the negative distance: high = similar, as on the cosine map."""
    with rasterio.open(sen2_embeddings) as emb:
        x, y = emb.xy(12, 20)
    maps = {}
    for distance in ("cosine", "euclidean"):
        out = tmp_path / f"{distance}.tif"
        code = main(["similar", "--embeddings", str(sen2_embeddings), "--point", str(x), str(y),
                     "--distance", distance, "--out", str(out)])
        assert code == 0
        with rasterio.open(out) as sim:
            maps[distance] = sim.read(1)
            description = sim.descriptions[0]
        assert description.startswith("similarity"), description
    euclidean, cosine = maps["euclidean"], maps["cosine"]
    assert "negative euclidean distance" in description
    assert euclidean[12, 20] == pytest.approx(0.0, abs=1e-5) and np.nanmax(euclidean) <= 1e-5
    assert np.nanmin(euclidean) < -0.1
    valid = np.isfinite(euclidean)
    # both maps rank the patches alike (high = similar to the query)
    assert np.corrcoef(euclidean[valid], cosine[valid])[0, 1] > 0.5


def test_point_outside_the_raster_is_refused_before_embedding(shared_data, tmp_path) -> None:
    """The point is checked against the raster's area (after --point-crs) before anything is embedded."""
    cache = tmp_path / "cache"
    proc = run_json("similar", "--optical", shared_data / "sen1floods11/Spain_7370579_S2Hand.tif", "--point",
                    "2.35", "48.85", "--point-crs", "EPSG:4326", "--out", tmp_path / "sim.tif", "--cache-dir",
                    cache, timeout=600)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    events = events_of(proc)
    errors = [e["message"] for e in events if e["event"] == "error"]
    assert len(errors) == 1 and "outside the raster" in errors[0] and "\n" not in errors[0], errors
    assert not any(e["event"] == "log" and e["message"].startswith("embedding ") for e in events), events
    assert not list(cache.rglob("*.tif")) and not (tmp_path / "sim.tif").exists()
