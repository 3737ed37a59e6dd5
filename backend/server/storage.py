"""Server-side files: content-addressed uploads, inputs named under the data roots, job folders.

Layout under ``--work-dir``: ``blobs/<sha256>`` (uploaded files, read-only), ``inputs/<key>/<name>``
(an input and its companions hard-linked from blobs under their client-side names, stable across
jobs so the embedding cache hits), ``jobs/<id>/out/<k>/`` (a job's outputs), ``cache/``
(the embedding cache shared by the jobs).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
from pathlib import Path, PurePosixPath, PureWindowsPath

SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[^/\\\x00-\x1f]{1,200}$")


class Refused(ValueError):
    """A request the server will not honour (bad name, path outside the data roots); HTTP 4xx."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def disk_full(free: int, needed: int, keep_free: int = 0) -> Refused:
    """The 507 refusal for the server's own disk: what is free and what was needed."""
    mb = 1024 * 1024
    reserve = f" and keeps {keep_free / mb:.0f} MB free (--keep-free-mb)" if keep_free else ""
    return Refused(f"the server's disk is full: {free / mb:.1f} MB free in its --work-dir, this needs "
                   f"{needed / mb:.1f} MB{reserve}", status=507)


def check_name(name: str) -> str:
    """A plain file name (no folder part, not ``.``/``..``), else :class:`Refused`."""
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", "..") or name.strip() != name:
        raise Refused(f"invalid file name {name!r}: give a plain file name without folders")
    return name


class Storage:
    """Uploads, data roots and job folders of one server.

    Args:
        work_dir: the server's own folder.
        data_roots: folders whose files clients may name with ``server:PATH``.
        max_upload: the largest upload accepted, in bytes.
        keep_free: bytes an upload must leave free on the server's disk (else 507).
    """

    def __init__(self, work_dir: Path, data_roots: list[Path], max_upload: int, keep_free: int = 0) -> None:
        self.work_dir = work_dir.resolve()
        self.data_roots = [root.resolve() for root in data_roots]
        self.max_upload = max_upload
        self.keep_free = keep_free
        self.blobs = self.work_dir / "blobs"
        self.inputs = self.work_dir / "inputs"
        self.jobs = self.work_dir / "jobs"
        self.cache = self.work_dir / "cache"
        for folder in (self.blobs, self.inputs, self.jobs, self.cache):
            folder.mkdir(parents=True, exist_ok=True)
        self.bytes_received = 0

    # -- uploads ------------------------------------------------------------------------------------
    def blob_path(self, sha256: str) -> Path:
        if not SHA256.match(sha256):
            raise Refused("invalid sha256: 64 lower-case hex digits expected")
        return self.blobs / sha256

    def has_blob(self, sha256: str) -> bool:
        path = self.blob_path(sha256)
        if path.is_file():
            with contextlib.suppress(OSError):
                os.utime(path)  # kept as long as it is used
            return True
        return False

    def upload_temp(self, sha256: str) -> Path:
        """A fresh temporary path in ``blobs/`` for the upload of ``sha256`` (checked)."""
        self.blob_path(sha256)
        return self.blobs / f".{sha256}.{os.getpid()}.{time.monotonic_ns()}.part"

    def finish_upload(self, sha256: str, temp: Path, digest: str) -> None:
        """Move a complete upload into place, or refuse one whose content does not match its hash."""
        if digest != sha256:
            temp.unlink(missing_ok=True)
            raise Refused(f"upload content has sha256 {digest}, not {sha256}: the file changed or was cut")
        os.chmod(temp, 0o400)
        os.replace(temp, self.blob_path(sha256))

    # -- inputs -------------------------------------------------------------------------------------
    def materialize(self, files: list[dict]) -> Path:
        """Hard-link uploaded files into one folder under their names; the first file's path.

        Args:
            files: ``[{"name": ..., "sha256": ...}, ...]``: an input and its companions.
        """
        if not isinstance(files, list) or not files or len(files) > 16:
            raise Refused("an uploaded input lists 1 to 16 files")
        pairs = []
        for item in files:
            if not isinstance(item, dict):
                raise Refused("an uploaded file is {\"name\": ..., \"sha256\": ...}")
            name, sha = check_name(item.get("name")), str(item.get("sha256", ""))
            if not self.has_blob(sha):
                raise Refused(f"{name} (sha256 {sha[:12]}...) was not uploaded", status=409)
            pairs.append((name, sha))
        key = hashlib.sha256(repr(sorted(pairs)).encode()).hexdigest()[:32]
        folder = self.inputs / key
        folder.mkdir(exist_ok=True)
        for name, sha in pairs:
            target = folder / name
            if not target.exists():
                temp = folder / f".{name}.{time.monotonic_ns()}.link"
                try:
                    os.link(self.blob_path(sha), temp)
                except OSError:
                    shutil.copyfile(self.blob_path(sha), temp)
                os.replace(temp, target)
        os.utime(folder)
        return folder / pairs[0][0]

    def resolve_data_path(self, text: str) -> Path:
        """A client's ``server:PATH`` as a real file inside a data root, else :class:`Refused` (403).

        Relative paths are looked up in each root; absolute paths must lie inside one. ``..`` parts
        are refused outright; symbolic links are resolved before the check, so a link that leads
        out of the roots is refused too.
        """
        if not isinstance(text, str) or not text or "\x00" in text:
            raise Refused("an empty server path", status=403)
        if not self.data_roots:
            raise Refused("this server has no --data-root: it reads only uploaded files", status=403)
        parts = set(PurePosixPath(text).parts) | set(PureWindowsPath(text).parts)
        if ".." in parts:
            raise Refused(f"server path {text!r} contains '..': refused", status=403)
        candidates = [Path(text)] if os.path.isabs(text) else [root / text for root in self.data_roots]
        for candidate in candidates:
            real = self.data_file(candidate)
            if real is not None:
                return real
        inside = any(Path(os.path.realpath(c)).is_relative_to(root)
                     for c in candidates for root in self.data_roots)
        if inside:
            raise Refused(f"server path {text!r}: no such file in the server's data roots", status=404)
        raise Refused(f"server path {text!r} is outside the server's data roots: refused", status=403)

    def data_file(self, path: Path) -> Path | None:
        """``path`` as a real regular file inside a data root (symbolic links followed), else None."""
        real = Path(os.path.realpath(path))
        if any(real == root or root in real.parents for root in self.data_roots) and real.is_file():
            return real
        return None

    # -- disk -----------------------------------------------------------------------------------------
    def check_room(self, needed: int) -> None:
        """Refuse (507) what would leave less than ``keep_free`` bytes on the server's disk."""
        free = shutil.disk_usage(self.work_dir).free
        if needed + self.keep_free > free:
            raise disk_full(free, needed, self.keep_free)

    # -- jobs ---------------------------------------------------------------------------------------
    def new_job_dir(self, job_id: str) -> Path:
        folder = self.jobs / job_id
        (folder / "out").mkdir(parents=True)
        return folder

    def expire(self, keep_seconds: float, busy: set[str]) -> int:
        """Delete job folders, input folders and blobs unused for ``keep_seconds``; how many went."""
        limit = time.time() - keep_seconds
        removed = 0
        for parent in (self.jobs, self.inputs, self.blobs):
            for entry in list(parent.iterdir()):
                if entry.name in busy:
                    continue
                try:
                    if entry.stat().st_mtime >= limit:
                        continue
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink()
                    removed += 1
                except OSError:
                    continue
        return removed
