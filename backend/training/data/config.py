"""The data config: which modalities to read, their bands and raw-unit statistics, and data paths."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from backend.errors import UserError
from backend.io.bands import canonical_band_name
from backend.models.config import S1_BANDS, S2_BANDS

#: Default band lists per modality (model order).
DEFAULT_BANDS: dict[str, tuple[str, ...]] = {"sar": S1_BANDS, "optical": S2_BANDS}

#: Canonical band spelling (``B1``/``b01`` -> ``B01``, ``B8a`` -> ``B8A``, ``vv`` -> ``VV``).
canonical_band = canonical_band_name


@dataclass
class ModalityData:
    """Bands (model order) and raw-unit statistics of one modality."""

    bands: list[str]
    mean: list[float] | None = None
    std: list[float] | None = None

    @property
    def has_stats(self) -> bool:
        return self.mean is not None and self.std is not None


@dataclass
class DataConfig:
    """What to read: modalities with bands and statistics, plus optional data paths."""

    modalities: dict[str, ModalityData] = field(default_factory=lambda: {
        name: ModalityData(list(bands)) for name, bands in DEFAULT_BANDS.items()})
    ssl4eo_optical_product: str | None = None
    data: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        mods = {}
        for name, mod in self.modalities.items():
            if not isinstance(mod, ModalityData):
                if not isinstance(mod, dict) or "bands" not in mod:
                    raise UserError(f"data config: modality {name!r} needs a 'bands' list")
                mod = ModalityData(bands=list(mod["bands"]), mean=mod.get("mean"), std=mod.get("std"))
            mod.bands = [canonical_band_name(b) for b in mod.bands]
            for key in ("mean", "std"):
                values = getattr(mod, key)
                if values is not None and len(values) != len(mod.bands):
                    raise UserError(f"data config: modality {name!r} has {len(values)} {key} values "
                                    f"for {len(mod.bands)} bands")
            if mod.std is not None and any(not s > 0 for s in mod.std):
                raise UserError(f"data config: modality {name!r} has a std that is not positive")
            mods[name] = mod
        if not mods:
            raise UserError("data config: no modalities")
        self.modalities = mods

    @property
    def has_stats(self) -> bool:
        return all(m.has_stats for m in self.modalities.values())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"modalities": {
            name: {"bands": m.bands, "mean": m.mean, "std": m.std} for name, m in self.modalities.items()}}
        if self.ssl4eo_optical_product:
            out["ssl4eo_optical_product"] = self.ssl4eo_optical_product
        if self.data:
            out["data"] = list(self.data)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        if not isinstance(data, dict):
            raise UserError("data config must be a JSON object")
        defaults = {n: {"bands": list(b)} for n, b in DEFAULT_BANDS.items()}
        return cls(modalities=data.get("modalities") or defaults,
                   ssl4eo_optical_product=data.get("ssl4eo_optical_product"),
                   data=list(data.get("data") or []))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DataConfig:
        from backend.io.atomic import read_json

        return cls.from_dict(read_json(path, "data config"))

    def save(self, path: str | os.PathLike[str]) -> None:
        from backend.io.atomic import write_text_atomic

        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")


def resolve_data_config(config_path: str | None = None, modalities: str | None = None,
                        sar_bands: str | None = None, optical_bands: str | None = None) -> DataConfig:
    """The data config from ``--data-config`` plus the command-line overrides.

    Args:
        config_path: JSON data config, or None for the defaults.
        modalities: comma-separated subset/order of modalities (e.g. ``optical``).
        sar_bands: comma-separated radar bands (replaces the config's list and its statistics).
        optical_bands: comma-separated optical bands (likewise).
    """
    config = DataConfig.load(config_path) if config_path else DataConfig()
    for name, bands in (("sar", sar_bands), ("optical", optical_bands)):
        if bands:
            wanted = [canonical_band_name(b) for b in bands.split(",") if b.strip()]
            old = config.modalities.get(name)
            if old is not None and old.bands == wanted:
                continue
            config.modalities[name] = ModalityData(wanted)
    if modalities:
        chosen = [m.strip() for m in modalities.split(",") if m.strip()]
        unknown = [m for m in chosen if m not in config.modalities and m not in DEFAULT_BANDS]
        if unknown:
            raise UserError(f"unknown modality {', '.join(unknown)}; the data config has "
                            f"{', '.join(config.modalities)}")
        config.modalities = {m: config.modalities.get(m) or ModalityData(list(DEFAULT_BANDS[m]))
                             for m in chosen}
    return config
