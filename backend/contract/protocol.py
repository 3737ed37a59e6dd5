"""The event protocol: what a backend run writes on stdout with ``--events json``, one JSON object a line.

The backend writes events with :func:`event`, every client reads them with :func:`decode_event`. A pooled
worker reads requests ``{"id": N, "argv": [...]}`` on stdin and ends each with an ``exit`` event.
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any

PROGRESS, LOG, WARNING, HEARTBEAT = "progress", "log", "warning", "heartbeat"
RESULT, ERROR, EXIT, JOB = "result", "error", "exit", "job"
#: Seconds between the heartbeats of a busy run (and of the job server's event stream).
HEARTBEAT_SECONDS = 2.0

#: Each event's fields besides ``event`` (the job server's stream adds ``seq`` to the events it keeps).
EVENT_FIELDS: dict[str, dict[str, str]] = {
    PROGRESS: {"fraction": "the whole run's progress in [0, 1]", "message": "the step running now"},
    LOG: {"level": "info, warning, ...", "message": "a line", "queue_position": "job server: 0 = running"},
    WARNING: {"message": "something the analyst must see"},
    HEARTBEAT: {"time": "seconds since the epoch"},
    RESULT: {"outputs": "the files written, by name", "stats": "the run's figures"},
    ERROR: {"kind": "one of ERROR_KINDS", "message": "one line: what went wrong and how to fix it"},
    EXIT: {"id": "pooled worker: the request that ended", "code": "its exit code", "retire": "worker leaves"},
    JOB: {"state": "job server: done, failed, cancelled", "exit_code": "", "files": "name, size, sha256"},
}

BAD_INPUT, ENVIRONMENT, INTERNAL, CANCELLED = "bad_input", "environment", "internal", "cancelled"
OUT_OF_MEMORY, CRASHED, NOT_STARTED = "out_of_memory", "crashed", "not_started"
UNRESPONSIVE, NO_RESULT = "unresponsive", "no_result"

#: The ``kind`` of an ``error`` event; the last four come from clients (``crashed`` from the job server too).
ERROR_KINDS: dict[str, str] = {
    BAD_INPUT: "the input or the options are wrong (exit 2)",
    ENVIRONMENT: "the machine: disk full, permissions, damaged files (exit 3)",
    INTERNAL: "a bug (exit 1)",
    CANCELLED: "stopped on request; nothing was written (exit 130)",
    OUT_OF_MEMORY: "the run did not fit in memory",
    "download": "a model download failed",
    "verification": "a downloaded or imported file is not the one expected",
    "corrupt_checkpoint": "a training state cannot be read",
    "diverged": "the training loss became non-finite",
    "io_error": "training could not save its checkpoint",
    "non_finite": "the encoder produced non-finite embeddings",
    "unauthorized": "the job server refused the token",
    "refused": "the job server refused the request",
    CRASHED: "the process ended without an error event",
    NOT_STARTED: "the process could not be started",
    UNRESPONSIVE: "no event (not even a heartbeat) for too long",
    NO_RESULT: "the process ended without a result",
}


class ExitCode(IntEnum):
    """A backend process's exit code (``backend.errors`` gives each exception class one)."""

    DONE = 0
    BUG = 1
    BAD_INPUT = 2
    ENVIRONMENT = 3
    CANCELLED = 130


def event(name: str, **fields: Any) -> dict[str, Any]:
    """The event ``name`` with ``fields``; a name or field the protocol does not declare is a bug."""
    declared = EVENT_FIELDS.get(name)
    if declared is None or not fields.keys() <= declared.keys():
        raise ValueError(f"undeclared event {name!r} or field in {sorted(fields)}")
    return {"event": name, **fields}


def decode_event(line: str | bytes) -> dict[str, Any]:
    """One stdout line as an event; stray output (a library's print) becomes a ``log`` event."""
    text = (line.decode("utf-8", "replace") if isinstance(line, bytes) else line).strip()
    if text.startswith("{"):
        try:
            decoded = json.loads(text)
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, dict) and "event" in decoded:
            return decoded
    return {"event": LOG, "level": "info", "message": text}
