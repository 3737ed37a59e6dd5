"""The argparse parser of ``python -m backend``, built from :mod:`backend.contract.commands`.

Each command's handler (``backend.jobs.cluster:run``) is imported only when the command runs, so
``--help`` and the remote client never import a job module. Kept apart from :mod:`backend.cli` so the
remote client can parse an argv locally without importing the module that dispatches to it.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import Any

from backend import __version__
from backend.contract.commands import COMMANDS, COMMON_OPTIONS, GLOBAL_OPTIONS, Command, Option
from backend.errors import UserError


class Handler:
    """``module:function`` of a command, imported when called (``args.run(args, reporter)``)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __call__(self, *args: Any) -> Any:
        module, function = self.target.split(":")
        return getattr(importlib.import_module(module), function)(*args)


class _SceneAction(argparse.Action):
    """``--optical`` that may be repeated: the last value in ``optical``, all in ``optical_scenes``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        namespace.optical_scenes = [*(getattr(namespace, "optical_scenes", None) or []), values]
        setattr(namespace, self.dest, values)


def _noting(base: type[argparse.Action], new_flag: str) -> type[argparse.Action]:
    """``base`` that also records a deprecation note when an old spelling was used."""

    class Noting(base):  # type: ignore[valid-type, misc]
        def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                     option_string: str | None = None) -> None:
            super().__call__(parser, namespace, values, option_string)
            if option_string and option_string != new_flag and option_string in self.deprecated:
                notes = [*getattr(namespace, "deprecations", []),
                         f"{option_string} is deprecated and will be removed: use {new_flag}"]
                namespace.deprecations = notes

    return Noting


_ACTIONS: dict[str | None, type[argparse.Action]] = {
    None: argparse._StoreAction, "store_true": argparse._StoreTrueAction,
    "append": argparse._AppendAction, "scenes": _SceneAction,
}


def argument_kwargs(option: Option) -> dict[str, Any]:
    """The ``add_argument`` keywords that declare ``option``."""
    kwargs: dict[str, Any] = {"help": argparse.SUPPRESS if option.hidden else option.help.replace("%", "%%")}
    action = _ACTIONS[option.action]
    if option.deprecated:
        action = _noting(action, option.flag)
    kwargs["action"] = action
    if not option.positional:
        kwargs["dest"] = option.dest
    if option.action != "store_true":
        for key in ("type", "choices", "nargs", "metavar"):
            value = getattr(option, key)
            if value is not None:
                kwargs[key] = value
    if option.default is not None:
        kwargs["default"] = list(option.default) if isinstance(option.default, list) else option.default
    if option.required:
        kwargs["required"] = True
    return kwargs


def add_option(target: Any, option: Option) -> argparse.Action:
    """Declare ``option`` on a parser or argument group."""
    action = target.add_argument(*option.flags, **argument_kwargs(option))
    if option.deprecated:
        action.deprecated = frozenset(option.deprecated)
    return action


def _add_command(subparsers: argparse._SubParsersAction, command: Command, handler: str | None) -> None:
    handler = command.handler or handler
    kwargs = {} if command.help is None else {"help": command.help}
    parser = subparsers.add_parser(command.name, description=command.help, **kwargs)
    if command.subcommands:
        actions = parser.add_subparsers(dest=command.subcommand_dest, metavar="ACTION", required=True)
        for sub in command.subcommands:
            _add_command(actions, command.subcommand(sub.name), handler)
        return
    groups: dict[str, Any] = {}
    exclusive: dict[str, Any] = {}
    for option in (*command.options, *COMMON_OPTIONS):
        target: Any = parser
        if option.group:
            if option.group not in groups:
                groups[option.group] = parser.add_argument_group(option.group)
            target = groups[option.group]
        if option.exclusive:
            if option.exclusive not in exclusive:
                exclusive[option.exclusive] = target.add_mutually_exclusive_group()
            target = exclusive[option.exclusive]
        add_option(target, option)
    parser.set_defaults(**command.defaults, run=Handler(handler) if handler else None)


def build_parser(commands: dict[str, Command] | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every declared command (``commands``: another table, for tests)."""
    parser = argparse.ArgumentParser(
        prog="python -m backend",
        description="Terraprobe backend: CROMA / X-STARS / Galileo encoders over rasters, downstream maps "
                    "and self-supervised pretraining.",
    )
    parser.add_argument("--version", action="version", version=f"terraprobe-backend {__version__}")
    for option in GLOBAL_OPTIONS:
        add_option(parser, option)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (commands or COMMANDS).values():
        _add_command(subparsers, command, None)
    return parser


def declared_command(args: argparse.Namespace, commands: dict[str, Command] | None = None) -> Command:
    """The declaration of the (sub)command ``args`` were parsed for."""
    found = (commands or COMMANDS)[args.command]
    while found.subcommands:
        found = found.subcommand(getattr(args, found.subcommand_dest or ""))
    return found


def check_ranges(args: argparse.Namespace, commands: dict[str, Command] | None = None) -> None:
    """``UserError`` for the first option whose value is outside its declared range."""
    for option in declared_command(args, commands).options:
        problem = option.out_of_range(getattr(args, option.dest, None))
        if problem:
            raise UserError(problem)


def parse_args(argv: Sequence[str], commands: dict[str, Command] | None = None) -> argparse.Namespace:
    """``argv`` parsed with the declared commands."""
    return build_parser(commands).parse_args(list(argv))
