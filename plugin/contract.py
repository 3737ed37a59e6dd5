"""The backend's pure-Python contract as the plugin sees it (units, sensors, bands, outputs, events, ...).

QGIS imports the plugin as the package ``terraprobe``, so the contract is the sibling package
``terraprobe.backend.contract``; tests and scripts import ``plugin`` from the repository root, where
it is ``backend.contract``. Either way only the contract's pure modules are loaded, never torch.
This is the only module of the plugin that imports from ``backend/``.
"""

from __future__ import annotations

import importlib

try:
    from ..backend import contract as _package
except ImportError:  # ``plugin`` imported as a top-level package (tests, scripts)
    import backend.contract as _package  # type: ignore[no-redef]

bands, commands, model_files, outputs, paths, protocol, remote, requests, sensors, units = (
    importlib.import_module(f"{_package.__name__}.{name}") for name in (
        "bands", "commands", "model_files", "outputs", "paths", "protocol", "remote", "requests", "sensors",
        "units"))

OPTICAL_UNITS: tuple[str, ...] = tuple(units.OPTICAL_UNITS)
SAR_UNITS: tuple[str, ...] = tuple(units.SAR_UNITS)
UNIT_HELP: dict[str, str] = dict(units.UNIT_HELP)
SENSOR_NAMES: tuple[str, ...] = tuple(sensors.SENSOR_NAMES)

__all__ = ["OPTICAL_UNITS", "SAR_UNITS", "SENSOR_NAMES", "UNIT_HELP", "bands", "commands", "model_files",
           "outputs", "paths", "protocol", "remote", "requests", "sensors", "units"]
