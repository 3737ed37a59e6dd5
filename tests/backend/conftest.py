"""The backend command line as the tests run it: ``python -m backend`` in a real process, and its events.

Every backend test that runs the command line goes through :func:`run_backend` (run to the end; with
JSON events :func:`run_json`, :func:`run_events`) or :func:`start_backend` (stream while it runs): each
starts :func:`backend_command` from the repository root with this environment plus ``env``.
:func:`events_of`, :func:`result_of` and :func:`error_of` read the ``--events json`` stream;
:func:`read_events_until` waits for the event that shows a run reached a point (not a fixed time).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from tests.conftest import REPO_ROOT, backend_python

#: For torch-heavy runs: one OpenMP thread each, as the 2-core CI machine is shared.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}

#: Variables set over this process's environment for one run (``None`` removes one).
Environment = Optional[Mapping[str, Optional[str]]]


def backend_command(*args: object, events: bool = False, launcher: Sequence[str] = ()) -> list[str]:
    """``python -m backend ARGS`` (``--events json`` last with ``events``); ``launcher`` replaces the
    interpreter (torchrun, or a parent process that wraps the run)."""
    return [*(launcher or [backend_python()]), "-m", "backend", *map(str, args),
            *(["--events", "json"] if events else [])]


def _environment(env: Environment) -> dict[str, str]:
    """This process's environment with ``env`` over it; a ``None`` value removes the variable."""
    merged: dict[str, str | None] = {**os.environ, **(env or {})}
    return {name: value for name, value in merged.items() if value is not None}


def run_backend(*args: object, events: bool = False, env: Environment = None,
                launcher: Sequence[str] = (), timeout: float = 300,
                **options: Any) -> subprocess.CompletedProcess[str]:
    """Run ``python -m backend ARGS`` to its end; stdout and stderr captured as text. ``options`` go to
    :func:`subprocess.run` (``input``, ``preexec_fn``)."""
    return subprocess.run(backend_command(*args, events=events, launcher=launcher), cwd=REPO_ROOT,
                          env=_environment(env), capture_output=True, text=True, timeout=timeout, **options)


def start_backend(*args: object, events: bool = False, env: Environment = None,
                  launcher: Sequence[str] = (), **options: Any) -> subprocess.Popen[str]:
    """Start ``python -m backend ARGS``, stdout and stderr piped as text unless ``options`` say otherwise."""
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **options}
    return subprocess.Popen(backend_command(*args, events=events, launcher=launcher), cwd=REPO_ROOT,
                            env=_environment(env), text=True, **options)


def run_json(*args: object, **options: Any) -> subprocess.CompletedProcess[str]:
    """:func:`run_backend` with ``--events json``."""
    return run_backend(*args, events=True, **options)


def run_events(*args: object, **options: Any) -> tuple[int, list[dict], str]:
    """``python -m backend ARGS --events json``: ``(exit code, events, stderr)``."""
    done = run_json(*args, **options)
    return done.returncode, events_of(done), done.stderr


def events_of(done: subprocess.CompletedProcess | str) -> list[dict]:
    """The JSON events a run printed (a finished process or its stdout); other lines are skipped."""
    stdout = done if isinstance(done, str) else done.stdout
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def result_of(done: subprocess.CompletedProcess) -> dict:
    """The result event of a successful run."""
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return next(e for e in events_of(done) if e.get("event") == "result")


def error_of(done: subprocess.CompletedProcess) -> str:
    """The one error message of a run that failed with exit status 2."""
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    errors = [e["message"] for e in events_of(done) if e.get("event") == "error"]
    assert len(errors) == 1, events_of(done)
    return errors[0]


def read_events_until(process: subprocess.Popen[str], reached: Callable[[dict], bool],
                      timeout: float = 180) -> list[dict]:
    """Read ``process``'s JSON events until one shows it ``reached`` a point; every event read, that one
    last. Fails when the process ends first; after ``timeout`` seconds it is killed (so the read ends)."""
    assert process.stdout is not None
    events: list[dict] = []
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        for line in iter(process.stdout.readline, ""):
            if line.startswith("{"):
                events.append(json.loads(line))
                if reached(events[-1]):
                    return events
    finally:
        watchdog.cancel()
    raise AssertionError(f"the backend ended (or ran past {timeout:.0f} s) before the awaited event; "
                         f"its last events: {events[-5:]}")


def torchrun(ranks: int) -> list[str]:
    """The launcher of ``ranks`` local processes (``torchrun --standalone``)."""
    script = Path(backend_python()).with_name("torchrun")
    launcher = [str(script)] if script.exists() else [backend_python(), "-m", "torch.distributed.run"]
    return [*launcher, "--standalone", "--nproc-per-node", str(ranks)]
