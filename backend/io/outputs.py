"""Output safety: refuse outputs that would overwrite inputs (or each other) before a run writes anything.

Written files are verified by :mod:`backend.io.write_checks`.

Public API:

* ``same_file(a, b) -> bool``: the two paths name one file (symlinks, ``..``, hard links, case on
  case-insensitive file systems).
* ``check_outputs(args, outputs=None)``: the one guard every command uses. Inputs and outputs are
  collected from the parsed ``args`` by option role (``INPUT_OPTIONS``, ``OUTPUT_OPTIONS``); a job
  passes its complete list of outputs (defaults and ``.qml`` sidecars included) as ``outputs``.
  Raises ``UserError`` when an output is an input (or a model/head companion file), when two
  outputs are one file, when an output is a FIFO, device or socket (or, in the job's list, a
  folder), or when an input is not a regular file; ``EnvironmentFault`` when an
  output's folder cannot be written.
* ``input_paths(args)``, ``output_paths(args)``: the files ``args`` names, by option role.
* ``check_regular(path, what)``: refuse a FIFO, device or socket before anything opens it.
* ``check_output_kind(path, what)``: refuse an output that is a FIFO, device or socket (``check_outputs``
  and the atomic writer call it: outputs are regular files or absent).
* ``check_input_complete(src, path, what)``: a GeoTIFF whose last blocks lie past its end (a cut
  copy) is an ``EnvironmentFault`` before any pixel is read (``open_raster`` calls it).
* ``check_writable(path, option)``: a read-only or permission-denied output folder, up front.
"""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backend.contract.commands import INPUT, OUTPUT, Command, leaf_commands
from backend.errors import EnvironmentFault, UserError
from backend.io.write_checks import existing_folder, format_bytes


def options_with(role: str, commands: dict[str, Command] | None = None) -> dict[str, str]:
    """``{dest: shown name}`` of every declared option whose value is a file of ``role``."""
    found: dict[str, str] = {}
    for _, command in leaf_commands(commands):
        for option in command.options:
            if option.role == role:
                found.setdefault(option.dest, option.flag.upper() if option.positional else option.flag)
    return found


#: Options (argparse ``dest`` -> shown name) whose values are files a run reads.
INPUT_OPTIONS = options_with(INPUT)
#: Options whose values are files a run writes as given (``--head-out`` gets suffixes: the job checks it).
OUTPUT_OPTIONS = options_with(OUTPUT)
#: Files that travel together: a model or head is ``.safetensors`` weights plus a ``.json``.
_COMPANIONS = {".safetensors": ".json", ".json": ".safetensors"}


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` name the same file (existing or not)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _values(value: Any) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    found: list[str] = []
    for item in items:
        if isinstance(item, (str, os.PathLike)) and str(item):
            found += [part for part in str(item).split(",") if part]
    return found


def _with_companions(path: Path) -> list[Path]:
    suffix = path.suffix.lower()
    if suffix in _COMPANIONS:
        return [path, path.with_suffix(_COMPANIONS[suffix])]
    if not suffix:
        return [path, *(path.with_name(path.name + s) for s in _COMPANIONS)]
    return [path]


def input_paths(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """``(option, path)`` of every file ``args`` names as an input (companion files included)."""
    found = []
    for dest, option in INPUT_OPTIONS.items():
        for value in _values(getattr(args, dest, None)):
            found += [(option, path) for path in _with_companions(Path(value).expanduser())]
    return found


def output_paths(args: argparse.Namespace) -> dict[str, Path]:
    """``{option: path}`` of every output option given in ``args``."""
    return {option: Path(value).expanduser() for dest, option in OUTPUT_OPTIONS.items()
            for value in _values(getattr(args, dest, None))[:1]}


def _kind(mode: int) -> str | None:
    """What a non-regular file is, or ``None`` for a regular file or folder."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _special_kind(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it exists and is a FIFO, device or socket (links followed), else ``None``."""
    try:
        return _kind(os.stat(path).st_mode)
    except OSError:
        return None


def check_regular(path: str | os.PathLike[str], what: str) -> None:
    """Refuse a FIFO, device or socket before anything opens it (opening one can block forever)."""
    kind = _special_kind(path)
    if kind:
        raise UserError(f"{what} {path} is {kind}, not a file; give a raster or vector file")


def check_output_kind(path: str | os.PathLike[str], what: str) -> None:
    """Refuse an output that exists and is a FIFO, device or socket (writing would replace it).

    The path is followed through symbolic links, so a link to ``/dev/null`` is refused too.
    """
    kind = _special_kind(path)
    if kind:
        raise UserError(f"{what} {path} is {kind}, not a regular file; an output must be a regular file "
                        "or not exist yet: choose another file name")


def check_input_complete(src: Any, path: str | os.PathLike[str], what: str) -> None:
    """``EnvironmentFault`` when a GeoTIFF's last blocks lie past the end of the file (a cut copy).

    Cheap: one block-table lookup per band, whatever the raster's size.
    """
    if src.driver != "GTiff":
        return
    size = os.path.getsize(path)
    height, width = src.block_shapes[0]
    r, c = (src.height - 1) // height, (src.width - 1) // width
    end = 0
    for band in range(1, src.count + 1):
        offset = src.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=band)
        length = src.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=band)
        if offset and length:
            end = max(end, int(offset) + int(length))
    if end > size:
        raise EnvironmentFault(f"{what} {path} is truncated: its pixels run to {format_bytes(end)} but "
                               f"the file has {format_bytes(size)}; copy it again from its source")


def check_writable(path: Path, option: str) -> None:
    """``EnvironmentFault`` when ``path``'s folder (or its nearest existing parent) cannot be written."""
    folder = existing_folder(path)
    if not folder.is_dir():
        raise EnvironmentFault(f"cannot write {option} {path}: {folder} is not a folder")
    if os.access(folder, os.W_OK | os.X_OK):
        return
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs on Windows
        read_only = False
    cause = "the file system is read-only" if read_only else "permission denied"
    raise EnvironmentFault(f"cannot write {option} {path}: {cause} ({folder})")


def check_outputs(args: argparse.Namespace, outputs: Mapping[str, Path | None] | None = None) -> None:
    """Refuse outputs that are inputs or each other, non-regular inputs and unwritable output folders.

    Args:
        args: the parsed command line (inputs and outputs found by option role).
        outputs: ``{name: path}`` of every file the job will write; ``None`` checks only the
            output options given on the command line (the generic check ``cli`` runs first).
    """
    inputs = input_paths(args)
    for option, path in inputs:
        check_regular(path, option)
    given = output_paths(args) if outputs is None else {k: v for k, v in outputs.items() if v is not None}
    seen: list[tuple[str, Path]] = []
    for name, path in given.items():
        check_output_kind(path, name)
        for option, source in inputs:
            if same_file(path, source):
                raise UserError(f"{name} {path} is the {option} input {source}; writing it would destroy "
                                "the input: choose another output file")
        for other_name, other in seen:
            if same_file(path, other):
                raise UserError(f"{name} and {other_name} would both be written to {path}; "
                                "give different files")
        seen.append((name, path))
        if outputs is not None:
            if path.is_dir():
                raise UserError(f"{name} {path} is a folder; give a file name such as {path / 'result.tif'}")
            check_writable(path, name)
