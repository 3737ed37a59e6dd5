"""Typed requests: one per plugin action, turned into the backend's argv and parsed back (pure Python).

Only relative imports: the plugin imports this module as ``terraprobe.backend.contract``.

* ``Request``: a run of one of :data:`ACTIONS` (the commands declared ``plugin=True`` in
  :mod:`.commands`); its fields are the ``dest`` names of the action's declared options. ``to_argv()``
  writes only what differs from the declared defaults; ``Request.from_argv(argv)`` reads it back.
* ``InfoRequest`` (``info MODEL``) and ``ImportWeightsRequest`` (``import-weights CKPT --out M``).
* ``parse_request(argv)``: whichever of the three ``argv`` is.
* ``DEFAULTS``: the defaults the dock and Processing show for the options they offer (the model's tiling
  where the backend leaves it to the model).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from .bands import format_band_list, parse_band_list
from .commands import (
    AUTO,
    CLASSIFIERS,
    CLUSTER_METHODS,
    COMMANDS,
    DEFAULT_WINDOW,
    DEVICES,
    DISTANCES,
    NORMALISE_CHOICES,
    SUGGESTED_K,
    THRESHOLD_RULES,
    Command,
    Option,
)
from .sensors import SENSOR_NAMES
from .units import OPTICAL_UNITS, SAR_UNITS

__all__ = [
    "ACTIONS",
    "AUTO",
    "CLASSIFIERS",
    "CLUSTER_METHODS",
    "DEFAULTS",
    "DEFAULT_THRESHOLD",
    "DEVICES",
    "DISTANCES",
    "MODEL_COMMANDS",
    "NORMALISE_CHOICES",
    "SUGGESTED_K",
    "THRESHOLD_RULES",
    "Request",
    "RequestError",
    "parse_request",
    "request_options",
]

#: ``change --threshold`` when none is given.
DEFAULT_THRESHOLD: str = COMMANDS["change"].option("--threshold").default
#: Tile overlap of CROMA models in pixels (the dock's and Processing's first value; the backend's default is
#: the model's).
DEFAULT_OVERLAP = 32
#: Choices the backend validates itself (with its own explanation) rather than through argparse.
_VALIDATED: dict[str, tuple[str, ...]] = {"optical_units": OPTICAL_UNITS, "sar_units": SAR_UNITS,
                                          "sensor": SENSOR_NAMES}


class RequestError(ValueError):
    """A request that the backend would refuse (unknown action, choice or option)."""


def actions(commands: dict[str, Command] | None = None) -> tuple[str, ...]:
    """The commands the dock and Processing run."""
    return tuple(name for name, command in (commands or COMMANDS).items() if command.plugin)


#: Commands the plugin's model dialogs run besides the actions (``info MODEL``, ``import-weights CKPT``).
MODEL_COMMANDS = ("info", "import-weights")


ACTIONS: tuple[str, ...] = actions()


def request_options(action: str, commands: dict[str, Command] | None = None) -> tuple[Option, ...]:
    """The options a request of ``action`` carries: every declared one the user can see."""
    return tuple(option for option in (commands or COMMANDS)[action].options if not option.hidden)


def _plugin_defaults() -> dict[str, Any]:
    shown = {"window": DEFAULT_WINDOW, "overlap": DEFAULT_OVERLAP}
    found: dict[str, Any] = {}
    for action in ACTIONS:
        for option in request_options(action):
            value = shown.get(option.dest, option.default)
            if option.plugin is not None and value is not None:
                found.setdefault(option.dest, value)
    return found


#: The defaults of the options the dock and Processing offer (``window``, ``overlap``, ``batch_size``, ...).
DEFAULTS: dict[str, Any] = _plugin_defaults()


class Request:
    """One run of a plugin action, as the plugin asks for it and the backend receives it.

    ``Request("cluster", out="c.tif", optical="s2.tif", k=8)``: keyword fields are the ``dest`` names of the
    action's declared options; a field not given reads as ``None`` (``"auto"`` for the choices whose default
    is auto). Units, sensor and band lists are dropped without the raster they describe.
    """

    def __init__(self, action: str, commands: dict[str, Command] | None = None, **values: Any) -> None:
        table = commands or COMMANDS
        if action not in (*actions(table), *MODEL_COMMANDS):
            raise RequestError(f"unknown action {action!r}; choose one of {', '.join(actions(table))}")
        self.action, self._commands = action, commands
        self._options = {option.dest: option for option in request_options(action, table)}
        known = {option.dest for name in (*actions(table), *MODEL_COMMANDS)
                 for option in request_options(name, table)}
        self._known = known
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"Request has no field {', '.join(unknown)}")
        given = {name: value for name, value in values.items() if value is not None and value != ""}
        stray = [name for name, value in given.items() if name not in self._options
                 and not (value == AUTO and name in _VALIDATED | {"device": DEVICES})]
        if stray:
            raise RequestError(f"{action} takes no {', '.join(stray)}")
        self._values = {name: self._checked(self._options[name], value)
                        for name, value in given.items() if name in self._options}
        self._drop_orphans()

    def _checked(self, option: Option, value: Any) -> Any:
        allowed = option.choices or _VALIDATED.get(option.dest)
        if allowed is not None and value not in allowed:
            raise RequestError(f"unknown {option.dest.replace('_', ' ')} {value!r}; "
                               f"choose one of {', '.join(allowed)}")
        if option.dest == "threshold":
            return _threshold_text(value)
        return _typed(option, value)

    def _drop_orphans(self) -> None:
        values = self._values
        if not any(values.get(name) for name in ("optical", "before_optical", "after_optical")):
            for name in ("optical_units", "sensor", "optical_bands"):
                values.pop(name, None)
        if not any(values.get(name) for name in ("sar", "before_sar", "after_sar")):
            for name in ("sar_units", "sar_bands"):
                values.pop(name, None)
        if not values.get("bounds"):
            values.pop("bounds_crs", None)
        if values.get("band_stats") is False:
            values.pop("band_stats")

    def __getattr__(self, name: str) -> Any:
        options = self.__dict__.get("_options", {})
        if name not in options:
            if name in self.__dict__.get("_known", ()):
                return None  # a field of another action
            raise AttributeError(f"a {self.__dict__.get('action')} request has no field {name!r}")
        value = self._values.get(name)
        return options[name].default if value is None and options[name].default == AUTO else value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Request) and (self.action, self.given()) == (other.action, other.given())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.given().items())
        return f"Request({self.action!r}, {fields})"

    def replace(self, **changes: Any) -> Request:
        """A copy with ``changes`` (``None`` clears a field)."""
        values = {**self._values, **changes}
        return Request(self.action, commands=self._commands,
                       **{name: value for name, value in values.items() if value is not None})

    def options(self) -> tuple[Option, ...]:
        """The declared options of this request's action."""
        return tuple(self._options.values())

    def given(self) -> dict[str, Any]:
        """The fields that differ from the declared defaults, in declaration order."""
        return {name: self._values[name] for name, option in self._options.items()
                if self._values.get(name) is not None and self._values[name] != option.default}

    def to_argv(self) -> list[str]:
        """The backend argv (without the interpreter and ``--events``)."""
        if "out" in self._options and self._options["out"].required and not self._values.get("out"):
            raise RequestError("the request has no output (out)")
        argv = [self.action]
        for name, value in self.given().items():
            option = self._options[name]
            flag = [] if option.positional else [option.flag]
            argv += flag if option.action == "store_true" else [*flag, *_format(option, value)]
        return argv

    @classmethod
    def from_argv(cls, argv: Sequence[str], commands: dict[str, Command] | None = None) -> Request:
        """The request an argv made by :meth:`to_argv` stands for (``RequestError`` if it is none)."""
        table = commands or COMMANDS
        if not argv or argv[0] not in (*actions(table), *MODEL_COMMANDS):
            raise RequestError(f"not a command the plugin runs: {list(argv)[:1]}")
        options = request_options(argv[0], table)
        try:
            namespace = _parser(argv[0], options).parse_args(list(argv[1:]))
        except _ParseError as exc:
            raise RequestError(f"{argv[0]}: {exc}") from None
        values = {option.dest: getattr(namespace, option.dest) for option in options}
        given = {name: value for name, value in values.items() if value is not None}
        return cls(argv[0], commands=table, **given)


def _typed(option: Option, value: Any) -> Any:
    """``value`` as the option's type (what :meth:`Request.from_argv` reads back from text)."""
    if option.action == "store_true":
        return True if value else None
    if option.bands:
        return parse_band_list(value) if isinstance(value, str) else list(value)
    if option.nargs in (2, 4):
        return tuple(float(each) for each in value)
    if option.type in (int, float):
        return option.type(value)
    return str(value)


def _format(option: Option, value: Any) -> list[str]:
    if option.bands:
        return [format_band_list(value)]
    if option.nargs in (2, 4):
        return [repr(float(each)) for each in value]
    if option.type is float:
        return [repr(float(value))]
    return [str(value)]


def _threshold_text(value: Any) -> str:
    """A threshold rule (:data:`THRESHOLD_RULES`) or a finite number as text (``RequestError`` otherwise)."""
    text = str(value).strip().lower()
    if text in THRESHOLD_RULES:
        return text
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if number != number or number in (float("inf"), float("-inf")):
        raise RequestError(f"the change threshold must be a number or one of {', '.join(THRESHOLD_RULES)} "
                           f"(got {value!r})")
    return repr(number) if isinstance(value, float) else text


class _ParseError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """An argparse parser that raises instead of printing and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _ParseError(message)


def _parser(action: str, options: Sequence[Option]) -> _Parser:
    """Flags and value counts only: values stay text (typed by :class:`Request`), absent ones ``None``."""
    parser = _Parser(prog=action, add_help=False, allow_abbrev=False)
    for option in options:
        if option.positional:
            parser.add_argument(option.dest, nargs=option.nargs)
        elif option.action == "store_true":
            parser.add_argument(*option.flags, dest=option.dest, action="store_true", default=None)
        else:
            parser.add_argument(*option.flags, dest=option.dest, nargs=option.nargs)
    return parser


def parse_request(argv: Sequence[str]) -> Request:
    """The typed request ``argv`` stands for (``RequestError`` if it is none)."""
    return Request.from_argv(argv)
