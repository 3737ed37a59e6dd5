"""What a model file says about itself: architecture, expected bands, normalisation statistics.

A Terraprobe model is two files side by side: ``name.safetensors`` (weights) and ``name.json``
(this config). The config alone tells the backend how to read a raster for the model: which
bands, in which order, and the fixed per-band statistics used for the mean +- 2 std stretch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backend.contract.bands import S1_BANDS, S2_BANDS
from backend.contract.model_files import FORMAT_VERSION, ModelFileError, check_format_version
from backend.errors import UserError

#: Encoder architectures a model file may declare: CROMA (``backend.models.croma``) and Galileo
#: (``backend.models.galileo``: channel-group tokens; its ``modalities`` give the Sentinel-1 and
#: Sentinel-2 bands it can take and their pretraining statistics).
ARCHITECTURES: tuple[str, ...] = ("croma", "galileo")


@dataclass
class ModalityConfig:
    """One input stream of the model.

    Attributes:
        bands: band names in the order the encoder expects them.
        mean: per-band mean in raw raster units, or ``None`` if unknown (then computed once over
            the input raster by sampling, never per tile).
        std: per-band standard deviation in raw units, or ``None`` (as for ``mean``).
    """

    bands: list[str]
    mean: list[float] | None = None
    std: list[float] | None = None

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.bands):
                raise UserError(f"model config: {len(values)} {name} values for {len(self.bands)} bands")

    @property
    def has_stats(self) -> bool:
        return self.mean is not None and self.std is not None

    def select(self, bands: list[str]) -> ModalityConfig:
        """The same modality restricted to ``bands`` (a subset, any order), statistics included."""
        if list(bands) == list(self.bands):
            return self
        rows = [self.bands.index(band) for band in bands]

        def pick(values: list[float] | None) -> list[float] | None:
            return None if values is None else [values[i] for i in rows]

        return ModalityConfig(list(bands), pick(self.mean), pick(self.std))


@dataclass
class ModelConfig:
    """Architecture and input description of a CROMA-style encoder.

    Attributes:
        dim: token width (768 base, 1024 large).
        heads: attention heads (16 in the released models).
        sar_depth: radar encoder layers (D/2 in the released models).
        optical_depth: optical encoder layers (D).
        joint_depth: joint (cross-attention) encoder layers (D/2).
        patch_size: pixels per patch side (8).
        modalities: ``"sar"`` and/or ``"optical"`` streams with bands and statistics.
        name: a short human name.
        provenance: where the weights came from (command line, source checkpoint, data).
        sensor: the optical sensor the model was trained for (a ``backend.contract.sensors``
            preset name; ``"sentinel2"`` for files written before the field existed). Band names
            stay Sentinel-2 names whatever the sensor.
        joint_encoder_trained: whether the joint (cross-attention) encoder was trained; ``False``
            after dual-encoder and X-STARS-from-scratch pretraining, whose embedding of radar +
            optical then concatenates the two encodings. Files written before the field existed
            said so in ``provenance["joint_encoder"]`` (read once, in :meth:`from_dict`).
    """

    dim: int = 768
    heads: int = 16
    sar_depth: int = 6
    optical_depth: int = 12
    joint_depth: int = 6
    patch_size: int = 8
    mlp_ratio: int = 4
    modalities: dict[str, ModalityConfig] = field(default_factory=lambda: {
        "sar": ModalityConfig(list(S1_BANDS)),
        "optical": ModalityConfig(list(S2_BANDS)),
    })
    architecture: str = "croma"
    name: str = "croma"
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    sensor: str = "sentinel2"
    joint_encoder_trained: bool = True

    def __post_init__(self) -> None:
        self.modalities = {k: v if isinstance(v, ModalityConfig) else ModalityConfig(**v)
                           for k, v in self.modalities.items()}
        unknown = set(self.modalities) - {"sar", "optical"}
        if unknown or not self.modalities:
            raise UserError(f"model config: modalities must be 'sar' and/or 'optical', got "
                            f"{sorted(self.modalities)}")
        if self.dim % self.heads:
            raise UserError(f"model config: dim {self.dim} is not divisible by heads {self.heads}")

    @property
    def has_joint(self) -> bool:
        return "sar" in self.modalities and "optical" in self.modalities

    @property
    def is_galileo(self) -> bool:
        """A Galileo encoder (channel groups, any subset of bands) rather than a CROMA one."""
        return self.architecture == "galileo"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        if "joint_encoder_trained" not in values:  # a file from before the field: its provenance note
            note = (values.get("provenance") or {}).get("joint_encoder", "")
            values["joint_encoder_trained"] = not str(note).startswith("untrained")
        return cls(**values)

    def save_json(self, path: str | Path) -> None:
        from backend.io.atomic import write_text_atomic

        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load_json(cls, path: str | Path) -> ModelConfig:
        from backend.io.atomic import read_json

        data = read_json(path, "model config")
        try:
            check_format_version(data, path)
        except ModelFileError as exc:
            raise UserError(str(exc)) from None
        if data.get("architecture", "croma") not in ARCHITECTURES:
            raise UserError(f"model config {path}: unsupported architecture {data.get('architecture')!r}")
        return cls.from_dict(data)


def base_config(**overrides: Any) -> ModelConfig:
    """CROMA-B as released: 768 wide, 16 heads, 6 radar / 12 optical / 6 joint layers."""
    return ModelConfig(**{"dim": 768, "heads": 16, "sar_depth": 6, "optical_depth": 12,
                          "joint_depth": 6, "name": "croma-base", **overrides})


def large_config(**overrides: Any) -> ModelConfig:
    """CROMA-L as released: 1024 wide, 16 heads, 12 radar / 24 optical / 12 joint layers."""
    return ModelConfig(**{"dim": 1024, "heads": 16, "sar_depth": 12, "optical_depth": 24,
                          "joint_depth": 12, "name": "croma-large", **overrides})
