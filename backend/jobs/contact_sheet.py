"""``contact-sheet``: one PNG with the input and every result raster of a run, styled."""

from __future__ import annotations

import argparse

from backend.events import Reporter


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("contact-sheet", parents=[common],
                                   help="draw result rasters side by side into one PNG")
    parser.add_argument("--panel", action="append", required=True, metavar="TITLE=PATH[:BANDS]",
                        help="a raster to draw; BANDS (1-based, e.g. 4,3,2) are shown as RGB. Class "
                             "maps use the colours and names of their .qml sidecar (repeatable)")
    parser.add_argument("--title", default="", help="a title over the sheet")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from pathlib import Path

    from backend.reports.contact_sheet import parse_panel, render

    panels = [parse_panel(spec) for spec in args.panel]
    out = render(panels, Path(args.out), args.title)
    reporter.result({"contact_sheet": str(out)}, {"panels": len(panels)})
