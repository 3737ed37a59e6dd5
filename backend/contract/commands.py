"""Every command of ``python -m backend`` and its options, declared once (pure Python).

Only relative imports: the plugin imports this module as ``terraprobe.backend.contract.commands``.
Everything else is derived from :data:`COMMANDS`: the argparse parser (:mod:`backend.parser`), the
plugin's typed requests and their argv (:mod:`backend.contract.requests`), which options name files a
run reads or writes (the overwrite guard :mod:`backend.io.outputs`, the remote client and the job server,
:mod:`backend.remote.roles`), and the Processing parameters and dock widgets of the options the plugin
offers (:attr:`Option.plugin`). Adding an option is one edit here (and its use in the job).

* ``Option``: a flag (``--window``) or positional (``checkpoint``) with its type, default, choices, help,
  file ``role`` and, where the plugin offers it, its :class:`PluginField` (label, range).
* ``Command``: a name, help, the ``module:function`` that runs it, options, or subcommands.
* ``COMMANDS``: the top-level commands by name; ``GLOBAL_OPTIONS`` and ``COMMON_OPTIONS`` (every leaf).
* ``command(*path)``: a command or subcommand (``command("models", "download")``); ``leaf_commands()``:
  every runnable command with its path; ``plugin_options(name)``: the options the plugin offers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .sensors import SENSOR_NAMES
from .units import OPTICAL_UNITS, SAR_UNITS, UNIT_HELP

#: File roles. INPUT: a file the run reads (uploaded by the remote client, refused as an output).
#: OUTPUT: a file the run writes as named. SIDECAR: an output the run names itself from the value
#: (``--head-out`` gets ``.safetensors`` + ``.json``). MACHINE: a setting of the machine the run happens on
#: (dropped by the remote client). PATH: any other path, meaningful only on this machine (refused remotely).
INPUT, OUTPUT, SIDECAR, MACHINE, PATH = "input", "output", "sidecar", "machine", "path"
FILE_ROLES = (INPUT, OUTPUT, SIDECAR, MACHINE, PATH)

#: The choice that lets the backend decide (units detected, sensor recognised, device picked).
AUTO = "auto"
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
CLUSTER_METHODS: tuple[str, ...] = ("kmeans", "hdbscan")
#: auto: the model recipe where it beats a random forest on band statistics under the spatially blocked
#: split, else that random forest.
CLASSIFIERS: tuple[str, ...] = ("auto", "knn", "random-forest", "gradient-boosting")
NORMALISE_CHOICES: tuple[str, ...] = ("auto", "l2", "none")
DISTANCES: tuple[str, ...] = ("cosine", "euclidean")
CHANGE_METHODS: tuple[str, ...] = ("auto", "fused", "spectral", "embedding")
#: ``change --threshold`` rules besides a number: ``auto`` is ``robust`` (median + 5 robust standard
#: deviations) for the pixel-level methods and ``otsu`` for embedding change alone.
THRESHOLD_RULES: tuple[str, ...] = ("auto", "otsu", "otsu3", "robust")
MODEL_SIZE_NAMES: tuple[str, ...] = ("tiny", "small", "base", "large")
OBJECTIVE_NAMES: tuple[str, ...] = ("croma", "dual", "xstars", "cmid")
#: Tile size of CROMA models in pixels (a model's config may say otherwise; Galileo encodes patches alone).
DEFAULT_WINDOW = 120
#: Default port of ``python -m backend serve``.
DEFAULT_PORT = 8765
#: The number of clusters the dock and Processing offer first (``--k`` itself has no default).
SUGGESTED_K = 8


@dataclass(frozen=True)
class PluginField:
    """How the dock and Processing offer an option: label, tooltip, range and step, choice labels."""

    label: str
    help: str = ""
    minimum: int = 0
    maximum: int = 0
    step: int = 1
    choice_labels: tuple[str, ...] = ()
    #: Under the dock's and Processing's *Advanced* options.
    advanced: bool = True
    #: The value shown first where the backend has no default (``--k``).
    default: Any = None


@dataclass(frozen=True)
class Option:
    """One option (``--flag``) or positional argument (``name``) of a command.

    ``type``: ``int``, ``float``, ``Path`` or ``None`` (text). ``action``: ``store_true`` (a switch),
    ``append`` (repeatable), ``scenes`` (repeatable ``--optical``: the last in ``optical``, all in
    ``optical_scenes``). ``bands``: the value is a band list (``1,2,3`` or names). ``deprecated``: old
    spellings still accepted with a note. ``hidden``: accepted but not shown (``change``'s per-run inputs).
    """

    flag: str
    type: Callable[[str], Any] | None = None
    default: Any = None
    choices: tuple[str, ...] | None = None
    nargs: Any = None
    metavar: Any = None
    required: bool = False
    action: str | None = None
    role: str | None = None
    group: str | None = None
    exclusive: str | None = None
    help: str = ""
    dest: str = ""
    aliases: tuple[str, ...] = ()
    deprecated: tuple[str, ...] = ()
    hidden: bool = False
    bands: bool = False
    plugin: PluginField | None = None
    #: Smallest and largest value accepted (checked by the CLI before the command runs).
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        if not self.dest:
            object.__setattr__(self, "dest", self.flag.lstrip("-").replace("-", "_"))
        if self.role is not None and self.role not in FILE_ROLES:
            raise ValueError(f"{self.flag}: unknown file role {self.role!r}")

    @property
    def positional(self) -> bool:
        return not self.flag.startswith("-")

    def out_of_range(self, value: Any) -> str | None:
        """Why ``value`` is outside the declared range, or ``None``."""
        values = value if isinstance(value, (list, tuple)) else [value]
        low, high = self.minimum, self.maximum
        for each in values:
            if each is None or ((low is None or each >= low) and (high is None or each <= high)):
                continue
            if high is not None:
                return f"{self.flag} must be between {low} and {high} (got {each})"
            return f"{self.flag} must be {'0 or more' if low == 0 else f'at least {low}'} (got {each})"
        return None

    @property
    def flags(self) -> tuple[str, ...]:
        """Every spelling argparse accepts."""
        return (self.flag, *self.aliases, *self.deprecated)


@dataclass(frozen=True)
class Command:
    """One command (``cluster``) or subcommand (``models download``); a command with subcommands gives them
    its options and handler."""

    name: str
    help: str | None
    handler: str | None = None
    options: tuple[Option, ...] = ()
    subcommands: tuple[Command, ...] = ()
    subcommand_dest: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    #: Run by the plugin's dock and Processing (a typed :class:`~.requests.Request` exists for it).
    plugin: bool = False
    #: A client may run it on a job server (``--remote``; :mod:`.remote`).
    remote: bool = False

    def subcommand(self, name: str) -> Command:
        """Subcommand ``name`` with what it inherits from this command: its options (first) and handler."""
        sub = next(each for each in self.subcommands if each.name == name)
        return replace(sub, options=(*self.options, *sub.options), handler=sub.handler or self.handler)

    def option(self, flag: str) -> Option:
        """The option spelled ``flag`` (``KeyError`` if the command has none)."""
        for each in self.options:
            if flag in each.flags or flag == each.dest:
                return each
        raise KeyError(f"{self.name} has no option {flag}")


def without(options: tuple[Option, ...], *flags: str) -> tuple[Option, ...]:
    """``options`` less those spelled ``flags``."""
    return tuple(option for option in options if option.flag not in flags)


def with_plugin(option: Option, **plugin: Any) -> Option:
    """``option`` as the plugin offers it."""
    return replace(option, plugin=PluginField(**plugin))


def _units_help(choices: tuple[str, ...]) -> str:
    return "; ".join(f"{unit}: {UNIT_HELP[unit]}" for unit in choices)


# -- options several commands share ---------------------------------------------------------------
COMMON_OPTIONS: tuple[Option, ...] = (
    Option("--events", default="human", choices=("human", "json"),
           help="human progress bars on stderr, or JSON lines on stdout for the plugin"),
    Option("--debug", action="store_true", help="show full tracebacks for unexpected errors"),
)
GLOBAL_OPTIONS: tuple[Option, ...] = (
    Option("--remote", metavar="URL", help="run the command on a job server (docs/remote.md)"),
    Option("--token-file", metavar="FILE", help="with --remote: the server's token file"),
)

OPTICAL = Option("--optical", metavar="PATH", role=INPUT, group="inputs", help="optical (Sentinel-2) raster")
OPTICAL_BANDS = Option("--optical-bands", metavar="LIST", group="inputs", bands=True,
                       help="optical bands in model order: 1-based band indexes or names, comma-separated "
                            "(default: from the band descriptions)")
SAR = Option("--sar", metavar="PATH", role=INPUT, group="inputs",
             help="radar (Sentinel-1 VV,VH) raster, aligned onto the optical grid on the fly")
SAR_BANDS = Option("--sar-bands", metavar="LIST", group="inputs", bands=True,
                   help="radar bands in model order (indexes or names)")
#: How the input values are read, for every command that reads rasters (also ``evaluate --scene``).
RADIOMETRY: tuple[Option, ...] = (
    Option("--optical-units", default=AUTO, metavar="UNITS", group="inputs",
           help=f"units of the optical values (default auto). {_units_help(OPTICAL_UNITS)}"),
    Option("--sar-units", default=AUTO, metavar="UNITS", group="inputs",
           help=f"units of the radar values (default auto). {_units_help(SAR_UNITS)}"),
    Option("--sensor", default=AUTO, metavar="SENSOR", group="inputs",
           help=f"sensor of the optical raster: {', '.join(SENSOR_NAMES)} (default auto: from band names and "
                "metadata); other sensors are matched by wavelength"),
    Option("--spectral-fill", default=AUTO, metavar="MODE", group="inputs",
           help="auto: approximate model bands the sensor lacks by interpolating in wavelength (logged as a "
                "warning); off: refuse such rasters"),
)
MODEL = Option("--model", metavar="PATH", role=INPUT, group="inputs",
               help="model (.safetensors + .json, or a CROMA .pt checkpoint); default: bundled model")
BOUNDS = Option("--bounds", type=float, nargs=4, metavar=("MINX", "MINY", "MAXX", "MAXY"), group="inputs",
                help="area to process (default: the whole raster)")
BOUNDS_CRS = Option("--bounds-crs", metavar="CRS", group="inputs",
                    help="CRS of --bounds (default: the raster's)")
WINDOW = Option("--window", type=int, group="inputs",
                help=f"tile size in pixels (multiple of 8; default: the model's, {DEFAULT_WINDOW} for CROMA; "
                     "Galileo encodes each patch alone)",
                plugin=PluginField("Window size (pixels, multiple of 8)",
                                   "Tile size of the encoder in pixels (--window)", 16, 2048, 8,
                                   advanced=False))
DEVICE = Option("--device", default=AUTO, choices=DEVICES, group="inputs",
                plugin=PluginField("Device", "Where the encoder runs (--device)", advanced=False))
#: What every command that runs the encoder takes (``embed`` repeats ``--optical``; ``change`` names its
#: rasters per date).
ENCODER_INPUTS: tuple[Option, ...] = (
    OPTICAL, OPTICAL_BANDS, SAR, SAR_BANDS, *RADIOMETRY,
    Option("--month", type=int, metavar="1-12", group="inputs",
           help="Galileo models: the month the imagery was taken (default: from the raster's metadata or "
                "file name, else July)"),
    MODEL, BOUNDS, BOUNDS_CRS, WINDOW,
    Option("--overlap", type=int, group="inputs",
           help="tile overlap in pixels (multiple of 8; default: the model's, 32 for CROMA)",
           plugin=PluginField("Tile overlap",
                              "Tile overlap of the encoder in pixels (multiple of 8; --overlap)", 0, 512, 8)),
    Option("--stitch", default="blend", choices=("blend", "centre"), group="inputs",
           help="how overlapping tiles join: tent-weighted cross-fade, or each tile's centre"),
    Option("--batch-size", type=int, default=4, group="inputs", help="tiles per encoder call",
           plugin=PluginField("Batch size", "Tiles per encoder call (--batch-size); lower it when memory is "
                              "short", 1, 256, 1)),
    DEVICE,
    Option("--dtype", default="float16", choices=("float16", "float32"), group="inputs",
           help="embedding raster data type"),
    Option("--cache-dir", metavar="DIR", role=MACHINE, group="inputs",
           help="embedding cache (default: ~/.cache/terraprobe/embeddings)"),
    Option("--cache-max-gb", type=float, metavar="GB", role=MACHINE, group="inputs",
           help="cache size limit; least recently used entries are evicted past it (default: "
                "$TERRAPROBE_CACHE_MAX_GB or 20)"),
)
#: The encoder inputs plus an embedding field that replaces them.
FIELD_INPUTS: tuple[Option, ...] = (
    *ENCODER_INPUTS,
    Option("--embeddings", metavar="PATH", role=INPUT, group="inputs",
           help="an embedding field: a GeoTIFF made by `embed`, or any multi-band float (or scaled integer) "
                "GeoTIFF/VRT such as an AlphaEarth or TESSERA export; skips the encoder"),
)
SAMPLES = Option("--samples", metavar="PATH", role=INPUT, group="samples",
                 help="polygons in any OGR vector format (GeoPackage, GeoJSON, Shapefile), any CRS")
SAMPLES_LAYER = Option("--samples-layer", metavar="NAME", group="samples",
                       help="layer of a multi-layer source (default: the first)")
SAMPLE_OPTIONS: tuple[Option, ...] = (
    SAMPLES, SAMPLES_LAYER,
    Option("--class-field", default="class", metavar="FIELD", group="samples",
           help="attribute holding each polygon's class (default: class)"),
)
#: How an embedding field is read (``EmbeddingRaster(path, normalise=...)``) and its vectors compared.
NORMALISE = Option("--normalise", default=AUTO, choices=NORMALISE_CHOICES, group="embedding field",
                   help="L2-normalise the vectors: auto (default) for embed's rasters and unit-length fields "
                        "such as AlphaEarth, l2 always, none never",
                   plugin=PluginField("Normalise vectors", "How embedding vectors are read (--normalise)",
                                      choice_labels=("auto", "L2 (unit length)", "as they are")))
DISTANCE = Option("--distance", default="cosine", choices=DISTANCES, group="embedding field",
                  help="how vectors are compared: cosine (default) or euclidean (after --normalise)",
                  plugin=PluginField("Distance", "How embedding vectors are compared (--distance)",
                                     choice_labels=("cosine", "euclidean")))
FIELD_OPTIONS: tuple[Option, ...] = (NORMALISE, DISTANCE)
CACHE_DIR = Option("--cache-dir", metavar="DIR", role=MACHINE,
                   help="embedding cache (default: $TERRAPROBE_CACHE_DIR or ~/.cache/terraprobe/embeddings)")
SEED = Option("--seed", type=int, default=0)
BENCH_DEVICE = Option("--device", default="cpu", choices=("cpu", "cuda"))


def _out(what: str) -> Option:
    return Option("--out", metavar="PATH", required=True, role=OUTPUT, help=f"{what} to write")


# -- the commands ----------------------------------------------------------------------------------

COMMANDS_LIST: tuple[Command, ...] = (
    Command("bench", "run a benchmark",
        subcommand_dest="bench",
        subcommands=(
            Command("encoder",
                    "CROMA encoder vs the published maths: ALiBi build time, forward tiles/s, peak memory, "
                    "max difference.",
                handler="backend.bench.encoder:run",
                options=(
                    Option("--sizes", type=int, default=[120, 240, 504], nargs="+",
                           help="square tile sides in pixels (multiples of 8)"),
                    Option("--repeats", type=int, default=3,
                           help="timed forwards per size (sizes above 256 px use 1)"),
                    Option("--batch", type=int, default=1, help="tiles per forward"),
                    Option("--streams", default="optical", choices=("optical", "both"),
                           help="optical encoder only, or radar + optical + joint"),
                    BENCH_DEVICE,
                    Option("--loop-rows", type=int, default=63,
                           help="query rows of the published loop timed above 900 tokens (then "
                                "extrapolated)"),
                    Option("--threads", type=int, help="torch CPU threads (default: torch's choice)"),
                    Option("--peak-tflops", type=float, default=989.0,
                           help="device peak (bf16 TFLOP/s) for MFU on CUDA"),
                    Option("--galileo", action="store_true",
                           help="bundled galileo-nano against bundled croma-small on the same tiles instead"),
                ),
            ),
            Command("inference",
                    "inference: embed major-tom-core end to end (patches/s, peak RSS) and a 2x2 mosaic of it"
                    " (streaming).",
                handler="backend.bench.inference:run",
                options=(
                    Option("--size", default="base", choices=("base", "tiny"), help="model size"),
                    Option("--crop", type=int, default=1068, help="side of the scene crop in px (max 1068)"),
                    Option("--window", type=int, default=DEFAULT_WINDOW),
                    Option("--overlap", type=int, default=32),
                    Option("--batch-size", type=int, default=4),
                    Option("--device", default="cpu"),
                    Option("--data", type=Path, role=INPUT,
                           help="major-tom-core folder (default: ../shared/data/major-tom-core)"),
                    Option("--work-dir", type=Path, role=PATH,
                           help="where temporary rasters go (default: a temp dir)"),
                ),
            ),
            Command("kmeans",
                    "k-means: our torch Lloyd (and mini-batch) k-means vs scikit-learn's KMeans on random "
                    "vectors.",
                handler="backend.bench.kmeans:run",
                options=(
                    Option("--n", type=int, default=1000000, help="number of vectors"),
                    Option("--dim", type=int, default=768, help="vector dimension"),
                    Option("--k", type=int, default=16, help="clusters"),
                    Option("--iters", type=int, default=10, help="Lloyd iterations for both"),
                    SEED,
                    Option("--init-sample", type=int, default=20000, help="vectors sampled for k-means++"),
                    Option("--minibatch-epochs", type=int, default=1,
                           help="passes of our mini-batch variant (0 to skip)"),
                    Option("--batch-size", type=int, default=8192, help="mini-batch size"),
                    Option("--device", default=AUTO, choices=DEVICES, help="for ours"),
                    Option("--skip-sklearn", action="store_true", help="time ours only"),
                ),
            ),
            Command("train",
                    "Training throughput (samples/s) of a pretraining objective, and model-FLOPs utilisation"
                    " on CUDA.",
                handler="backend.bench.train:run",
                options=(
                    Option("--objective", default="croma", choices=("croma", "dual"),
                           help="objective to time"),
                    Option("--model-size", default="base", choices=MODEL_SIZE_NAMES),
                    Option("--crop", type=int, default=120, help="chip size in pixels (multiple of 8)"),
                    Option("--batch-size", type=int, default=8),
                    Option("--steps", type=int, default=3, help="timed training steps"),
                    Option("--warmup-steps", type=int, default=1, help="untimed steps first"),
                    BENCH_DEVICE,
                    Option("--peak-tflops", type=float, help="device's dense bf16 peak, for the utilisation"),
                    Option("--no-flops", action="store_true", help="skip the FLOP count"),
                ),
            ),
        ),
    ),
    Command("cache", "show, list, clear or verify the embedding cache",
        handler="backend.jobs.cache:run",
        options=(CACHE_DIR,),
        subcommand_dest="action",
        subcommands=(
            Command("info", "folder, number of entries, total size and size limit", options=(
                Option("--cache-max-gb", type=float, metavar="GB", role=MACHINE,
                       help="size limit to report (default: $TERRAPROBE_CACHE_MAX_GB or 20)"),)),
            Command("list", "entries with size, last use and inputs"),
            Command("clear", "remove entries", options=(
                Option("--older-than", type=float, metavar="DAYS", minimum=0,
                       help="only entries not used for this many days (default: all)"),)),
            Command("verify", "check every entry's checksums and grid; remove bad ones"),
        ),
    ),
    Command("change", "change magnitude, change mask and change types between two dates",
        handler="backend.jobs.change:run",
        plugin=True,
        remote=True,
        options=(
            *without(ENCODER_INPUTS, "--optical", "--sar"),
            Option("--optical", role=INPUT, hidden=True),
            Option("--sar", role=INPUT, hidden=True),
            Option("--before-embeddings", metavar="PATH", role=INPUT, group="dates",
                   help="embedding field of the before date (made by `embed`, or any field)"),
            Option("--before-optical", metavar="PATH", role=INPUT, group="dates",
                   help="optical raster of the before date"),
            Option("--before-sar", metavar="PATH", role=INPUT, group="dates",
                   help="radar raster of the before date"),
            Option("--after-embeddings", metavar="PATH", role=INPUT, group="dates",
                   help="embedding field of the after date (made by `embed`, or any field)"),
            Option("--after-optical", metavar="PATH", role=INPUT, group="dates",
                   help="optical raster of the after date"),
            Option("--after-sar", metavar="PATH", role=INPUT, group="dates",
                   help="radar raster of the after date"),
            *FIELD_OPTIONS,
            Option("--method", default=AUTO, choices=CHANGE_METHODS,
                   help="what the magnitude measures: fused (the rasters' spectral change at pixel "
                        "resolution, weighted by the embedding change of its patch), spectral (the spectral "
                        "change alone), embedding (the embedding change per patch); auto (default): fused "
                        "for rasters, embedding for given fields"),
            Option("--threshold", default=AUTO, metavar="T",
                   help="change threshold on the magnitude: a number; robust (the median plus 5 robust "
                        "standard deviations); otsu (Otsu's automatic threshold, changed or not); otsu3 (the"
                        " upper threshold of a three-class Otsu: stable, ordinary change, strong change; for"
                        " dates whose seasons differ); auto (default): robust for the fused and spectral "
                        "methods, otsu for the embedding method"),
            Option("--change-clusters", type=int, default=0, metavar="K", minimum=0, maximum=254,
                   plugin=PluginField("Change types (clusters of change vectors; 0: off)",
                                      "Group the changed patches into this many change types (\"from–to\"; "
                                      "--change-clusters; off: none)", 0, 254, 1, advanced=False),
                   help="group the changed patches' change vectors into K types (k-means; default 0: off)"),
            Option("--seed", type=int, default=0, help="random seed of the change types"),
            _out("change magnitude GeoTIFF"),
            Option("--mask-out", metavar="PATH", role=OUTPUT,
                   help="change mask GeoTIFF (default: <out>_mask.tif)"),
            Option("--types-out", metavar="PATH", role=OUTPUT,
                   help="change types GeoTIFF (default: <out>_types.tif; with --change-clusters)"),
        ),
    ),
    Command("classify",
            "label map (+ confidence) from labelled sample polygons: kNN, random forest or gradient boosting",
        handler="backend.jobs.classify:run",
        plugin=True,
        remote=True,
        options=(
            *FIELD_INPUTS,
            replace(SAMPLES, required=True),
            *SAMPLE_OPTIONS[1:],
            *FIELD_OPTIONS,
            Option("--classifier", default=AUTO, choices=CLASSIFIERS,
                   plugin=PluginField("Classifier", "How the label map is learnt (--classifier)",
                                      advanced=False,
                                      choice_labels=("Auto (never below the raw bands)", "kNN",
                                                     "Random forest", "Gradient boosting")),
                   help="auto (default): a random forest on embeddings + band statistics where it beats a "
                        "random forest on the band statistics alone under the spatially blocked split, else "
                        "that baseline (kNN on the embeddings without --optical); knn: cosine kNN vote; "
                        "random-forest / gradient-boosting: scikit-learn models (seeded, one core). The "
                        "baseline's figure is reported beside every choice"),
            Option("--band-stats", action="store_true",
                   help="with a named --classifier: add per-patch mean/std of the input bands (standardised)"
                        " to the embeddings; needs --optical (auto uses them anyway)"),
            Option("--neighbors", type=int, default=10, minimum=1, help="k of the kNN vote (default 10)",
                   plugin=PluginField("Neighbours (k of kNN)", "k of the kNN vote of Classify (--neighbors)",
                                      1, 500, 1)),
            Option("--seed", type=int, default=0, help="random seed of the scikit-learn models"),
            Option("--cv-block", type=int, metavar="PATCHES", minimum=1,
                   help="block side of the spatially blocked accuracy, in patches (default: --window / 8 + "
                        "1, larger than the encoder's receptive field)"),
            _out("class GeoTIFF"),
            Option("--confidence-out", metavar="PATH", role=OUTPUT,
                   help="confidence GeoTIFF: the largest class probability (default: <out>_confidence.tif)"),
            Option("--probabilities-out", metavar="PATH", role=OUTPUT,
                   help="optional GeoTIFF with one probability band per class"),
        ),
    ),
    Command("cluster", "k-means or HDBSCAN cluster map (uint8 classes + QML style) of patch embeddings",
        handler="backend.jobs.cluster:run",
        plugin=True,
        remote=True,
        options=(
            *FIELD_INPUTS,
            Option("--method", default="kmeans", choices=CLUSTER_METHODS,
                   plugin=PluginField("Method", "How patches are grouped (--method)", advanced=False,
                                      choice_labels=("k-means", "HDBSCAN (no k, noise class)")),
                   help="kmeans: k clusters (needs --k, default); hdbscan: density clusters, no k, plus a "
                        "noise class"),
            Option("--k", type=int, minimum=1, help="number of clusters (k-means)",
                   plugin=PluginField("Number of clusters (k)", "k of k-means (--k)", 2, 255, 1,
                                      advanced=False, default=SUGGESTED_K)),
            Option("--seed", type=int, default=0, help="random seed (initial centres, HDBSCAN sample)",
                   plugin=PluginField("Random seed", "Seed of the initial centres and the HDBSCAN sample "
                                      "(--seed)",
                                      0, 2_147_483_647, 1, advanced=False)),
            Option("--iterations", type=int, default=30, minimum=1,
                   help="maximum Lloyd iterations (k-means)"),
            Option("--min-cluster-size", type=int, metavar="PATCHES", minimum=2,
                   help="HDBSCAN: smallest cluster in sampled patches (default 1 % of the sample, at least "
                        "10)"),
            Option("--min-samples", type=int, metavar="N", minimum=1,
                   help="HDBSCAN: density smoothing; larger = more noise (default: --min-cluster-size)"),
            Option("--sample-size", type=int, default=10000, metavar="PATCHES", minimum=2,
                   help="HDBSCAN: patches it is fitted on (seeded uniform sample; the rest are assigned to "
                        "the nearest cluster within its noise distance; default 10000)"),
            Option("--pca-dims", type=int, default=32, metavar="N", minimum=0,
                   help="HDBSCAN: cluster the sample in its first N principal components (fast in high "
                        "dimensions; 0 = full vectors; default 32)"),
            replace(DISTANCE, group=None, deprecated=("--metric",), plugin=None,
                    help="cosine: cluster L2-normalised embeddings (default); euclidean: raw vectors"),
            _out("cluster GeoTIFF"),
        ),
    ),
    Command("contact-sheet", "draw result rasters side by side into one PNG",
        handler="backend.jobs.contact_sheet:run",
        options=(
            Option("--panel", action="append", metavar="TITLE=PATH[:BANDS]", required=True,
                   help="a raster to draw; BANDS (1-based, e.g. 4,3,2) are shown as RGB. Class maps use the "
                        "colours and names of their .qml sidecar (repeatable)"),
            Option("--title", default="", help="a title over the sheet"),
            Option("--out", required=True, role=OUTPUT, help="PNG to write"),
        ),
    ),
    Command("embed", "write a per-patch embedding GeoTIFF and its PCA preview",
        handler="backend.jobs.embed:run",
        plugin=True,
        remote=True,
        defaults={"optical_scenes": None},
        options=(
            *without(ENCODER_INPUTS, "--optical"),
            Option("--optical", action="scenes", metavar="PATH", role=INPUT, group="many scenes",
                   help="optical (Sentinel-2) raster; repeat it, or give a folder of rasters or a list file "
                        "(.txt, one path a line), to embed many scenes into a VRT mosaic (--out mosaic.vrt)"),
            Option("--out", metavar="PATH", required=True, role=OUTPUT,
                   help="embedding GeoTIFF to write (a .vrt mosaic for many scenes)"),
            Option("--preview-out", metavar="PATH", role=OUTPUT,
                   help="PCA colour preview GeoTIFF (default: <out>_pca.tif)"),
        ),
    ),
    Command("evaluate",
            "scores of encoders: kNN / linear probe / random forest / k-means on a labelled patch folder, or"
            " segmentation head / kNN / random forest (with and without band statistics) on a labelled scene"
            " (--scene, spatial block CV)",
        handler="backend.jobs.evaluate:run",
        options=(
            Option("folder", nargs="?", role=INPUT,
                   help="patch mode: labelled patches FOLDER/<class>/<patch>.tif (e.g. eurosat-ms)"),
            Option("--model", action="append", default=[], metavar="PATH", role=INPUT,
                   help="a model to evaluate besides the bundled one (repeatable)"),
            Option("--no-bundled", action="store_true", help="leave out the bundled model row"),
            Option("--folds", type=int, minimum=2,
                   help="cross-validation folds (default 5 for patches, 4 for a scene)"),
            Option("--neighbors", type=int, default=20, minimum=1, help="k of the cosine kNN (default 20)"),
            SEED,
            Option("--batch-size", type=int, minimum=1,
                   help="patches (default 32) or scene tiles (default 4) per encoder call"),
            Option("--device", default=AUTO, choices=DEVICES),
            Option("--out", default="evaluation", role=OUTPUT,
                   help="output stem: writes STEM.md and STEM.json (default: evaluation)"),
            Option("--bands", group="patch mode",
                   help="1-based file band indices in model order, or 'eurosat' (default: eurosat order for "
                        "13-band files)"),
            Option("--limit-per-class", type=int, group="patch mode",
                   help="use only the first N patches of each class (quick runs)"),
            Option("--scene", metavar="PATH", role=INPUT, group="scene mode",
                   help="optical (Sentinel-2) scene to evaluate on"),
            Option("--sar", metavar="PATH", role=INPUT, group="scene mode",
                   help="radar (Sentinel-1 VV,VH) scene, aligned on the fly"),
            Option("--optical-bands", metavar="LIST", group="scene mode",
                   help="optical bands in model order (default: from the band descriptions)"),
            Option("--sar-bands", metavar="LIST", group="scene mode", help="radar bands in model order"),
            *(replace(option, group="scene mode") for option in RADIOMETRY),
            Option("--labels", metavar="PATH", role=INPUT, group="scene mode",
                   help="label raster (negative values and nodata = unlabelled), e.g. a LabelHand.tif"),
            *(replace(option, group=None) for option in SAMPLE_OPTIONS),
            replace(BOUNDS, group="scene mode", help="area to evaluate (default: the whole scene)"),
            Option("--bounds-crs", metavar="CRS", group="scene mode",
                   help="CRS of --bounds (default: the scene's)"),
            Option("--block", type=int, default=128, group="scene mode",
                   help="spatial block side in pixels (default 128)"),
            Option("--buffer", type=int, default=16, group="scene mode",
                   help="training labels dropped around held-out blocks, pixels (default 16)"),
            Option("--steps", type=int, default=300, group="scene mode", minimum=1,
                   help="segmentation head training steps"),
            Option("--window", type=int, default=DEFAULT_WINDOW, group="scene mode",
                   help="encoder tile size in pixels"),
            Option("--overlap", type=int, default=32, group="scene mode",
                   help="encoder tile overlap in pixels"),
        ),
    ),
    Command("import-weights",
            "convert CROMA_base.pt / CROMA_large.pt or a TorchGeo state_dict into a model file",
        handler="backend.jobs.import_weights:run",
        options=(
            Option("checkpoint", type=Path, role=INPUT, help="official or TorchGeo CROMA checkpoint (.pt)"),
            Option("--out", type=Path, required=True, role=OUTPUT,
                   help="output model stem or file (.safetensors; a .json config is written beside it)"),
            Option("--name", help="model name recorded in the config (default: croma-base/large/custom)"),
            Option("--heads", type=int, default=16,
                   help="attention heads of the checkpoint (not visible in its shapes; released: 16)"),
            Option("--optical-stats-from", type=Path, metavar="RASTER", role=INPUT,
                   help="record fixed optical band statistics sampled from this raster"),
            Option("--sar-stats-from", type=Path, metavar="RASTER", role=INPUT,
                   help="record fixed radar band statistics sampled from this raster"),
        ),
    ),
    Command("info", "describe a model file (.safetensors/.json) or CROMA checkpoint",
        handler="backend.jobs.info:run",
        options=(
            Option("model", type=Path, role=INPUT,
                   help="model file, its stem, a model name (galileo-nano), or an official/TorchGeo .pt"),
        ),
    ),
    Command("models", "list, download, verify and remove model weights (CROMA base/large, ...)",
        options=(
            Option("--models-dir", type=Path, metavar="DIR", role=PATH,
                   help="models folder (default: $TERRAPROBE_MODELS_DIR, else the per-user data folder's "
                        "models/, e.g. ~/.local/share/terraprobe/models)"),
            Option("--registry", type=Path, metavar="FILE", role=PATH,
                   help="extra registry JSON (entries for mirrors or site models)"),
        ),
        subcommand_dest="action",
        subcommands=(
            Command("list", "known and installed models", handler="backend.jobs.models:run_list"),
            Command("download", "download, verify and convert a model into the models folder",
                handler="backend.jobs.models:run_download",
                options=(
                    Option("name", help="model name (see `models list`), or a new name with --url/--file"),
                    Option("--url", exclusive="source",
                           help="download from this address instead of the official one (http://, https:// "
                                "or file://)"),
                    Option("--mirror", metavar="BASE", exclusive="source",
                           help="folder URL or local folder holding the release files by their original "
                                "names (default: $TERRAPROBE_MODEL_MIRROR)"),
                    Option("--file", type=Path, role=PATH, exclusive="source",
                           help="a checkpoint already on disk (no network)"),
                    Option("--timeout", type=float, default=60.0,
                           help="seconds without data before the download gives up (default 60)"),
                    Option("--force", action="store_true", help="replace an installed model of that name"),
                ),
            ),
            Command("verify", "check a checkpoint or model file (weights-only, keys, shapes, sha256)",
                handler="backend.jobs.models:run_verify",
                options=(
                    Option("path",
                           help="checkpoint (.pt), model file (.safetensors/.json) or installed name"),
                    Option("--name",
                           help="registry entry to check against (default: found by checksum/shape)"),
                ),
            ),
            Command("remove", "delete an installed model (and partial downloads of it)",
                handler="backend.jobs.models:run_remove",
                options=(Option("name", help="installed model name"),)),
        ),
    ),
    Command("pretrain", "pretrain an encoder on unlabelled S1/S2 data",
        handler="backend.jobs.pretrain:run",
        options=(
            Option("--objective", choices=OBJECTIVE_NAMES,
                   help="training objective (default croma)"),
            Option("--data", nargs="+", metavar="DATA", role=INPUT,
                   help="SSL4EO-S12 / BigEarthNet-like folders, folders of *S1*.tif/*S2*.tif scene pairs, or"
                        " explicit pairs RADAR.tif,OPTICAL.tif"),
            Option("--data-config", role=INPUT,
                   help="JSON data config: modalities, bands, per-band statistics"),
            Option("--modalities", help="comma-separated modalities to train on (default sar,optical)"),
            Option("--sar-bands", help="radar bands in model order (default VV,VH)"),
            Option("--optical-bands", help="optical bands in model order (default the 12 CROMA S2 bands)"),
            Option("--out", role=OUTPUT, help="run folder (model, state, metrics)"),
            Option("--resume", metavar="RUN_DIR", help="continue the run saved in RUN_DIR (bit for bit)"),
            Option("--init", metavar="MODEL", role=INPUT,
                   help="start from this encoder (our model files or a CROMA .pt)"),
            Option("--model-size", choices=(*MODEL_SIZE_NAMES, "custom"), group="model",
                   help="encoder size (default tiny)"),
            Option("--dim", type=int, group="model", help="custom: token width"),
            Option("--heads", type=int, group="model", help="custom: attention heads"),
            Option("--depth", type=int, group="model",
                   help="custom: optical encoder layers (radar/joint get half)"),
            Option("--crop", type=int, group="training",
                   help="chip size in pixels, a multiple of 8 (default 64)"),
            Option("--batch-size", type=int, group="training", minimum=1,
                   help="chips per process and step (default 8)"),
            Option("--steps", type=int, group="training", minimum=1,
                   help="total optimiser steps of the schedule (default 1000)"),
            Option("--max-steps", type=int, group="training",
                   help="stop after this step (save; continue later with --resume)"),
            Option("--lr", type=float, group="training", help="peak learning rate (default 1e-4)"),
            Option("--min-lr", type=float, group="training",
                   help="final learning rate of the cosine (default 0)"),
            Option("--warmup", type=int, group="training", help="linear warm-up steps (default 100)"),
            Option("--weight-decay", type=float, group="training", help="AdamW weight decay (default 0.05)"),
            Option("--clip", type=float, group="training",
                   help="gradient clipping norm, 0 = off (default 1.0)"),
            Option("--save-every", type=int, group="training", minimum=1,
                   help="checkpoint every N steps (default 500)"),
            Option("--log-every", type=int, group="training", minimum=1,
                   help="log metrics every N steps (default 1)"),
            Option("--seed", type=int, group="training",
                   help="seed of data order, masks and initialisation (default 0)"),
            Option("--workers", type=int, group="training", minimum=0,
                   help="data loader worker processes (default 0)"),
            Option("--no-flip", action="store_true", group="training",
                   help="no random flips (fixed chips when --crop = tile size)"),
            replace(DEVICE, group="training", help="where to train", plugin=None),
            Option("--stats-samples", type=int, group="training",
                   help="chips sampled for per-band statistics when the data config has none (default 256)"),
            Option("--mask-ratio", type=float, group="objective",
                   help="CROMA: share of tokens masked per modality (0.75)"),
            Option("--contrastive-weight", type=float, group="objective",
                   help="CROMA: weight of the contrastive loss (1.0)"),
            Option("--mae-weight", type=float, group="objective",
                   help="CROMA: weight of the reconstruction loss (1.0)"),
            Option("--joint-self-bias", choices=("radar", "released"), group="objective",
                   help="CROMA: joint self-attention bias: radar-radar 2D-ALiBi (default) or the released "
                        "code's cross bias"),
            Option("--xstars-encoder", choices=("shared", "separate"), group="objective",
                   help="X-STARS from scratch: one encoder shared by both sensors (default, as published) or"
                        " CROMA's separate radar and optical encoders"),
            Option("--objective-option", aliases=("-O",), action="append", default=[], metavar="KEY=VALUE",
                   group="objective",
                   help="objective-specific setting (repeatable), e.g. decoder_dim=256"),
            Option("--debug-dump-weights", action="store_true", hidden=True),
        ),
    ),
    Command("segment", "train (or reuse) a light head; full-resolution class map",
        handler="backend.jobs.segment:run",
        plugin=True,
        remote=True,
        options=(
            *FIELD_INPUTS,
            *SAMPLE_OPTIONS,
            Option("--label-raster", metavar="PATH", role=INPUT,
                   help="training labels as a raster (negative values and nodata = unlabelled)"),
            Option("--head", metavar="PATH", role=INPUT,
                   help="an existing head (.safetensors) to apply, in the form it was trained in: with "
                        "--optical/--sar, or on --embeddings alone"),
            Option("--head-out", metavar="PATH", role=SIDECAR,
                   help="where to save the trained head (default: <out>_head.safetensors)"),
            Option("--steps", type=int, default=300, minimum=1, help="training steps (AdamW)",
                   plugin=PluginField("Training steps (Segment)", "Training steps of the segmentation head "
                                      "(AdamW; --steps)", 1, 100_000, 50)),
            Option("--features", default="auto", choices=("auto", "embeddings"),
                   help="auto (default): the head on the embeddings where it beats the same head on "
                        "per-patch band statistics on held-out label blocks, else the band-statistics head "
                        "makes the map; embeddings: always the head on the embeddings (both held-out figures"
                        " are reported either way)"),
            Option("--seed", type=int, default=0, help="random seed"),
            _out("class GeoTIFF"),
        ),
    ),
    Command("selftest", "exercise the event protocol (for installation checks)",
        handler="backend.jobs.selftest:run",
        options=(
            Option("--steps", type=int, default=5, help="progress steps to report"),
            Option("--sleep", type=float, default=0.0, help="seconds to sleep per step"),
            Option("--fail", action="store_true", help="end with a bad-input error"),
            Option("--silent-sleep", type=float, default=0.0,
                   help="sleep this long without any event except heartbeats"),
        ),
    ),
    Command("sensors", "list sensor presets, or show how a raster's bands feed a model",
        handler="backend.jobs.sensors:run",
        remote=True,
        options=(
            Option("--optical", metavar="PATH", role=INPUT,
                   help="an optical raster to plan the band mapping for"),
            replace(RADIOMETRY[2], group=None),
            Option("--model", metavar="PATH", role=INPUT,
                   help="model (default: the bundled model for the sensor)"),
        ),
    ),
    Command("serve", "run the job server for --remote clients (QGIS on a laptop)",
        handler="backend.jobs.serve:run",
        options=(
            Option("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; others only with TLS)"),
            Option("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})"),
            Option("--data-root", action="append", default=[], metavar="DIR", role=PATH,
                   help="a folder whose files clients may name as server:PATH (repeatable)"),
            Option("--work-dir", default="~/.local/share/terraprobe/server", metavar="DIR", role=PATH,
                   help="uploads, job folders, embedding cache and the token file"),
            Option("--keep-hours", type=float, default=24.0,
                   help="how long finished jobs' outputs and unused uploads are kept"),
            Option("--max-upload-mb", type=float, default=4096.0, help="largest file a client may upload"),
            Option("--keep-free-mb", type=float, default=1024.0,
                   help="refuse uploads (507) that would leave less free space on the server's disk"),
            Option("--gpus", type=int,
                   help="jobs at once, one per GPU (default: GPUs nvidia-smi lists; 0 = CPU, one job)"),
            Option("--ssl-keyfile", metavar="PEM", help="TLS private key (uvicorn's own TLS)"),
            Option("--ssl-certfile", metavar="PEM", help="TLS certificate chain"),
        ),
    ),
    Command("similar", "cosine-similarity map to a point or polygons (float32 + QML)",
        handler="backend.jobs.similar:run",
        plugin=True,
        remote=True,
        options=(
            *FIELD_INPUTS,
            Option("--point", type=float, nargs=2, metavar=("X", "Y"), help="query point"),
            Option("--point-crs", metavar="CRS", help="CRS of --point (default: the raster's)"),
            SAMPLES,
            SAMPLES_LAYER,
            *FIELD_OPTIONS,
            _out("similarity GeoTIFF"),
        ),
    ),
    Command("stats", "per-band statistics of pretraining data",
        handler="backend.jobs.stats:run",
        options=(
            Option("data", nargs="+", metavar="DATA", role=INPUT,
                   help="data folders or RADAR.tif,OPTICAL.tif pairs (as for pretrain --data)"),
            Option("--out", required=True, role=OUTPUT, help="data config JSON to write"),
            Option("--data-config", role=INPUT, help="start from this data config (bands, modalities)"),
            Option("--modalities", help="comma-separated modalities (default sar,optical)"),
            Option("--sar-bands", help="radar bands in model order"),
            Option("--optical-bands", help="optical bands in model order"),
            Option("--crop", type=int, default=64, help="chip size in pixels (default 64)"),
            Option("--samples", type=int, default=256, minimum=1, help="chips to sample (default 256)"),
            Option("--seed", type=int, default=0, help="sampling seed"),
        ),
    ),
    Command("vectorise",
            "class / cluster / segmentation / change map to polygons (GeoPackage + QML style) with class, "
            "area and mean confidence",
        handler="backend.jobs.vectorise:run",
        plugin=True,
        remote=True,
        options=(
            Option("--raster", metavar="PATH", required=True, role=INPUT,
                   help="single-band integer class raster with a paletted .qml beside it or nodata 0"),
            _out("GeoPackage (.gpkg)"),
            Option("--min-area", type=float, default=0.0, metavar="M2",
                   help="smallest polygon in m²: smaller regions are first merged into their largest "
                        "neighbour (sieve), those that cannot merge are dropped (default 0: keep all)"),
            Option("--simplify", type=float, default=0.0, metavar="TOLERANCE",
                   help="Douglas-Peucker tolerance in the raster's map units: metres on a projected CRS, "
                        "degrees on a geographic one such as EPSG:4326 (warned; 0.0001° is about 11 m); a "
                        "warning counts polygons it would collapse (default 0: exact outlines)"),
            Option("--only", metavar="CLASSES",
                   help="comma-separated class values or names to write (e.g. change); default: all"),
            Option("--confidence", metavar="PATH", role=INPUT,
                   help="a confidence raster on the same grid (classify's): adds each polygon's mean"),
        ),
    ),
    Command("version", "print backend, torch and CUDA versions",
        handler="backend.jobs.version:run",
        remote=True,
    ),
    Command("worker", None,
        handler="backend.jobs.worker:run",
        options=(
            Option("--max-jobs", type=int, default=25,
                   help="leave after this many jobs (a fresh worker frees their memory)"),
            Option("--max-rss-mb", type=float, default=3072,
                   help="leave after a job that left more resident memory than this"),
        ),
    ),

)

#: The top-level commands by name.
COMMANDS: dict[str, Command] = {each.name: each for each in COMMANDS_LIST}


def command(*path: str, commands: dict[str, Command] | None = None) -> Command:
    """The command at ``path`` (``command("cluster")``, ``command("models", "download")``)."""
    found = (commands or COMMANDS)[path[0]]
    for name in path[1:]:
        found = found.subcommand(name)
    return found


def leaf_commands(commands: dict[str, Command] | None = None) -> Iterator[tuple[tuple[str, ...], Command]]:
    """Every runnable command with its path (``("models", "download")``), subcommands included."""
    def walk(path: tuple[str, ...], each: Command) -> Iterator[tuple[tuple[str, ...], Command]]:
        if not each.subcommands:
            yield path, each
        for sub in each.subcommands:
            yield from walk((*path, sub.name), each.subcommand(sub.name))

    for each in (commands or COMMANDS).values():
        yield from walk((each.name,), each)


def plugin_options(name: str, commands: dict[str, Command] | None = None) -> tuple[Option, ...]:
    """The options of command ``name`` that the dock and Processing offer (those with a label)."""
    return tuple(option for option in command(name, commands=commands).options if option.plugin is not None)
