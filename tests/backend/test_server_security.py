"""Issue 20, server and remote-client cases, through a real ``serve`` process on 127.0.0.1.

1 an uploaded VRT naming a server file, 2 one naming a URL (SSRF), 3 scene lists naming server files,
6 the client writing what the server lists, 9 request body size, 10 the server's disk full, 12 token
files readable by others. Each is refused with a clear message and the right exit code; nothing is
read outside the data roots, no network request is made, nothing is deleted, inputs stay byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.backend.server_helpers import POLYGONS, ServerProcess, run_cli, start_server, write_crop
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
#: What the test itself sends the listener to know that all earlier connections have arrived.
MARKER = b"marker: every connection before this one has been received"


class Listener:
    """A loopback TCP listener that records every connection it receives (none expected)."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = self.socket.getsockname()[1]
        self.received: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            conn.settimeout(2)
            try:
                self.received.append(conn.recv(4096))
            except OSError:
                self.received.append(b"")
            conn.close()

    def settled(self) -> list[bytes]:
        """What arrived before now: a marker connection queues behind any earlier one; once it is
        received, every earlier connection has been too (the marker is left out)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as marker:
            marker.sendall(MARKER)
        deadline = time.monotonic() + 30
        while MARKER not in self.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert MARKER in self.received, "the listener stopped receiving"
        self.received.remove(MARKER)
        return self.received

    def wait(self, seconds: float = 5.0) -> list[bytes]:
        """What arrived, waiting up to ``seconds`` for a first connection."""
        deadline = time.monotonic() + seconds
        while not self.received and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.received

    def close(self) -> None:
        self.socket.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> ServerProcess:
    process = start_server(tmp_path_factory.mktemp("server"), "--max-upload-mb", "3", "--keep-free-mb", "0")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def marker(tmp_path_factory) -> Path:
    """A real raster outside the server's data roots: it must never be read by a job."""
    return write_crop(tmp_path_factory.mktemp("private") / "marker.tif", col=300, row=300, size=64)


@pytest.fixture(scope="module")
def listener() -> Listener:
    found = Listener()
    yield found
    found.close()


def _vrt(source: str) -> str:
    """A VRT whose one band reads band 1 of ``source``."""
    return (f'<VRTDataset rasterXSize="64" rasterYSize="64"><VRTRasterBand dataType="UInt16" band="1">'
            f'<SimpleSource><SourceFilename relativeToVRT="0">{source}</SourceFilename>'
            f'<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>\n')


def _error(events: list[dict]) -> dict:
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1, events
    return errors[0]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _results(server: ServerProcess) -> set[Path]:
    """Every job output and cached embedding in the server's folders."""
    outputs = {p for p in (server.work_dir / "jobs").rglob("out/*/*") if p.is_file()}
    return outputs | {p for p in (server.work_dir / "cache").rglob("*") if p.is_file()}


def test_case1_uploaded_vrt_naming_a_server_file_is_refused(server, marker, tmp_path) -> None:
    before, results = _digest(marker.parent), _results(server)
    client = tmp_path / "client"
    client.mkdir()
    (client / "evil.vrt").write_text(_vrt(str(marker)))
    (client / "disguised.tif").write_text(_vrt(str(marker)))  # a VRT by content, a .tif by name
    crop = write_crop(client / "crop.tif")
    (client / "crop.tif.aux.xml").write_text(_vrt(str(marker)))  # a VRT posing as a sidecar
    for name, says in (("evil.vrt", "not a VRT (it names other files)"),
                       ("disguised.tif", "not a VRT (it names other files)"),
                       ("crop.tif", "the companion crop.tif.aux.xml is a VRT")):
        code, events, stderr = run_cli("embed", "--optical", client / name, "--window", "64",
                                       "--out", tmp_path / "out" / "e.tif", remote=server)
        error = _error(events)
        assert code == 2 and error["kind"] == "bad_input", (name, error, stderr[-500:])
        assert "(400)" in error["message"] and says in error["message"], error
    assert not (tmp_path / "out").exists()
    assert _results(server) == results  # the marker was never embedded
    assert _digest(marker.parent) == before and crop.is_file()


def test_case2_uploaded_or_data_root_vrt_naming_a_url_makes_no_request(server, listener, tmp_path) -> None:
    url, results = f"/vsicurl/http://127.0.0.1:{listener.port}/secret.tif", _results(server)
    (tmp_path / "ssrf.vrt").write_text(_vrt(url))
    code, events, _ = run_cli("embed", "--optical", tmp_path / "ssrf.vrt", "--out", tmp_path / "e.tif",
                              remote=server)
    assert code == 2 and "not a VRT" in _error(events)["message"]
    (server.data_root / "ssrf.vrt").write_text(_vrt(url))
    code, events, _ = run_cli("embed", "--optical", "server:ssrf.vrt", "--out", tmp_path / "e.tif",
                              remote=server)
    error = _error(events)
    assert code == 2 and "(403)" in error["message"] and "no URLs, /vsi paths" in error["message"], error
    assert listener.settled() == []
    assert _results(server) == results


def test_second_layer_job_environment_turns_gdal_network_access_off(listener, tmp_path) -> None:
    """The GDAL settings every job runs with: the same VRT opened in a job process connects nowhere."""
    from backend.server.vetting import JOB_ENVIRONMENT

    vrt = tmp_path / "ssrf.vrt"
    vrt.write_text(_vrt(f"/vsicurl/http://127.0.0.1:{listener.port}/secret.tif"))
    code = ("import sys, rasterio\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n"
            "        with rasterio.open(path) as src: src.read(1)\n"
            "    except Exception as exc: print(type(exc).__name__)\n")
    paths = [str(vrt), f"http://127.0.0.1:{listener.port}/a.tif", f"/vsicurl/http://127.0.0.1:{listener.port}/b.tif"]
    base = {k: v for k, v in os.environ.items() if k not in JOB_ENVIRONMENT}
    subprocess.run([sys.executable, "-c", code, *paths], env={**base, **JOB_ENVIRONMENT, "NO_PROXY": ""},
                   capture_output=True, timeout=60, check=True)
    assert listener.settled() == []
    subprocess.run([sys.executable, "-c", code, str(vrt)], env=base, capture_output=True, timeout=60,
                   check=True)  # without them GDAL does connect: the listener would have seen the job
    assert b"/secret.tif" in listener.wait()[0]
    listener.received.clear()


def test_second_layer_a_geojson_crs_url_is_not_fetched_by_a_server_job(server, listener, tmp_path) -> None:
    """A GeoJSON passes the vetting (it names no file) but its CRS may be a URL, which GDAL fetches
    outside a job: the server's job runs and the listener receives nothing."""
    samples = json.loads(POLYGONS.read_text())
    samples["crs"] = {"type": "link", "properties": {"href": f"http://127.0.0.1:{listener.port}/crs.wkt",
                                                     "type": "ogcwkt"}}
    (tmp_path / "samples.geojson").write_text(json.dumps(samples))
    crop = write_crop(tmp_path / "crop.tif")
    code, events, stderr = run_cli("classify", "--optical", crop, "--window", "64", "--samples",
                                   tmp_path / "samples.geojson", "--class-field", "class",
                                   "--out", tmp_path / "labels.tif", remote=server)
    assert code == 0, (stderr[-2000:], events[-3:])
    assert listener.settled() == []
    opened = "import fiona, sys\nwith fiona.open(sys.argv[1]) as layer: print(layer.crs)"
    subprocess.run([sys.executable, "-c", opened, str(tmp_path / "samples.geojson")], capture_output=True,
                   timeout=60, check=True)
    assert b"GET /crs.wkt" in listener.wait()[0]  # the same file, outside a job
    listener.received.clear()


def test_data_root_vrt_of_data_root_files_still_runs(server, tmp_path) -> None:
    from backend.io.vrt import mosaic_vrt

    crop = write_crop(server.data_root / "tiles" / "crop.tif", size=64)
    (server.data_root / "tiles" / "mosaic.vrt").write_text(mosaic_vrt([(crop, "crop.tif")]))
    code, events, stderr = run_cli("embed", "--optical", "server:tiles/mosaic.vrt", "--window", "64",
                                   "--out", tmp_path / "e.tif", remote=server)
    assert code == 0, (stderr[-2000:], [e for e in events if e["event"] in ("error", "warning")])
    assert (tmp_path / "e.tif").is_file() and (tmp_path / "e_pca.tif").is_file()


def _same_refusal(messages: list[str], paths: list[str]) -> None:
    """The refusals differ only by the path each names: they reveal nothing about existence."""
    blanked = {message.replace(path, "PATH") for message, path in zip(messages, paths)}
    assert len(blanked) == 1, messages


def test_case3_scene_lists_read_only_data_root_files_and_reveal_no_paths(server, marker, tmp_path) -> None:
    missing = str(marker.parent / "no-such-scene.tif")
    token = str(server.token_file)  # exists, outside the roots
    messages, results = [], _results(server)
    for entry in (str(marker), missing, token):
        scenes = tmp_path / "scenes.txt"
        scenes.write_text(f"# scenes\n{entry}\n")
        code, events, _ = run_cli("embed", "--optical", scenes, "--out", tmp_path / "m.vrt", remote=server)
        error = _error(events)
        assert code == 2 and "(403)" in error["message"] and "line 2" in error["message"], error
        messages.append(error["message"])
    _same_refusal(messages, [str(marker), missing, token])
    # the same list under a data root, relative lines leaving the root, and a URL line
    for line in ("../../private/marker.tif", f"/vsicurl/http://127.0.0.1:9/{marker.name}"):
        (server.data_root / "list.txt").write_text(line + "\n")
        code, events, _ = run_cli("embed", "--optical", "server:list.txt", "--out", tmp_path / "m.vrt",
                                  remote=server)
        assert code == 2 and "(403)" in _error(events)["message"], line
    assert not (tmp_path / "m.vrt").exists()
    assert _results(server) == results


def test_case6_an_output_never_replaces_an_input(server, tmp_path) -> None:
    """``--out b.tif`` writes ``b_pca.tif`` beside it: here that is the input itself."""
    crop = write_crop(tmp_path / "b_pca.tif", size=64)
    before = crop.read_bytes()
    code, events, _ = run_cli("embed", "--optical", crop, "--window", "64", "--out", tmp_path / "b.tif",
                              remote=server)
    error = _error(events)
    assert code == 2 and "would replace the input" in error["message"], error
    assert crop.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b_pca.tif"]


def test_case6_an_out_starting_with_a_dot_arrives(server, tmp_path) -> None:
    crop = write_crop(tmp_path / "crop.tif", size=64)
    code, events, stderr = run_cli("embed", "--optical", crop, "--window", "64", "--out", tmp_path / ".e.tif",
                                   remote=server)
    assert code == 0, (stderr[-2000:], events[-3:])
    assert (tmp_path / ".e.tif").is_file() and (tmp_path / ".e_pca.tif").is_file()


class TamperingProxy:
    """A 127.0.0.1 HTTP proxy to the server that rewrites the final ``job`` event's file list."""

    def __init__(self, target: str, tamper) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                kept = ("authorization", "content-type")
                headers = {k: v for k, v in self.headers.items() if k.lower() in kept}
                request = urllib.request.Request(target + self.path, data=body, method=self.command,
                                                 headers=headers)
                try:
                    response = urllib.request.urlopen(request, timeout=120)
                except urllib.error.HTTPError as exc:
                    status, data = exc.code, exc.read()
                else:
                    with response:
                        if "/events" in self.path:  # streamed line by line, the connection closed at its end
                            self.send_response(response.status)
                            self.end_headers()
                            for line in response:
                                self.wfile.write(proxy.rewrite(line))
                                self.wfile.flush()
                            return
                        status, data = response.status, response.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_HEAD = _forward

        self.tamper = tamper
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def rewrite(self, line: bytes) -> bytes:
        event = json.loads(line)
        if event.get("event") == "job":
            event["files"] = self.tamper(event["files"])
        return (json.dumps(event) + "\n").encode()

    def close(self) -> None:
        self.httpd.shutdown()


def test_case6_client_writes_only_what_it_asked_for_and_fails_without_it(server, tmp_path) -> None:
    crop = write_crop(tmp_path / "in" / "crop.tif", size=64)
    before = _digest(tmp_path / "in")

    def extra_names(files: list[dict]) -> list[dict]:  # a hostile server lists the input and its token
        return [*files, {**files[0], "name": "crop.tif"}, {**files[0], "name": "token"}]

    def without_main(files: list[dict]) -> list[dict]:
        return [f for f in files if f["name"] != "e.tif"]

    for tamper, expected in ((extra_names, 0), (without_main, 1)):
        proxy = TamperingProxy(server.url, tamper)
        try:
            via = ServerProcess(proxy.url, server.work_dir, server.data_root, server.process)
            out = tmp_path / tamper.__name__
            code, events, stderr = run_cli("embed", "--optical", crop, "--window", "64",
                                           "--out", out / "e.tif", remote=via)
        finally:
            proxy.close()
        assert code == expected, (tamper.__name__, stderr[-2000:], events[-3:])
        if expected == 0:
            warnings = " ".join(e["message"] for e in events if e["event"] == "warning")
            assert "crop.tif" in warnings and "token" in warnings and "not written" in warnings
            assert sorted(p.name for p in out.iterdir()) == ["e.tif", "e_pca.tif"]
        else:
            error = _error(events)
            assert "without" in error["message"] and "e.tif" in error["message"], error
            assert not out.exists() or list(out.iterdir()) == []
    assert _digest(tmp_path / "in") == before


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _post_raw(server: ServerProcess, head: str, body: bytes) -> tuple[int, bytes]:
    """Send one raw HTTP request; the status and body of the answer."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer.split(b"\r\n\r\n", 1)[-1]


def test_case9_job_request_size_limits(server) -> None:
    token = server.token_file.read_text().strip()
    common = (f"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
              "Connection: close\r\n")
    rss = _rss_kb(server.process.pid)
    # a declared 300 MB body is refused from its headers: the client gets the answer before sending it
    status, body = _post_raw(server, common + "Content-Length: 300000000\r\n\r\n", b"")
    assert status == 413 and b"has 300000000 bytes; the server accepts at most 1048576" in body
    # an undeclared (chunked) body is refused once it passes the limit, while it arrives
    piece = b"[" * 65536
    chunked = b"".join(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for _ in range(17))
    status, body = _post_raw(server, common + "Transfer-Encoding: chunked\r\n\r\n", chunked)
    assert status == 413 and b"longer than the 1048576 bytes" in body
    assert _rss_kb(server.process.pid) - rss < 16 * 1024
    status, body = server.call("POST", "/jobs", body={"command": "embed", "args": ["--window"] * 401})
    assert status == 413 and "at most 400" in body["error"]
    status, body = server.call("POST", "/jobs", body={"command": "embed", "args": ["--window", "6" * 5000]})
    assert status == 413 and "longer than 4096" in body["error"]


def test_case10_server_disk_full_is_507_and_exit_3_naming_the_server(tmp_path) -> None:
    full = start_server(tmp_path / "srv", "--keep-free-mb", str(10**9))  # a petabyte must stay free
    try:
        crop = write_crop(tmp_path / "crop.tif")
        code, events, _ = run_cli("embed", "--optical", crop, "--out", tmp_path / "out" / "e.tif",
                                  remote=full)
        error = _error(events)
        assert code == 3 and error["kind"] == "environment", error
        assert f"the server {full.url} is out of disk space (507)" in error["message"]
        assert "MB free in its --work-dir" in error["message"] and "--keep-free-mb" in error["message"]
        assert not (tmp_path / "out").exists()
        # the client asked first (HEAD): nothing was sent; a client that sends anyway gets the 507 itself
        content = b"x" * 1000
        sha, token = hashlib.sha256(content).hexdigest(), full.token_file.read_text().strip()
        request = urllib.request.Request(f"{full.url}/api/v1/blobs/{sha}", data=content, method="PUT",
                                         headers={"Authorization": f"Bearer {token}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 507 and b"the server's disk is full" in refused.value.read()
        assert not [p for p in (full.work_dir / "blobs").iterdir()]
        assert full.get("/stats")[1]["bytes_received"] == 0
    finally:
        full.stop()


def test_case12_token_files_readable_by_others_are_warned_about_on_both_sides(tmp_path) -> None:
    work = tmp_path / "srv" / "work"
    work.mkdir(parents=True)
    (work / "token").write_text("a-token-that-is-long-enough-to-use\n")
    (work / "token").chmod(0o644)
    exposed = start_server(tmp_path / "srv")
    try:
        log = (tmp_path / "srv" / "server.log").read_text()
        assert "was readable by other users (mode 0644)" in log and "restart to issue a new token" in log
        assert (work / "token").stat().st_mode & 0o777 == 0o600
        copy = tmp_path / "client-token"
        copy.write_text((work / "token").read_text())
        copy.chmod(0o640)
        code, events, stderr = run_cli("version", remote=exposed, token_file=copy)
        assert code == 0, stderr
        warnings = [e["message"] for e in events if e["event"] == "warning"]
        assert any("readable by its group (mode 0640)" in w and "chmod 600" in w for w in warnings), warnings
    finally:
        exposed.stop()


def _mount_tmpfs(folder: Path, size_kb: int) -> bool:
    """A small tmpfs at ``folder`` (root only): a disk that really fills up."""
    folder.mkdir(parents=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def test_case10_server_disk_full_during_a_job_names_the_servers_disk(tmp_path) -> None:
    work = tmp_path / "srv" / "work"
    if not _mount_tmpfs(work, 320):
        pytest.skip("needs root to mount a small tmpfs as the server's disk")
    small = None
    try:
        small = start_server(tmp_path / "srv", "--keep-free-mb", "0")
        crop = write_crop(tmp_path / "client" / "crop.tif")
        code, events, stderr = run_cli("embed", "--optical", crop, "--window", "64",
                                       "--out", tmp_path / "client" / "out" / "e.tif", remote=small)
        error = _error(events)
        assert code == 3 and error["kind"] == "environment", (error, stderr[-1000:])
        assert error["message"].startswith(f"on the server {small.url}: "), error
        assert str(work) in error["message"] and str(tmp_path / "client") not in error["message"], error
        assert sorted(p.name for p in (tmp_path / "client").iterdir()) == ["crop.tif"]
    finally:
        if small is not None:
            small.stop()
        subprocess.run(["umount", "-l", str(work)], capture_output=True)


def test_vetting_knows_the_real_formats_by_content(tmp_path) -> None:
    """Real files of every accepted kind pass; the same bytes under another option, or a VRT, do not."""
    import fiona

    from backend.server.storage import Refused, Storage
    from backend.server.vetting import file_kind, vet_upload

    storage = Storage(tmp_path / "work", [], max_upload=1 << 30)
    models = REPO_ROOT / "resources" / "models"
    with fiona.open(POLYGONS) as source:
        for driver, name in (("GPKG", "polys.gpkg"), ("ESRI Shapefile", "polys.shp")):
            with fiona.open(tmp_path / name, "w", driver=driver, schema=source.schema,
                            crs=source.crs) as sink:
                sink.writerecords(source)
    crop = write_crop(tmp_path / "crop.tif", size=16)
    parts = sorted(p.name for p in tmp_path.glob("polys.*") if p.suffix not in (".gpkg", ".shp"))
    accepted = (("--samples", tmp_path / "polys.gpkg", ["polys.gpkg"], "geopackage"),
                ("--samples", tmp_path / "polys.shp", ["polys.shp", *parts], "shapefile"),
                ("--samples", POLYGONS, [POLYGONS.name], "json"),
                ("--model", models / "terraprobe-croma-small.safetensors",
                 ["terraprobe-croma-small.safetensors", "terraprobe-croma-small.json"], "safetensors"),
                ("--optical", crop, ["crop.tif"], "tiff"))
    for option, path, names, kind in accepted:
        assert file_kind(path) == kind
        assert vet_upload("classify", option, path, names, storage, tmp_path) == path
    for _, path, names, _ in accepted[:4]:  # a vector or a model is not a raster
        with pytest.raises(Refused, match=r"self-contained files here \(tiff\)"):
            vet_upload("classify", "--optical", path, names[:1], storage, tmp_path)
    with pytest.raises(Refused, match=r"polys\.shp is not a companion"):
        vet_upload("classify", "--optical", crop, ["crop.tif", "polys.shp"], storage, tmp_path)
