"""Add backend results to the project: one group per action and source, styled, named by what made them;
earlier results stay beside them unless the analyst asks to replace them."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsColorRampShader,
    QgsGradientColorRamp,
    QgsLayerTreeGroup,
    QgsMultiBandColorRenderer,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterBandStats,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP
from qgis.PyQt.QtGui import QColor

from .contract import outputs as _outputs
from .i18n import tr
from .result_names import layer_name, unique_name

RASTER_OUTPUTS = _outputs.RASTER_OUTPUTS
VECTOR_OUTPUTS = _outputs.VECTOR_OUTPUTS
STYLE_KEYS = _outputs.STYLE_KEYS

KIND_PROPERTY = "terraprobe/kind"
SOURCE_PROPERTY = "terraprobe/source"
GROUP_PROPERTY = "terraprobe/group"
GROUP_PREFIX = "Terraprobe"
#: Layer titles per result key (marked for translation; translated when a layer is named).
LAYER_TITLES = {"embeddings": QT_TRANSLATE_NOOP("Terraprobe", "embeddings"),
                "preview": QT_TRANSLATE_NOOP("Terraprobe", "embedding (PCA RGB)"),
                "clusters": QT_TRANSLATE_NOOP("Terraprobe", "clusters"),
                "labels": QT_TRANSLATE_NOOP("Terraprobe", "classes"),
                "confidence": QT_TRANSLATE_NOOP("Terraprobe", "confidence"),
                "segmentation": QT_TRANSLATE_NOOP("Terraprobe", "segmentation"),
                "similarity": QT_TRANSLATE_NOOP("Terraprobe", "similarity"),
                "magnitude": QT_TRANSLATE_NOOP("Terraprobe", "change magnitude"),
                "mask": QT_TRANSLATE_NOOP("Terraprobe", "change mask"),
                "types": QT_TRANSLATE_NOOP("Terraprobe", "change types"),
                "polygons": QT_TRANSLATE_NOOP("Terraprobe", "polygons")}
VIRIDIS = _outputs.VIRIDIS_STOPS
PALETTE = _outputs.QUALITATIVE_PALETTE


def style_layer(layer: QgsRasterLayer, kind: str, qml: str | None = None,
                class_names: dict[int, str] | None = None) -> None:
    """Apply the backend's QML sidecar, or a fallback style for ``kind`` (rgb/classes/continuous)."""
    qml_path = qml or str(Path(layer.source()).with_suffix(".qml"))
    if Path(qml_path).is_file():
        _, ok = layer.loadNamedStyle(qml_path)
        if ok:
            _name_classes(layer, class_names)
            layer.triggerRepaint()
            return
    if kind == "rgb" and layer.bandCount() >= 3:
        layer.setRenderer(QgsMultiBandColorRenderer(layer.dataProvider(), 1, 2, 3))
    elif kind == "classes":
        _paletted(layer, class_names)
    elif kind == "continuous":
        _pseudocolor(layer)
    layer.triggerRepaint()


def style_vector_layer(layer: QgsVectorLayer, qml: str | None = None) -> None:
    """Apply the backend's QML sidecar of a vector result (its class colours); QGIS's default otherwise."""
    qml_path = qml or str(Path(layer.source().split("|")[0]).with_suffix(".qml"))
    if Path(qml_path).is_file():
        layer.loadNamedStyle(qml_path)
    layer.triggerRepaint()


def _name_classes(layer: QgsRasterLayer, class_names: dict[int, str] | None) -> None:
    """Put class names on a paletted renderer whose labels are bare numbers."""
    renderer = layer.renderer()
    if not class_names or not isinstance(renderer, QgsPalettedRasterRenderer):
        return
    classes = renderer.classes()
    changed = False
    for item in classes:
        name = class_names.get(int(item.value))
        if name and item.label != name:
            item.label = name
            changed = True
    if changed:
        layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))


def _paletted(layer: QgsRasterLayer, class_names: dict[int, str] | None) -> None:
    if class_names:
        values = sorted(class_names)
    else:
        stats = layer.dataProvider().bandStatistics(1, QgsRasterBandStats.Min | QgsRasterBandStats.Max)
        values = list(range(max(1, int(stats.minimumValue)), int(stats.maximumValue) + 1))[:255]
    classes = [QgsPalettedRasterRenderer.Class(v, QColor(PALETTE[i % len(PALETTE)]),
                                               (class_names or {}).get(v, str(v)))
               for i, v in enumerate(values)]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))


def _pseudocolor(layer: QgsRasterLayer) -> None:
    stats = layer.dataProvider().bandStatistics(1, QgsRasterBandStats.Min | QgsRasterBandStats.Max)
    low, high = stats.minimumValue, stats.maximumValue
    if not high > low:
        high = low + 1.0
    ramp = QgsGradientColorRamp(QColor(VIRIDIS[0]), QColor(VIRIDIS[-1]))
    ramp.setStops([])
    shader_function = QgsColorRampShader(low, high)
    shader_function.setColorRampType(QgsColorRampShader.Interpolated)
    items = [QgsColorRampShader.ColorRampItem(low + (high - low) * i / (len(VIRIDIS) - 1), QColor(c),
                                              f"{low + (high - low) * i / (len(VIRIDIS) - 1):.2f}")
             for i, c in enumerate(VIRIDIS)]
    shader_function.setColorRampItemList(items)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_function)
    layer.setRenderer(QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader))


def result_group(title: str, project: QgsProject | None = None) -> QgsLayerTreeGroup:
    """The group ``Terraprobe · title`` at the top of the layer tree (created when missing)."""
    project = project or QgsProject.instance()
    root = project.layerTreeRoot()
    name = f"{GROUP_PREFIX} · {title}"
    group = root.findGroup(name)
    if group is None:
        group = root.insertGroup(0, name)
        group.setCustomProperty(GROUP_PROPERTY, True)
    return group


def remove_previous(kind: str, source_id: str, project: QgsProject | None = None) -> None:
    """Remove earlier result layers of the same kind made from the same input layer."""
    project = project or QgsProject.instance()
    old = [layer.id() for layer in project.mapLayers().values()
           if layer.customProperty(KIND_PROPERTY) == kind
           and layer.customProperty(SOURCE_PROPERTY) == source_id]
    if old:
        project.removeMapLayers(old)
    root = project.layerTreeRoot()
    for group in root.findGroups(True):
        if group.customProperty(GROUP_PROPERTY) and not group.children():
            group.parent().removeChildNode(group)


def point_label(x: float, y: float, crs_authid: str | None = None) -> str:
    """A short ``@ x, y`` for layer names: degrees to 5 decimals, projected units to 1."""
    digits = 5 if max(abs(x), abs(y)) <= 360 else 1
    text = f"@ {x:.{digits}f}, {y:.{digits}f}"
    return f"{text} ({crs_authid})" if crs_authid else text


def add_results(outputs: dict, stats: dict, action: str, source_name: str, source_id: str,
                project: QgsProject | None = None, detail: str = "", details: list[str] | None = None,
                replace: bool = False) -> list:
    """Add every raster (and vector) result of one run to ``Terraprobe · <action> · <source>``.

    Each layer is named ``<source> <title> [<detail>] — <details>`` (``detail``: e.g. the similarity
    query point; ``details``: what made it, :func:`plugin.result_names.run_details`). Earlier layers of the
    same kind from the same input stay unless ``replace``. Embed adds its embedding raster too (hidden,
    below its colour preview), so the *Embedding field* picker offers it.
    """
    project = project or QgsProject.instance()
    class_names = {int(k): str(v) for k, v in (stats.get("classes") or {}).items()} or None
    added: list = []
    shown = {*RASTER_OUTPUTS, *VECTOR_OUTPUTS, *(("embeddings",) if action == "embed" else ())}
    entries = [(key, path) for key, path in outputs.items() if key in shown and path]
    if not entries:
        return added
    if replace:
        for key, _ in entries:
            remove_previous(key, source_id, project)
    group = result_group(f"{action} · {source_name}", project)
    taken = {layer.name() for layer in project.mapLayers().values()}
    entries.sort(key=lambda entry: entry[0] == "embeddings")  # the raw field below its colour preview
    for position, (key, path) in enumerate(entries):
        title = tr(LAYER_TITLES.get(key, key))
        name = unique_name(layer_name(source_name, title, detail, details or []), taken)
        taken.add(name)
        layer = _result_layer(key, str(path), name, outputs, class_names)
        layer.setCustomProperty(KIND_PROPERTY, key)
        layer.setCustomProperty(SOURCE_PROPERTY, source_id)
        project.addMapLayer(layer, False)
        node = group.insertLayer(position, layer)  # the latest run on top, its layers in order
        node.setItemVisibilityChecked(key != "embeddings")
        added.append(layer)
    return added


def _result_layer(key: str, path: str, name: str, outputs: dict, class_names: dict[int, str] | None):
    """One output as a styled layer (raises when QGIS cannot open it)."""
    qml = outputs.get(STYLE_KEYS.get(key, ""), None)
    layer = QgsVectorLayer(path, name, "ogr") if key in VECTOR_OUTPUTS else QgsRasterLayer(path, name, "gdal")
    if not layer.isValid():
        raise RuntimeError(tr("QGIS cannot open the result {path}").format(path=path))
    if key in VECTOR_OUTPUTS:
        style_vector_layer(layer, qml)
    elif key in RASTER_OUTPUTS:
        kind = RASTER_OUTPUTS[key]
        style_layer(layer, kind, qml, class_names if kind == "classes" else None)
    return layer
