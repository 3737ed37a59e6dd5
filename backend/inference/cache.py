"""On-disk cache of embedding rasters, so clustering/classifying again skips the encoder.

The key is the sha256 of everything that determines the embeddings: each input's absolute path,
size and modification time, its band mapping, the area (CRS, transform, size), the tiling
(window, overlap, stitching), the model files' content hash and the output dtype. Entries live in
``--cache-dir`` (default ``~/.cache/terraprobe/embeddings``) as ``<key>.tif`` (embeddings),
``<key>_pca.tif`` (preview) and ``<key>.json`` (what went into the key, and the run's stats).
All three are written atomically; an entry counts only when all three exist.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.inference.inputs import InputSet

DEFAULT_CACHE_DIR = Path("~/.cache/terraprobe/embeddings")
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$TERRAPROBE_CACHE_DIR`` when set, else ``~/.cache/terraprobe/embeddings``."""
    return Path(os.environ.get("TERRAPROBE_CACHE_DIR", DEFAULT_CACHE_DIR)).expanduser()


def key_facts(inputs: InputSet, model_digest: str, window: int, overlap: int, dtype: str,
              stitch: str = "blend") -> dict[str, Any]:
    """Everything that determines the embeddings of a run, as JSON-friendly data."""
    files = {}
    for name, modality in inputs.modalities.items():
        stat = modality.path.stat()
        files[name] = {"path": str(modality.path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                       "bands": modality.bands}
    return {"version": CACHE_VERSION, "inputs": files, "crs": inputs.crs.to_string(),
            "transform": list(inputs.transform)[:6], "width": inputs.width, "height": inputs.height,
            "window": window, "overlap": overlap, "stitch": stitch, "model_sha256": model_digest,
            "dtype": dtype}


def cache_key(facts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """The files of one cache entry."""

    directory: Path
    key: str

    @property
    def embeddings(self) -> Path:
        return self.directory / f"{self.key}.tif"

    @property
    def preview(self) -> Path:
        return self.directory / f"{self.key}_pca.tif"

    @property
    def sidecar(self) -> Path:
        return self.directory / f"{self.key}.json"

    def exists(self) -> bool:
        return all(p.is_file() for p in (self.embeddings, self.preview, self.sidecar))

    def read_sidecar(self) -> dict[str, Any]:
        try:
            return json.loads(self.sidecar.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
