"""``embed``: per-patch embedding GeoTIFF (8x8 px patches) and a PCA colour preview of a raster area.

    python -m backend embed --optical S2.tif [--sar S1.tif] [--model M.safetensors] --out emb.tif

Outputs ``{"embeddings": emb.tif, "preview": emb_pca.tif}``; stats include ``cache_hit``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from backend.errors import UserError
from backend.events import Reporter
from backend.jobs._inputs import add_input_arguments


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("embed", parents=[common],
                                   help="write a per-patch embedding GeoTIFF and its PCA preview")
    add_input_arguments(parser, embeddings=False)
    parser.add_argument("--out", required=True, metavar="PATH", help="embedding GeoTIFF to write")
    parser.add_argument("--preview-out", metavar="PATH",
                        help="PCA colour preview GeoTIFF (default: <out>_pca.tif)")
    parser.set_defaults(run=run)


def preview_path_for(out: Path) -> Path:
    return out.with_name(f"{out.stem}_pca.tif")


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.jobs._inputs import copy_atomic, embed_into_cache

    out = Path(args.out).expanduser()
    preview = Path(args.preview_out).expanduser() if args.preview_out else preview_path_for(out)
    if out.resolve() == preview.resolve():
        raise UserError("--out and --preview-out must be different files")
    from backend.io.outputs import check_outputs

    check_outputs(args, {"--out": out, "--preview-out": preview})
    entry, stats = embed_into_cache(args, reporter, start=0.0, end=0.95)
    copy_atomic(entry.embeddings, out)
    copy_atomic(entry.preview, preview)
    reporter.progress(1.0, "done")
    reporter.result({"embeddings": str(out), "preview": str(preview)}, stats)
