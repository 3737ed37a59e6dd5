"""Typed requests: one per plugin action, turned into the backend's argv and parsed back (pure Python).

Only relative imports: the plugin imports this module as ``terraprobe.backend.contract``.

* ``Request``: a run of one of :data:`ACTIONS`: the inference commands (``embed``, ``cluster``,
  ``classify``, ``segment``, ``similar``), ``change`` (two dates) and ``vectorise`` (a class map to
  polygons): the shared inputs the action takes plus its own options, each a typed field.
  ``to_argv()`` writes only what differs from the backend's defaults (``DEFAULTS``);
  ``Request.from_argv(argv)`` reads it back.
* ``InfoRequest`` (``info MODEL``) and ``ImportWeightsRequest`` (``import-weights CKPT --out M``).
* ``parse_request(argv)``: whichever of the three ``argv`` is.
* ``DEFAULTS``: the backend's defaults of the options the dock and Processing offer (``--window``,
  ``--overlap``, ``--batch-size``, ``--seed``, ``--neighbors``, ``--steps``, ``--method``,
  ``--classifier``, ``--normalise``, ``--distance``); ``SUGGESTED_K``; change's default threshold
  ``DEFAULT_THRESHOLD``.

Option tables (:data:`INPUT_OPTIONS`, :data:`ACTION_OPTIONS`) drive both directions, so a renamed
option is renamed once; the tests parse every argv with the backend's own parser as well.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Union

from .bands import format_band_list, parse_band_list
from .sensors import SENSOR_NAMES
from .units import OPTICAL_UNITS, SAR_UNITS

#: The actions the dock and Processing run.
ACTIONS: tuple[str, ...] = ("embed", "cluster", "classify", "segment", "similar", "change", "vectorise")
#: ``cluster --method`` choices.
CLUSTER_METHODS: tuple[str, ...] = ("kmeans", "hdbscan")
#: ``classify --classifier`` choices (auto: the model recipe where it beats a random forest on band
#: statistics under the spatially blocked split, else that random forest).
CLASSIFIERS: tuple[str, ...] = ("auto", "knn", "random-forest", "gradient-boosting")
#: ``--normalise`` choices (embedding fields) and ``--distance`` choices (similar, classify, change).
NORMALISE_CHOICES: tuple[str, ...] = ("auto", "l2", "none")
DISTANCES: tuple[str, ...] = ("cosine", "euclidean")
#: ``change --threshold`` automatic choices (else a number).
THRESHOLD_MODES: tuple[str, ...] = ("otsu", "otsu3")
#: The choice that lets the backend decide (units detected, sensor recognised, device picked).
AUTO = "auto"
#: ``--device`` choices.
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
#: The backend's defaults of the options the plugin offers.
DEFAULTS: dict[str, Any] = {"window": 120, "overlap": 32, "batch_size": 4, "device": AUTO, "seed": 0,
                            "neighbors": 10, "steps": 300, "method": "kmeans", "classifier": "auto",
                            "normalise": "auto", "distance": "cosine"}
#: ``change --threshold`` rules (besides a number): ``auto`` is ``robust`` (median + 5 robust standard
#: deviations) for the pixel-level methods and ``otsu`` for embedding change alone.
THRESHOLD_RULES: tuple[str, ...] = ("auto", "otsu", "otsu3", "robust")
#: ``change --threshold`` when none is given.
DEFAULT_THRESHOLD = "auto"
#: The number of clusters the dock and Processing offer first (``--k`` itself has no default).
SUGGESTED_K = 8


class RequestError(ValueError):
    """A request that the backend would refuse (unknown action, choice or option)."""


@dataclass(frozen=True)
class Option:
    """One command-line option of a request: its flag, the field it fills and the value's shape.

    ``kind``: ``str``, ``int``, ``float``, ``float2`` (two floats), ``float4`` (four floats), ``bands``
    or ``flag`` (a switch: present when true).
    """

    flag: str
    name: str
    kind: str = "str"


INPUT_OPTIONS: tuple[Option, ...] = (
    Option("--embeddings", "embeddings"),
    Option("--optical", "optical"),
    Option("--optical-bands", "optical_bands", "bands"),
    Option("--sar", "sar"),
    Option("--sar-bands", "sar_bands", "bands"),
    Option("--model", "model"),
    Option("--bounds", "bounds", "float4"),
    Option("--bounds-crs", "bounds_crs"),
    Option("--window", "window", "int"),
    Option("--overlap", "overlap", "int"),
    Option("--batch-size", "batch_size", "int"),
    Option("--optical-units", "optical_units"),
    Option("--sar-units", "sar_units"),
    Option("--sensor", "sensor"),
    Option("--device", "device"),
    Option("--cache-dir", "cache_dir"),
    Option("--out", "out"),
)
_SAMPLES = (Option("--samples", "samples"), Option("--class-field", "class_field"))
_FIELD = (Option("--normalise", "normalise"), Option("--distance", "distance"))
#: The encoder inputs ``change`` takes once for both dates (its rasters are per date).
_DATE_SOURCES = ("embeddings", "optical", "sar")
ACTION_OPTIONS: dict[str, tuple[Option, ...]] = {
    "embed": (Option("--preview-out", "preview_out"),),
    "cluster": (Option("--method", "method"), Option("--k", "k", "int"), Option("--seed", "seed", "int"),
                Option("--min-cluster-size", "min_cluster_size", "int")),
    "classify": (*_SAMPLES, *_FIELD, Option("--classifier", "classifier"),
                 Option("--band-stats", "band_stats", "flag"), Option("--neighbors", "neighbors", "int"),
                 Option("--confidence-out", "confidence_out"),
                 Option("--probabilities-out", "probabilities_out")),
    "segment": (*_SAMPLES, Option("--label-raster", "label_raster"), Option("--head", "head"),
                Option("--head-out", "head_out"), Option("--steps", "steps", "int")),
    "similar": (Option("--point", "point", "float2"), Option("--point-crs", "point_crs"),
                Option("--samples", "samples"), *_FIELD),
    "change": (*(Option(f"--{date}-{source}", f"{date}_{source}")
                 for date in ("before", "after") for source in _DATE_SOURCES),
               *_FIELD, Option("--threshold", "threshold"),
               Option("--change-clusters", "change_clusters", "int"),
               Option("--seed", "seed", "int"), Option("--mask-out", "mask_out"),
               Option("--types-out", "types_out")),
    "vectorise": (Option("--raster", "raster"), Option("--min-area", "min_area", "float"),
                  Option("--simplify", "simplify", "float"), Option("--confidence", "confidence"),
                  Option("--only", "only")),
}
#: The shared inputs each action takes (``change`` names its rasters per date; ``vectorise`` none).
_ACTION_INPUTS: dict[str, tuple[Option, ...]] = {
    **{action: INPUT_OPTIONS for action in ACTIONS},
    "change": tuple(o for o in INPUT_OPTIONS if o.name not in _DATE_SOURCES),
    "vectorise": tuple(o for o in INPUT_OPTIONS if o.name == "out"),
}


@dataclass
class Request:
    """One inference run, as the plugin asks for it and the backend receives it.

    ``None`` (or ``"auto"`` for choices) leaves an option to the backend's default. Units and the
    sensor matter only where the encoder reads pixels: they are reset to ``auto`` without the raster
    they describe, as are the band lists.

    Attributes:
        action: one of :data:`ACTIONS`.
        out: the main output GeoTIFF.
        optical, sar: raster files; ``embeddings``: an embedding raster made by ``embed``.
        optical_bands, sar_bands: the layer band (1-based index, or name) of each model band.
        model: model file (``None``: the bundled model for the layer's sensor).
        bounds, bounds_crs: area ``(minx, miny, maxx, maxy)`` and its CRS (``None``: whole raster).
        window, overlap, batch_size, device, cache_dir: encoder tiling and where it runs.
        optical_units, sar_units, sensor: radiometry choices (``units.OPTICAL_UNITS``, ...).
        preview_out: embed's PCA preview; k, seed: cluster; samples, class_field: polygons;
        neighbors, confidence_out: classify; label_raster, head, head_out, steps: segment;
        point, point_crs: similar's query point (else ``samples``).
        method, min_cluster_size: cluster (``kmeans``/``hdbscan``); classifier, band_stats,
        probabilities_out: classify; normalise, distance: how fields are compared (:data:`DISTANCES`).
        before_*/after_* (embeddings, optical, sar), threshold, change_clusters, mask_out, types_out: change.
        raster, min_area, simplify, confidence, only: vectorise (``only``: comma-separated class values
        or names to write, e.g. ``change``).
    """

    action: str
    out: str = ""
    optical: str | None = None
    optical_bands: list[int | str] | None = None
    sar: str | None = None
    sar_bands: list[int | str] | None = None
    embeddings: str | None = None
    model: str | None = None
    bounds: tuple[float, float, float, float] | None = None
    bounds_crs: str | None = None
    window: int | None = None
    overlap: int | None = None
    batch_size: int | None = None
    device: str = AUTO
    cache_dir: str | None = None
    optical_units: str = AUTO
    sar_units: str = AUTO
    sensor: str = AUTO
    preview_out: str | None = None
    k: int | None = None
    seed: int | None = None
    samples: str | None = None
    class_field: str | None = None
    neighbors: int | None = None
    confidence_out: str | None = None
    label_raster: str | None = None
    head: str | None = None
    head_out: str | None = None
    steps: int | None = None
    point: tuple[float, float] | None = None
    point_crs: str | None = None
    method: str | None = None
    min_cluster_size: int | None = None
    classifier: str | None = None
    band_stats: bool | None = None
    probabilities_out: str | None = None
    normalise: str | None = None
    distance: str | None = None
    before_embeddings: str | None = None
    before_optical: str | None = None
    before_sar: str | None = None
    after_embeddings: str | None = None
    after_optical: str | None = None
    after_sar: str | None = None
    threshold: str | None = None
    change_clusters: int | None = None
    mask_out: str | None = None
    types_out: str | None = None
    raster: str | None = None
    min_area: float | None = None
    simplify: float | None = None
    confidence: str | None = None
    only: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise RequestError(f"unknown action {self.action!r}; choose one of {', '.join(ACTIONS)}")
        for name, allowed in (("optical_units", OPTICAL_UNITS), ("sar_units", SAR_UNITS),
                              ("sensor", SENSOR_NAMES), ("device", DEVICES)):
            value = getattr(self, name) or AUTO
            if value not in allowed:
                raise RequestError(f"unknown {name.replace('_', ' ')} {value!r}; "
                                   f"choose one of {', '.join(allowed)}")
            setattr(self, name, value)
        for name, allowed in (("method", CLUSTER_METHODS), ("classifier", CLASSIFIERS),
                              ("normalise", NORMALISE_CHOICES), ("distance", DISTANCES)):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise RequestError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        if self.threshold is not None:
            self.threshold = _threshold_text(self.threshold)
        if not self.band_stats:
            self.band_stats = None
        if not (self.optical or self.before_optical or self.after_optical):
            self.optical_units, self.sensor, self.optical_bands = AUTO, AUTO, None
        if not (self.sar or self.before_sar or self.after_sar):
            self.sar_units, self.sar_bands = AUTO, None
        if not self.bounds:
            self.bounds, self.bounds_crs = None, None
        for name in ("optical_bands", "sar_bands"):
            value = getattr(self, name)
            setattr(self, name, list(value) if value else None)
        if self.bounds is not None:
            self.bounds = tuple(float(v) for v in self.bounds)  # type: ignore[assignment]
        if self.point is not None:
            self.point = (float(self.point[0]), float(self.point[1]))
        allowed_fields = {o.name for o in self.options()}
        stray = [f.name for f in fields(self) if f.name not in allowed_fields | {"action"}
                 and getattr(self, f.name) is not None
                 and not (f.name in _AUTO_CHOICES and getattr(self, f.name) == AUTO)]
        if stray:
            raise RequestError(f"{self.action} takes no {', '.join(stray)}")

    def options(self) -> tuple[Option, ...]:
        """The options of this request's action, shared inputs first."""
        return (*_ACTION_INPUTS[self.action], *ACTION_OPTIONS[self.action])

    def to_argv(self) -> list[str]:
        """The backend argv (without the interpreter and ``--events``)."""
        if not self.out:
            raise RequestError("the request has no output (out)")
        argv = [self.action]
        for option in self.options():
            value = getattr(self, option.name)
            if value is None or value == "" or (value == AUTO and option.name in _AUTO_CHOICES):
                continue
            argv += [option.flag] if option.kind == "flag" else [option.flag, *_format(option.kind, value)]
        return argv

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> Request:
        """The request an argv made by :meth:`to_argv` stands for (``RequestError`` if it is none)."""
        if not argv or argv[0] not in ACTIONS:
            raise RequestError(f"not a command the plugin runs: {list(argv)[:1]}")
        action = argv[0]
        parser = _parser(action)
        try:
            namespace = parser.parse_args(list(argv[1:]))
        except _ParseError as exc:
            raise RequestError(f"{action}: {exc}") from None
        values = {option.name: _parse(option.kind, getattr(namespace, option.name))
                  for option in (*_ACTION_INPUTS[action], *ACTION_OPTIONS[action])}
        values = {name: value for name, value in values.items() if value is not None}
        return cls(action=action, **values)


_AUTO_CHOICES = {"optical_units", "sar_units", "sensor", "device"}


def _format(kind: str, value: Any) -> list[str]:
    if kind == "int":
        return [str(int(value))]
    if kind == "float":
        return [repr(float(value))]
    if kind in ("float2", "float4"):
        return [repr(float(v)) for v in value]
    if kind == "bands":
        return [format_band_list(value)]
    return [str(value)]


def _threshold_text(value: Any) -> str:
    """``otsu``, ``otsu3`` or a finite number as text (``RequestError`` otherwise)."""
    text = str(value).strip().lower()
    if text in THRESHOLD_MODES:
        return text
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if number != number or number in (float("inf"), float("-inf")):
        raise RequestError(f"the change threshold must be a number, otsu or otsu3 (got {value!r})")
    return repr(number) if isinstance(value, float) else text


def _parse(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "flag":
        return True if value else None
    if kind in ("float2", "float4"):
        return tuple(float(v) for v in value)
    if kind == "bands":
        return parse_band_list(value)
    return value


class _ParseError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """An argparse parser that raises instead of printing and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _ParseError(message)


def _parser(action: str) -> _Parser:
    parser = _Parser(prog=action, add_help=False, allow_abbrev=False)
    for option in (*_ACTION_INPUTS[action], *ACTION_OPTIONS[action]):
        if option.kind == "flag":
            parser.add_argument(option.flag, dest=option.name, action="store_true")
            continue
        nargs = {"float2": 2, "float4": 4}.get(option.kind)
        parser.add_argument(option.flag, dest=option.name, nargs=nargs)
    return parser


@dataclass
class InfoRequest:
    """``info MODEL``: a model's name, size, bands and statistics."""

    model: str
    action: str = "info"

    def to_argv(self) -> list[str]:
        return ["info", str(self.model)]

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> InfoRequest:
        if len(argv) != 2 or argv[0] != "info":
            raise RequestError(f"not an info command: {list(argv)}")
        return cls(model=argv[1])


@dataclass
class ImportWeightsRequest:
    """``import-weights CHECKPOINT --out MODEL``: convert a CROMA checkpoint into a Terraprobe model."""

    checkpoint: str
    out: str
    action: str = "import-weights"

    def to_argv(self) -> list[str]:
        return ["import-weights", str(self.checkpoint), "--out", str(self.out)]

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> ImportWeightsRequest:
        argv = list(argv)
        if len(argv) != 4 or argv[0] != "import-weights" or argv[2] != "--out":
            raise RequestError(f"not an import-weights command: {argv}")
        return cls(checkpoint=argv[1], out=argv[3])


AnyRequest = Union[Request, InfoRequest, ImportWeightsRequest]


def parse_request(argv: Sequence[str]) -> AnyRequest:
    """The typed request ``argv`` stands for (any of the three kinds)."""
    command = argv[0] if argv else ""
    if command == "info":
        return InfoRequest.from_argv(argv)
    if command == "import-weights":
        return ImportWeightsRequest.from_argv(argv)
    return Request.from_argv(argv)
