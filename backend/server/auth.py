"""The server's access token: generated on first start, stored 0600, compared in constant time."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

TOKEN_FILE = "token"


def exposure(path: Path) -> str | None:
    """Who besides the owner may read the token file ``path`` (``"others (mode 0644)"``), or None.

    Always None on Windows, where the permission bits do not say who may read a file.
    """
    if os.name == "nt":
        return None
    mode = path.stat().st_mode & 0o777
    if not mode & 0o044:
        return None
    who = "other users" if mode & 0o004 else "its group"
    return f"{who} (mode {mode:04o})"


def load_or_create_token(work_dir: Path) -> tuple[str, Path, bool, str | None]:
    """The token in ``work_dir/token``, created (0600, 256 random bits) when missing.

    An existing file readable by others is set to 0600; what it was readable by is returned.

    Returns:
        ``(token, path, created, was_readable_by)``.
    """
    path = work_dir / TOKEN_FILE
    work_dir.mkdir(parents=True, exist_ok=True)
    created = False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        created = True
    exposed = exposure(path)
    os.chmod(path, 0o600)
    token = path.read_text().strip()
    if len(token) < 16:
        raise ValueError(f"the token in {path} is too short (16 characters at least); delete it")
    return token, path, created, exposed


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization: Bearer <token>`` header carries ``token`` (constant-time compare)."""
    if not header or not header.startswith("Bearer "):
        return False
    given = header[len("Bearer "):].strip().encode("utf-8", "replace")
    return hmac.compare_digest(given, token.encode("utf-8"))
