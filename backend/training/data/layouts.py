"""Dataset layouts: find paired samples (candidates, not yet opened) under the DATA arguments.

SSL4EO-S12-like folders, BigEarthNet-like folders, folders of ``*S1*.tif`` / ``*S2*.tif`` scene
pairs, and explicit pairs ``RADAR.tif,OPTICAL.tif`` (``name=PATH,name=PATH``); see
:mod:`backend.training.data` for the details of each layout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from backend.errors import UserError
from backend.io.bands import canonical_band_name
from backend.training.data.config import DataConfig

_DATE = re.compile(r"(\d{8})T\d{6}")
_RASTER_SUFFIXES = (".tif", ".tiff")


def _band_token(path: Path) -> str:
    return canonical_band_name(path.stem.split("_")[-1])


def _rasters_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _RASTER_SUFFIXES)


def _per_band_files(folder: Path, bands: Sequence[str]) -> dict[str, Path]:
    """Map wanted band names to per-band files of ``folder`` (by the file name's last token)."""
    found = {}
    for path in _rasters_in(folder):
        token = _band_token(path)
        if token in bands:
            found[token] = path
    return found


def _date_of(name: str) -> str | None:
    match = _DATE.search(name)
    return match.group(1) if match else None


def _day_number(date: str) -> int:
    import datetime

    return datetime.date(int(date[:4]), int(date[4:6]), int(date[6:8])).toordinal()


@dataclass
class Candidate:
    """A sample before validation: per modality either per-band files or one multi-band file."""

    name: str
    files: dict[str, dict[str, Path] | Path]


class LayoutFinder:
    """Finds paired samples under the DATA arguments for the configured modalities."""

    def __init__(self, config: DataConfig) -> None:
        self.config = config
        self.modalities = list(config.modalities)
        self.notes: list[str] = []

    def find(self, entry: str) -> list[Candidate]:
        """Candidates of one DATA argument: a file, an explicit pair or a folder of any layout."""
        if "," in entry and not Path(entry).exists():
            return [self._explicit_pair(entry)]
        path = Path(entry)
        if not path.exists():
            raise UserError(f"data path not found: {entry}")
        if path.is_file():
            if len(self.modalities) > 1:
                raise UserError(f"{entry} is a single file; give a pair RADAR.tif,OPTICAL.tif or a folder")
            return [Candidate(path.stem, {self.modalities[0]: path})]
        if self._is_ssl4eo(path):
            return self._ssl4eo(path)
        ben = self._bigearthnet(path)
        if ben is not None:
            return ben
        return self._scene_pairs(path)

    def _explicit_pair(self, entry: str) -> Candidate:
        parts = [p.strip() for p in entry.split(",") if p.strip()]
        files: dict[str, Path] = {}
        for position, part in enumerate(parts):
            if "=" in part:
                name, value = part.split("=", 1)
            else:
                default = ["sar", "optical"]
                name, value = (default[position] if position < 2 else f"#{position}"), part
            if name not in self.config.modalities:
                raise UserError(f"data pair {entry!r}: modality {name!r} is not in the data config "
                                f"({', '.join(self.modalities)})")
            if not Path(value).is_file():
                raise UserError(f"data pair {entry!r}: file not found: {value}")
            files[name] = Path(value)
        missing = [m for m in self.modalities if m not in files]
        if missing:
            raise UserError(f"data pair {entry!r} lacks modality {', '.join(missing)}")
        return Candidate(Path(files[self.modalities[0]]).stem, files)

    @staticmethod
    def _is_ssl4eo(path: Path) -> bool:
        return (path / "s1").is_dir() or any((path / p).is_dir() for p in ("s2c", "s2a", "s2"))

    def _modality_kind(self, name: str) -> str:
        return "sar" if name == "sar" else "optical"

    def _ssl4eo(self, root: Path) -> list[Candidate]:
        product = self.config.ssl4eo_optical_product
        products = [product] if product else [p for p in ("s2c", "s2a", "s2") if (root / p).is_dir()]
        s2_root = next((root / p for p in products if (root / p).is_dir()), None)
        s1_root = root / "s1"
        roots = {}
        for name in self.modalities:
            kind = self._modality_kind(name)
            if kind == "sar":
                if not s1_root.is_dir():
                    raise UserError(f"{root}: no s1/ folder for modality {name!r}")
                roots[name] = s1_root
            else:
                if s2_root is None:
                    raise UserError(f"{root}: no Sentinel-2 folder ({' or '.join(products or ['s2c'])}/) "
                                    f"for modality {name!r}")
                roots[name] = s2_root
        locations = {name: sorted(p.name for p in r.iterdir() if p.is_dir()) for name, r in roots.items()}
        if "sar" in roots and len(roots) > 1:
            other = next(n for n in roots if n != "sar")
            lonely = sorted(set(locations["sar"]) - set(locations[other]))
            if lonely:
                raise UserError(f"unpaired data in {root}: S1 location(s) {', '.join(lonely[:5])} have no "
                                f"Sentinel-2 folder in {roots[other].name}/")
            extra = sorted(set(locations[other]) - set(locations["sar"]))
            if extra:
                self.notes.append(f"{len(extra)} S2 location(s) without S1 in {root} ignored")
        common = sorted(set.intersection(*(set(v) for v in locations.values())))
        candidates = []
        for loc in common:
            acquisitions = {name: sorted(p for p in (roots[name] / loc).iterdir() if p.is_dir())
                            for name in roots}
            for name, items in acquisitions.items():
                if not items:
                    raise UserError(f"unpaired data in {root}: location {loc} has no {name} acquisition")
            first = self.modalities[0]
            for anchor in acquisitions[first]:
                files: dict[str, dict[str, Path] | Path] = {}
                anchor_date = _date_of(anchor.name)
                for name, items in acquisitions.items():
                    if name == first:
                        chosen = anchor
                    elif anchor_date is None:
                        chosen = items[0]
                    else:
                        chosen = min(items, key=lambda p, d=anchor_date: abs(
                            _day_number(_date_of(p.name) or d) - _day_number(d)))
                    files[name] = self._band_folder(chosen, name)
                candidates.append(Candidate(f"{loc}/{anchor.name}", files))
        return candidates

    def _band_folder(self, folder: Path, modality: str) -> dict[str, Path] | Path:
        bands = self.config.modalities[modality].bands
        per_band = _per_band_files(folder, bands)
        if per_band:
            return per_band
        rasters = _rasters_in(folder)
        if len(rasters) == 1:
            return rasters[0]
        raise UserError(f"{folder}: no GeoTIFF with bands {', '.join(bands)} for modality {modality!r}")

    def _bigearthnet(self, root: Path) -> list[Candidate] | None:
        metadata = sorted(root.rglob("*_labels_metadata.json"))
        if not metadata:
            return None
        folders = {p.parent.name: p.parent for p in metadata}
        s1_patches = []
        for meta in metadata:
            try:
                info = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                self.notes.append(f"unreadable metadata {meta} ignored")
                continue
            if "corresponding_s2_patch" in info:
                s1_patches.append((meta.parent, str(info["corresponding_s2_patch"])))
        paired_s2 = {s2 for _, s2 in s1_patches}
        sar = [m for m in self.modalities if self._modality_kind(m) == "sar"]
        optical = [m for m in self.modalities if self._modality_kind(m) != "sar"]
        candidates = []
        if sar:
            for s1_folder, s2_name in s1_patches:
                files: dict[str, dict[str, Path] | Path] = {sar[0]: self._band_folder(s1_folder, sar[0])}
                if optical:
                    s2_folder = folders.get(s2_name)
                    if s2_folder is None:
                        raise UserError(f"unpaired data: S1 patch {s1_folder.name} names S2 patch {s2_name}, "
                                        f"which is not under {root}")
                    for name in optical:
                        files[name] = self._band_folder(s2_folder, name)
                candidates.append(Candidate(s1_folder.name, files))
            extra = [n for n in folders if n not in paired_s2 and n not in {f.name for f, _ in s1_patches}]
            if extra and optical:
                self.notes.append(f"{len(extra)} S2 patch(es) without S1 in {root} ignored")
        else:
            s1_names = {f.name for f, _ in s1_patches}
            for name, folder in sorted(folders.items()):
                if name in s1_names:
                    continue
                candidates.append(Candidate(name, {m: self._band_folder(folder, m) for m in optical}))
        return candidates

    def _scene_pairs(self, root: Path) -> list[Candidate]:
        rasters = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _RASTER_SUFFIXES)
        if not rasters:
            raise UserError(f"no imagery found in {root} (expected SSL4EO-S12 or BigEarthNet folders, "
                            f"or *S1*.tif / *S2*.tif scene pairs)")
        if len(self.modalities) == 1:
            token = "S1" if self.modalities[0] == "sar" else "S2"
            named = [p for p in rasters if token in p.name]
            return [Candidate(p.stem, {self.modalities[0]: p}) for p in named or rasters]
        if set(self.modalities) != {"sar", "optical"}:
            raise UserError(f"{root}: modalities {self.modalities} need explicit pairs name=PATH,name=PATH")
        names = {p.name for p in rasters}
        candidates = []
        lonely = []
        for path in rasters:
            if "S1" not in path.name:
                continue
            partner = path.with_name(path.name.replace("S1", "S2", 1))
            if partner.name in names:
                candidates.append(Candidate(path.stem, {"sar": path, "optical": partner}))
            else:
                lonely.append(path.name)
        if lonely:
            raise UserError(f"unpaired data in {root}: no S2 scene for {', '.join(lonely[:5])} "
                            f"(expected the same file name with S1 replaced by S2)")
        if not candidates:
            raise UserError(f"unpaired data in {root}: {len(rasters)} GeoTIFF(s) but no "
                            f"*S1*.tif / *S2*.tif pair")
        return candidates
