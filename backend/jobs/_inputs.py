"""Input options shared by ``embed``, ``cluster``, ``classify``, ``segment`` and ``similar``.

How a command uses this module (the typed options and the embeddings: ``backend.inference.resolve``)::

    from backend.jobs._inputs import add_input_arguments

    def add_parser(subparsers, common):
        p = subparsers.add_parser("cluster", parents=[common], help=...)
        add_input_arguments(p)
        ...

Public API:

* ``add_radiometry_arguments(group)``: ``--optical-units/--sar-units/--sensor/--spectral-fill`` (also
  used by ``evaluate --scene``).
* ``add_input_arguments(parser)``: ``--optical/--optical-bands/--sar/--sar-bands``, the radiometry
  options above, ``--model/--bounds/--bounds-crs/--window/--overlap/--stitch/--batch-size/--device/
  --cache-dir/--cache-max-gb/--dtype/--embeddings``.
"""

from __future__ import annotations

import argparse
from typing import Any

from backend.contract.sensors import SENSOR_NAMES
from backend.contract.units import OPTICAL_UNITS, SAR_UNITS, UNIT_HELP

UNITS_OPTIONS = {"optical_units": ("--optical-units", OPTICAL_UNITS), "sar_units": ("--sar-units", SAR_UNITS)}


def _units_help(choices: tuple[str, ...]) -> str:
    return "; ".join(f"{unit}: {UNIT_HELP[unit]}" for unit in choices)


def add_radiometry_arguments(group: Any) -> None:
    """Add ``--optical-units``, ``--sar-units``, ``--sensor`` and ``--spectral-fill`` to ``group`` (a parser
    or argument group): how the input values are read, for every command that reads rasters."""
    group.add_argument("--optical-units", metavar="UNITS", default="auto",
                       help=f"units of the optical values (default auto). {_units_help(OPTICAL_UNITS)}")
    group.add_argument("--sar-units", metavar="UNITS", default="auto",
                       help=f"units of the radar values (default auto). {_units_help(SAR_UNITS)}")
    group.add_argument("--sensor", metavar="SENSOR", default="auto",
                       help=f"sensor of the optical raster: {', '.join(SENSOR_NAMES)} (default auto: from "
                            f"band names and metadata); other sensors are matched by wavelength")
    group.add_argument("--spectral-fill", metavar="MODE", default="auto",
                       help="auto: approximate model bands the sensor lacks by interpolating in wavelength "
                            "(logged as a warning); off: refuse such rasters")


def add_input_arguments(parser: argparse.ArgumentParser, embeddings: bool = True) -> None:
    """Add the shared input options to ``parser`` (``embeddings=False`` omits ``--embeddings``)."""
    group = parser.add_argument_group("inputs")
    group.add_argument("--optical", metavar="PATH", help="optical (Sentinel-2) raster")
    group.add_argument("--optical-bands", metavar="LIST",
                       help="optical bands in model order: 1-based band indexes or names, comma-separated "
                            "(default: from the band descriptions)")
    group.add_argument("--sar", metavar="PATH", help="radar (Sentinel-1 VV,VH) raster, aligned onto the "
                                                     "optical grid on the fly")
    group.add_argument("--sar-bands", metavar="LIST", help="radar bands in model order (indexes or names)")
    add_radiometry_arguments(group)
    group.add_argument("--month", type=int, metavar="1-12",
                       help="Galileo models: the month the imagery was taken (default: from the raster's "
                            "metadata or file name, else July)")
    group.add_argument("--model", metavar="PATH",
                       help="model (.safetensors + .json, or a CROMA .pt checkpoint); default: bundled model")
    group.add_argument("--bounds", nargs=4, type=float, metavar=("MINX", "MINY", "MAXX", "MAXY"),
                       help="area to process (default: the whole raster)")
    group.add_argument("--bounds-crs", metavar="CRS", help="CRS of --bounds (default: the raster's)")
    group.add_argument("--window", type=int, help="tile size in pixels (multiple of 8; default: the model's, "
                                                  "120 for CROMA, 64 for Galileo)")
    group.add_argument("--overlap", type=int, help="tile overlap in pixels (multiple of 8; default: the "
                                                   "model's, 32 for CROMA, 16 for Galileo)")
    group.add_argument("--stitch", choices=("blend", "centre"), default="blend",
                       help="how overlapping tiles join: tent-weighted cross-fade, or each tile's centre")
    group.add_argument("--batch-size", type=int, default=4, help="tiles per encoder call")
    group.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    group.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                       help="embedding raster data type")
    group.add_argument("--cache-dir", metavar="DIR",
                       help="embedding cache (default: ~/.cache/terraprobe/embeddings)")
    group.add_argument("--cache-max-gb", type=float, metavar="GB",
                       help="cache size limit; least recently used entries are evicted past it "
                            "(default: $TERRAPROBE_CACHE_MAX_GB or 20)")
    if embeddings:
        group.add_argument("--embeddings", metavar="PATH",
                           help="an embedding field: a GeoTIFF made by `embed`, or any multi-band float "
                                "(or scaled integer) GeoTIFF/VRT such as an AlphaEarth or TESSERA export; "
                                "skips the encoder")
