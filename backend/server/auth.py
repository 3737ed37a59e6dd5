"""The server's access token: generated on first start, stored 0600, compared in constant time."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

TOKEN_FILE = "token"


def load_or_create_token(work_dir: Path) -> tuple[str, Path, bool]:
    """The token in ``work_dir/token``, created (0600, 256 random bits) when missing.

    Returns:
        ``(token, path, created)``.
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
    os.chmod(path, 0o600)
    token = path.read_text().strip()
    if len(token) < 16:
        raise ValueError(f"the token in {path} is too short (16 characters at least); delete it")
    return token, path, created


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization: Bearer <token>`` header carries ``token`` (constant-time compare)."""
    if not header or not header.startswith("Bearer "):
        return False
    given = header[len("Bearer "):].strip().encode("utf-8", "replace")
    return hmac.compare_digest(given, token.encode("utf-8"))
