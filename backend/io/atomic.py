"""Write results to a temporary file and move them into place only when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``final_path``; rename it over ``final_path`` on success.

    On any exception (including cancellation) the temporary file is removed and
    ``final_path`` is left untouched, so a half-written result never looks valid.
    """
    final = Path(final_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".part{final.suffix}",
                                    dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files; results get the usual umask-based mode
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    except BaseException:
        for leftover in (tmp, Path(f"{tmp}.aux.xml"), Path(f"{tmp}.ovr")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        raise


@contextlib.contextmanager
def atomic_paths(*final_paths: str | os.PathLike[str]) -> Iterator[list[Path]]:
    """Like :func:`atomic_path` for several files that must appear together or not at all."""
    with contextlib.ExitStack() as stack:
        temps = [stack.enter_context(atomic_path(p)) for p in final_paths]
        yield temps


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    """Parse a JSON file; a missing or malformed file is a :class:`UserError` naming ``what``."""
    import json

    from backend.errors import UserError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} {path} is not valid JSON: {exc}") from None


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write a small text file (a QML style, a JSON sidecar) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
