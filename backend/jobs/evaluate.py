"""``evaluate``: honest scores of encoders, on labelled patches or on one labelled scene.

Patch mode (``evaluate FOLDER``): stratified cross-validated kNN / linear-probe / random-forest /
k-means scores. Scene mode (``evaluate --scene S2.tif [--sar S1.tif] (--labels L.tif | --samples P)``):
spatial block cross-validation of the segmentation head and of patch classifiers (kNN and random
forest, each with and without band statistics; ``backend.evaluation.dense``).

Rows: raw band statistics, the same architecture with random weights, the bundled model, and any
``--model`` given (scene mode adds the majority-class baseline). Writes a Markdown table and JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from backend.events import Reporter


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    _check_mode(args)
    if args.scene:
        _run_dense(args, reporter)
    else:
        _run_patches(args, reporter)


def _check_mode(args: argparse.Namespace) -> None:
    """Exactly one of the two modes, with only its own inputs."""
    from backend.errors import UserError

    modes = "a labelled patch FOLDER (patch mode) or --scene S2.tif with --labels or --samples (scene mode)"
    if args.folder is not None and args.scene is not None:
        raise UserError(f"give either {modes}, not both")
    if args.folder is None and args.scene is None:
        raise UserError(f"give {modes}")
    if args.folder is not None:
        stray = [name for name, value in (("--sar", args.sar), ("--labels", args.labels),
                                          ("--samples", args.samples)) if value]
        radiometry = ("optical_units", "sar_units", "sensor", "spectral_fill")
        stray += [f"--{name.replace('_', '-')}" for name in radiometry if getattr(args, name) != "auto"]
        if stray:
            raise UserError(f"{', '.join(stray)} belong(s) to scene mode: give --scene instead of a FOLDER")
    elif (args.labels is None) == (args.samples is None):
        raise UserError("scene mode needs exactly one of --labels L.tif or --samples POLYGONS")
    if args.folds is None:
        args.folds = 5 if args.folder is not None else 4
    if args.batch_size is None:
        args.batch_size = 32 if args.folder is not None else 4


def _run_patches(args: argparse.Namespace, reporter: Reporter) -> None:
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

    folder = scan_patch_folder(args.folder, args.limit_per_class)
    counts = np.bincount(folder.labels)
    if counts.min() < args.folds:
        raise UserError(f"class {folder.classes[int(counts.argmin())]!r} has {counts.min()} patches, "
                        f"fewer than --folds {args.folds}")
    with rasterio.open(folder.files[0]) as first:
        bands = parse_band_indices(args.bands, first.count)
    reporter.log(f"{len(folder)} patches, {len(folder.classes)} classes, bands {bands}")

    from backend.inference.model import resolve_model_path

    models = [resolve_model_path(p) for p in args.model]
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
                     f"linear {results[label]['linear_accuracy']['mean']:.3f}, "
                     f"random forest {results[label]['rf_accuracy']['mean']:.3f}")

    report = {"folder": str(Path(args.folder).resolve()), "patches": len(folder),
              "classes": folder.classes, "folds": args.folds, "seed": args.seed,
              "neighbors": args.neighbors, "bands": bands, "rows": results}
    from backend.io.atomic import write_text_atomic

    md_path = write_text_atomic(f"{args.out}.md", markdown_table(report))
    json_path = write_text_atomic(f"{args.out}.json", json.dumps(report, indent=2) + "\n")
    if args.events == "human":
        print(markdown_table(report))
    reporter.result({"table": str(md_path), "json": str(json_path)}, {"rows": results})


def _run_dense(args: argparse.Namespace, reporter: Reporter) -> None:
    """Scene mode: spatial block cross-validation of the segmentation head and kNN labels."""
    import tempfile

    from backend.downstream.band_stats import write_band_statistics
    from backend.downstream.raster import pick_device
    from backend.downstream.segmentation import InputSetPixels, PolygonLabels, RasterLabels
    from backend.errors import UserError
    from backend.evaluation.dense import (
        DenseSetup,
        dense_markdown_table,
        majority_scores,
        make_split,
        score_embeddings,
        summarise_labels,
        training_majority,
    )
    from backend.inference.embed import check_tiling, compute_embeddings
    from backend.inference.inputs import InputSet
    from backend.inference.model import model_config, resolve_device, resolve_model_path
    from backend.io.atomic import write_text_atomic
    from backend.io.sensor_bands import check_sensor_options
    from backend.models import base_config
    from backend.paths import bundled_model

    check_tiling(args.window, args.overlap)
    check_sensor_options(args.sensor, args.spectral_fill)
    for option, value in (("--scene", args.scene), ("--sar", args.sar), ("--labels", args.labels)):
        if value and not Path(value).is_file():
            raise UserError(f"{option} file not found: {value}")
    device = resolve_device(args.device)
    models = [resolve_model_path(p) for p in args.model]
    bundled = None if args.no_bundled else bundled_model()
    reference = bundled or (models[0] if models else None)
    rows: list[tuple[str, str, Path | None]] = [("band statistics (mean, std)", "bands", reference)]
    if reference is not None:
        rows.append((f"random weights ({reference.stem} architecture)", "random", reference))
    if bundled is not None:
        rows.append((f"bundled: {bundled.stem}", "model", bundled))
    rows += [(f"model: {p.name}", "model", p) for p in models]
    if reference is None:
        reporter.warning("no bundled model and no --model: only the raw-bands baseline is scored")

    def open_scene(config: Any) -> InputSet:
        return InputSet(args.scene, args.sar, config, optical_bands=args.optical_bands,
                        sar_bands=args.sar_bands, bounds=args.bounds, bounds_crs=args.bounds_crs,
                        optical_units=args.optical_units, sar_units=args.sar_units,
                        sensor=None if args.sensor == "auto" else args.sensor,
                        spectral_fill=args.spectral_fill)

    bands_config = model_config(reference) if reference is not None else base_config()
    with open_scene(bands_config) as inputs:
        grid = InputSetPixels(inputs).grid
        facts = {"width": inputs.width, "height": inputs.height, "crs": str(inputs.crs),
                 "bounds": list(inputs.bounds)}
    if args.samples:
        from backend.downstream.options import read_samples

        samples = read_samples(args.samples, args.samples_layer, args.class_field)
        labels: Any = PolygonLabels(samples.to_crs(grid.crs), grid)
    else:
        labels = RasterLabels(args.labels, grid)
    try:
        if len(labels.classes) < 2:
            raise UserError(f"the labels have only one class ({labels.classes[0]!r}); evaluation needs two")
        patch_labels = summarise_labels(labels, grid.width, grid.height)
        split = make_split(patch_labels.labelled, args.block, args.buffer, args.folds, args.seed)
        setup = DenseSetup(labels, patch_labels, split, grid.width, grid.height, neighbors=args.neighbors,
                           steps=args.steps, seed=args.seed)
        reporter.log(f"{grid.width}x{grid.height} px, classes {', '.join(patch_labels.classes)}; "
                     f"{args.folds} folds of {split.blocks_per_fold} labelled {args.block} px blocks")
        results: dict[str, Any] = {}
        fold_counts: list[Any] = []
        span = 1.0 / len(rows)
        band_stats: Path | None = None
        with tempfile.TemporaryDirectory(prefix="terraprobe-evaluate-") as scratch:
            for index, (label, kind, path) in enumerate(rows):
                embeddings = Path(scratch) / f"row{index}.tif"
                with open_scene(bands_config if kind == "bands" else model_config(path)) as inputs:
                    model = None if kind == "bands" else _scene_encoder(path, kind == "random", inputs,
                                                                        device, args.seed)
                    if model is None:
                        dim = write_band_statistics(inputs, embeddings)
                    else:
                        dim = int(model.config.dim)
                        made = compute_embeddings(inputs, model, embeddings, None, window=args.window,
                                                  overlap=args.overlap, batch_size=args.batch_size,
                                                  device=device, reporter=reporter, start=index * span,
                                                  end=(index + 0.4) * span)
                        if made["degenerate"]:  # what evaluate measures: scored, and said
                            reporter.warning(f"{label}: the embeddings are degenerate ({made['degenerate']})")
                    del model

                    def scored(fold: int, index: int = index, label: str = label) -> None:
                        reporter.progress((index + 0.4 + 0.6 * (fold + 1) / args.folds) * span,
                                          f"{label}: fold {fold + 1}/{args.folds} scored")

                    scores, folds = score_embeddings(embeddings, InputSetPixels(inputs), setup,
                                                     pick_device(device), on_fold=scored,
                                                     band_stats=None if kind == "bands" else band_stats)
                if kind == "bands":
                    band_stats = embeddings  # kept: the "+ band stats" classifiers of the encoder rows
                else:
                    embeddings.unlink(missing_ok=True)
                fold_counts = fold_counts or folds
                results[label] = {"embedding_dim": dim, **scores.summary()}
                reporter.log(f"{label}: segmentation mIoU {results[label]['segmentation_miou']['mean']:.3f}, "
                             f"kNN mIoU {results[label]['knn_miou']['mean']:.3f}, random forest mIoU "
                             f"{results[label]['clf_forest_miou']['mean']:.3f}")
    finally:
        if isinstance(labels, RasterLabels):
            labels.close()

    baseline = majority_scores(fold_counts, training_majority(setup))
    rows_out = {"majority class of the training blocks": {"embedding_dim": 0, **baseline.summary()},
                **results}
    per_fold = [int(counts.segmentation.sum()) for counts in fold_counts]
    fewest = min(counts.references for counts in fold_counts)
    if fewest < 5 * args.neighbors:
        reporter.warning(f"a fold has only {fewest} kNN reference patches for k={args.neighbors}: the kNN "
                         "columns lean towards the most frequent class; label more or lower --neighbors")
    report = {"mode": "scene", "scene": str(Path(args.scene).resolve()), "scene_name": Path(args.scene).name,
              "sar": str(Path(args.sar).resolve()) if args.sar else None,
              "labels": str(Path(args.labels).resolve()) if args.labels else None,
              "samples": str(Path(args.samples).resolve()) if args.samples else None,
              "class_field": args.class_field if args.samples else None,
              "classes": patch_labels.classes, **facts, "block": args.block, "buffer": args.buffer,
              "folds": args.folds, "blocks_per_fold": split.blocks_per_fold, "seed": args.seed,
              "neighbors": args.neighbors, "steps": args.steps, "scored_pixels": sum(per_fold),
              "scored_pixels_per_fold": per_fold,
              "reference_patches_per_fold": [counts.references for counts in fold_counts], "rows": rows_out}
    table = dense_markdown_table(report)
    md_path = write_text_atomic(f"{args.out}.md", table)
    json_path = write_text_atomic(f"{args.out}.json", json.dumps(report, indent=2) + "\n")
    if args.events == "human":
        print(table)
    reporter.result({"table": str(md_path), "json": str(json_path)}, {"rows": rows_out})


def _scene_encoder(path: Path, random_init: bool, inputs: Any, device: str, seed: int) -> Any:
    """The encoder of a scene row on ``device``: the model of ``path``, or its architecture with random
    weights; a Galileo encoder wrapped for the scene's channel groups and month."""
    import torch

    from backend.inference.model import model_config
    from backend.models import build_model, load_encoder

    config = model_config(path)
    if config.is_galileo:
        from backend.inference.galileo_inputs import GalileoEmbedder

        return GalileoEmbedder(_galileo_encoder(path, random_init, seed).to(device), config, inputs.galileo)
    model = load_encoder(path, device="cpu")
    if random_init:
        torch.manual_seed(seed)
        model = build_model(model.config)
    return model.to(device).eval()


def _encoder_featurizer(path: Path, random_init: bool, folder: Any, bands: list[int], seed: int,
                        device: str, reporter: Reporter):
    """Features of an optical encoder: the mean of its patch encodings (GAP).

    A Galileo model embeds the patch as ``embed`` does (:func:`_galileo_featurizer`).
    """
    import numpy as np
    import torch

    from backend.inference.model import model_config
    from backend.models import build_model, load_encoder, normalize

    torch_device = torch.device("cuda" if device == "auto" and torch.cuda.is_available()
                                else ("cpu" if device == "auto" else device))
    if model_config(path).is_galileo:
        return _galileo_featurizer(path, random_init, seed, torch_device)
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


def _galileo_encoder(path: Path, random_init: bool, seed: int) -> Any:
    """The Galileo encoder of ``path``, or the same architecture with random weights (eval mode)."""
    import torch

    from backend.models import load_encoder

    model = load_encoder(path, device="cpu")
    if random_init:
        from backend.models.galileo import GalileoEncoder

        torch.manual_seed(seed)
        model = GalileoEncoder(dim=model.dim, depth=len(model.blocks),
                               heads=model.blocks[0].attn.heads).eval()
    return model


def _galileo_featurizer(path: Path, random_init: bool, seed: int, device: Any):
    """Features of a Galileo encoder on Sentinel-2 patches (bands in ``S2_BANDS`` order, DN): the mean
    of its per-8x8-patch embeddings (``embed``'s encoder call), with the official benchmark recipe
    (``GalileoWrapper``): the five S2 groups, NDVI masked, month July. Feeding NDVI too, as ``embed``
    does, scores a little lower on EuroSAT-MS (README, *Models*)."""
    import numpy as np
    import torch

    from backend.contract.bands import GALILEO_S2_BANDS, S2_BANDS
    from backend.inference.galileo_inputs import (
        DEFAULT_MONTH,
        GalileoChannels,
        GalileoEmbedder,
        normalise_optical,
    )
    from backend.inference.model import model_config

    config = model_config(path)
    channels = GalileoChannels(GALILEO_S2_BANDS, False, DEFAULT_MONTH, "evaluate", ndvi=False)
    # one window over the whole patch, as the official benchmark pools it (not embed's patches alone)
    embedder = GalileoEmbedder(_galileo_encoder(path, random_init, seed).to(device), config, channels,
                               each_patch_alone=False)
    rows = [S2_BANDS.index(band) for band in GALILEO_S2_BANDS]

    @torch.inference_mode()
    def featurize(batch: np.ndarray) -> np.ndarray:
        optical = normalise_optical(config, GALILEO_S2_BANDS, np.ascontiguousarray(batch[:, rows]))
        out = embedder(optical=torch.from_numpy(optical).to(device))
        return next(iter(out.values())).float().mean(dim=(1, 2)).cpu().numpy()

    return featurize


def markdown_table(report: dict[str, Any]) -> str:
    """The evaluation as a Markdown table of mean ± std over folds."""
    metrics = [("knn_accuracy", f"kNN acc (k={report['neighbors']})"),
               ("linear_accuracy", "linear probe acc"), ("rf_accuracy", "random forest acc"),
               ("kmeans_nmi", "k-means NMI"),
               ("kmeans_ari", "k-means ARI"), ("kmeans_purity", "k-means purity")]
    from backend.evaluation.metrics import markdown_scores

    caption = (f"{report['patches']} patches, {len(report['classes'])} classes, "
               f"{report['folds']}-fold stratified CV, seed {report['seed']}")
    return markdown_scores(caption, report["rows"], metrics)
