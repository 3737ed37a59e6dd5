"""k-means: agreement with scikit-learn, streamed == in-memory, cluster rasters and CLI errors."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from backend.cli import main
from backend.downstream.kmeans import cluster_embeddings, kmeans_plus_plus, lloyd, minibatch_kmeans
from backend.errors import UserError
from backend.inference.embedding_raster import EmbeddingRaster
from tests.backend.conftest import run_backend
from tests.backend.downstream_data import SEN2, write_embedding_raster


@pytest.fixture(scope="module")
def sen2_embeddings(shared_data, tmp_path_factory):
    return write_embedding_raster(shared_data / SEN2, tmp_path_factory.mktemp("emb") / "sen2_emb.tif",
                                  nodata_corner=3)


def _vectors(path) -> np.ndarray:
    with EmbeddingRaster(path) as reader:
        vectors, _, _ = reader.read_vectors()
    return vectors


def test_lloyd_matches_scikit_learn_from_the_same_start(sen2_embeddings) -> None:
    from sklearn.cluster import KMeans

    x = torch.from_numpy(_vectors(sen2_embeddings))
    initial = kmeans_plus_plus(x, 6, torch.Generator().manual_seed(1))
    ours = lloyd(x, initial, iterations=15, tol=-1.0)
    reference = KMeans(6, init=initial.numpy(), n_init=1, max_iter=15, tol=0, algorithm="lloyd")
    reference.fit(x.numpy())
    assert ours.inertia == pytest.approx(reference.inertia_, rel=1e-3)
    np.testing.assert_allclose(np.sort(ours.centres.numpy(), axis=0),
                               np.sort(reference.cluster_centers_, axis=0), atol=1e-3)
    mini = minibatch_kmeans(x, initial, iterations=5, batch_size=128,
                            generator=torch.Generator().manual_seed(0))
    assert mini.inertia < 1.1 * reference.inertia_


def test_cluster_raster_keeps_grid_and_nodata(sen2_embeddings, tmp_path) -> None:
    out = tmp_path / "clusters.tif"
    stats = cluster_embeddings(sen2_embeddings, out, k=5, seed=0)
    streamed = cluster_embeddings(sen2_embeddings, tmp_path / "streamed.tif", k=5, seed=0, memory_budget=1)
    assert stats.in_memory and not streamed.in_memory
    with rasterio.open(out) as result, rasterio.open(sen2_embeddings) as emb, \
            rasterio.open(tmp_path / "streamed.tif") as other:
        classes = result.read(1)
        assert (result.crs, result.transform, result.shape) == (emb.crs, emb.transform, emb.shape)
        assert result.dtypes[0] == "uint8" and result.nodata == 0
        nodata = ~np.isfinite(emb.read()).all(axis=0)
        assert (classes[nodata] == 0).all() and (classes[~nodata] >= 1).all()
        assert set(np.unique(classes[~nodata])) == {1, 2, 3, 4, 5}
        np.testing.assert_array_equal(classes, other.read(1))
    sizes = list(stats.cluster_sizes.values())
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == stats.valid_patches
    assert 'label="cluster 5"' in out.with_suffix(".qml").read_text()


def test_seeded_runs_repeat(sen2_embeddings, tmp_path) -> None:
    for name in ("a.tif", "b.tif"):
        cluster_embeddings(sen2_embeddings, tmp_path / name, k=4, seed=3)
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_k_larger_than_patches_is_a_clear_error_without_output(sen2_embeddings, tmp_path, capsys) -> None:
    out = tmp_path / "clusters.tif"
    with pytest.raises(UserError, match="larger than the number of valid patches"):
        cluster_embeddings(sen2_embeddings, out, k=5000)
    code = main(["cluster", "--embeddings", str(sen2_embeddings), "--k", "5000", "--out", str(out)])
    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--k 5000" in errors[0]
    assert list(tmp_path.iterdir()) == []


def test_cluster_cli_end_to_end_through_the_encoder(shared_data, tmp_path) -> None:
    """The real command in a real process: the bundled encoder on rstoolbox-sen2, then k-means.

    (A tiny random-init encoder gives near-constant embeddings, which ``embed`` now refuses.)
    """
    out = tmp_path / "out" / "clusters.tif"
    done = run_backend("cluster", "--optical", shared_data / SEN2, "--k", "4",
                       "--window", "64", "--overlap", "16", "--cache-dir", tmp_path / "cache", "--out", out,
                       "--events", "json")
    assert done.returncode == 0, done.stderr
    import json

    events = [json.loads(line) for line in done.stdout.splitlines()]
    result = next(e for e in events if e["event"] == "result")
    assert result["outputs"]["clusters"] == str(out) and result["stats"]["k"] == 4
    with rasterio.open(out) as clusters, rasterio.open(shared_data / SEN2) as source:
        assert clusters.crs == source.crs
        assert clusters.transform.almost_equals(source.transform * source.transform.scale(8))
        assert clusters.shape == (-(-source.height // 8), -(-source.width // 8))
        assert set(np.unique(clusters.read(1))) <= {1, 2, 3, 4}


def test_threaded_chunked_lloyd_matches_scikit_learn(sen2_embeddings, monkeypatch) -> None:
    """Many small chunks and tasks over two worker threads give scikit-learn's Lloyd result."""
    from sklearn.cluster import KMeans

    import backend.downstream.kmeans as kmeans

    monkeypatch.setattr(kmeans, "CPU_CHUNK", 37)
    monkeypatch.setattr(kmeans, "CPU_TASK_CHUNKS", 3)
    x = torch.from_numpy(_vectors(sen2_embeddings))
    initial = kmeans_plus_plus(x, 5, torch.Generator().manual_seed(2))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ours = lloyd(x, initial, iterations=12, tol=-1.0)
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads
    reference = KMeans(5, init=initial.numpy(), n_init=1, max_iter=12, tol=0, algorithm="lloyd")
    reference.fit(x.numpy())
    assert ours.inertia == pytest.approx(reference.inertia_, rel=1e-4)
    assert sorted(ours.counts.tolist()) == sorted(np.bincount(reference.labels_, minlength=5).tolist())
    labels, distances = kmeans.assign(x, ours.centres)
    assert float(distances.double().sum()) == pytest.approx(ours.inertia, rel=1e-5)
    assert torch.equal(torch.bincount(labels, minlength=5), ours.counts)


def test_embedding_raster_blocks_cover_the_raster(sen2_embeddings) -> None:
    """Small streamed strips give exactly the whole-raster read."""
    with EmbeddingRaster(sen2_embeddings) as raster:
        whole, valid = raster.read()
        assert whole.shape == (raster.dim, raster.height, raster.width)
        assert (~valid).sum() == 9 and np.isnan(whole[:, ~valid]).all()
        windows = raster.windows(max_patches=3 * raster.width + 1)
        assert [w.height for w in windows[:-1]] == [3] * (len(windows) - 1)
        assert sum(w.height for w in windows) == raster.height
        strips = [vectors for vectors, _, _ in (raster.read_vectors(w) for w in windows)]
        np.testing.assert_array_equal(np.concatenate(strips), whole[:, valid].T)
        for window, array, strip_valid in raster.iter_blocks(max_patches=3 * raster.width + 1):
            rows = slice(window.row_off, window.row_off + window.height)
            np.testing.assert_array_equal(strip_valid, valid[rows])
            np.testing.assert_array_equal(array, whole[:, rows])


def _collapsed_copy(source, out) -> None:
    """``source`` with each patch's vector replaced by one of two of its real vectors (collapsed)."""
    with rasterio.open(source) as src:
        profile, vectors = src.profile, src.read()
    valid = np.isfinite(vectors).all(axis=0)
    rows, cols = np.nonzero(valid)
    first, second = vectors[:, rows[0], cols[0]], vectors[:, rows[-1], cols[-1]]
    upper = np.arange(vectors.shape[1])[:, None] < vectors.shape[1] // 2
    collapsed = np.where(upper[None], first[:, None, None], second[:, None, None])
    collapsed = np.broadcast_to(collapsed, vectors.shape).copy()
    collapsed[:, ~valid] = np.nan
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(collapsed.astype(np.float32))


def test_empty_clusters_are_counted_and_warned(sen2_embeddings, tmp_path, capsys) -> None:
    """Two distinct vectors and k = 4: the result says 2 populated, names the empty clusters, and warns."""
    collapsed = tmp_path / "collapsed.tif"
    _collapsed_copy(sen2_embeddings, collapsed)
    stats = cluster_embeddings(collapsed, tmp_path / "direct.tif", k=4, seed=0)
    assert stats.populated_clusters == 2 and stats.empty_clusters == [3, 4]
    code = main(["cluster", "--embeddings", str(collapsed), "--k", "4", "--out", str(tmp_path / "c.tif"),
                 "--events", "json"])
    assert code == 0
    import json

    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    result = next(e for e in events if e["event"] == "result")["stats"]
    assert (result["populated_clusters"], result["empty_clusters"]) == (2, [3, 4])
    warned = [e["message"] for e in events if e["event"] == "warning"]
    assert any("only 2 of the 4 clusters hold patches" in message for message in warned)
