"""A client's job request as a safe argv: placeholders become server files, nothing else names one.

Request (JSON)::

    {"command": "classify",
     "args": ["--optical", {"input": [{"name": "s2.tif", "sha256": "..."}]},
              "--samples", {"server_path": "fields/polys.gpkg"},
              "--class-field", "class", "--out", {"output": "labels.tif"}]}

Every value of an input option must be an ``input`` (uploaded files) or ``server_path`` (a file
under a ``--data-root``) placeholder (``--model`` may instead name one of the server's own models:
``{"model_name": "galileo-nano"}``), every value of an output option an ``output`` placeholder (a
plain file name, written to the job's own ``out/<k>/`` folder). Options must be spelled in full
(argparse would expand an abbreviation such as ``--opt`` into ``--optical``); options that configure
the server machine (``--cache-dir``) are refused. Every input is vetted (:mod:`backend.server.vetting`):
uploads must be self-contained files; scene lists and data-root VRTs may name only data-root files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.remote.roles import (
    DROPPED_FLAGS,
    MODEL_FLAG,
    REMOTE_COMMANDS,
    command_roles,
    is_model_name,
    split_flag,
)
from backend.server.storage import Refused, Storage, check_name
from backend.server.vetting import vet_data_file, vet_upload

_NUMBER = re.compile(r"^-\d|^-\.\d")
#: Limits of a job request: arguments, and characters of one argument (413 beyond).
MAX_ARGS = 400
MAX_ARG_CHARS = 4096


@dataclass
class JobArgv:
    """The argv a job runs with and where its files are."""

    command: str
    argv: list[str]
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def build_argv(request: Any, storage: Storage, job_dir: Path) -> JobArgv:
    """Validate ``request`` and turn it into the job's argv (raises :class:`Refused`)."""
    if not isinstance(request, dict):
        raise Refused("a job request is a JSON object with 'command' and 'args'")
    command, args = request.get("command"), request.get("args", [])
    if command not in REMOTE_COMMANDS:
        raise Refused(f"command {command!r} cannot run remotely; these can: {', '.join(REMOTE_COMMANDS)}")
    if not isinstance(args, list):
        raise Refused("'args' must be a list")
    if len(args) > MAX_ARGS:
        raise Refused(f"'args' must be a list of at most {MAX_ARGS} items", status=413)
    if any(isinstance(item, str) and len(item) > MAX_ARG_CHARS for item in args):
        raise Refused(f"an argument is longer than {MAX_ARG_CHARS} characters", status=413)
    roles = command_roles(command)
    known, inputs, outputs = roles.known, roles.inputs, roles.outputs
    job = JobArgv(command=command, argv=[])
    previous: str | None = None
    for item in args:
        if isinstance(item, str):
            flag, value = split_flag(item)
            if item.startswith("-") and not _NUMBER.match(item):
                if flag not in known:
                    raise Refused(f"unknown option {flag!r} for {command} (spell options in full)")
                if flag in DROPPED_FLAGS or flag in roles.refused:
                    raise Refused(f"{flag} names a server file or folder and cannot be set by a client")
                if flag in inputs or flag in outputs:
                    if value is not None:
                        raise Refused(f"{flag} must be given a file placeholder, not a path")
                    previous = flag
                    job.argv.append(flag)
                    continue
            elif previous is not None:
                raise Refused(f"{previous} must be given an uploaded file or server:PATH, not {item!r}")
            job.argv.append(item)
            previous = None
            continue
        if not isinstance(item, dict) or previous is None:
            raise Refused("a file placeholder must follow an input or output option")
        if previous in inputs and "input" in item:
            path = storage.materialize(item["input"])
            names = [str(entry["name"]) for entry in item["input"]]
            path = vet_upload(command, previous, path, names, storage, job_dir)
        elif previous in inputs and "server_path" in item:
            path = storage.resolve_data_path(item["server_path"])
            path = vet_data_file(command, previous, path, storage, job_dir)
        elif previous == MODEL_FLAG and "model_name" in item:
            path = named_model(item["model_name"])
        elif previous in outputs and "output" in item:
            folder = job_dir / "out" / str(len(job.outputs))
            folder.mkdir(parents=True)
            path = folder / check_name(item["output"])
            job.outputs.append(str(folder))
        else:
            role = "an input" if previous in inputs else "an output"
            raise Refused(f"{previous} takes {role} placeholder")
        if previous in inputs:
            job.inputs.append(str(path))
        job.argv.append(str(path))
        previous = None
    if previous is not None:
        raise Refused(f"{previous} needs a value")
    return job


def named_model(name: Any) -> Path:
    """The server's own weights for a ``--model`` given by name (bundled, or installed by ``models``)."""
    from backend.models.registry import named_model_path

    if not isinstance(name, str) or not is_model_name(name):
        raise Refused(f"{MODEL_FLAG} takes a model name (one word such as galileo-nano), not {name!r}")
    path = named_model_path(name)
    if path is None:
        raise Refused(f"{MODEL_FLAG} {name}: the server has no model of that name (bundled or installed; "
                      "`python -m backend models list` on the server shows them)", status=404)
    return path
