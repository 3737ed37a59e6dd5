"""Get a known model: HTTP download with progress and resume, verification, conversion, placement.

The flow of :func:`install_model`:

1. fetch the checkpoint into ``<models dir>/.downloads/NAME-<source hash>.pt.part``; an earlier
   interrupted download of the same source resumes with an HTTP ``Range`` request, guarded by
   ``If-Range`` (a server that ignores the range, or a file that changed at the source, comes whole
   again, which is detected and handled);
2. verify it: size when known exactly, sha256 (or a published sha256 prefix), then a
   ``weights_only`` strict key/shape load (:func:`backend.models.weights.load_encoder`) and the
   architecture the registry expects;
3. convert it with the same machinery as ``import-weights`` and write ``NAME.safetensors`` +
   ``NAME.json`` atomically (both or neither) into the models folder.

A file that fails verification is deleted (resuming it would only repeat the failure) and nothing
is placed; a network failure keeps the partial file so the next run resumes it. A download that
cannot fit the disk is refused before its body is written (exit 3, free and needed space); one that
fills the disk anyway, or grows past its ``Content-Length`` or registry size, loses its partial file.
Local files and
``file://`` addresses (mirrors, air-gapped sites) skip step 1.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend import __version__
from backend.errors import EnvironmentFault, UserError
from backend.io.checksums import file_sha256
from backend.io.write_checks import format_bytes, free_bytes
from backend.models.registry import KnownModel

ProgressCallback = Callable[[int, int], None]
DOWNLOADS_FOLDER = ".downloads"
CHUNK = 1 << 20
DEFAULT_TIMEOUT = 60.0
#: How far a download may exceed a registry size that is not exact.
SIZE_TOLERANCE = 0.10
#: Room kept free beyond a download (file system metadata, the validator file).
ROOM_MARGIN = 64 << 10


@dataclass
class FetchResult:
    """A complete download: where it is and how it came."""

    path: Path
    size: int
    resumed_from: int = 0
    bytes_received: int = 0


def source_hash(source: str) -> str:
    """Short hash of a source address, so partial files of different sources never mix."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:10]


def partial_path(models_dir: Path, name: str, source: str) -> Path:
    """Where the (partial) download of ``name`` from ``source`` lives."""
    return Path(models_dir) / DOWNLOADS_FOLDER / f"{name}-{source_hash(source)}.pt.part"


def local_source(source: str) -> Path | None:
    """The local path of ``source`` when it is a ``file://`` address or a plain path, else ``None``."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive
        raise UserError(f"unsupported source {source!r}: use http://, https://, file:// or a local path")
    return Path(source).expanduser()


def _describe_http_error(url: str, exc: urllib.error.HTTPError) -> str:
    who = "the server's side" if exc.code >= 500 else "the request"
    return (f"download of {url} failed: HTTP {exc.code} {exc.reason} (a problem on {who}; try again "
            "later, or give another source with --url / --mirror)")


def _content_range_start(value: str | None) -> int | None:
    """The first byte of a ``Content-Range: bytes START-END/TOTAL`` header."""
    if not value or not value.strip().startswith("bytes"):
        return None
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def size_cap(expected_size: int, exact: bool) -> int | None:
    """The most bytes a download whose server sends no length may hold (``None``: no registry size)."""
    if not expected_size:
        return None
    return expected_size if exact else int(expected_size * (1 + SIZE_TOLERANCE))


def _check_room(url: str, target: Path, needed: int, have: int) -> None:
    """``EnvironmentFault`` (exit 3) up front when the rest of the download cannot fit the disk."""
    free = free_bytes(target.parent)
    if free is None or not needed or free >= needed + ROOM_MARGIN:
        return
    kept = f"; the {format_bytes(have)} already downloaded are kept to resume" if have else ""
    raise EnvironmentFault(f"not enough disk space to download {url}: {format_bytes(free)} free, about "
                           f"{format_bytes(needed)} needed at {target.parent}; free some space and run "
                           f"again{kept}", code=errno.ENOSPC)


def _discard(target: Path) -> None:
    """Remove a partial download and its validator (it filled the disk or cannot be the file)."""
    for leftover in (target, _validator_path(target)):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def fetch(url: str, target: Path, timeout: float = DEFAULT_TIMEOUT,
          on_progress: ProgressCallback | None = None, expected_size: int = 0,
          size_exact: bool = False) -> FetchResult:
    """Download ``url`` into ``target``, resuming an existing partial ``target``.

    Before the body is written the free space is checked against what is left to download (the
    ``Content-Length``, else the registry's size); the body is cut off at the ``Content-Length``,
    else at :func:`size_cap` of the registry's size. A write that fills the disk or a body past
    the cap removes the partial file (it would only fill the disk again).

    Args:
        url: an ``http://`` or ``https://`` address.
        target: the partial file; kept on network failures so a later call resumes it.
        timeout: seconds without data (connecting or reading) before giving up.
        on_progress: called with ``(bytes so far, total or 0)``.
        expected_size: the size the registry expects (used when the server sends no length).
        size_exact: whether ``expected_size`` is the exact size (else it is approximate).

    Raises:
        UserError: HTTP errors, unreachable server, timeout, a connection that dropped early, or a
            body larger than expected.
        EnvironmentFault: the disk cannot hold the download (up front, or when a write fails).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    have = target.stat().st_size if target.exists() else 0
    headers = {"User-Agent": f"terraprobe/{__version__}"}
    validator = _validator_path(target)
    if have:
        headers["Range"] = f"bytes={have}-"
        with contextlib.suppress(OSError):  # the file changed at the source: the server sends it whole
            headers["If-Range"] = validator.read_text(encoding="utf-8").strip()
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have and (not expected_size or have >= expected_size):
            return FetchResult(target, have, resumed_from=have)  # already complete
        if exc.code == 416:
            target.unlink()
            return fetch(url, target, timeout, on_progress, expected_size, size_exact)
        raise UserError(_describe_http_error(url, exc), kind="download") from None
    except (socket.timeout, TimeoutError):
        raise UserError(f"download of {url} timed out: no answer within {timeout:g} s "
                        "(run the command again to retry, or raise --timeout)", kind="download") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot reach {url}: {reason} (check the address and the network, or use "
                        "--url / --file for a mirror or a local copy)", kind="download") from None
    with response:
        status = getattr(response, "status", 200)
        length = int(response.headers.get("Content-Length") or 0)
        if status == 206 and _content_range_start(response.headers.get("Content-Range")) == have:
            resumed_from, mode = have, "ab"
        else:  # the server sent the whole file: start over
            resumed_from, mode = 0, "wb"
        total = resumed_from + length if length else expected_size
        cap = total if length else size_cap(expected_size, size_exact)
        _check_room(url, target, max(total - have, 0), resumed_from)  # a restart frees the part it truncates
        tag = response.headers.get("ETag") or response.headers.get("Last-Modified")
        if tag and not tag.startswith("W/"):  # weak tags may not be used with If-Range
            validator.write_text(tag, encoding="utf-8")
        received = 0
        last_report = 0.0
        try:
            with target.open(mode) as handle:
                while True:
                    chunk = response.read1(CHUNK)  # what arrived (up to CHUNK): fine-grained progress
                    if not chunk:
                        break
                    if cap is not None and resumed_from + received + len(chunk) > cap:
                        raise _TooLarge(cap)
                    handle.write(chunk)
                    handle.flush()  # the partial file holds all that arrived: a kill loses nothing to resume
                    received += len(chunk)
                    now = time.monotonic()
                    if on_progress and now - last_report > 0.25:
                        last_report = now
                        on_progress(resumed_from + received, total)
        except (socket.timeout, TimeoutError):
            raise UserError(f"download of {url} timed out after {resumed_from + received} bytes (no data "
                            f"for {timeout:g} s); run the command again to resume", kind="download") from None
        except _TooLarge:
            _discard(target)
            raise UserError(f"download of {url} is larger than the {format_bytes(cap or 0)} expected "
                            f"({'Content-Length' if length else 'registry size'}); stopped and removed the "
                            "partial file: check the address", kind="download") from None
        except (http.client.IncompleteRead, OSError) as exc:
            if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
                _discard(target)
                needed = f", about {format_bytes(total)} needed" if total else ""
                raise EnvironmentFault(f"the disk is full: {format_bytes(free_bytes(target.parent) or 0)} "
                                       f"free{needed} at {target.parent}; the partial download was removed "
                                       "(free some space and run again)", code=errno.ENOSPC) from None
            raise UserError(f"download of {url} was interrupted after {resumed_from + received} bytes "
                            f"({type(exc).__name__}); run the command again to resume",
                            kind="download") from None
    size = target.stat().st_size
    if length and received < length:
        raise UserError(f"download of {url} was interrupted after {size} of {resumed_from + length} bytes; "
                        "run the command again to resume", kind="download")
    if on_progress:
        on_progress(size, total or size)
    return FetchResult(target, size, resumed_from=resumed_from, bytes_received=received)


class _TooLarge(Exception):
    """The body grew past its cap."""


def _validator_path(partial: Path) -> Path:
    """Where the ETag / Last-Modified of a partial download is kept (for ``If-Range``)."""
    return partial.with_name(partial.name + ".validator")


def verify_file(path: Path, entry: KnownModel | None) -> str:
    """Check size and checksum of a checkpoint against its registry entry; returns its sha256.

    Raises:
        UserError: a size or checksum that does not match (the message says which and by how much).
    """
    size = path.stat().st_size
    if entry is not None and entry.size_exact and entry.size_bytes and size != entry.size_bytes:
        what = "truncated" if size < entry.size_bytes else "too large"
        raise UserError(f"{entry.name}: the file is {what}: {size} bytes, expected {entry.size_bytes}",
                        kind="verification")
    digest = file_sha256(path)
    if entry is not None and entry.sha256 and digest != entry.sha256.lower():
        raise UserError(f"{entry.name}: checksum mismatch (sha256 {digest[:16]}…, expected "
                        f"{entry.sha256.lower()[:16]}…): the file is corrupted or not this model",
                        kind="verification")
    if entry is not None and not entry.sha256 and entry.sha256_prefix \
            and not digest.startswith(entry.sha256_prefix.lower()):
        raise UserError(f"{entry.name}: checksum mismatch (sha256 starts {digest[:8]}, expected "
                        f"{entry.sha256_prefix.lower()}): the file is corrupted or not this model",
                        kind="verification")
    return digest


def check_architecture(config: Any, entry: KnownModel | None, source: str) -> None:
    """The loaded model's width and depths must be those the registry expects (0 = unchecked)."""
    if entry is None:
        return
    for key, expected in entry.architecture().items():
        found = getattr(config, key, None)
        if expected and found != expected:
            raise UserError(f"{source} is not {entry.name}: {key} is {found}, expected {expected}",
                            kind="verification")


def load_verified(path: Path, entry: KnownModel | None) -> Any:
    """Load a checkpoint weights-only with strict keys/shapes and check it against ``entry``."""
    from backend.models.weights import load_encoder

    try:
        model = load_encoder(path)
    except UserError as exc:
        raise UserError(f"{entry.name if entry else path.name}: not a valid CROMA checkpoint: {exc}",
                        kind="verification") from None
    check_architecture(model.config, entry, str(path))
    if entry is not None and entry.tensors and len(model.state_dict()) != entry.tensors:
        raise UserError(f"{path} has {len(model.state_dict())} tensors, expected {entry.tensors}",
                        kind="verification")
    return model


def convert(model: Any, entry: KnownModel, source: str, digest: str, models_dir: Path) -> tuple[Path, Path]:
    """Write the verified model as ``NAME.safetensors`` + ``NAME.json`` (atomically) into ``models_dir``."""
    import datetime

    from backend.models.weights import save_model

    config = model.config
    config.name = entry.name
    config.provenance.update({
        "source": source,
        "source_sha256": digest,
        "registry_name": entry.name,
        "licence": entry.licence,
        "citation": entry.citation,
        "downloaded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })
    return save_model(model, Path(models_dir) / entry.name)


def install_model(entry: KnownModel, models_dir: Path, source: str, timeout: float = DEFAULT_TIMEOUT,
                  on_progress: ProgressCallback | None = None,
                  log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Download (or read), verify, convert and place ``entry``; see the module docstring.

    Returns:
        ``weights``, ``config``, ``sha256``, ``bytes_received``, ``resumed_from`` and ``source``.

    Raises:
        UserError: any failure, with nothing placed in ``models_dir``.
    """
    log = log or (lambda _message: None)
    models_dir = Path(models_dir)
    local = local_source(source)
    fetched: FetchResult | None = None
    if local is not None:
        if not local.is_file():
            raise UserError(f"model file not found: {local}")
        checkpoint = local
    else:
        target = partial_path(models_dir, entry.name, source)
        if target.exists():
            log(f"resuming the download of {entry.name} at {target.stat().st_size} bytes")
        fetched = fetch(source, target, timeout=timeout, on_progress=on_progress,
                        expected_size=entry.size_bytes, size_exact=entry.size_exact)
        checkpoint = fetched.path
    try:
        log(f"verifying {checkpoint.name}")
        digest = verify_file(checkpoint, entry)
        model = load_verified(checkpoint, entry)
        log(f"converting {entry.name} to a Terraprobe model")
        weights, config = convert(model, entry, source, digest, models_dir)
    except UserError:
        if fetched is not None:  # a bad download is not worth resuming
            for leftover in (fetched.path, _validator_path(fetched.path)):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
        raise
    if fetched is not None:
        fetched.path.unlink()
        with contextlib.suppress(FileNotFoundError):
            _validator_path(fetched.path).unlink()
        with contextlib.suppress(OSError):
            fetched.path.parent.rmdir()
    return {"weights": weights, "config": config, "sha256": digest, "source": source,
            "bytes_received": fetched.bytes_received if fetched else 0,
            "resumed_from": fetched.resumed_from if fetched else 0}


def remove_downloads(models_dir: Path, name: str) -> list[Path]:
    """Delete partial downloads of ``name`` (any source); returns what was removed."""
    folder = Path(models_dir) / DOWNLOADS_FOLDER
    removed = []
    for leftover in sorted(folder.glob(f"{name}-*.pt.part*")) if folder.is_dir() else []:
        leftover.unlink()
        if leftover.suffix == ".part":
            removed.append(leftover)
    with contextlib.suppress(OSError):
        folder.rmdir()
    return removed

