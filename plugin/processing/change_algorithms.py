"""Processing algorithms Change (between two dates) and Vectorise (a class map to polygons).

Both build their requests with the dock's builder (:func:`plugin.requests_builder.build_change_request`,
:func:`~plugin.requests_builder.build_vectorise_request`) and the dock's layer-to-file logic
(:func:`plugin.job_inputs.date_files`), and run like the other algorithms.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP

from .. import requests_builder as builder
from ..contract import requests as _requests
from ..job_inputs import DATE_KINDS, date_files
from ..jobs import JobRequest
from ..rasters import layer_rectangle, plain_file_path
from .algorithms import TerraprobeAlgorithm, add_model_parameters
from .common import _tr, add_field_parameters, number_parameter

#: Labels of :data:`plugin.job_inputs.DATE_KINDS` (the dock's *Compare* choices).
KIND_LABELS = ("Embedding fields", "Optical layers (same model)", "Radar layers (same model)")


class ChangeAlgorithm(TerraprobeAlgorithm):
    ACTION = "change"
    TITLE = QT_TRANSLATE_NOOP("TerraprobeAlgorithm", "Change (between two dates)")
    HELP = QT_TRANSLATE_NOOP("TerraprobeAlgorithm",
                             "Compares two dates per patch: two embedding fields (AlphaEarth, TESSERA, "
                             "Embed's), or two optical or radar layers embedded with one model (another "
                             "grid is aligned on the fly). Writes the change magnitude (cosine distance), a "
                             "change mask by an automatic (robust or Otsu) or fixed threshold, and "
                             "optionally change types (clusters of the change vectors).")
    KIND = "KIND"
    BEFORE = "BEFORE"
    AFTER = "AFTER"
    THRESHOLD = "THRESHOLD"
    CHANGE_CLUSTERS = "CHANGE_CLUSTERS"
    MASK = "MASK"
    TYPES = "TYPES"
    OUTPUTS: ClassVar[dict[str, tuple[str, str]]] = {
        "OUTPUT": ("magnitude", "continuous"), "MASK": ("mask", "classes"), "TYPES": ("types", "classes")}

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterEnum(self.KIND, _tr("Compare"), [_tr(k) for k in KIND_LABELS],
                                                     defaultValue=0))
        self.addParameter(QgsProcessingParameterRasterLayer(self.BEFORE, _tr("Before (earlier date)")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.AFTER, _tr("After (later date)")))
        self.addParameter(QgsProcessingParameterString(
            self.THRESHOLD, _tr("Threshold: auto (robust for pixel change), robust, otsu, otsu3 (dates of "
                                "different seasons) or a number"),
            _requests.DEFAULT_THRESHOLD))
        self.addParameter(number_parameter("change_clusters", advanced=False))
        add_model_parameters(self, _tr("Model file for optical/radar dates"))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, _tr("Area (empty: whole layer)"),
                                                       optional=True))
        sensor = _tr("Sensor of the optical layers (auto: band names)")
        self.add_parameters(*self.radiometry_parameters(sensor), *self.tiling_parameters(), advanced=True)
        add_field_parameters(self)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, _tr("Change magnitude")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.MASK, _tr("Change mask (empty: <magnitude>_mask.tif)"), optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.TYPES, _tr("Change types"), optional=True, createByDefault=False))

    def request(self, parameters: dict, context: QgsProcessingContext,
                feedback: QgsProcessingFeedback) -> JobRequest:
        kind = DATE_KINDS[self.parameterAsEnum(parameters, self.KIND, context)]
        before = self.parameterAsRasterLayer(parameters, self.BEFORE, context)
        after = self.parameterAsRasterLayer(parameters, self.AFTER, context)
        if before is None or after is None:
            raise QgsProcessingException(_tr("Choose the before and after layers."))
        area = None
        if kind != "embeddings" and parameters.get(self.EXTENT):
            extent = self.parameterAsExtent(parameters, self.EXTENT, context, before.crs())
            area = layer_rectangle(extent, before.crs(), before)
        export = partial(self._export, feedback=feedback)
        after_area = layer_rectangle(area, before.crs(), after) if area else None
        files = (date_files(before, kind, area, export), date_files(after, kind, after_area, export))
        choices = (self.run_choices(parameters, context) if kind != "embeddings"
                   else builder.RunChoices(advanced=self.field_choices(parameters, context)))
        clusters = self.parameterAsInt(parameters, self.CHANGE_CLUSTERS, context)
        options = {"threshold": self.parameterAsString(parameters, self.THRESHOLD, context).strip() or None,
                   "change_clusters": clusters or None,
                   "mask_out": self.companion_output(parameters, context, self.MASK)}
        if clusters and parameters.get(self.TYPES):
            options["types_out"] = str(self._output_path(parameters, context, self.TYPES))
        out = self._output_path(parameters, context, self.OUTPUT)
        return builder.build_change_request(out, *files, choices, **options)


class VectoriseAlgorithm(TerraprobeAlgorithm):
    ACTION = "vectorise"
    TITLE = QT_TRANSLATE_NOOP("TerraprobeAlgorithm", "Vectorise (class map to polygons)")
    HELP = QT_TRANSLATE_NOOP("TerraprobeAlgorithm",
                             "Turns a class, cluster, segmentation or change map into polygons (GeoPackage) "
                             "with class, area and mean confidence, styled in the map's colours; smaller "
                             "regions than the minimum area merge into their largest neighbour.")
    INPUT = "INPUT"
    CONFIDENCE = "CONFIDENCE"
    MIN_AREA = "MIN_AREA"
    SIMPLIFY = "SIMPLIFY"
    ONLY = "ONLY"
    OUTPUTS: ClassVar[dict[str, tuple[str, str]]] = {"OUTPUT": ("polygons", "vector")}

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT,
                                                            _tr("Class map (a Terraprobe result)")))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.CONFIDENCE, _tr("Confidence raster (empty: Classify's beside the class map, if any)"),
            optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_AREA, _tr("Minimum area (m²)"), QgsProcessingParameterNumber.Double, 0.0, False, 0.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.SIMPLIFY, _tr("Simplification tolerance (map units; 0: exact pixel outlines)"),
            QgsProcessingParameterNumber.Double, 0.0, False, 0.0))
        self.addParameter(QgsProcessingParameterString(
            self.ONLY, _tr("Only these classes (values or names, separated by commas, e.g. change for a "
                           "change mask's changed areas; empty: all)"), optional=True))
        self.addParameter(QgsProcessingParameterVectorDestination(self.OUTPUT, _tr("Polygons")))

    def request(self, parameters: dict, context: QgsProcessingContext,
                feedback: QgsProcessingFeedback) -> JobRequest:
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        raster = plain_file_path(layer) if layer is not None else None
        if not raster:
            raise QgsProcessingException(_tr("The class map must be a GeoTIFF file (a Terraprobe result)."))
        confidence_layer = self.parameterAsRasterLayer(parameters, self.CONFIDENCE, context)
        confidence = (plain_file_path(confidence_layer) if confidence_layer is not None
                      else builder.default_confidence(raster))
        return builder.build_vectorise_request(
            raster, self._output_path(parameters, context, self.OUTPUT, "polygons.gpkg"),
            self.parameterAsDouble(parameters, self.MIN_AREA, context),
            self.parameterAsDouble(parameters, self.SIMPLIFY, context), confidence,
            self.parameterAsString(parameters, self.ONLY, context) or None)
