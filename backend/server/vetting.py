"""What a server job may read: the files its request names, and nothing those files point at.

GDAL follows references inside files: a VRT names source rasters (any path, ``/vsicurl/`` URLs), a
scene list names scenes, text headers of many raw formats name data files, an OGR VRT or GML file
names other sources. So an uploaded input must be a self-contained format, recognised by its content
(not its name): a GeoTIFF for raster options, GeoJSON / GeoPackage / Shapefile / FlatGeobuf for
``--samples``, safetensors + JSON for ``--model``/``--head``; its companions (the client's
``COMPANION_SUFFIXES``/``SIDECAR_SUFFIXES``) may not be XML other than a ``.aux.xml``. A scene list
(``embed --optical scenes.txt``), uploaded or under a data root, is rewritten line by line into the
job's folder, each line a file inside a data root; a VRT under a data root may name only files
inside the data roots (nested VRTs checked too). Refusals never say whether a path exists.

The second layer, :data:`JOB_ENVIRONMENT`, is GDAL's own configuration in every job process.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from xml.etree import ElementTree

from backend.contract.remote import SCENE_LIST_SUFFIXES
from backend.remote.roles import COMPANION_SUFFIXES, SERVER_PREFIX, SIDECAR_SUFFIXES
from backend.server.storage import Refused, Storage

#: GDAL / PROJ configuration of every job process (environment variables are GDAL config options).
#: Measured with the pinned rasterio 1.4.4 / GDAL 3.10.3 and a loopback listener (tests/backend/
#: test_server_security.py): with these a VRT or path naming ``/vsicurl/``, ``/vsis3/`` or an http URL
#: makes no connection at all.
JOB_ENVIRONMENT = {
    # /vsicurl/ and every cloud file system (/vsis3/, /vsigs/, /vsiaz/ ...) consider only files with
    # this extension to exist, so they give up before any request
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".terraprobe-network-off",
    # GDAL's other HTTP client (WMS/WCS drivers, URLs in metadata or CRS definitions) goes through a
    # proxy on a closed port; NO_PROXY is removed from the job's environment so no host bypasses it
    "GDAL_HTTP_PROXY": "127.0.0.1:1",
    "GDAL_HTTPS_PROXY": "127.0.0.1:1",
    "GDAL_HTTP_MAX_RETRY": "0",
    "PROJ_NETWORK": "OFF",
    # no Python code from VRT pixel functions; no SQL functions or VirtualOGR from a GeoPackage's views
    "GDAL_VRT_ENABLE_PYTHON": "NO",
    "ALLOW_OGR_SQL_FUNCTIONS_FROM_TRIGGER_AND_VIEW": "NO",
    "ALLOW_VIRTUAL_OGR_FROM_TRIGGER_AND_VIEW": "NO",
    # raw raster bands (a VRT reading any file as pixels): a runtime switch only in newer GDAL; 3.10.3
    # ignores it (measured), which is why VRTs are vetted before a job starts
    "GDAL_VRT_ENABLE_RAWRASTERBAND": "NO",
}
#: Environment variables removed from job processes (they would let hosts bypass the dead proxy).
JOB_ENVIRONMENT_REMOVED = ("NO_PROXY", "no_proxy")

#: Options whose uploads are vector layers, and options whose uploads are model weights + config.
VECTOR_OPTIONS = frozenset({"--samples"})
MODEL_OPTIONS = frozenset({"--model", "--head"})
#: Content kinds an upload may have, by option (every other input option is a raster: GeoTIFF only).
_ALLOWED_KINDS = {"vector": ("json", "geopackage", "shapefile", "flatgeobuf"),
                  "model": ("safetensors", "json"), "raster": ("tiff",)}
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_GPKG_IDS = (b"GPKG", b"GP10", b"GP11")
#: A path GDAL would not read as a plain local file: virtual file systems, URLs, driver prefixes.
_NOT_PLAIN = re.compile(r"^/vsi|://|^[A-Za-z][A-Za-z0-9_]+:")
#: The largest scene list and data-root VRT the server reads to check them.
MAX_LIST_BYTES = 1 << 20
MAX_VRT_BYTES = 16 << 20
_MAX_VRT_DEPTH = 4
_VRT_PATH_TAGS = ("SourceFilename", "SourceDataset")


def file_kind(path: Path) -> str:
    """What a file is, from its first bytes: ``tiff``, ``vrt``, ``pam``, ``xml``, ``json``, ... ``other``."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if head[:4] in _TIFF_MAGICS:
        return "tiff"
    if head.startswith(b"SQLite format 3\x00"):
        return "geopackage" if head[68:72] in _GPKG_IDS else "sqlite"
    if head[:4] == b"\x00\x00\x27\x0a":
        return "shapefile"
    if head[:3] == b"fgb":
        return "flatgeobuf"
    if len(head) > 8 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < path.stat().st_size:
        return "safetensors"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        return "json"
    if text.startswith(b"<"):
        if b"<VRTDataset" in head or b"<OGRVRTDataSource" in head:
            return "vrt"
        return "pam" if b"<PAMDataset" in head else "xml"
    return "other"


def _role(option: str) -> str:
    if option in VECTOR_OPTIONS:
        return "vector"
    return "model" if option in MODEL_OPTIONS else "raster"


def _is_scene_list(command: str, option: str, path: Path) -> bool:
    return command == "embed" and option == "--optical" and path.suffix.lower() in SCENE_LIST_SUFFIXES


def _companion_names(main: str) -> set[str]:
    path = Path(main)
    names = {path.with_suffix(s).name for s in COMPANION_SUFFIXES.get(path.suffix.lower(), ())}
    return names | {main + suffix for suffix in SIDECAR_SUFFIXES}


def vet_upload(command: str, option: str, path: Path, names: list[str], storage: Storage,
               job_dir: Path) -> Path:
    """The path a job may read for an uploaded input (``names``: the uploaded set, ``path`` its first).

    Raises:
        Refused: a multi-file or unknown format, an unexpected companion, a bad scene list.
    """
    if _is_scene_list(command, option, path):
        if len(names) > 1:
            raise Refused(f"a scene list is uploaded alone, not with {', '.join(names[1:])}")
        return rewrite_scene_list(path, storage, job_dir, uploaded=True)
    kind, role = file_kind(path), _role(option)
    if kind not in _ALLOWED_KINDS[role]:
        raise Refused(f"{option} {path.name}: the server reads only self-contained files here "
                      f"({', '.join(_ALLOWED_KINDS[role])}), not {_describe(kind)}; a VRT, scene list or "
                      "other file that names further files must lie under a --data-root (server:PATH)")
    allowed = _companion_names(path.name)
    for name in names[1:]:
        companion = path.with_name(name)
        if name not in allowed:
            raise Refused(f"{option} {path.name}: {name} is not a companion the server accepts "
                          f"(only {', '.join(sorted(allowed))})")
        companion_kind = file_kind(companion)
        if companion_kind in ("vrt", "xml") or (companion_kind == "pam") != name.endswith(".aux.xml"):
            raise Refused(f"{option} {path.name}: the companion {name} is {_describe(companion_kind)}, "
                          "not what its name says")
    return path


def vet_data_file(command: str, option: str, path: Path, storage: Storage, job_dir: Path) -> Path:
    """The path a job may read for a ``server:PATH`` input (a real file inside a data root)."""
    if _is_scene_list(command, option, path):
        return rewrite_scene_list(path, storage, job_dir, uploaded=False)
    if file_kind(path) == "vrt":
        check_vrt(path, storage)
    return path


def _describe(kind: str) -> str:
    return {"vrt": "a VRT (it names other files)", "xml": "an XML file", "pam": "a .aux.xml sidecar",
            "other": "a file of another format", "sqlite": "an SQLite database that is not a GeoPackage",
            }.get(kind, f"a {kind} file")


def _refuse_unless_plain(text: str, where: str) -> None:
    if not text or "\x00" in text or _NOT_PLAIN.search(text):
        raise Refused(f"{where}: {text!r} is not a file in the server's data roots: refused "
                      "(no URLs, /vsi paths or driver prefixes)", status=403)


def rewrite_scene_list(path: Path, storage: Storage, job_dir: Path, uploaded: bool) -> Path:
    """A copy of scene list ``path`` in the job's folder, each line a checked file inside a data root.

    Lines of an uploaded list are ``server:PATH`` paths (relative ones looked up in the data roots);
    relative lines of a list under a data root are relative to its folder, as a local run reads them.
    """
    if path.stat().st_size > MAX_LIST_BYTES:
        raise Refused(f"scene list {path.name} is larger than {MAX_LIST_BYTES} bytes")
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise Refused(f"scene list {path.name} is not UTF-8 text") from None
    scenes: list[str] = []
    for number, line in enumerate(lines, start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        where = f"scene list {path.name}, line {number}"
        entry = entry[len(SERVER_PREFIX):] if entry.startswith(SERVER_PREFIX) else entry
        _refuse_unless_plain(entry, where)
        if not uploaded and not os.path.isabs(entry):
            entry = str(path.parent / entry)
        try:
            scene = storage.resolve_data_path(entry)
        except Refused as exc:
            raise Refused(f"{where}: {exc}", status=exc.status) from None
        if file_kind(scene) == "vrt":
            check_vrt(scene, storage)
        scenes.append(str(scene))
    if not scenes:
        raise Refused(f"scene list {path.name} names no scenes")
    folder = job_dir / "in"
    folder.mkdir(exist_ok=True)
    rewritten = folder / path.name
    rewritten.write_text("".join(scene + "\n" for scene in scenes), encoding="utf-8")
    return rewritten


def check_vrt(path: Path, storage: Storage, depth: int = 0) -> None:
    """Refuse a data-root VRT that names anything but files inside the data roots (nested VRTs too)."""
    if depth > _MAX_VRT_DEPTH or path.stat().st_size > MAX_VRT_BYTES:
        raise Refused(f"the VRT {path.name} is nested more than {_MAX_VRT_DEPTH} deep or larger than "
                      f"{MAX_VRT_BYTES} bytes")
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        raise Refused(f"the VRT {path.name} is not valid XML ({exc})") from None
    where = f"the VRT {path.name}"
    for element in root.iter():
        if element.tag == "PixelFunctionLanguage" and (element.text or "").strip().lower() == "python":
            raise Refused(f"{where} has a Python pixel function: refused")
        if element.tag not in _VRT_PATH_TAGS:
            continue
        name = (element.text or "").strip()
        _refuse_unless_plain(name, where)
        relative = (element.get("relativeToVRT") or element.get("relativetoVRT") or "0").strip() == "1"
        candidate = path.parent / name if relative else Path(name)
        source = storage.data_file(candidate) if candidate.is_absolute() else None
        if source is None:
            raise Refused(f"{where} names {name!r}, which is not a file in the server's data roots: "
                          "refused", status=403)
        if file_kind(source) == "vrt":
            check_vrt(source, storage, depth + 1)
