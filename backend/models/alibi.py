"""2D-ALiBi and X-ALiBi attention biases of CROMA, built without Python loops over patch pairs.

The published bias for heads ``h`` and patches ``i`` (query) and ``j`` (key) on a grid of patch
rows x columns is ``-m_h * dist(i, j)``, where ``dist`` is the Euclidean distance between patch
positions in patch units and ``m_h`` the standard ALiBi slopes. The published code builds it with
a Python double loop (distances in double precision multiplied by float32 slopes). Here the
distances are computed in float64 over whole index tensors, cast to float32, multiplied by the
float32 slopes and negated, which gives the same bits.

The bias is never a parameter or buffer: it is derived from the grid, cached per
(grid, heads, device, dtype) and created on the device of the input.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

#: How many dense biases to keep (a 504 px base bias alone is 1 GB in float32).
_CACHE_SIZE = 4
_CACHE: OrderedDict[tuple, Tensor] = OrderedDict()
_CACHE_LOCK = threading.Lock()
#: Dense biases up to this many values are built single-threaded with NumPy.
_NUMPY_MAX_ELEMENTS = 1 << 21


def _power_of_two_slopes(heads: int) -> list[float]:
    start = 2.0 ** (-(2.0 ** -(math.log2(heads) - 3)))
    return [start * start**i for i in range(heads)]


def _slopes_as_floats(heads: int) -> list[float]:
    if math.log2(heads).is_integer():
        return _power_of_two_slopes(heads)
    # The ALiBi interleave for other head counts: the closest lower power of two, then every
    # other slope of twice that count.
    closest = 2 ** math.floor(math.log2(heads))
    return _power_of_two_slopes(closest) + _slopes_as_floats(2 * closest)[0::2][: heads - closest]


def alibi_slopes(heads: int) -> Tensor:
    """ALiBi slopes for ``heads`` heads as float32 (``2^(-h/2)``, h = 1..16, for 16 heads).

    Args:
        heads: number of attention heads (any positive count).

    Returns:
        Tensor of shape ``[heads]``, float32 on the CPU.
    """
    if heads < 1:
        raise ValueError(f"heads must be positive, got {heads}")
    return torch.tensor(_slopes_as_floats(heads), dtype=torch.float32)


def grid_positions(rows: int, cols: int, device: torch.device | str | None = None) -> Tensor:
    """Token indices ``0 .. rows*cols-1`` of a row-major patch grid (int64)."""
    return torch.arange(rows * cols, device=device)


def _distances(q_positions: Tensor, k_positions: Tensor, cols: int) -> Tensor:
    """Euclidean patch distances in float64 between token indices (broadcast ``[..., Nq, Nk]``)."""
    q = q_positions.to(torch.int64)
    k = k_positions.to(torch.int64)
    dr = (q // cols).unsqueeze(-1) - (k // cols).unsqueeze(-2)
    dc = (q % cols).unsqueeze(-1) - (k % cols).unsqueeze(-2)
    return (dr * dr + dc * dc).to(torch.float64).sqrt_()


def alibi_bias_between(q_positions: Tensor, k_positions: Tensor, cols: int, heads: int,
                       dtype: torch.dtype = torch.float32) -> Tensor:
    """ALiBi bias between query and key token subsets of a grid with ``cols`` columns.

    Equal, bit for bit, to gathering ``bias[h, q, k]`` from the dense published bias, without
    ever building the dense ``N x N`` matrix. Used for MAE-style masking (each sample keeps its
    own tokens) and for X-ALiBi (radar query positions vs optical key positions).

    Args:
        q_positions: query token indices ``[B, Nq]`` (row-major into the grid).
        k_positions: key token indices ``[B, Nk]``.
        cols: number of patch columns of the grid.
        heads: number of attention heads.
        dtype: dtype of the result (the arithmetic is always float64 -> float32 as published).

    Returns:
        Bias ``[B, heads, Nq, Nk]`` on the device of ``q_positions``.
    """
    dist = _distances(q_positions, k_positions, cols).to(torch.float32)
    slopes = alibi_slopes(heads).to(dist.device).view(1, heads, 1, 1)
    return (dist.unsqueeze(1) * slopes).neg_().to(dtype)


def _dense_bias(rows: int, cols: int, heads: int) -> Tensor:
    """``[heads, N, N]`` float32 bias for the full grid, on the CPU.

    Small grids are built with NumPy: its element-wise kernels are single-threaded, which keeps
    them fast on a busy machine where a small multi-threaded torch op can stall waiting for its
    worker threads. The maths is
    the same IEEE sequence as :func:`alibi_bias_between`: sqrt in float64, cast to float32,
    float32 product with the slope, negation.
    """
    # The distance depends only on |row offset| and |column offset|: a small table, gathered
    # into the [rows, cols, rows, cols] layout of row-major token pairs.
    offsets = np.arange(max(rows, cols), dtype=np.int64)
    table = np.sqrt((offsets[:rows, None] ** 2 + offsets[None, :cols] ** 2).astype(np.float64))
    table = table.astype(np.float32)
    row_offsets = np.abs(offsets[:rows, None] - offsets[None, :rows])
    col_offsets = np.abs(offsets[:cols, None] - offsets[None, :cols])
    dist = table[row_offsets[:, None, :, None], col_offsets[None, :, None, :]]
    dist = dist.reshape(rows * cols, rows * cols)
    slopes = alibi_slopes(heads)
    if heads * dist.size <= _NUMPY_MAX_ELEMENTS:
        bias = slopes.numpy()[:, None, None] * dist[None]
        return torch.from_numpy(np.negative(bias, out=bias))
    # Large grids: the float32 product is memory bound; torch's threads help there.
    return (torch.from_numpy(dist).unsqueeze(0) * slopes.view(heads, 1, 1)).neg_()


def alibi_bias(rows: int, cols: int, heads: int, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32) -> Tensor:
    """Dense 2D-ALiBi bias ``[1, heads, N, N]`` for a ``rows x cols`` patch grid (cached).

    Args:
        rows: patch rows (image height / patch size).
        cols: patch columns (image width / patch size).
        heads: number of attention heads.
        device: where the bias is needed (it is built there).
        dtype: dtype of the bias (computed in float32 as published, then cast).

    Returns:
        The bias, shared read-only between callers: do not modify it in place.
    """
    device = torch.device(device)
    key = (rows, cols, heads, str(device), dtype)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    bias = _dense_bias(rows, cols, heads).unsqueeze(0).to(device, dtype)
    with _CACHE_LOCK:
        _CACHE[key] = bias
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return bias


def clear_alibi_cache() -> None:
    """Forget every cached dense bias (frees memory after very large windows)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def reference_alibi_loop(rows: int, cols: int, heads: int, max_query_rows: int | None = None) -> Tensor:
    """The published construction: a Python double loop over patch pairs (slow; for checks).

    Args:
        rows: patch rows.
        cols: patch columns.
        heads: number of heads.
        max_query_rows: build only the bias rows of the first ``max_query_rows`` query tokens
            (to time the loop on a subset at very large grids).

    Returns:
        Bias ``[1, heads, Nq, N]`` with ``Nq = rows*cols`` unless ``max_query_rows`` is given.
    """
    points = [(r, c) for r in range(rows) for c in range(cols)]
    queries = points if max_query_rows is None else points[:max_query_rows]
    slopes = alibi_slopes(heads).unsqueeze(1)
    columns = []
    for p1 in queries:
        for p2 in points:
            distance = math.sqrt((p1[0] - p2[0]) ** 2 + (p1[1] - p2[1]) ** 2)
            columns.append(distance * slopes * -1)
    return torch.cat(columns, dim=1).view(1, heads, len(queries), len(points))


@dataclass
class AlibiBias:
    """A lazily built ALiBi bias: for a full grid, or for query/key token subsets.

    Attention layers receive this object instead of a tensor so that a kernel which can compute
    the bias itself (FlexAttention on GPU) never materialises the ``N x N`` matrix.

    Attributes:
        rows: patch rows of the grid.
        cols: patch columns of the grid.
        heads: number of attention heads.
        q_positions: query token indices ``[B, Nq]``, or ``None`` for every grid token.
        k_positions: key token indices ``[B, Nk]``, or ``None`` for every grid token.
    """

    rows: int
    cols: int
    heads: int
    q_positions: Tensor | None = None
    k_positions: Tensor | None = None
    _subset_cache: dict[tuple[str, torch.dtype], Tensor] = field(default_factory=dict, repr=False,
                                                                  compare=False)

    @property
    def is_full_grid(self) -> bool:
        return self.q_positions is None and self.k_positions is None

    def dense(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> Tensor:
        """The bias as a tensor ``[1 or B, heads, Nq, Nk]`` on ``device``."""
        if self.is_full_grid:
            return alibi_bias(self.rows, self.cols, self.heads, device, dtype)
        key = (str(device), dtype)
        if key in self._subset_cache:  # every layer of one forward reuses it
            return self._subset_cache[key]
        everything = grid_positions(self.rows, self.cols, device).unsqueeze(0)
        q = everything if self.q_positions is None else self.q_positions.to(device)
        k = everything if self.k_positions is None else self.k_positions.to(device)
        self._subset_cache[key] = alibi_bias_between(q, k, self.cols, self.heads, dtype)
        return self._subset_cache[key]
