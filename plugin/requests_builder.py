"""One request builder for the dock and Processing: plain choices in, a contract request out (pure Python).

The dock reads its widgets, Processing its parameters; both hand the same plain values here
(file paths of the layers, the band plan, the options), so the same choices give the same request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bands import BandPlan, match_bands
from .contract import commands as _commands
from .contract import outputs as _outputs
from .contract import requests as _requests
from .i18n import tr

Request = _requests.Request
DEFAULTS = _requests.DEFAULTS
CLUSTER_METHODS = _requests.CLUSTER_METHODS
CLASSIFIERS = _requests.CLASSIFIERS
SUGGESTED_K = _requests.SUGGESTED_K


@dataclass(frozen=True)
class AdvancedOption:
    """An option of the dock's *Advanced* section and the Processing parameter of the same name.

    Derived from the option's declaration (:mod:`backend.contract.commands`, ``plugin=PluginField(...)``).

    Attributes:
        name: the request field (and backend option without ``--``).
        parameter: the Processing parameter name.
        label: the dock's and Processing's label (translated where shown).
        help: one line for the tooltip.
        minimum, maximum, step: the spin box's range and step.
        actions: the actions that use it.
    """

    name: str
    parameter: str
    label: str
    help: str
    minimum: int
    maximum: int
    step: int
    actions: tuple[str, ...]

    @property
    def default(self) -> int:
        """The backend's default (the contract's)."""
        return int(DEFAULTS[self.name])


def offered(commands: dict | None = None) -> dict[str, tuple[_commands.Option, tuple[str, ...]]]:
    """Every option the plugin offers (declared with a ``PluginField``) and the actions that take it."""
    found: dict[str, tuple[_commands.Option, tuple[str, ...]]] = {}
    for action in _requests.actions(commands):
        for option in _commands.plugin_options(action, commands):
            declared, actions = found.get(option.dest, (option, ()))
            found[option.dest] = (declared, (*actions, action))
    return found


OFFERED = offered()
ADVANCED_OPTIONS: tuple[AdvancedOption, ...] = tuple(
    AdvancedOption(name, name.upper(), option.plugin.label, option.plugin.help, option.plugin.minimum,
                   option.plugin.maximum, option.plugin.step, actions)
    for name, (option, actions) in OFFERED.items()
    if option.plugin is not None and option.plugin.advanced and option.type is int)


def choice_labels(name: str) -> dict[str, str]:
    """``{backend choice: label}`` of an offered option (the combo boxes and Processing enums)."""
    option = OFFERED[name][0]
    return dict(zip(option.choices or (), option.plugin.choice_labels if option.plugin else ()))


CLUSTER_METHOD_LABELS: dict[str, str] = choice_labels("method")
CLASSIFIER_LABELS: dict[str, str] = choice_labels("classifier")
#: How embedding vectors are read (``--normalise``) and compared (``--distance``): the *Advanced* combo boxes
#: and the Processing enums NORMALISE and DISTANCE, in this order (labels translated where shown). Their
#: values travel in :attr:`RunChoices.advanced` under the request field's name.
FIELD_CHOICES: dict[str, dict[str, str]] = {name: choice_labels(name) for name in ("normalise", "distance")}
NORMALISE_LABELS, DISTANCE_LABELS = FIELD_CHOICES["normalise"], FIELD_CHOICES["distance"]
#: The actions that take them.
FIELD_ACTIONS: tuple[str, ...] = OFFERED["distance"][1]


@dataclass
class InputFiles:
    """The rasters a run reads, as files (non-file layers already exported) and the area in them."""

    optical: str | None = None
    sar: str | None = None
    bounds: tuple[float, float, float, float] | None = None
    bounds_crs: str | None = None
    embeddings: str | None = None


@dataclass
class RunChoices:
    """The choices every action shares (dock widgets, Processing parameters)."""

    model: str | None = None
    window: int | None = None
    device: str = _requests.AUTO
    cache_dir: str | None = None
    optical_units: str = _requests.AUTO
    sar_units: str = _requests.AUTO
    sensor: str = _requests.AUTO
    #: ADVANCED_OPTIONS name -> value; FIELD_CHOICES name (``normalise``, ``distance``) -> choice
    advanced: dict[str, Any] = field(default_factory=dict)


def optical_bands_argument(mapping: Sequence[int | None] | None, plan: BandPlan | None,
                           model_bands: Sequence[str] = ()) -> list[int] | None:
    """The explicit ``--optical-bands``, or ``None`` to let the backend match the sensor's bands.

    With spectrally filled bands the backend's own wavelength matching (the same contract function
    the table shows) must run, so the mapping must be the sensor's plan as shown.

    Raises:
        ValueError: some bands are unmapped and they are not the sensor's own spectral fill.
    """
    if mapping is None:
        mapping = plan.mapping if plan is not None else None
    if not mapping:
        return None
    if None not in mapping:
        return [int(index) for index in mapping if index is not None]
    if plan is not None and plan.can_fill and list(mapping) == list(plan.mapping):
        return None
    unmapped = [band for band, index in zip(model_bands, mapping) if index is None]
    raise ValueError(tr("bands to be spectrally filled can only be the sensor's own choice: map a layer "
                        "band to {bands}, or pick the sensor again to restore its matching")
                     .format(bands=", ".join(unmapped)))


def sar_bands_argument(mapping: Sequence[int | None] | None, model_bands: Sequence[str] = (),
                       descriptions: Sequence[str] | None = None) -> list[int] | None:
    """The explicit ``--sar-bands``: the given mapping, else matched by name (``None``: backend decides)."""
    if mapping is None and descriptions is not None and model_bands:
        mapping = match_bands(model_bands, descriptions)
    if not mapping or None in mapping:
        return None
    return [int(index) for index in mapping if index is not None]


def parse_band_text(text: str | None) -> list[int] | None:
    """A typed band mapping (``"1, 2,3"``) as indexes; ``None`` when empty.

    Raises:
        ValueError: the text lists something else than band numbers.
    """
    text = (text or "").strip()
    if not text:
        return None
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ValueError(tr("Band mapping must list band numbers, e.g. 1,2,3 (got {text})")
                         .format(text=repr(text))) from None


def build_request(action: str, out: str | Path, files: InputFiles, choices: RunChoices,
                  optical_bands: list[int] | None = None, sar_bands: list[int] | None = None,
                  **action_options: Any) -> Request:
    """The request for ``action`` from plain choices (the dock's and Processing's one builder).

    Args:
        action: ``embed``, ``cluster``, ``classify``, ``segment`` or ``similar`` (``change``: use
            :func:`build_change_request`; ``vectorise``: :func:`build_vectorise_request`).
        out: the main output file.
        files: the input files and area.
        choices: model, tiling, device, units, sensor and the *Advanced* options (``normalise`` and
            ``distance`` for :data:`FIELD_ACTIONS`; an explicit action option wins).
        optical_bands, sar_bands: explicit band mappings (``None``: the backend matches by name).
        action_options: the action's own fields of :class:`Request` (``k``, ``samples``, ``point``...).

    Values equal to the backend's defaults (:data:`DEFAULTS`, the contract's default output names)
    are left to the backend, so the same choices always give the same request, whoever builds it.

    Raises:
        ValueError: no input raster, or a choice the contract refuses.
    """
    if action not in ("change", "vectorise") and not files.optical and not files.embeddings:
        raise ValueError(tr("choose an optical layer (or existing embeddings)"))
    if files.embeddings and action != "segment" and not action_options.get("band_stats"):
        # the field replaces the encoder: pixels are read only to pair with it (segment, band statistics)
        files = InputFiles(embeddings=files.embeddings)
        optical_bands = sar_bands = None
        kept = {name: value for name, value in choices.advanced.items()
                if name not in ("overlap", "batch_size")}
        choices = RunChoices(device=choices.device, advanced=kept)
    advanced = {option.name: _unless_default(option.name, choices.advanced.get(option.name))
                for option in ADVANCED_OPTIONS if action in option.actions}
    options = {name: _unless_default(name, value) for name, value in action_options.items()}
    for name in FIELD_CHOICES if action in FIELD_ACTIONS else ():
        if options.get(name) is None:
            options[name] = _unless_default(name, choices.advanced.get(name))
    for name, key in _DEFAULT_NAMED_OUTPUTS.items():  # the backend's own default name: left to it
        if options.get(name) is not None and Path(options[name]) == _outputs.default_output(out, key):
            options[name] = None
    try:
        return Request(action=action, out=str(out), optical=files.optical, sar=files.sar,
                       embeddings=files.embeddings, bounds=files.bounds, bounds_crs=files.bounds_crs,
                       optical_bands=optical_bands, sar_bands=sar_bands, model=choices.model or None,
                       window=_unless_default("window", choices.window), device=choices.device,
                       cache_dir=choices.cache_dir or None,
                       optical_units=choices.optical_units, sar_units=choices.sar_units,
                       sensor=choices.sensor, **advanced, **options)
    except _requests.RequestError as exc:
        raise ValueError(str(exc)) from None


#: Request fields of outputs the backend names after the main output when they are not given.
_DEFAULT_NAMED_OUTPUTS = {kind.option[2:].replace("-", "_"): kind.key for kind in _outputs.OUTPUTS.values()
                          if kind.suffix}


def build_change_request(out: str | Path, before: InputFiles, after: InputFiles, choices: RunChoices,
                         optical_bands: list[int] | None = None, sar_bands: list[int] | None = None,
                         **options: Any) -> Request:
    """``change`` between two dates: each date an embedding field, or rasters embedded with one model.

    ``before`` and ``after`` hold each date's files (``embeddings``, or ``optical`` and/or ``sar``);
    the area is the before date's. ``options``: ``threshold`` (``otsu``, ``otsu3`` or a number),
    ``change_clusters`` (0: no change types), ``distance``, ``normalise``, ``seed``, ``mask_out``,
    ``types_out`` (``distance`` and ``normalise`` also from ``choices.advanced``, as for a field date).

    Raises:
        ValueError: a date without an input, or a choice the contract refuses.
    """
    dates = {"before": before, "after": after}
    for date, files in dates.items():
        if not (files.embeddings or files.optical or files.sar):
            raise ValueError(tr("choose the {date} layer").format(date=tr(date)))
    if bool(before.embeddings) != bool(after.embeddings):
        raise ValueError(tr("compare two embedding fields, or two rasters of the same kind"))
    rasters = {f"{date}_{source}": getattr(files, source) for date, files in dates.items()
               for source in ("embeddings", "optical", "sar")}
    encoder = not before.embeddings
    if not options.get("change_clusters"):
        options.pop("types_out", None)
        options["change_clusters"] = None
    if options.get("threshold") is not None and str(options["threshold"]) == _requests.DEFAULT_THRESHOLD:
        options["threshold"] = None
    return build_request("change", out, InputFiles(bounds=before.bounds if encoder else None,
                                                   bounds_crs=before.bounds_crs if encoder else None),
                         choices if encoder else RunChoices(advanced=_field_choices(choices)),
                         optical_bands if encoder else None,
                         sar_bands if encoder else None, **rasters, **options)


def _field_choices(choices: RunChoices) -> dict[str, Any]:
    """Only the ``normalise`` and ``distance`` of ``choices`` (the encoder's options do not apply)."""
    return {name: value for name, value in choices.advanced.items() if name in FIELD_CHOICES}


def default_confidence(raster: str | Path) -> str | None:
    """Classify's confidence raster beside a class map (its default name), when it exists."""
    path = _outputs.default_output(raster, "confidence")
    return str(path) if path.is_file() else None


def build_vectorise_request(raster: str | Path, out: str | Path, min_area: float = 0.0, simplify: float = 0.0,
                            confidence: str | Path | None = None, only: str | None = None) -> Request:
    """``vectorise``: a class map (classify, cluster, segment, change) to styled polygons (GeoPackage).

    A minimum area or simplification of 0 is the backend's default and left out; ``confidence``
    (classify's confidence raster) adds each polygon's mean confidence; ``only`` (``--only``) keeps the
    listed classes, values or names separated by commas (e.g. ``change``: a change mask's changed areas;
    empty: all).
    """
    only = ",".join(part.strip() for part in (only or "").split(",") if part.strip()) or None
    try:
        return Request(action="vectorise", out=str(out), raster=str(raster),
                       min_area=float(min_area) if min_area else None,
                       simplify=float(simplify) if simplify else None,
                       confidence=str(confidence) if confidence else None, only=only)
    except _requests.RequestError as exc:
        raise ValueError(str(exc)) from None


def _unless_default(name: str, value: Any) -> Any:
    """``None`` for a value equal to the backend's default (one canonical request per choice)."""
    if name != "device" and name in DEFAULTS and value is not None and value == DEFAULTS[name]:
        return None
    return value


def info_request(model: str | Path) -> Request:
    """``info MODEL``: what the dock asks about a checkpoint without a config."""
    return Request("info", model=str(model))


def import_weights_request(checkpoint: str | Path, folder: str | Path) -> Request:
    """``import-weights``: a CROMA checkpoint converted into ``folder/<stem>.safetensors``."""
    source = Path(checkpoint)
    return Request("import-weights", checkpoint=str(source),
                   out=str(Path(folder) / f"{source.stem}.safetensors"))
