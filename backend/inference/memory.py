"""Memory guard for ``embed``: estimate the peak of one encoder batch and fit the batch size.

What one batch of ``B`` equal tiles (``T`` tokens per modality, width ``D``, ``H`` heads, MLP
ratio ``r``) really allocates on the CPU (float32, ``torch.inference_mode``):

* the dense ALiBi bias ``[H, T, T]`` float32, built once per grid and cached
  (``backend.models.alibi``); while it is built, a ``[T, T]`` float32 distance table exists too;
* attention scores: none when ``scaled_dot_product_attention`` runs its fused (flash) CPU kernel,
  which works block by block; ``B x H x T x T`` twice (scores and softmax) on the math path;
* activations: at most about ``(2 r + 6) x B x T x D`` floats alive at once (the MLP's hidden
  layer before and after GELU, the residual stream, the norm, and the unimodal encodings kept for
  the joint encoder);
* inputs: the tiles as read, stacked and cut into patches (three copies of ``B x C x 64 T``);
* the model weights (float32; twice that while the file loads: the memory-mapped file and its
  copy), GDAL's block cache (``GDAL_CACHEMAX``, at most the area's own blocks) and the stitching
  buffers (one tile row of embeddings across the raster's width, the PCA sample).

On CUDA the bias is bfloat16 on the device, or absent when FlexAttention computes it inside the
kernel (full grids of ``FLEX_MIN_TOKENS`` tokens and more).

Available memory: ``TERRAPROBE_MEMORY_LIMIT_MB`` when set (tests), else on the CPU
``MemAvailable`` of ``/proc/meminfo`` (or psutil), capped by a cgroup v2 limit, and on CUDA
``torch.cuda.mem_get_info``. A batch fits when its estimate is at most :data:`SAFETY` of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.errors import EnvironmentFault, UserError
from backend.events import Reporter
from backend.inference.embed import PCA_SAMPLE, embedding_keys
from backend.io.windows import plan_axis

MB = 1 << 20
#: Share of the available memory a run may plan to use.
SAFETY = 0.85
LIMIT_VARIABLE = "TERRAPROBE_MEMORY_LIMIT_MB"
#: Tokens from which "auto" attention on CUDA uses FlexAttention (no dense bias); see croma.py.
_FLEX_MIN_TOKENS = 2048
#: Activation floats alive at once, in units of B x T x D, besides the MLP's 2 r.
_ACTIVATION_EXTRA = 6
#: Working memory of a fused attention kernel or a CUDA context's allocator slack.
_KERNEL_WORKSPACE = 32 * MB


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of an embedding run at one batch size, in bytes, by component."""

    weights: int
    loading: int
    bias: int
    scores: int
    activations: int
    inputs: int
    buffers: int

    @property
    def total(self) -> int:
        """The peak: weights plus the larger of the loading transient and the encoding working set."""
        working = self.bias + self.scores + self.activations + self.inputs + self.buffers
        return self.weights + max(self.loading, working)


def size_text(n_bytes: float) -> str:
    """``812 MB`` or ``9.3 GB`` (binary units)."""
    if n_bytes >= 1024 * MB:
        return f"{n_bytes / (1024 * MB):.1f} GB"
    return f"{n_bytes / MB:.0f} MB"


# -- available memory ---------------------------------------------------------------------------
def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return None


def _cgroup_available() -> int | None:
    """Room left under a cgroup v2 memory limit (containers), if there is one."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((root / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def available_memory(device: str) -> tuple[int | None, str]:
    """Bytes this run may still use on ``device`` and where that figure comes from.

    Returns ``(None, reason)`` when it cannot be told (then nothing is checked).
    """
    limit = os.environ.get(LIMIT_VARIABLE)
    if limit:
        try:
            return int(float(limit) * MB), LIMIT_VARIABLE
        except ValueError:
            raise UserError(f"{LIMIT_VARIABLE} must be a number of MB, got {limit!r}") from None
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free), "free CUDA memory"
    found = [value for value in (_meminfo_available(), _cgroup_available()) if value is not None]
    return (min(found), "available RAM") if found else (None, "unknown")


# -- estimate -----------------------------------------------------------------------------------
def _cpu_sdpa_is_fused(heads: int, head_dim: int) -> bool:
    """Whether SDPA with a float bias runs the fused CPU kernel (no ``T x T`` scores per batch)."""
    import torch

    try:
        from torch.nn.attention import SDPBackend

        q = torch.zeros(1, heads, 16, head_dim)
        with torch.inference_mode():
            choice = torch._fused_sdp_choice(q, q, q, attn_mask=torch.zeros(1, heads, 16, 16))
        return int(choice) == int(SDPBackend.FLASH_ATTENTION.value)
    except Exception:  # private API: assume the worst (the math path) if it is not there
        return False


def estimate_memory(config: Any, tile_rows: int, tile_cols: int, batch: int, modalities: list[str],
                    embedding_dim: int, raster_cols: int, raster_rows: int | None = None,
                    device: str = "cpu", fused_attention: bool | None = None) -> MemoryEstimate:
    """Peak memory of embedding with ``batch`` tiles of ``tile_rows x tile_cols`` patches.

    Args:
        config: the model's ``ModelConfig``.
        tile_rows: patch rows of one tile.
        tile_cols: patch columns of one tile.
        batch: tiles per encoder call.
        modalities: the inputs given (``"optical"``, ``"sar"``).
        embedding_dim: bands of the embedding raster.
        raster_cols: patch columns of the whole area (stitching buffers span it).
        raster_rows: patch rows of the whole area (GDAL's cache holds at most the area's blocks);
            ``None`` counts the whole cache.
        device: ``"cpu"`` or ``"cuda"``.
        fused_attention: whether SDPA avoids materialising scores (CPU); ``None`` asks torch.

    Returns:
        The estimate, by component.
    """
    galileo = bool(getattr(config, "is_galileo", False))
    tokens = tile_rows * tile_cols * (_galileo_groups() if galileo else 1)
    heads, dim = int(config.heads), int(config.dim)
    patch_area = int(config.patch_size) ** 2
    channels = sum(len(config.modalities[name].bands) for name in modalities)
    cuda = device.startswith("cuda")
    weights = _parameter_count(config) * 4
    # While a model file loads, its memory-mapped bytes and their copies (or float16 copies and
    # their float32 casts) are resident together: about twice the weights, on the host.
    loading = 0 if cuda else weights
    if cuda:
        flex = tokens >= _FLEX_MIN_TOKENS
        bias = 0 if flex else heads * tokens * tokens * 2
        scores = 0
    else:
        bias = 0 if galileo else (heads + 1) * tokens * tokens * 4  # Galileo: a key mask, no bias
        if fused_attention is None:
            fused_attention = _cpu_sdpa_is_fused(heads, dim // heads)
        scores = 0 if fused_attention else 2 * batch * heads * tokens * tokens * 4
    activations = (2 * int(config.mlp_ratio) + _ACTIVATION_EXTRA) * batch * tokens * dim * 4
    inputs = 3 * batch * channels * patch_area * tokens * 4
    stitching = 3 * embedding_dim * tile_rows * raster_cols * 4 + PCA_SAMPLE * embedding_dim * 4
    gdal_cache = _gdal_cache_bytes()
    if raster_rows is not None:  # the input's blocks (float32 at most) and the embedding's
        gdal_cache = min(gdal_cache, raster_rows * raster_cols * (channels * patch_area + embedding_dim) * 4)
    # On CUDA the stitching buffers and GDAL's cache are host memory, not the device's.
    buffers = _KERNEL_WORKSPACE if cuda else stitching + gdal_cache + _KERNEL_WORKSPACE
    return MemoryEstimate(weights, loading, bias, scores, activations, inputs, buffers)


def _galileo_groups() -> int:
    """Tokens per patch of a Galileo encoder at most: one per space-time channel group."""
    from backend.models.galileo import GALILEO_SPACE_TIME_GROUPS

    return len(GALILEO_SPACE_TIME_GROUPS)


def _parameter_count(config: Any) -> int:
    """Parameters of the model ``config`` describes (built on the meta device, no memory)."""
    if getattr(config, "is_galileo", False):
        import torch

        from backend.models.galileo import GalileoEncoder

        with torch.device("meta"):
            model = GalileoEncoder(dim=int(config.dim), heads=int(config.heads),
                                   mlp_ratio=int(config.mlp_ratio))
        return sum(p.numel() for p in model.parameters())
    from backend.models.weights import parameter_count

    return parameter_count(config)


def _gdal_cache_bytes() -> int:
    """GDAL's block cache limit from ``GDAL_CACHEMAX`` (MB below 100000, else bytes; ``N%`` of RAM)."""
    value = os.environ.get("GDAL_CACHEMAX", "128").strip()
    try:
        if value.endswith("%"):
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            return int(total * float(value[:-1]) / 100)
        number = int(value)
    except (ValueError, OSError, AttributeError):
        return 128 * MB
    return number * MB if number < 100_000 else number


# -- the guard ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbedPlan:
    """What the estimate needs to know about one ``embed`` run (see :func:`embed_plan`)."""

    config: Any
    modalities: list[str]
    embedding_dim: int
    patch_rows: int
    patch_cols: int
    overlap: int
    device: str
    fused: bool | None

    def tiles(self, window: int) -> tuple[int, int, int]:
        """``(tile_rows, tile_cols, tile_count)`` of the tiling plan for ``window`` px."""
        side = window // int(self.config.patch_size)
        overlap = min(self.overlap // int(self.config.patch_size), side - 1)
        rows, cols = plan_axis(self.patch_rows, side, overlap), plan_axis(self.patch_cols, side, overlap)
        return rows[0].size, cols[0].size, len(rows) * len(cols)

    def estimate(self, window: int, batch: int) -> MemoryEstimate:
        tile_rows, tile_cols, count = self.tiles(window)
        return estimate_memory(self.config, tile_rows, tile_cols, min(batch, count), self.modalities,
                               self.embedding_dim, self.patch_cols, self.patch_rows, self.device, self.fused)


def embed_plan(config: Any, inputs: Any, overlap: int, device: str) -> EmbedPlan:
    """The :class:`EmbedPlan` of embedding ``inputs`` (an ``InputSet``) with ``config`` on ``device``."""
    names = list(inputs.names)
    heads, dim = int(config.heads), int(config.dim)
    fused = None if device.startswith("cuda") else _cpu_sdpa_is_fused(heads, dim // heads)
    return EmbedPlan(config, names, dim * len(embedding_keys(names, config)), inputs.patch_height,
                     inputs.patch_width, overlap, device, fused)


def _largest_window(run: EmbedPlan, window: int, budget: float) -> int | None:
    """The largest window (px, multiple of 8, at least 16) below ``window`` that fits at batch 1."""
    step = int(run.config.patch_size)
    for candidate in range(window - step, 2 * step - 1, -step):
        if run.estimate(candidate, 1).total <= budget:
            return candidate
    return None


def fit_batch_size(config: Any, inputs: Any, window: int, overlap: int, batch_size: int, device: str,
                   reporter: Reporter) -> int:
    """The largest batch size up to ``batch_size`` whose estimated peak fits the available memory.

    Logs one line when it lowers the batch size.

    Raises:
        EnvironmentFault: (exit 3) not even one tile fits; the message gives the estimate, the
            memory available and a ``--window`` that would fit.
    """
    available, source = available_memory(device)
    if available is None:
        return batch_size
    run = embed_plan(config, inputs, overlap, device)
    budget = available * SAFETY
    wanted = run.estimate(window, batch_size)
    if wanted.total <= budget:
        return batch_size
    for batch in range(batch_size - 1, 0, -1):
        if run.estimate(window, batch).total <= budget:
            reporter.log(f"memory: --batch-size {batch_size} at --window {window} needs about "
                         f"{size_text(wanted.total)}, {size_text(available)} available ({source}); "
                         f"using --batch-size {batch}")
            return batch
    single = run.estimate(window, 1)
    smaller = _largest_window(run, window, budget)
    advice = (f"use --window {smaller} or smaller" if smaller is not None else
              "even --window 16 does not fit: free memory or use a larger machine")
    if smaller is not None and overlap >= smaller:
        advice += f" with a smaller --overlap (e.g. {max(0, smaller // 4 // 8 * 8)})"
    where = " on the GPU" if device.startswith("cuda") else ""
    raise EnvironmentFault(
        f"not enough memory{where} for --window {window}: one tile needs about "
        f"{size_text(single.total)} (ALiBi bias {size_text(single.bias)}) but {size_text(available)} "
        f"is available ({source}); {advice}", kind="out_of_memory")

