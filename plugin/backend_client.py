"""Run a backend command for the plugin: on the job server, in the pooled worker, or in a process of its own.

Plain Python (no qgis, no torch): :func:`run_backend` picks where a command runs from the settings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from .contract import protocol
from .contract import remote as remote_contract
from .interpreter import (
    PLUGIN_ROOT,
    configured_backend_python,
    find_backend_python,
    interpreter_problem,
    remote_client_python,
)
from .process_client import (
    DEFAULT_HEARTBEAT_TIMEOUT,
    BackendCancelled,
    BackendError,
    BackendResult,
    CancelCheck,
    EventCallback,
    run_command,
)
from .worker_client import KEEP_RUNNING_DEFAULT, WORKER_COMMANDS, run_pooled


def run_backend(args: Sequence[str], on_event: EventCallback | None = None,
                is_canceled: CancelCheck | None = None, python: str | None = None,
                heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT, root: Path = PLUGIN_ROOT,
                on_start: Callable[[int], None] | None = None,
                remote: tuple[str, str] | None | bool = None,
                keep_running: bool | None = None) -> BackendResult:
    """Run one backend command (``python -m backend ARGS``) from the plugin folder.

    ``python`` defaults to :func:`find_backend_python` (setting, ``.venv``, QGIS's Python).
    ``remote`` (``(url, token_file)``; default: the *Backend* setting, ``False`` = local) runs the
    commands a job server offers there, through the same process and events: ``python -m backend
    --remote URL --token-file F ARGS`` needs no torch, so any Python 3 (QGIS's own) runs it.
    ``keep_running`` (default: the *Keep the backend running between actions* setting) runs the
    commands in :data:`WORKER_COMMANDS` in a pooled long-lived worker (``python -m backend worker``,
    one per interpreter and plugin folder, one job at a time; a concurrent action, a remote one and
    every other command get a plain process). See :func:`run_command` for the callbacks and the
    errors raised.
    """
    server = configured_remote() if remote is None else (remote or None)
    if server and args and args[0] in remote_contract.REMOTE_COMMANDS:
        args = [*remote_contract.remote_arguments(*server), *args]
        if python is None:
            python = remote_client_python(root)
    if python is None:
        python = find_backend_python(configured_backend_python(), root=root)
    keep = configured_keep_running() if keep_running is None else keep_running
    argv = [*args, "--events", "json"]
    try:
        if keep and args and args[0] in WORKER_COMMANDS:  # a remote run starts with --remote: never pooled
            outcome = run_pooled(argv, python, root, on_event=on_event, is_canceled=is_canceled,
                                 heartbeat_timeout=heartbeat_timeout, on_start=on_start)
            if outcome is not None:
                return outcome
        return run_command([python, "-m", "backend", *argv], on_event=on_event, is_canceled=is_canceled,
                           cwd=root, heartbeat_timeout=heartbeat_timeout, on_start=on_start)
    except BackendCancelled:
        raise
    except BackendError as exc:
        if args and args[0] == "--remote":  # the remote client needs no torch: nothing to explain
            raise
        raise _explained(exc, python) from None


def configured_keep_running() -> bool:
    """The *Keep the backend running between actions* setting (``TERRAPROBE_WORKER=0`` turns it off)."""
    if os.environ.get("TERRAPROBE_WORKER", "").strip() == "0":
        return False
    try:
        from .settings import Settings
    except ImportError:
        return KEEP_RUNNING_DEFAULT
    return Settings().keep_backend_running


def configured_remote() -> tuple[str, str] | None:
    """``(url, token_file)`` when the *Backend* setting is *remote* (inside QGIS), else ``None``."""
    try:
        from .settings import Settings
    except ImportError:
        return None
    return Settings().remote_backend()


def _explained(error: BackendError, python: str) -> BackendError:
    """``error`` of a run that failed before the backend spoke, rephrased when ``python`` is unusable."""
    if error.kind not in (protocol.INTERNAL, protocol.CRASHED, protocol.NOT_STARTED, protocol.NO_RESULT):
        return error
    problem = interpreter_problem(python)
    if problem is None:
        return error
    return BackendError(problem, kind=protocol.ENVIRONMENT, exit_code=error.exit_code, stderr=error.stderr)
