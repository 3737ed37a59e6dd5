"""Sensor presets: the vocabulary shared by the CLI, the dock and Processing (pure Python).

Only relative imports, or none: the plugin imports this module as ``terraprobe.backend.contract``.

* ``SENSOR_NAMES``: the ``--sensor`` choices, ``auto`` first.
* ``PRESETS``: one :class:`SensorPreset` per sensor: its bands (names as products spell them,
  centre wavelength and range in nm, native resolution) and default optical units (a value of
  ``backend.contract.units.OPTICAL_UNITS``).
* ``detect_sensor(descriptions, tags=None, count=None, dtype=None, name=None) -> (name, reason)``:
  the sensor of a raster from its band names, metadata (``SPACECRAFT_ID``, MTL tags, USGS product
  IDs) and file name.
* ``landsat_product(texts) -> LandsatProduct | None``: the sensor and processing level of the
  first USGS Landsat product ID (``LC08_L1TP_...``, ``LC09_L2SP_...``) among file or band names.
* ``landsat_level(descriptions, tags=None, name=None) -> (units, reason) | None``: ``landsat-l1``
  or ``landsat-c2`` when the metadata or names say which Landsat product the values are.
* ``non_optical_bands(sensor, file_band_names) -> list[str]``: the thermal, panchromatic or cirrus
  bands of a file (never matched).
* ``match_by_wavelength(sensor, file_band_names, model_band_names, tolerance_nm=15) -> BandPlan``:
  for each model band (Sentinel-2 names: every model is trained on Sentinel-2 band names), the
  file band with the nearest centre wavelength (within the tolerance, or when one band's centre
  lies inside the other's range), else a *spectral fill*: linear interpolation in wavelength
  between the two nearest file bands, flat extrapolation beyond the first or last one. Filled
  bands are an approximation and the plan says which they are.

Wavelengths: Sentinel-2A MSI and Landsat from the agencies' band tables; the RGBN and RGB presets
use typical values of 4-band aerial and satellite cameras (NAIP, PlanetScope), which vary by
instrument.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: ``--sensor`` choices, ``auto`` first (picked from the layer's band names and metadata).
SENSOR_NAMES: tuple[str, ...] = (
    "auto",
    "sentinel2",    # Sentinel-2 MSI
    "landsat-oli",  # Landsat 8/9 OLI
    "landsat-tm",   # Landsat 4-5 TM and 7 ETM+
    "rgbn",         # 4-band blue/green/red/NIR (NAIP, PlanetScope)
    "rgb",          # plain red/green/blue
)

#: The reason :func:`detect_sensor` gives when nothing points to a sensor (Sentinel-2 is assumed).
ASSUMED_REASON = "no band names or metadata of another sensor: Sentinel-2 assumed"
#: Default ``--tolerance`` of :func:`match_by_wavelength`, in nm.
DEFAULT_TOLERANCE_NM = 15.0


class SensorMatchError(ValueError):
    """The file's bands cannot be matched to the model's bands (the message says why)."""


@dataclass(frozen=True)
class BandSpec:
    """One band of a sensor.

    Attributes:
        name: the band's name in the preset (``"B5"`` for Landsat OLI NIR, ``"B8A"`` for Sentinel-2).
        label: what it sees (``"NIR"``).
        centre_nm: centre wavelength in nm.
        low_nm: lower edge of the band in nm.
        high_nm: upper edge of the band in nm.
        resolution_m: native ground sampling distance in metres.
        aliases: other spellings products use (``"SR_B5"``, ``"nir08"``); matched case-insensitively.
        surface: whether the band is a surface-reflectance band usable for matching (not thermal,
            panchromatic or cirrus).
    """

    name: str
    label: str
    centre_nm: float
    low_nm: float
    high_nm: float
    resolution_m: float
    aliases: tuple[str, ...] = ()
    surface: bool = True

    def contains(self, nm: float) -> bool:
        """Whether ``nm`` lies within the band's range."""
        return self.low_nm <= nm <= self.high_nm


@dataclass(frozen=True)
class SensorPreset:
    """What Terraprobe knows about one sensor.

    Attributes:
        name: the ``--sensor`` value.
        title: a human name.
        bands: every band, in the product's usual band order (used for files without band names).
        optical_units: the default ``--optical-units`` for the sensor (``"auto"``: detect).
        resolution_m: the sensor's multispectral resolution in metres.
    """

    name: str
    title: str
    bands: tuple[BandSpec, ...]
    optical_units: str
    resolution_m: float

    def band(self, name: str | None) -> BandSpec | None:
        """The band called ``name`` (any alias, any case), or ``None``."""
        if not name:
            return None
        key = band_key(name)
        for spec in self.bands:
            if key in {band_key(n) for n in (spec.name, *spec.aliases)}:
                return spec
        return None

    @property
    def surface_bands(self) -> tuple[BandSpec, ...]:
        """The bands used for wavelength matching, in order."""
        return tuple(b for b in self.bands if b.surface)


_NUMBERED = re.compile(r"^((?:SR|ST|TOA)_)?B(?:AND)?_?0*(\d+)(A?)$")
#: A USGS Landsat product ID: sensor letter, satellite, processing level (``LC08_L1TP_044034_...``).
_PRODUCT_ID = re.compile(r"L([COTEM])(0[1-9])_(L1TP|L1GT|L1GS|L2SP|L2SR)"
                         r"(?:_\d{6}_\d{8}_\d{8}_\d{2}_[A-Z0-9]{2})?", re.IGNORECASE)
_FILE_SUFFIX = re.compile(r"\.(TIF|TIFF|JP2|IMG|VRT)$")


def band_key(name: str) -> str:
    """A spelling-independent key: upper case, no spaces, band numbers without leading zeros.

    ``"sr_b05"`` -> ``"SR_B5"``, ``"Band 5"`` -> ``"B5"``, ``"b8a"`` -> ``"B8A"``, ``"nir08"`` -> ``"NIR08"``;
    USGS file names lose their product ID and extension: ``"LC09_L2SP_..._T1_SR_B4.TIF"`` -> ``"SR_B4"``.
    """
    cleaned = _FILE_SUFFIX.sub("", name.strip().upper().replace(" ", "").replace("-", "_"))
    product = _PRODUCT_ID.match(cleaned)
    if product and cleaned[product.end():].startswith("_"):  # LC08_L1TP_..._T1_B4.TIF -> B4
        cleaned = cleaned[product.end() + 1:]
    match = _NUMBERED.match(cleaned)
    if match:
        prefix, number, suffix = match.groups()
        return f"{prefix or ''}B{int(number)}{suffix}"
    return cleaned


def _b(name: str, label: str, centre: float, low: float, high: float, res: float, *aliases: str,
       surface: bool = True) -> BandSpec:
    return BandSpec(name, label, centre, low, high, res, tuple(aliases), surface)


SENTINEL2 = SensorPreset("sentinel2", "Sentinel-2 MSI", (
    _b("B01", "coastal aerosol", 442.7, 432, 453, 60, "coastal"),
    _b("B02", "blue", 492.4, 459, 525, 10, "blue"),
    _b("B03", "green", 559.8, 542, 578, 10, "green"),
    _b("B04", "red", 664.6, 649, 680, 10, "red"),
    _b("B05", "red edge 1", 704.1, 697, 712, 20, "rededge1"),
    _b("B06", "red edge 2", 740.5, 733, 748, 20, "rededge2"),
    _b("B07", "red edge 3", 782.8, 773, 793, 20, "rededge3"),
    _b("B08", "NIR (wide)", 832.8, 780, 886, 10, "nir"),
    _b("B8A", "NIR (narrow)", 864.7, 855, 875, 20, "nir08", "rededge4"),
    _b("B09", "water vapour", 945.1, 935, 955, 60, "nir09"),
    _b("B10", "cirrus", 1373.5, 1360, 1390, 60, "cirrus", surface=False),
    _b("B11", "SWIR 1", 1613.7, 1568, 1659, 20, "swir16"),
    _b("B12", "SWIR 2", 2202.4, 2115, 2290, 20, "swir22"),
), optical_units="auto", resolution_m=10)

LANDSAT_OLI = SensorPreset("landsat-oli", "Landsat 8/9 OLI", (
    _b("B1", "coastal aerosol", 443, 433, 453, 30, "SR_B1", "TOA_B1", "coastal"),
    _b("B2", "blue", 482, 450, 515, 30, "SR_B2", "TOA_B2", "blue"),
    _b("B3", "green", 561, 525, 600, 30, "SR_B3", "TOA_B3", "green"),
    _b("B4", "red", 655, 630, 680, 30, "SR_B4", "TOA_B4", "red"),
    _b("B5", "NIR", 865, 845, 885, 30, "SR_B5", "TOA_B5", "nir", "nir08"),
    _b("B6", "SWIR 1", 1609, 1560, 1660, 30, "SR_B6", "TOA_B6", "swir1", "swir16"),
    _b("B7", "SWIR 2", 2201, 2100, 2300, 30, "SR_B7", "TOA_B7", "swir2", "swir22"),
    _b("B8", "panchromatic", 590, 500, 680, 15, "pan", surface=False),
    _b("B9", "cirrus", 1373, 1360, 1390, 30, "cirrus", surface=False),
    _b("B10", "thermal 1", 10895, 10600, 11190, 100, "ST_B10", "lwir11", surface=False),
    _b("B11", "thermal 2", 12005, 11500, 12510, 100, "lwir12", surface=False),
), optical_units="landsat-c2", resolution_m=30)

LANDSAT_TM = SensorPreset("landsat-tm", "Landsat 4-5 TM / 7 ETM+", (
    _b("B1", "blue", 485, 450, 520, 30, "SR_B1", "TOA_B1", "blue"),
    _b("B2", "green", 560, 520, 600, 30, "SR_B2", "TOA_B2", "green"),
    _b("B3", "red", 660, 630, 690, 30, "SR_B3", "TOA_B3", "red"),
    _b("B4", "NIR", 830, 760, 900, 30, "SR_B4", "TOA_B4", "nir", "nir08"),
    _b("B5", "SWIR 1", 1650, 1550, 1750, 30, "SR_B5", "TOA_B5", "swir1", "swir16"),
    _b("B7", "SWIR 2", 2215, 2080, 2350, 30, "SR_B7", "TOA_B7", "swir2", "swir22"),
    _b("B6", "thermal", 11450, 10400, 12500, 120, "ST_B6", "lwir", surface=False),
    _b("B8", "panchromatic (ETM+)", 710, 520, 900, 15, "pan", surface=False),
), optical_units="landsat-c2", resolution_m=30)

RGBN = SensorPreset("rgbn", "4-band red/green/blue/NIR camera (NAIP, PlanetScope)", (
    _b("red", "red", 650, 610, 690, 1, "r"),
    _b("green", "green", 560, 520, 600, 1, "g"),
    _b("blue", "blue", 485, 450, 520, 1, "b"),
    _b("nir", "NIR", 850, 780, 900, 1, "n", "nir08"),
), optical_units="brightness", resolution_m=1)

RGB = SensorPreset("rgb", "red/green/blue camera or basemap", (
    _b("red", "red", 650, 610, 690, 1, "r"),
    _b("green", "green", 560, 520, 600, 1, "g"),
    _b("blue", "blue", 485, 450, 520, 1, "b"),
), optical_units="brightness", resolution_m=1)

#: The presets by ``--sensor`` name (every name but ``auto``).
PRESETS: dict[str, SensorPreset] = {p.name: p for p in (SENTINEL2, LANDSAT_OLI, LANDSAT_TM, RGBN, RGB)}


def get_preset(name: str) -> SensorPreset:
    """The preset called ``name``; ``SensorMatchError`` for an unknown one (or ``auto``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise SensorMatchError(f"unknown sensor {name!r}; choose one of: {', '.join(PRESETS)}") from None


# -- detection ---------------------------------------------------------------------------------
_PLATFORM_TAGS = ("SPACECRAFT_ID", "SPACECRAFT", "SPACECRAFT_NAME", "SATELLITE", "PLATFORM", "MISSION",
                  "SENSOR_ID", "SENSOR", "INSTRUMENT", "PRODUCT_TYPE")
_S2_KEYS = {band_key(b.name) for b in SENTINEL2.bands}


def _from_tags(tags: dict[str, str]) -> tuple[str, str] | None:
    for key, value in tags.items():
        if key.upper() not in _PLATFORM_TAGS or not isinstance(value, str):
            continue
        text = value.upper().replace(" ", "_").replace("-", "_")
        why = f"metadata {key}={value}"
        landsat = re.search(r"LANDSAT_?0?(\d)", text)
        if landsat:
            return ("landsat-oli" if landsat.group(1) in "89" else "landsat-tm"), why
        if "OLI" in text:
            return "landsat-oli", why
        if re.search(r"(^|_)E?TM\+?($|_)", text):
            return "landsat-tm", why
        if "SENTINEL_2" in text or "SENTINEL2" in text or re.match(r"^S2[ABCD]?(_|$)", text) or "MSI" in text:
            return "sentinel2", why
    return None


def _usgs(keys: list[str]) -> tuple[str, str] | None:
    surface = {int(k[4:]) for k in keys if re.fullmatch(r"SR_B\d+", k)}
    thermal = {int(k[4:]) for k in keys if re.fullmatch(r"ST_B\d+", k)}
    if not surface and not thermal:
        return None
    names = ",".join(f"SR_B{n}" for n in sorted(surface)) or ",".join(f"ST_B{n}" for n in sorted(thermal))
    if 6 in surface or thermal & {10, 11}:
        return "landsat-oli", f"USGS Collection 2 band names ({names})"
    if 6 in thermal or ({1, 5, 7} <= surface and 6 not in surface):
        return "landsat-tm", f"USGS Collection 2 band names without SR_B6 ({names})"
    return "landsat-oli", f"USGS Collection 2 band names ({names}; OLI assumed, else --sensor landsat-tm)"


@dataclass(frozen=True)
class LandsatProduct:
    """What a USGS Landsat product ID says: ``sensor`` (a preset name), ``level`` (``L1TP``,
    ``L2SP``...), ``units`` (``landsat-l1`` or ``landsat-c2``) and the ID as found (``text``)."""

    sensor: str
    level: str
    units: str
    text: str


def landsat_product(texts: Sequence[str | None]) -> LandsatProduct | None:
    """The first USGS Landsat product ID among ``texts`` (file names, band names, tag values), or ``None``.

    ``LC08``/``LO09`` (OLI) -> ``landsat-oli``; ``LT05``/``LE07`` (TM, ETM+) -> ``landsat-tm``; Level-1
    (``L1TP``, ``L1GT``, ``L1GS``) -> units ``landsat-l1``, Level-2 (``L2SP``, ``L2SR``) -> ``landsat-c2``.
    """
    for text in texts:
        if not isinstance(text, str):
            continue
        match = _PRODUCT_ID.search(text.replace("\\", "/").rsplit("/", 1)[-1].upper())
        if match is None or match.group(1) == "M":  # MSS: no preset
            continue
        letter, satellite, level = match.group(1), int(match.group(2)), match.group(3)
        if letter == "T" and satellite >= 8:  # TIRS only: thermal, no optical band
            continue
        sensor = "landsat-oli" if satellite >= 8 else "landsat-tm"
        units = "landsat-l1" if level.startswith("L1") else "landsat-c2"
        return LandsatProduct(sensor, level, units, match.group(0))
    return None


def _mtl_keys(tags: dict[str, str]) -> list[str]:
    """The MTL calibration tags of a Landsat Level-1 product (``REFLECTANCE_MULT_BAND_4``...)."""
    return [k for k in tags if re.match(r"^(REFLECTANCE|RADIANCE)_(MULT|ADD)_BAND_\d+$", k.upper())]


def landsat_level(descriptions: Sequence[str | None], tags: dict[str, str] | None = None,
                  name: str | None = None) -> tuple[str, str] | None:
    """``(units, reason)`` when metadata or names say which Landsat product the values are, else ``None``.

    In order: the ``PROCESSING_LEVEL`` tag or a USGS product ID (tags, band names, the file name);
    MTL calibration tags (``REFLECTANCE_MULT_BAND_x``: Level-1, ``landsat-l1``). Band names alone
    (``SR_B4`` or ``B4``) do not decide it: stacks get renamed, values are checked instead.
    """
    tags = tags or {}
    upper = {k.upper(): v for k, v in tags.items() if isinstance(v, str)}
    level = upper.get("PROCESSING_LEVEL", "").upper()
    if re.fullmatch(r"L1(TP|GT|GS)", level):
        return "landsat-l1", f"metadata PROCESSING_LEVEL={level}"
    if re.fullmatch(r"L2(SP|SR)", level):
        return "landsat-c2", f"metadata PROCESSING_LEVEL={level}"
    product = landsat_product([*upper.values(), *descriptions, name])
    if product is not None:
        return product.units, f"USGS product ID {product.text} ({product.level})"
    mtl = _mtl_keys(tags)
    if any(k.upper().startswith("REFLECTANCE_MULT") for k in mtl):
        return "landsat-l1", f"MTL tags ({', '.join(sorted(mtl)[:2])}...)"
    return None


def _numbered_landsat(keys: list[str]) -> tuple[str, str] | None:
    """Plain ``B1``..``B11`` names that have no Sentinel-2 meaning: Landsat (OLI, or TM/ETM+ for B1-B5,B7).

    Sentinel-2 stacks always carry B08 (NIR) with their red edges, and B12 with B11; a stack of
    B2,B3,B4,B5 (blue, green, red and then red edge 1 without NIR?) or B1..B7 without B08 only means
    something as Landsat, where B5 is NIR (OLI) or SWIR 1 (TM).
    """
    if not keys or not all(re.fullmatch(r"B\d+", k) for k in keys):
        return None
    numbers = {int(k[1:]) for k in keys}
    if 12 in numbers or numbers - set(range(1, 12)):
        return None
    thermal = {10, 11} <= numbers
    if not (thermal or numbers == {2, 3, 4, 5} or (5 in numbers and 8 not in numbers and len(numbers) >= 4)):
        return None
    names = ",".join(f"B{n}" for n in sorted(numbers))
    if not thermal and 6 not in numbers and {1, 7} <= numbers:
        return "landsat-tm", (f"band names {names}: Landsat TM/ETM+ (B4 NIR, B5 and B7 SWIR), not "
                              f"Sentinel-2 (no B08); else pass --sensor")
    if thermal:
        why = "B10,B11 are thermal there; Sentinel-2 has B12 with B11"
    elif numbers == {2, 3, 4, 5}:
        why = "a Sentinel-2 stack ending in red edge B05 after only B02-B04 means nothing"
    else:
        why = "a Sentinel-2 stack with red edge B05 has NIR B08"
    return "landsat-oli", (f"band names {names}: Landsat 8/9 OLI (B5 = NIR), not Sentinel-2 ({why}); "
                           f"else pass --sensor landsat-tm or sentinel2")


def detect_sensor(descriptions: Sequence[str | None], tags: dict[str, str] | None = None,
                  count: int | None = None, dtype: str | None = None,
                  name: str | None = None) -> tuple[str, str]:
    """The sensor of a raster, and why, from its band names, metadata, band count, data type and file name.

    Args:
        descriptions: the band descriptions (``None`` or ``""`` for unnamed bands).
        tags: dataset metadata (e.g. ``SPACECRAFT_ID=LANDSAT_8``, MTL ``REFLECTANCE_MULT_BAND_4``).
        count: number of bands (default: ``len(descriptions)``).
        dtype: data type name of the bands (``"uint8"``...).
        name: the raster's file name or path (a USGS product ID in it names the sensor).

    Returns:
        ``(name, reason)``: a :data:`PRESETS` key and one line saying what decided it.
    """
    count = len(descriptions) if count is None else count
    found = _from_tags(tags or {})
    if found:
        return found
    product = landsat_product([*(v for v in (tags or {}).values()), *descriptions, name])
    if product is not None:
        return product.sensor, f"USGS product ID {product.text}"
    keys = [band_key(d) for d in descriptions if d]
    found = _usgs(keys) or _numbered_landsat(keys)
    if found:
        return found
    mtl = _mtl_keys(tags or {})
    if mtl:
        return "landsat-oli", f"Landsat MTL tags ({sorted(mtl)[0]}...; OLI assumed, else --sensor landsat-tm)"
    key_set = set(keys)
    if {"NIR08", "SWIR16", "SWIR22"} & key_set and not {"REDEDGE1", "REDEDGE2", "REDEDGE3"} & key_set:
        if "COASTAL" in key_set:
            return "landsat-oli", "Landsat common band names (coastal, nir08, swir16, swir22)"
        return "landsat-tm", "Landsat common band names without coastal (nir08, swir16, swir22)"
    s2 = [k for k in keys if k in _S2_KEYS]
    if s2 and ("B8A" in key_set or "B12" in key_set or len(s2) >= 10):
        return "sentinel2", f"Sentinel-2 band names ({','.join(s2)})"
    for preset in (RGBN, RGB):
        wanted = {band_key(b.name) for b in preset.bands}
        if keys and len(keys) == count == len(wanted) and set(_plain(keys)) == wanted:
            return preset.name, f"band names {','.join(d for d in descriptions if d)}"
    if dtype == "uint8" and count in (3, 4) and all(re.fullmatch(r"B\d", k) for k in keys):
        camera = "rgbn" if count == 4 else "rgb"
        order = "red, green, blue, NIR" if count == 4 else "red, green, blue"
        return camera, f"{count} {'unnamed ' if not keys else ''}8-bit bands, read as {order}"
    if s2 and len(s2) == len(keys):
        return "sentinel2", (f"band names {','.join(s2)} read as Sentinel-2 (for Landsat files named "
                             f"B1..B7 pass --sensor landsat-oli or landsat-tm)")
    return "sentinel2", ASSUMED_REASON


def _plain(keys: list[str]) -> list[str]:
    short = {"R": "RED", "G": "GREEN", "B": "BLUE", "N": "NIR"}
    return [short.get(k, k) for k in keys]


# -- wavelength matching -----------------------------------------------------------------------
@dataclass(frozen=True)
class BandSource:
    """Where one model band comes from.

    Attributes:
        model_band: the model's band name.
        centre_nm: its centre wavelength.
        weights: ``(file band index (1-based), weight)`` pairs; one pair of weight 1 for a direct match.
        approximated: whether the band is a spectral fill (interpolated or extrapolated).
        note: one phrase saying where the values come from.
    """

    model_band: str
    centre_nm: float
    weights: tuple[tuple[int, float], ...]
    approximated: bool
    note: str


@dataclass(frozen=True)
class BandPlan:
    """How a file's bands become a model's bands (see :func:`match_by_wavelength`).

    Attributes:
        sensor: the file's sensor.
        sources: one :class:`BandSource` per model band, in model order.
    """

    sensor: str
    sources: tuple[BandSource, ...]

    @property
    def file_bands(self) -> list[int]:
        """The 1-based file bands the plan reads, ascending."""
        return sorted({index for s in self.sources for index, _ in s.weights})

    @property
    def approximated(self) -> list[str]:
        """Model bands made by spectral fill."""
        return [s.model_band for s in self.sources if s.approximated]

    @property
    def direct(self) -> list[int] | None:
        """The file band of each model band when nothing is filled, else ``None``."""
        if self.approximated:
            return None
        return [s.weights[0][0] for s in self.sources]

    def matrix(self) -> list[list[float]]:
        """Weights ``[model band][position in file_bands]``: model = matrix x file bands."""
        position = {index: i for i, index in enumerate(self.file_bands)}
        rows = []
        for source in self.sources:
            row = [0.0] * len(position)
            for index, weight in source.weights:
                row[position[index]] += weight
            rows.append(row)
        return rows

    def describe(self) -> str:
        """One line: ``B02<-SR_B2, ..., B05~0.77 SR_B4+0.23 SR_B5``."""
        return ", ".join(f"{s.model_band}{'~' if s.approximated else '<-'}{s.note}" for s in self.sources)


def identify_bands(sensor: str, file_band_names: Sequence[str | None]) -> dict[int, BandSpec]:
    """The preset band of each file band (1-based index -> band), by name, else by position.

    Files without recognisable band names are read positionally when their band count is the
    preset's (all bands, or its surface bands: e.g. ``SR_B1..SR_B7`` for OLI, R,G,B,N for RGBN).
    """
    preset = get_preset(sensor)
    named = {}
    for index, name in enumerate(file_band_names, start=1):
        spec = preset.band(name)
        if spec is not None and spec not in named.values():
            named[index] = spec
    if named:
        return named
    count = len(file_band_names)
    for order in (preset.bands, preset.surface_bands):
        if count == len(order):
            return dict(enumerate(order, start=1))
    raise SensorMatchError(f"no band of the raster is named as a {preset.title} band and its {count} bands "
                           f"are not the {len(preset.surface_bands)} of the preset; pass --sensor if it is "
                           f"another sensor ({', '.join(PRESETS)}), else name the bands "
                           f"({', '.join(b.name for b in preset.surface_bands)}) or pass --optical-bands")


def non_optical_bands(sensor: str, file_band_names: Sequence[str | None]) -> list[str]:
    """File bands that are ``sensor`` bands but not surface reflectance: ``"ST_B10 (thermal 1)"`` each.

    Thermal (``ST_B*``, ``B10``), panchromatic and cirrus bands are never matched to model bands.
    """
    preset = get_preset(sensor)
    found = []
    for name in file_band_names:
        spec = preset.band(name)
        if spec is not None and not spec.surface:
            found.append(f"{name} ({spec.label})")
    return found


def _label(index: int, spec: BandSpec, names: Sequence[str | None]) -> str:
    name = names[index - 1] if index - 1 < len(names) and names[index - 1] else f"band {index} ({spec.name})"
    return f"{name} ({spec.centre_nm:g} nm)"


def match_by_wavelength(sensor: str, file_band_names: Sequence[str | None], model_band_names: Sequence[str],
                        tolerance_nm: float = DEFAULT_TOLERANCE_NM) -> BandPlan:
    """Match a ``sensor`` file's bands to Sentinel-2-named model bands by centre wavelength.

    A model band takes the file band with the nearest centre among those within ``tolerance_nm``
    or whose range contains the model band's centre (or whose centre lies in the model band's
    range): Landsat OLI ``B5`` (NIR, 865 nm) feeds Sentinel-2 ``B8A`` (864.7 nm) and ``B08``
    (832.8 nm, range 780-886 nm), never ``B05`` (704 nm). A model band without such a file band is
    filled: linear interpolation in wavelength between the nearest file bands below and above, or
    the nearest file band's value beyond the ends (flat extrapolation). Fills are approximations.

    Args:
        sensor: the file's sensor (a :data:`PRESETS` key).
        file_band_names: the file's band descriptions (``None`` for unnamed bands).
        model_band_names: the model's bands, Sentinel-2 names, in model order.
        tolerance_nm: the largest centre distance of a direct match outside the band ranges.

    Raises:
        SensorMatchError: a model band is not a Sentinel-2 band, or no file band is recognised.
    """
    names = list(file_band_names)
    available = sorted(((spec.centre_nm, index, spec) for index, spec in identify_bands(sensor, names).items()
                        if spec.surface), key=lambda item: (item[0], item[1]))
    if not available:
        other = non_optical_bands(sensor, names)
        why = f": {', '.join(other)} measure(s) temperature or are not reflectance" if other else ""
        title = get_preset(sensor).title
        raise SensorMatchError(f"the raster has no surface-reflectance band of {title}{why}; give its "
                               f"optical bands (e.g. SR_B2..SR_B7), or pass --sensor if it is another sensor")
    sources = []
    for model_name in model_band_names:
        target = SENTINEL2.band(model_name)
        if target is None:
            raise SensorMatchError(f"model band {model_name!r} is not a Sentinel-2 band: cannot match it "
                                   f"by wavelength")
        centre = target.centre_nm
        direct = [(abs(c - centre), i, s) for c, i, s in available
                  if abs(c - centre) <= tolerance_nm or s.contains(centre) or target.contains(c)]
        if direct:
            _, index, spec = min(direct, key=lambda item: (item[0], item[1]))
            sources.append(BandSource(model_name, centre, ((index, 1.0),), False, _label(index, spec, names)))
            continue
        below = [item for item in available if item[0] < centre]
        above = [item for item in available if item[0] > centre]
        if below and above:
            (c0, i0, s0), (c1, i1, s1) = below[-1], above[0]
            w1 = (centre - c0) / (c1 - c0)
            note = f"{1 - w1:.2f} {_label(i0, s0, names)} + {w1:.2f} {_label(i1, s1, names)}"
            sources.append(BandSource(model_name, centre, ((i0, 1 - w1), (i1, w1)), True, note))
        else:
            _, index, spec = below[-1] if below else above[0]
            sources.append(BandSource(model_name, centre, ((index, 1.0),), True,
                                      f"flat from {_label(index, spec, names)}"))
    return BandPlan(sensor, tuple(sources))
