"""The pooled backend worker behind ``run_backend`` (issue 12): reuse, overhead, cancel, crash, concurrency.

``TERRAPROBE_WORKER_RUNS=5`` makes the overhead test take medians of 5 runs (docs/benchmarks.md); the
figures are written to ``test-output/worker_overhead.json`` and printed.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugin import backend_client
from plugin.backend_client import run_backend
from plugin.interpreter import PLUGIN_ROOT
from plugin.process_client import BackendCancelled, BackendError
from plugin.worker_client import shutdown_workers, worker_pids
from tests.backend.downstream_data import write_embedding_raster

from ..conftest import backend_python

RUNS = int(os.environ.get("TERRAPROBE_WORKER_RUNS", "1"))


@pytest.fixture(autouse=True)
def fresh_pool() -> Iterator[None]:
    shutdown_workers()
    yield
    shutdown_workers()


@pytest.fixture(scope="module")
def embeddings(shared_data, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("worker-plugin")
    return write_embedding_raster(shared_data / "rstoolbox-sen2" / "sen2.tif", folder / "emb.tif")


#: The downstream computation of each measured command (module, function), as scripts/startup_overhead.py.
COMPUTATIONS = {"cluster": ("backend.downstream.kmeans", "cluster_embeddings"),
                "classify": ("backend.downstream.classify", "classify_map"),
                "similar": ("backend.downstream.similarity", "similarity_map")}


def _argv(command: str, embeddings: Path, out: Path) -> list[str]:
    data = embeddings.parent.parent
    extra = {"cluster": ["--k", "4"],
             "classify": ["--samples", str(data / "polygons.geojson"), "--class-field", "class"],
             "similar": ["--point", "-56.3625", "-1.4693", "--point-crs", "EPSG:4326"]}[command]
    return [command, "--embeddings", str(embeddings), *extra, "--out", str(out)]


def _timed_run(argv: list[str], keep: bool, pids: list[int] | None = None) -> float:
    """Wall seconds of one command through ``run_backend``."""
    began = time.perf_counter()
    result = run_backend(argv, python=backend_python(), keep_running=keep,
                         on_start=pids.append if pids is not None else None)
    assert Path(argv[argv.index("--out") + 1]).is_file() and result.exit_code == 0
    return time.perf_counter() - began


def _cluster(embeddings: Path, out: Path, keep: bool, pids: list[int] | None = None) -> float:
    return _timed_run(_argv("cluster", embeddings, out), keep, pids)


def _torch_import_seconds() -> float:
    code = "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"
    return float(subprocess.run([backend_python(), "-c", code], capture_output=True, text=True,
                                check=True).stdout)


def _compute_seconds(command: str, argv: list[str]) -> float:
    """The job's own computation (median of runs 2-4), timed inside one preloaded backend process."""
    module, function = COMPUTATIONS[command]
    code = f"""
import importlib, statistics, sys, time
from backend.jobs import worker
worker.preload()
spent = []
module = importlib.import_module({module!r})
inner = getattr(module, {function!r})
def timed(*a, **k):
    t = time.perf_counter()
    try:
        return inner(*a, **k)
    finally:
        spent.append(time.perf_counter() - t)
setattr(module, {function!r}, timed)
state = worker._State()
for _ in range(4):
    assert worker.run_request({[*argv, "--events", "json"]!r}, state) == 0
sys.stderr.write(repr(statistics.median(spent[1:])) + "\\n")
"""
    done = subprocess.run([backend_python(), "-c", code], capture_output=True, text=True, check=True,
                          cwd=PLUGIN_ROOT)
    return float(done.stderr.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def polygons(shared_data, embeddings) -> Path:
    target = embeddings.parent.parent / "polygons.geojson"
    target.write_bytes((shared_data / "rstoolbox-sen2" / "trainingPolygons_sen2.geojson").read_bytes())
    return target


# The suite checks cluster once; TERRAPROBE_WORKER_RUNS=5 measures all three (docs/benchmarks.md).
@pytest.mark.parametrize("command", ["cluster"] if RUNS == 1 else ["cluster", "classify", "similar"])
def test_a_warm_worker_skips_the_start_up(command, embeddings, polygons, tmp_path, test_output_dir) -> None:
    plain = [_timed_run(_argv(command, embeddings, tmp_path / f"plain{n}.tif"), keep=False)
             for n in range(RUNS)]
    pids: list[int] = []
    first = _timed_run(_argv(command, embeddings, tmp_path / "first.tif"), keep=True, pids=pids)
    warm = [_timed_run(_argv(command, embeddings, tmp_path / f"warm{n}.tif"), keep=True, pids=pids)
            for n in range(RUNS)]
    assert len(set(pids)) == 1 and worker_pids() == pids[:1]  # one worker served them all
    torch_import = _torch_import_seconds()
    compute = _compute_seconds(command, _argv(command, embeddings, tmp_path / "compute.tif"))
    figures = {"command": command, "runs": RUNS, "plain_wall_s": statistics.median(plain),
               "worker_first_wall_s": first, "worker_warm_wall_s": statistics.median(warm),
               "torch_import_s": torch_import, "compute_s": compute,
               "plain_overhead_s": statistics.median(plain) - compute,
               "worker_overhead_s": statistics.median(warm) - compute, "load_average": os.getloadavg()[0]}
    record = test_output_dir / "worker_overhead.json"
    previous = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
    previous = previous if isinstance(previous, dict) and "command" not in previous else {}
    record.write_text(json.dumps({**previous, command: figures}, indent=2), encoding="utf-8")
    print(json.dumps(figures))
    # The torch import alone (measured apart, noisy on a busy machine) is most of a plain run's overhead.
    assert figures["worker_warm_wall_s"] < 0.5 * figures["plain_wall_s"]
    assert figures["worker_overhead_s"] < 1.0


def _embed_args(shared_data: Path, tmp_path: Path) -> list[str]:
    return ["embed", "--optical", str(shared_data / "sen1floods11" / "Spain_7370579_S2Hand.tif"),
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "emb.tif")]


def test_cancel_kills_the_worker_and_the_next_action_works(shared_data, embeddings, tmp_path) -> None:
    _cluster(embeddings, tmp_path / "warmup.tif", keep=True)  # the worker is up and idle
    (worker,) = worker_pids()
    progressed: list[dict] = []

    def on_event(event: dict) -> None:
        if event.get("event") == "progress":
            progressed.append(event)  # the job is under way: cancel it now

    with pytest.raises(BackendCancelled):
        run_backend(_embed_args(shared_data, tmp_path), python=backend_python(), keep_running=True,
                    on_event=on_event, is_canceled=lambda: bool(progressed))
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)
    assert not (tmp_path / "emb.tif").exists()
    assert not list(tmp_path.glob("emb*.tif*"))
    pids: list[int] = []
    _cluster(embeddings, tmp_path / "after.tif", keep=True, pids=pids)
    assert pids and pids[0] != worker and worker_pids() == pids


def test_a_worker_killed_mid_job_is_reported_and_replaced(shared_data, embeddings, tmp_path) -> None:
    pids: list[int] = []

    def kill_it(event: dict) -> None:
        if event.get("event") == "progress" and pids:
            os.kill(pids[0], signal.SIGKILL)  # what the out-of-memory killer does
            pids.append(-1)

    with pytest.raises(BackendError) as info:
        run_backend(_embed_args(shared_data, tmp_path), python=backend_python(), keep_running=True,
                    on_event=kill_it, on_start=pids.append)
    assert not isinstance(info.value, BackendCancelled)
    assert info.value.kind == "crashed"
    assert info.value.message.startswith("the backend stopped unexpectedly")
    after: list[int] = []
    _cluster(embeddings, tmp_path / "after.tif", keep=True, pids=after)
    assert after[0] != pids[0]
    # Dead while idle: the next action notices before sending and starts a fresh worker.
    os.kill(after[0], signal.SIGKILL)
    os.waitid(os.P_PID, after[0], os.WEXITED | os.WNOWAIT)  # dead; left unreaped for the client to find
    again: list[int] = []
    _cluster(embeddings, tmp_path / "again.tif", keep=True, pids=again)
    assert again[0] != after[0]


def test_a_second_concurrent_action_gets_a_plain_process(embeddings, tmp_path) -> None:
    _cluster(embeddings, tmp_path / "warmup.tif", keep=True)
    (worker,) = worker_pids()
    inner_pids: list[int] = []

    def during_first(event: dict) -> None:
        if event.get("event") == "progress" and not inner_pids:
            _cluster(embeddings, tmp_path / "second.tif", keep=True, pids=inner_pids)  # worker busy

    outer_pids: list[int] = []
    run_backend(_argv("cluster", embeddings, tmp_path / "first.tif"), python=backend_python(),
                keep_running=True, on_event=during_first, on_start=outer_pids.append)
    assert outer_pids == [worker] and inner_pids and inner_pids[0] != worker
    assert worker_pids() == [worker]


def test_other_commands_and_the_setting_off_use_plain_processes(embeddings, tmp_path) -> None:
    run_backend(["selftest", "--steps", "1"], python=backend_python(), keep_running=True)
    assert worker_pids() == []
    _cluster(embeddings, tmp_path / "plain.tif", keep=False)
    assert worker_pids() == []
    token = tmp_path / "token"
    token.write_text("secret", encoding="utf-8")
    with pytest.raises(BackendError):  # remote: the client process, no worker (nothing listens there)
        run_backend(_argv("cluster", embeddings, tmp_path / "remote.tif"), python=backend_python(),
                    keep_running=True, remote=("http://127.0.0.1:9", str(token)), heartbeat_timeout=20)
    assert worker_pids() == []
    os.environ["TERRAPROBE_WORKER"] = "0"
    try:
        assert backend_client.configured_keep_running() is False
    finally:
        del os.environ["TERRAPROBE_WORKER"]
