"""On-disk cache of embedding rasters that verifies what it serves, so clustering/classifying again
skips the encoder.

The key is the sha256 of everything that determines the embeddings: each input's absolute path,
size, mtime, ctime, inode and a sha256 of sampled content (first and last MiB plus 16 blocks of
64 KiB: an in-place edit with a restored mtime still changes the ctime, and edits in the sampled
blocks change the hash), the same of every other file GDAL reads for it (VRT sources, ``.msk``
masks, world files, overviews; ``.aux.xml`` sidecars by their content without statistics), its
band mapping, the area (CRS, transform, size), the tiling (window,
overlap, stitching), the model files' content hash and the output dtype. Entries live in
``--cache-dir`` (default ``~/.cache/terraprobe/embeddings``) as ``<key>.tif`` (embeddings),
``<key>_pca.tif`` (preview) and ``<key>.json`` (the sidecar: the key facts, the run's stats, the
size and sha256 of both rasters, the embedding dimension). The rasters are written atomically, then
the sidecar; an entry counts only when all three exist.

Before an entry is served it is verified (:func:`verify_entry`: sidecar facts equal the request,
sizes and sha256 match, the rasters reopen with the expected band count, size, transform and CRS);
a bad entry is discarded with a warning and recomputed. :class:`EmbeddingCache` also sweeps stale
temporaries (``.<key>...part...`` files of killed runs, older than :data:`STALE_SECONDS` and not
locked by a live writer), evicts least-recently-used entries past a size limit after each commit
(``--cache-max-gb``, ``$TERRAPROBE_CACHE_MAX_GB``, default :data:`DEFAULT_MAX_GB`), and falls back
to a private temporary folder, removed at exit, when the cache folder is not writable.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.errors import UserError
from backend.io.checksums import file_sha256

if TYPE_CHECKING:
    from backend.events import Reporter
    from backend.inference.inputs import InputSet

try:  # advisory locks mark live writers (POSIX); elsewhere temporaries are swept by age only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

DEFAULT_CACHE_DIR = Path("~/.cache/terraprobe/embeddings")
CACHE_VERSION = 2
DEFAULT_MAX_GB = 20.0
"""Default size limit of the cache folder in GB (10**9 bytes)."""
STALE_SECONDS = 3600
"""Temporaries and incomplete entries older than this (and not locked) are swept."""
SAMPLE_EDGE = 1 << 20
SAMPLE_BLOCKS = 16
SAMPLE_BLOCK = 64 << 10
PATCH = 8
#: GDAL's sidecar of a raster's extra facts (NoData, scale/offset, metadata, statistics).
PAM_SUFFIX = ".aux.xml"
_KEY = re.compile(r"^[0-9a-f]{64}$")
_TEMP = re.compile(r"^\.([0-9a-f]{64})(?:_pca)?\..*\.part")
_LOCK = re.compile(r"^\.([0-9a-f]{64})\.lock$")


def default_cache_dir() -> Path:
    """``$TERRAPROBE_CACHE_DIR`` when set, else ``~/.cache/terraprobe/embeddings``."""
    return Path(os.environ.get("TERRAPROBE_CACHE_DIR", DEFAULT_CACHE_DIR)).expanduser()


def cache_max_bytes(max_gb: float | None = None) -> int:
    """The size limit in bytes: ``max_gb``, else ``$TERRAPROBE_CACHE_MAX_GB``, else 20 GB."""
    value: Any = max_gb
    if value is None:
        value = os.environ.get("TERRAPROBE_CACHE_MAX_GB", DEFAULT_MAX_GB)
    try:
        gigabytes = float(value)
    except ValueError:
        raise UserError(f"TERRAPROBE_CACHE_MAX_GB must be a number of GB, got {value!r}") from None
    if not gigabytes >= 0:
        raise UserError(f"the cache size limit must be 0 GB or more, got {value}")
    return int(gigabytes * 1e9)


# -- keys ---------------------------------------------------------------------------------------
def sampled_sha256(path: Path, size: int) -> str:
    """sha256 of the first and last MiB and 16 evenly spaced 64 KiB blocks (the whole of small files)."""
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        if size <= 2 * SAMPLE_EDGE + SAMPLE_BLOCKS * SAMPLE_BLOCK:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
            return digest.hexdigest()
        middle = size - 2 * SAMPLE_EDGE - SAMPLE_BLOCK
        spans = [(0, SAMPLE_EDGE), (size - SAMPLE_EDGE, SAMPLE_EDGE)]
        spans += [(SAMPLE_EDGE + middle * i // (SAMPLE_BLOCKS - 1), SAMPLE_BLOCK)
                  for i in range(SAMPLE_BLOCKS)]
        for offset, length in spans:
            handle.seek(offset)
            digest.update(handle.read(length))
    return digest.hexdigest()


def content_fingerprint(path: Path) -> dict[str, Any]:
    """Cheap facts that change when a file's content changes: size, times, inode, sampled hash."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns,
            "inode": stat.st_ino, "sample_sha256": sampled_sha256(path, stat.st_size)}


def source_files(dataset: Any, main: Path) -> list[Path]:
    """The files besides ``main`` that GDAL reads for a dataset's pixels, sorted.

    A VRT's sources, masks (``.msk``), world files, ``.aux.xml`` sidecars (NoData, scale/offset,
    metadata; see :func:`sidecar_fingerprint`) and overviews (``.ovr``: full-resolution windows never
    read them, but the statistics sample is a decimated read, which GDAL serves from overviews).
    """
    found = set()
    for name in getattr(dataset, "files", None) or []:
        path = Path(name)
        if path.is_file() and path.resolve() != main.resolve():
            found.add(path.resolve())
    return sorted(found)


def _is_statistics(element: Any) -> bool:
    """A PAM element that only describes the pixels (what QGIS or ``gdalinfo -stats`` writes)."""
    return element.tag == "Histograms" or (element.tag == "MDI"
                                           and (element.get("key") or "").startswith("STATISTICS_"))


def _prune(element: Any) -> bool:
    """Drop statistics and then-empty elements below ``element``; whether ``element`` is left empty."""
    for child in list(element):
        if _is_statistics(child) or _prune(child):
            element.remove(child)
    return len(element) == 0 and not (element.text or "").strip()


def sidecar_fingerprint(path: Path) -> dict[str, Any] | None:
    """What of a part decides the pixels: the content fingerprint, or for a GDAL ``.aux.xml`` sidecar
    the sha256 of its canonical XML without statistics and histograms (``None`` when nothing else is
    in it), so computing statistics in QGIS does not miss the cache but a declared NoData does."""
    if not path.name.lower().endswith(PAM_SUFFIX):
        return content_fingerprint(path)
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return content_fingerprint(path)
    if _prune(root):
        return None
    canonical = ElementTree.canonicalize(ElementTree.tostring(root, encoding="unicode"), strip_text=True)
    return {"pam_sha256": hashlib.sha256(canonical.encode()).hexdigest()}


def key_facts(inputs: InputSet, model_digest: str, window: int, overlap: int, dtype: str,
              stitch: str = "blend") -> dict[str, Any]:
    """Everything that determines the embeddings of a run, as JSON-friendly data."""
    files = {}
    for name, modality in inputs.modalities.items():
        files[name] = {"path": str(modality.path), **content_fingerprint(Path(modality.path)),
                       "bands": modality.bands, "units": modality.units.key() if modality.units else None}
        parts = {str(p): sidecar_fingerprint(p) for p in source_files(modality.source, Path(modality.path))}
        parts = {path: facts for path, facts in parts.items() if facts is not None}
        if parts:  # a VRT's sources, sidecars, masks, overviews: they decide the pixels too
            files[name]["parts"] = parts
        if modality.band_mix is not None:  # spectral fill (backend.io.sensor_bands)
            files[name]["band_mix"] = [[round(float(w), 6) for w in row] for row in modality.band_mix]
    return {"version": CACHE_VERSION, "inputs": files, "crs": inputs.crs.to_string(),
            "transform": list(inputs.transform)[:6], "width": inputs.width, "height": inputs.height,
            "window": window, "overlap": overlap, "stitch": stitch, "model_sha256": model_digest,
            "dtype": dtype}


def cache_key(facts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


# -- entries ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CacheEntry:
    """The files of one cache entry."""

    directory: Path
    key: str

    @property
    def embeddings(self) -> Path:
        return self.directory / f"{self.key}.tif"

    @property
    def preview(self) -> Path:
        return self.directory / f"{self.key}_pca.tif"

    @property
    def sidecar(self) -> Path:
        return self.directory / f"{self.key}.json"

    @property
    def lock(self) -> Path:
        return self.directory / f".{self.key}.lock"

    @property
    def files(self) -> tuple[Path, Path, Path]:
        return (self.embeddings, self.preview, self.sidecar)

    def exists(self) -> bool:
        return all(p.is_file() for p in self.files)

    def read_sidecar(self) -> dict[str, Any]:
        try:
            data = json.loads(self.sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def size(self) -> int:
        """Bytes on disk of the entry's files that exist."""
        total = 0
        for path in self.files:
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    def last_used(self) -> float:
        """When the entry was committed or last served (the sidecar's mtime, touched on each hit)."""
        try:
            return self.sidecar.stat().st_mtime
        except OSError:
            return 0.0

    def touch(self) -> None:
        """Mark the entry as just used (ignored where the folder is read-only)."""
        with contextlib.suppress(OSError):
            os.utime(self.sidecar)

    def remove(self) -> None:
        """Delete the entry's files (raises ``OSError`` when that is not allowed)."""
        for path in self.files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _expected_grid(facts: dict[str, Any]) -> tuple[int, int, Any, Any]:
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    width, height = math.ceil(facts["width"] / PATCH), math.ceil(facts["height"] / PATCH)
    transform = Affine(*facts["transform"][:6]) @ Affine.scale(PATCH)
    return width, height, transform, CRS.from_string(facts["crs"])


def _check_raster(path: Path, count: int, facts: dict[str, Any]) -> str | None:
    """Why the raster at ``path`` does not have ``count`` bands on the key's patch grid, or ``None``."""
    import rasterio

    width, height, transform, crs = _expected_grid(facts)
    try:
        with rasterio.open(path) as src:
            if src.count != count:
                return f"{path.name} has {src.count} bands, expected {count}"
            if (src.width, src.height) != (width, height):
                return f"{path.name} is {src.width}x{src.height} patches, expected {width}x{height}"
            if not src.transform.almost_equals(transform):
                return (f"{path.name} has transform {tuple(src.transform)[:6]}, "
                        f"expected {tuple(transform)[:6]}")
            if src.crs != crs:
                return f"{path.name} has CRS {src.crs}, expected {facts['crs']}"
    except rasterio.errors.RasterioError as exc:
        return f"{path.name} does not open as a raster ({exc})"
    return None


def file_records(entry: CacheEntry) -> dict[str, dict[str, Any]]:
    """Size and sha256 of the entry's two rasters, as stored in its sidecar."""
    return {name: {"size": path.stat().st_size, "sha256": file_sha256(path)}
            for name, path in (("embeddings", entry.embeddings), ("preview", entry.preview))}


def verify_entry(entry: CacheEntry, facts: dict[str, Any] | None = None) -> str | None:
    """Why ``entry`` must not be served, or ``None`` when it is sound.

    Args:
        entry: the entry to check (all three files must exist).
        facts: the key facts of the request; ``None`` checks the sidecar against the entry's own key.
    """
    for path in entry.files:
        if not path.is_file():
            return f"{path.name} is missing"
    sidecar = entry.read_sidecar()
    recorded, files = sidecar.get("key"), sidecar.get("files")
    if not isinstance(recorded, dict) or not isinstance(files, dict):
        return "its sidecar is unreadable or has no checksums"
    if cache_key(recorded) != entry.key:
        return "its sidecar belongs to another entry"
    if facts is not None and json.loads(json.dumps(facts)) != recorded:
        return "it was made for other inputs or settings"
    for name, path in (("embeddings", entry.embeddings), ("preview", entry.preview)):
        record = files.get(name) or {}
        size = path.stat().st_size
        if size != record.get("size"):
            return f"{path.name} is {size} bytes, {record.get('size')} were written"
        if file_sha256(path) != record.get("sha256"):
            return f"{path.name} does not match its checksum"
    try:
        dim = int(sidecar.get("embedding_dim") or sidecar["stats"]["embedding_dim"])
        return _check_raster(entry.embeddings, dim, recorded) or _check_raster(entry.preview, 3, recorded)
    except (KeyError, TypeError, ValueError) as exc:
        return f"its sidecar lacks the grid facts ({exc})"


def commit_entry(entry: CacheEntry, facts: dict[str, Any], stats: dict[str, Any]) -> None:
    """Record the key facts, stats and checksums of the freshly written rasters: the entry becomes valid."""
    from backend.io.atomic import write_text_atomic

    record = {"version": CACHE_VERSION, "key": facts, "stats": stats, "files": file_records(entry),
              "embedding_dim": stats.get("embedding_dim"), "created": time.time()}
    write_text_atomic(entry.sidecar, json.dumps(record, indent=2) + "\n")


def list_entries(directory: Path) -> list[CacheEntry]:
    """Complete entries in ``directory``, least recently used first."""
    if not directory.is_dir():
        return []
    keys = {p.stem for p in directory.glob("*.json") if _KEY.match(p.stem)}
    entries = [CacheEntry(directory, key) for key in keys]
    return sorted((e for e in entries if e.exists()), key=lambda e: (e.last_used(), e.key))


def entry_summary(entry: CacheEntry) -> dict[str, Any]:
    """What ``cache list`` shows of an entry."""
    sidecar = entry.read_sidecar()
    facts, stats = sidecar.get("key") or {}, sidecar.get("stats") or {}
    inputs = {name: info.get("path") for name, info in (facts.get("inputs") or {}).items()}
    return {"key": entry.key, "size_bytes": entry.size(), "last_used": entry.last_used(),
            "created": sidecar.get("created"), "inputs": inputs, "model": stats.get("model"),
            "patch_width": stats.get("patch_width"), "patch_height": stats.get("patch_height"),
            "embedding_dim": stats.get("embedding_dim"), "window": facts.get("window")}


# -- temporaries, locks, eviction ---------------------------------------------------------------
def _is_locked(lock: Path) -> bool:
    """Whether a live process holds the writer lock ``lock``."""
    if fcntl is None or not lock.exists():
        return False
    try:
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


@contextlib.contextmanager
def writer_lock(entry: CacheEntry) -> Iterator[None]:
    """Hold a shared advisory lock on ``.<key>.lock`` while the entry is written (swept otherwise)."""
    if fcntl is None:
        yield
        return
    handle = entry.lock.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield
    finally:
        with contextlib.suppress(OSError):  # tidy up unless another writer holds it too
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            entry.lock.unlink()
        handle.close()


def sweep_temporaries(directory: Path, max_age: float = STALE_SECONDS) -> list[Path]:
    """Remove temporaries and incomplete entries older than ``max_age`` s whose writer is gone.

    Returns:
        The removed paths (removals that fail are skipped silently).
    """
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    now = time.time()
    complete = {e.key for e in list_entries(directory)}
    for path in directory.iterdir():
        match = _TEMP.match(path.name) or _LOCK.match(path.name)
        key = match.group(1) if match else path.name[:64]
        if not match and (not _KEY.match(key) or key in complete):
            continue  # not ours, or part of a complete entry
        try:
            if not path.is_file() or now - path.stat().st_mtime < max_age:
                continue
            if _is_locked(directory / f".{key}.lock"):
                continue
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def evict(directory: Path, max_bytes: int, keep: set[str]) -> list[CacheEntry]:
    """Remove least-recently-used entries until the folder holds at most ``max_bytes`` (never ``keep``)."""
    entries = list_entries(directory)
    total = sum(e.size() for e in entries)
    evicted: list[CacheEntry] = []
    for entry in entries:
        if total <= max_bytes:
            break
        if entry.key in keep or _is_locked(entry.lock):
            continue
        size = entry.size()
        try:
            entry.remove()
        except OSError:
            continue
        total -= size
        evicted.append(entry)
    return evicted


# -- the cache a run uses -----------------------------------------------------------------------
def _writable(directory: Path) -> str | None:
    """Why files cannot be created in ``directory`` (made if missing), or ``None``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{'0' * 64}.", suffix=".part", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


class EmbeddingCache:
    """The embedding cache of one run: lookup with verification, commit, eviction, fallback folder.

    Args:
        directory: the cache folder (``None``: :func:`default_cache_dir`).
        max_gb: size limit in GB (``None``: ``$TERRAPROBE_CACHE_MAX_GB`` or 20).
        reporter: where warnings go.
    """

    def __init__(self, directory: str | os.PathLike[str] | None, max_gb: float | None,
                 reporter: Reporter) -> None:
        self.directory = Path(directory).expanduser() if directory else default_cache_dir()
        self.max_bytes = cache_max_bytes(max_gb)
        self.reporter = reporter
        self.private: Path | None = None
        self.problem = _writable(self.directory)  # entries are still served from a read-only folder
        if self.problem is None:
            sweep_temporaries(self.directory)

    def _use_private(self) -> None:
        """Write new entries to a private temporary folder, removed when the process exits."""
        if self.private is None:
            self.private = Path(tempfile.mkdtemp(prefix="terraprobe-cache-"))
            atexit.register(shutil.rmtree, self.private, ignore_errors=True)

    @property
    def write_directory(self) -> Path:
        """Where new entries go: the cache folder, or the private temporary folder."""
        return self.private or self.directory

    def lookup(self, facts: dict[str, Any]) -> CacheEntry | None:
        """The verified entry for ``facts`` (touched as used), or ``None``; a bad entry is discarded."""
        entry = CacheEntry(self.directory, cache_key(facts))
        if not entry.exists():
            return None  # incomplete entries of killed runs are swept once stale
        try:
            problem = verify_entry(entry, facts)
        except OSError as exc:
            problem = f"it cannot be read ({exc.strerror or exc})"
        if problem is None:
            entry.touch()
            return entry
        try:
            entry.remove()
            self.reporter.warning(f"discarded the bad cache entry {entry.key[:12]}: {problem}; recomputing")
        except OSError as exc:
            self.reporter.warning(f"the cache entry {entry.key[:12]} is bad ({problem}) and could not be "
                                  f"removed ({exc.strerror}); recomputing without caching")
            self._use_private()
        return None

    def entry(self, facts: dict[str, Any]) -> CacheEntry:
        """The entry to write for ``facts`` (in the private folder, with one warning, when unwritable)."""
        if self.problem is not None and self.private is None:
            self._use_private()
            self.reporter.warning(f"the cache folder {self.directory} is not writable ({self.problem}): "
                                  f"computing without caching, in a temporary folder removed at the end")
        return CacheEntry(self.write_directory, cache_key(facts))

    def commit(self, entry: CacheEntry, facts: dict[str, Any], stats: dict[str, Any]) -> None:
        """Write the sidecar (checksums) of freshly written rasters, then evict past the size limit."""
        with writer_lock(entry):
            try:
                commit_entry(entry, facts, stats)
            except BaseException:  # a full disk, say: leave no rasters without a sidecar behind
                with contextlib.suppress(OSError):
                    entry.remove()
                raise
        if self.private is not None:
            return
        evicted = evict(self.directory, self.max_bytes, keep={entry.key})
        if evicted:
            self.reporter.log(f"cache over its {self.max_bytes / 1e9:g} GB limit: removed "
                              f"{len(evicted)} least recently used entr{'y' if len(evicted) == 1 else 'ies'}")
