"""Everything about the command line is derived from the declarations in ``backend/contract/commands.py``.

For every declared option: the argparse parser, the plugin's request round trip and the remote file roles
agree with the declaration (the Processing parameters are checked in ``tests/plugin/test_processing.py``);
an option added to a copy of the table appears in each of them; the window default is written once.
"""

from __future__ import annotations

import argparse
import io
import tokenize
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from backend.contract import commands as declared
from backend.contract.commands import (
    COMMANDS,
    INPUT,
    MACHINE,
    OUTPUT,
    PATH,
    SIDECAR,
    Option,
    PluginField,
    leaf_commands,
)
from backend.contract.remote import REMOTE_COMMANDS
from backend.contract.requests import _VALIDATED, Request, actions, request_options
from backend.io.outputs import options_with
from backend.parser import build_parser
from backend.remote.roles import command_roles, roles_of

REPO = Path(__file__).resolve().parents[1]


def _leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {path: parser}
    found: dict[tuple[str, ...], Any] = {}
    for name, sub in subs[0].choices.items():
        found.update(_leaf_parsers(sub, (*path, name)))
    return found


def _action(parser: argparse.ArgumentParser, option: Option) -> argparse.Action:
    return next(a for a in parser._actions if option.flag in a.option_strings or a.dest == option.flag)


def _assert_declared(action: argparse.Action, option: Option) -> None:
    assert set(action.option_strings) == (set(option.flags) if not option.positional else set())
    assert action.dest == option.dest
    assert action.default == option.default or (option.action == "store_true" and action.default is False)
    assert action.required == (option.required or (option.positional and option.nargs not in ("?", "*")))
    if option.action != "store_true":
        assert action.type == option.type and action.nargs == option.nargs
        assert tuple(action.choices) == option.choices if option.choices else action.choices is None
    assert (action.help == argparse.SUPPRESS) == option.hidden


def test_the_parser_declares_every_option_as_the_table_says():
    leaves = _leaf_parsers(build_parser())
    declared_paths = dict(leaf_commands())
    assert set(leaves) == set(declared_paths)
    checked = 0
    for path, command in declared_paths.items():
        for option in command.options:
            _assert_declared(_action(leaves[path], option), option)
            checked += 1
    assert checked > 300


def _sample(option: Option) -> Any:
    """A value of the option's declared type (not its default)."""
    if option.action == "store_true":
        return True
    if option.choices:
        return next(choice for choice in reversed(option.choices) if choice != option.default)
    if option.dest in _VALIDATED:
        return _VALIDATED[option.dest][-1]
    if option.bands:
        return [3, 2, 1]
    if option.nargs in (2, 4):
        return tuple(float(i) + 0.5 for i in range(option.nargs))
    if option.dest == "threshold":
        return "otsu3"
    if option.type is int:
        return 7
    if option.type is float:
        return 2.5
    if option.role in (INPUT, OUTPUT, SIDECAR, MACHINE, PATH):
        return f"/data/{option.dest} file.tif"
    return "some text"


def _full_request(action: str, commands: dict | None = None) -> Request:
    """A request of ``action`` with every declared option set to a non-default value."""
    values = {option.dest: _sample(option) for option in request_options(action, commands)}
    return Request(action, commands=commands, **values)


@pytest.mark.parametrize("action", actions())
def test_every_request_option_round_trips_and_reaches_the_backend_as_declared(action):
    request = _full_request(action)
    argv = request.to_argv()
    assert Request.from_argv(argv) == request
    parsed = build_parser().parse_args(argv)
    for option in request.options():
        value = getattr(request, option.dest)
        assert value is not None, option.flag  # every option survives (inputs present, none dropped)
        expected = (",".join(map(str, value)) if option.bands else list(value) if option.nargs
                    else value)
        assert getattr(parsed, option.dest) == expected, option.flag


@pytest.mark.parametrize("command", REMOTE_COMMANDS)
def test_remote_file_roles_are_the_declared_roles(command):
    roles = command_roles(command)
    options = COMMANDS[command].options
    def flags(*wanted: str) -> set[str]:
        return {flag for option in options if option.role in wanted for flag in option.flags}

    assert roles.inputs == flags(INPUT)
    assert roles.outputs == flags(OUTPUT, SIDECAR)
    assert roles.refused == flags(PATH)
    assert {flag for option in options for flag in option.flags} <= roles.known


def test_a_made_up_option_appears_everywhere():
    """One edit to a copy of the table: the parser, the request, the file roles, the guard, the plugin."""
    from plugin.requests_builder import offered

    made_up = Option("--made-up", type=int, default=3, help="an option nobody asked for",
                     plugin=PluginField("Made up", "A made-up option", 1, 9, 1))
    extra_input = Option("--extra-raster", metavar="PATH", role=INPUT, help="a second raster")
    extra_output = Option("--extra-out", metavar="PATH", role=OUTPUT, help="a second output")
    cluster = COMMANDS["cluster"]
    table = {**COMMANDS, "cluster": replace(cluster, options=(*cluster.options, made_up, extra_input,
                                                              extra_output))}

    parsed = build_parser(table).parse_args(["cluster", "--embeddings", "e.tif", "--k", "3", "--out", "c.tif",
                                             "--made-up", "5", "--extra-raster", "x.tif"])
    assert parsed.made_up == 5 and parsed.extra_raster == "x.tif"
    assert build_parser(table).parse_args(["cluster", "--out", "c.tif"]).made_up == 3
    with pytest.raises(SystemExit):
        build_parser().parse_args(["cluster", "--out", "c.tif", "--made-up", "5"])

    request = Request("cluster", commands=table, out="c.tif", embeddings="e.tif", made_up=5,
                      extra_raster="x.tif")
    argv = request.to_argv()
    assert argv[argv.index("--made-up") + 1] == "5"
    assert Request.from_argv(argv, commands=table) == request
    with pytest.raises(TypeError):
        Request("cluster", out="c.tif", made_up=5)  # the real table has no such option

    roles = roles_of(table["cluster"])
    assert "--extra-raster" in roles.inputs and "--extra-out" in roles.outputs
    assert options_with(INPUT, table)["extra_raster"] == "--extra-raster"
    assert options_with(OUTPUT, table)["extra_out"] == "--extra-out"
    option, used_by = offered(table)["made_up"]
    assert option.plugin.label == "Made up" and used_by == ("cluster",)
    assert "made_up" not in offered()


def test_cluster_takes_distance_and_the_old_metric_with_a_note():
    new = build_parser().parse_args(["cluster", "--out", "c.tif", "--distance", "euclidean"])
    old = build_parser().parse_args(["cluster", "--out", "c.tif", "--metric", "euclidean"])
    assert new.distance == old.distance == "euclidean"
    assert not getattr(new, "deprecations", None)
    assert old.deprecations == ["--metric is deprecated and will be removed: use --distance"]
    assert "--metric" not in COMMANDS["cluster"].option("--distance").help


def _window_literals(path: Path) -> list[int]:
    """Lines of ``path`` whose code (not comments or text) holds the number 120 next to a ``window`` name."""
    lines: dict[int, list[tokenize.TokenInfo]] = {}
    for token in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        lines.setdefault(token.start[0], []).append(token)
    found = []
    for number, tokens in lines.items():
        names = {t.string.lower() for t in tokens if t.type == tokenize.NAME}
        values = {t.string for t in tokens if t.type == tokenize.NUMBER}
        if "120" in values and any("window" in name for name in names):
            found.append(number)
    return found


def test_the_window_default_is_written_once():
    found = {f"{path.relative_to(REPO)}:{line}" for folder in ("backend", "plugin")
             for path in sorted((REPO / folder).rglob("*.py")) for line in _window_literals(path)}
    assert len(found) == 1 and next(iter(found)).startswith("backend/contract/commands.py"), found
    assert declared.DEFAULT_WINDOW == 120


def test_declared_ranges_are_checked_before_the_run(tmp_path):
    """``--k 0`` is refused from the declaration: one error event, exit 2, nothing written."""
    import json
    import subprocess
    import sys

    out = tmp_path / "c.tif"
    run = subprocess.run([sys.executable, "-m", "backend", "cluster", "--embeddings", str(tmp_path / "e.tif"),
                          "--k", "0", "--out", str(out), "--events", "json"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    errors = [event for event in events if event["event"] == "error"]
    assert run.returncode == 2 and not out.exists()
    assert [e["message"] for e in errors] == ["--k must be at least 1 (got 0)"]
    option = COMMANDS["change"].option("--change-clusters")
    assert option.out_of_range(255) == "--change-clusters must be between 0 and 254 (got 255)"
    assert option.out_of_range(0) is None and option.out_of_range(None) is None


def test_the_typed_input_options_are_the_declared_encoder_inputs():
    """``InputOptions`` (what every encoder job hands to domain code) has one field per declared input."""
    from dataclasses import fields

    from backend.inference.resolve import InputOptions

    declared_inputs = {option.dest for option in declared.FIELD_INPUTS} | {declared.NORMALISE.dest}
    assert {field.name for field in fields(InputOptions)} == declared_inputs


def test_every_command_prints_its_help_with_each_group_once():
    for path, parser in _leaf_parsers(build_parser()).items():
        text = parser.format_help()
        titles = [group.title for group in parser._action_groups if group._group_actions]
        assert len(titles) == len(set(titles)), path
        assert all(f"\n{title}:" in text for title in titles if title not in ("positional arguments",
                                                                                 "options")), path
    assert len(build_parser().parse_args(["models", "list"]).__dict__) > 3
