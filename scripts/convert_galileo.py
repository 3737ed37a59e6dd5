"""Convert the official Galileo-nano ``encoder.pt`` once into Terraprobe's model format.

Writes ``galileo-nano.safetensors`` (float32, tensors and metadata in sorted order, so the file is
byte-for-byte reproducible), ``galileo-nano.json`` (the ``ModelConfig`` fields, licence, citation,
source and the pretraining statistics) and ``galileo-nano.LICENSE`` (the MIT text, verbatim) into
``resources/models/``. The checkpoint is read with ``weights_only=True`` and loaded strictly into
:class:`backend.models.galileo.GalileoEncoder` before anything is written.

    python scripts/convert_galileo.py [--source /work/shared/models/galileo-nano] [--out resources/models]
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NAME = "galileo-nano"
SOURCE_REPOSITORY = "https://github.com/nasaharvest/galileo"
SOURCE_COMMIT = "0f0b5b95ac81acef4b74cf4686dc877202f4541b"
SOURCE_PATH = "data/models/nano/encoder.pt"
CITATION = ("Tseng, G., Fuller, A., Reil, M., Herzog, H., Beukema, P., Bastani, F., Green, J. R., "
            "Shelhamer, E., Kerner, H., Rolnick, D. (2025). Galileo: Learning Global & Local Features of "
            "Many Remote Sensing Modalities. ICML 2025. arXiv:2502.09356")
NANO = {"dim": 128, "depth": 4, "heads": 8, "mlp_ratio": 4, "max_sequence_length": 24, "patch_size": 8}


def write_safetensors(tensors: dict, metadata: dict[str, str], path: Path) -> None:
    """A safetensors file whose header (tensors and metadata) is in sorted key order.

    The ``safetensors`` writer orders its metadata by a per-process hash, so two runs differ;
    the format is simple enough to write directly: 8-byte little-endian header length, the JSON
    header (space-padded to 8 bytes), then the raw little-endian data in header order.
    """
    import torch

    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    chunks, offset = [], 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu", torch.float32).contiguous()
        data = tensor.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    encoded = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for chunk in chunks:
            out.write(chunk)


def model_config(source_sha256: str) -> dict:
    """The JSON config: ``ModelConfig`` fields (modalities with raw-unit statistics) and provenance."""
    from backend.contract.model_files import FORMAT_VERSION
    from backend.models.galileo import GALILEO_SPACE_TIME_GROUPS, GALILEO_SPACE_TIME_STATS, STD_MULTIPLIER

    def modality(bands: list[str]) -> dict:
        return {"bands": bands, "mean": [GALILEO_SPACE_TIME_STATS[b][0] for b in bands],
                "std": [GALILEO_SPACE_TIME_STATS[b][1] for b in bands]}

    sar = [b for b in GALILEO_SPACE_TIME_STATS if b in ("VV", "VH")]
    optical = [b for b in GALILEO_SPACE_TIME_STATS if b not in sar]
    return {
        "architecture": "galileo", "name": NAME, "sensor": "any", "format_version": FORMAT_VERSION,
        "title": "Galileo nano: pretrained on 127k global samples; any sensor through channel groups",
        **NANO,
        "modalities": {"sar": modality(sar), "optical": modality(optical)},
        "space_time_groups": {name: list(bands) for name, bands in GALILEO_SPACE_TIME_GROUPS},
        "normalisation": (f"x' = (x - (mean - {STD_MULTIPLIER:g} std)) / ({2 * STD_MULTIPLIER:g} std) per "
                          "band (S1 VV/VH in dB, S2 L1C TOA reflectance x 1e4); NDVI unchanged"),
        "licence": "MIT", "licence_file": f"{NAME}.LICENSE", "citation": CITATION,
        "provenance": {"source": SOURCE_REPOSITORY, "commit": SOURCE_COMMIT, "path": SOURCE_PATH,
                       "source_sha256": source_sha256, "converted_with": "python scripts/convert_galileo.py",
                       "storage": "float32"},
    }


def convert(source: Path, out_dir: Path) -> list[Path]:
    """Load ``source/encoder.pt`` strictly and write the three files; returns their paths."""
    from backend.errors import UserError
    from backend.io.atomic import atomic_paths
    from backend.io.checksums import file_sha256
    from backend.models.galileo import load_galileo

    checkpoint = source / "encoder.pt"
    if not (source / "LICENSE").is_file():
        raise UserError(f"{source / 'LICENSE'} not found: the MIT notice must travel with the weights")
    model = load_galileo(checkpoint)
    digest = file_sha256(checkpoint)
    config = model_config(digest)
    paths = [out_dir / f"{NAME}.safetensors", out_dir / f"{NAME}.json", out_dir / f"{NAME}.LICENSE"]
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_paths(*paths) as (weights, config_file, licence):
        write_safetensors(model.state_dict(), {"format": "terraprobe-galileo", "name": NAME,
                                               "source_sha256": digest}, weights)
        config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        licence.write_bytes((source / "LICENSE").read_bytes())
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/work/shared/models/galileo-nano"),
                        help="folder with the official encoder.pt and LICENSE")
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "models")
    args = parser.parse_args(argv)
    from backend.errors import UserError

    try:
        for path in convert(args.source, args.out):
            print(f"wrote {path} ({path.stat().st_size} bytes)")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
