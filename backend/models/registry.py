"""Known model weights: what ``models list|download`` offers and what a download is checked against.

Data and JSON only (no network at import). Entries are the bundled models and the
official CROMA releases. A site can add or override entries with a registry JSON file
(``--registry FILE``, ``$TERRAPROBE_REGISTRY`` or ``<models dir>/registry.json``): a list of
objects with the fields of :class:`KnownModel`, e.g. to point at an internal mirror.

Sources of the CROMA facts: ``../shared/spec/models.md`` sections 1.1 and 1.10 (sizes, parameter
and tensor counts, five-key layout); the download address is the official release on Hugging Face
(antofuller/CROMA, linked from the CROMA README). The original release publishes no checksum, so
those downloads are verified by the weights-only strict key/shape load and the expected architecture.
TorchGeo's same-size mirror names its files after torch.hub's convention with a sha256 prefix
(``CROMA_base-0238d814.pt``); :data:`MIRRORS` records them for ``--url``, but the prefix is not
enforced because it could not be checked against the files here. A site registry can set ``sha256``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from backend.contract.bands import GALILEO_S2_BANDS
from backend.errors import UserError
from backend.models.config import S1_BANDS, S2_BANDS

REGISTRY_ENV = "TERRAPROBE_REGISTRY"
CROMA_LICENCE = ("MIT (code and weights release of antofuller/CROMA; TorchGeo lists the weights as "
                 "CC-BY-4.0)")
CROMA_CITATION = "Fuller, Millard, Green: CROMA, NeurIPS 2023"
GALILEO_CITATION = ("Tseng, Fuller, Reil, Herzog, Beukema, Bastani, Green, Shelhamer, Kerner, Rolnick: "
                    "Galileo: Learning Global & Local Features of Many Remote Sensing Modalities, ICML 2025, "
                    "arXiv:2502.09356")


@dataclass
class KnownModel:
    """One model the ``models`` command knows how to get and check.

    Attributes:
        name: the model's name and file stem in the models folder (``croma-base``).
        title: one line for people.
        kind: ``checkpoint`` (downloaded, verified and converted) or ``bundled`` (ships with the plugin).
        url: where the checkpoint is published (``https://``, ``http://`` or ``file://``).
        filename: the checkpoint's file name at the source.
        size_bytes: expected download size; ``size_exact`` says whether it is checked to the byte.
        sha256: full checksum when published (checked), else empty.
        sha256_prefix: a published checksum prefix (TorchGeo file names), checked when no full one.
        licence: licence of the weights.
        dim, sar_depth, optical_depth, joint_depth: expected architecture (from the key shapes).
        tensors, parameters: expected number of state_dict tensors and of parameters.
        bands: band names per modality, in model order.
        citation, notes: provenance for the model's JSON config.
    """

    name: str
    title: str = ""
    kind: str = "checkpoint"
    url: str = ""
    filename: str = ""
    size_bytes: int = 0
    size_exact: bool = False
    sha256: str = ""
    sha256_prefix: str = ""
    licence: str = ""
    dim: int = 0
    sar_depth: int = 0
    optical_depth: int = 0
    joint_depth: int = 0
    tensors: int = 0
    parameters: int = 0
    bands: dict[str, list[str]] = field(default_factory=dict)
    citation: str = ""
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (the ``models list`` result rows start from this)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "registry") -> KnownModel:
        """Build an entry from a registry JSON object; unknown fields are an error."""
        if not isinstance(data, dict) or not str(data.get("name", "")).strip():
            raise UserError(f"{source}: every registry entry needs a \"name\"")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"{source}: unknown field(s) {unknown} in registry entry {data['name']!r}")
        entry = cls(**data)
        if entry.kind not in ("checkpoint", "bundled"):
            raise UserError(f"{source}: entry {entry.name!r} has kind {entry.kind!r} "
                            "(expected checkpoint or bundled)")
        return entry

    def architecture(self) -> dict[str, int]:
        """The expected ``dim`` and depths (0 = not checked)."""
        return {"dim": self.dim, "sar_depth": self.sar_depth, "optical_depth": self.optical_depth,
                "joint_depth": self.joint_depth}


def _croma(name: str, title: str, filename: str, dim: int, depth: int, tensors: int, parameters: int,
           size_bytes: int, notes: str) -> KnownModel:
    return KnownModel(
        name=name, title=title, kind="checkpoint",
        url=f"https://huggingface.co/antofuller/CROMA/resolve/main/{filename}", filename=filename,
        size_bytes=size_bytes, size_exact=False, licence=CROMA_LICENCE, dim=dim, sar_depth=depth // 2,
        optical_depth=depth, joint_depth=depth // 2, tensors=tensors, parameters=parameters,
        bands={"optical": list(S2_BANDS), "sar": list(S1_BANDS)}, citation=CROMA_CITATION, notes=notes)


BUILTIN: tuple[KnownModel, ...] = (
    KnownModel(
        name="terraprobe-croma-small", title="Terraprobe CROMA small (bundled, 192-d)", kind="bundled",
        filename="terraprobe-croma-small.safetensors", size_bytes=9_246_312, size_exact=True,
        licence="GPL-2.0-or-later (trained by Terraprobe on SSL4EO-S12, BigEarthNet and Sen1Floods11)",
        dim=192, sar_depth=2, optical_depth=4, joint_depth=2,
        bands={"optical": list(S2_BANDS), "sar": list(S1_BANDS)},
        notes="ships with the plugin; works out of the box but does not beat raw band statistics "
              "(see the README's Evaluation)"),
    KnownModel(
        name="terraprobe-xstars-landsat", title="Terraprobe X-STARS Landsat OLI (bundled, 192-d)",
        kind="bundled", filename="terraprobe-xstars-landsat.safetensors", size_bytes=4_326_000,
        licence="GPL-2.0-or-later (adapted by Terraprobe from terraprobe-croma-small with X-STARS on "
                "SSL4EO-S12, BigEarthNet and Sen1Floods11)",
        dim=192, sar_depth=2, optical_depth=4, joint_depth=2,
        bands={"optical": ["B01", "B02", "B03", "B04", "B8A", "B11", "B12"]},
        notes="ships with the plugin; Landsat 8/9 OLI B1-B7 (trained on Sentinel-2 simulated as OLI); "
              "optical only; reproduce with scripts/train_landsat_model.sh"),
    KnownModel(
        name="galileo-nano", title="Galileo nano (official pretrained weights, bundled, 128-d, any sensor)",
        kind="bundled", filename="galileo-nano.safetensors",
        licence="MIT (nasaharvest/galileo, Copyright (c) 2024 Presto Authors; galileo-nano.LICENSE ships "
                "beside the weights)",
        dim=128, tensors=106, parameters=1_037_856,
        bands={"optical": list(GALILEO_S2_BANDS), "sar": list(S1_BANDS)},
        citation=GALILEO_CITATION,
        notes="ships with the plugin; pretrained on 127k global S1/S2 samples; takes channel groups (S1, "
              "S2 RGB, red edge, NIR 10 m, NIR 20 m, SWIR, NDVI) and masks the ones a sensor lacks, so "
              "Landsat, RGBN and RGB rasters need no spectral fill"),
    _croma("croma-base", "CROMA base (official release, 768-d, S1 + S2 + joint)", "CROMA_base.pt",
           dim=768, depth=12, tensors=328, parameters=194_365_440, size_bytes=778_000_000,
           notes="778 MB download; converted once to a Terraprobe model (about the same size)"),
    _croma("croma-large", "CROMA large (official release, 1024-d, S1 + S2 + joint)", "CROMA_large.pt",
           dim=1024, depth=24, tensors=634, parameters=672_557_056, size_bytes=2_690_000_000,
           notes="2.7 GB download; needs about 3 GB of free memory to convert and run"),
)

#: TorchGeo's mirror of the release (``--url``) and the sha256 prefix its file name carries (informative).
MIRRORS: dict[str, tuple[str, str]] = {
    "croma-base": ("https://huggingface.co/torchgeo/croma/resolve/main/CROMA_base-0238d814.pt", "0238d814"),
    "croma-large": ("https://huggingface.co/torchgeo/croma/resolve/main/CROMA_large-921e69ad.pt", "921e69ad"),
}


def registry_files(models_dir: Path | None, extra: str | os.PathLike[str] | None = None) -> list[Path]:
    """Registry JSON files that apply: ``<models dir>/registry.json``, ``$TERRAPROBE_REGISTRY``, ``extra``."""
    files: list[Path] = []
    if models_dir is not None and (Path(models_dir) / "registry.json").is_file():
        files.append(Path(models_dir) / "registry.json")
    env = os.environ.get(REGISTRY_ENV, "").strip()
    if env:
        files.append(Path(env).expanduser())
    if extra:
        files.append(Path(extra).expanduser())
    return files


def _read_registry(path: Path) -> list[KnownModel]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"model registry not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"model registry {path} is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("models", [])
    if not isinstance(data, list):
        raise UserError(f"model registry {path}: expected a list of entries (or {{\"models\": [...]}})")
    return [KnownModel.from_dict(item, source=str(path)) for item in data]


def known_models(models_dir: Path | None = None,
                 extra: str | os.PathLike[str] | None = None) -> dict[str, KnownModel]:
    """Every known model by name: built-in entries, then registry files (later ones override)."""
    entries = {entry.name: KnownModel(**entry.to_dict()) for entry in BUILTIN}
    for path in registry_files(models_dir, extra):
        for entry in _read_registry(path):
            entries[entry.name] = entry
    return entries


def find_model(name: str, models_dir: Path | None = None,
               extra: str | os.PathLike[str] | None = None) -> KnownModel:
    """The entry called ``name``; a :class:`UserError` listing the known names otherwise."""
    entries = known_models(models_dir, extra)
    if name not in entries:
        raise UserError(f"unknown model {name!r}; known: {', '.join(sorted(entries))} "
                        "(or give --url / --file with a new name)")
    return entries[name]


def named_model_path(name: str, models_dir: Path | None = None) -> Path | None:
    """The weights of a model given by bare name (``embed --model croma-base``), if installed.

    Looks in the per-user models folder (:func:`backend.contract.paths.models_dir`), then among
    the bundled models. A name is a single word without a suffix; anything else returns ``None``.
    """
    if not name or any(sep in name for sep in "/\\") or Path(name).suffix in (".safetensors", ".json", ".pt"):
        return None
    from backend.contract.paths import models_dir as default_models_dir
    from backend.paths import MODELS_DIR

    for folder in (Path(models_dir) if models_dir else default_models_dir(), MODELS_DIR):
        weights = folder / f"{name}.safetensors"
        if weights.is_file() and weights.with_suffix(".json").is_file():
            return weights
    return None
