"""``embed``: per-patch embedding GeoTIFF (8x8 px patches) and a PCA colour preview of a raster area.

    python -m backend embed --optical S2.tif [--sar S1.tif] [--model M.safetensors] --out emb.tif

Outputs ``{"embeddings": emb.tif, "preview": emb_pca.tif}``; stats include ``cache_hit``.

Many scenes (``--optical`` repeated, a folder or a list file; ``--out mosaic.vrt``): see
``backend.inference.scene_embed``. Under ``torchrun`` the work is shared by the ranks (rows of one
raster, or scenes): see ``backend.inference.distributed_embed``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.errors import UserError
from backend.events import Reporter
from backend.inference.resolve import InputOptions, embed_into_cache
from backend.io.atomic import copy_atomic
from backend.jobs._inputs import add_input_arguments


class _SceneAction(argparse.Action):
    """``--optical`` that may be repeated: the last value in ``optical``, all in ``optical_scenes``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        namespace.optical_scenes = [*(getattr(namespace, "optical_scenes", None) or []), values]
        setattr(namespace, self.dest, values)


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("embed", parents=[common], conflict_handler="resolve",
                                   help="write a per-patch embedding GeoTIFF and its PCA preview")
    add_input_arguments(parser, embeddings=False)
    scenes = parser.add_argument_group("many scenes")
    scenes.add_argument("--optical", metavar="PATH", action=_SceneAction,
                        help="optical (Sentinel-2) raster; repeat it, or give a folder of rasters or a "
                             "list file (.txt, one path a line), to embed many scenes into a VRT mosaic "
                             "(--out mosaic.vrt)")
    parser.set_defaults(optical_scenes=None)
    parser.add_argument("--out", required=True, metavar="PATH",
                        help="embedding GeoTIFF to write (a .vrt mosaic for many scenes)")
    parser.add_argument("--preview-out", metavar="PATH",
                        help="PCA colour preview GeoTIFF (default: <out>_pca.tif)")
    parser.set_defaults(run=run)


def preview_path_for(out: Path) -> Path:
    from backend.contract.outputs import default_output

    return default_output(out, "preview")


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.inference.scene_embed import is_many
    from backend.io.outputs import check_outputs

    out = Path(args.out).expanduser()
    options = InputOptions.from_args(args)
    if is_many(args.optical_scenes):
        from backend.inference.scene_embed import run_scenes

        preview_out = Path(args.preview_out).expanduser() if args.preview_out else None
        run_scenes(args.optical_scenes, options, reporter, out, preview_out,
                   check=lambda named: check_outputs(args, named))
        return
    preview = Path(args.preview_out).expanduser() if args.preview_out else preview_path_for(out)
    if out.resolve() == preview.resolve():
        raise UserError("--out and --preview-out must be different files")
    check_outputs(args, {"--out": out, "--preview-out": preview})

    def job(compute: Callable[..., dict[str, Any]] | None = None) -> None:
        entry, stats = embed_into_cache(options, reporter, start=0.0, end=0.95,
                                        copies_to=[out.absolute().parent], compute=compute)
        copy_atomic(entry.embeddings, out)
        copy_atomic(entry.preview, preview)
        reporter.progress(1.0, "done")
        reporter.result({"embeddings": str(out), "preview": str(preview)}, stats)

    from backend.inference import distributed_embed

    if distributed_embed.launched():  # torchrun: rows of tiles shared by the ranks, rank 0 writes
        distributed_embed.run_ranks(options, reporter, job, out.absolute().parent)
    else:
        job()
