"""The argparse parser of ``python -m backend``: one subcommand per module under ``backend/jobs``.

Each command lives in its own module under ``backend/jobs`` and exposes
``add_parser(subparsers, common)``, which registers ``run(args, reporter)`` as the handler.
Job modules keep heavy imports (torch, rasterio) inside ``run`` so ``--help`` stays instant.
Kept apart from :mod:`backend.cli` so the remote client can parse an argv locally without importing
the module that dispatches to it.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

from backend import __version__


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
    parser.add_argument("--remote", metavar="URL", help="run the command on a job server (docs/remote.md)")
    parser.add_argument("--token-file", metavar="FILE", help="with --remote: the server's token file")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common_parser()
    for name in command_modules():
        module = importlib.import_module(name)
        if hasattr(module, "add_parser"):
            module.add_parser(subparsers, common)
    return parser
