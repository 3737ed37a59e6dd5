"""Process client for the backend: find its interpreter, run ``python -m backend``, read events.

This module is plain Python (no qgis, no torch) so it runs in QGIS, in a QgsTask thread, in a
Processing algorithm and in tests alike. The backend writes one JSON object per line on stdout
(``progress``, ``log``, ``heartbeat``, ``result``, ``error``); human details go to stderr.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

try:
    from ..backend.contract import paths as contract_paths
    from ..backend.contract.remote import REMOTE_COMMANDS, remote_arguments
except ImportError:  # ``plugin`` imported as a top-level package (tests, scripts)
    from backend.contract import paths as contract_paths  # type: ignore[no-redef]
    from backend.contract.remote import REMOTE_COMMANDS, remote_arguments  # type: ignore[no-redef]

#: The plugin root: the folder holding metadata.txt, plugin/ and backend/.
PLUGIN_ROOT = Path(__file__).resolve().parents[1]

EventCallback = Callable[[dict], None]
CancelCheck = Callable[[], bool]

#: Seconds between the backend's heartbeats are 2; this is how long silence is tolerated.
DEFAULT_HEARTBEAT_TIMEOUT = 30.0
#: After SIGTERM, how long the backend gets to clean up before it is killed.
TERMINATE_GRACE = 1.5
POLL_INTERVAL = 0.1
_STDERR_KEEP = 200

_torch_check_cache: dict[str, bool] = {}


class BackendError(RuntimeError):
    """A backend run that did not produce a result.

    Attributes:
        message: the backend's one-line explanation.
        kind: ``bad_input`` (exit 2), ``environment`` (exit 3: disk full, permissions, damaged
            files; the message names the path and the cause), ``internal`` (exit 1), ``cancelled``
            (exit 130), ``unresponsive``, ``crashed``, ...
        exit_code: the process exit code (``None`` when it was killed by the client).
        stderr: the last lines the process wrote on stderr (for the log panel).
    """

    def __init__(self, message: str, kind: str = "internal", exit_code: int | None = None,
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


class BackendNotFound(RuntimeError):
    """No Python interpreter with the backend's dependencies was found."""


@dataclass
class BackendResult:
    """What a successful run returned: output files by name and statistics."""

    outputs: dict[str, Any]
    stats: dict[str, Any]
    exit_code: int = 0
    logs: list[str] = field(default_factory=list)
    stderr: str = ""


# -- finding the interpreter ---------------------------------------------------------------------
def venv_python(root: Path = PLUGIN_ROOT) -> Path:
    """The interpreter of the ``.venv`` inside the plugin folder (may not exist)."""
    if sys.platform == "win32":
        return root / ".venv" / "Scripts" / "python.exe"
    return root / ".venv" / "bin" / "python"


def host_python() -> str | None:
    """The Python interpreter QGIS itself runs on (``sys.executable`` is QGIS inside the app)."""
    name = Path(sys.executable).name.lower()
    if name.startswith("python"):
        return sys.executable
    prefix = Path(sys.exec_prefix)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = ([prefix / "python.exe", prefix / "python3.exe"] if sys.platform == "win32"
                  else [prefix / "bin" / f"python{version}", prefix / "bin" / "python3"])
    return next((str(c) for c in candidates if c.is_file()), None)


def python_has_torch(python: str, timeout: float = 60.0) -> bool:
    """Whether ``import torch`` works in ``python`` (checked in a subprocess, cached)."""
    if python not in _torch_check_cache:
        try:
            completed = subprocess.run([python, "-c", "import torch"], capture_output=True,
                                       timeout=timeout, **_hidden_window())
            _torch_check_cache[python] = completed.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _torch_check_cache[python] = False
    return _torch_check_cache[python]


def user_env_dirs() -> list[Path]:
    """Per-user backend environments, outside the plugin folder so upgrades keep them.

    Inside QGIS: the profile's ``terraprobe/venv`` (``$TERRAPROBE_HOME/venv`` when set), the other
    QGIS profiles' (``qgis_process`` runs in the default profile); then the platform's data folder
    (``~/.local/share/terraprobe/venv``, ``%APPDATA%\\terraprobe\\venv``,
    ``~/Library/Application Support/terraprobe/venv``).
    """
    dirs: list[Path] = []
    try:
        from .settings import profile_homes

        dirs += [contract_paths.backend_env_dir(home) for home in profile_homes()]
    except ImportError:  # no QGIS: a plain process or a test
        pass
    default = contract_paths.backend_env_dir()
    if default not in dirs:
        dirs.append(default)
    return dirs


#: Packages whose absence means "not the backend's environment" (checked without importing them).
BACKEND_PACKAGES = ("torch", "numpy", "rasterio", "sklearn")
_PROBE = ("import importlib.util, json, sys; print(json.dumps({'version': '%d.%d' % sys.version_info[:2], "
          "'missing': [m for m in " + repr(BACKEND_PACKAGES) + " if importlib.util.find_spec(m) is None]}))")


def interpreter_problem(python: str, timeout: float = 30.0) -> str | None:
    """Why ``python`` cannot run the backend, in the analyst's words (``None``: it looks fine).

    Tells "not a Python interpreter" from "a Python without torch / rasterio …"; the packages are
    looked up, not imported, so the check takes a Python start-up.
    """
    advice = ("Clear Settings › Backend Python to use the environment \"Set up backend…\" made, or "
              "choose that environment's interpreter.")
    try:
        completed = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=timeout,
                                   cwd=str(Path(python).parent) if Path(python).parent.is_dir() else None,
                                   **_hidden_window())
        facts = json.loads(completed.stdout.strip().splitlines()[-1]) if completed.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        facts = None
    if not isinstance(facts, dict):
        return f"{python} is not a Python interpreter. {advice}"
    if facts.get("missing"):
        return (f"{python} is Python {facts.get('version', '?')} without {', '.join(facts['missing'])}: "
                f"not the backend's environment. {advice}")
    return None


def _explained(error: BackendError, python: str) -> BackendError:
    """``error`` of a run that failed before the backend spoke, rephrased when ``python`` is unusable."""
    if error.kind not in ("internal", "crashed", "not_started", "no_result"):
        return error
    problem = interpreter_problem(python)
    if problem is None:
        return error
    return BackendError(problem, kind="environment", exit_code=error.exit_code, stderr=error.stderr)


def setup_instructions(root: Path = PLUGIN_ROOT) -> str:
    """What the analyst should do to get a backend interpreter on this platform."""
    venv = venv_python(root)
    in_qgis = ("In QGIS: Terraprobe dock > Settings > \"Set up backend…\" installs it for you into "
               f"{user_env_dirs()[0]} (a few minutes; kept across plugin upgrades).\nOr by hand: ")
    if sys.platform.startswith("linux"):
        return in_qgis + (f"in a terminal, in the plugin folder {root}, run:\n"
                          f"    bash scripts/setup.sh\n"
                          f"(or, without root rights: python3 -m venv .venv && "
                          f".venv/bin/python -m pip install -r requirements.txt)\n"
                          f"then set the backend interpreter to {venv} in the Terraprobe settings.")
    activate = r".venv\Scripts\activate" if sys.platform == "win32" else "source .venv/bin/activate"
    return in_qgis + (f"create a Python 3.11 environment for the backend (not QGIS's own Python), "
                      f"for example in a terminal in the plugin folder {root}:\n"
                      f"    python3.11 -m venv .venv\n    {activate}\n"
                      f"    python -m pip install -r requirements.txt\n"
                      f"or with conda: conda create -n terraprobe python=3.11 && conda activate terraprobe "
                      f"&& pip install -r requirements.txt\n"
                      f"then set the backend interpreter (e.g. {venv}) in the Terraprobe settings.")


def find_backend_python(configured: str | None = None, root: Path = PLUGIN_ROOT,
                        allow_host: bool = True, env_dirs: list[Path] | None = None) -> str:
    """Find the interpreter that runs the backend.

    Order: the configured path (setting ``terraprobe/backend_python``), the per-user backend
    environment (``env_dirs``, default :func:`user_env_dirs`; made by "Set up backend…"), the
    plugin folder's ``.venv`` (``scripts/setup.sh``), then QGIS's own interpreter if torch happens
    to import there.

    Raises:
        BackendNotFound: with instructions for the analyst when none fits.
    """
    if configured:
        if Path(configured).is_file():
            return str(configured)
        raise BackendNotFound(f"The configured backend interpreter does not exist: {configured}\n"
                              + setup_instructions(root))
    for env_dir in user_env_dirs() if env_dirs is None else env_dirs:
        python = contract_paths.env_python(env_dir)
        if python.is_file():
            return str(python)
    venv = venv_python(root)
    if venv.is_file():
        return str(venv)
    host = host_python() if allow_host else None
    if host and python_has_torch(host):
        return host
    raise BackendNotFound("No Python interpreter with the Terraprobe backend's packages (PyTorch) "
                          "was found.\n" + setup_instructions(root))


# -- running -------------------------------------------------------------------------------------
def _hidden_window() -> dict[str, Any]:
    if sys.platform == "win32":
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}
    return {}


def _send_stop(process: subprocess.Popen, sig: int, fallback: Callable[[], None]) -> None:
    """Signal the process group (POSIX) or call ``fallback`` (Windows); a gone process is fine."""
    try:
        if sys.platform != "win32":
            os.killpg(process.pid, sig)
        else:
            fallback()
    except (ProcessLookupError, PermissionError):
        pass


def _stop_process(process: subprocess.Popen, grace: float = TERMINATE_GRACE) -> None:
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
    full_env = _process_env(env)
    try:
        process = subprocess.Popen(
            list(command), cwd=str(cwd) if cwd else None, env=full_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
            errors="replace", bufsize=1, start_new_session=sys.platform != "win32", **_hidden_window())
    except OSError as exc:
        raise BackendError(f"could not start the backend ({command[0]}): {exc}", kind="not_started") from exc
    if on_start:
        on_start(process.pid)

    lines: queue.Queue[str | None] = queue.Queue()
    stderr_lines: list[str] = []

    def read_stdout() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put(None)

    def read_stderr() -> None:
        for line in process.stderr:  # type: ignore[union-attr]
            stderr_lines.append(line)
            if len(stderr_lines) > _STDERR_KEEP:
                del stderr_lines[0]

    readers = [threading.Thread(target=read_stdout, daemon=True, name="backend-stdout"),
               threading.Thread(target=read_stderr, daemon=True, name="backend-stderr")]
    for reader in readers:
        reader.start()

    events = _RunEvents()
    last_activity = time.monotonic()
    try:
        while True:
            line = _next_line(lines, last_activity, heartbeat_timeout, is_canceled,
                              lambda: _stop_process(process), lambda: process.returncode,
                              lambda: "".join(stderr_lines))
            if line is None:
                break
            last_activity = time.monotonic()
            events.take(_parse_event(line), on_event)
        exit_code = process.wait()
    finally:
        if process.poll() is None:
            _stop_process(process)
        for reader, stream in zip(readers, (process.stdout, process.stderr)):
            reader.join(timeout=1.0)
            if not reader.is_alive() and stream is not None:
                stream.close()  # else the pipes leak as "unclosed file" ResourceWarnings
    return events.outcome(exit_code, "".join(stderr_lines))


class _RunEvents:
    """What one run's events said so far: its result, its error and its log lines."""

    def __init__(self) -> None:
        self.result: dict | None = None
        self.error: dict | None = None
        self.logs: list[str] = []

    def take(self, event: dict, on_event: EventCallback | None) -> None:
        """Record one event and hand it to ``on_event``."""
        kind = event.get("event")
        if kind == "result":
            self.result = event
        elif kind == "error":
            self.error = event
        elif kind == "log":
            self.logs.append(str(event.get("message", "")))
        if on_event:
            on_event(event)

    def outcome(self, exit_code: int, stderr_text: str) -> BackendResult:
        return _outcome(self.result, self.error, exit_code, self.logs, stderr_text)


def _next_line(lines: queue.Queue, last_activity: float, heartbeat_timeout: float,
               is_canceled: CancelCheck | None, stop: Callable[[], None],
               exit_code: Callable[[], int | None], stderr: Callable[[], str]) -> str | None:
    """The next stdout line (``None`` at its end), polling for a cancel and a silent backend.

    Raises:
        BackendCancelled: ``is_canceled`` said so (the backend was stopped with ``stop``).
        BackendError: no event for ``heartbeat_timeout`` seconds (the backend was stopped).
    """
    while True:
        if is_canceled and is_canceled():
            stop()
            raise BackendCancelled("cancelled", kind="cancelled", exit_code=exit_code(), stderr=stderr())
        try:
            return lines.get(timeout=POLL_INTERVAL)
        except queue.Empty:
            if time.monotonic() - last_activity > heartbeat_timeout:
                stop()
                raise BackendError(
                    f"backend stopped responding (no event for {heartbeat_timeout:g} s); it was stopped",
                    kind="unresponsive", exit_code=exit_code(), stderr=stderr()) from None


def _outcome(result: dict | None, error: dict | None, exit_code: int, logs: list[str],
             stderr_text: str) -> BackendResult:
    """The result of a finished run, or the :class:`BackendError` its events and exit code mean."""
    if error is not None or exit_code != 0 or result is None:
        if error is not None:
            message, kind = str(error.get("message", "backend failed")), str(error.get("kind", "internal"))
        elif exit_code != 0:
            tail = stderr_text.strip().splitlines()[-1:] or [""]
            message = f"backend exited with code {exit_code}" + (f": {tail[0]}" if tail[0] else "")
            kind = "crashed"
        else:
            message, kind = "backend finished without a result", "no_result"
        if kind == "cancelled":
            raise BackendCancelled(message, kind=kind, exit_code=exit_code, stderr=stderr_text)
        raise BackendError(message, kind=kind, exit_code=exit_code, stderr=stderr_text)
    return BackendResult(outputs=dict(result.get("outputs") or {}), stats=dict(result.get("stats") or {}),
                         exit_code=exit_code, logs=logs, stderr=stderr_text)


def _process_env(env: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", **(env or {})}


def _parse_event(line: str) -> dict:
    """One stdout line as an event; stray non-JSON output becomes a ``log`` event."""
    text = line.strip()
    if text.startswith("{"):
        try:
            event = json.loads(text)
            if isinstance(event, dict) and "event" in event:
                return event
        except json.JSONDecodeError:
            pass
    return {"event": "log", "level": "info", "message": text}


def backend_command(args: Sequence[str], python: str) -> list[str]:
    """The argv for ``python -m backend ARGS --events json``."""
    return [python, "-m", "backend", *args, "--events", "json"]


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
    if server and args and args[0] in REMOTE_COMMANDS:
        args = [*remote_arguments(*server), *args]
        if python is None:
            python = remote_client_python(root)
    if python is None:
        python = find_backend_python(configured_backend_python(), root=root)
    keep = configured_keep_running() if keep_running is None else keep_running
    try:
        if keep and args and args[0] in WORKER_COMMANDS:  # a remote run starts with --remote: never pooled
            outcome = _run_pooled([*args, "--events", "json"], python, root, on_event=on_event,
                                  is_canceled=is_canceled, heartbeat_timeout=heartbeat_timeout,
                                  on_start=on_start)
            if outcome is not None:
                return outcome
        return run_command(backend_command(args, python), on_event=on_event, is_canceled=is_canceled,
                           cwd=root, heartbeat_timeout=heartbeat_timeout, on_start=on_start)
    except BackendCancelled:
        raise
    except BackendError as exc:
        if args and args[0] == "--remote":  # the remote client needs no torch: nothing to explain
            raise
        raise _explained(exc, python) from None


def configured_backend_python() -> str | None:
    """The interpreter set in QGIS settings, if running inside QGIS and one is set."""
    try:
        from .settings import Settings
    except ImportError:
        return None
    return Settings().backend_python or None


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


def remote_client_python(root: Path = PLUGIN_ROOT) -> str:
    """An interpreter for the remote client: the backend's when there is one, else QGIS's own."""
    try:
        return find_backend_python(configured_backend_python(), root=root, allow_host=False)
    except BackendNotFound:
        pass
    host = host_python()
    if host:
        return host
    raise BackendNotFound("No Python 3 interpreter was found to run the remote backend client; set "
                          "Backend Python to any Python 3.9+ in the Terraprobe settings.")


# -- the pooled worker (issue 12) ----------------------------------------------------------------
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
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._stderr_total = 0
        self._stderr_lock = threading.Lock()
        try:
            self.process = subprocess.Popen(
                [python, "-m", "backend", "worker"], cwd=str(cwd), env=_process_env(),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                encoding="utf-8", errors="replace", bufsize=1, start_new_session=sys.platform != "win32",
                **_hidden_window())
        except OSError as exc:
            raise BackendError(f"could not start the backend ({python}): {exc}", kind="not_started") from exc
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True, name="worker-stdout"),
                         threading.Thread(target=self._read_stderr, daemon=True, name="worker-stderr")]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read_stdout(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self._lines.put(line)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        for line in self.process.stderr:  # type: ignore[union-attr]
            with self._stderr_lock:
                self._stderr.append(line)
                self._stderr_total += 1
                if len(self._stderr) > _STDERR_KEEP:
                    del self._stderr[0]

    def _stderr_since(self, mark: int) -> str:
        with self._stderr_lock:
            count = min(self._stderr_total - mark, len(self._stderr))
            return "".join(self._stderr[len(self._stderr) - count:]) if count > 0 else ""

    def alive(self) -> bool:
        return not self.dead and self.process.poll() is None

    def close(self, grace: float = 2.0) -> None:
        """Let the worker leave (stdin closed), or stop its process group; reap it."""
        self.dead = True
        if self.process.poll() is None:
            try:
                self.process.stdin.close()  # type: ignore[union-attr]
                self.process.wait(timeout=grace)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        _stop_process(self.process)
        for reader, stream in zip(self._readers, (self.process.stdout, self.process.stderr)):
            reader.join(timeout=1.0)
            if not reader.is_alive() and stream is not None:
                stream.close()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.process.stdin.close()

    def kill(self) -> None:
        """Stop the worker's process group now (cancel, stuck, crash)."""
        self.dead = True
        _stop_process(self.process)

    def run(self, argv: list[str], on_event: EventCallback | None, is_canceled: CancelCheck | None,
            heartbeat_timeout: float, on_start: Callable[[int], None] | None) -> BackendResult:
        """Run one request; raises :class:`_WorkerGone` when the worker died before taking it."""
        while True:  # what an earlier job left (a late heartbeat; EOF of a dead worker)
            try:
                if self._lines.get_nowait() is None:
                    self.dead = True
            except queue.Empty:
                break
        if not self.alive():
            raise _WorkerGone()
        self._next_id += 1
        ident = self._next_id
        with self._stderr_lock:
            mark = self._stderr_total
        try:
            self.process.stdin.write(json.dumps({"id": ident, "argv": argv}) + "\n")  # type: ignore[union-attr]
            self.process.stdin.flush()  # type: ignore[union-attr]
        except (OSError, ValueError) as exc:
            self.dead = True
            raise _WorkerGone() from exc
        if on_start:
            on_start(self.process.pid)
        events = _RunEvents()
        last_activity = time.monotonic()
        while True:
            line = _next_line(self._lines, last_activity, heartbeat_timeout, is_canceled, self.kill,
                              lambda: self.process.returncode, lambda: self._stderr_since(mark))
            if line is None:  # the worker died in the middle of the job (crash, out-of-memory kill)
                self.dead = True
                try:
                    code = self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.kill()
                    code = self.process.returncode
                stderr_text = self._stderr_since(mark)
                tail = stderr_text.strip().splitlines()[-1:] or [""]
                message = (f"the backend stopped unexpectedly (exit code {code})"
                           + (f": {tail[0]}" if tail[0] else ""))
                if events.error is not None:
                    return events.outcome(code if code else 1, stderr_text)
                raise BackendError(message, kind="crashed", exit_code=code, stderr=stderr_text)
            last_activity = time.monotonic()
            event = _parse_event(line)
            if event.get("event") == "exit" and event.get("id") == ident:
                if event.get("retire"):
                    self.close()
                return events.outcome(int(event.get("code", 1)), self._stderr_since(mark))
            events.take(event, on_event)


_pool: dict[tuple[str, str], _Worker] = {}
_pool_lock = threading.Lock()


def _run_pooled(argv: list[str], python: str, root: Path, on_event: EventCallback | None,
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
