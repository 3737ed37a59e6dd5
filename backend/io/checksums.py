"""File checksums (standard library only, so model and cache look-ups stay light)."""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Bytes read at a time.
CHUNK = 1 << 22


def file_sha256(path: Path) -> str:
    """SHA-256 of a whole file's bytes, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
