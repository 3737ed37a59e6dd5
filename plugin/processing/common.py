"""Pieces every Terraprobe algorithm shares: declared parameters, enum labels, the style post-processor."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TypeVar

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..contract import UNIT_HELP
from ..layers import style_layer, style_vector_layer
from ..requests_builder import DEFAULTS, OFFERED, choice_labels

_POST_PROCESSORS: list[StylePostProcessor] = []
Parameter = TypeVar("Parameter", bound=QgsProcessingParameterDefinition)


def _tr(text: str) -> str:
    return QCoreApplication.translate("TerraprobeAlgorithm", text)


def _unit_options(choices: tuple[str, ...]) -> list[str]:
    """Enum labels: the ``--*-units`` value and its one-line help."""
    return [f"{name} — {_tr(UNIT_HELP[name])}" if name in UNIT_HELP else name for name in choices]


def number_parameter(name: str, advanced: bool = True) -> QgsProcessingParameterNumber:
    """The Processing parameter of an offered integer option: label, range and default as declared."""
    field = OFFERED[name][0].plugin
    default = DEFAULTS[name] if field.default is None else field.default
    parameter = QgsProcessingParameterNumber(name.upper(), _tr(field.label),
                                             QgsProcessingParameterNumber.Integer, default, False,
                                             field.minimum, field.maximum)
    parameter.setHelp(_tr(field.help))
    return as_advanced(parameter, advanced)


def enum_parameter(name: str, label: str = "", advanced: bool = True) -> QgsProcessingParameterEnum:
    """The Processing enum of an offered option with choices: declared label (or ``label``), its choice
    labels (else the choices), the first choice by default."""
    option = OFFERED[name][0]
    options = [_tr(text) for text in choice_labels(name).values()] or list(option.choices)
    return as_advanced(QgsProcessingParameterEnum(name.upper(), _tr(label or option.plugin.label), options,
                                                 defaultValue=0), advanced)


def as_advanced(parameter: Parameter, advanced: bool = True) -> Parameter:
    """``parameter``, under *Advanced* where ``advanced``."""
    if advanced:
        parameter.setFlags(parameter.flags() | parameter.FlagAdvanced)
    return parameter


#: Processing's labels of :data:`plugin.requests_builder.FIELD_CHOICES` (the dock's *Advanced* combos).
FIELD_LABELS = {"normalise": "Vectors: auto, L2 (unit length) or as they are",
                "distance": "Distance: cosine or euclidean"}


def add_field_parameters(algorithm: QgsProcessingAlgorithm) -> None:
    """NORMALISE and DISTANCE (advanced enums; default: the backend's, auto and cosine)."""
    for name, label in FIELD_LABELS.items():
        algorithm.addParameter(enum_parameter(name, label))


#: ``memory:``, ``ogr:dbname=…``, ``postgres://…``: not a file path (a one-letter scheme is a drive).
_PROVIDER_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def absolute_paths(algorithm: QgsProcessingAlgorithm, parameters: dict) -> dict:
    """``parameters`` with relative file paths made absolute against the current folder.

    ``qgis_process`` passes paths as typed in the shell's folder, but the backend runs in the plugin
    folder: an input file that exists, and every output path, is resolved here.
    """
    resolved = dict(parameters)
    for definition in algorithm.parameterDefinitions():
        value = resolved.get(definition.name())
        if not isinstance(value, str) or not value or os.path.isabs(value) or value == "TEMPORARY_OUTPUT" \
                or _PROVIDER_URI.match(value):
            continue
        if definition.isDestination() or Path(value).exists():
            resolved[definition.name()] = os.path.abspath(value)
    return resolved


class StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies a result's QML (or the fallback style) when Processing loads the output layer."""

    def __init__(self, kind: str, qml: str | None, class_names: dict[int, str] | None) -> None:
        super().__init__()
        self.kind = kind
        self.qml = qml
        self.class_names = class_names

    def postProcessLayer(self, layer, context, feedback) -> None:
        if isinstance(layer, QgsRasterLayer):
            style_layer(layer, self.kind, self.qml, self.class_names)
        elif isinstance(layer, QgsVectorLayer):
            style_vector_layer(layer, self.qml)

    @staticmethod
    def create(kind: str, qml: str | None, class_names: dict[int, str] | None) -> StylePostProcessor:
        # Processing does not own the post-processor: keep it alive for the session.
        processor = StylePostProcessor(kind, qml, class_names)
        _POST_PROCESSORS.append(processor)
        del _POST_PROCESSORS[:-50]
        return processor
