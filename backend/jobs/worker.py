"""``worker``: a long-lived backend that runs one command per request, for the plugin (issue 12).

``python -m backend worker`` pre-imports torch, numpy, rasterio and the job modules once, then reads
one JSON request per line on stdin, ``{"id": N, "argv": [...]}``, runs ``argv`` in-process through
:func:`backend.cli.main` (the same events on stdout, error handling and exit codes as
``python -m backend ARGV``) and ends each request with ``{"event": "exit", "id": N, "code": C}``.
Every request starts from the state the worker had when it became idle: signal handlers, warnings
filters and hooks, the environment, the working folder, loggers, GDAL's environment, torch's
threads, default dtype, grad mode and random state are put back after each job.

The worker leaves (after the exit line, with ``"retire": true`` in it) after a cancelled job, after
``--max-jobs`` jobs or once its resident memory passes ``--max-rss-mb``; it also leaves when stdin
closes. An idle worker sends nothing. Cancelling means killing its process group (as for a plain run).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
import threading
import warnings
from typing import Any, TextIO

from backend.contract.protocol import ERROR, EXIT, INTERNAL, ExitCode, event
from backend.events import Reporter

#: Modules imported at start-up so a request pays none of their import time.
PRELOAD = ("numpy", "torch", "rasterio", "rasterio.features", "rasterio.warp", "rasterio.windows",
           "backend.downstream.kmeans", "backend.downstream.classify", "backend.downstream.similarity",
           "backend.downstream.segmentation", "backend.downstream.change", "backend.downstream.raster",
           "backend.inference.cache", "backend.inference.model", "backend.inference.scene_embed")
DEFAULT_MAX_JOBS = 25
DEFAULT_MAX_RSS_MB = 3072
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGXFSZ") if hasattr(signal, name))


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    """Undo the per-run set-up :func:`backend.cli.main` made for this command, then serve requests."""
    _release_outer_run()
    code = serve(max_jobs=args.max_jobs, max_rss_mb=args.max_rss_mb)
    if code:
        raise SystemExit(code)


def _release_outer_run() -> None:
    """Hand fd 2, the signal handlers and the wakeup fd back: each request sets up its own."""
    from backend.io import write_checks

    owner = getattr(write_checks._message_sync, "__self__", None)  # the outer run's library-output router
    if owner is not None and hasattr(owner, "stop"):
        owner.stop()
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    for signum in _SIGNALS:
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, signal.SIG_IGN if signum == getattr(signal, "SIGXFSZ", None)
                          else signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    from backend import cli

    cli._running.clear()


def preload() -> None:
    """Import the heavy libraries and every job module (missing optional ones are skipped)."""
    from backend import cli
    from backend.contract.commands import leaf_commands

    os.environ.setdefault("GDAL_CACHEMAX", cli.GDAL_CACHE_MB)
    for name in PRELOAD:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    for _, command in leaf_commands():
        with contextlib.suppress(Exception):
            importlib.import_module(command.handler.split(":")[0])


def resident_mb() -> float:
    """This process's resident memory in MB (peak resident memory where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024
    except (ImportError, OSError):
        return 0.0


class _State:
    """The process-wide state a job may change, captured while idle and put back after each job."""

    def __init__(self) -> None:
        self.handlers = {signum: signal.getsignal(signum) for signum in _SIGNALS}
        self.filters = list(warnings.filters)
        self.showwarning = warnings.showwarning
        self.unraisablehook = sys.unraisablehook
        self.excepthook = sys.excepthook
        self.environ = dict(os.environ)
        self.cwd = os.getcwd()
        self.stdin, self.stdout, self.stderr = sys.stdin, sys.stdout, sys.stderr
        root = logging.getLogger()
        self.root = (root.level, list(root.handlers))
        self.loggers = {name: (logger.level, logger.propagate, list(logger.handlers))
                        for name, logger in logging.Logger.manager.loggerDict.items()
                        if isinstance(logger, logging.Logger)}
        self.torch = self._torch_state()
        numpy = sys.modules.get("numpy")
        self.numpy_errors = numpy.geterr() if numpy is not None else None

    @staticmethod
    def _torch_state() -> dict[str, Any] | None:
        torch = sys.modules.get("torch")
        if torch is None:
            return None
        return {"threads": torch.get_num_threads(), "dtype": torch.get_default_dtype(),
                "grad": torch.is_grad_enabled(), "rng": torch.random.get_rng_state(),
                "deterministic": torch.are_deterministic_algorithms_enabled()}

    def restore(self) -> None:
        for signum, handler in self.handlers.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)
        warnings.filters[:] = self.filters
        with contextlib.suppress(AttributeError):
            warnings._filters_mutated()  # type: ignore[attr-defined]
        warnings.showwarning = self.showwarning
        sys.unraisablehook, sys.excepthook = self.unraisablehook, self.excepthook
        for key in set(os.environ) - set(self.environ):
            del os.environ[key]
        for key, value in self.environ.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
        with contextlib.suppress(OSError):
            os.chdir(self.cwd)
        sys.stdin, sys.stdout, sys.stderr = self.stdin, self.stdout, self.stderr
        root = logging.getLogger()
        root.setLevel(self.root[0])
        root.handlers[:] = self.root[1]
        for name, logger in logging.Logger.manager.loggerDict.items():
            if isinstance(logger, logging.Logger) and name in self.loggers:
                logger.level, logger.propagate, handlers = self.loggers[name]
                logger.handlers[:] = handlers
        with contextlib.suppress(AttributeError):
            logging.Logger.manager._clear_cache()  # type: ignore[attr-defined]
        rasterio_env = sys.modules.get("rasterio.env")
        if rasterio_env is not None:
            with contextlib.suppress(Exception):
                while rasterio_env.hasenv():
                    rasterio_env.delenv()
        torch = sys.modules.get("torch")
        if torch is not None and self.torch is not None:
            torch.set_num_threads(self.torch["threads"])
            torch.set_default_dtype(self.torch["dtype"])
            torch.set_grad_enabled(self.torch["grad"])
            torch.random.set_rng_state(self.torch["rng"])
            torch.use_deterministic_algorithms(self.torch["deterministic"])
        numpy = sys.modules.get("numpy")
        if numpy is not None and self.numpy_errors is not None:
            numpy.seterr(**self.numpy_errors)


def _join_heartbeats() -> None:
    """Let a finished job's heartbeat thread end, so no heartbeat follows its exit line."""
    for thread in threading.enumerate():
        if thread.name == "heartbeat" and thread is not threading.current_thread():
            thread.join(0.5)


def run_request(argv: list[str], state: _State) -> int:
    """One request through :func:`backend.cli.main`; the process state is put back afterwards."""
    from backend import cli

    devnull = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - a job must not read the requests
    sys.stdin = devnull
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's usage errors (exit 2) and --help (exit 0)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BaseException as exc:  # a job must never take the worker down silently
        cancelled = isinstance(exc, KeyboardInterrupt) or cli._cancel_requested.is_set()
        code = ExitCode.CANCELLED if cancelled else ExitCode.BUG
    finally:
        _join_heartbeats()
        state.restore()
        devnull.close()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
    return int(code)


def serve(stdin: TextIO | None = None, max_jobs: int = DEFAULT_MAX_JOBS,
          max_rss_mb: float = DEFAULT_MAX_RSS_MB) -> int:
    """Serve requests until stdin closes or the worker retires; return the worker's exit code."""
    from backend import cli

    stdin = stdin or sys.stdin
    beats = Reporter("json")  # a slow start-up (torch on a cold disk) must not look stuck to the client
    beats.start_heartbeat()
    try:
        preload()
    finally:
        beats.stop_heartbeat()
        _join_heartbeats()
    state = _State()
    jobs = 0
    while True:
        try:
            line = stdin.readline()
        except (OSError, ValueError):
            return 0
        if not line:
            return 0
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            ident, argv = request.get("id"), [str(a) for a in request["argv"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            message = f"bad worker request: {line.strip()[:200]}"
            _emit(event(ERROR, kind=INTERNAL, message=message))
            _emit(event(EXIT, id=None, code=ExitCode.BUG))
            continue
        cli._cancel_requested.clear()
        code = run_request(argv, state)
        jobs += 1
        cancelled = code == ExitCode.CANCELLED or cli._cancel_requested.is_set()
        retire = cancelled or jobs >= max_jobs or resident_mb() > max_rss_mb
        _emit(event(EXIT, id=ident, code=code, **({"retire": True} if retire else {})))
        if retire:
            return 0


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":  # pragma: no cover - ``python -m backend.jobs.worker``
    raise SystemExit(serve())
