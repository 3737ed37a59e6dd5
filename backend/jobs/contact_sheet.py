"""``contact-sheet``: one PNG with the input and every result raster of a run, styled."""

from __future__ import annotations

import argparse

from backend.events import Reporter


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from pathlib import Path

    from backend.reports.contact_sheet import parse_panel, render

    panels = [parse_panel(spec) for spec in args.panel]
    out = render(panels, Path(args.out), args.title)
    reporter.result({"contact_sheet": str(out)}, {"panels": len(panels)})
