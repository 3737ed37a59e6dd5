"""``python -m backend worker``: requests through one long-lived process give what plain runs give."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.backend.conftest import run_backend
from tests.backend.downstream_data import write_embedding_raster

POINT = ("-56.3625", "-1.4693")


@pytest.fixture(scope="module")
def embeddings(shared_data, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("worker")
    return write_embedding_raster(shared_data / "rstoolbox-sen2" / "sen2.tif", folder / "emb.tif")


def _worker(requests: list[list[str]], *options: str) -> tuple[list[list[dict]], str, int]:
    """Send ``requests`` to one worker; the events of each request (its exit line last), stderr, code."""
    lines = "".join(json.dumps({"id": n, "argv": argv}) + "\n" for n, argv in enumerate(requests, 1))
    proc = run_backend("worker", *options, input=lines, timeout=600)
    jobs: list[list[dict]] = [[]]
    for line in proc.stdout.splitlines():
        event = json.loads(line)
        if event["event"] == "heartbeat":
            continue
        jobs[-1].append(event)
        if event["event"] == "exit":
            jobs.append([])
    return [job for job in jobs if job], proc.stderr, proc.returncode


def _pixels(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_two_jobs_through_one_worker_match_plain_runs(embeddings, tmp_path) -> None:
    def argv(name: str, folder: Path) -> list[str]:
        if name == "cluster":
            return ["cluster", "--embeddings", str(embeddings), "--k", "4", "--out", str(folder / "k.tif"),
                    "--events", "json"]
        return ["similar", "--embeddings", str(embeddings), "--point", *POINT, "--point-crs", "EPSG:4326",
                "--out", str(folder / "s.tif"), "--events", "json"]

    plain, pooled = tmp_path / "plain", tmp_path / "pooled"
    plain.mkdir()
    pooled.mkdir()
    for name in ("cluster", "similar"):
        assert run_backend(*argv(name, plain)).returncode == 0
    jobs, stderr, code = _worker([argv("cluster", pooled), argv("similar", pooled)])
    assert code == 0, stderr
    assert [job[-1] for job in jobs] == [{"event": "exit", "id": 1, "code": 0},
                                         {"event": "exit", "id": 2, "code": 0}]
    assert [[e["event"] for e in job].count("result") for job in jobs] == [1, 1]
    for name in ("k.tif", "s.tif"):
        np.testing.assert_array_equal(_pixels(plain / name), _pixels(pooled / name))


def test_bad_input_then_good_job_no_state_leak(embeddings, tmp_path) -> None:
    missing = tmp_path / "missing.tif"
    bad = ["cluster", "--embeddings", str(missing), "--k", "4", "--out", str(tmp_path / "bad.tif"),
           "--events", "json"]
    good = ["cluster", "--embeddings", str(embeddings), "--k", "4", "--out", str(tmp_path / "good.tif"),
            "--events", "json"]
    plain = run_backend(*bad)
    jobs, stderr, code = _worker([bad, good, ["selftest", "--no-such-option", "--events", "json"],
                                  ["selftest", "--steps", "2", "--events", "json"]])
    assert code == 0, stderr
    assert [job[-1]["code"] for job in jobs] == [plain.returncode, 0, 2, 0] == [2, 0, 2, 0]
    errors = [e for e in jobs[0] if e["event"] == "error"]
    assert len(errors) == 1 and errors == [json.loads(line) for line in plain.stdout.splitlines()
                                           if '"error"' in line]
    assert all(e["event"] != "error" for e in jobs[1] + jobs[3])
    assert not (tmp_path / "bad.tif").exists() and (tmp_path / "good.tif").is_file()
    assert "--no-such-option" in stderr  # argparse's message, as from a plain run


def test_in_process_state_is_restored(embeddings, tmp_path, capsys) -> None:
    """Signal handlers, warnings filters, the environment and torch's state are put back after a job."""
    import os
    import signal
    import warnings

    import torch

    from backend.jobs import worker

    worker.preload()
    state = worker._State()
    before = (signal.getsignal(signal.SIGTERM), list(warnings.filters), dict(os.environ),
              torch.get_num_threads(), torch.random.get_rng_state())
    torch.manual_seed(1234)  # what a job may leave behind
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    os.environ["TERRAPROBE_WORKER_TEST"] = "1"
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    state.restore()
    code = worker.run_request(["cluster", "--embeddings", str(tmp_path / "none.tif"), "--k", "3",
                               "--out", str(tmp_path / "x.tif"), "--events", "json"], state)
    assert code == 2
    after = (signal.getsignal(signal.SIGTERM), list(warnings.filters), dict(os.environ),
             torch.get_num_threads(), torch.random.get_rng_state())
    assert after[:4] == before[:4]
    assert torch.equal(after[4], before[4])
    assert capsys.readouterr().out.count('"event": "error"') == 1


def test_worker_retires_after_max_jobs(tmp_path) -> None:
    jobs, stderr, code = _worker([["selftest", "--steps", "1", "--events", "json"]] * 3, "--max-jobs", "2")
    assert code == 0, stderr
    assert [job[-1] for job in jobs] == [{"event": "exit", "id": 1, "code": 0},
                                         {"event": "exit", "id": 2, "code": 0, "retire": True}]
