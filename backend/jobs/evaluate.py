"""``evaluate``: cross-validated kNN / linear-probe / k-means scores of encoders on labelled patches.

Rows: raw per-band statistics, the same architecture with random weights, the bundled model,
and any ``--model`` given. Writes a Markdown table and a JSON file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from backend.events import Reporter


def add_parser(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "evaluate", parents=[common],
        help="kNN, linear-probe and k-means scores of encoders on a labelled patch folder")
    parser.add_argument("folder", help="labelled patches: FOLDER/<class>/<patch>.tif (e.g. eurosat-ms)")
    parser.add_argument("--model", action="append", default=[], metavar="PATH",
                        help="a model to evaluate besides the bundled one (repeatable)")
    parser.add_argument("--no-bundled", action="store_true", help="leave out the bundled model row")
    parser.add_argument("--bands", default=None,
                        help="1-based file band indices in model order, or 'eurosat' "
                             "(default: eurosat order for 13-band files)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    parser.add_argument("--neighbors", type=int, default=20, help="k of the cosine kNN (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-per-class", type=int, default=None,
                        help="use only the first N patches of each class (quick runs)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--out", default="evaluation",
                        help="output stem: writes STEM.md and STEM.json (default: evaluation)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    import numpy as np
    import rasterio

    from backend.errors import UserError
    from backend.evaluation.metrics import cross_validate
    from backend.evaluation.patches import (
        band_statistics_features,
        extract_features,
        parse_band_indices,
        scan_patch_folder,
    )
    from backend.paths import bundled_model

    if args.folds < 2:
        raise UserError("--folds must be at least 2")
    folder = scan_patch_folder(args.folder, args.limit_per_class)
    counts = np.bincount(folder.labels)
    if counts.min() < args.folds:
        raise UserError(f"class {folder.classes[int(counts.argmin())]!r} has {counts.min()} patches, "
                        f"fewer than --folds {args.folds}")
    with rasterio.open(folder.files[0]) as first:
        bands = parse_band_indices(args.bands, first.count)
    reporter.log(f"{len(folder)} patches, {len(folder.classes)} classes, bands {bands}")

    models = [Path(p) for p in args.model]
    bundled = None if args.no_bundled else bundled_model()
    rows: list[tuple[str, Any]] = [("band statistics (mean, std)", None)]
    reference = bundled or (models[0] if models else None)
    if reference is not None:
        rows.append((f"random weights ({Path(reference).stem} architecture)", ("random", reference)))
    if bundled is not None:
        rows.append((f"bundled: {bundled.stem}", ("model", bundled)))
    rows += [(f"model: {p.name}", ("model", p)) for p in models]

    results: dict[str, Any] = {}
    span = 1.0 / len(rows)
    for index, (label, spec) in enumerate(rows):
        done = [0]

        def advance(n: int, index: int = index, done: list[int] = done, label: str = label) -> None:
            done[0] += n
            reporter.progress((index + 0.8 * done[0] / len(folder)) * span, f"{label}: features")

        featurize = band_statistics_features if spec is None else _encoder_featurizer(
            spec[1], random_init=spec[0] == "random", folder=folder, bands=bands, seed=args.seed,
            device=args.device, reporter=reporter)
        features = extract_features(folder, bands, featurize, args.batch_size, advance)
        scores = cross_validate(features, folder.labels, args.folds, args.seed, args.neighbors)
        results[label] = {"features": int(features.shape[1]), **scores.summary()}
        reporter.progress((index + 1) * span, f"{label}: scored")
        reporter.log(f"{label}: kNN {results[label]['knn_accuracy']['mean']:.3f}, "
                     f"linear {results[label]['linear_accuracy']['mean']:.3f}")

    report = {"folder": str(Path(args.folder).resolve()), "patches": len(folder),
              "classes": folder.classes, "folds": args.folds, "seed": args.seed,
              "neighbors": args.neighbors, "bands": bands, "rows": results}
    from backend.io.atomic import write_text_atomic

    md_path = write_text_atomic(f"{args.out}.md", markdown_table(report))
    json_path = write_text_atomic(f"{args.out}.json", json.dumps(report, indent=2) + "\n")
    if args.events == "human":
        print(markdown_table(report))
    reporter.result({"table": str(md_path), "json": str(json_path)}, {"rows": results})


def _encoder_featurizer(path: Path, random_init: bool, folder: Any, bands: list[int], seed: int,
                        device: str, reporter: Reporter):
    """Features of a CROMA optical encoder: the mean of its patch encodings (GAP)."""
    import numpy as np
    import torch

    from backend.models import build_model, load_encoder, normalize

    torch_device = torch.device("cuda" if device == "auto" and torch.cuda.is_available()
                                else ("cpu" if device == "auto" else device))
    model = load_encoder(path, device="cpu")
    if random_init:
        torch.manual_seed(seed)
        model = build_model(model.config)
    model = model.to(torch_device).eval()
    optical = model.config.modalities.get("optical")
    if optical is None:
        from backend.errors import UserError

        raise UserError(f"{path}: evaluate needs a model with an optical encoder")
    if optical.has_stats:
        mean, std = np.asarray(optical.mean, np.float32), np.asarray(optical.std, np.float32)
    else:
        from backend.evaluation.patches import iter_patch_batches

        sample = next(iter_patch_batches(folder.files[:: max(1, len(folder) // 64)], bands, 64))
        mean = sample.mean(axis=(0, 2, 3))
        std = sample.std(axis=(0, 2, 3))
        reporter.log(f"{path.name}: no band statistics in the model; using the patches' own")

    @torch.inference_mode()
    def featurize(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(normalize(batch, mean[:, None, None], std[:, None, None]))
        out = model(optical=x.to(torch_device))
        return out["optical_encodings"].float().mean(dim=1).cpu().numpy()

    return featurize


def markdown_table(report: dict[str, Any]) -> str:
    """The evaluation as a Markdown table of mean ± std over folds."""
    metrics = [("knn_accuracy", f"kNN acc (k={report['neighbors']})"),
               ("linear_accuracy", "linear probe acc"), ("kmeans_nmi", "k-means NMI"),
               ("kmeans_ari", "k-means ARI"), ("kmeans_purity", "k-means purity")]
    lines = [f"{report['patches']} patches, {len(report['classes'])} classes, "
             f"{report['folds']}-fold stratified CV, seed {report['seed']}", "",
             "| features | " + " | ".join(title for _, title in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    for label, row in report["rows"].items():
        cells = [f"{row[key]['mean']:.3f} ± {row[key]['std']:.3f}" for key, _ in metrics]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
