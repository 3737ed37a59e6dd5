"""Which options of the remotely runnable commands name local files, in one place.

Shared by the client (what to upload, where outputs go) and the server (which argv values must be
placeholders, never client-supplied server paths). :func:`command_roles` derives each command's
roles from its parser and the table every command's guard uses (:data:`backend.io.outputs.INPUT_OPTIONS`
/ ``OUTPUT_OPTIONS``): every ``--*-out`` option is an output, and any other option that names a file or
folder (metavar ``PATH``/``DIR``, ``Path`` type) is refused remotely. Standard library only: the client
runs in any Python 3, QGIS's own included.
"""

from __future__ import annotations

import argparse
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from backend.contract.remote import REMOTE_COMMANDS as REMOTE_COMMANDS  # re-exported
from backend.io.outputs import INPUT_OPTIONS, OUTPUT_OPTIONS

#: Options whose value is a file the run reads: uploaded (or named on the server with ``server:``).
INPUT_FLAGS = frozenset(option for option in INPUT_OPTIONS.values() if option.startswith("--"))
#: Options whose value is a file the run writes (with its sidecars in the same folder).
OUTPUT_FLAGS = frozenset([*OUTPUT_OPTIONS.values(), "--head-out"])
#: Options that configure the machine the run happens on: the client drops them (the server's own apply).
DROPPED_FLAGS = {"--cache-dir": 1, "--cache-max-gb": 1, "--events": 1}
#: Prefix of an input value that names a file already on the server, under one of its ``--data-root``s.
SERVER_PREFIX = "server:"
#: Files that travel with an input: same folder, same stem (model weights + JSON, shapefile parts).
COMPANION_SUFFIXES = {
    ".safetensors": (".json",), ".json": (".safetensors",),
    ".shp": (".shx", ".dbf", ".prj", ".cpg", ".qix"),
}
#: Sidecars that travel with any input when present (band descriptions and statistics).
SIDECAR_SUFFIXES = (".aux.xml",)
#: The style QGIS reads beside an output (``backend.downstream.styles.style_path``).
STYLE_SUFFIX = ".qml"
#: The option whose value may be a model *name* (``galileo-nano``) that the server resolves among its
#: own bundled and installed models, instead of a local file pair to upload.
MODEL_FLAG = "--model"
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_MODEL_FILE_SUFFIXES = (".safetensors", ".json", ".pt")


def is_model_name(value: str) -> bool:
    """Whether ``value`` is a bare model name (one word, no folder, no model-file suffix)."""
    return bool(_MODEL_NAME.fullmatch(value)) and Path(value).suffix not in _MODEL_FILE_SUFFIXES


def split_flag(token: str) -> tuple[str, str | None]:
    """``"--out=x.tif"`` -> ``("--out", "x.tif")``; ``"--out"`` -> ``("--out", None)``."""
    if token.startswith("--") and "=" in token:
        flag, value = token.split("=", 1)
        return flag, value
    return token, None


@dataclass(frozen=True)
class Roles:
    """What each option of one command is, from its parser."""

    known: frozenset[str]
    inputs: frozenset[str]
    outputs: frozenset[str]
    #: Options that name files or folders but are neither a known input nor an output: never remote.
    refused: frozenset[str]


def _names_a_path(action: argparse.Action) -> bool:
    return (action.metavar in ("PATH", "DIR", "FILE", "FOLDER") or action.type is Path
            or action.dest.endswith(("_dir", "_file", "_path", "_folder")))


@functools.cache
def command_roles(command: str) -> Roles:
    """The roles of ``command``'s options: the shared tables, plus every ``--*-out`` option as an output."""
    from backend.parser import build_parser

    parser = build_parser()
    for group in parser._subparsers._group_actions:
        if isinstance(group, argparse._SubParsersAction) and command in group.choices:
            actions = group.choices[command]._actions
            break
    else:
        raise KeyError(command)
    known, inputs, outputs, refused = set(), set(), set(), set()
    for action in actions:
        for flag in action.option_strings:
            known.add(flag)
            if flag in INPUT_FLAGS:
                inputs.add(flag)
            elif flag in OUTPUT_FLAGS or action.dest.endswith("_out"):
                outputs.add(flag)
            elif flag in DROPPED_FLAGS:
                continue
            elif _names_a_path(action):
                refused.add(flag)
    return Roles(frozenset(known), frozenset(inputs), frozenset(outputs), frozenset(refused))


def output_files(command: str, option: str, name: str) -> list[str]:
    """The file names a run of ``command`` may write for output ``option`` named ``name``; first the one
    that must arrive.

    From the contract's output declarations (:data:`backend.contract.outputs.OUTPUTS`): the file (a head
    as ``.safetensors`` + ``.json``), for the main ``--out`` the default outputs beside it whose options
    the command has, each with its ``.qml`` style when it is styled and its ``.aux.xml`` sidecar.
    """
    from backend.contract.outputs import MAIN_OUTPUT, OUTPUTS, default_output

    path = Path(name)
    if option == "--out":
        outputs = command_roles(command).outputs
        kinds = [(path, OUTPUTS.get(MAIN_OUTPUT.get(command, "")))]
        kinds += [(default_output(path, kind.key), kind) for kind in OUTPUTS.values()
                  if kind.suffix and kind.option in outputs]
    else:
        kinds = [(path, next((kind for kind in OUTPUTS.values() if kind.option == option), None))]
    names: list[str] = []
    for file, kind in kinds:
        files = [file]
        if kind is not None and kind.key == "head":
            base = file.with_suffix("") if file.suffix == ".safetensors" else file
            suffixes = (".safetensors", *COMPANION_SUFFIXES[".safetensors"])
            files = [base.with_name(base.name + suffix) for suffix in suffixes]
        for each in files:
            names.append(each.name)
            if kind is not None and kind.style_key:
                names.append(each.with_suffix(STYLE_SUFFIX).name)
            names += [each.name + suffix for suffix in SIDECAR_SUFFIXES]
    return list(dict.fromkeys(names))
