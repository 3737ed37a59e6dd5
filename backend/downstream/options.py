"""Command-line pieces shared by ``cluster``, ``classify``, ``segment`` and ``similar``.

Only argparse and pathlib at import time, so ``--help`` stays fast.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from backend.errors import UserError


def read_samples(samples: str, layer: str | None, class_field: str | None = None) -> Any:
    """The ``SampleSet`` of ``--samples``/``--samples-layer`` in the layer's own CRS (reproject with
    ``to_crs``).

    ``class_field=None`` reads every polygon as one ``query`` class (similarity queries).
    """
    from backend.io.vectors import read_sample_polygons

    found = read_sample_polygons(samples, class_field, layer=layer)
    if class_field is not None and len(found.polygons) > MAX_ONE_PER_CLASS \
            and len(found.classes) == len(found.polygons):
        likely = class_like_fields(samples, layer)
        hint = (f"fields that look like classes: {', '.join(likely)}" if likely
                else "no field of the layer looks like one (values shared by several polygons)")
        raise UserError(f"--class-field {class_field} looks like an identifier, not a class: each of the "
                        f"{len(found.polygons)} polygons has its own value (one class per polygon); {hint}")
    return found


#: More polygons than this, each with its own class value, is an identifier field, not classes.
MAX_ONE_PER_CLASS = 5
#: Identifier-like field names (the plugin's rule, plugin/samples.py): never a class field.
ID_LIKE = re.compile(r"^(id|fid|gid|oid|objectid|ogc_fid|uid|pk|.*_id|id_.*)$", re.IGNORECASE)


def class_like_fields(samples: str, layer: str | None) -> list[str]:
    """Text or integer fields of the layer, not named like identifiers, whose values repeat."""
    import fiona

    with fiona.open(samples, layer=layer) if layer is not None else fiona.open(samples) as collection:
        kinds = {name: kind.split(":")[0] for name, kind in collection.schema.get("properties", {}).items()}
        usable = [name for name, kind in kinds.items() if kind in ("str", "int") and not ID_LIKE.match(name)]
        values: dict[str, list[Any]] = {name: [] for name in usable}
        for feature in collection:
            for name in usable:
                values[name].append(feature.properties.get(name))
    return [name for name in usable
            if 1 <= len({v for v in values[name] if v is not None}) < len(values[name])]


def output_path(value: str, what: str = "--out") -> Path:
    """A writable output GeoTIFF path (its folder must exist or be creatable)."""
    path = Path(value).expanduser()
    if path.is_dir():
        raise UserError(f"{what} is a folder; give a file name such as {path / 'result.tif'}")
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise UserError(f"{what} must be a GeoTIFF file name ending in .tif (got {path.name})")
    return path


def sibling(path: Path, suffix: str, extension: str = ".tif") -> Path:
    """``x.tif`` → ``x<suffix><extension>``."""
    return path.with_name(f"{path.stem}{suffix}{extension}")


def check_distinct(*paths: Path | None) -> None:
    """Outputs must be different files (and not the embeddings being read)."""
    from backend.io.outputs import same_file

    seen: list[Path] = []
    for path in paths:
        if path is None:
            continue
        if any(same_file(path, other) for other in seen):
            raise UserError(f"two outputs would be written to the same file: {path}")
        seen.append(path)
