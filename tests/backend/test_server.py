"""The remote backend end to end: a real ``serve`` process on 127.0.0.1 and the real ``--remote`` CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.backend.conftest import read_events_until, start_backend
from tests.backend.server_helpers import (
    POLYGONS,
    S2,
    CuttingProxy,
    ServerProcess,
    run_cli,
    start_server,
    write_crop,
)

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> ServerProcess:
    process = start_server(tmp_path_factory.mktemp("server"), "--max-upload-mb", "3")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def crop(tmp_path_factory) -> Path:
    return write_crop(tmp_path_factory.mktemp("client") / "s2 crop.tif")


def _error(events: list[dict]) -> dict:
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1, events
    return errors[0]


def _problems(events: list[dict]) -> list[dict]:
    return [e for e in events if e["event"] in ("error", "warning")]


def _remote_job(events: list[dict]) -> str:
    line = next(e["message"] for e in events if e["event"] == "log" and e["message"].startswith("remote job"))
    return line.split()[2]


def test_remote_embed_and_classify_equal_local_runs_and_skip_known_uploads(server, crop, tmp_path) -> None:
    common = ["--optical", crop, "--window", "64", "--overlap", "16"]
    for where, remote in (("local", None), ("remote", server)):
        cache = ["--cache-dir", tmp_path / "cache"] if remote is None else []
        code, events, stderr = run_cli("embed", *common, *cache, "--out", tmp_path / where / "emb.tif",
                                       remote=remote)
        assert code == 0, (stderr[-2000:], _problems(events))
        received = server.get("/stats")[1]["bytes_received"]
        code, events, stderr = run_cli("classify", *common, *cache, "--samples", POLYGONS, "--class-field",
                                       "class", "--out", tmp_path / where / "labels.tif", remote=remote)
        assert code == 0, (stderr[-2000:], _problems(events))
        if remote is not None:
            # the crop was uploaded by embed: classify sends only the polygons
            assert server.get("/stats")[1]["bytes_received"] - received == POLYGONS.stat().st_size
            assert any("already on the server" in e.get("message", "") for e in events)
            result = next(e for e in events if e["event"] == "result")
            assert result["outputs"]["labels"] == str(tmp_path / "remote" / "labels.tif")
    local = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert local == sorted(p.name for p in (tmp_path / "remote").iterdir())
    assert {"emb.tif", "emb_pca.tif", "labels.tif", "labels.qml"} <= set(local)
    for name in local:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "remote" / name).read_bytes(), name


def test_remote_client_needs_no_torch(server, crop, tmp_path) -> None:
    """The client runs in a Python without torch, numpy or rasterio (QGIS's own)."""
    probe = subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("/usr/bin/python3 has torch")
    code, _, stderr = run_cli("embed", "--optical", crop, "--window", "64", "--out", tmp_path / "e.tif",
                              remote=server, python="/usr/bin/python3")
    assert code == 0, stderr
    assert (tmp_path / "e.tif").is_file()


def test_a_model_named_by_name_runs_with_the_servers_own_copy(server, crop, tmp_path) -> None:
    """``--model galileo-nano`` (bundled, no local file) runs remotely like locally; unknown names are 404."""
    common = ["embed", "--optical", crop, "--window", "64", "--overlap", "16", "--model", "galileo-nano"]
    local, remote = tmp_path / "local.tif", tmp_path / "remote.tif"
    code, events, stderr = run_cli(*common, "--cache-dir", tmp_path / "cache", "--out", local)
    assert code == 0, (stderr[-2000:], _problems(events))
    code, events, stderr = run_cli(*common, "--out", remote, remote=server)
    assert code == 0, (stderr[-2000:], _problems(events))
    assert remote.read_bytes() == local.read_bytes()
    code, events, _ = run_cli("embed", "--optical", crop, "--model", "no-such-model", "--out",
                              tmp_path / "none.tif", remote=server)
    message = _error(events)["message"]
    assert code == 2 and "(404)" in message and "no model of that name" in message, message
    assert not (tmp_path / "none.tif").exists()
    for name in ("../work/token", "/etc/passwd", "x.pt", {"a": 1}):  # hand-made requests naming files
        args = ["--model", {"model_name": name}, "--out", {"output": "x.tif"}]
        status, body = server.call("POST", "/jobs", body={"command": "embed", "args": args})
        assert status == 400 and "takes a model name" in body["error"], (name, body)


def test_missing_or_wrong_token_is_refused(server, crop, tmp_path) -> None:
    assert server.get("/stats", token="")[0] == 401
    assert server.get("/stats", token="not-the-token-" * 3)[0] == 401
    assert (server.token_file.stat().st_mode & 0o777) == 0o600
    wrong = tmp_path / "token"
    wrong.write_text("wrong-token-wrong-token\n")
    code, events, _ = run_cli("embed", "--optical", crop, "--out", tmp_path / "e.tif", remote=server,
                              token_file=wrong)
    assert code == 2
    error = _error(events)
    assert error["kind"] == "unauthorized" and "refused the token (401" in error["message"]
    code, events, _ = run_cli("embed", "--optical", crop, "--out", tmp_path / "e.tif", remote=server,
                              token_file=tmp_path / "missing")
    assert code == 2 and "cannot read --token-file" in _error(events)["message"]
    assert not list(tmp_path.glob("e*.tif"))


def test_server_paths_outside_the_data_roots_are_refused(server, crop, tmp_path) -> None:
    outside = tmp_path / "secret.geojson"
    outside.write_bytes(POLYGONS.read_bytes())
    link = server.data_root / "link.geojson"
    link.symlink_to(outside)
    (server.data_root / "polys.geojson").write_bytes(POLYGONS.read_bytes())
    for path in ("../work/token", str(outside), "link.geojson", "sub/../../secret.geojson"):
        code, events, _ = run_cli("classify", "--optical", crop, "--samples", f"server:{path}",
                                  "--class-field", "class", "--out", tmp_path / "l.tif", remote=server)
        error = _error(events)
        assert code == 2 and "(403)" in error["message"], (path, error)
    assert not (tmp_path / "l.tif").exists()
    # a plain path, an abbreviated option or a server-machine option in a hand-made request
    for args in (["--optical", "/etc/passwd", "--out", {"output": "x.tif"}],
                 ["--opt", "/etc/passwd", "--out", {"output": "x.tif"}],
                 ["--optical=/etc/passwd", "--out", {"output": "x.tif"}],
                 ["--cache-dir", "/tmp", "--out", {"output": "x.tif"}],
                 ["--out", {"output": "../x.tif"}]):
        status, body = server.call("POST", "/jobs", body={"command": "embed", "args": args})
        assert status == 400, (args, body)
    status, body = server.call("POST", "/jobs", body={"command": "pretrain", "args": []})
    assert status == 400 and "cannot run remotely" in body["error"]


def test_upload_size_limit(server, tmp_path) -> None:
    big = tmp_path / "big.tif"
    big.write_bytes(os.urandom(4 * 1024 * 1024))
    code, events, _ = run_cli("embed", "--optical", big, "--out", tmp_path / "e.tif", remote=server)
    assert code == 2 and "(413)" in _error(events)["message"]


def _start_slow_job(server: ServerProcess, out: Path) -> subprocess.Popen:
    """A remote embed of the whole scene in small tiles (many seconds on CPU)."""
    return start_backend("--remote", server.url, "--token-file", server.token_file, "embed", "--optical", S2,
                         "--window", "64", "--overlap", "32", "--batch-size", "1", "--dtype", "float32",
                         "--out", out, events=True, stderr=None)


def _wait_for_progress(client: subprocess.Popen) -> list[dict]:
    return read_events_until(client, lambda event: event["event"] == "progress" and
                             "tiles" in event.get("message", ""))


def _state_once_stopped(server: ServerProcess, job: str, timeout: float = 60) -> str:
    """The job's state once it has stopped running (still ``running`` after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while (state := server.get(f"/jobs/{job}")[1]["state"]) == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    return state


def test_cancel_stops_the_remote_job(server, tmp_path) -> None:
    client = _start_slow_job(server, tmp_path / "emb.tif")
    events = _wait_for_progress(client)
    job = _remote_job(events)
    client.send_signal(signal.SIGTERM)
    assert client.wait(10) == 130
    assert _state_once_stopped(server, job) == "cancelled"  # stopped, not left running to its end
    assert "cancelled" in [json.loads(line) for line in client.stdout][-1]["kind"]  # type: ignore[union-attr]
    assert list(tmp_path.iterdir()) == []


def test_killed_server_gives_a_clear_error_and_no_local_output(tmp_path) -> None:
    server = start_server(tmp_path / "srv")
    try:
        client = _start_slow_job(server, tmp_path / "out" / "emb.tif")
        _wait_for_progress(client)
        jobs = server.children()
        server.process.kill()
        server.process.wait(5)
        for pid in jobs:  # the job ran in its own session: end it too
            os.killpg(pid, signal.SIGKILL)
        rest = [json.loads(line) for line in client.stdout]  # type: ignore[union-attr]
        assert client.wait(30) == 3
        error = _error(rest)
        assert error["kind"] == "environment" and "lost connection to the server" in error["message"]
        assert "nothing was written locally" in error["message"]
        assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    finally:
        server.stop()


def test_two_clients_at_once_are_queued_and_both_finish(server, crop, tmp_path) -> None:
    results: dict[int, tuple[int, list[dict], str]] = {}

    def client(index: int) -> None:
        results[index] = run_cli("embed", "--optical", crop, "--window", "64", "--stitch", "centre",
                                 "--out", tmp_path / str(index) / "emb.tif", remote=server)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    spans = []
    for index in range(2):
        code, events, stderr = results[index]
        assert code == 0, stderr
        assert (tmp_path / str(index) / "emb.tif").is_file()
        status = server.get(f"/jobs/{_remote_job(events)}")[1]
        spans.append((status["started"], status["finished"]))
    first, second = sorted(spans)
    assert first[1] <= second[0]  # one at a time on CPU
    queued = [e for i in range(2) for e in results[i][1] if e.get("queue_position", 0) >= 1]
    assert queued and queued[0]["message"].startswith("queued: position 1")


def test_a_cut_event_stream_is_resumed_without_losing_or_repeating_events(server, crop, tmp_path) -> None:
    proxy = CuttingProxy(int(server.url.rsplit(":", 1)[1]))
    try:
        via = ServerProcess(proxy.url, server.work_dir, server.data_root, server.process)
        code, events, stderr = run_cli("embed", "--optical", crop, "--window", "64", "--overlap", "16",
                                       "--batch-size", "1", "--out", tmp_path / "emb.tif", remote=via)
    finally:
        proxy.close()
    assert code == 0, stderr
    assert proxy.cuts == 1
    logs = [e["message"] for e in events if e["event"] == "log"]
    assert len(logs) == len(set(logs)), logs
    fractions = [e["fraction"] for e in events if e["event"] == "progress"]
    assert fractions == sorted(set(fractions)) and fractions[-1] == 1.0
    assert sum(e["event"] == "result" for e in events) == 1
    assert (tmp_path / "emb.tif").is_file()


def test_uploads_must_match_their_hash(server) -> None:
    import hashlib
    import urllib.error
    import urllib.request

    claimed = hashlib.sha256(b"the real content").hexdigest()
    token = server.token_file.read_text().strip()
    request = urllib.request.Request(f"{server.url}/api/v1/blobs/{claimed}", data=b"other content",
                                     method="PUT", headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400 and b"not " + claimed.encode() in refused.value.read()
    assert not (server.work_dir / "blobs" / claimed).exists()
    assert not list((server.work_dir / "blobs").glob(".*.part"))


def test_finished_jobs_and_unused_uploads_expire_after_keep_hours(tmp_path) -> None:
    from backend.server.storage import Storage

    storage = Storage(tmp_path / "work", [], max_upload=1024)
    old, busy, fresh = (storage.new_job_dir(name) for name in ("old", "busy", "fresh"))
    blob = storage.blobs / ("0" * 64)
    blob.write_bytes(b"x")
    for path in (old, busy, blob):
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    assert storage.expire(3600, busy={"busy"}) == 2
    assert not old.exists() and not blob.exists() and busy.exists() and fresh.exists()


def test_tls_with_uvicorns_own_certificate_options(tmp_path, monkeypatch) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server = start_server(tmp_path / "srv", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
                          cafile=cert)
    try:
        assert server.url.startswith("https://")
        code, events, _ = run_cli("sensors", remote=server)  # a self-signed certificate is not trusted
        assert code == 3 and "TLS certificate" in _error(events)["message"]
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # ... unless the client is told its CA
        code, events, stderr = run_cli("sensors", remote=server)
        assert code == 0, (stderr, _problems(events))
        assert sum(e["event"] == "result" for e in events) == 1
    finally:
        server.stop()


def test_a_repeated_submission_returns_the_same_job(server, crop, tmp_path) -> None:
    """A client retrying a submission whose answer was lost (same request id) gets its first job back."""
    import shutil

    shutil.copy(crop, server.data_root / "repeat.tif")
    body = {"command": "embed", "request_id": "retry-1",
            "args": ["--optical", {"server_path": "repeat.tif"}, "--out", {"output": "e.tif"}]}
    before = server.get("/stats")[1]["jobs"]["submitted"]
    first_status, first = server.call("POST", "/jobs", body=body)
    second_status, second = server.call("POST", "/jobs", body=body)
    assert first_status == second_status == 201, (first, second)
    assert first["id"] == second["id"]
    third = server.call("POST", "/jobs", body={**body, "request_id": "retry-2"})[1]
    assert third["id"] != first["id"]
    assert server.get("/stats")[1]["jobs"]["submitted"] == before + 2
