"""Write a QGIS project (.qgz) that opens rasters with their .qml sidecar styles.

Runs with any Python that has PyQGIS (the repo's .venv does), headless:
    .venv/bin/python scripts/make_qgis_project.py OUT.qgz "Layer name=path.tif" ...
Layers are listed top first, as in the QGIS layer panel.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["GDAL_PAM_ENABLED"] = "NO"  # no .aux.xml files beside the results
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer

    app = QgsApplication([], False)
    app.initQgis()
    project = QgsProject.instance()
    out = Path(argv[0]).resolve()
    layers = []
    for spec in argv[1:]:
        name, _, path = spec.partition("=")
        layer = QgsRasterLayer(str(Path(path).resolve()), name)
        if not layer.isValid():
            print(f"error: QGIS cannot open {path}", file=sys.stderr)
            return 1
        style = Path(path).with_suffix(".qml")
        if style.exists():
            _, ok = layer.loadNamedStyle(str(style))
            if not ok:
                print(f"error: QGIS cannot read the style {style}", file=sys.stderr)
                return 1
        layers.append(layer)
    for layer in reversed(layers):
        project.addMapLayer(layer)
    if layers:
        project.setCrs(layers[-1].crs())
    tmp = out.with_name(f"{out.stem}.part.qgz")
    if not project.write(str(tmp)):
        print(f"error: could not write {out}", file=sys.stderr)
        return 1
    os.replace(tmp, out)
    print(f"project: {out}")
    project.clear()
    del layers
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # skip QGIS's exit handlers, which can crash headless (see ENVIRONMENT.md)
