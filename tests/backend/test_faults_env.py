"""Issue 11, items 4 and 7 (part): environment faults as one clear line with their own exit code.

Read-only and permission-denied output folders, a folder given as ``--out``, truncated or damaged
GeoTIFF inputs, FIFOs given as inputs, SIGTERM while blocked in a read, library chatter before the
``error:`` line and NaN in the JSON event stream, each through the real command line on real data.
Exit codes: 2 bad input, 3 environment, 130 cancelled.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backend.conftest import events_of, read_events_until, run_backend, start_backend
from tests.backend.test_faults_outputs import CROP, SCENE, crop, digest, error_line, files_in
from tests.conftest import REPO_ROOT, backend_python, tmpfs


@pytest.fixture(scope="module")
def s2(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return crop(shared_data / SCENE.format("S2Hand"), tmp_path_factory.mktemp("env") / "s2.tif")


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """stderr of a run refused before any work: exactly one ``error:`` line."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return error_line(proc)


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (tmpfs mounts, dropping to another user)")


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    need_root()
    with tmpfs(tmp_path / "ro", "ro,size=1m") as folder:
        yield folder


def test_read_only_output_folder(s2: Path, read_only_folder: Path, tmp_path: Path) -> None:
    out = read_only_folder / "emb.tif"
    proc = run_backend("embed", "--optical", s2, "--out", out, "--cache-dir", tmp_path / "cache")
    assert proc.returncode == 3, proc.stderr
    line = one_line(proc)
    assert "read-only" in line and str(out) in line
    assert not out.exists() and files_in(tmp_path / "cache") == []  # refused before embedding


def test_permission_denied_output_folder(s2: Path, tmp_path: Path) -> None:
    need_root()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o755)  # root's folder: another user may not write in it
    os.chmod(tmp_path, 0o755)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    os.chmod(cache, 0o777)

    def as_nobody() -> None:
        os.setgid(65534)
        os.setuid(65534)

    proc = run_backend("cluster", "--optical", s2, "--k", "3", "--out", locked / "c.tif",
                       "--cache-dir", cache, preexec_fn=as_nobody, env={"HOME": str(cache)})
    if "Permission denied" in proc.stderr and "error:" not in proc.stderr:
        pytest.skip("the unprivileged user cannot run the backend here")
    assert proc.returncode == 3, proc.stderr
    line = one_line(proc)
    assert "permission denied" in line and str(locked / "c.tif") in line
    assert files_in(locked) == []


def test_out_that_is_a_folder(s2: Path, tmp_path: Path) -> None:
    proc = run_backend("embed", "--optical", s2, "--out", tmp_path, "--cache-dir", tmp_path / "cache")
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc)
    assert "is a folder" in line and str(tmp_path) in line


def test_truncated_input(shared_data: Path, tmp_path: Path) -> None:
    """A GeoTIFF cut in half (directory first, pixels after): refused up front, not 'internal error'."""
    data = (shared_data / SCENE.format("S2Hand")).read_bytes()
    half = tmp_path / "half.tif"
    half.write_bytes(data[:len(data) // 2])
    out = tmp_path / "emb.tif"
    proc = run_backend("embed", "--optical", half, "--out", out, "--cache-dir", tmp_path / "cache")
    assert proc.returncode == 3, proc.stderr
    line = error_line(proc)
    assert "truncated" in line and str(half) in line
    assert not out.exists() and files_in(tmp_path / "cache") == []
    assert half.read_bytes() == data[:len(data) // 2]


def test_input_damaged_mid_file(shared_data: Path, tmp_path: Path) -> None:
    """Reading fails part-way (garbage inside compressed blocks): one line naming the file, exit 3."""
    data = bytearray((shared_data / SCENE.format("S2Hand")).read_bytes())
    middle = len(data) // 2
    data[middle:middle + 200_000] = os.urandom(200_000)
    damaged = tmp_path / "damaged.tif"
    damaged.write_bytes(bytes(data))
    out = tmp_path / "emb.tif"
    proc = run_backend("embed", "--optical", damaged, "--out", out, "--cache-dir", tmp_path / "cache")
    assert proc.returncode == 3, proc.stderr
    line = error_line(proc)
    assert "damaged or truncated" in line and str(damaged) in line
    assert not out.exists() and [p for p in files_in(tmp_path / "cache") if p.endswith(".tif")] == []


@pytest.mark.parametrize("option", ["--optical", "--samples"])
def test_fifo_input_is_refused_at_once(s2: Path, tmp_path: Path, option: str) -> None:
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    samples = REPO_ROOT / "resources/samples/sen1floods11_samples.geojson"
    args = ["classify", "--optical", s2, "--samples", samples, "--out", tmp_path / "labels.tif",
            "--cache-dir", tmp_path / "cache"]
    args[args.index(option) + 1] = fifo
    proc = run_backend(*args, timeout=60)  # a read blocked on the FIFO would run past the timeout
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc)
    assert "FIFO" in line and str(fifo) in line


def test_sigterm_cancels_a_run_blocked_in_a_read(s2: Path, tmp_path: Path) -> None:
    """A VRT whose source is a FIFO blocks GDAL inside open(); SIGTERM must still end the run (130)."""
    fifo = tmp_path / "source.tif"
    os.mkfifo(fifo)
    import rasterio

    with rasterio.open(s2) as src:
        t, names = src.transform, src.descriptions
    bands = "".join(
        f'<VRTRasterBand dataType="Int16" band="{i}"><Description>{name}</Description><SimpleSource>'
        f'<SourceFilename relativeToVRT="1">{fifo.name}</SourceFilename><SourceBand>{i}</SourceBand>'
        f'</SimpleSource></VRTRasterBand>' for i, name in enumerate(names, start=1))
    vrt = tmp_path / "scene.vrt"
    vrt.write_text(f'<VRTDataset rasterXSize="{CROP}" rasterYSize="{CROP}"><SRS>EPSG:4326</SRS>'
                   f"<GeoTransform>{t.c}, {t.a}, 0, {t.f}, 0, {t.e}</GeoTransform>{bands}</VRTDataset>")
    out = tmp_path / "emb.tif"
    process = start_backend("embed", "--optical", vrt, "--out", out, "--cache-dir", tmp_path / "cache",
                            events=True)
    try:  # the model line comes just before the inputs open; a heartbeat after it: alive, blocked there
        seen = read_events_until(process, lambda event: event.get("message", "").startswith("model: "))
        after = read_events_until(process, lambda event: event["event"] == "heartbeat")
        assert [event["event"] for event in after] == ["heartbeat"], after  # nothing more: blocked opening
        seen += after
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    errors = [e for e in [*seen, *events_of(stdout)] if e["event"] == "error"]
    assert len(errors) == 1 and errors[0]["kind"] == "cancelled"
    assert not out.exists() and files_in(tmp_path / "cache") == []


def test_bad_input_prints_exactly_one_line(s2: Path, tmp_path: Path) -> None:
    """PROJ used to print 'ERROR 1: PROJ: ... crs not found' before the error line."""
    proc = run_backend("similar", "--optical", s2, "--point", "0", "0", "--point-crs", "EPSG:99999", "--out",
                       tmp_path / "sim.tif", "--cache-dir", tmp_path / "cache")
    assert proc.returncode == 2
    expected = "error: --point-crs 'EPSG:99999' is not a CRS (try EPSG:4326)"
    assert proc.stderr.strip().splitlines() == [expected]
    debug = run_backend("similar", "--optical", s2, "--point", "0", "0", "--point-crs", "EPSG:99999", "--out",
                        tmp_path / "sim.tif", "--cache-dir", tmp_path / "cache", "--debug")
    assert "PROJ" in debug.stderr  # the library's own words remain available with --debug


def _strict(line: str) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"bare {constant} in the JSON event stream: {line[:200]}")

    return json.loads(line, parse_constant=refuse)


@pytest.mark.slow
def test_segment_json_stream_has_no_nan(shared_data: Path, tmp_path: Path) -> None:
    """The last training step's crops can hold no labelled pixel: its loss is NaN, sent as null."""
    samples = REPO_ROOT / "resources/samples/sen1floods11_samples.geojson"
    proc = run_backend("segment", "--optical", shared_data / SCENE.format("S2Hand"), "--samples", samples,
                       "--steps", "2", "--seed", "0", "--out", tmp_path / "seg.tif", "--cache-dir",
                       tmp_path / "cache", "--events", "json")
    assert proc.returncode == 0, proc.stderr
    events = [_strict(line) for line in proc.stdout.splitlines()]
    stats = events[-1]["stats"]
    assert events[-1]["event"] == "result"
    assert stats["final_loss"] is None and "no labelled pixel" in stats["final_loss_note"]


def test_full_disk_message_in_json_mode(s2: Path, tmp_path: Path) -> None:
    """The plugin gets the environment kind and the message as it is (no 'internal error')."""
    need_root()
    with tmpfs(tmp_path / "disk", "size=64k") as disk:
        before = digest(s2)
        proc = run_backend("embed", "--optical", s2, "--out", disk / "emb.tif", "--cache-dir",
                           tmp_path / "cache", "--events", "json")
        assert proc.returncode == 3, proc.stderr
        error = [_strict(line) for line in proc.stdout.splitlines()][-1]
        assert error["event"] == "error" and error["kind"] == "environment"
        message = error["message"]  # refused up front (issue 20): the embeddings cannot fit
        assert message.startswith("not enough disk space for the embeddings of 128 x 128 px")
        assert f"needed at {disk}, 64.0 kB free" in message and "internal error" not in message
        assert files_in(disk) == [] and digest(s2) == before
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)


BLOCKED_RUN = """
import signal, sys, time
import backend.jobs.selftest as selftest
from backend.cli import main
from backend.io.atomic import atomic_path

def run(args, reporter):
    # SIGTERM ignored: like a C call that retries on EINTR, the cancellation never reaches the
    # run (whenever the signal comes); only the watchdog can end the run.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    with atomic_path(sys.argv[1]) as tmp:
        tmp.write_text("partial")
        reporter.log("blocked")
        time.sleep(120)

selftest.run = run
sys.exit(main(["selftest", "--events", "json"]))
"""


def test_watchdog_ends_a_run_that_ignores_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "result.txt"
    process = subprocess.Popen([backend_python(), "-c", BLOCKED_RUN, str(out)], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        read_events_until(process, lambda event: event.get("message") == "blocked")
        assert len(files_in(tmp_path)) == 1  # the temporary being written
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)  # the run itself would sleep 120 s
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    error = json.loads(stdout.splitlines()[-1])
    assert error["event"] == "error" and error["kind"] == "cancelled"
    assert "stopped while blocked in a library call" in error["message"]  # the watchdog ended it
    assert files_in(tmp_path) == []  # the temporary was removed before the forced exit
