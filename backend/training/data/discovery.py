"""Source discovery: every paired sample under the DATA arguments, found, validated and reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backend.errors import UserError
from backend.training.data.config import DataConfig
from backend.training.data.layouts import Candidate, LayoutFinder
from backend.training.data.sources import PairedSource
from backend.training.data.validation import CorruptTile, validate_candidate


@dataclass
class DiscoveryReport:
    """Sources found plus what was skipped and why."""

    sources: list[PairedSource]
    skipped: list[str]
    notes: list[str]


def discover_sources(paths: Sequence[str], config: DataConfig, crop: int | None = None) -> DiscoveryReport:
    """Find and validate every paired sample under ``paths``.

    Corrupt files skip their sample (counted in ``skipped``); bad layouts, missing bands,
    unpaired or misaligned data raise :class:`UserError`. Fatal when nothing usable remains.

    Args:
        paths: DATA arguments (folders, files, ``a.tif,b.tif`` pairs).
        config: modalities and bands to read.
        crop: chip size; sources smaller than it are skipped.
    """
    if not paths:
        raise UserError("no data given: pass one or more DATA folders or scene pairs")
    finder = LayoutFinder(config)
    candidates: list[Candidate] = []
    for entry in paths:
        found = finder.find(str(entry))
        if not found:
            raise UserError(f"no paired samples found in {entry}")
        candidates.extend(found)
    sources: list[PairedSource] = []
    skipped: list[str] = []
    for candidate in candidates:
        try:
            source = validate_candidate(candidate, config)
        except CorruptTile as exc:
            skipped.append(f"corrupt tile skipped: {exc}")
            continue
        if crop is not None and (source.area[2] < crop or source.area[3] < crop):
            skipped.append(f"{source.name}: {source.area[2]}x{source.area[3]} px is smaller than the "
                           f"{crop} px crop, skipped")
            continue
        sources.append(source)
    if not sources:
        detail = "; ".join(skipped[:3])
        raise UserError(f"no usable samples: all {len(candidates)} were skipped ({detail})")
    return DiscoveryReport(sources, skipped, finder.notes)
