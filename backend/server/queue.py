"""Jobs and their queue: one job per GPU (or one at a time on CPU), each a ``python -m backend`` process.

A job's events are the backend's own JSON lines, numbered (``seq``) so a client can resume its
stream after a lost connection. The server adds ``log`` events with the queue position, and a last
``job`` event with the final state, exit code and the output files. Each job runs with GDAL's network
access off (:data:`backend.server.vetting.JOB_ENVIRONMENT`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.contract import protocol
from backend.contract.protocol import ExitCode, event
from backend.server.spec import JobArgv
from backend.server.storage import Storage
from backend.server.vetting import JOB_ENVIRONMENT, JOB_ENVIRONMENT_REMOVED

#: After SIGTERM, how long a job may take to stop before its process group is killed.
KILL_AFTER_SECONDS = 1.5
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
_LINE_LIMIT = 64 * 1024 * 1024
FINAL_STATES = ("done", "failed", "cancelled")


@dataclass
class Job:
    """One submitted job."""

    id: str
    spec: JobArgv
    folder: Path
    state: str = "queued"
    events: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    process: asyncio.subprocess.Process | None = None
    cancel_requested: bool = False
    position: int | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, event: dict[str, Any]) -> None:
        """Append one event (numbered) and wake the streams waiting for it."""
        event = {**event, "seq": len(self.events)}
        self.events.append(event)
        with contextlib.suppress(OSError), open(self.folder / "events.ndjson", "a", encoding="utf-8") as log:
            log.write(json.dumps(event) + "\n")
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_change(self, timeout: float) -> None:
        """Wait until an event is added (or ``timeout`` seconds pass)."""
        changed = self._changed
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

    def status(self) -> dict[str, Any]:
        return {"id": self.id, "command": self.spec.command, "state": self.state, "exit_code": self.exit_code,
                "events": len(self.events), "position": self.position, "files": self.files,
                "submitted": self.submitted, "started": self.started, "finished": self.finished}


class JobQueue:
    """Runs jobs in ``slots`` parallel slots (one per GPU, or one on CPU), first come first served.

    Args:
        storage: the server's files.
        gpus: GPUs to use (slot ``i`` runs with ``CUDA_VISIBLE_DEVICES=i``); 0 = CPU, one job at a time.
        python: the interpreter that runs ``python -m backend``.
    """

    def __init__(self, storage: Storage, gpus: int = 0, python: str | None = None) -> None:
        self.storage, self.gpus = storage, gpus
        self.python = python or sys.executable
        self.jobs: dict[str, Job] = {}
        #: The client's request id -> the job it created (repeated submissions find it).
        self.requests: dict[str, str] = {}
        self.waiting: list[Job] = []
        self.free_slots = list(range(max(gpus, 1)))
        self.counts = {"submitted": 0, "done": 0, "failed": 0, "cancelled": 0}

    def create(self, build: Any, request_id: str | None = None) -> Job:
        """A new job: ``build(job_dir)`` returns its :class:`JobArgv` (a refusal removes the folder).

        ``request_id`` (chosen by the client) makes a repeated submission (a retry after a lost answer)
        return the job it already created instead of running it twice.
        """
        if request_id and request_id in self.requests and self.requests[request_id] in self.jobs:
            return self.jobs[self.requests[request_id]]
        job_id = uuid.uuid4().hex
        folder = self.storage.new_job_dir(job_id)
        try:
            spec = build(folder)
        except BaseException:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
            raise
        job = Job(id=job_id, spec=spec, folder=folder)
        self.jobs[job_id] = job
        if request_id:
            self.requests[request_id] = job_id
        self.waiting.append(job)
        self.counts["submitted"] += 1
        self._dispatch()  # runs it at once when a slot is free, else reports its queue position
        return job

    def busy_ids(self) -> set[str]:
        return {job.id for job in self.jobs.values() if job.state not in FINAL_STATES}

    def _announce(self) -> None:
        for index, job in enumerate(self.waiting, start=1):
            if job.position != index:
                job.position = index
                what = "GPU" if self.gpus else "worker (one job at a time on CPU)"
                job.add(event(protocol.LOG, level="info", queue_position=index,
                              message=f"queued: position {index}, waiting for a free {what}"))

    def _dispatch(self) -> None:
        while self.waiting and self.free_slots:
            job = self.waiting.pop(0)
            slot = self.free_slots.pop(0)
            job.position = None
            asyncio.get_running_loop().create_task(self._run(job, slot))
        self._announce()

    async def _run(self, job: Job, slot: int) -> None:
        try:
            await self._execute(job, slot)
        except Exception as exc:  # the server must survive anything one job does
            if job.state not in FINAL_STATES:
                job.add(event(protocol.ERROR, kind=protocol.INTERNAL,
                              message=f"server failed to run the job: {exc}"))
                await self._finish(job, "failed", ExitCode.BUG)
        finally:
            self.free_slots.append(slot)
            self.free_slots.sort()
            self._dispatch()

    async def _execute(self, job: Job, slot: int) -> None:
        job.state, job.started = "running", time.time()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8",
               "PYTHONPATH": os.pathsep.join(filter(None, [_REPO_ROOT, os.environ.get("PYTHONPATH")])),
               **JOB_ENVIRONMENT}
        for name in JOB_ENVIRONMENT_REMOVED:
            env.pop(name, None)
        env.setdefault("TERRAPROBE_CACHE_DIR", str(self.storage.cache))
        where = "CPU"
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(slot)
            where = f"GPU {slot}"
        job.add(event(protocol.LOG, level="info", queue_position=0,
                      message=f"running {job.spec.command} on the server ({where})"))
        argv = [self.python, "-m", "backend", job.spec.command, *job.spec.argv, "--events", "json"]
        with open(job.folder / "stderr.log", "wb") as stderr:
            job.process = await asyncio.create_subprocess_exec(
                *argv, cwd=str(job.folder), env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=stderr, start_new_session=True, limit=_LINE_LIMIT)
        if job.cancel_requested:
            self._signal(job, signal.SIGTERM)
        saw_error = saw_result = False
        assert job.process.stdout is not None
        while True:
            line = await job.process.stdout.readline()
            if not line:
                break
            received = protocol.decode_event(line)
            if received["event"] == protocol.HEARTBEAT:
                continue  # streams send their own
            saw_error |= received["event"] == protocol.ERROR
            saw_result |= received["event"] == protocol.RESULT
            job.add(received)
        code = await job.process.wait()
        if job.cancel_requested or code == ExitCode.CANCELLED:
            if not saw_error:
                job.add(event(protocol.ERROR, kind=protocol.CANCELLED,
                              message="cancelled; no output was written"))
            await self._finish(job, "cancelled", ExitCode.CANCELLED)
        elif code == ExitCode.DONE and saw_result:
            job.files = await asyncio.to_thread(_list_outputs, job)
            await self._finish(job, "done", ExitCode.DONE)
        else:
            if not saw_error:
                tail = (job.folder / "stderr.log").read_text(errors="replace").strip().splitlines()[-1:]
                job.add(event(protocol.ERROR, kind=protocol.CRASHED,
                              message=f"the backend exited with code {code} on the server"
                                      + (f": {tail[0]}" if tail else "")))
            await self._finish(job, "failed", code if code > 0 else ExitCode.BUG)

    async def _finish(self, job: Job, state: str, code: int) -> None:
        job.state, job.exit_code, job.finished = state, code, time.time()
        self.counts[state] += 1
        job.add(event(protocol.JOB, state=state, exit_code=code, files=job.files))
        os.utime(job.folder)

    def _signal(self, job: Job, sig: int) -> None:
        if job.process is not None and job.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.process.pid, sig)

    async def cancel(self, job: Job) -> None:
        """SIGTERM to a running job's process group (SIGKILL after 1.5 s); a queued job just leaves."""
        if job.state in FINAL_STATES:
            return
        job.cancel_requested = True
        if job in self.waiting:
            self.waiting.remove(job)
            job.position = None
            job.add(event(protocol.ERROR, kind=protocol.CANCELLED, message="cancelled while queued"))
            await self._finish(job, "cancelled", ExitCode.CANCELLED)
            self._announce()
            return
        self._signal(job, signal.SIGTERM)

        async def escalate() -> None:
            await asyncio.sleep(KILL_AFTER_SECONDS)
            self._signal(job, signal.SIGKILL)

        asyncio.get_running_loop().create_task(escalate())


def _list_outputs(job: Job) -> list[dict[str, Any]]:
    """Every regular file a finished job wrote under ``out/<k>/`` (``.name`` too), with size and sha256."""
    files = []
    for index, folder in enumerate(job.spec.outputs):
        for path in sorted(Path(folder).iterdir()):
            if path.is_symlink() or not path.is_file():
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda h=handle: h.read(1 << 20), b""):
                    digest.update(block)
            files.append({"output": index, "name": path.name, "size": path.stat().st_size,
                          "sha256": digest.hexdigest()})
    return files
