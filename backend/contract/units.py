"""Radiometric units of input rasters: the vocabulary shared by the CLI, the dock and Processing.

What the models expect: optical values in the Sentinel-2 digital-number scale of processing
baselines before 04.00 (reflectance x 10000, no offset) and radar backscatter in dB. Every other
unit is converted to those before the fixed-statistics stretch (``backend.io.units``).
"""

from __future__ import annotations

#: ``--optical-units`` choices, ``auto`` first (detect from dtype, metadata and sampled values).
OPTICAL_UNITS: tuple[str, ...] = (
    "auto",         # detect
    "dn",           # reflectance x 10000 (S2 L1C/L2A before baseline 04.00, GEE harmonised)
    "dn-offset",    # S2 baseline >= 04.00: reflectance = (DN - 1000) / 10000
    "reflectance",  # 0-1 floats
    "percent",      # 0-100 reflectance
    "scaled",       # apply the raster's GDAL scale/offset metadata, giving reflectance
    "landsat-c2",   # Landsat Collection 2 Level-2: reflectance = DN x 2.75e-5 - 0.2
    "brightness",   # uncalibrated 8-bit brightness (NAIP, RGB photos): stretched, flagged
    "landsat-l1",   # Landsat Collection 2 Level-1 DN: TOA reflectance = DN x 2e-5 - 0.1 (or the MTL's)
)
#: ``--sar-units`` choices, ``auto`` first.
SAR_UNITS: tuple[str, ...] = (
    "auto",       # detect
    "db",         # 10 log10(power): what the models expect
    "linear",     # backscatter power (sigma0 / gamma0)
    "amplitude",  # sqrt(power)
)
#: One line for each unit, for help texts and the dock's tooltips.
UNIT_HELP: dict[str, str] = {
    "auto": "detect from the data type, metadata and a sample of values",
    "dn": "digital numbers, reflectance x 10000 (Sentinel-2 before baseline 04.00)",
    "dn-offset": "Sentinel-2 baseline 04.00 or later: reflectance = (DN - 1000) / 10000",
    "reflectance": "surface or top-of-atmosphere reflectance, 0-1",
    "percent": "reflectance in percent, 0-100",
    "scaled": "apply the raster's own scale/offset metadata",
    "landsat-c2": "Landsat Collection 2 Level-2: reflectance = DN x 0.0000275 - 0.2",
    "brightness": "uncalibrated 8-bit brightness (NAIP, RGB photos): no physical meaning",
    "landsat-l1": "Landsat Level-1 digital numbers: TOA reflectance = DN x 0.00002 - 0.1, or the MTL "
                  "REFLECTANCE_MULT/ADD_BAND_x tags (and SUN_ELEVATION) when the raster carries them",
    "db": "backscatter in decibels (10 log10 of power)",
    "linear": "backscatter power, linear scale",
    "amplitude": "backscatter amplitude (square root of power)",
}
