"""Missing test data: skipped on a workstation, one clear failure for the whole run under CI (issue 22)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PROBE = '''
import pytest

def test_reads_the_shared_data(shared_data):
    assert shared_data.is_dir()

@pytest.mark.needs("{missing_file}")
def test_reads_a_missing_file():
    pass

def test_needs_nothing():
    pass
'''


def run_probe(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    """Run a three-test file with this repository's conftest, the shared data pointed at nothing."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE.format(missing_file=tmp_path / "no-model.pt"), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.update(TERRAPROBE_SHARED_DATA=str(tmp_path / "no-data"), **({"CI": "true"} if ci else {}))
    plugins = ["-p", "tests.conftest", "-p", "no:cacheprovider", "-p", "no:pytest_qgis"]
    return subprocess.run([sys.executable, "-m", "pytest", *plugins, "-c", str(REPO_ROOT / "pyproject.toml"),
                           "--rootdir", str(tmp_path), "-q", "-rs", str(probe)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("ci", "exit_code", "expected", "absent"), [
    (False, pytest.ExitCode.OK, ["1 passed, 2 skipped", "test data not found: {data}",
                                 "test data not found: {model}"], []),
    (True, pytest.ExitCode.USAGE_ERROR, ["error: CI=true but the test data is missing",
                                         "{data} (1 selected tests need it)",
                                         "{model} (1 selected tests need it)"], ["passed", "skipped"]),
], ids=["workstation-skips", "ci-stops-the-run"])
def test_missing_data(tmp_path: Path, ci: bool, exit_code: int, expected: list[str],
                      absent: list[str]) -> None:
    done = run_probe(tmp_path, ci)
    assert done.returncode == exit_code, done.stdout + done.stderr
    paths = {"data": tmp_path / "no-data", "model": tmp_path / "no-model.pt"}
    for line in expected:
        assert line.format(**paths) in done.stdout, done.stdout
    for word in absent:
        assert word not in done.stdout, done.stdout
