"""The backend requests of the dock's and Processing's actions, and fresh output names (pure Python).

The request type is the contract's (:class:`backend.contract.requests.Request`): typed fields,
``to_argv()`` for the backend and ``from_argv()`` back. :mod:`plugin.requests_builder` builds it
from the analyst's choices, for the dock and Processing alike.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from .contract import requests as _requests

JobRequest = _requests.Request
RequestError = _requests.RequestError
ACTIONS: tuple[str, ...] = _requests.ACTIONS
#: The choice that lets the backend decide (units detected, sensor recognised from band names).
AUTO = _requests.AUTO


#: The run stamp :func:`output_path` puts in file names (``_20260512_103000_123``): not an acquisition date.
STAMP_PATTERN = re.compile(r"_\d{8}_\d{6}_\d{3}")


def output_path(folder: str | Path, input_name: str, action: str, suffix: str = ".tif") -> Path:
    """A fresh output file name: ``<input>_<action>_<timestamp>.tif`` in ``folder``."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in input_name)[:60] or "layer"
    stamp = time.strftime("%Y%m%d_%H%M%S") + f"_{int(time.time() * 1000) % 1000:03d}"
    return Path(folder) / f"{stem}_{action}_{stamp}{suffix}"
