"""``bench NAME``: speed and memory benchmarks, each a module in ``backend/bench``.

Benchmarks compare against a reference in the same run and print ratios; they are commands,
not timed tests. Each module exposes ``add_arguments(parser)`` and ``run(args, reporter)``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

from backend.events import Reporter


def _bench_modules() -> list[str]:
    import backend.bench

    return sorted(info.name for info in pkgutil.iter_modules(backend.bench.__path__)
                  if not info.name.startswith("_"))


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("bench", parents=[common], help="run a benchmark")
    benches = parser.add_subparsers(dest="bench", metavar="NAME", required=True)
    for name in _bench_modules():
        module = importlib.import_module(f"backend.bench.{name}")
        sub = benches.add_parser(name, parents=[common], help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    parser.set_defaults(run=None)


def run(args: argparse.Namespace, reporter: Reporter) -> None:  # pragma: no cover - replaced by sub
    raise SystemExit(2)
