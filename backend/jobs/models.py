"""``models``: list, download, verify and remove model weights in the per-user models folder.

``python -m backend models list`` shows the known models (bundled, official CROMA releases and any
site registry entries) and what is installed; ``models download NAME`` gets one (``--url``,
``--mirror`` or ``--file`` for mirrors and air-gapped sites), verifies it and converts it into
``<models dir>/NAME.safetensors`` + ``NAME.json``, which ``embed --model NAME`` then uses.
The models folder survives plugin upgrades: see :mod:`backend.contract.paths`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from pathlib import Path
from typing import Any

from backend.errors import UserError
from backend.events import Reporter

MIRROR_ENV = "TERRAPROBE_MODEL_MIRROR"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


# -- helpers --------------------------------------------------------------------------------------
def models_folder(args: argparse.Namespace) -> Path:
    """The models folder of this run (``--models-dir`` or the per-user default)."""
    from backend.contract.paths import models_dir

    return Path(args.models_dir).expanduser() if args.models_dir else models_dir()


def installed_paths(folder: Path, name: str) -> tuple[Path, Path]:
    """``NAME.safetensors`` and ``NAME.json`` in ``folder``."""
    return folder / f"{name}.safetensors", folder / f"{name}.json"


def _bundled_path(name: str) -> Path | None:
    from backend.paths import MODELS_DIR

    path = MODELS_DIR / f"{name}.safetensors"
    return path if path.exists() and path.with_suffix(".json").exists() else None


def _human_size(size: int) -> str:
    """Download sizes as the model registry states them (powers of 1000)."""
    from backend.io.write_checks import format_bytes

    return format_bytes(size, base=1000, units=("B", "KB", "MB", "GB"))


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UserError(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-'")
    return name


# -- list -----------------------------------------------------------------------------------------
def list_rows(folder: Path, registry: Path | None = None) -> list[dict[str, Any]]:
    """One row per known model (installed or not) plus any other model found in ``folder``."""
    from backend.models.registry import known_models

    rows: list[dict[str, Any]] = []
    entries = known_models(folder, registry)
    for entry in entries.values():
        row = entry.to_dict()
        weights, config = installed_paths(folder, entry.name)
        path = _bundled_path(entry.name) if entry.kind == "bundled" else None
        if path is None and weights.exists() and config.exists():
            path = weights
        row.update(installed=path is not None, path=str(path) if path else "",
                   installed_bytes=path.stat().st_size if path else 0)
        rows.append(row)
    from backend.paths import MODELS_DIR

    seen = set(entries)
    sources = ((MODELS_DIR, "bundled", "ships with the plugin"), (folder, "local", "added by you"))
    for base, kind, title in sources:
        for config in sorted(base.glob("*.json")) if base.is_dir() else []:
            weights = config.with_suffix(".safetensors")
            if config.stem in seen or config.name == "registry.json" or not weights.exists():
                continue
            seen.add(config.stem)
            rows.append({"name": config.stem, "title": title, "kind": kind, "installed": True,
                         "path": str(weights), "installed_bytes": weights.stat().st_size})
    return rows


def run_list(args: argparse.Namespace, reporter: Reporter) -> None:
    folder = models_folder(args)
    rows = list_rows(folder, args.registry)
    width = max((len(row["name"]) for row in rows), default=0)
    for row in rows:
        state = f"installed: {row['path']}" if row["installed"] else \
            f"not installed ({_human_size(row.get('size_bytes') or 0)} download)"
        reporter.log(f"{row['name']:<{width}} {row.get('title', '')} · {state}")
    reporter.result({"models_dir": str(folder)}, {"models": rows})


# -- download -------------------------------------------------------------------------------------
def choose_source(entry: Any, args: argparse.Namespace) -> str:
    """The address to get ``entry`` from: --file, --url, --mirror / $TERRAPROBE_MODEL_MIRROR, official."""
    if args.file is not None:
        return str(Path(args.file).expanduser().resolve())
    if args.url:
        return str(args.url)
    mirror = args.mirror or os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        if not entry.filename:
            raise UserError(f"{entry.name} has no release file name; use --url or --file")
        return mirror.rstrip("/\\") + "/" + entry.filename
    if not entry.url:
        raise UserError(f"{entry.name} has no download address; use --url or --file")
    return entry.url


def run_download(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.models.download import install_model
    from backend.models.registry import KnownModel, known_models

    name = _check_name(args.name)
    folder = models_folder(args)
    entries = known_models(folder, args.registry)
    entry = entries.get(name)
    if entry is None:
        if args.url is None and args.file is None:
            raise UserError(f"unknown model {name!r}; known: {', '.join(sorted(entries))} "
                            "(or give --url / --file to add a new one under this name)")
        entry = KnownModel(name=name, title="added from " + str(args.url or args.file))
    if entry.kind == "bundled":
        path = _bundled_path(name)
        reporter.result({"weights": str(path) if path else ""},
                        {"name": name, "bundled": True,
                         "message": "ships with the plugin; nothing to download"})
        return
    weights, config = installed_paths(folder, name)
    if weights.exists() and config.exists() and not args.force:
        reporter.log(f"{name} is already installed in {folder} (use --force to replace it)")
        reporter.result({"weights": str(weights), "config": str(config)},
                        {"name": name, "already_installed": True, "bytes_received": 0})
        return
    source = choose_source(entry, args)
    reporter.log(f"getting {name} from {source} into {folder}")

    def progress(done: int, total: int) -> None:
        if total:
            reporter.progress(0.9 * done / total,
                              f"downloading {name}: {_human_size(done)} of {_human_size(total)}")

    facts = install_model(entry, folder, source, timeout=args.timeout, on_progress=progress,
                          log=reporter.log)
    reporter.progress(1.0, f"{name} installed")
    reporter.result({"weights": str(facts["weights"]), "config": str(facts["config"])},
                    {"name": name, "sha256": facts["sha256"], "source": facts["source"],
                     "bytes_received": facts["bytes_received"], "resumed_from": facts["resumed_from"],
                     "licence": entry.licence})


# -- verify ---------------------------------------------------------------------------------------
def _match_entry(entries: dict[str, Any], digest: str | None, config: Any) -> Any:
    for entry in entries.values():
        if digest and (entry.sha256.lower() == digest
                       or (entry.sha256_prefix and digest.startswith(entry.sha256_prefix.lower()))):
            return entry
    for entry in entries.values():
        if entry.kind == "bundled" and entry.name == getattr(config, "name", None):
            return entry
    for entry in entries.values():
        arch = entry.architecture()
        if entry.kind == "checkpoint" and arch["dim"] and all(
                getattr(config, key, None) == value for key, value in arch.items() if value):
            return entry
    return None


def run_verify(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.models.download import check_architecture, file_sha256, load_verified, verify_file
    from backend.models.registry import find_model, known_models
    from backend.models.weights import is_model_file, load_encoder, model_paths

    folder = models_folder(args)
    path = Path(args.path).expanduser()
    if not path.exists() and _NAME.match(args.path):
        candidate = installed_paths(folder, args.path)[0]
        path = candidate if candidate.exists() else (_bundled_path(args.path) or path)
    if not path.exists():
        raise UserError(f"model file not found: {args.path}")
    entries = known_models(folder, args.registry)
    chosen = find_model(args.name, folder, args.registry) if args.name else None
    if is_model_file(path):
        weights = model_paths(path)[0]
        model = load_encoder(path)
        digest = file_sha256(weights) if weights.exists() else None
        entry = chosen or entries.get(model.config.name) or _match_entry(entries, None, model.config)
        check_architecture(model.config, entry, str(path))
        kind = "model file"
    else:
        digest = verify_file(path, chosen) if chosen else file_sha256(path)
        model = load_verified(path, chosen)
        entry = chosen or _match_entry(entries, digest, model.config)
        if chosen is None and entry is not None:
            verify_file(path, entry)
        kind = "checkpoint"
    config = model.config
    tensors = len(model.state_dict())
    parameters = sum(p.numel() for p in model.parameters())
    reporter.log(f"{path}: valid {kind} ({config.name}, dim {config.dim}, {tensors} tensors, "
                 f"{parameters} parameters)" + (f"; matches {entry.name}" if entry else ""))
    reporter.result({"path": str(path)}, {
        "ok": True, "kind": kind, "name": config.name, "dim": config.dim, "tensors": tensors,
        "parameters": parameters, "modalities": sorted(config.modalities), "sha256": digest,
        "matches": entry.name if entry else None})


# -- remove ---------------------------------------------------------------------------------------
def run_remove(args: argparse.Namespace, reporter: Reporter) -> None:
    from backend.models.download import remove_downloads

    name = _check_name(args.name)
    folder = models_folder(args)
    removed = [path for path in installed_paths(folder, name) if path.exists()]
    partial = remove_downloads(folder, name)
    if not removed and not partial:
        if _bundled_path(name) is not None:
            raise UserError(f"{name} ships with the plugin and cannot be removed")
        raise UserError(f"{name} is not installed in {folder}")
    for path in removed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    reporter.log(f"removed {', '.join(p.name for p in removed + partial)}")
    reporter.result({}, {"name": name, "removed": [str(p) for p in removed + partial]})
