"""Sensor presets: the vocabulary shared by the CLI, the dock and Processing (pure Python).

Only relative imports, or none: the plugin imports this module as ``terraprobe.backend.contract``.
"""

from __future__ import annotations

#: ``--sensor`` choices, ``auto`` first (picked from the layer's band names and metadata).
SENSOR_NAMES: tuple[str, ...] = (
    "auto",
    "sentinel2",    # Sentinel-2 MSI
    "landsat-oli",  # Landsat 8/9 OLI
    "landsat-tm",   # Landsat 4-5 TM and 7 ETM+
    "rgbn",         # 4-band blue/green/red/NIR (NAIP, PlanetScope)
    "rgb",          # plain red/green/blue
)
