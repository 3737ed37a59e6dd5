"""``python -m backend --remote URL --token-file F <command> ...``: run a command on a job server.

Same argv and the same events as a local run: inputs named by local paths are uploaded (skipped
when the server already has their content, checked by sha256), ``server:PATH`` names a file under
one of the server's data roots, outputs are downloaded to where a local run would write them, each
to a temporary file renamed into place only once all of them are complete. Only the files the run
was asked for (and their sidecars, :func:`backend.remote.roles.output_files`) are written, never over
an input; a requested output the server did not send fails the run (exit 1). A lost event stream is
resumed from the last event (a few tries), else the run ends with a clear error and nothing local.

Standard library only: no torch, numpy or rasterio, so any Python 3 (QGIS's own) can run it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import signal
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.contract import protocol
from backend.errors import EnvironmentFault, UserError
from backend.events import Reporter
from backend.io.outputs import same_file
from backend.remote.roles import (
    COMPANION_SUFFIXES,
    DROPPED_FLAGS,
    MODEL_FLAG,
    REMOTE_COMMANDS,
    SERVER_PREFIX,
    SIDECAR_SUFFIXES,
    command_roles,
    is_model_name,
    output_files,
    split_flag,
)
from backend.server.auth import exposure
from backend.server.storage import disk_full

API = "/api/v1"
#: Tries to re-open a lost event stream (or a failed request), with these waits in between.
RETRY_WAITS = (0.5, 1.0, 2.0, 4.0)
#: Seconds a request or the event stream may be silent (the server sends heartbeats every 2 s).
READ_TIMEOUT = 20.0
CHUNK = 1 << 20


class RemoteCancelled(Exception):
    """SIGTERM or SIGINT arrived: cancel the remote job."""


class ConnectionLost(EnvironmentFault):
    """The server could not be reached (after retries)."""


@dataclass
class Plan:
    """The job request and how its files map between this machine and the server."""

    command: str
    args: list[Any] = field(default_factory=list)
    uploads: list[Path] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    output_options: list[str] = field(default_factory=list)
    server_outputs: list[str] = field(default_factory=list)


# -- argv --------------------------------------------------------------------------------------------
def split_argv(argv: list[str]) -> tuple[str, str, list[str]]:
    """``--remote URL --token-file F COMMAND ...`` -> ``(url, token_file, [COMMAND, ...])``."""
    url = token_file = ""
    rest = list(argv)
    while rest and rest[0].startswith("--"):
        flag, value = split_flag(rest.pop(0))
        if flag not in ("--remote", "--token-file"):
            raise UserError(f"unknown option {flag} before the command (expected --remote URL --token-file F)"
                            )
        if value is None:
            if not rest:
                raise UserError(f"{flag} needs a value")
            value = rest.pop(0)
        if flag == "--remote":
            url = value
        else:
            token_file = value
    if not url:
        raise UserError("--remote needs the server's URL, e.g. --remote https://gpu-box:8765")
    if not token_file:
        raise UserError("--token-file is required with --remote (a copy of the server's --work-dir/token)")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise UserError(f"--remote {url}: give an http:// or https:// URL")
    return url.rstrip("/"), token_file, rest


def events_mode(args: list[str]) -> str:
    """The ``--events`` mode asked for (``human`` by default)."""
    for index, token in enumerate(args):
        flag, value = split_flag(token)
        if flag == "--events":
            return value if value is not None else (args[index + 1] if index + 1 < len(args) else "human")
    return "human"


def _companions(path: Path) -> list[Path]:
    found = [path]
    names = [path.with_suffix(s) for s in COMPANION_SUFFIXES.get(path.suffix.lower(), ())]
    names += [path.with_name(path.name + s) for s in SIDECAR_SUFFIXES]
    found += [p for p in names if p.is_file() and p != path]
    return found


def plan_job(command: str, args: list[str], reporter: Reporter) -> Plan:
    """Turn local argv into the job request: which files to upload, where outputs go."""
    plan = Plan(command=command)
    roles = command_roles(command)
    dropped: list[str] = []
    index = 0
    while index < len(args):
        token = args[index]
        flag, inline = split_flag(token)
        index += 1
        if flag in roles.refused:
            raise UserError(f"{flag} cannot be used with --remote (it names a folder or file on the machine "
                            "that runs the command)")
        takes = flag in DROPPED_FLAGS or flag in roles.inputs or flag in roles.outputs
        value = inline
        if takes and value is None and index < len(args):
            value = args[index]
            index += 1
        if flag in DROPPED_FLAGS:
            if flag != "--events":
                dropped.append(flag)
            continue
        if flag in roles.inputs and value is not None:
            plan.args.append(flag)
            if value.startswith(SERVER_PREFIX):
                plan.args.append({"server_path": value[len(SERVER_PREFIX):]})
                continue
            path = Path(value).expanduser()
            if flag == MODEL_FLAG and not path.exists() and is_model_name(value):
                plan.args.append({"model_name": value})  # bundled/installed on the server
                continue
            if not path.is_file():
                raise UserError(f"{flag} {value}: no such file")
            files = _companions(path)
            plan.uploads += files
            plan.inputs.append(path)
            plan.args.append({"input": [{"name": f.name, "path": str(f)} for f in files]})
        elif flag in roles.outputs and value is not None:
            path = Path(value).expanduser()
            plan.outputs.append(path)
            plan.output_options.append(flag)
            plan.args += [flag, {"output": path.name}]
        else:
            plan.args.append(token)
    if dropped:
        reporter.log(f"{', '.join(sorted(set(dropped)))} not sent: the server uses its own embedding cache")
    return plan


# -- HTTP ----------------------------------------------------------------------------------------------
class Server:
    """Authenticated requests to one job server."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                timeout: float = READ_TIMEOUT, stream: bool = False) -> Any:
        """One request; JSON answer (or the open response when ``stream``). Raises on 4xx/5xx."""
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        if isinstance(body, (dict, list)):
            all_headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + API + path, data=data, method=method, headers=all_headers)
        try:
            response = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise self._refusal(exc) from None
        if stream:
            return response
        with response:
            text = response.read()
        return json.loads(text) if text else {}

    def missing_blob(self, sha: str) -> dict[str, int] | None:
        """``None`` when the server has this content, else its upload limits: ``max`` (bytes per upload),
        ``free`` and ``keep_free`` (its disk's free bytes and the reserve uploads must leave)."""
        request = urllib.request.Request(f"{self.url}{API}/blobs/{sha}", method="HEAD",
                                         headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=READ_TIMEOUT):
                return None
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise self._refusal(exc) from None
            return {key: int(exc.headers.get(header) or default) for key, header, default in (
                ("max", "X-Max-Upload-Bytes", 1 << 62), ("free", "X-Free-Bytes", 1 << 62),
                ("keep_free", "X-Keep-Free-Bytes", 0))}

    def _refusal(self, exc: urllib.error.HTTPError) -> UserError:
        try:
            message = json.loads(exc.read() or b"{}").get("error", "")
        except (ValueError, OSError):
            message = ""
        if exc.code == 401:
            return UserError(f"the server {self.url} refused the token (401 unauthorized): check "
                             "--token-file; it must hold the server's token (its --work-dir/token)",
                             kind="unauthorized")
        if exc.code == 404 and not message:
            message = "not found (is this a Terraprobe server?)"
        if exc.code == 507:
            return EnvironmentFault(f"the server {self.url} is out of disk space (507): "
                                    f"{message or exc.reason}")
        return UserError(f"the server refused the request ({exc.code}): {message or exc.reason}",
                         kind="refused" if exc.code in (403, 413) else protocol.BAD_INPUT)


def with_retries(what: str, url: str, call: Any) -> Any:
    """``call()``, retried on connection failures; :class:`ConnectionLost` after the last try."""
    for attempt, wait in enumerate((*RETRY_WAITS, None)):
        try:
            return call()
        except UserError:
            raise
        except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
            certificate = getattr(exc, "reason", exc)
            if isinstance(certificate, ssl.SSLCertVerificationError):
                raise EnvironmentFault(f"the TLS certificate of {url} is not trusted "
                                       f"({certificate.verify_message}); for a private CA set "
                                       "SSL_CERT_FILE=ca.pem (docs/remote.md)") from None
            if wait is None:
                reason = getattr(exc, "reason", None) or exc
                raise ConnectionLost(f"lost connection to the server {url} while {what} ({reason}) after "
                                     f"{attempt + 1} tries; nothing was written locally") from None
            time.sleep(wait)
    raise AssertionError("unreachable")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def upload(server: Server, plan: Plan, reporter: Reporter) -> None:
    """Send the inputs the server does not have yet; fill in their hashes in the request."""
    hashes: dict[str, str] = {}
    for path in dict.fromkeys(plan.uploads):
        sha = sha256_of(path)
        hashes[str(path)] = sha
        size = path.stat().st_size

        def send(path: Path = path, sha: str = sha, size: int = size) -> bool:
            limits = server.missing_blob(sha)
            if limits is None:
                return False
            if size > limits["max"]:
                raise UserError(f"the server refused the request (413): {path} has {size} bytes, the server "
                                f"accepts uploads up to {limits['max']} bytes (its --max-upload-mb)",
                                kind="refused")
            if size + limits["keep_free"] > limits["free"]:  # asked before sending: a refusal, not a reset
                full = disk_full(limits["free"], size, limits["keep_free"])
                raise EnvironmentFault(f"the server {server.url} is out of disk space (507): {full}")
            with open(path, "rb") as handle:
                headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
                server.request("PUT", f"/blobs/{sha}", body=handle, timeout=max(READ_TIMEOUT, size / 1e6),
                               headers=headers)
            return True

        sent = with_retries(f"uploading {path.name}", server.url, send)
        reporter.log(f"uploaded {path.name} ({size / 1e6:.1f} MB)" if sent
                     else f"{path.name} is already on the server: not sent again")
    for item in plan.args:
        if isinstance(item, dict) and "input" in item:
            item["input"] = [{"name": f["name"], "sha256": hashes[f["path"]]} for f in item["input"]]


# -- running -------------------------------------------------------------------------------------------
def _rewrite(value: Any, mapping: list[tuple[str, str]]) -> Any:
    """Server paths in event strings replaced by the local paths they stand for."""
    if isinstance(value, str):
        for server_path, local in mapping:
            value = value.replace(server_path, local)
        return value
    if isinstance(value, dict):
        return {k: _rewrite(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, mapping) for v in value]
    return value


class EventPrinter:
    """Prints a server's events as a local run would (JSON lines, or lines for people)."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self._decile = -1

    def __call__(self, event: dict[str, Any]) -> None:
        kind, reporter = event.get("event"), self.reporter
        if reporter.mode == "json":
            reporter._emit(event)  # the same writer: the event passed through as it came
        elif kind == protocol.LOG:
            reporter.log(str(event.get("message", "")), level=str(event.get("level", "info")))
        elif kind == protocol.WARNING:
            reporter.warning(str(event.get("message", "")))
        elif kind == protocol.PROGRESS:  # a line per 10 % at most
            fraction = float(event.get("fraction", 0))
            if int(fraction * 10) > self._decile or fraction >= 1.0:
                self._decile = int(fraction * 10)
                print(f"{100 * fraction:5.1f}%  {event.get('message', '')}", file=sys.stderr, flush=True)


def follow(server: Server, job_id: str, reporter: Reporter, mapping: list[tuple[str, str]]
           ) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """Print the job's events until its final ``job`` event: ``(job, result, error)``."""
    state: dict[str, Any] = {"next": 0, "result": None, "error": None, "job": None}
    emit = EventPrinter(reporter)

    def read() -> None:
        with server.request("GET", f"/jobs/{job_id}/events?from={state['next']}", stream=True) as response:
            for line in response:
                event = protocol.decode_event(line)
                seq = event.pop("seq", None)
                if seq is None:  # a heartbeat of the stream itself
                    continue
                state["next"] = seq + 1
                kind = event.get("event")
                if kind == protocol.JOB:
                    state["job"] = event
                    return
                if kind == protocol.ERROR and event.get("kind") == protocol.ENVIRONMENT:
                    message = f"on the server {server.url}: {event.get('message')}"
                    state["error"] = {**event, "message": message}
                    continue  # its paths are the server's (a full disk there is not one here)
                event = _rewrite(event, mapping)
                if kind == protocol.RESULT:
                    state["result"] = event
                    continue  # printed once the outputs are in place
                if kind == protocol.ERROR:
                    state["error"] = event
                    continue
                emit(event)
        raise ConnectionResetError("the event stream ended before the job did")

    while state["job"] is None:
        with_retries("following the job's events", server.url, read)
    return state["job"], state["result"], state["error"]


class MissingOutput(UserError):
    """The server finished the job without an output the client asked for (exit 1)."""

    exit_code = protocol.ExitCode.BUG


def accepted_files(plan: Plan, files: list[dict[str, Any]], reporter: Reporter) -> list[dict[str, Any]]:
    """The listed files the run was asked for (:func:`output_files`), each checked; others are ignored.

    Raises:
        MissingOutput: a requested output is not among ``files``.
        UserError: an output would replace one of the run's inputs.
    """
    inputs = [*plan.inputs, *plan.uploads]
    accepted = []
    for index, (path, option) in enumerate(zip(plan.outputs, plan.output_options)):
        names = output_files(plan.command, option, path.name)
        listed = {str(item.get("name")): item for item in files if item.get("output") == index}
        if names[0] not in listed:
            raise MissingOutput(f"the server finished the job without {path.parent / names[0]} ({option}): "
                                "nothing was written", kind="internal")
        for name in names:
            if name not in listed:
                continue
            final = path.parent / name
            clash = next((i for i in inputs if same_file(final, i)), None)
            if clash is not None:
                raise UserError(f"the server's output {name} would replace the input {clash}: nothing was "
                                "written; choose another --out")
            accepted.append(listed.pop(name))
        for name in sorted(listed):
            reporter.warning(f"the server sent {name}, which this run did not ask for: not written")
    extra = sorted({str(item.get("name")) for item in files
                    if item.get("output") not in range(len(plan.outputs))})
    if extra:
        reporter.warning(f"the server sent {', '.join(extra)} for no requested output: not written")
    return accepted


def download(server: Server, job_id: str, files: list[dict[str, Any]], plan: Plan) -> None:
    """Fetch every output into a temporary file beside its destination, then rename them all."""
    temps: list[tuple[Path, Path]] = []
    try:
        for item in files:
            folder = plan.outputs[int(item["output"])].parent
            final = folder / Path(item["name"]).name
            folder.mkdir(parents=True, exist_ok=True)
            temp = folder / f".{final.name}.remote-{os.getpid()}.part"
            temps.append((temp, final))

            def fetch(item: dict[str, Any] = item, temp: Path = temp) -> None:
                path = f"/jobs/{job_id}/files/{item['output']}/{urllib.parse.quote(item['name'])}"
                digest = hashlib.sha256()
                with server.request("GET", path, stream=True) as response, open(temp, "wb") as handle:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        digest.update(block)
                        handle.write(block)
                if digest.hexdigest() != item["sha256"]:
                    raise ConnectionResetError(f"{item['name']} arrived damaged (checksum mismatch)")

            with_retries(f"downloading {item['name']}", server.url, fetch)
        for temp, final in temps:
            os.replace(temp, final)
    finally:
        for temp, _ in temps:
            temp.unlink(missing_ok=True)


def _raise_cancel(signum: int, frame: Any) -> None:
    raise RemoteCancelled()


def run(argv: list[str]) -> int:
    """Run one command remotely; the process exit code (that of the remote run)."""
    try:
        url, token_file, rest = split_argv(argv)
        mode = events_mode(rest)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    reporter = Reporter(mode if mode in ("human", "json") else "human")
    reporter.start_heartbeat()
    previous = {sig: signal.signal(sig, _raise_cancel) for sig in (signal.SIGINT, signal.SIGTERM)}
    server: Server | None = None
    job_id: str | None = None
    try:
        if not rest or rest[0] not in REMOTE_COMMANDS:
            given = rest[0] if rest else "none"
            raise UserError(f"command {given!r} cannot run remotely; these can: {', '.join(REMOTE_COMMANDS)}")
        _check_locally(rest)
        try:
            token = Path(token_file).expanduser().read_text().strip()
            exposed = exposure(Path(token_file).expanduser())
        except OSError as exc:
            raise UserError(f"cannot read --token-file {token_file}: {exc.strerror or exc}") from None
        if exposed:
            reporter.warning(f"the token file {token_file} is readable by {exposed}: whoever reads it can "
                             f"run jobs on {url}; chmod 600 {token_file}")
        server = Server(url, token)
        plan = plan_job(rest[0], rest[1:], reporter)
        upload(server, plan, reporter)
        request_id = uuid.uuid4().hex  # a retried submission returns the same job, never a second run
        created = with_retries("submitting the job", url, lambda: server.request(
            "POST", "/jobs", body={"command": plan.command, "args": plan.args, "request_id": request_id}))
        job_id = created["id"]
        plan.server_outputs = list(created.get("outputs", []))
        mapping = [(s, str(p)) for s, p in zip(created.get("inputs", []), plan.inputs)]
        mapping += [(s, str(p.parent)) for s, p in zip(plan.server_outputs, plan.outputs)]
        reporter.log(f"remote job {job_id} on {url}")
        job, result, error = follow(server, job_id, reporter, mapping)
        if job["state"] != "done" or result is None:
            error = error or {"kind": protocol.INTERNAL, "message": f"the remote job {job['state']}"}
            reporter.error(str(error.get("message")), kind=str(error.get("kind", protocol.INTERNAL)))
            return int(job.get("exit_code") or protocol.ExitCode.BUG)
        download(server, job_id, accepted_files(plan, job.get("files", []), reporter), plan)
        reporter.result(dict(result.get("outputs") or {}), result.get("stats") or {})
        return protocol.ExitCode.DONE
    except RemoteCancelled:
        if server is not None and job_id is not None:
            with contextlib.suppress(UserError, OSError, urllib.error.URLError):
                server.request("POST", f"/jobs/{job_id}/cancel", timeout=1.0)  # within the plugin's grace
        reporter.error("cancelled; no output was written", kind=protocol.CANCELLED)
        return protocol.ExitCode.CANCELLED
    except UserError as exc:
        reporter.error(str(exc), kind=exc.kind)
        return exc.exit_code
    finally:
        reporter.stop_heartbeat()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _check_locally(rest: list[str]) -> None:
    """Parse the argv as a local run would (argparse errors, exit 2) and refuse outputs that are inputs."""
    from backend.io.outputs import check_outputs
    from backend.parser import build_parser

    check_outputs(build_parser().parse_args(rest))
