"""``cache``: show, list, clear and verify the embedding cache.

    python -m backend cache info   [--cache-dir DIR] [--cache-max-gb GB]
    python -m backend cache list   [--cache-dir DIR]
    python -m backend cache clear  [--cache-dir DIR] [--older-than DAYS]
    python -m backend cache verify [--cache-dir DIR]

Results (JSON ``result`` stats): ``info`` -> ``folder``, ``entries``, ``total_bytes``, ``limit_bytes``,
``temporaries``; ``list`` -> ``entries`` (key, size, last used, inputs, ...), least recently used
first; ``clear`` -> ``removed``, ``freed_bytes``, ``kept``; ``verify`` -> ``checked``, ``good``,
``removed`` (key and reason of each bad entry, which is deleted).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from backend.errors import UserError
from backend.events import Reporter


def _folder(args: argparse.Namespace) -> Path:
    from backend.inference.cache import default_cache_dir

    return Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "?"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    handlers = {"info": _info, "list": _list, "clear": _clear, "verify": _verify}
    folder = _folder(args)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"the cache folder {folder} is not a folder")
    reporter.result({}, {"folder": str(folder), **handlers[args.action](folder, args, reporter)})


def _info(folder: Path, args: argparse.Namespace, reporter: Reporter) -> dict[str, Any]:
    from backend.inference.cache import cache_max_bytes, list_entries

    entries = list_entries(folder)
    temporaries = [p for p in folder.glob(".*.part*")] if folder.is_dir() else []
    total = sum(e.size() for e in entries)
    limit = cache_max_bytes(args.cache_max_gb)
    reporter.log(f"{folder}: {len(entries)} entries, {_megabytes(total)} of {limit / 1e9:g} GB")
    return {"entries": len(entries), "total_bytes": total, "limit_bytes": limit,
            "temporaries": len(temporaries)}


def _list(folder: Path, args: argparse.Namespace, reporter: Reporter) -> dict[str, Any]:
    from backend.inference.cache import entry_summary, list_entries

    rows = [entry_summary(e) for e in list_entries(folder)]
    for row in rows:
        inputs = ", ".join(f"{name}={path}" for name, path in row["inputs"].items())
        grid = f"{row['patch_width']}x{row['patch_height']}x{row['embedding_dim']}"
        reporter.log(f"{row['key'][:12]}  {_megabytes(row['size_bytes']):>9}  "
                     f"used {_when(row['last_used'])}  {grid}  {inputs}")
    return {"entries": rows, "total_bytes": sum(r["size_bytes"] for r in rows)}


def _clear(folder: Path, args: argparse.Namespace, reporter: Reporter) -> dict[str, Any]:
    from backend.inference.cache import STALE_SECONDS, list_entries, sweep_temporaries

    cutoff = time.time() - args.older_than * 86400 if args.older_than is not None else None
    entries = list_entries(folder)
    removed, freed = 0, 0
    for entry in entries:
        if cutoff is not None and entry.last_used() >= cutoff:
            continue
        size = entry.size()
        try:
            entry.remove()
        except OSError as exc:
            raise UserError(f"cannot remove cache entry {entry.sidecar}: {exc.strerror}",
                            kind="environment") from None
        removed, freed = removed + 1, freed + size
    swept = sweep_temporaries(folder, max_age=0 if cutoff is None else STALE_SECONDS)  # live writers kept
    reporter.log(f"removed {removed} entries ({_megabytes(freed)}) from {folder}")
    return {"removed": removed, "freed_bytes": freed, "kept": len(entries) - removed,
            "temporaries_removed": len(swept)}


def _verify(folder: Path, args: argparse.Namespace, reporter: Reporter) -> dict[str, Any]:
    from backend.inference.cache import list_entries, verify_entry

    entries = list_entries(folder)
    bad: list[dict[str, str]] = []
    for entry in reporter.track(entries, description="verifying cache entries"):
        try:
            problem = verify_entry(entry)
        except OSError as exc:
            problem = f"it cannot be read ({exc.strerror or exc})"
        if problem is None:
            continue
        try:
            entry.remove()
        except OSError as exc:
            problem += f" (could not remove it: {exc.strerror})"
        reporter.warning(f"cache entry {entry.key[:12]} is bad: {problem}")
        bad.append({"key": entry.key, "reason": problem})
    reporter.log(f"{len(entries)} entries checked, {len(entries) - len(bad)} good, {len(bad)} bad removed")
    return {"checked": len(entries), "good": len(entries) - len(bad), "removed": bad}
