"""Processing algorithms: embed, cluster, classify, segment, similar (provider ``terraprobe``).

Each algorithm builds its request with the dock's builder (:mod:`plugin.requests_builder`, layers
turned into files by :mod:`plugin.job_inputs`) and runs the backend through the process client,
mirroring progress into ``feedback`` and stopping the backend on cancel. Output
styles are applied through a layer post-processor, so toolbox runs, models and ``processing.run``
with loaded outputs carry the class names and colours; ``qgis_process`` outputs carry the ``.qml``
sidecars the backend writes beside them.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterPoint,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP
from qgis.PyQt.QtGui import QIcon

from .. import requests_builder as builder
from ..backend_client import run_backend
from ..bands import SENSOR_LABELS, layer_facts, resolve_sensor
from ..contract import OPTICAL_UNITS, SAR_UNITS, SENSOR_NAMES
from ..help_links import PROCESSING, help_url
from ..interpreter import BackendNotFound
from ..job_inputs import field_file, layer_files, layer_optical_bands, layer_sar_bands
from ..jobs import AUTO, JobRequest
from ..layers import STYLE_KEYS
from ..models import bundled_model_names, model_bands, model_from_name
from ..process_client import BackendCancelled, BackendError
from ..rasters import RasterExport, layer_rectangle, plain_file_path
from ..settings import DEVICES, Settings
from ..tasks import warning_text
from .common import (
    StylePostProcessor,
    _tr,
    _unit_options,
    absolute_paths,
    add_field_parameters,
    as_advanced,
    enum_parameter,
    number_parameter,
)
from .provider import ICON_PATH

BUNDLED_MODEL = "BUNDLED_MODEL"


def add_model_parameters(algorithm: QgsProcessingAlgorithm, file_label: str) -> None:
    """The model parameters: a bundled model by name (``Auto``: by sensor), or a model file (wins)."""
    algorithm.addParameter(QgsProcessingParameterEnum(
        BUNDLED_MODEL, _tr("Bundled model (Auto: picked by the optical layer's sensor)"),
        [_tr("Auto"), *bundled_model_names()], defaultValue=0))
    algorithm.addParameter(QgsProcessingParameterFile(
        algorithm.MODEL, _tr("{what} (empty: the bundled model above)").format(what=file_label),
        optional=True, fileFilter="Model files (*.safetensors *.json *.pt *.pth)"))


def chosen_model(algorithm: QgsProcessingAlgorithm, parameters: dict,
                 context: QgsProcessingContext) -> str | None:
    """The model file given, else the bundled model chosen by name (``None``: Auto)."""
    if given := algorithm.parameterAsFile(parameters, algorithm.MODEL, context):
        return given
    choice = algorithm.parameterAsEnum(parameters, BUNDLED_MODEL, context)
    names = bundled_model_names()
    return model_from_name(names[choice - 1]) if 0 < choice <= len(names) else None


class TerraprobeAlgorithm(QgsProcessingAlgorithm):
    """Shared inputs (layers, bands, model, area, device) and the backend run."""

    ACTION = ""
    #: The toolbox's title and help of the algorithm (marked for translation, translated where shown).
    TITLE = ""
    HELP = ""
    OPTICAL = "OPTICAL"
    OPTICAL_BANDS = "OPTICAL_BANDS"
    SAR = "SAR"
    SAR_BANDS = "SAR_BANDS"
    EMBEDDINGS = "EMBEDDINGS"
    MODEL = "MODEL"
    EXTENT = "EXTENT"
    WINDOW = "WINDOW"
    DEVICE = "DEVICE"
    OPTICAL_UNITS = "OPTICAL_UNITS"
    SAR_UNITS = "SAR_UNITS"
    SENSOR = "SENSOR"
    OUTPUT = "OUTPUT"
    #: output parameter name -> (result key, layer kind)
    OUTPUTS: ClassVar[dict[str, tuple[str, str]]] = {}

    def createInstance(self):
        return type(self)()

    def name(self) -> str:
        return self.ACTION

    def displayName(self) -> str:
        return _tr(self.TITLE)

    def shortHelpString(self) -> str:
        return _tr(self.HELP)

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))

    def helpUrl(self) -> str:
        """The README's Processing section (the dialog's *Help* button)."""
        return help_url(PROCESSING)

    # -- parameters ----------------------------------------------------------------------------
    def add_input_parameters(self, field: bool = False) -> None:
        """Layers, model, area, units, tiling; with ``field``, an embedding field can replace the layers."""
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.OPTICAL, "Optical layer (Sentinel-2)", optional=field))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.SAR, "Radar layer (Sentinel-1 VV/VH)", optional=True))
        add_model_parameters(self, _tr("Model file"))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, "Area (empty: whole layer)",
                                                       optional=True))
        sensor_label = _tr("Sensor of the optical layer (auto: from its band names)")
        self.add_parameters(*self.radiometry_parameters(sensor_label))
        self.add_parameters(
            QgsProcessingParameterString(self.OPTICAL_BANDS,
                                         "Optical band mapping (layer band per model band, e.g. "
                                         "1,2,3,4,5,6,7,8,9,10,12,13; empty: by band name for "
                                         "Sentinel-2, by wavelength with spectral fill for other sensors)",
                                         optional=True),
            QgsProcessingParameterString(self.SAR_BANDS, "Radar band mapping (e.g. 1,2)", optional=True),
            *self.tiling_parameters(), advanced=True)
        if field:
            self.addParameter(QgsProcessingParameterRasterLayer(
                self.EMBEDDINGS, _tr("Embedding field (from Embed, or any multi-band float raster such as "
                                     "AlphaEarth or TESSERA; skips the encoder)"), optional=True))

    def radiometry_parameters(self, sensor_label: str) -> list[QgsProcessingParameterEnum]:
        """SENSOR, OPTICAL_UNITS and SAR_UNITS (``auto`` first)."""
        return [QgsProcessingParameterEnum(name, label, options, defaultValue=0) for name, label, options in (
            (self.SENSOR, sensor_label, [_tr(SENSOR_LABELS.get(sensor, sensor)) for sensor in SENSOR_NAMES]),
            (self.OPTICAL_UNITS, _tr("Optical units (auto: detected)"), _unit_options(OPTICAL_UNITS)),
            (self.SAR_UNITS, _tr("Radar units (auto: detected)"), _unit_options(SAR_UNITS)))]

    @staticmethod
    def tiling_parameters() -> list[QgsProcessingParameterDefinition]:
        """WINDOW, DEVICE and the encoder's *Advanced* options (those Embed takes; all advanced)."""
        return [number_parameter("window"), enum_parameter("device"),
                *(number_parameter(option.name) for option in builder.ADVANCED_OPTIONS
                  if "embed" in option.actions)]

    def add_parameters(self, *parameters: QgsProcessingParameterDefinition, advanced: bool = False) -> None:
        """``parameters`` in this order (under *Advanced* where ``advanced``)."""
        for parameter in parameters:
            self.addParameter(as_advanced(parameter, advanced))

    # -- running -------------------------------------------------------------------------------
    def action_options(self, parameters: dict, context: QgsProcessingContext,
                       feedback: QgsProcessingFeedback, out: Path) -> dict:
        return {}

    def build_request(self, parameters: dict, context: QgsProcessingContext,
                      feedback: QgsProcessingFeedback) -> JobRequest:
        """The request of a run with ``parameters``; a choice the builder refuses is a Processing error."""
        try:
            return self.request(parameters, context, feedback)
        except ValueError as exc:
            raise QgsProcessingException(str(exc)) from None

    def request(self, parameters: dict, context: QgsProcessingContext,
                feedback: QgsProcessingFeedback) -> JobRequest:
        """The request of a run with ``parameters`` (the dock's builder, the dock's export logic)."""
        out = self._output_path(parameters, context, self.OUTPUT)
        choices = self.run_choices(parameters, context)
        export = partial(self._export, feedback=feedback)
        embeddings = (self.parameterAsRasterLayer(parameters, self.EMBEDDINGS, context)
                      if self.parameterDefinition(self.EMBEDDINGS) else None)
        optical = self.parameterAsRasterLayer(parameters, self.OPTICAL, context)
        if optical is None and embeddings is None:
            raise QgsProcessingException(_tr("Choose an optical layer (or existing embeddings)."))
        files, optical_bands, sar_bands = builder.InputFiles(), None, None
        if optical is not None:
            sar = self.parameterAsRasterLayer(parameters, self.SAR, context)
            area = None
            if parameters.get(self.EXTENT):
                extent = self.parameterAsExtent(parameters, self.EXTENT, context, optical.crs())
                area = layer_rectangle(extent, optical.crs(), optical)
            files = layer_files(optical, sar, area, export)
            sensor_read = resolve_sensor(layer_facts(optical), choices.sensor)[0]
            bands = model_bands(choices.model, sensor_read, sar is not None)
            optical_text = self.parameterAsString(parameters, self.OPTICAL_BANDS, context)
            optical_bands = layer_optical_bands(optical, bands.get("optical", []), choices.sensor,
                                                builder.parse_band_text(optical_text))
            sar_text = self.parameterAsString(parameters, self.SAR_BANDS, context)
            sar_bands = layer_sar_bands(sar, bands.get("sar", []), builder.parse_band_text(sar_text))
        if embeddings is not None:
            files.embeddings = field_file(embeddings, export)
        return builder.build_request(self.ACTION, out, files, choices, optical_bands, sar_bands,
                                     **self.action_options(parameters, context, feedback, out))

    def run_choices(self, parameters: dict, context: QgsProcessingContext) -> builder.RunChoices:
        """Model, tiling, device, units, sensor and the *Advanced* options given (absent: the defaults)."""
        advanced = {option.name: self.parameterAsInt(parameters, option.parameter, context)
                    for option in builder.ADVANCED_OPTIONS if self._given(parameters, option.parameter)}
        return builder.RunChoices(
            model=chosen_model(self, parameters, context),
            window=self.parameterAsInt(parameters, self.WINDOW, context),
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            cache_dir=Settings().cache_dir or None,
            optical_units=self._choice(parameters, self.OPTICAL_UNITS, OPTICAL_UNITS, context),
            sar_units=self._choice(parameters, self.SAR_UNITS, SAR_UNITS, context),
            sensor=self._choice(parameters, self.SENSOR, SENSOR_NAMES, context),
            advanced={**advanced, **self.field_choices(parameters, context)})

    def field_choices(self, parameters: dict, context: QgsProcessingContext) -> dict[str, str]:
        """NORMALISE and DISTANCE as ``RunChoices.advanced`` entries (absent ones: the defaults)."""
        return {name: self._choice(parameters, name.upper(), tuple(choices), context)
                for name, choices in builder.FIELD_CHOICES.items() if self._given(parameters, name.upper())}

    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        parameters = absolute_paths(self, parameters)
        request = self.build_request(parameters, context, feedback)
        feedback.pushCommandInfo("python -m backend " + " ".join(request.to_argv()))
        warnings: list[str] = []

        def on_event(event: dict) -> None:
            kind = event.get("event")
            if kind == "progress":
                feedback.setProgress(100.0 * float(event.get("fraction", 0.0)))
                if event.get("message"):
                    feedback.setProgressText(str(event["message"]))
            elif (message := warning_text(event)) is not None:
                if message not in warnings:
                    warnings.append(message)
                    feedback.pushWarning(message)
            elif kind == "log":
                feedback.pushInfo(str(event.get("message", "")))

        try:
            result = run_backend(request.to_argv(), on_event=on_event, is_canceled=feedback.isCanceled)
        except BackendCancelled:
            raise QgsProcessingException("Cancelled; no output was written.") from None
        except BackendError as exc:
            feedback.reportError(exc.details(), fatalError=True)
            raise QgsProcessingException(exc.message) from None
        except BackendNotFound as exc:
            raise QgsProcessingException(str(exc)) from None
        return self._collect(result.outputs, result.stats, parameters, context)

    def _collect(self, outputs: dict, stats: dict, parameters: dict, context: QgsProcessingContext) -> dict:
        class_names = {int(k): str(v) for k, v in (stats.get("classes") or {}).items()} or None
        results: dict[str, Any] = {}
        for name, (key, kind) in self.OUTPUTS.items():
            path = outputs.get(key)
            results[name] = path
            if not path or kind == "file":
                continue
            qml = outputs.get(STYLE_KEYS.get(key, "style"))
            qml = qml if qml and str(qml).endswith(".qml") and key != "preview" else None
            if context.willLoadLayerOnCompletion(path):
                context.layerToLoadOnCompletionDetails(path).setPostProcessor(StylePostProcessor.create(
                    kind, qml, class_names if kind == "classes" else None))
        return {**results, **{key.upper(): stats[key] for key in ("lopo_accuracy", "blocked_cv_accuracy")
                              if key in stats}}

    def _choice(self, parameters: dict, name: str, choices: tuple[str, ...],
                context: QgsProcessingContext) -> str:
        """An enum parameter's value (``auto`` when absent, as in models saved before it existed, or out of
        range)."""
        index = self.parameterAsEnum(parameters, name, context) if self._given(parameters, name) else -1
        return choices[index] if 0 <= index < len(choices) else AUTO

    def _given(self, parameters: dict, name: str) -> bool:
        """Whether this algorithm has parameter ``name`` and ``parameters`` set it."""
        return self.parameterDefinition(name) is not None and parameters.get(name) is not None

    def _output_path(self, parameters: dict, context: QgsProcessingContext, name: str,
                     temporary: str = "") -> Path:
        """Output ``name``'s path with the extension of ``temporary``, the file written where none is given
        (in a new temporary folder; default ``<name>.tif``)."""
        temporary = temporary or f"{name.lower()}.tif"
        path = Path(self.parameterAsOutputLayer(parameters, name, context)
                    or Path(tempfile.mkdtemp(prefix="terraprobe-")) / temporary)
        suffixes = (".tif", ".tiff") if temporary.endswith(".tif") else (Path(temporary).suffix,)
        return path if path.suffix.lower() in suffixes else path.with_suffix(suffixes[0])

    def companion_output(self, parameters: dict, context: QgsProcessingContext, name: str) -> str | None:
        """An optional second output's path; ``None`` (not given): the backend names it after OUTPUT.

        Optional so that ``qgis_process`` on QGIS 3.22, which insists on every mandatory output, runs
        with OUTPUT alone.
        """
        if not parameters.get(name):
            return None
        return str(self._output_path(parameters, context, name))

    @staticmethod
    def _export(layer: QgsRasterLayer, extent, feedback: QgsProcessingFeedback) -> str:
        """A non-file layer written now to a temporary GeoTIFF of ``extent`` (the dock defers the same)."""
        feedback.pushInfo(_tr("Writing '{layer}' to a temporary GeoTIFF (not a plain raster file)")
                          .format(layer=layer.name()))
        target = Path(tempfile.mkdtemp(prefix="terraprobe-input-")) / "input.tif"
        return RasterExport(layer, extent, target).write(feedback.isCanceled)

    def _samples_path(self, parameters: dict, name: str, context, feedback) -> str:
        return self.parameterAsCompatibleSourceLayerPath(parameters, name, context,
                                                         ["gpkg", "shp", "geojson"], "gpkg", feedback)


class EmbedAlgorithm(TerraprobeAlgorithm):
    ACTION = "embed"
    TITLE = QT_TRANSLATE_NOOP("TerraprobeAlgorithm", "Embed (encoder features + RGB preview)")
    HELP = QT_TRANSLATE_NOOP("TerraprobeAlgorithm",
                             "Runs the encoder over the layer and writes one embedding per 8×8 patch (a "
                             "multi-band GeoTIFF, float16) plus an RGB preview of its first three principal "
                             "components.")
    PREVIEW = "PREVIEW"
    OUTPUTS: ClassVar[dict[str, tuple[str, str]]] = {
        "OUTPUT": ("embeddings", "embeddings"), "PREVIEW": ("preview", "rgb")}

    def initAlgorithm(self, config=None) -> None:
        self.add_input_parameters()
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Embeddings"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.PREVIEW, _tr("Embedding preview (PCA RGB; empty: <output>_pca.tif)"), optional=True))

    def action_options(self, parameters, context, feedback, out) -> dict:
        return {"preview_out": self.companion_output(parameters, context, self.PREVIEW)}


class ClusterAlgorithm(TerraprobeAlgorithm):
    ACTION = "cluster"
    TITLE = QT_TRANSLATE_NOOP("TerraprobeAlgorithm", "Cluster (k-means or HDBSCAN on embeddings)")
    HELP = QT_TRANSLATE_NOOP("TerraprobeAlgorithm",
                             "Groups the patches' embeddings into k clusters with k-means, or into density "
                             "clusters with HDBSCAN (no k; a noise class); writes a paletted class map.")
    K = "K"
    SEED = "SEED"
    OUTPUTS: ClassVar[dict[str, tuple[str, str]]] = {"OUTPUT": ("clusters", "classes")}
    METHOD = "METHOD"
    MIN_CLUSTER_SIZE = "MIN_CLUSTER_SIZE"

    def initAlgorithm(self, config=None) -> None:
        self.add_input_parameters(field=True)
        self.addParameter(enum_parameter("method", advanced=False))
        self.addParameter(number_parameter("k", advanced=False))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_CLUSTER_SIZE, _tr("HDBSCAN: smallest cluster in sampled patches (0: auto)"),
            QgsProcessingParameterNumber.Integer, 0, True, 0, 100_000))
        self.addParameter(number_parameter("seed"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Clusters"))

    def action_options(self, parameters, context, feedback, out) -> dict:
        seed = self.parameterAsInt(parameters, self.SEED, context)
        method = self._choice(parameters, self.METHOD, builder.CLUSTER_METHODS, context)
        if method == "hdbscan":  # absent (models saved before it existed): k-means
            size = self.parameterAsInt(parameters, self.MIN_CLUSTER_SIZE, context)
            return {"method": method, "min_cluster_size": size or None, "seed": seed}
        return {"k": self.parameterAsInt(parameters, self.K, context), "seed": seed}


class _SamplesAlgorithm(TerraprobeAlgorithm):
    SAMPLES = "SAMPLES"
    CLASS_FIELD = "CLASS_FIELD"

    def add_samples_parameters(self, optional: bool = False) -> None:
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.SAMPLES, "Sample polygons", [QgsProcessing.TypeVectorPolygon], optional=optional))
        self.addParameter(QgsProcessingParameterField(
            self.CLASS_FIELD, "Class field", "class", self.SAMPLES, optional=optional))

    def samples_options(self, parameters, context, feedback) -> dict:
        return {"samples": self._samples_path(parameters, self.SAMPLES, context, feedback),
                "class_field": self.parameterAsString(parameters, self.CLASS_FIELD, context) or "class"}


class ClassifyAlgorithm(_SamplesAlgorithm):
    ACTION = "classify"
    TITLE = QT_TRANSLATE_NOOP("TerraprobeAlgorithm",
                             "Classify (kNN, random forest or gradient boosting from sample polygons)")
    HELP = QT_TRANSLATE_NOOP("TerraprobeAlgorithm",
                             "Labels every patch from sample polygons: a kNN vote in embedding space, or a "
                             "random forest / gradient boosting (optionally with per-patch band "
                             "statistics); writes a class map named after the class field's values, a "
                             "confidence map and optionally class probabilities. Reports the "
                             "leave-one-polygon-out and the spatially blocked accuracy: trust the blocked "
                             "one.")
    CONFIDENCE = "CONFIDENCE"
    CLASSIFIER = "CLASSIFIER"
    BAND_STATS = "BAND_STATS"
    PROBABILITIES = "PROBABILITIES"
    OUTPUTS: ClassVar[dict[str, tuple[str, str]]] = {
        "OUTPUT": ("labels", "classes"), "CONFIDENCE": ("confidence", "continuous"),
        "PROBABILITIES": ("probabilities", "file")}

    def initAlgorithm(self, config=None) -> None:
        self.add_input_parameters(field=True)
        self.add_samples_parameters()
        self.addParameter(enum_parameter("classifier", advanced=False))
        self.addParameter(QgsProcessingParameterBoolean(
            self.BAND_STATS, _tr("Add per-patch band statistics (needs the optical layer)"), False))
        self.addParameter(number_parameter("neighbors", advanced=False))
        add_field_parameters(self)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Class map"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.CONFIDENCE, _tr("Confidence (empty: <class map>_confidence.tif)"), optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.PROBABILITIES, _tr("Class probabilities (one band per class)"), optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber("LOPO_ACCURACY", "Leave-one-polygon-out accuracy"))
        self.addOutput(QgsProcessingOutputNumber("BLOCKED_CV_ACCURACY",
                                                 _tr("Spatially blocked accuracy (the one to trust)")))

    def action_options(self, parameters, context, feedback, out) -> dict:
        options = self.samples_options(parameters, context, feedback)
        options["confidence_out"] = self.companion_output(parameters, context, self.CONFIDENCE)
        classifier = self._choice(parameters, self.CLASSIFIER, builder.CLASSIFIERS, context)
        options["classifier"] = classifier if classifier != AUTO else None  # absent: the backend's default
        options["band_stats"] = self.parameterAsBool(parameters, self.BAND_STATS, context) or None
        if probabilities := parameters.get(self.PROBABILITIES) and \
                self.parameterAsOutputLayer(parameters, self.PROBABILITIES, context):
            options["probabilities_out"] = str(Path(probabilities).with_suffix(".tif"))
        return options


class SegmentAlgorithm(_SamplesAlgorithm):
    ACTION = "segment"
    TITLE = QT_TRANSLATE_NOOP("TerraprobeAlgorithm", "Segment (train a head on samples and apply it)")
    HELP = QT_TRANSLATE_NOOP("TerraprobeAlgorithm",
                             "Trains a small segmentation head on frozen embeddings from sample polygons "
                             "(or a label raster), or applies an existing head, and writes a class map.")
    LABEL_RASTER = "LABEL_RASTER"
    HEAD = "HEAD"
    HEAD_OUT = "HEAD_OUT"
    OUTPUTS: ClassVar[dict[str, tuple[str, str]]] = {
        "OUTPUT": ("segmentation", "classes"), "HEAD_OUT": ("head", "file")}

    def initAlgorithm(self, config=None) -> None:
        self.add_input_parameters(field=True)
        self.add_samples_parameters(optional=True)
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.LABEL_RASTER, "Label raster (instead of samples)", optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.HEAD, "Existing head (skip training)", optional=True, fileFilter="Heads (*.safetensors)"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Segmentation"))
        self.addParameter(QgsProcessingParameterFileDestination(self.HEAD_OUT, "Trained head",
                                                                "Heads (*.safetensors)", optional=True))
        self.addParameter(number_parameter("steps"))

    def action_options(self, parameters, context, feedback, out) -> dict:
        label = self.parameterAsRasterLayer(parameters, self.LABEL_RASTER, context)
        options: dict = {}
        if label is not None:
            options["label_raster"] = plain_file_path(label) or label.source()
        elif parameters.get(self.SAMPLES):
            options.update(self.samples_options(parameters, context, feedback))
        else:
            raise QgsProcessingException("Give sample polygons (with a class field) or a label raster.")
        if head := self.parameterAsFile(parameters, self.HEAD, context):
            return {**options, "head": head}
        head_out = self.parameterAsFileOutput(parameters, self.HEAD_OUT, context)
        return {**options, "head_out": head_out} if head_out else options


class SimilarAlgorithm(_SamplesAlgorithm):
    ACTION = "similar"
    TITLE = QT_TRANSLATE_NOOP("TerraprobeAlgorithm", "Similarity (to a point or polygons)")
    HELP = QT_TRANSLATE_NOOP("TerraprobeAlgorithm",
                             "Cosine similarity of every patch's embedding to the patch at a point (or "
                             "inside polygons).")
    POINT = "POINT"
    OUTPUTS: ClassVar[dict[str, tuple[str, str]]] = {"OUTPUT": ("similarity", "continuous")}

    def initAlgorithm(self, config=None) -> None:
        self.add_input_parameters(field=True)
        self.addParameter(QgsProcessingParameterPoint(self.POINT, "Query point", optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.SAMPLES, "Query polygons (instead of a point)", [QgsProcessing.TypeVectorPolygon],
            optional=True))
        add_field_parameters(self)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Similarity"))

    def action_options(self, parameters, context, feedback, out) -> dict:
        if parameters.get(self.POINT):
            point = self.parameterAsPoint(parameters, self.POINT, context)
            crs = self.parameterAsPointCrs(parameters, self.POINT, context)
            return {"point": (point.x(), point.y()), "point_crs": crs.authid() or None}
        if parameters.get(self.SAMPLES):
            return {"samples": self._samples_path(parameters, self.SAMPLES, context, feedback)}
        raise QgsProcessingException("Give a query point or query polygons.")


def all_algorithms() -> list[TerraprobeAlgorithm]:
    from .change_algorithms import ChangeAlgorithm, VectoriseAlgorithm

    return [EmbedAlgorithm(), ClusterAlgorithm(), ClassifyAlgorithm(), SegmentAlgorithm(), SimilarAlgorithm(),
            ChangeAlgorithm(), VectoriseAlgorithm()]
