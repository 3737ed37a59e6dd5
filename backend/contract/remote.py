"""The remote backend's shared facts: which commands a job server runs, how a client names it.

Both halves import this: the backend's ``--remote`` client and server (:mod:`backend.remote`,
:mod:`backend.server`) and the plugin's process client, which sends these commands to the server
when the *Backend* setting is *remote* and runs every other command (models, info) locally.
"""

from __future__ import annotations

from .commands import COMMANDS
from .commands import DEFAULT_PORT as DEFAULT_PORT  # re-exported

#: Commands a client may run on a server (declared ``remote=True``: option-only paths, no server-side
#: folders or downloads).
REMOTE_COMMANDS: tuple[str, ...] = tuple(name for name, command in COMMANDS.items() if command.remote)
#: File suffixes of scene lists (one raster path a line): ``embed --optical scenes.txt``; the server
#: checks every line of one against its data roots.
SCENE_LIST_SUFFIXES = (".txt", ".lst", ".list")


def remote_arguments(url: str, token_file: str) -> list[str]:
    """The argv prefix that runs a backend command on the server at ``url``."""
    return ["--remote", url.strip(), "--token-file", token_file.strip()]
