"""``models list|download|verify|remove`` against a real HTTP server on 127.0.0.1.

The server (``http.server`` in a thread) serves a small random CROMA checkpoint in the official
five-key layout, supports ``Range`` and counts the bytes it sent; switches make it cut the
connection, corrupt or truncate the file, answer 500 or stall. The backend runs as a real process.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from backend.models import ModelConfig, build_model, official_state_dicts
from tests.backend.conftest import run_events, start_backend
from tests.backend.test_faults_outputs import fill
from tests.conftest import REPO_ROOT

NAME = "croma-tiny"
TINY = dict(dim=64, heads=16, sar_depth=1, optical_depth=2, joint_depth=1)
SAMPLE_S2 = REPO_ROOT / "resources" / "samples" / "Spain_7370579_S2Hand.tif"


class CheckpointServer(ThreadingHTTPServer):
    """Serves ``files`` by path; records requests and bytes sent; behaviour set per test."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[dict] = []
        self.bytes_served = 0
        self.cut_after: int | None = None  # close the connection after this many body bytes (once)
        self.status: int | None = None  # answer every request with this error status
        self.stall = 0.0  # seconds to wait before answering
        self.pause_after: int | None = None  # wait `pause` seconds after this many body bytes (once)
        self.pause = 0.0
        self.no_length = False  # send no Content-Length (the body ends when the connection closes)
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: CheckpointServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        server = self.server
        server.requests.append({"path": self.path, "range": self.headers.get("Range"),
                                "if_range": self.headers.get("If-Range")})
        if server.stall:
            time.sleep(server.stall)
        if server.status:
            self.send_error(server.status, "test failure")
            return
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404, "not found")
            return
        start = 0
        etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
        header = self.headers.get("Range")
        if self.headers.get("If-Range") not in (None, etag):  # the file changed: send it whole
            header = None
        if header and header.startswith("bytes="):
            start = int(header[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        if not server.no_length:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if server.cut_after is not None:
            body, server.cut_after = body[:server.cut_after], None
            self.close_connection = True
        if server.pause_after is not None:
            head, body, server.pause_after = body[:server.pause_after], body[server.pause_after:], None
            self.wfile.write(head)
            self.wfile.flush()
            with server.lock:
                server.bytes_served += len(head)
            time.sleep(server.pause)
        for offset in range(0, len(body), 65536):
            piece = body[offset:offset + 65536]
            self.wfile.write(piece)
            with server.lock:
                server.bytes_served += len(piece)
        self.wfile.flush()


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A random tiny CROMA saved exactly like the official release (five-key dict, torch.save)."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(**TINY)).eval()
    path = tmp_path_factory.mktemp("release") / "CROMA_tiny.pt"
    torch.save(official_state_dicts(model), path)
    return path.read_bytes()


@pytest.fixture()
def server(checkpoint_bytes: bytes) -> Iterator[CheckpointServer]:
    httpd = CheckpointServer()
    httpd.files["/CROMA_tiny.pt"] = checkpoint_bytes
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def tensor_count() -> int:
    with torch.device("meta"):
        return len(build_model(ModelConfig(**TINY)).state_dict())


@pytest.fixture()
def registry(tmp_path: Path, server: CheckpointServer, checkpoint_bytes: bytes) -> Path:
    """A site registry describing the tiny release served on loopback (sha256, exact size, shapes)."""
    entry = {"name": NAME, "title": "tiny CROMA for tests", "url": f"{server.url}/CROMA_tiny.pt",
             "filename": "CROMA_tiny.pt", "size_bytes": len(checkpoint_bytes), "size_exact": True,
             "sha256": hashlib.sha256(checkpoint_bytes).hexdigest(), "licence": "test",
             "dim": TINY["dim"], "sar_depth": 1, "optical_depth": 2, "joint_depth": 1,
             "tensors": tensor_count(), "bands": {"optical": ["B01"], "sar": ["VV", "VH"]}}
    path = tmp_path / "registry.json"
    path.write_text(json.dumps([entry]), encoding="utf-8")
    return path


def final(events: list[dict]) -> dict:
    ends = [e for e in events if e["event"] in ("result", "error")]
    assert len(ends) == 1, events
    return ends[0]


def placed(models: Path) -> list[str]:
    return sorted(p.name for p in models.iterdir() if p.is_file()) if models.is_dir() else []


@pytest.mark.slow
def test_download_lands_a_working_model_that_embed_uses(tmp_path: Path, server: CheckpointServer,
                                                        registry: Path, checkpoint_bytes: bytes) -> None:
    models = tmp_path / "models"
    code, events, stderr = run_events("models", "download", NAME, "--models-dir", models, "--registry",
                                      registry)
    assert code == 0, stderr
    result = final(events)
    assert result["stats"]["sha256"] == hashlib.sha256(checkpoint_bytes).hexdigest()
    assert [e for e in events if e["event"] == "progress"], "no download progress reported"
    assert placed(models) == [f"{NAME}.json", f"{NAME}.safetensors"]
    assert not (models / ".downloads").exists()
    config = json.loads((models / f"{NAME}.json").read_text())
    assert config["name"] == NAME and config["dim"] == TINY["dim"]
    assert config["provenance"]["source"] == f"{server.url}/CROMA_tiny.pt"
    assert server.bytes_served == len(checkpoint_bytes)

    code, events, _ = run_events("models", "list", "--models-dir", models, "--registry", registry)
    rows = {row["name"]: row for row in final(events)["stats"]["models"]}
    assert rows[NAME]["installed"] and rows["croma-base"]["url"].startswith("https://huggingface.co/")
    assert not rows["croma-base"]["installed"] and rows["croma-large"]["parameters"] == 672_557_056

    code, events, _ = run_events("models", "download", NAME, "--models-dir", models, "--registry", registry)
    assert code == 0 and final(events)["stats"]["already_installed"]

    out = tmp_path / "emb.tif"
    code, events, stderr = run_events("embed", "--optical", SAMPLE_S2, "--model", NAME, "--window", "64",
                                      "--bounds", "-0.75", "38.10", "-0.74", "38.11",
                                      "--bounds-crs", "EPSG:4326",
                                      "--cache-dir", tmp_path / "cache", "--out", out,
                                      env={"TERRAPROBE_MODELS_DIR": str(models)})
    assert code == 0, stderr + json.dumps(events[-3:])
    assert final(events)["stats"]["model"] == str(models / f"{NAME}.safetensors")
    assert out.exists()

    code, events, _ = run_events("models", "verify", NAME, "--models-dir", models, "--registry", registry)
    assert code == 0 and final(events)["stats"]["matches"] == NAME
    code, events, _ = run_events("models", "remove", NAME, "--models-dir", models)
    assert code == 0 and placed(models) == []


def test_interrupted_download_resumes_where_it_stopped(tmp_path: Path, server: CheckpointServer,
                                                       registry: Path, checkpoint_bytes: bytes) -> None:
    models = tmp_path / "models"
    half = len(checkpoint_bytes) // 2
    server.cut_after = half
    code, events, _ = run_events("models", "download", NAME, "--models-dir", models, "--registry", registry)
    assert code != 0
    message = final(events)["message"]
    assert "interrupted" in message and "again to resume" in message, message
    assert placed(models) == [], "nothing may be placed after an interrupted download"
    partials = list((models / ".downloads").glob("*.part"))
    assert len(partials) == 1 and partials[0].stat().st_size == half

    first = server.bytes_served
    code, events, stderr = run_events("models", "download", NAME, "--models-dir", models, "--registry",
                                      registry)
    assert code == 0, stderr
    second = server.bytes_served - first
    assert server.requests[-1]["range"] == f"bytes={half}-"
    assert server.requests[-1]["if_range"] == f'"{hashlib.sha256(checkpoint_bytes).hexdigest()[:16]}"'
    assert second == len(checkpoint_bytes) - half < len(checkpoint_bytes)
    assert final(events)["stats"]["resumed_from"] == half
    assert placed(models) == [f"{NAME}.json", f"{NAME}.safetensors"]


def test_cancelled_download_keeps_the_partial_file_and_resumes(
        tmp_path: Path, server: CheckpointServer, registry: Path, checkpoint_bytes: bytes) -> None:
    models = tmp_path / "models"
    half = len(checkpoint_bytes) // 2
    server.pause_after, server.pause = half, 20.0
    process = start_backend("models", "download", NAME, "--models-dir", models, "--registry", registry,
                            events=True)
    partial = models / ".downloads"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(p.stat().st_size for p in partial.glob("*.part")) < half:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)  # what the plugin's Cancel sends
    stdout, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    assert json.loads(stdout.splitlines()[-1])["kind"] == "cancelled"
    assert placed(models) == [] and [p.stat().st_size for p in partial.glob("*.part")] == [half]
    code, events, stderr = run_events("models", "download", NAME, "--models-dir", models, "--registry",
                                      registry)
    assert code == 0, stderr
    assert final(events)["stats"]["resumed_from"] == half


def test_a_source_that_changed_since_the_interruption_is_fetched_whole(
        tmp_path: Path, server: CheckpointServer, checkpoint_bytes: bytes) -> None:
    models = tmp_path / "models"
    url = f"{server.url}/CROMA_tiny.pt"
    server.cut_after = len(checkpoint_bytes) // 2
    code, _, _ = run_events("models", "download", "mine", "--url", url, "--models-dir", models)
    assert code != 0
    torch.manual_seed(1)
    changed = tmp_path / "changed.pt"
    torch.save(official_state_dicts(build_model(ModelConfig(**TINY)).eval()), changed)
    server.files["/CROMA_tiny.pt"] = changed.read_bytes()
    code, events, stderr = run_events("models", "download", "mine", "--url", url, "--models-dir", models)
    assert code == 0, stderr
    stats = final(events)["stats"]
    assert stats["resumed_from"] == 0 and stats["sha256"] == hashlib.sha256(changed.read_bytes()).hexdigest()
    assert placed(models) == ["mine.json", "mine.safetensors"] and not (models / ".downloads").exists()


@pytest.mark.parametrize("damage", ["corrupted", "truncated"])
def test_corrupted_or_truncated_file_is_refused_and_nothing_placed(
        tmp_path: Path, server: CheckpointServer, registry: Path, checkpoint_bytes: bytes,
        damage: str) -> None:
    models = tmp_path / "models"
    if damage == "corrupted":
        broken = bytearray(checkpoint_bytes)
        broken[len(broken) // 2] ^= 0xFF
        server.files["/CROMA_tiny.pt"] = bytes(broken)
    else:
        server.files["/CROMA_tiny.pt"] = checkpoint_bytes[: len(checkpoint_bytes) * 2 // 3]
    code, events, _ = run_events("models", "download", NAME, "--models-dir", models, "--registry", registry)
    assert code != 0
    message = final(events)["message"]
    assert ("checksum mismatch" if damage == "corrupted" else "truncated") in message, message
    assert placed(models) == [] and not list(models.rglob("*.part"))

    # without a registry checksum the weights-only strict loader still refuses a truncated file
    server.files["/cut.pt"] = checkpoint_bytes[: len(checkpoint_bytes) // 3]
    code, events, _ = run_events("models", "download", "my-croma", "--url", f"{server.url}/cut.pt",
                                 "--models-dir", models)
    assert code != 0 and "not a valid CROMA checkpoint" in final(events)["message"]
    assert placed(models) == [] and not list(models.rglob("*.part"))


def test_server_error_and_timeout_give_a_clear_message(tmp_path: Path, server: CheckpointServer,
                                                       registry: Path) -> None:
    models = tmp_path / "models"
    server.status = 500
    code, events, stderr = run_events("models", "download", NAME, "--models-dir", models, "--registry",
                                      registry)
    assert code != 0 and stderr.count("Traceback") == 0
    assert "HTTP 500" in final(events)["message"] and final(events)["kind"] == "download"
    server.status = None
    server.stall = 3.0
    code, events, _ = run_events("models", "download", NAME, "--models-dir", models, "--registry", registry,
                                 "--timeout", "1")
    assert code != 0 and "timed out" in final(events)["message"], final(events)
    assert placed(models) == []
    code, events, _ = run_events("models", "download", "nothing-known", "--models-dir", models)
    assert code != 0 and "unknown model 'nothing-known'" in final(events)["message"]


def test_local_file_source_and_verify_of_a_checkpoint(tmp_path: Path, checkpoint_bytes: bytes,
                                                      registry: Path) -> None:
    release = tmp_path / "mirror" / "CROMA_tiny.pt"
    release.parent.mkdir()
    release.write_bytes(checkpoint_bytes)
    code, events, _ = run_events("models", "verify", release, "--registry", registry)
    assert code == 0
    stats = final(events)["stats"]
    assert stats["matches"] == NAME and stats["kind"] == "checkpoint" and stats["tensors"] == tensor_count()
    models = tmp_path / "models"
    code, events, stderr = run_events("models", "download", NAME, "--mirror", release.parent.as_uri(),
                                      "--models-dir", models, "--registry", registry)
    assert code == 0, stderr
    assert final(events)["stats"]["bytes_received"] == 0
    assert placed(models) == [f"{NAME}.json", f"{NAME}.safetensors"]
    assert release.exists(), "a local source must never be moved or deleted"


def test_every_bundled_model_has_a_complete_list_row(tmp_path: Path) -> None:
    """``models list``: each model shipped in resources/models has a title, architecture, bands and notes."""
    code, events, stderr = run_events("models", "list", "--models-dir", tmp_path / "models")
    assert code == 0, stderr
    rows = {row["name"]: row for row in final(events)["stats"]["models"]}
    bundled = sorted(p.stem for p in (REPO_ROOT / "resources" / "models").glob("*.json")
                     if p.with_suffix(".safetensors").exists())
    assert "terraprobe-xstars-landsat" in bundled
    for name in bundled:
        row = rows[name]
        config = json.loads((REPO_ROOT / "resources" / "models" / f"{name}.json").read_text())
        assert row["kind"] == "bundled" and row["installed"], row
        assert row["title"] and row["title"] != "ships with the plugin", row
        assert row["licence"] and row["notes"] and row["dim"] == config["dim"], row
        assert row["bands"] == {k: m["bands"] for k, m in config["modalities"].items()}, row
    lines = [e["message"] for e in events if e["event"] == "log" and " · " in e["message"]]
    # One name column, as wide as the longest name: each title starts at the same place.
    assert len({line.index(" · ") - len(rows[line.split(" ")[0]]["title"]) for line in lines}) == 1, lines


# -- issue 20 case 11: a download never fills the disk, and only checkpoints are read ------------------

def test_a_download_that_cannot_fit_the_disk_is_refused_up_front(small_disk: Path, server: CheckpointServer,
                                                                 registry: Path) -> None:
    models = small_disk / "models"
    filler = fill(small_disk, leave=512 * 1024)  # the checkpoint is about 1.3 MB
    code, events, stderr = run_events("models", "download", NAME, "--models-dir", models, "--registry",
                                      registry)
    assert code == 3, stderr
    message = final(events)["message"]
    assert re.fullmatch(rf"not enough disk space to download {server.url}/CROMA_tiny.pt: \d+\.\d kB free, "
                        rf"about 1\.3 MB needed at {models / '.downloads'}; free some space and run again",
                        message), message
    assert sorted(p.name for p in small_disk.rglob("*") if p.is_file()) == [filler.name]
    assert [p for p in models.rglob("*.part")] == []


def test_a_body_without_length_that_fills_the_disk_leaves_no_partial_file(
        small_disk: Path, server: CheckpointServer) -> None:
    models = small_disk / "models"
    filler = fill(small_disk, leave=512 * 1024)
    server.no_length = True  # and no registry size: nothing to check up front
    code, events, stderr = run_events("models", "download", "mine", "--url", f"{server.url}/CROMA_tiny.pt",
                                      "--models-dir", models)
    assert code == 3, stderr
    message = final(events)["message"]
    assert message.startswith("the disk is full: ") and message.endswith(
        f"free at {models / '.downloads'}; the partial download was removed (free some space and run again)")
    assert sorted(p.name for p in small_disk.rglob("*") if p.is_file()) == [filler.name]


def test_a_body_without_length_is_capped_by_the_registry_size(
        tmp_path: Path, server: CheckpointServer, registry: Path, checkpoint_bytes: bytes) -> None:
    models = tmp_path / "models"
    server.files["/CROMA_tiny.pt"] = checkpoint_bytes + bytes(8 << 20)  # an endless stream, say
    server.no_length = True
    code, events, stderr = run_events("models", "download", NAME, "--models-dir", models, "--registry",
                                      registry)
    assert code == 2, stderr
    assert final(events)["message"] == (f"download of {server.url}/CROMA_tiny.pt is larger than the 1.3 MB "
                                        "expected (registry size); stopped and removed the partial file: "
                                        "check the address")
    assert placed(models) == [] and not list(models.rglob("*.part"))


def test_a_file_that_is_not_a_checkpoint_is_bad_input(tmp_path: Path) -> None:
    models = tmp_path / "models"
    code, events, stderr = run_events("models", "download", "mine", "--url", "file:///etc/passwd",
                                      "--models-dir", models)
    assert code == 2, stderr
    assert final(events)["message"].startswith(
        "mine: not a valid CROMA checkpoint: /etc/passwd is not a PyTorch checkpoint (a .pt/.pth file is a "
        "zip archive or a pickle; this file starts with b'")
    assert placed(models) == [] and "Traceback" not in stderr
