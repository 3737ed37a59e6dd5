"""A real ``python -m backend serve`` process on 127.0.0.1 (random free port) for the remote tests."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from rasterio.windows import Window

from tests.backend.conftest import run_events, start_backend
from tests.conftest import REPO_ROOT

SAMPLES = REPO_ROOT / "resources" / "samples"
S2 = SAMPLES / "Spain_7370579_S2Hand.tif"
POLYGONS = SAMPLES / "sen1floods11_samples.geojson"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A running server: its URL, token file, folders and process."""

    url: str
    work_dir: Path
    data_root: Path
    process: subprocess.Popen

    @property
    def token_file(self) -> Path:
        return self.work_dir / "token"

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        """``GET /api/v1<path>`` with the server's token (or ``token``): ``(status, json)``."""
        return self.call("GET", path, token=token)

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        token = self.token_file.read_text().strip() if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + "/api/v1" + path, data=data, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def children(self) -> list[int]:
        """Process ids whose parent is the server (its running jobs)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.process.pid:
                    found.append(int(entry.name))
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_server(base: Path, *extra: str, cafile: Path | None = None) -> ServerProcess:
    """Start ``serve`` on a free 127.0.0.1 port (CPU: one job at a time) and wait until it answers.

    With ``cafile`` the server speaks TLS (``extra`` names its certificate and key).
    """
    import ssl

    work, data = base / "work", base / "data"
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(base / "server.log", "ab")  # noqa: SIM115 - kept open for the process's lifetime
    process = start_backend("serve", "--host", "127.0.0.1", "--port", port, "--work-dir", work, "--data-root",
                            data, "--gpus", "0", *extra, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    scheme = "https" if cafile else "http"
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    server = ServerProcess(f"{scheme}://127.0.0.1:{port}", work, data, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {(base / 'server.log').read_text()}")
        try:
            with urllib.request.urlopen(server.url + "/api/v1/health", timeout=2, context=context):
                return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError("server did not start within 60 s")


def write_crop(out: Path, col: int = 120, row: int = 90, size: int = 144) -> Path:
    """A small real Sentinel-2 crop (band names kept) covering land, urban and water samples."""
    with rasterio.open(S2) as src:
        window = Window(col, row, size, size)
        profile = dict(src.profile, width=size, height=size, transform=src.window_transform(window))
        pixels, names = src.read(window=window), src.descriptions
    out.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(pixels)
        for index, name in enumerate(names, start=1):
            if name:
                dst.set_band_description(index, name)
    return out


def run_cli(*args: str | Path, remote: ServerProcess | None = None, token_file: Path | None = None,
            python: str | None = None, timeout: float = 180) -> tuple[int, list[dict], str]:
    """``python -m backend [--remote ...] ARGS --events json``: ``(exit code, events, stderr)``."""
    prefix: list[str] = []
    if remote is not None:
        prefix = ["--remote", remote.url, "--token-file", str(token_file or remote.token_file)]
    return run_events(*prefix, *args, launcher=[python] if python else (), timeout=timeout,
                      env={"PYTHONDONTWRITEBYTECODE": "1"})


class CuttingProxy:
    """A 127.0.0.1 TCP proxy to the server that cuts the first event stream after ``cut_after`` bytes."""

    def __init__(self, target_port: int, cut_after: int = 700) -> None:
        import threading

        self.target_port, self.cut_after, self.cuts = target_port, cut_after, 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        import threading

        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        head = conn.recv(65536)
        events = b"/events" in head.split(b"\r\n", 1)[0]
        upstream.sendall(head)

        def forward() -> None:
            try:
                while chunk := conn.recv(65536):
                    upstream.sendall(chunk)
            except OSError:
                pass

        threading.Thread(target=forward, daemon=True).start()
        sent = 0
        try:
            while chunk := upstream.recv(256):
                conn.sendall(chunk)
                sent += len(chunk)
                if events and sent > self.cut_after:
                    with self._lock:
                        cut = self.cuts == 0
                        self.cuts += cut
                    if cut:
                        break
        except OSError:
            pass
        for sock in (conn, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()
