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
