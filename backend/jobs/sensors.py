"""``sensors``: list the sensor presets, or show how a raster's bands would feed a model.

``python -m backend sensors`` prints every preset (bands, centre wavelengths, default units);
``python -m backend sensors --optical L.tif [--sensor S] [--model M]`` prints the detected sensor,
the model that would be picked and the band plan (which model bands are filled), reading only
the raster's metadata.
"""

from __future__ import annotations

import argparse
from typing import Any

from backend.contract.sensors import PRESETS
from backend.events import Reporter


def presets() -> dict[str, Any]:
    """Every preset as JSON-friendly data."""
    return {name: {"title": p.title, "optical_units": p.optical_units, "resolution_m": p.resolution_m,
                   "bands": [{"name": b.name, "label": b.label, "centre_nm": b.centre_nm,
                              "range_nm": [b.low_nm, b.high_nm], "resolution_m": b.resolution_m,
                              "aliases": list(b.aliases), "matched": b.surface} for b in p.bands]}
            for name, p in PRESETS.items()}


def plan(optical: str, sensor: str, model: str | None, log: Any = None) -> dict[str, Any]:
    """The sensor, model and band plan ``embed`` would use for ``optical``."""
    from backend.inference.model import model_config, resolve_model_path
    from backend.io.rasters import open_raster
    from backend.io.sensor_bands import check_sensor_options, map_optical_bands, optical_sensor

    check_sensor_options(sensor, None)
    path = resolve_model_path(model) if model else resolve_model_path(None, optical_sensor(optical, sensor),
                                                                      log=log)
    config = model_config(path)
    bands = config.modalities.get("optical")
    if bands is None:
        from backend.errors import UserError

        raise UserError(f"the model {path.name} has no optical encoder")
    with open_raster(optical, "optical") as src:
        if config.is_galileo:
            return galileo_plan(src, bands.bands, sensor, path)
        mapping = map_optical_bands(src, bands.bands, None, sensor)
    return {"sensor": mapping.sensor, "reason": mapping.reason, "model": str(path),
            "file_bands": mapping.bands, "filled": mapping.filled,
            "plan": mapping.plan.describe() if mapping.plan else None,
            "notes": mapping.notes, "warnings": mapping.warnings}


def galileo_plan(src: Any, expected: list[str], sensor: str, path: Any) -> dict[str, Any]:
    """``plan`` for a Galileo model: the channel groups the raster fills (no spectral fill), as ``embed``."""
    from backend.inference.galileo_inputs import GalileoChannels, acquisition_month, galileo_optical_bands

    mapping, names = galileo_optical_bands(src, expected, None, sensor)
    month, month_how = acquisition_month(src)
    channels = GalileoChannels(tuple(names), False, month, month_how)
    read = ", ".join(f"{name}<-{src.descriptions[index - 1] or f'band {index}'}"
                     for name, index in zip(names, mapping.bands))
    return {"sensor": mapping.sensor, "reason": mapping.reason, "model": str(path),
            "file_bands": mapping.bands, "filled": [], "plan": read, "groups_used": channels.used,
            "groups_masked": channels.masked, "notes": [*mapping.notes, channels.describe()],
            "warnings": mapping.warnings}


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    if args.optical:
        facts = plan(args.optical, args.sensor, args.model, reporter.log)
        for line in facts["notes"]:
            reporter.log(line)
        for line in facts["warnings"]:
            reporter.warning(line)
        reporter.result({}, facts if reporter.mode == "json" else {})
        return
    data = presets()
    if reporter.mode == "human":
        for name, preset in data.items():
            reporter.log(f"{name}: {preset['title']} (default units {preset['optical_units']})")
            bands = [f"{b['name']} {b['label']} {b['centre_nm']:g} nm".replace(f"{b['name']} {b['name']} ",
                                                                                  f"{b['name']} ")
                     for b in preset["bands"] if b["matched"]]
            reporter.log("    " + ", ".join(bands))
        reporter.result({}, {})
    else:
        reporter.result({}, {"presets": data})
