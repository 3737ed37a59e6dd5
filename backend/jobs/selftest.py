"""``selftest``: a tiny command that exercises the event protocol (progress, log, failure, wait).

Used by the plugin's process-client tests and handy for checking an installation.
"""

from __future__ import annotations

import argparse
import time

from backend.errors import UserError
from backend.events import Reporter


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    reporter.log("selftest starting")
    for _ in reporter.track(range(args.steps), description="selftest steps"):
        time.sleep(args.sleep)
    if args.silent_sleep:
        time.sleep(args.silent_sleep)
    if args.fail:
        raise UserError("selftest asked to fail")
    reporter.result({}, {"steps": args.steps})
