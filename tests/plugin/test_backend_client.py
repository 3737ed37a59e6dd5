"""The plugin's process client against the real backend (``python -m backend selftest``)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from plugin.backend_client import run_backend
from plugin.interpreter import BackendNotFound, find_backend_python, setup_instructions, venv_python
from plugin.process_client import BackendCancelled, BackendError, run_command

from ..conftest import backend_python


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_json_stream_is_parsed_into_progress_logs_and_result():
    events: list[dict] = []
    result = run_backend(["selftest", "--steps", "4"], on_event=events.append, python=backend_python())
    fractions = [e["fraction"] for e in events if e["event"] == "progress"]
    assert fractions == [0.25, 0.5, 0.75, 1.0]
    assert result.stats == {"steps": 4}
    assert result.outputs == {}
    assert result.exit_code == 0
    assert "selftest starting" in result.logs
    assert events[-1]["event"] == "result"


def test_failing_command_raises_clear_error_with_exit_code():
    with pytest.raises(BackendError) as info:
        run_backend(["selftest", "--steps", "1", "--fail"], python=backend_python())
    error = info.value
    assert not isinstance(error, BackendCancelled)
    assert error.message == "selftest asked to fail"
    assert error.kind == "bad_input"
    assert error.exit_code == 2
    assert "exit code: 2" in error.details()


def test_unknown_option_surfaces_argparse_message():
    with pytest.raises(BackendError) as info:
        run_backend(["selftest", "--no-such-option"], python=backend_python())
    assert info.value.exit_code == 2
    assert "--no-such-option" in info.value.message


def test_cancel_ends_a_silent_backend():
    pids: list[int] = []
    silent: list[dict] = []

    def on_event(event: dict) -> None:
        if event["event"] == "progress" and event["fraction"] == 1.0:
            silent.append(event)  # its steps are done: it sleeps 60 s without a word now

    with pytest.raises(BackendCancelled):
        run_backend(["selftest", "--steps", "1", "--silent-sleep", "60"], on_event=on_event,
                    is_canceled=lambda: bool(silent), python=backend_python(), on_start=pids.append)
    assert silent and not _pid_alive(pids[0])  # cancelled while silent, and the process is gone


def test_silent_backend_sending_heartbeats_is_not_killed():
    events: list[dict] = []
    result = run_backend(["selftest", "--steps", "1", "--silent-sleep", "4.5"], on_event=events.append,
                         python=backend_python(), heartbeat_timeout=3.0)
    assert result.stats == {"steps": 1}
    assert sum(e["event"] == "heartbeat" for e in events) >= 1


def test_stuck_process_is_killed_after_grace_period():
    pids: list[int] = []
    start = time.monotonic()
    with pytest.raises(BackendError) as info:
        run_command([sys.executable, "-c", "import time; time.sleep(60)"], heartbeat_timeout=1.0,
                    on_start=pids.append)
    elapsed = time.monotonic() - start
    assert info.value.kind == "unresponsive"
    assert "stopped responding" in info.value.message
    assert elapsed >= 1.0  # not before its heartbeat timeout; killed, not left to sleep (the pid is gone)
    assert not _pid_alive(pids[0])


def test_crash_without_error_event_reports_exit_code_and_stderr():
    with pytest.raises(BackendError) as info:
        run_command([sys.executable, "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"])
    assert info.value.exit_code == 3
    assert info.value.kind == "crashed"
    assert "boom" in info.value.message


def test_find_backend_python_order(tmp_path: Path):
    configured = tmp_path / "python"
    configured.write_text("")
    assert find_backend_python(str(configured), root=tmp_path) == str(configured)
    with pytest.raises(BackendNotFound, match="does not exist"):
        find_backend_python(str(tmp_path / "missing"), root=tmp_path)
    venv = venv_python(tmp_path)
    venv.parent.mkdir(parents=True)
    venv.write_text("")
    assert find_backend_python(None, root=tmp_path) == str(venv)


def test_no_interpreter_gives_instructions_not_torch_in_qgis(tmp_path: Path):
    with pytest.raises(BackendNotFound) as info:
        find_backend_python(None, root=tmp_path, allow_host=False)
    text = str(info.value)
    assert "scripts/setup.sh" in text and "requirements.txt" in text
    assert "pip install torch" not in setup_instructions(tmp_path)
