"""k-means: our torch Lloyd (and mini-batch) k-means vs scikit-learn's KMeans on random vectors.

    python -m backend bench kmeans [--n 1000000 --dim 768 --k 16 --iters 10] [--device auto]

Both start from the same k-means++ centres (ours, from a sample) and run the same number of Lloyd
iterations with ``tol=0``; the report gives the time of each, the ratio, and the inertia of each
(they agree within 0.01 %). The mini-batch variant runs ``--minibatch-epochs`` passes and is
compared on inertia too. One float32 matrix is shared by both implementations; ``threads`` in the
result is torch's thread count (ours runs one worker thread per torch thread on CPU).
"""

from __future__ import annotations

import argparse
import time

from backend.events import Reporter


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    import numpy as np
    import torch

    from backend.downstream.kmeans import kmeans_plus_plus, lloyd, minibatch_kmeans
    from backend.downstream.raster import pick_device

    device = pick_device(args.device)
    generator = torch.Generator().manual_seed(args.seed)
    began = time.perf_counter()
    x = torch.randn(args.n, args.dim, generator=generator, dtype=torch.float32)
    reporter.log(f"{args.n} x {args.dim} float32 random vectors ({x.numel() * 4 / 2**30:.2f} GiB) "
                 f"in {time.perf_counter() - began:.1f} s; k={args.k}, {args.iters} iterations")
    sample = x[torch.randperm(args.n, generator=generator)[: min(args.init_sample, args.n)]]
    initial = kmeans_plus_plus(sample.to(device), args.k, generator).cpu()
    del sample

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    stats: dict[str, float | int | str] = {"n": args.n, "dim": args.dim, "k": args.k, "iters": args.iters,
                                           "device": str(device), "threads": torch.get_num_threads()}
    x_device = x.to(device)
    sync()
    began = time.perf_counter()
    ours = lloyd(x_device, initial.to(device), args.iters, tol=-1.0)
    sync()
    stats["ours_seconds"] = time.perf_counter() - began
    stats["ours_inertia"] = ours.inertia
    reporter.log(f"ours (torch Lloyd, {device}): {stats['ours_seconds']:.2f} s, inertia {ours.inertia:.6g}")

    if args.minibatch_epochs > 0:
        sync()
        began = time.perf_counter()
        mini = minibatch_kmeans(x_device, initial.to(device), args.minibatch_epochs, args.batch_size,
                                torch.Generator().manual_seed(args.seed))
        sync()
        stats["minibatch_seconds"] = time.perf_counter() - began
        stats["minibatch_inertia"] = mini.inertia
        stats["minibatch_epochs"] = args.minibatch_epochs
        reporter.log(f"ours (mini-batch, {args.minibatch_epochs} epoch(s) of {args.batch_size}): "
                     f"{stats['minibatch_seconds']:.2f} s, inertia {mini.inertia:.6g}")
    del x_device

    if not args.skip_sklearn:
        from sklearn.cluster import KMeans

        data = x.numpy()  # shares memory with the tensor: no second copy
        reference = KMeans(n_clusters=args.k, init=initial.numpy().astype(np.float32), n_init=1,
                           max_iter=args.iters, tol=0, algorithm="lloyd", random_state=args.seed)
        began = time.perf_counter()
        reference.fit(data)
        stats["sklearn_seconds"] = time.perf_counter() - began
        stats["sklearn_inertia"] = float(reference.inertia_)
        stats["sklearn_iterations"] = int(reference.n_iter_)
        stats["speedup_vs_sklearn"] = stats["sklearn_seconds"] / stats["ours_seconds"]
        stats["inertia_relative_difference"] = (ours.inertia - reference.inertia_) / reference.inertia_
        reporter.log(f"scikit-learn KMeans (lloyd): {stats['sklearn_seconds']:.2f} s, "
                     f"inertia {reference.inertia_:.6g} ({reference.n_iter_} iterations)")
        reporter.log(f"speed-up ours vs scikit-learn: {stats['speedup_vs_sklearn']:.2f}x; inertia difference "
                     f"{100 * stats['inertia_relative_difference']:+.3f} %")
    reporter.result({}, stats)
