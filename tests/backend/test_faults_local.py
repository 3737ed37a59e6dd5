"""Issue 20, the local paths to data loss: outputs that are not regular files (case 4), a scene folder
the tool did not make (case 5), sidecars in the cache key (case 7), absurd areas (case 8).

Every case runs the real command line on a 128 px crop of the Sen1Floods11 chip and checks the exit
code, the one-line message, that nothing was deleted and that the inputs are byte-identical.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from backend.inference.scene_embed import SCENES_MARKER
from tests.backend.conftest import events_of, run_backend, run_json
from tests.backend.test_faults_outputs import CROP, crop, digest, error_line, files_in
from tests.conftest import backend_python

SCENE = "sen1floods11/Spain_7370579_S2Hand.tif"


@pytest.fixture(scope="module")
def scene(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return crop(shared_data / SCENE, tmp_path_factory.mktemp("inputs") / "s2.tif")


# -- case 4: outputs are regular files or absent ---------------------------------------------------

def _fifo(folder: Path, name: str) -> Path:
    path = folder / name
    os.mkfifo(path)
    return path


def _device_link(folder: Path, name: str) -> Path:
    """A symbolic link to ``/dev/null`` (writing through it would replace the system's device)."""
    path = folder / name
    path.symlink_to("/dev/null")
    return path


@pytest.mark.parametrize(("command", "option", "make", "kind"), [
    ("embed", "--out", _fifo, "a FIFO (named pipe)"),
    ("embed", "--preview-out", None, "a character device"),
    ("cluster", "--out", _device_link, "a character device"),
    ("cluster", "the style", _fifo, "a FIFO (named pipe)"),
    ("vectorise", "--out", _fifo, "a FIFO (named pipe)"),
])
def test_an_output_that_is_a_device_or_fifo_is_refused(scene: Path, tmp_path: Path, command: str,
                                                       option: str, make, kind: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    out = work / "result.tif"
    if option == "the style":
        target = _fifo(work, "result.qml")
    else:
        suffix = ".gpkg" if command == "vectorise" else ".tif"
        target = Path("/dev/null") if make is None else make(work, f"special{suffix}")
        if option == "--out":
            out = target
    args = {"embed": ["embed", "--optical", scene], "cluster": ["cluster", "--optical", scene, "--k", "3"],
            "vectorise": ["vectorise", "--raster", scene]}[command]
    args += ["--out", out] + (["--cache-dir", tmp_path / "cache"] if command != "vectorise" else [])
    if option == "--preview-out":
        args += [option, target]
    before, listing = digest(scene), sorted(p.name for p in work.iterdir())
    proc = run_backend(*args, timeout=120)
    assert proc.returncode == 2, proc.stderr
    line = error_line(proc)
    assert f"{option} {target} is {kind}, not a regular file" in line, line
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    if target != Path("/dev/null"):
        assert not stat.S_ISREG(os.stat(target).st_mode)  # the FIFO or the link to the device stays
    assert sorted(p.name for p in work.iterdir()) == listing and digest(scene) == before
    assert files_in(tmp_path / "cache") == []


def test_the_atomic_writer_refuses_a_fifo_or_a_folder(tmp_path: Path) -> None:
    from backend.errors import UserError
    from backend.io.atomic import write_text_atomic

    fifo = _fifo(tmp_path, "style.qml")
    with pytest.raises(UserError, match="is a FIFO"):
        write_text_atomic(fifo, "<qgis/>")
    (tmp_path / "report.md").mkdir()
    with pytest.raises(UserError, match=r"report\.md is a folder, not a file"):
        write_text_atomic(tmp_path / "report.md", "# report")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and (tmp_path / "report.md").is_dir()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["report.md", "style.qml"]



# -- case 5: a many-scene embed never deletes a folder it did not make -----------------------------

@pytest.fixture(scope="module")
def two_scenes(scene: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("scenes")
    return [Path(shutil.copy(scene, folder / f"{name}.tif")) for name in ("east", "west")]


def _embed_scenes(scenes: list[Path], out: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return run_backend("embed", *[arg for path in scenes for arg in ("--optical", path)], "--out", out,
                       "--cache-dir", cache, timeout=300)


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_scene_folder_the_tool_did_not_make_is_kept(two_scenes: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "mosaic.vrt"
    users = tmp_path / "mosaic_scenes"
    users.mkdir()
    (users / "notes.txt").write_text("field notes\n")
    (users / "east.tif").write_bytes(b"the user's own raster")
    before, inputs = _tree(tmp_path), {p: digest(p) for p in two_scenes}
    proc = _embed_scenes(two_scenes, out, tmp_path / "cache")
    assert proc.returncode == 2, proc.stderr
    line = error_line(proc)
    assert line == (f"error: the scene folder {users} already exists and was not made by this tool (no "
                    f"{SCENES_MARKER}); it is left as it is: move it away or choose another --out")
    assert _tree(tmp_path) == before and {p: digest(p) for p in two_scenes} == inputs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mosaic_scenes"]  # refused before any work


@pytest.mark.slow
def test_a_scene_folder_of_ours_is_replaced_but_not_with_foreign_files(two_scenes: list[Path],
                                                                      tmp_path: Path) -> None:
    out, cache = tmp_path / "mosaic.vrt", tmp_path / "cache"
    folder = tmp_path / "mosaic_scenes"
    assert _embed_scenes(two_scenes, out, cache).returncode == 0
    written = sorted(p.name for p in folder.iterdir())
    assert written == sorted([SCENES_MARKER, "east.tif", "east_pca.tif", "west.tif", "west_pca.tif"])
    again = _embed_scenes(two_scenes, out, cache)  # the tool's own folder: replaced
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in folder.iterdir()) == written
    (folder / "my_map.qgz").write_bytes(b"a project saved beside the scenes")
    before = _tree(tmp_path)
    proc = _embed_scenes(two_scenes, out, cache)
    assert proc.returncode == 2
    assert error_line(proc) == (f"error: the scene folder {folder} holds files this tool did not write "
                                "(my_map.qgz); they are left as they are: move them away or choose another "
                                "--out")
    assert _tree(tmp_path) == before


# -- case 8: an absurd area or one that cannot fit the disk is refused up front ----------------------

def _huge_vrt(scene: Path, target: Path, side: int) -> Path:
    """A few-kB VRT declaring a ``side x side`` px raster whose only source is the 128 px ``scene``."""
    import rasterio

    with rasterio.open(scene) as src:
        crs, t, count, descriptions = src.crs.to_wkt(), src.transform, src.count, src.descriptions
    rect = f'xOff="0" yOff="0" xSize="{CROP}" ySize="{CROP}"'
    bands = "".join(
        f'<VRTRasterBand dataType="UInt16" band="{b}"><Description>{descriptions[b - 1]}</Description>'
        f'<SimpleSource><SourceFilename relativeToVRT="0">{scene}</SourceFilename><SourceBand>{b}'
        f'</SourceBand><SrcRect {rect}/><DstRect {rect}/></SimpleSource></VRTRasterBand>'
        for b in range(1, count + 1))
    target.write_text(f'<VRTDataset rasterXSize="{side}" rasterYSize="{side}"><SRS>{escape(crs)}</SRS>'
                      f"<GeoTransform>{t.c}, {t.a}, 0, {t.f}, 0, {t.e}</GeoTransform>{bands}</VRTDataset>")
    return target


def _run_under_parent(*args: str | Path) -> tuple[int, list[dict], int]:
    """Run the backend under a fresh parent: exit code, its events (heartbeats left out), and the
    backend's peak resident memory in kB."""
    parent = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
              "sys.exit(code)")
    done = run_json(*args, launcher=[backend_python(), "-c", parent, backend_python()], timeout=120)
    events = [event for event in events_of(done) if event["event"] != "heartbeat"]
    return done.returncode, events, int(done.stderr.split()[-1])


def test_a_tiny_vrt_declaring_a_huge_raster_is_refused_at_once(scene: Path, tmp_path: Path) -> None:
    vrt = _huge_vrt(scene, tmp_path / "huge.vrt", 1_000_000)
    before = digest(vrt)
    code, events, peak_kb = _run_under_parent("embed", "--optical", vrt, "--out", tmp_path / "out.tif",
                                              "--cache-dir", tmp_path / "cache")
    assert code == 2
    *setup, refusal = events  # refused while setting up: no tile read, no progress event before it
    assert setup[0]["message"].startswith("model: ") and {e["event"] for e in setup} == {"log"}, events
    assert refusal["event"] == "error" and refusal["message"] == (
        "the area is 1000000 x 1000000 px (1e+12 px): more than the 1e+11 px one run embeds (its embeddings "
        "would take about 3.7 TB); choose a smaller area with --bounds, or set TERRAPROBE_MAX_PIXELS on a "
        "machine made for it")
    assert peak_kb < 1_000_000, f"{peak_kb} kB resident"
    assert digest(vrt) == before and files_in(tmp_path) == ["huge.vrt"]  # no output, no cache entry


def test_an_area_whose_embeddings_cannot_fit_the_disk_is_refused(scene: Path, small_disk: Path,
                                                                 tmp_path: Path) -> None:
    vrt = _huge_vrt(scene, tmp_path / "large.vrt", 20_000)  # 6.25 million 128-d patches: about 1.5 GB, twice:
    proc = run_backend("embed", "--optical", vrt, "--out", small_disk / "out.tif", "--cache-dir",
                       small_disk / "cache", timeout=120)  # the cache entry and its copy on one disk
    assert proc.returncode == 3, proc.stderr
    assert error_line(proc) == (
        "error: not enough disk space for the embeddings of 20000 x 20000 px (4e+08 px): about 3.0 GB "
        f"needed at {small_disk / 'cache'}, 2.0 MB free; free some space, give --cache-dir on another "
        "disk, or a smaller area (--bounds)")
    assert files_in(small_disk) == []
