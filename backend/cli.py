"""Command line of the backend: ``python -m backend <command> [options]``.

The commands and their options are parsed by :mod:`backend.parser` (one module per command under
``backend/jobs``). Raise :class:`backend.errors.UserError` for bad input: it becomes one clear line
and exit 2.

Exit codes: 0 done, 2 bad input, 3 environment (disk full, permissions, read-only or failing
storage, damaged input files), 130 cancelled, 1 internal bug. Every run first refuses outputs
that would overwrite an input (:func:`backend.io.outputs.check_outputs`). Library chatter (GDAL,
PROJ, libtiff lines printed on stderr, libraries' Python warnings) is kept off the user's terminal: it is
recorded (write errors in it fail the write, see :mod:`backend.io.atomic`) and shown with
``--debug``, on an internal error, or on stderr in ``--events json`` mode. SIGTERM cancels a run
even while it is blocked inside a library call: after a grace period the temporaries are removed
and the process exits 130.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import logging
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

from backend.contract.protocol import CANCELLED, INTERNAL, OUT_OF_MEMORY, ExitCode
from backend.errors import Cancelled, EnvironmentFault, UserError, environment_fault
from backend.events import Reporter
from backend.parser import build_parser, check_ranges

GDAL_CACHE_MB = "128"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
#: Seconds a cancelled run may take to stop on its own before it is ended forcibly.
CANCEL_GRACE_SECONDS = 3.0


#: Set once SIGTERM/SIGINT arrived: whatever error follows (an interrupted read) is the cancellation.
_cancel_requested = threading.Event()
#: Set while a command runs (a re-delivered signal must not reach the interpreter's shutdown).
_running = threading.Event()


def _redeliver(signum: int) -> None:
    import _thread

    if _running.is_set():
        _thread.interrupt_main(signum)


def _raise_cancelled(signum: int, frame: Any) -> None:
    _cancel_requested.set()
    if frame is not None and frame.f_code.co_filename == logging.__file__:
        # Inside a log call made by a C library callback, which would swallow (and print) the
        # exception: deliver the signal again a moment later, back in ordinary Python code.
        timer = threading.Timer(0.05, _redeliver, args=(signum,))
        timer.daemon = True
        timer.start()
        return
    raise Cancelled(f"stopped by signal {signum}")


class _LibraryOutput:
    """Routes what C libraries print on fd 2, rasterio's log and libraries' warnings away from the user.

    Every line is recorded with :func:`backend.io.write_checks.note_message`. Lines pass through to the
    real stderr with ``--debug`` or in JSON mode; in human mode they are held and printed only
    before an internal error.
    """

    SENTINEL = b"\x00terraprobe-sync"

    def __init__(self, passthrough: bool, reporter: Reporter | None = None) -> None:
        self.passthrough = passthrough
        self.reporter = reporter
        self.held: list[str] = []
        self.real: int | None = None
        self._saved_stderr = sys.stderr
        self._thread: threading.Thread | None = None
        self._synced = threading.Event()
        self._sync_lock = threading.Lock()
        self._handler: logging.Handler | None = None
        self._saved_loggers: dict[str, tuple[int, bool]] = {}

    def start(self) -> None:
        from backend.io import write_checks

        handler = _MessageHandler(self)
        for name in ("rasterio",):
            logger = logging.getLogger(name)
            self._saved_loggers[name] = (logger.level, logger.propagate)
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        self._saved_showwarning = warnings.showwarning
        warnings.showwarning = self._showwarning
        self._handler = handler
        self._saved_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        if sys.stderr is not sys.__stderr__:  # called in-process with stderr captured (tests): leave fd 2
            return
        try:
            sys.stderr.flush()
            self.real = os.dup(2)
            read_end, write_end = os.pipe()
            os.dup2(write_end, 2)
            os.close(write_end)
        except (OSError, ValueError):
            self.real = None
            return
        encoding = getattr(self._saved_stderr, "encoding", None) or "utf-8"
        sys.stderr = io.TextIOWrapper(io.FileIO(self.real, "w", closefd=False), encoding=encoding,
                                      errors="backslashreplace", line_buffering=True, write_through=True)
        self._thread = threading.Thread(target=self._pump, args=(read_end,), name="stderr", daemon=True)
        self._thread.start()
        write_checks.set_message_sync(self.sync)

    def _showwarning(self, message: Warning | str, category: type[Warning], filename: str, lineno: int,
                     file: Any = None, line: str | None = None) -> None:
        """The backend's own warnings reach the user; a library's (torch, rasterio) are library lines.

        A library warning class (e.g. rasterio's ``NodataShadowWarning``) is attributed by its
        ``stacklevel`` to the backend line that called the library: it stays a library line.
        """
        library_class = category.__module__.split(".")[0] not in ("builtins", "backend")
        if (self.reporter is not None and not library_class
                and os.path.abspath(filename).startswith(_PACKAGE_DIR)):
            self.reporter.warning(str(message))
            return
        self.note(f"{category.__name__}: {message} ({filename}:{lineno})", echo=True)

    def _unraisable(self, info: Any) -> None:
        """An exception a library callback could not raise (e.g. a signal inside a GDAL log call)."""
        text = "".join(traceback.format_exception_only(info.exc_type, info.exc_value)).strip()
        self.note(f"exception ignored in {info.object!r}: {text}", echo=True)

    def _pump(self, read_end: int) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(read_end, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.startswith(self.SENTINEL):
                    self._synced.set()
                    continue
                self.note(line.decode("utf-8", "backslashreplace"), echo=True)
        os.close(read_end)

    def note(self, text: str, echo: bool) -> None:
        """Record one library line; echo it to the real stderr when passing through."""
        from backend.io.write_checks import note_message

        note_message(text)
        if not echo:
            return
        if self.passthrough and self.real is not None:
            os.write(self.real, (text + "\n").encode("utf-8", "backslashreplace"))
        elif not self.passthrough:
            self.held = [*self.held[-199:], text]

    def sync(self) -> None:
        """Wait (briefly) until every line already printed on fd 2 has been recorded."""
        if self._thread is None:
            return
        with self._sync_lock:
            self._synced.clear()
            try:
                os.write(2, self.SENTINEL + b"\n")
            except OSError:
                return
            self._synced.wait(1.0)

    def print_held(self) -> None:
        """Print the held lines (before an internal error, to help find its cause)."""
        self.sync()
        for line in self.held:
            print(line, file=sys.stderr, flush=True)
        self.held = []

    def stop(self) -> None:
        from backend.io import write_checks

        write_checks.set_message_sync(None)
        if self._handler is not None:
            for name, (level, propagate) in self._saved_loggers.items():
                logger = logging.getLogger(name)
                logger.removeHandler(self._handler)
                logger.setLevel(level)
                logger.propagate = propagate
            warnings.showwarning = self._saved_showwarning
            sys.unraisablehook = self._saved_hook
        if self.real is None:
            return
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(self.real, 2)  # closes the pipe's last write end: the pump sees EOF
        if self._thread is not None:
            self._thread.join(1.0)
        sys.stderr = self._saved_stderr
        os.close(self.real)
        self.real = None


class _MessageHandler(logging.Handler):
    """rasterio's GDAL messages as library lines."""

    def __init__(self, output: _LibraryOutput) -> None:
        super().__init__(logging.INFO)
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record must never break the run
            return
        self.output.note(f"{record.name}: {text}", echo=record.levelno >= logging.WARNING)


class _CancelWatchdog:
    """Ends a run that does not stop within a grace period after SIGTERM/SIGINT.

    Python runs signal handlers only between bytecodes, so a run blocked in a C call (a read from
    a stalled file) would ignore SIGTERM. The C-level handler still writes the signal number to a
    wakeup fd; this thread reads it, waits ``grace`` seconds for the normal cancellation, then
    removes the temporaries being written, reports the cancellation and exits with 130.
    """

    def __init__(self, reporter: Reporter, grace: float = CANCEL_GRACE_SECONDS) -> None:
        self.reporter, self.grace = reporter, grace
        self.finished = threading.Event()
        self._fds: tuple[int, int] | None = None
        self._previous = -1

    def start(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        read_end, write_end = os.pipe()
        try:  # Windows accepts only sockets here: no watchdog there
            os.set_blocking(write_end, False)
            self._previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        except (ValueError, OSError):
            os.close(read_end)
            os.close(write_end)
            return
        self._fds = (read_end, write_end)
        threading.Thread(target=self._watch, args=(read_end,), name="cancel-watchdog", daemon=True).start()

    def _watch(self, read_end: int) -> None:
        stops = {int(signal.SIGINT), int(getattr(signal, "SIGTERM", signal.SIGINT))}
        while not self.finished.is_set():
            try:
                data = os.read(read_end, 64)
            except OSError:
                return
            if self.finished.is_set() or not data:
                return
            if stops & set(data):
                _cancel_requested.set()
                if not self.finished.wait(self.grace):
                    self._force_exit()

    def _force_exit(self) -> None:
        from backend.io.atomic import active_temporaries

        for tmp in active_temporaries():
            for path in (tmp, f"{tmp}.aux.xml"):
                with contextlib.suppress(Exception):
                    os.unlink(path)
        with contextlib.suppress(Exception):
            self.reporter.error("cancelled; no output was written (stopped while blocked in a library call)",
                                kind=CANCELLED)
        os._exit(Cancelled.exit_code)

    def stop(self) -> None:
        self.finished.set()
        if self._fds is None:
            return
        with contextlib.suppress(Exception):
            signal.set_wakeup_fd(self._previous)
        with contextlib.suppress(Exception):
            os.write(self._fds[1], b"\0")  # wake the watcher so it sees ``finished``


def _read_fault(exc: BaseException, args: argparse.Namespace) -> EnvironmentFault | None:
    """A raster that failed to read part-way (truncated, damaged, failing storage), as one line."""
    errors = sys.modules.get("rasterio.errors")
    if errors is None or not isinstance(exc, errors.RasterioIOError) or "read failed" not in str(exc).lower():
        return None
    from backend.io.outputs import input_paths

    causes = [str(exc)]
    cause = exc.__cause__ or exc.__context__
    while cause is not None and len(causes) < 5:
        causes.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    text = " ".join(causes)
    named = next((str(path) for _, path in input_paths(args) if str(path) in text or path.name in text), None)
    detail = next((c for c in causes[1:] if c), "").splitlines()[0] if len(causes) > 1 else ""
    where = named or "an input raster"
    return EnvironmentFault(f"could not read {where}: the file is damaged or truncated"
                            + (f" ({detail})" if detail else "") + "; copy it again from its source")


def _torch_write_fault(exc: BaseException) -> EnvironmentFault | None:
    """torch.save's "PytorchStreamWriter failed writing file" (no errno, no path) as an environment fault."""
    text = str(exc)
    writer = "PytorchStreamWriter failed" in text or (
        "inline_container.cc" in text and "unexpected pos" in text)
    if not isinstance(exc, RuntimeError) or not writer:
        return None
    detail = text.splitlines()[0].split("] ")[-1].strip()
    return EnvironmentFault("could not write a checkpoint: the disk is full or a file size limit was "
                            f"reached ({detail})")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit code."""
    given = list(sys.argv[1:] if argv is None else argv)
    if given and given[0].split("=", 1)[0] in ("--remote", "--token-file"):  # on a job server, no torch here
        from backend.remote.client import run as run_remote

        return run_remote(given)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    # GDAL's block cache defaults to 5 % of RAM and would grow with the raster being streamed;
    # a fixed cap keeps the backend's memory bounded (override with the environment variable).
    os.environ.setdefault("GDAL_CACHEMAX", GDAL_CACHE_MB)
    debug = bool(args.debug or os.environ.get("TERRAPROBE_DEBUG"))
    reporter = Reporter(args.events)
    for note in getattr(args, "deprecations", ()):
        reporter.warning(note)
    library = _LibraryOutput(passthrough=debug or args.events == "json", reporter=reporter)
    library.start()
    watchdog = _CancelWatchdog(reporter)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _raise_cancelled)
    if hasattr(signal, "SIGXFSZ"):  # past ``ulimit -f`` a write must fail with EFBIG, not kill us silently
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _cancel_requested.clear()
    _running.set()
    watchdog.start()
    reporter.start_heartbeat()
    try:
        from backend.io.outputs import check_outputs

        check_ranges(args)
        check_outputs(args)
        args.run(args, reporter)
    except (Cancelled, KeyboardInterrupt):
        reporter.error("cancelled; no output was written", kind=CANCELLED)
        return Cancelled.exit_code
    except MemoryError:
        reporter.error("out of memory: try a smaller --window or --batch-size", kind=OUT_OF_MEMORY)
        return ExitCode.BUG
    except Exception as exc:
        if _cancel_requested.is_set():  # any error after the signal (an interrupted read) is the cancellation
            reporter.error("cancelled; no output was written", kind=CANCELLED)
            return Cancelled.exit_code
        if isinstance(exc, UserError):
            reporter.error(str(exc), kind=exc.kind)
            return exc.exit_code
        fault = environment_fault(exc) or _read_fault(exc, args) or _torch_write_fault(exc)
        if fault is not None:
            if debug:
                traceback.print_exc()
            reporter.error(str(fault), kind=fault.kind)
            return fault.exit_code
        library.print_held()
        if debug:
            traceback.print_exc()
        message = f"internal error: {type(exc).__name__}: {exc}"
        if not args.debug:
            message += " (run again with --debug for the traceback)"
        reporter.error(message, kind=INTERNAL)
        return ExitCode.BUG
    finally:
        _running.clear()
        reporter.stop_heartbeat()
        watchdog.stop()
        # A failed run's traceback holds reference cycles that keep abandoned generators (tqdm
        # bars) alive; finalise them while stderr is still ours, not after it is handed back.
        gc.collect()
        library.stop()
    return ExitCode.DONE
