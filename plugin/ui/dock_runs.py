"""The dock's Change and Vectorise runs and its result message (the dock's widgets in, a request out).

Requests come from the one builder (:mod:`plugin.requests_builder`), layers become files through
:mod:`plugin.job_inputs`, exactly as the Processing algorithms do.
"""

from __future__ import annotations

from qgis.core import QgsRasterLayer, QgsRectangle

from ..contract import outputs as _outputs
from ..i18n import tr
from ..job_inputs import date_files
from ..jobs import JobRequest, output_path
from ..layers import KIND_PROPERTY
from ..rasters import layer_rectangle, plain_file_path
from ..requests_builder import RunChoices, build_change_request, build_vectorise_request, default_confidence
from ..results_folder import results_folder
from ..samples import thin_classes


def change_problem(kind: str, before: QgsRasterLayer | None, after: QgsRasterLayer | None) -> str | None:
    """Why Change cannot run (``None``: it can)."""
    if before is None or after is None:
        return tr("choose the before and after layers (Change between dates)")
    if before.id() == after.id():
        return tr("the before and after layers are the same layer")
    return None


def vectorise_problem(layer: QgsRasterLayer | None) -> str | None:
    """Why Vectorise cannot run (``None``: it can)."""
    if layer is None:
        return tr("choose a class, cluster, segmentation or change layer to vectorise")
    if plain_file_path(layer) is None:
        return tr("the layer to vectorise must be a GeoTIFF file (a Terraprobe result)")
    if layer.bandCount() != 1:
        return tr("a class map has one band; {name} has {count}: choose a class, cluster, segmentation or "
                  "change layer").format(name=layer.name(), count=layer.bandCount())
    return None


def change_request(dock) -> tuple[JobRequest, QgsRasterLayer, list]:
    """The Change request of the dock's *Change between dates* box; exports run in the task."""
    box = dock.change_box
    kind = box.kind()
    before, after = box.before_combo.currentLayer(), box.after_combo.currentLayer()
    problem = change_problem(kind, before, after)
    if problem:
        raise ValueError(problem)
    steps: list = []

    def export(layer: QgsRasterLayer, extent: QgsRectangle | None) -> str:
        path, step = dock.controller.prepare_export(layer, extent)
        steps.extend([step] if step is not None else [])
        return path

    area = dock.area_in_layer_crs(before) if kind != "embeddings" else None
    after_area = layer_rectangle(area, before.crs(), after) if area is not None else None
    files = (date_files(before, kind, area, export), date_files(after, kind, after_area, export))
    choices = dock.run_choices() if kind != "embeddings" else RunChoices(advanced=dock.advanced_box.values())
    out = output_path(results_folder().path, f"{before.name()}_to_{after.name()}", "change")
    return build_change_request(out, *files, choices, **box.options()), before, steps


def change_title(box) -> str:
    """Both dates' layers, as Change's files and layers are named: ``"before → after"``."""
    before, after = box.before_combo.currentLayer(), box.after_combo.currentLayer()
    return f"{before.name()} → {after.name()}" if before is not None and after is not None else ""


def vectorise_request(dock) -> tuple[JobRequest, QgsRasterLayer, list]:
    """The Vectorise request of the dock's *Vectorise* box (classify's confidence joins when beside it)."""
    box = dock.vectorise_box
    layer = box.vectorise_combo.currentLayer()
    problem = vectorise_problem(layer)
    if problem:
        raise ValueError(problem)
    if box.only_combo.currentData() == "classes" and not box.only():
        raise ValueError(tr("type the classes to vectorise (values or names, separated by commas)"))
    raster = plain_file_path(layer) or ""
    out = output_path(results_folder().path, layer.name(), "polygons", ".gpkg")
    request = build_vectorise_request(raster, out, box.min_area_spin.value(), box.simplify_spin.value(),
                                      default_confidence(raster), box.only())
    return request, layer, []


def vectorisable(layer) -> bool:
    """A result layer ``vectorise`` takes (a class map this plugin added)."""
    return layer.customProperty(KIND_PROPERTY) in _outputs.VECTORISABLE


def accuracy_text(stats: dict) -> str:
    """Classify's accuracies for the status line: leave-one-polygon-out and spatially blocked, and which to
    trust (``""`` when the run reported none)."""
    lopo, blocked = stats.get("lopo_accuracy"), stats.get("blocked_cv_accuracy")
    parts = []
    if lopo is not None:
        parts.append(tr("leave-one-polygon-out accuracy {accuracy}").format(accuracy=f"{float(lopo):.0%}"))
    if blocked is not None:
        parts.append(tr("spatially blocked accuracy {accuracy} (trust this one: neighbouring polygons share "
                        "context, so leave-one-polygon-out flatters the map)")
                     .format(accuracy=f"{float(blocked):.0%}"))
    elif lopo is not None and "blocked_cv_accuracy" in stats:
        parts.append(tr("no spatially blocked accuracy (too few polygons or blocks): the "
                        "leave-one-polygon-out one is optimistic"))
    return " · ".join(parts)


def thin_classes_message(stats: dict, neighbors: int) -> str | None:
    """The warning for classes with fewer sample patches than kNN's neighbours (``None``: none)."""
    thin = thin_classes(stats.get("class_counts") or {}, neighbors)
    if not thin:
        return None
    return tr("class(es) with fewer samples than the {k} kNN neighbours: {classes}; they can be outvoted. "
              "Add samples, or lower Advanced › Neighbours").format(
        k=neighbors, classes=", ".join(f"{name} ({count})" for name, count in thin.items()))
