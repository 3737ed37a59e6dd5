"""Progress, log, result and error reporting for CLI users and for the QGIS plugin.

Two renderings of the same events:

* ``human``: tqdm progress bars and log lines on stderr, for people at a terminal.
* ``json``: one JSON object per line on stdout, the events of :mod:`backend.contract.protocol`, read
  by the plugin's process client. A background thread sends a ``heartbeat`` every few seconds so
  the client can tell a busy backend from a stuck one.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

from backend.contract import protocol

T = TypeVar("T")


class Reporter:
    """Sends events in ``human`` or ``json`` form.

    Args:
        mode: ``"human"`` or ``"json"``.
        stream: where JSON lines go (stdout by default).
    """

    def __init__(self, mode: str = "human", stream: TextIO | None = None) -> None:
        if mode not in ("human", "json"):
            raise ValueError(f"unknown events mode {mode!r}")
        self.mode = mode
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._heartbeat_stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._last_fraction = -1.0
        self._bars: list[Any] = []  # open progress bars (human mode), closed before an error line

    # -- plumbing -----------------------------------------------------------------------------
    def _emit(self, event: dict[str, Any]) -> None:
        line = json.dumps(json_safe(event), allow_nan=False)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def start_heartbeat(self, interval: float = protocol.HEARTBEAT_SECONDS) -> None:
        """Start the background heartbeat (JSON mode only)."""
        if self.mode != "json" or self._heartbeat is not None:
            return

        def beat() -> None:
            while not self._heartbeat_stop.wait(interval):
                self._emit(protocol.event(protocol.HEARTBEAT, time=time.time()))

        self._heartbeat = threading.Thread(target=beat, name="heartbeat", daemon=True)
        self._heartbeat.start()

    def stop_heartbeat(self) -> None:
        self._heartbeat_stop.set()

    # -- events -------------------------------------------------------------------------------
    def log(self, message: str, level: str = "info") -> None:
        """A log line for the analyst (stderr for humans, a ``log`` event in JSON)."""
        if self.mode == "json":
            self._emit(protocol.event(protocol.LOG, level=level, message=message))
        else:
            prefix = "" if level == "info" else f"{level}: "
            print(f"{prefix}{message}", file=sys.stderr, flush=True)

    def warning(self, message: str) -> None:
        """Something the analyst must see (``warning: ...`` on stderr, a ``warning`` event in JSON)."""
        if self.mode == "json":
            self._emit(protocol.event(protocol.WARNING, message=message))
        else:
            print(f"warning: {message}", file=sys.stderr, flush=True)

    def progress(self, fraction: float, message: str = "") -> None:
        """Overall progress in [0, 1]; in JSON mode throttled to steps of 0.5 %."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self.mode == "json" and (fraction - self._last_fraction >= 0.005 or fraction >= 1.0):
            self._last_fraction = fraction
            self._emit(protocol.event(protocol.PROGRESS, fraction=round(fraction, 4), message=message))

    def track(
        self,
        items: Iterable[T],
        total: int | None = None,
        description: str = "",
        start: float = 0.0,
        end: float = 1.0,
        unit: str = "it",
    ) -> Iterator[T]:
        """Iterate ``items`` with a progress bar (human) or progress events (json).

        ``start`` and ``end`` map this loop onto a part of the whole job's progress.
        """
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        if self.mode == "human":
            from tqdm import tqdm

            bar = tqdm(items, total=total, desc=description, unit=unit, file=sys.stderr,
                       dynamic_ncols=True, leave=True)
            self._bars.append(bar)
            try:
                yield from bar
            finally:
                bar.close()
                with contextlib.suppress(ValueError):
                    self._bars.remove(bar)
            return
        for count, item in enumerate(items, start=1):
            yield item
            if total:
                self.progress(start + (end - start) * count / total, f"{description} {count}/{total}")

    def result(self, outputs: dict[str, Any], stats: dict[str, Any] | None = None) -> None:
        """The final ``result`` event (JSON) or a summary of the written files (human)."""
        self.stop_heartbeat()
        if self.mode == "json":
            self._emit(protocol.event(protocol.RESULT, outputs=outputs, stats=stats or {}))
            return
        for name, path in outputs.items():
            print(f"{name}: {path}", file=sys.stderr, flush=True)
        for name, value in (stats or {}).items():
            if not isinstance(value, (dict, list)):
                print(f"{name}: {value}", file=sys.stderr, flush=True)

    def error(self, message: str, kind: str = protocol.BAD_INPUT) -> None:
        """The one ``error`` event of a failed run."""
        self.stop_heartbeat()
        if self.mode == "json":
            self._emit(protocol.event(protocol.ERROR, kind=kind, message=message))
        else:
            for bar in list(self._bars):  # the loop a failure left: its bar ends above the error
                with contextlib.suppress(Exception):
                    bar.close()
            print(f"error: {message}", file=sys.stderr, flush=True)


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` (JSON has neither), numpy values and paths plain."""
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, dict):
        return {k if isinstance(k, (str, int, float, bool)) or k is None else str(k): json_safe(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    if hasattr(value, "__fspath__"):
        return str(value)
    return value
