"""The pooled backend worker (issue 12): one ``python -m backend worker`` per interpreter and plugin folder,
kept between actions, one job at a time (a busy worker means a plain process for the other action).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import queue
import subprocess
import threading
from pathlib import Path
from typing import Callable

from .contract import protocol
from .process_client import (
    BackendError,
    BackendResult,
    CancelCheck,
    EventCallback,
    Pipes,
    RunEvents,
    start_process,
    stop_process,
)

#: Commands a pooled worker runs; everything else gets a plain process.
WORKER_COMMANDS = frozenset({"cluster", "classify", "segment", "similar", "change", "vectorise", "embed"})
#: The *Keep the backend running between actions* setting's default.
KEEP_RUNNING_DEFAULT = True


class _WorkerGone(Exception):
    """The worker was found dead before it took the request (the request was not run)."""


class _Worker:
    """One ``python -m backend worker`` process: requests on stdin, events and ``exit`` lines on stdout."""

    def __init__(self, python: str, cwd: Path) -> None:
        self.busy = threading.Lock()
        self.dead = False
        self._next_id = 0
        self.process = start_process([python, "-m", "backend", "worker"], cwd, stdin=subprocess.PIPE)
        self._pipes = Pipes(self.process)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return not self.dead and self.process.poll() is None

    def close(self, grace: float = 2.0) -> None:
        """Let the worker leave (stdin closed), or stop its process group; reap it."""
        self.dead = True
        with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
            self.process.stdin.close()  # type: ignore[union-attr]  # closed even when its flush fails
            self.process.wait(timeout=grace)
        stop_process(self.process)
        self._pipes.close()

    def kill(self) -> None:
        """Stop the worker's process group now (cancel, stuck, crash)."""
        self.dead = True
        stop_process(self.process)

    def run(self, argv: list[str], on_event: EventCallback | None, is_canceled: CancelCheck | None,
            heartbeat_timeout: float, on_start: Callable[[int], None] | None) -> BackendResult:
        """Run one request; raises :class:`_WorkerGone` when the worker died before taking it."""
        while True:  # what an earlier job left (a late heartbeat; EOF of a dead worker)
            try:
                if self._pipes.lines.get_nowait() is None:
                    self.dead = True
            except queue.Empty:
                break
        if not self.alive():
            raise _WorkerGone()
        self._next_id += 1
        ident = self._next_id
        mark = self._pipes.stderr_mark()
        try:
            self.process.stdin.write(json.dumps({"id": ident, "argv": argv}) + "\n")  # type: ignore[union-attr]
            self.process.stdin.flush()  # type: ignore[union-attr]
        except (OSError, ValueError) as exc:
            self.dead = True
            raise _WorkerGone() from exc
        if on_start:
            on_start(self.process.pid)
        events = RunEvents()
        for event in self._pipes.events(heartbeat_timeout, is_canceled, self.kill, mark):
            if event["event"] == protocol.EXIT and event.get("id") == ident:
                if event.get("retire"):
                    self.close()
                return events.outcome(int(event.get("code", protocol.ExitCode.BUG)),
                                      self._pipes.stderr_since(mark))
            events.take(event, on_event)
        return self._died(events, mark)  # it died in the middle of the job (crash, out-of-memory kill)

    def _died(self, events: RunEvents, mark: int) -> BackendResult:
        """The outcome of a job whose worker died: its own error event, else a ``crashed`` error."""
        self.dead = True
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        stderr_text = self._pipes.stderr_since(mark)
        if events.error is not None:
            return events.outcome(code if code else protocol.ExitCode.BUG, stderr_text)
        tail = stderr_text.strip().splitlines()[-1:] or [""]
        message = f"the backend stopped unexpectedly (exit code {code})" + (f": {tail[0]}" if tail[0] else "")
        raise BackendError(message, kind=protocol.CRASHED, exit_code=code, stderr=stderr_text)


_pool: dict[tuple[str, str], _Worker] = {}
_pool_lock = threading.Lock()


def run_pooled(argv: list[str], python: str, root: Path, on_event: EventCallback | None,
               is_canceled: CancelCheck | None, heartbeat_timeout: float,
               on_start: Callable[[int], None] | None) -> BackendResult | None:
    """Run ``argv`` in the pooled worker of ``python``; ``None`` when that worker is busy."""
    key = (str(python), str(root))
    for _attempt in range(2):
        with _pool_lock:
            worker = _pool.get(key)
            if worker is not None and not worker.alive() and worker.busy.acquire(blocking=False):
                _pool.pop(key, None)
                worker.busy.release()
                worker.close()
                worker = None
            if worker is None:
                worker = _Worker(str(python), root)
                _pool[key] = worker
            if not worker.busy.acquire(blocking=False):
                return None  # another action is using it: a plain process
        try:
            return worker.run(argv, on_event, is_canceled, heartbeat_timeout, on_start)
        except _WorkerGone:
            continue  # it died while idle: a fresh one, the request was not run
        finally:
            if not worker.alive():
                with _pool_lock:
                    if _pool.get(key) is worker:
                        del _pool[key]
                worker.close()
            worker.busy.release()
    return None


def shutdown_workers() -> None:
    """Let every pooled worker leave (plugin unload, setting turned off, interpreter exit)."""
    with _pool_lock:
        workers = list(_pool.values())
        _pool.clear()
    for worker in workers:
        if worker.busy.acquire(blocking=False):
            worker.close()
            worker.busy.release()
        else:
            worker.dead = True  # the running job's caller reaps it once the job ends


def worker_pids() -> list[int]:
    """Process ids of the pooled workers (diagnostics, tests)."""
    with _pool_lock:
        return [worker.pid for worker in _pool.values() if worker.alive()]


atexit.register(shutdown_workers)
