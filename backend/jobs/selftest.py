"""``selftest``: a tiny command that exercises the event protocol (progress, log, failure, wait).

Used by the plugin's process-client tests and handy for checking an installation.
"""

from __future__ import annotations

import argparse
import time

from backend.errors import UserError
from backend.events import Reporter


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("selftest", parents=[common],
                                   help="exercise the event protocol (for installation checks)")
    parser.add_argument("--steps", type=int, default=5, help="progress steps to report")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds to sleep per step")
    parser.add_argument("--fail", action="store_true", help="end with a bad-input error")
    parser.add_argument("--silent-sleep", type=float, default=0.0,
                        help="sleep this long without any event except heartbeats")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    reporter.log("selftest starting")
    for _ in reporter.track(range(args.steps), description="selftest steps"):
        time.sleep(args.sleep)
    if args.silent_sleep:
        time.sleep(args.silent_sleep)
    if args.fail:
        raise UserError("selftest asked to fail")
    reporter.result({}, {"steps": args.steps})
