"""Which options of the remotely runnable commands name local files, in one place.

Shared by the client (what to upload, where outputs go) and the server (which argv values must be
placeholders, never client-supplied server paths). Derived from the table every command's guard
uses (:data:`backend.io.outputs.INPUT_OPTIONS` / ``OUTPUT_OPTIONS``). Standard library only: the
client runs in any Python 3, QGIS's own included.
"""

from __future__ import annotations

from backend.contract.remote import REMOTE_COMMANDS
from backend.io.outputs import INPUT_OPTIONS, OUTPUT_OPTIONS

__all__ = ["DROPPED_FLAGS", "INPUT_FLAGS", "OUTPUT_FLAGS", "REMOTE_COMMANDS", "SERVER_PREFIX", "split_flag"]

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


def split_flag(token: str) -> tuple[str, str | None]:
    """``"--out=x.tif"`` -> ``("--out", "x.tif")``; ``"--out"`` -> ``("--out", None)``."""
    if token.startswith("--") and "=" in token:
        flag, value = token.split("=", 1)
        return flag, value
    return token, None
