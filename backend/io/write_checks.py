"""Did a write succeed, and if not why: library messages, written-raster verification, disk space.

Public API:

* ``note_message(text)``, ``message_mark()``, ``write_errors_since(mark)``, ``set_message_sync(fn)``:
  the GDAL / libtiff messages the CLI routes off the terminal; the atomic writer fails a write
  when one of them reports a write error (rasterio raises nothing when GDAL fails while flushing
  its block cache at close, and libtiff prints ``_tiffWriteProc: No space left on device``).
* ``record_profile(path, profile)``: remember the profile a raster is being written with
  (``open_stream`` and ``create_raster`` call it), for verification and disk-space estimates.
* ``verify_raster(path, final)``: reopen a written raster and check it is complete (shape, band
  count, every block present inside the file, the last block readable); ``EnvironmentFault`` if not.
* ``write_fault(final, exc=None, messages=()) -> EnvironmentFault``: the one-line explanation of a
  failed write ("the disk is full: 3.1 MB free, about 8 MB needed at /path").
* ``free_bytes(path)``, ``format_bytes(n)``, ``estimate_bytes(profile)``, ``disk_nearly_full(path, profile)``,
  ``room_by_file_system(needs)`` (bytes needed per file system, for up-front checks).
"""

from __future__ import annotations

import collections
import errno
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from backend.errors import EnvironmentFault

#: Block-table entries checked in full below this count; above it only each band's last block.
_MAX_BLOCKS_CHECKED = 200_000

_profiles: dict[str, dict[str, Any]] = {}


def existing_folder(path: Path) -> Path:
    """``path``'s folder, or its nearest existing parent."""
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


# -- library messages ------------------------------------------------------------------------------

#: GDAL / libtiff messages seen by this process (the CLI routes them here instead of stderr).
_messages: collections.deque[tuple[int, str]] = collections.deque(maxlen=500)
_message_count = 0
_message_sync: Callable[[], None] | None = None
_WRITE_ERROR_HINTS = ("_tiffwriteproc", "_tiffseekproc", "no space left", "file too large", "write error",
                      "io error writing", "disk quota", "write failed")


#: How writers without errno (safetensors, torch.save) word a failed write.
_WRITER_HINTS = ("os error 28", "os error 27", "os error 122", "pytorchstreamwriter", "unexpected pos")


def is_write_error(text: str) -> bool:
    """Whether ``text`` (a message or an exception's text) reports a failed write."""
    lowered = text.lower()
    return any(hint in lowered for hint in (*_WRITE_ERROR_HINTS, *_WRITER_HINTS))


def note_message(text: str) -> None:
    """Record one library message (a GDAL error, a libtiff line printed to stderr)."""
    global _message_count
    _message_count += 1
    _messages.append((_message_count, text.strip()))


def set_message_sync(sync: Callable[[], None] | None) -> None:
    """Install the function that waits until messages already printed have been recorded."""
    global _message_sync
    _message_sync = sync


def message_mark() -> int:
    """A mark for :func:`write_errors_since`."""
    return _message_count


def write_errors_since(mark: int) -> list[str]:
    """Library messages since ``mark`` that report a failed write (no space, file too large, ...)."""
    if _message_sync is not None:
        _message_sync()
    return [text for count, text in list(_messages)
            if count > mark and any(hint in text.lower() for hint in _WRITE_ERROR_HINTS)]


# -- write verification ---------------------------------------------------------------------------

def record_profile(path: str | os.PathLike[str], profile: Mapping[str, Any]) -> None:
    """Remember that ``path`` is being written with ``profile`` (for verification and estimates)."""
    _profiles[os.path.abspath(path)] = dict(profile)


def forget_profile(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The recorded profile of ``path`` (and forget it), or ``None``."""
    return _profiles.pop(os.path.abspath(path), None)


def estimate_bytes(profile: Mapping[str, Any] | None) -> int | None:
    """Uncompressed size of a raster written with ``profile`` (an upper bound for deflate)."""
    if not profile:
        return None
    import numpy as np

    bits = int(profile.get("nbits") or 8 * np.dtype(profile.get("dtype", "uint8")).itemsize)
    return int(profile["width"]) * int(profile["height"]) * int(profile.get("count", 1)) * bits // 8


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent)."""
    try:
        return shutil.disk_usage(existing_folder(Path(path) / "x")).free
    except OSError:
        return None


def room_by_file_system(needs: Iterable[tuple[Path, int]]) -> list[tuple[Path, int]]:
    """Bytes needed per file system: ``(the first folder named on it, the sum of its bytes)``."""
    totals: dict[Any, list[Any]] = {}
    for folder, count in needs:
        existing = existing_folder(Path(folder) / "x")
        try:
            device: Any = os.stat(existing).st_dev
        except OSError:
            device = str(existing)
        if device in totals:
            totals[device][1] += count
        else:
            totals[device] = [Path(folder), count]
    return [(folder, count) for folder, count in totals.values()]


def format_bytes(count: int, base: int = 1024, units: tuple[str, ...] = ("bytes", "kB", "MB", "GB")) -> str:
    """``3.1 MB``-style sizes: powers of ``base``, whole numbers for the first of ``units``."""
    value = float(count)
    for unit in units[:-1]:
        if value < base:
            return f"{value:.0f} {unit}" if unit == units[0] else f"{value:.1f} {unit}"
        value /= base
    return f"{value:.1f} {units[-1]}"


_DISK_FULL = ("no space left on device", "disk quota exceeded", "os error 28", "os error 122")
#: Free space below which a failed write is put down to a full disk even without ENOSPC.
_NEARLY_FULL = 256 * 1024
_TOO_LARGE = ("file too large",)


def disk_nearly_full(path: str | os.PathLike[str], profile: Mapping[str, Any] | None = None) -> bool:
    """Whether the file system of ``path`` has less room than the raster needs (or almost none)."""
    free = free_bytes(Path(path).parent)
    return free is not None and free < max(estimate_bytes(profile) or 0, _NEARLY_FULL)


def write_fault(final: str | os.PathLike[str], exc: BaseException | None = None,
                messages: Iterable[str] = (), profile: Mapping[str, Any] | None = None) -> EnvironmentFault:
    """The one-line ``EnvironmentFault`` for a failed write of ``final``.

    Args:
        final: the output path the user asked for.
        exc: the exception the write raised, if any.
        messages: GDAL / libtiff messages seen during the write.
        profile: the raster's profile (for the size estimate).
    """
    final = Path(final)
    code = getattr(exc, "errno", None)
    text = " ".join([*messages, str(exc or "")]).lower()
    needed = estimate_bytes(profile)
    free = free_bytes(final.parent)
    nearly_full = free is not None and free < max(needed or 0, _NEARLY_FULL)  # libraries that hide errno
    if code in (errno.ENOSPC, errno.EDQUOT) or any(m in text for m in _DISK_FULL) or (
            nearly_full and code != errno.EFBIG and not any(m in text for m in _TOO_LARGE)):
        parts = [f"{format_bytes(free)} free" if free is not None else None,
                 f"about {format_bytes(needed)} needed" if needed else None]
        detail = ", ".join(p for p in parts if p)
        quota = code == errno.EDQUOT or "quota" in text
        cause = "the disk quota is exceeded" if quota else "the disk is full"
        return EnvironmentFault(f"{cause}{': ' + detail if detail else ''} at {final.parent}; "
                                f"nothing was written to {final}",
                                code=errno.EDQUOT if quota else errno.ENOSPC)
    if code == errno.EFBIG or any(m in text for m in _TOO_LARGE) or "os error 27" in text:
        limit = f" (about {format_bytes(needed)} needed)" if needed else ""
        return EnvironmentFault(f"the file is too large for this system's file size limit "
                                f"(ulimit -f){limit}; "
                                f"nothing was written to {final}", code=errno.EFBIG)
    cause = next((m for m in messages if m), None) or (os.strerror(code) if code else str(exc or "unknown"))
    return EnvironmentFault(f"could not write {final}: {cause}", code=code or errno.EIO)


def verify_raster(path: str | os.PathLike[str], final: str | os.PathLike[str],
                  profile: Mapping[str, Any] | None = None) -> None:
    """Check that the raster just written at ``path`` (for ``final``) is complete and readable.

    Reopens it; compares size, band count and data type with ``profile`` (when known); checks
    that every block of a GeoTIFF was written and lies inside the file; reads the last block.

    Raises:
        EnvironmentFault: the raster is truncated, unreadable or not what was written.
    """
    import rasterio
    from rasterio.windows import Window

    def fail(why: str) -> EnvironmentFault:
        return EnvironmentFault(f"could not write {final}: the written file is incomplete ({why})")

    try:
        with rasterio.open(path) as src:
            if profile:
                want = (int(profile["width"]), int(profile["height"]), int(profile.get("count", 1)))
                if (src.width, src.height, src.count) != want:
                    raise fail(f"{src.width}x{src.height}x{src.count} instead of "
                               f"{want[0]}x{want[1]}x{want[2]}")
            size = os.path.getsize(path)
            if src.driver == "GTiff":
                _check_blocks(src, size, fail)
            height, width = src.block_shapes[0]
            row = ((src.height - 1) // height) * height
            col = ((src.width - 1) // width) * width
            last = Window(col, row, min(width, src.width - col), min(height, src.height - row))
            src.read(src.count, window=last)
    except EnvironmentFault:
        raise
    except (rasterio.errors.RasterioError, OSError) as exc:
        raise fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


def _check_blocks(src: Any, size: int, fail: Any) -> None:
    """Every block of a GeoTIFF has an offset and ends inside the file."""
    height, width = src.block_shapes[0]
    rows, cols = -(-src.height // height), -(-src.width // width)
    separate = (src.tags(ns="IMAGE_STRUCTURE").get("INTERLEAVE", "PIXEL").upper() == "BAND"
                and src.count > 1)
    bands = range(1, src.count + 1) if separate else [1]
    full = rows * cols * len(bands) <= _MAX_BLOCKS_CHECKED
    for band in bands:
        blocks = [(r, c) for r in range(rows) for c in range(cols)] if full else [(rows - 1, cols - 1)]
        for r, c in blocks:
            offset = src.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=band)
            length = src.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=band)
            if not offset or not length:
                raise fail(f"block {r},{c} of band {band} was never written")
            if int(offset) + int(length) > size:
                raise fail(f"block {r},{c} of band {band} ends after the end of the file")
