"""Where a command's embeddings come from: given, cached, or computed now; and its inputs opened.

Every job module imports this one at start-up, so what loads numpy or rasterio is imported inside its
functions. How a command uses it::

    from backend.inference.resolve import InputOptions, open_inputs, resolve_embeddings

    def run(args, reporter):
        options = InputOptions.from_args(args)      # typed, built once; domain code gets these
        resolved = resolve_embeddings(options, reporter, start=0.0, end=0.8)
        stats = dict(resolved.stats)                # {"cache_hit": bool, ...} to merge into results
        with EmbeddingRaster(resolved.path) as emb: ...  # backend.inference.embedding_raster
        with open_inputs(options) as inputs: ...    # pixels on the input grid (segment)

Public API:

* ``InputOptions.from_args(args)``: the shared input options (``backend.jobs._inputs``) as one typed,
  frozen value (the defaults stay in the parser); change a field with ``dataclasses.replace``.
* ``resolve_embeddings(options, reporter, start=0.0, end=0.8) -> ResolvedEmbeddings``: ``path``, the
  embedding GeoTIFF: ``--embeddings`` when given (validated), else the cache entry (a hit logs
  "cache hit"), else computed into the cache (entries are verified before they are served, see
  ``backend.inference.cache``); ``stats`` (``cache_hit``, patch counts, ...) and ``preview`` (the PCA
  preview path, or ``None`` for ``--embeddings``). Logs the units decision (one line per modality)
  and emits every ``warning`` (units, out-of-distribution input; re-emitted on a cache hit); stats
  carry ``units`` and ``warnings``. Degenerate embeddings (collapsed or near-constant,
  ``backend.inference.guard``) are refused with exit 2 naming the detected sensor and units:
  nothing is written, neither the output nor a cache entry (an older entry marked so is refused too).
* ``embed_into_cache(options, reporter, start, end) -> (CacheEntry, stats)``: the cache entry, found
  or computed.
* ``model_path_for(options, reporter=None)``: ``--model``, else the bundled model for the sensor.
* ``open_inputs(options, config=None) -> InputSet``: the optical/radar rasters on one grid over the
  area (``backend.inference.inputs.InputSet``: ``crs``, ``transform``, ``width``, ``height``,
  ``bounds``, ``patch_transform``, ``patch_width``, ``patch_height``, and
  ``read(window) -> ({"optical"|"sar": float32 [C, h, w] normalised}, valid [h, w])`` for a pixel
  window relative to the area). ``config`` defaults to the ``--model``'s config.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from backend.contract.units import OPTICAL_UNITS, SAR_UNITS
from backend.errors import UserError
from backend.events import Reporter
from backend.inference.cache import EmbeddingCache, key_facts, writer_lock
from backend.inference.model import (
    load_model_for,
    model_config,
    model_hash,
    resolve_device,
    resolve_model_path,
)
from backend.io.atomic import atomic_paths


@dataclass(frozen=True)
class InputOptions:
    """The shared input options of one run, typed (built once from the parsed command line).

    Attributes mirror ``backend.jobs._inputs.add_input_arguments``; the parser holds their defaults.
    ``embeddings`` is ``None`` for commands without ``--embeddings``; ``normalise`` is ``none`` for
    commands without ``--normalise`` (a given field is read as it is).
    """

    optical: str | None
    optical_bands: str | None
    sar: str | None
    sar_bands: str | None
    optical_units: str
    sar_units: str
    sensor: str
    spectral_fill: str
    model: str | None
    bounds: tuple[float, float, float, float] | None
    bounds_crs: str | None
    window: int | None
    overlap: int | None
    stitch: str
    batch_size: int
    device: str
    dtype: str
    cache_dir: str | None
    cache_max_gb: float | None
    embeddings: str | None = None
    normalise: str = "none"
    month: int | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> InputOptions:
        """The options of a command line parsed by a parser with ``add_input_arguments``."""
        values = vars(args)
        options = {f.name: values[f.name] for f in fields(cls) if f.name in values}
        if options.get("bounds") is not None:
            options["bounds"] = tuple(options["bounds"])
        return cls(**options)


@dataclass(frozen=True)
class ResolvedEmbeddings:
    """The embedding GeoTIFF of a run: ``path``, ``stats`` to merge into the result (``cache_hit``,
    patch counts, ...) and the PCA ``preview`` (``None`` for given ``--embeddings``)."""

    path: Path
    stats: dict[str, Any]
    preview: Path | None


def model_path_for(options: InputOptions, reporter: Reporter | None = None) -> Path:
    """``--model``, else the bundled model for the optical raster's sensor (logged)."""
    from backend.io.sensor_bands import check_sensor_options, optical_sensor

    check_sensor_options(options.sensor, options.spectral_fill)
    if options.model:
        return resolve_model_path(options.model)
    sensor = optical_sensor(options.optical, options.sensor)
    return resolve_model_path(None, sensor, options.sar is not None,
                              reporter.log if reporter is not None else None)


def with_model_tiling(options: InputOptions, config: Any) -> InputOptions:
    """``options`` with an absent ``--window``/``--overlap`` set to the model's default
    (:func:`backend.inference.embed.default_tiling`)."""
    from backend.inference.embed import default_tiling

    window, overlap = default_tiling(config)
    return replace(options, window=window if options.window is None else options.window,
                   overlap=overlap if options.overlap is None else options.overlap)


def check_units_options(options: InputOptions) -> None:
    """One clear error for a ``--optical-units`` / ``--sar-units`` value outside the contract."""
    for option, value, choices in (("--optical-units", options.optical_units, OPTICAL_UNITS),
                                   ("--sar-units", options.sar_units, SAR_UNITS)):
        if value not in choices:
            raise UserError(f"{option} must be one of {', '.join(choices)}; got {value!r}")


def open_inputs(options: InputOptions, config: Any = None) -> Any:
    """The inputs named by ``options`` on one grid (an ``InputSet``; close it, or use ``with``)."""
    from backend.inference.inputs import InputSet

    check_units_options(options)
    if config is None:
        config = model_config(model_path_for(options))
    sensor = options.sensor
    return InputSet(options.optical, options.sar, config, optical_bands=options.optical_bands,
                    sar_bands=options.sar_bands, bounds=options.bounds, bounds_crs=options.bounds_crs,
                    optical_units=options.optical_units, sar_units=options.sar_units,
                    sensor=None if sensor in (None, "auto") else sensor, spectral_fill=options.spectral_fill,
                    month=options.month)


def resolve_embeddings(options: InputOptions, reporter: Reporter, start: float = 0.0,
                       end: float = 0.8) -> ResolvedEmbeddings:
    """The embedding GeoTIFF for ``options``: given, cached, or computed now (see the module docstring)."""
    check_units_options(options)
    if options.embeddings:
        from backend.inference.embedding_raster import EmbeddingRaster

        with EmbeddingRaster(options.embeddings, normalise=options.normalise) as emb:
            reporter.log(emb.describe())
            stats = {"cache_hit": False, "embeddings_given": True, "patch_width": emb.width,
                     "patch_height": emb.height, "embedding_dim": emb.dim, "embeddings_own": emb.own,
                     "embeddings_unit_length": emb.unit_length}
        reporter.progress(end, "using the given embeddings")
        return ResolvedEmbeddings(Path(options.embeddings), stats, None)
    entry, stats = embed_into_cache(options, reporter, start, end)
    return ResolvedEmbeddings(entry.embeddings, stats, entry.preview)


def embed_into_cache(options: InputOptions, reporter: Reporter, start: float = 0.0, end: float = 0.8,
                     copies_to: Sequence[Path] = (), compute: Callable[..., dict[str, Any]] | None = None
                     ) -> tuple[Any, dict[str, Any]]:
    """Find or compute the cache entry for ``options``; returns ``(CacheEntry, stats)``.

    ``compute`` computes the embeddings (default :func:`backend.inference.embed.compute_embeddings`;
    rank 0 of a ``torchrun`` embed passes ``backend.inference.distributed_embed.compute_sharded``).

    Before computing, the area is checked (:func:`backend.inference.area_check.check_area`): not
    absurdly large, and room for the entry and for the copies the caller makes into ``copies_to``.
    """
    from backend.inference.area_check import check_area
    from backend.inference.embed import check_tiling, compute_embeddings
    from backend.inference.memory import embed_plan, fit_batch_size

    check_units_options(options)
    if options.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {options.batch_size}")
    model_path = model_path_for(options, reporter)
    config = model_config(model_path)
    options = with_model_tiling(options, config)
    check_tiling(options.window, options.overlap)
    device = resolve_device(options.device)
    dtype, stitch = options.dtype, options.stitch
    cache = EmbeddingCache(options.cache_dir, options.cache_max_gb, reporter)
    with open_inputs(options, config) as inputs:
        facts = key_facts(inputs, model_hash(model_path), options.window, options.overlap, dtype, stitch)
        if inputs.galileo is not None:  # its channel groups and month decide the embeddings too
            facts["galileo"] = inputs.galileo.key()
        hit = cache.lookup(facts)  # verified before it is served; a bad entry is discarded with a warning
        entry = hit or cache.entry(facts)
        for note in inputs.notes:
            reporter.log(note)
        for name in inputs.names:
            reporter.log(inputs.modalities[name].units.describe())
        if hit is not None:
            reporter.log(f"cache hit: reusing embeddings {entry.embeddings}")
            stats = dict(entry.read_sidecar().get("stats", {}))
            _refuse_degenerate(stats, inputs)
            # The input warnings are fresh; the embedding-collapse ones only live in the sidecar.
            warnings = [*inputs.warnings, *(w for w in stats.get("warnings", []) if w not in inputs.warnings)]
            for message in warnings:
                reporter.warning(message)
            reporter.progress(end, "embeddings from cache")
            stats.update(cache_hit=True, cache_key=entry.key, units=inputs.units(), warnings=warnings)
            return entry, stats
        for message in inputs.warnings:
            reporter.warning(message)
        check_area(inputs, embed_plan(config, inputs, options.overlap, device).embedding_dim, dtype,
                   [entry.directory, *copies_to])
        reporter.log(f"embedding {inputs.width}x{inputs.height} px ({inputs.patch_width}x"
                     f"{inputs.patch_height} patches) with {model_path.name} on {device}")
        for name, info in inputs.stats().items():
            if info["stats_from"] == "sampled":
                reporter.log(f"{name}: the model has no band statistics; sampled them from the raster")
        batch_size = fit_batch_size(config, inputs, options.window, options.overlap, options.batch_size,
                                    device, reporter)
        model = load_model_for(model_path, inputs, device)
        began = time.perf_counter()
        targets = (entry.embeddings, entry.preview)
        with writer_lock(entry), atomic_paths(*targets) as (tmp_embeddings, tmp_preview):
            stats = (compute or compute_embeddings)(
                inputs, model, tmp_embeddings, tmp_preview, window=options.window, overlap=options.overlap,
                batch_size=batch_size, device=device, dtype=dtype, reporter=reporter, start=start, end=end,
                stitch=stitch)
            _refuse_degenerate(stats, inputs)
            _tag_units(tmp_embeddings, inputs, model_path.stem, facts["model_sha256"])
        stats.update(device=device, model=str(model_path), normalisation=inputs.stats(),
                     total_seconds=round(time.perf_counter() - began, 3), units=inputs.units(),
                     warnings=[*inputs.warnings, *stats.get("warnings", [])])
        cache.commit(entry, facts, stats)  # sidecar with checksums, then LRU eviction past the size limit
    stats = dict(stats, cache_hit=False, cache_key=entry.key)
    return entry, stats


def _refuse_degenerate(stats: dict[str, Any], inputs: Any) -> None:
    """Exit 2 when the embeddings' stats say they are degenerate (older cache entries: collapse warning)."""
    from backend.inference.guard import degenerate_error

    reason = stats.get("degenerate") or next(
        ("collapsed, as recorded in the cache entry" for w in stats.get("warnings", [])
         if w.startswith("the embeddings have collapsed")), None)
    if not reason:
        return
    read_as = []
    for name in inputs.names:
        units = inputs.modalities[name].units
        what = f"{'radar' if name == 'sar' else 'optical'} units {units.units} ({units.how})"
        if name == "optical" and inputs.sensor is not None:
            what = f"sensor {inputs.sensor.sensor} ({inputs.sensor.reason}), {what}"
        read_as.append(what)
    raise UserError(degenerate_error(reason, read_as))


def _tag_units(embeddings: Path, inputs: Any, model_name: str, model_digest: str) -> None:
    """Record the units each modality was read in, the optical sensor and its spectrally filled bands
    and the model (name and content hash) as GeoTIFF metadata of the embedding raster."""
    import rasterio

    tags = {"TERRAPROBE_MODEL": model_name, "TERRAPROBE_MODEL_HASH": model_digest}
    for name, modality in inputs.modalities.items():
        prefix = "TERRAPROBE_OPTICAL" if name == "optical" else "TERRAPROBE_SAR"
        tags[f"{prefix}_UNITS"] = modality.units.units
        tags[f"{prefix}_UNITS_HOW"] = modality.units.how
    if inputs.galileo is not None:
        tags["TERRAPROBE_GALILEO_GROUPS"] = ",".join(inputs.galileo.used)
        tags["TERRAPROBE_GALILEO_MONTH"] = str(inputs.galileo.month + 1)
    if inputs.sensor is not None:
        tags["TERRAPROBE_SENSOR"] = inputs.sensor.sensor
        tags["TERRAPROBE_SPECTRAL_FILL"] = ",".join(inputs.sensor.filled) or "none"
    with rasterio.open(embeddings, "r+") as dst:
        dst.update_tags(**tags)
