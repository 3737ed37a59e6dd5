"""Build backend command lines for the dock's and Processing's actions (pure Python).

The arguments follow the backend's inference contract: shared inputs (``--optical``, ``--sar``,
``--model``, ``--bounds``, ``--window``, ``--device``, ``--cache-dir``) and one output per action.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .contract import OPTICAL_UNITS, SAR_UNITS, SENSOR_NAMES

ACTIONS = ("embed", "cluster", "classify", "segment", "similar")
#: The choice that lets the backend decide (units detected, sensor recognised from band names).
AUTO = "auto"

#: Result keys that are rasters to add to the project, with the kind of layer they are.
RASTER_OUTPUTS: dict[str, str] = {
    "preview": "rgb",
    "clusters": "classes",
    "labels": "classes",
    "segmentation": "classes",
    "confidence": "continuous",
    "similarity": "continuous",
}
#: For each raster output, the result key of its style (when the backend names it).
STYLE_KEYS: dict[str, str] = {"clusters": "style", "labels": "style", "segmentation": "style",
                              "similarity": "style", "confidence": "confidence_style"}


@dataclass
class JobRequest:
    """Everything one backend run needs.

    Attributes:
        action: one of :data:`ACTIONS`.
        optical: path of the optical raster file (GeoTIFF).
        optical_bands: 1-based band of ``optical`` for each model optical band (model order).
        sar: optional radar raster file, aligned onto the optical grid by the backend.
        sar_bands: as ``optical_bands`` for radar.
        model: model file; ``None`` lets the backend use the bundled default.
        bounds: area ``(minx, miny, maxx, maxy)`` in ``bounds_crs``; ``None`` = whole raster.
        overlap, batch_size: encoder tiling (``--overlap``, ``--batch-size``); ``None``: backend default.
        options: action options, e.g. ``{"k": 8}``, ``{"samples": path, "class_field": "class"}``,
            ``{"point": (x, y), "point_crs": "EPSG:4326"}``, ``{"neighbors": 10}`` (classify),
            ``{"steps": 300}`` (segment training).
        out: main output GeoTIFF.
        optical_units: one of ``OPTICAL_UNITS`` (``"auto"``: the backend detects them).
        sar_units: one of ``SAR_UNITS``.
        sensor: one of ``SENSOR_NAMES`` (``"auto"``: recognised from the layer's band names).

    Only non-``auto`` units and sensor go on the command line, so the backend's own defaults apply.
    """

    action: str
    optical: str | None = None
    optical_bands: list[int] | None = None
    sar: str | None = None
    sar_bands: list[int] | None = None
    model: str | None = None
    bounds: tuple[float, float, float, float] | None = None
    bounds_crs: str | None = None
    window: int | None = None
    overlap: int | None = None
    batch_size: int | None = None
    device: str = "auto"
    cache_dir: str | None = None
    embeddings: str | None = None
    options: dict = field(default_factory=dict)
    out: str = ""
    optical_units: str = AUTO
    sar_units: str = AUTO
    sensor: str = AUTO

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}")
        for name, allowed in (("optical_units", OPTICAL_UNITS), ("sar_units", SAR_UNITS),
                              ("sensor", SENSOR_NAMES)):
            value = getattr(self, name) or AUTO
            if value not in allowed:
                raise ValueError(f"unknown {name.replace('_', ' ')} {value!r}; "
                                 f"choose one of {', '.join(allowed)}")
            setattr(self, name, value)

    def arguments(self) -> list[str]:
        """The backend argv (without the interpreter and ``--events``)."""
        if not self.out:
            raise ValueError("JobRequest.out is not set")
        args = [self.action]
        if self.embeddings:
            args += ["--embeddings", self.embeddings]
        if self.optical:
            args += ["--optical", self.optical]
            if self.optical_bands:
                args += ["--optical-bands", ",".join(str(b) for b in self.optical_bands)]
        if self.sar:
            args += ["--sar", self.sar]
            if self.sar_bands:
                args += ["--sar-bands", ",".join(str(b) for b in self.sar_bands)]
        if self.model:
            args += ["--model", self.model]
        if self.bounds:
            args += ["--bounds", *(repr(float(v)) for v in self.bounds)]
            if self.bounds_crs:
                args += ["--bounds-crs", self.bounds_crs]
        if self.window:
            args += ["--window", str(int(self.window))]
        if self.overlap is not None:
            args += ["--overlap", str(int(self.overlap))]
        if self.batch_size:
            args += ["--batch-size", str(int(self.batch_size))]
        args += self.radiometry_arguments()
        args += ["--device", self.device]
        if self.cache_dir:
            args += ["--cache-dir", self.cache_dir]
        args += ["--out", self.out]
        args += self._action_arguments()
        return args

    def radiometry_arguments(self) -> list[str]:
        """``--optical-units``, ``--sar-units`` and ``--sensor`` for the non-``auto`` choices.

        Units only matter where the encoder reads pixels, so they are left out with ``--embeddings``.
        """
        if self.embeddings and not self.optical:
            return []
        args = []
        if self.optical and self.optical_units != AUTO:
            args += ["--optical-units", self.optical_units]
        if self.sar and self.sar_units != AUTO:
            args += ["--sar-units", self.sar_units]
        if self.optical and self.sensor != AUTO:
            args += ["--sensor", self.sensor]
        return args

    def _action_arguments(self) -> list[str]:
        opts = self.options
        out = Path(self.out)
        if self.action == "embed":
            return ["--preview-out", str(opts.get("preview") or out.with_name(out.stem + "_pca.tif"))]
        if self.action == "cluster":
            return ["--k", str(int(opts.get("k", 8))), "--seed", str(int(opts.get("seed", 0)))]
        if self.action == "classify":
            confidence = opts.get("confidence") or out.with_name(out.stem + "_confidence.tif")
            args = ["--samples", str(opts["samples"]), "--class-field", str(opts["class_field"]),
                    "--confidence-out", str(confidence)]
            if opts.get("neighbors"):
                args += ["--neighbors", str(int(opts["neighbors"]))]
            return args
        if self.action == "segment":
            args = (["--label-raster", str(opts["label_raster"])] if opts.get("label_raster")
                    else ["--samples", str(opts["samples"]), "--class-field", str(opts["class_field"])])
            if opts.get("head"):
                args += ["--head", str(opts["head"])]
            else:
                head_out = opts.get("head_out") or out.with_name(out.stem + "_head.safetensors")
                args += ["--head-out", str(head_out)]
                if opts.get("steps"):
                    args += ["--steps", str(int(opts["steps"]))]
            return args
        # similar
        if opts.get("point") is not None:
            x, y = opts["point"]
            args = ["--point", repr(float(x)), repr(float(y))]
            if opts.get("point_crs"):
                args += ["--point-crs", str(opts["point_crs"])]
            return args
        return ["--samples", str(opts["samples"])]


def output_path(folder: str | Path, input_name: str, action: str, suffix: str = ".tif") -> Path:
    """A fresh output file name: ``<input>_<action>_<timestamp>.tif`` in ``folder``."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in input_name)[:60] or "layer"
    stamp = time.strftime("%Y%m%d_%H%M%S") + f"_{int(time.time() * 1000) % 1000:03d}"
    return Path(folder) / f"{stem}_{action}_{stamp}{suffix}"
