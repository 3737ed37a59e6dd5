"""The HTTP routes of the job server (Starlette, served by uvicorn).

All routes but ``/health`` need ``Authorization: Bearer <token>``. Under ``/api/v1``:

* ``GET|HEAD /blobs/{sha256}``: 200 if the server has that content, else 404.
* ``PUT /blobs/{sha256}``: upload (``Content-Length`` required, at most ``--max-upload-mb``; the
  content must hash to ``sha256``).
* ``POST /jobs``: submit ``{"command", "args"}`` (see :mod:`backend.server.spec`) -> ``{"id", ...}``;
  a body over :data:`MAX_REQUEST_BYTES` is refused with 413 while it arrives.
* ``GET /jobs/{id}``: status. ``GET /jobs/{id}/events?from=N``: the events from number ``N`` on,
  one JSON object per line (chunked), heartbeats when idle; ends after the final ``job`` event.
* ``GET /jobs/{id}/files/{k}/{name}``: an output of a finished job. ``POST /jobs/{id}/cancel``.
* ``GET /stats``: bytes received and job counts.

A full disk on the server (or an upload that would leave less than ``--keep-free-mb``) is a 507
whose message names the server's disk, free and needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from backend import __version__
from backend.contract.protocol import HEARTBEAT, HEARTBEAT_SECONDS, JOB, event
from backend.server import API
from backend.server.auth import bearer_matches
from backend.server.queue import FINAL_STATES, Job, JobQueue
from backend.server.spec import build_argv
from backend.server.storage import Refused, Storage, check_name, disk_full

#: How often expired jobs and uploads are deleted.
EXPIRE_EVERY_SECONDS = 600.0
#: The largest ``POST /jobs`` body (a job request is a few kB; its files travel as uploads).
MAX_REQUEST_BYTES = 1 << 20
#: errno values of a full disk (or quota): HTTP 507 naming the server's disk.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)

Handler = Callable[[Request], Awaitable[Response]]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is longer than ``limit`` bytes (never kept whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(f"the job request has {declared} bytes; the server accepts at most {limit}", status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(f"the job request is longer than the {limit} bytes the server accepts", status=413)
    return bytes(body)


def create_app(storage: Storage, queue: JobQueue, token: str, keep_hours: float) -> Starlette:
    """The server application."""

    def authorized(handler: Handler) -> Handler:
        async def wrapper(request: Request) -> Response:
            if not bearer_matches(request.headers.get("authorization"), token):
                return _error(401, "missing or wrong token: send 'Authorization: Bearer <token>' "
                                   "(the token is in the server's --work-dir/token)")
            try:
                return await handler(request)
            except Refused as exc:
                return _error(exc.status, str(exc))
            except OSError as exc:
                if exc.errno not in DISK_FULL_ERRNOS:
                    raise
                free = shutil.disk_usage(storage.work_dir).free
                return _error(507, f"the server's disk is full: {free / 2**20:.1f} MB free in its --work-dir")
        return wrapper

    def find_job(request: Request) -> Job:
        job = queue.jobs.get(request.path_params["job_id"])
        if job is None:
            raise Refused("no such job (finished jobs are kept --keep-hours)", status=404)
        return job

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "version": __version__})

    @authorized
    async def blob(request: Request) -> Response:
        sha = request.path_params["sha256"]
        if request.method in ("GET", "HEAD"):
            return Response(status_code=200 if storage.has_blob(sha) else 404, headers={
                "X-Max-Upload-Bytes": str(storage.max_upload),
                "X-Free-Bytes": str(shutil.disk_usage(storage.work_dir).free),
                "X-Keep-Free-Bytes": str(storage.keep_free)})
        if storage.has_blob(sha):
            return JSONResponse({"sha256": sha, "received": 0}, status_code=200)
        try:
            length = int(request.headers.get("content-length", ""))
        except ValueError:
            return _error(411, "Content-Length is required")
        if length > storage.max_upload:
            return _error(413, f"upload of {length} bytes exceeds the server's limit of "
                               f"{storage.max_upload} bytes (--max-upload-mb)")
        storage.check_room(length)
        temp = storage.upload_temp(sha)
        digest, received = hashlib.sha256(), 0
        try:
            with open(temp, "xb") as handle:
                async for chunk in request.stream():
                    received += len(chunk)
                    storage.bytes_received += len(chunk)
                    if received > length or received > storage.max_upload:
                        raise Refused("upload larger than its Content-Length or the limit", status=413)
                    digest.update(chunk)
                    handle.write(chunk)
            if received != length:
                raise Refused(f"upload cut short: {received} of {length} bytes")
            storage.finish_upload(sha, temp, digest.hexdigest())
        except OSError as exc:
            if exc.errno not in DISK_FULL_ERRNOS:
                raise
            temp.unlink(missing_ok=True)
            raise disk_full(shutil.disk_usage(storage.work_dir).free, length) from None
        finally:
            temp.unlink(missing_ok=True)
        return JSONResponse({"sha256": sha, "received": received}, status_code=201)

    @authorized
    async def submit(request: Request) -> Response:
        try:
            body = json.loads(await read_limited(request, MAX_REQUEST_BYTES))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return _error(400, "the job request is not JSON")
        request_id = body.get("request_id") if isinstance(body, dict) else None
        job = queue.create(lambda folder: build_argv(body, storage, folder),
                           request_id=request_id if isinstance(request_id, str) and len(request_id) <= 64
                           else None)
        return JSONResponse({"id": job.id, "inputs": job.spec.inputs, "outputs": job.spec.outputs},
                            status_code=201)

    @authorized
    async def status(request: Request) -> Response:
        return JSONResponse(find_job(request).status())

    @authorized
    async def events(request: Request) -> Response:
        job = find_job(request)
        try:
            start = max(int(request.query_params.get("from", "0")), 0)
        except ValueError:
            return _error(400, "'from' must be an event number")

        async def stream() -> AsyncIterator[bytes]:
            index = start
            while True:
                while index < len(job.events):
                    sent = job.events[index]
                    index += 1
                    yield (json.dumps(sent) + "\n").encode()
                    if sent["event"] == JOB:
                        return
                if job.state in FINAL_STATES and index >= len(job.events):
                    return
                before = len(job.events)
                await job.wait_change(HEARTBEAT_SECONDS)
                if len(job.events) == before:
                    yield (json.dumps(event(HEARTBEAT, time=time.time())) + "\n").encode()

        return StreamingResponse(stream(), media_type="application/x-ndjson",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @authorized
    async def download(request: Request) -> Response:
        job = find_job(request)
        if job.state != "done":
            raise Refused(f"the job is {job.state}: outputs are served once it is done", status=409)
        name = check_name(request.path_params["name"])
        index = int(request.path_params["index"])
        if not any(f["output"] == index and f["name"] == name for f in job.files):
            raise Refused("no such output", status=404)
        return FileResponse(Path(job.spec.outputs[index]) / name, media_type="application/octet-stream")

    @authorized
    async def cancel(request: Request) -> Response:
        job = find_job(request)
        await queue.cancel(job)
        return JSONResponse(job.status(), status_code=202)

    @authorized
    async def stats(request: Request) -> Response:
        running = len(queue.busy_ids()) - len(queue.waiting)
        return JSONResponse({"bytes_received": storage.bytes_received, "jobs": dict(queue.counts),
                             "queued": len(queue.waiting), "running": running})

    async def expire_forever() -> None:
        while True:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(storage.expire, keep_hours * 3600.0, queue.busy_ids())
                for job_id in [j.id for j in queue.jobs.values() if not j.folder.exists()]:
                    queue.jobs.pop(job_id, None)
            await asyncio.sleep(EXPIRE_EVERY_SECONDS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(expire_forever())
        try:
            yield
        finally:
            task.cancel()
            for job in list(queue.jobs.values()):
                if job.state == "running":
                    await queue.cancel(job)

    routes = [
        Route(f"{API}/health", health, methods=["GET"]),
        Route(f"{API}/blobs/{{sha256}}", blob, methods=["GET", "HEAD", "PUT"]),
        Route(f"{API}/jobs", submit, methods=["POST"]),
        Route(f"{API}/jobs/{{job_id}}", status, methods=["GET"]),
        Route(f"{API}/jobs/{{job_id}}/events", events, methods=["GET"]),
        Route(f"{API}/jobs/{{job_id}}/files/{{index:int}}/{{name}}", download, methods=["GET"]),
        Route(f"{API}/jobs/{{job_id}}/cancel", cancel, methods=["POST"]),
        Route(f"{API}/stats", stats, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def describe(storage: Storage, queue: JobQueue) -> dict[str, Any]:
    """What the server was started with (logged at start)."""
    return {"work_dir": str(storage.work_dir), "data_roots": [str(r) for r in storage.data_roots],
            "slots": len(queue.free_slots), "gpus": queue.gpus, "max_upload_bytes": storage.max_upload,
            "keep_free_bytes": storage.keep_free}
