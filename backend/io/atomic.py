"""Write results to a temporary file and move them into place only when complete and verified.

Public API:

* ``atomic_path(final, verify=None)`` / ``atomic_paths(*finals, verify=None)``: yield temporary
  paths beside the finals; on success each is verified, then all are renamed into place in the
  order given (raster first, then its sidecars), so a style never appears beside a missing raster.
  GeoTIFFs (``.tif``/``.tiff``) are always checked (reopened, every block present, last block
  readable, see :func:`backend.io.write_checks.verify_raster`) and any file fails when GDAL/libtiff
  reported a write error meanwhile; pass a callable ``verify(tmp_path)`` to add a check of your
  own (it raises to refuse the file), or ``verify=False`` to skip all verification. A final that
  is a FIFO, device, socket or folder is refused before anything is written. On any failure
  nothing is left at the finals nor beside them, and storage faults become one-line
  :class:`backend.errors.EnvironmentFault` messages.
* ``active_temporaries() -> list[Path]``: temporaries being written now (the CLI's cancel watchdog
  removes them before a forced exit).
* ``read_json(path, what)``, ``write_text_atomic(path, text)``, ``copy_atomic(source, target)``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Union

from backend.errors import Cancelled, UserError, environment_fault

Verify = Union[Callable[[Path], None], bool, None]
RASTER_SUFFIXES = (".tif", ".tiff")

_active: set[Path] = set()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def active_temporaries() -> list[Path]:
    """Temporary files being written right now."""
    return sorted(_active)


def _remove(tmp: Path) -> None:
    for leftover in (tmp, Path(f"{tmp}.aux.xml"), Path(f"{tmp}.ovr")):
        with contextlib.suppress(OSError):
            leftover.unlink()
    _active.discard(tmp)


class _Pending:
    """One output being written: its final path and the temporary beside it."""

    def __init__(self, final_path: str | os.PathLike[str]) -> None:
        from backend.io.outputs import check_output_kind

        self.final = Path(final_path)
        self.committed = False
        check_output_kind(self.final, "the output")
        if self.final.is_dir():
            raise UserError(f"the output {self.final} is a folder, not a file; give a file name")
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{self.final.stem}.", suffix=f".part{self.final.suffix}",
                                        dir=self.final.parent)
        except OSError as exc:
            raise environment_fault(exc, self.final) or exc from None
        os.close(fd)
        self.tmp = Path(name)
        _active.add(self.tmp)

    def verify(self, verify: Verify, write_errors: list[str]) -> None:
        from backend.io import write_checks

        profile = write_checks.forget_profile(self.tmp)
        if write_errors:
            raise write_checks.write_fault(self.final, messages=write_errors, profile=profile)
        if verify is False or not self.tmp.exists():
            return
        if self.final.suffix.lower() in RASTER_SUFFIXES:
            try:
                write_checks.verify_raster(self.tmp, self.final, profile)
            except UserError as fault:
                if write_checks.disk_nearly_full(self.final, profile):
                    raise write_checks.write_fault(self.final, messages=["no space left on device"],
                                              profile=profile) from None
                raise fault
        if callable(verify):
            verify(self.tmp)

    def commit(self) -> None:
        if self.tmp.exists():  # mkstemp makes 0600 files; results get the usual umask-based mode
            os.chmod(self.tmp, 0o666 & ~_umask())
        os.replace(self.tmp, self.final)
        self.committed = True
        _active.discard(self.tmp)

    def discard(self) -> None:
        _remove(self.tmp)
        if self.committed:
            with contextlib.suppress(OSError):
                self.final.unlink()


def _translate(exc: BaseException, pending: list[_Pending], write_errors: list[str]) -> BaseException:
    """A storage failure during a write as one :class:`EnvironmentFault`; anything else unchanged."""
    if isinstance(exc, (UserError, Cancelled, KeyboardInterrupt)) or not isinstance(exc, Exception):
        return exc
    from backend.io import write_checks

    named = str(getattr(exc, "filename", "") or "")
    target = next((p for p in pending if named and str(p.tmp) == named), pending[0] if pending else None)
    if target is None:
        return exc
    profile = write_checks.forget_profile(target.tmp)
    is_write = bool(write_errors) or write_checks.is_write_error(str(exc))
    if isinstance(exc, OSError) and not is_write:
        fault = environment_fault(exc, target.final)
        if fault is None:
            return exc
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):  # these get a size estimate
            return fault
    elif not is_write:
        return exc
    return write_checks.write_fault(target.final, exc, write_errors, profile)


@contextlib.contextmanager
def atomic_paths(*final_paths: str | os.PathLike[str], verify: Verify = None) -> Iterator[list[Path]]:
    """Temporary paths for files that must appear together, complete and verified, or not at all."""
    from backend.io.write_checks import message_mark, write_errors_since

    pending: list[_Pending] = []
    mark = message_mark()
    try:
        for final in final_paths:
            pending.append(_Pending(final))
        yield [p.tmp for p in pending]
        errors = write_errors_since(mark)
        for item in pending:
            item.verify(verify, errors)
        for item in pending:
            item.commit()
    except BaseException as exc:
        try:  # explained before the temporaries go, so the free space is what the write saw
            translated = _translate(exc, pending, write_errors_since(mark) if pending else [])
        finally:
            for item in pending:
                item.discard()
        if translated is exc:
            raise
        raise translated from None


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike[str], verify: Verify = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final_path``; rename it over ``final_path`` once verified.

    On any exception (including cancellation) the temporary file is removed and
    ``final_path`` is left untouched, so a half-written result never looks valid.
    """
    with atomic_paths(final_path, verify=verify) as (tmp,):
        yield tmp


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


def copy_atomic(source: Path, target: str | os.PathLike[str]) -> Path:
    """Copy ``source`` to ``target`` through a temporary file."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return Path(target)
