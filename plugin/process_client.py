"""One backend process and its events: start it, read its stdout lines as events, stop it, say how it ended.

Plain Python (no qgis, no torch): it runs in QGIS, in a QgsTask thread, in Processing and in tests alike.
Events are those of ``backend/contract/protocol.py``; human details go to stderr.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable

from .contract import protocol
from .interpreter import hidden_window

EventCallback = Callable[[dict], None]
CancelCheck = Callable[[], bool]

#: How long silence is tolerated (a busy backend sends a heartbeat every ``protocol.HEARTBEAT_SECONDS``).
DEFAULT_HEARTBEAT_TIMEOUT = 30.0
#: After SIGTERM, how long the backend gets to clean up before it is killed.
TERMINATE_GRACE = 1.5
POLL_INTERVAL = 0.1
_STDERR_KEEP = 200


class BackendError(RuntimeError):
    """A backend run that did not produce a result.

    Attributes:
        message: the backend's one-line explanation.
        kind: one of the protocol's ``ERROR_KINDS`` (``environment``: the message names the path and the
            cause).
        exit_code: the process exit code (``None`` when it was killed by the client).
        stderr: the last lines the process wrote on stderr (for the log panel).
    """

    def __init__(self, message: str, kind: str = protocol.INTERNAL, exit_code: int | None = None,
                 stderr: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.exit_code = exit_code
        self.stderr = stderr

    def details(self) -> str:
        """Message, kind, exit code and stderr in one block for the log panel."""
        lines = [f"{self.message} (kind: {self.kind}, exit code: {self.exit_code})"]
        if self.stderr.strip():
            lines += ["backend stderr:", self.stderr.rstrip()]
        return "\n".join(lines)


class BackendCancelled(BackendError):
    """The run was cancelled by the user; the process is gone and nothing was added."""


@dataclass
class BackendResult:
    """What a successful run returned: output files by name and statistics."""

    outputs: dict[str, Any]
    stats: dict[str, Any]
    exit_code: int = 0
    logs: list[str] = field(default_factory=list)
    stderr: str = ""


def start_process(argv: Sequence[str], cwd: str | Path | None, stdin: int | None = subprocess.DEVNULL,
                  env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``argv`` in its own process group, its output read as UTF-8 text lines.

    Raises:
        BackendError: ``not_started`` when it cannot be started.
    """
    try:
        return subprocess.Popen(
            list(argv), cwd=str(cwd) if cwd else None, stdin=stdin, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", **(env or {})},
            start_new_session=sys.platform != "win32", **hidden_window())
    except OSError as exc:
        message = f"could not start the backend ({argv[0]}): {exc}"
        raise BackendError(message, kind=protocol.NOT_STARTED) from exc


def _send_stop(process: subprocess.Popen, sig: int, fallback: Callable[[], None]) -> None:
    """Signal the process group (POSIX) or call ``fallback`` (Windows); a gone process is fine."""
    try:
        if sys.platform != "win32":
            os.killpg(process.pid, sig)
        else:
            fallback()
    except (ProcessLookupError, PermissionError):
        pass


def stop_process(process: subprocess.Popen, grace: float = TERMINATE_GRACE) -> None:
    """Terminate (then kill) the process and its children; returns once it is reaped."""
    if process.poll() is not None:
        return
    _send_stop(process, signal.SIGTERM, process.terminate)
    try:
        process.wait(timeout=grace)
        return
    except subprocess.TimeoutExpired:
        pass
    _send_stop(process, getattr(signal, "SIGKILL", signal.SIGTERM), process.kill)
    process.wait(timeout=5)


class Pipes:
    """Threads reading a process's stdout (its lines queued) and stderr (its last lines kept)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()  # ``None``: stdout ended
        self._stderr: deque[str] = deque(maxlen=_STDERR_KEEP)
        self._stderr_total = 0
        self._lock = threading.Lock()
        self._readers = [threading.Thread(target=self._read, args=(stream, put), daemon=True, name=name)
                         for stream, put, name in ((process.stdout, self.lines.put, "backend-stdout"),
                                                   (process.stderr, self._keep, "backend-stderr"))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str], put: Callable[[str | None], None]) -> None:
        for line in stream:
            put(line)
        put(None)

    def _keep(self, line: str | None) -> None:
        if line is not None:
            with self._lock:
                self._stderr.append(line)
                self._stderr_total += 1

    def stderr_mark(self) -> int:
        """How many stderr lines came so far (for :meth:`stderr_since`)."""
        with self._lock:
            return self._stderr_total

    def stderr_since(self, mark: int = 0) -> str:
        """The stderr lines kept since ``mark``."""
        with self._lock:
            count = min(self._stderr_total - mark, len(self._stderr))
            return "".join(list(self._stderr)[len(self._stderr) - count:]) if count > 0 else ""

    def events(self, heartbeat_timeout: float, is_canceled: CancelCheck | None, stop: Callable[[], None],
               mark: int = 0) -> Iterator[dict]:
        """The events on stdout until it ends, polling for a cancel and a silent backend.

        Raises:
            BackendCancelled: ``is_canceled`` said so (the backend was stopped with ``stop``).
            BackendError: no event for ``heartbeat_timeout`` seconds (the backend was stopped).
        """
        last_activity = time.monotonic()
        while True:
            if is_canceled and is_canceled():
                stop()
                raise BackendCancelled("cancelled", kind=protocol.CANCELLED,
                                       exit_code=self.process.returncode, stderr=self.stderr_since(mark))
            try:
                line = self.lines.get(timeout=POLL_INTERVAL)
            except queue.Empty:
                if time.monotonic() - last_activity > heartbeat_timeout:
                    stop()
                    raise BackendError(
                        f"backend stopped responding (no event for {heartbeat_timeout:g} s); it was stopped",
                        kind=protocol.UNRESPONSIVE, exit_code=self.process.returncode,
                        stderr=self.stderr_since(mark)) from None
                continue
            if line is None:
                return
            last_activity = time.monotonic()
            yield protocol.decode_event(line)

    def close(self) -> None:
        """Join the readers and close the pipes (else they leak as "unclosed file" ResourceWarnings)."""
        for reader, stream in zip(self._readers, (self.process.stdout, self.process.stderr)):
            reader.join(timeout=1.0)
            if not reader.is_alive() and stream is not None:
                stream.close()


class RunEvents:
    """What one run's events said so far: its result, its error and its log lines."""

    def __init__(self) -> None:
        self.result: dict | None = None
        self.error: dict | None = None
        self.logs: list[str] = []

    def take(self, event: dict, on_event: EventCallback | None) -> None:
        """Record one event and hand it to ``on_event``."""
        kind = event["event"]
        if kind == protocol.RESULT:
            self.result = event
        elif kind == protocol.ERROR:
            self.error = event
        elif kind == protocol.LOG:
            self.logs.append(str(event.get("message", "")))
        if on_event:
            on_event(event)

    def outcome(self, exit_code: int, stderr_text: str) -> BackendResult:
        """The result of the finished run, or the :class:`BackendError` its events and exit code mean."""
        result, error = self.result, self.error
        if error is None and exit_code == protocol.ExitCode.DONE and result is not None:
            return BackendResult(outputs=dict(result.get("outputs") or {}),
                                 stats=dict(result.get("stats") or {}), exit_code=exit_code, logs=self.logs,
                                 stderr=stderr_text)
        if error is not None:
            message = str(error.get("message", "backend failed"))
            kind = str(error.get("kind", protocol.INTERNAL))
        elif exit_code != protocol.ExitCode.DONE:
            tail = stderr_text.strip().splitlines()[-1:] or [""]
            message = f"backend exited with code {exit_code}" + (f": {tail[0]}" if tail[0] else "")
            kind = protocol.CRASHED
        else:
            message, kind = "backend finished without a result", protocol.NO_RESULT
        error_class = BackendCancelled if kind == protocol.CANCELLED else BackendError
        raise error_class(message, kind=kind, exit_code=exit_code, stderr=stderr_text)


def run_command(command: Sequence[str], on_event: EventCallback | None = None,
                is_canceled: CancelCheck | None = None, cwd: str | Path | None = None,
                heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
                env: dict[str, str] | None = None,
                on_start: Callable[[int], None] | None = None) -> BackendResult:
    """Run a command that speaks the JSON event protocol and return its result.

    Args:
        command: the full argv.
        on_event: called (in the calling thread) with every event dict, heartbeats included.
        is_canceled: polled every 100 ms; when it returns True the process is stopped.
        cwd: working folder.
        heartbeat_timeout: seconds without any output after which the process counts as stuck.
        env: extra environment variables.
        on_start: called with the process id once it started.

    Raises:
        BackendCancelled: cancelled by ``is_canceled`` (process gone, no result).
        BackendError: an ``error`` event, a crash, no result, or a stuck process.
    """
    process = start_process(command, cwd, env=env)
    if on_start:
        on_start(process.pid)
    pipes = Pipes(process)
    events = RunEvents()
    try:
        for event in pipes.events(heartbeat_timeout, is_canceled, lambda: stop_process(process)):
            events.take(event, on_event)
        exit_code = process.wait()
    finally:
        if process.poll() is None:
            stop_process(process)
        pipes.close()
    return events.outcome(exit_code, pipes.stderr_since())
