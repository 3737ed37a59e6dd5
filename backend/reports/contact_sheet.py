"""A PNG contact sheet of a run: input RGB beside each result, styled like the QML sidecars."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.errors import UserError

#: Longest side, in pixels, that a panel is read at (decimated read: bounded memory).
PANEL_SIZE = 512


@dataclass
class Panel:
    """One picture of the sheet: a title and a raster (RGB bands, a class map or a continuous map)."""

    title: str
    path: Path
    bands: tuple[int, ...] | None = None


def parse_panel(spec: str) -> Panel:
    """``"Title=path.tif"`` or ``"Title=path.tif:4,3,2"`` (1-based bands drawn as RGB)."""
    if "=" not in spec:
        raise UserError(f"--panel needs TITLE=PATH[:BANDS], got {spec!r}")
    title, rest = spec.rsplit("=", 1)
    match = re.fullmatch(r"(.+?)(?::(\d+(?:,\d+)*))?", rest)
    assert match is not None
    bands = tuple(int(b) for b in match.group(2).split(",")) if match.group(2) else None
    return Panel(title.strip(), Path(match.group(1)), bands)


def read_preview(path: Path, bands: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """A decimated read of ``bands`` (all when None) and its valid mask, at most PANEL_SIZE wide."""
    import rasterio
    from rasterio.enums import Resampling

    if not path.exists():
        raise UserError(f"contact sheet: {path} does not exist")
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError:
        raise UserError(f"contact sheet: {path} is not a raster GDAL can read") from None
    with src:
        scale = min(1.0, PANEL_SIZE / max(src.width, src.height))
        shape = (max(1, round(src.height * scale)), max(1, round(src.width * scale)))
        indexes = list(bands) if bands else list(range(1, src.count + 1))
        missing = [str(b) for b in indexes if not 1 <= b <= src.count]
        if missing:
            raise UserError(f"contact sheet: {path.name} has {src.count} band(s), "
                            f"no band {','.join(missing)}")
        categorical = np.issubdtype(np.dtype(src.dtypes[0]), np.integer) and src.count == 1
        resampling = Resampling.nearest if categorical else Resampling.average
        data = src.read(indexes, out_shape=(len(indexes), *shape), resampling=resampling,
                        masked=True)
    valid = ~np.ma.getmaskarray(data).any(axis=0)
    array = np.ma.filled(data.astype(np.float64), np.nan)
    valid &= np.isfinite(array).all(axis=0)
    return array, valid


def qml_palette(path: Path) -> dict[int, tuple[str, str]]:
    """``{value: (colour, label)}`` from a paletted QML sidecar, or {} when there is none."""
    qml = path.with_suffix(".qml")
    if not qml.exists():
        return {}
    entries = ET.parse(qml).getroot().iter("paletteEntry")
    return {int(float(e.get("value", "0"))): (e.get("color", "#808080"), e.get("label", ""))
            for e in entries}


def stretch(array: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-band 2-98 % percentile stretch to [0, 1] over the valid pixels."""
    out = np.zeros_like(array)
    for index, band in enumerate(array):
        values = band[valid]
        if values.size:
            lo, hi = np.percentile(values, [2, 98])
            out[index] = np.clip((band - lo) / max(hi - lo, 1e-12), 0, 1)
    return out


def render(panels: list[Panel], out: Path, title: str = "") -> Path:
    """Draw the panels on a grid and save the PNG atomically."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    with warnings.catch_warnings():  # Debian's mpl_toolkits beside the venv's matplotlib
        warnings.simplefilter("ignore")
        import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from backend.io.atomic import atomic_path

    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 5.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, panel in zip(axes.flat, panels):
        array, valid = read_preview(panel.path, panel.bands)
        palette = qml_palette(panel.path)
        if array.shape[0] >= 3:
            rgb = stretch(array[:3], valid).transpose(1, 2, 0)
            ax.imshow(np.dstack([rgb, valid.astype(float)]))
        elif palette:
            values = sorted(palette)
            lookup = {v: i for i, v in enumerate(values)}
            index = np.full(array.shape[1:], np.nan)
            for value, position in lookup.items():
                index[(array[0] == value) & valid] = position
            cmap = ListedColormap([palette[v][0] for v in values])
            ax.imshow(np.ma.masked_invalid(index), cmap=cmap, vmin=-0.5, vmax=len(values) - 0.5,
                      interpolation="nearest")
            handles = [Patch(color=palette[v][0], label=palette[v][1] or str(v)) for v in values[:12]]
            ax.legend(handles=handles, loc="lower left", fontsize=7, framealpha=0.8)
        else:
            lo, hi = np.percentile(array[0][valid], [2, 98]) if valid.any() else (0.0, 1.0)
            image = ax.imshow(np.ma.masked_where(~valid, array[0]), cmap="viridis", vmin=lo, vmax=hi)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
        ax.set_title(panel.title, fontsize=11)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return out
