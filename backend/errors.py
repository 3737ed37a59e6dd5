"""Errors that reach the user as one clear line instead of a traceback.

Each class carries its exit code (:class:`backend.contract.protocol.ExitCode`): bad input, environment
(disk full, permissions, read-only or failing storage), cancelled; any other exception is a bug.
"""

from __future__ import annotations

import errno
import os
import shutil

from backend.contract.protocol import BAD_INPUT, ENVIRONMENT, ExitCode

#: errno values that mean "the machine's storage or permissions", not a bug or bad input.
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is too large for this system's file size limit (ulimit -f)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EIO: "input/output error (failing disk or network storage)",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EMFILE: "too many open files",
}


class UserError(Exception):
    """A problem with the user's input, reported without a traceback.

    Args:
        message: one line that says what is wrong and, where possible, how to fix it.
        kind: a short machine-readable category carried by the JSON ``error`` event.
    """

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, kind: str = BAD_INPUT) -> None:
        super().__init__(message)
        self.kind = kind


class EnvironmentFault(UserError, OSError):
    """The machine, not the input: disk full, no permission, read-only or failing storage (exit 3).

    Also an ``OSError`` (``errno`` set when known), so code that tolerates storage failures
    (an unwritable cache) keeps catching ``OSError``.

    Args:
        message: one line naming the path and the cause.
        kind: ``"environment"`` (carried by the JSON ``error`` event).
        code: the ``errno`` behind it, if known.
    """

    exit_code = ExitCode.ENVIRONMENT

    def __init__(self, message: str, kind: str = ENVIRONMENT, code: int | None = None) -> None:
        super().__init__(message, kind)
        self.errno = code


class Cancelled(Exception):
    """The run was asked to stop (SIGTERM/SIGINT); partial outputs must be discarded."""

    exit_code = ExitCode.CANCELLED


def _free_space(path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path)) if not os.path.isdir(path) else path
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        free = shutil.disk_usage(folder or "/").free
    except OSError:
        return ""
    return f" ({free / 2**20:.1f} MB free)"


def environment_fault(exc: BaseException,
                      path: str | os.PathLike[str] | None = None) -> EnvironmentFault | None:
    """The :class:`EnvironmentFault` for an ``OSError`` about storage or permissions, else ``None``.

    Args:
        exc: the exception raised.
        path: the path to name (default: the exception's own file name).
    """
    if isinstance(exc, EnvironmentFault):
        return exc
    if not isinstance(exc, OSError) or exc.errno not in ENVIRONMENT_ERRNOS:
        return None
    where = os.fspath(path) if path is not None else (exc.filename or "")
    cause = ENVIRONMENT_ERRNOS[exc.errno]
    free = _free_space(str(where)) if exc.errno in (errno.ENOSPC, errno.EDQUOT) and where else ""
    return EnvironmentFault(f"{cause}: {where}{free}" if where else f"{cause} ({exc.strerror or exc})",
                            code=exc.errno)
