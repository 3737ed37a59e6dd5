"""Tiling plan for patch encoders: overlapping windows whose centres stitch without seams.

All positions here are in *patches* (8x8 pixel cells) of the area being processed. A tile is
``window`` patches wide (less when the area is smaller), neighbouring tiles overlap by at least
``overlap`` patches, and the last tile of a row/column is aligned with the area's far edge. Each
tile keeps only its *core*: the boundary between two neighbours is cut in the middle of their
overlap, so every kept patch saw context on both sides (except at the area's edges) and the cores
partition the patch grid exactly.

Public API:

* ``plan_axis(n, window, overlap) -> list[Span]`` (one axis).
* ``plan_tiles(rows, cols, window, overlap) -> list[list[Tile]]`` (tiles grouped by tile row,
  row-major order; every tile in the plan has the same size).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """One tile along one axis: tile ``[start, start + size)``, kept core ``[keep_start, keep_stop)``."""

    start: int
    size: int
    keep_start: int
    keep_stop: int


@dataclass(frozen=True)
class Tile:
    """A 2D tile in patch units (rows then columns)."""

    row: Span
    col: Span


def plan_axis(n: int, window: int, overlap: int) -> list[Span]:
    """Split ``n`` patches into overlapping tiles of ``window`` patches with centre-cut cores.

    Args:
        n: patches along the axis (> 0).
        window: tile size in patches (> overlap).
        overlap: minimum overlap between neighbouring tiles in patches (>= 0).
    """
    if n <= 0:
        raise ValueError("an axis needs at least one patch")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap {overlap} must be in [0, window {window})")
    if n <= window:
        return [Span(0, n, 0, n)]
    stride = window - overlap
    starts = [*range(0, n - window, stride), n - window]
    cuts = [0]
    for first, second in zip(starts, starts[1:]):
        cuts.append((second + first + window) // 2)
    cuts.append(n)
    return [Span(s, window, cuts[i], cuts[i + 1]) for i, s in enumerate(starts)]


def plan_tiles(rows: int, cols: int, window: int, overlap: int) -> list[list[Tile]]:
    """Tiles covering a ``rows`` x ``cols`` patch grid, grouped by tile row."""
    col_spans = plan_axis(cols, window, overlap)
    return [[Tile(r, c) for c in col_spans] for r in plan_axis(rows, window, overlap)]
