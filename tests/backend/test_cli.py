"""The backend command line: help, JSON events, clear errors, cancellation."""

from __future__ import annotations

import json

from tests.backend.conftest import run_backend


def test_help_lists_commands() -> None:
    proc = run_backend("--help")
    assert proc.returncode == 0
    assert "selftest" in proc.stdout and "version" in proc.stdout


def test_json_events_end_with_one_result() -> None:
    proc = run_backend("selftest", "--steps", "4", "--events", "json")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "result" and kinds.count("result") == 1
    fractions = [e["fraction"] for e in events if e["event"] == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_user_error_is_one_line_and_nonzero() -> None:
    proc = run_backend("selftest", "--fail")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "error: selftest asked to fail"
    assert "Traceback" not in proc.stderr


def test_version_reports_torch_and_device() -> None:
    proc = run_backend("version", "--events", "json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["event"] == "result"
    assert result["stats"]["torch"].startswith("2.")
    assert result["stats"]["default_device"] in ("cpu", "cuda")


def test_library_warning_class_raised_through_backend_code_stays_a_library_line() -> None:
    """rasterio's NodataShadowWarning (a 4-band uint8 raster with an alpha band and a nodata value)
    is attributed by its stacklevel to the backend line that opened the raster; it was printed as a
    'warning:' of the backend instead of being held as library chatter (shown with --debug)."""
    import os

    from rasterio.errors import NodataShadowWarning

    from backend.cli import _PACKAGE_DIR, _LibraryOutput

    seen: list[str] = []

    class Reporter:
        def warning(self, message: str) -> None:
            seen.append(message)

    library = _LibraryOutput(passthrough=False, reporter=Reporter())  # type: ignore[arg-type]
    inside = os.path.join(_PACKAGE_DIR, "io", "rasters.py")
    library._showwarning(NodataShadowWarning(), NodataShadowWarning, inside, 1)
    assert seen == []
    assert any("NodataShadowWarning" in line for line in library.held)
    library._showwarning(UserWarning("unreadable chip skipped"), UserWarning, inside, 1)
    assert seen == ["unreadable chip skipped"]
