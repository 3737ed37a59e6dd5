"""Where the plugin's help lives: the README on the project's home page (metadata.txt ``homepage``)."""

from __future__ import annotations

import configparser
from functools import lru_cache
from pathlib import Path

METADATA = Path(__file__).resolve().parents[1] / "metadata.txt"
#: README section anchors (GitHub's: the heading in lower case, spaces as hyphens).
USING_IT_IN_QGIS = "using-it-in-qgis"
PROCESSING = "processing-and-qgis_process"


@lru_cache(maxsize=1)
def homepage() -> str:
    """The ``homepage`` of metadata.txt (what the Plugin Manager links to)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(METADATA, encoding="utf-8")
    return parser.get("general", "homepage", fallback="").rstrip("/")


def help_url(section: str = USING_IT_IN_QGIS) -> str:
    """The README's ``section`` on the home page."""
    return f"{homepage()}#{section}"
