"""Command line of the backend: ``python -m backend <command> [options]``.

Each command lives in its own module under ``backend/jobs`` and exposes
``add_parser(subparsers, common)``, which registers ``run(args, reporter)`` as the handler.
Job modules keep heavy imports (torch, rasterio) inside ``run`` so ``--help`` stays instant.
Raise :class:`backend.errors.UserError` for bad input: it becomes one clear line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys
import traceback
from collections.abc import Sequence

from backend import __version__
from backend.errors import Cancelled, UserError
from backend.events import Reporter

GDAL_CACHE_MB = "128"


def command_modules() -> list[str]:
    """Every module in ``backend.jobs`` that defines a command, in alphabetical order."""
    import backend.jobs

    return sorted(f"backend.jobs.{info.name}" for info in pkgutil.iter_modules(backend.jobs.__path__)
                  if not info.name.startswith("_"))


def _common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--events", choices=("human", "json"), default="human",
                        help="human progress bars on stderr, or JSON lines on stdout for the plugin")
    common.add_argument("--debug", action="store_true",
                        help="show full tracebacks for unexpected errors")
    return common


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog="python -m backend",
        description="Terraprobe backend: CROMA / X-STARS encoders over rasters, "
                    "downstream maps and self-supervised pretraining.",
    )
    parser.add_argument("--version", action="version", version=f"terraprobe-backend {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common_parser()
    for name in command_modules():
        module = importlib.import_module(name)
        if hasattr(module, "add_parser"):
            module.add_parser(subparsers, common)
    return parser


def _raise_cancelled(signum: int, frame: object) -> None:
    raise Cancelled(f"stopped by signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    # GDAL's block cache defaults to 5 % of RAM and would grow with the raster being streamed;
    # a fixed cap keeps the backend's memory bounded (override with the environment variable).
    os.environ.setdefault("GDAL_CACHEMAX", GDAL_CACHE_MB)
    reporter = Reporter(args.events)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _raise_cancelled)
    reporter.start_heartbeat()
    try:
        args.run(args, reporter)
    except UserError as exc:
        reporter.error(str(exc), kind=exc.kind)
        return exc.exit_code
    except (Cancelled, KeyboardInterrupt):
        reporter.error("cancelled; no output was written", kind="cancelled")
        return Cancelled.exit_code
    except MemoryError:
        reporter.error("out of memory: try a smaller --window or --batch-size", kind="out_of_memory")
        return 1
    except Exception as exc:
        if args.debug or os.environ.get("TERRAPROBE_DEBUG"):
            traceback.print_exc()
        message = f"internal error: {type(exc).__name__}: {exc}"
        if not args.debug:
            message += " (run again with --debug for the traceback)"
        reporter.error(message, kind="internal")
        return 1
    finally:
        reporter.stop_heartbeat()
    return 0
