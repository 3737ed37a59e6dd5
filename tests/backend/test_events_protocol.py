"""The event protocol (``backend/contract/protocol.py``): runs write declared events, one decoder reads them.

Real ``python -m backend`` processes: every line a run writes decodes to a declared event with declared
fields, bad input ends with a declared error kind and its exit code; every error kind the code names is
declared (read with ``ast``).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from backend.contract.protocol import (
    ERROR,
    ERROR_KINDS,
    EVENT_FIELDS,
    LOG,
    RESULT,
    ExitCode,
    decode_event,
    event,
)
from backend.errors import Cancelled, EnvironmentFault, UserError
from tests.backend.conftest import run_json
from tests.conftest import REPO_ROOT


def _declared(line: str) -> dict:
    """The event of one stdout line, checked against the declaration."""
    decoded = decode_event(line)
    assert decoded["event"] in EVENT_FIELDS, line
    assert set(decoded) - {"event"} <= set(EVENT_FIELDS[decoded["event"]]), line
    return decoded


def test_a_run_writes_only_declared_events(tmp_path: Path) -> None:
    raster = tmp_path / "classes.tif"
    with rasterio.open(raster, "w", driver="GTiff", width=16, height=16, count=1, dtype="uint8", nodata=0,
                       crs="EPSG:32630", transform=from_origin(500000, 4200000, 80, 80)) as dst:
        dst.write(np.repeat(np.arange(1, 3, dtype=np.uint8), 128).reshape(1, 16, 16))
    done = run_json("vectorise", "--raster", raster, "--out", tmp_path / "polygons.gpkg")
    assert done.returncode == ExitCode.DONE, done.stderr[-2000:]
    events = [_declared(line) for line in done.stdout.splitlines()]
    assert {"progress", RESULT} <= {e["event"] for e in events}
    assert events[-1]["event"] == RESULT and "polygons" in json.dumps(events[-1]["outputs"])


def test_bad_input_ends_with_a_declared_error_and_its_exit_code(tmp_path: Path) -> None:
    done = run_json("vectorise", "--raster", tmp_path / "missing.tif", "--out", tmp_path / "polygons.gpkg")
    assert done.returncode == ExitCode.BAD_INPUT == UserError.exit_code
    last = _declared(done.stdout.splitlines()[-1])
    assert last["event"] == ERROR and last["kind"] == "bad_input" and "missing.tif" in last["message"]


def test_exception_classes_take_their_exit_codes_from_the_protocol() -> None:
    assert (UserError.exit_code, EnvironmentFault.exit_code, Cancelled.exit_code) == (2, 3, 130)
    assert UserError("x").kind in ERROR_KINDS and EnvironmentFault("x").kind in ERROR_KINDS


@pytest.mark.parametrize(("line", "expected"), [
    ('{"event": "progress", "fraction": 0.5, "message": "tiles"}\n',
     {"event": "progress", "fraction": 0.5, "message": "tiles"}),
    (b'{"event": "heartbeat", "time": 1.0}\n', {"event": "heartbeat", "time": 1.0}),
    ("GDAL: warning 1\n", {"event": LOG, "level": "info", "message": "GDAL: warning 1"}),
    ('{"not": "an event"}', {"event": LOG, "level": "info", "message": '{"not": "an event"}'}),
    ('{"event": "log", "mess', {"event": LOG, "level": "info", "message": '{"event": "log", "mess'}),
    ("[" * 100_000, {"event": LOG, "level": "info", "message": "[" * 100_000}),
    ("{" + "[" * 100_000, {"event": LOG, "level": "info", "message": "{" + "[" * 100_000}),
])
def test_decode_event_reads_events_and_turns_anything_else_into_a_log_line(line, expected) -> None:
    assert decode_event(line) == expected


def test_event_refuses_what_the_protocol_does_not_declare() -> None:
    assert event(ERROR, kind="bad_input", message="m") == {"event": "error", "kind": "bad_input",
                                                           "message": "m"}
    with pytest.raises(ValueError):
        event("finished", code=0)
    with pytest.raises(ValueError):
        event(RESULT, outputs={}, extra=1)


def _named_kinds(path: Path) -> list[tuple[int, str]]:
    """``kind="..."`` given to an error (``UserError``, ``reporter.error``) or in an error-event dict."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if callee.endswith(("Error", "Fault", "Cancelled", "Failed", "error")) or callee == "event":
                found += [(node.lineno, k.value.value) for k in node.keywords
                          if k.arg == "kind" and isinstance(k.value, ast.Constant)]
        elif isinstance(node, ast.Dict):
            found += [(node.lineno, v.value) for k, v in zip(node.keys, node.values)
                      if isinstance(k, ast.Constant) and k.value == "kind" and isinstance(v, ast.Constant)]
    return found


def test_every_error_kind_the_code_names_is_declared() -> None:
    files = [path for folder in ("backend", "plugin") for path in sorted((REPO_ROOT / folder).rglob("*.py"))
             if path.name != "protocol.py"]
    named = {(str(path.relative_to(REPO_ROOT)), line, kind)
             for path in files for line, kind in _named_kinds(path)}
    assert len(named) > 20  # the walk finds them (download, verification, corrupt_checkpoint, ...)
    assert [item for item in sorted(named) if item[2] not in ERROR_KINDS] == []
