"""Which options of the remotely runnable commands name local files, from the declarations.

Shared by the client (what to upload, where outputs go) and the server (which argv values must be
placeholders, never client-supplied server paths). :func:`command_roles` reads each option's file role in
:mod:`backend.contract.commands`: inputs are uploaded, outputs (and sidecars) come back, machine settings
are dropped, and any other path is refused remotely. Standard library only: the client runs in any
Python 3, QGIS's own included.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from backend.contract.commands import (
    COMMANDS,
    COMMON_OPTIONS,
    INPUT,
    MACHINE,
    OUTPUT,
    PATH,
    SIDECAR,
    Command,
    leaf_commands,
)
from backend.contract.remote import REMOTE_COMMANDS as REMOTE_COMMANDS  # re-exported

#: Options that configure the machine the run happens on: the client drops them (the server's own apply).
DROPPED_FLAGS = {"--events": 1, **{option.flag: 1 for _, command in leaf_commands()
                                   for option in command.options if option.role == MACHINE}}
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


def roles_of(command: Command) -> Roles:
    """The roles of ``command``'s declared options."""
    known, inputs, outputs, refused = set(), set(), set(), set()
    for option in (*command.options, *COMMON_OPTIONS):
        known.update(option.flags)
        if option.role == INPUT:
            inputs.update(option.flags)
        elif option.role in (OUTPUT, SIDECAR):
            outputs.update(option.flags)
        elif option.role == PATH:
            refused.update(option.flags)
    return Roles(frozenset(known), frozenset(inputs), frozenset(outputs), frozenset(refused))


@functools.cache
def command_roles(command: str) -> Roles:
    """The roles of the options of the top-level ``command``."""
    return roles_of(COMMANDS[command])


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
