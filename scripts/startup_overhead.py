"""Backend start-up overhead of cluster / classify / similar from cached embeddings (docs/benchmarks.md).

Runs each command ``--runs`` times per checkout (``--repo``, repeatable: A/B two checkouts in one
session) and reports medians of: wall time, CPU time (user + sys), the downstream computation
itself (``cluster_embeddings`` / ``classify_map`` / ``similarity_map``, timed inside the process),
the torch import, and the overhead = wall - computation (and that minus the torch import, which the
three computations need)::

    python scripts/startup_overhead.py --repo /tmp/before --repo . --data ../shared/data \\
        --work /tmp/overhead [--model-large big.safetensors] --runs 5

The embeddings are computed once per checkout into ``WORK/<n>/cache`` (``embed``), so every
timed run with ``--optical`` is a cache hit; ``--embeddings`` runs read ``WORK/<n>/emb.tif``.
``--model-large`` adds a cache-hit cluster run with that model (whose hashing dominates there).
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: The downstream computation of each command: module and function.
COMPUTATIONS = {"cluster": ("backend.downstream.kmeans", "cluster_embeddings"),
                "classify": ("backend.downstream.classify", "classify_map"),
                "similar": ("backend.downstream.similarity", "similarity_map")}
S2 = Path("rstoolbox-sen2") / "sen2.tif"
POLYGONS = Path("rstoolbox-sen2") / "trainingPolygons_sen2.geojson"
POINT = ("-56.3625", "-1.4693")


# -- child: one timed backend run -----------------------------------------------------------------
class _TimingFinder(importlib.abc.MetaPathFinder):
    """Times the torch import and wraps the downstream functions as their modules are imported."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.busy: set[str] = set()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        wanted = {module for module, _ in COMPUTATIONS.values()} | {"torch"}
        if name not in wanted or name in self.busy:
            return None
        self.busy.add(name)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.busy.discard(name)
        if spec is None or spec.loader is None:
            return spec
        loader, timings = spec.loader, self.timings

        class Timed(importlib.abc.Loader):
            def create_module(self, spec: Any) -> Any:
                return loader.create_module(spec)

            def exec_module(self, module: Any) -> None:
                began, cpu = time.perf_counter(), time.process_time()
                loader.exec_module(module)
                if name == "torch":
                    timings["torch_import_s"] = time.perf_counter() - began
                    timings["torch_import_cpu_s"] = time.process_time() - cpu
                for module_name, function in COMPUTATIONS.values():
                    if module_name == name:
                        setattr(module, function, _timed(getattr(module, function), timings))

        spec.loader = Timed()
        return spec


def _timed(function: Any, timings: dict[str, float]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            timings["compute_s"] = time.perf_counter() - began
            timings["compute_cpu_s"] = time.process_time() - cpu
    return wrapper


def child(timings_path: str, argv: list[str]) -> int:
    """Run ``python -m backend ARGV`` in this process, timing torch and the computation."""
    timings = dict.fromkeys(("torch_import_s", "torch_import_cpu_s", "compute_s", "compute_cpu_s"), 0.0)
    sys.meta_path.insert(0, _TimingFinder(timings))
    sys.path.insert(0, os.getcwd())
    from backend.cli import main

    try:
        code = main(argv)
    finally:
        Path(timings_path).write_text(json.dumps(timings), encoding="utf-8")
    return int(code or 0)


# -- parent: scenarios, repetitions, medians ------------------------------------------------------
def _run(repo: Path, argv: list[str], env: dict[str, str]) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        timings_path = handle.name
    before = os.times()
    began = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", timings_path, *argv], cwd=repo, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - began
    after = os.times()
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed in {repo}:\n{done.stderr[-2000:]}")
    timings = json.loads(Path(timings_path).read_text(encoding="utf-8"))
    os.unlink(timings_path)
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    overhead, overhead_cpu = wall - timings["compute_s"], cpu - timings["compute_cpu_s"]
    return {"wall_s": wall, "cpu_s": cpu, **timings, "overhead_s": overhead,
            "overhead_without_torch_s": overhead - timings["torch_import_s"], "overhead_cpu_s": overhead_cpu,
            "overhead_cpu_without_torch_s": overhead_cpu - timings["torch_import_cpu_s"]}


def scenarios(data: Path, work: Path, model_large: Path | None) -> dict[str, list[str]]:
    """Command lines by name (``--embeddings`` runs and cache hits through ``--optical``)."""
    common = ["--events", "json"]
    inputs = {"embeddings": ["--embeddings", str(work / "emb.tif")],
              "cache hit": ["--optical", str(data / S2), "--cache-dir", str(work / "cache")]}
    out: dict[str, list[str]] = {}
    for how, given in inputs.items():
        out[f"cluster ({how})"] = ["cluster", *given, "--k", "4", "--out", str(work / "clusters.tif"),
                                   *common]
        out[f"classify ({how})"] = ["classify", *given, "--samples", str(data / POLYGONS), "--class-field",
                                    "class", "--out", str(work / "labels.tif"), *common]
        out[f"similar ({how})"] = ["similar", *given, "--point", *POINT, "--point-crs", "EPSG:4326",
                                   "--out", str(work / "similarity.tif"), *common]
    if model_large is not None:
        out["cluster (cache hit, large model)"] = [*out["cluster (cache hit)"], "--model", str(model_large)]
    return out


def prepare(repo: Path, data: Path, work: Path, model_large: Path | None, env: dict[str, str]) -> None:
    """Embed once (fills the cache, writes ``emb.tif``), and once more with the large model."""
    work.mkdir(parents=True, exist_ok=True)
    embed = [sys.executable, "-m", "backend", "embed", "--optical", str(data / S2), "--cache-dir",
             str(work / "cache"), "--events", "json"]
    subprocess.run([*embed, "--out", str(work / "emb.tif")], cwd=repo, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if model_large is not None:
        subprocess.run([*embed, "--model", str(model_large), "--out", str(work / "emb_large.tif")], cwd=repo,
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return child(sys.argv[2], sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", action="append", type=Path, required=True, help="checkout to time")
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder")
    parser.add_argument("--model-large", type=Path, help="a large model for a cache-hit run with it")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", help="run only the scenarios whose name contains this")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    args = parser.parse_args()
    env = {**os.environ, "TERRAPROBE_CACHE_DIR": str(args.work / "memo")}
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for index, repo in enumerate(args.repo):
        prepare(repo.resolve(), args.data.resolve(), args.work / str(index), args.model_large, env)
    names = list(scenarios(args.data, args.work, args.model_large))
    for name in names:
        if args.only and args.only not in name:
            continue
        for _ in range(args.runs):  # interleaved: both checkouts see the same machine load
            for index, repo in enumerate(args.repo):
                work = (args.work / str(index)).resolve()
                argv = scenarios(args.data.resolve(), work, args.model_large)[name]
                results.setdefault(name, {}).setdefault(str(repo), []).append(_run(repo.resolve(), argv, env))
    for keys in (("wall_s", "compute_s", "torch_import_s", "overhead_s", "overhead_without_torch_s"),
                 ("cpu_s", "compute_cpu_s", "torch_import_cpu_s", "overhead_cpu_s",
                  "overhead_cpu_without_torch_s")):
        print("\n| command | checkout | " + " | ".join(keys) + " |")
        print("|---|---|" + "---|" * len(keys))
        for name, by_repo in results.items():
            for repo, runs in by_repo.items():
                medians = [statistics.median(run[key] for run in runs) for key in keys]
                print(f"| {name} | {repo} | " + " | ".join(f"{value:.2f}" for value in medians) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
