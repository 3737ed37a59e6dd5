"""What discovery yields: validated tile/scene pairs with their band files, grid and readable area."""

from __future__ import annotations

from dataclasses import dataclass

from backend.training.data.grid import PortableGrid


@dataclass
class BandRef:
    """One band of a file (1-based index)."""

    path: str
    index: int


@dataclass
class PairedSource:
    """One co-registered tile or scene pair: per modality the band files in model order.

    ``grid`` is the reference grid (finest optical band, or the first scene of a pair);
    ``area`` is the readable window ``(col, row, width, height)`` on that grid (the overlap
    of every modality).
    """

    name: str
    bands: dict[str, list[BandRef]]
    grid: PortableGrid
    area: tuple[int, int, int, int]

    def chips(self, crop: int) -> int:
        """How many chips this source contributes to one epoch (non-overlapping crops, >= 1)."""
        return max(1, (self.area[2] // crop) * (self.area[3] // crop))
