"""Small builders the dock's panels and dialogs share: sections, rows of widgets, choice combos."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from qgis.core import QgsMapLayerProxyModel
from qgis.gui import QgsCollapsibleGroupBox, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QSpinBox, QWidget

from ..requests_builder import DEFAULTS, OFFERED


def section(box: QgsCollapsibleGroupBox, title: str, name: str,
            collapsed: bool = False) -> QgsCollapsibleGroupBox:
    """Title and object name of one of the dock's sections; its collapsed state is never saved."""
    box.setTitle(title)
    box.setObjectName(name)
    box.setSaveCollapsedState(False)
    box.setCollapsed(collapsed)
    return box


def side_by_side(*items: QWidget | tuple[QWidget, int]) -> QHBoxLayout:
    """Widgets side by side; an item ``(widget, stretch)`` gives that widget a share of the spare width."""
    layout = QHBoxLayout()
    for item in items:
        widget, stretch = item if isinstance(item, tuple) else (item, 0)
        layout.addWidget(widget, stretch)
    return layout


def optional_raster_combo(tooltip: str) -> QgsMapLayerComboBox:
    """A raster layer choice that starts empty and may stay so."""
    combo = QgsMapLayerComboBox(filters=QgsMapLayerProxyModel.RasterLayer, allowEmptyLayer=True,
                                toolTip=tooltip)
    combo.setLayer(None)
    return combo


def file_widget(mode: QgsFileWidget.StorageMode, path: str, tooltip: str = "",
                placeholder: str = "") -> QgsFileWidget:
    """A file or folder chooser (``mode``) showing ``path``; ``placeholder`` stands in for an empty one."""
    widget = QgsFileWidget(storageMode=mode, toolTip=tooltip)
    widget.setFilePath(path)
    widget.lineEdit().setPlaceholderText(placeholder)
    return widget


def run_button(text: str, tooltip: str, checkable: bool = False) -> QPushButton:
    """A button that starts a run; the dock adds why it is disabled to its ``base_tooltip``."""
    button = QPushButton(text, toolTip=tooltip, checkable=checkable)
    button.setProperty("base_tooltip", tooltip)
    return button


def choice_combo(choices: Iterable[tuple[object, str]], tooltip: str = "",
                 translate: Callable[[str], str] = str, current: object = None) -> QComboBox:
    """A combo of ``(key, label)`` choices (labels through ``translate``); ``current`` selected if offered."""
    combo = QComboBox(toolTip=tooltip)
    for key, label in choices:
        combo.addItem(translate(label), key)
    index = combo.findData(current) if current is not None else -1
    if index >= 0:
        combo.setCurrentIndex(index)
    return combo


def offered_spin(name: str, value: int | None = None, **properties: Any) -> QSpinBox:
    """A spin box with the range and step the contract offers for option ``name``, showing ``value``
    (``None``: the plugin's declared first value, else the backend's default)."""
    offered = OFFERED[name][0].plugin
    first = value if value is not None else offered.default if offered.default is not None else DEFAULTS[name]
    return QSpinBox(minimum=offered.minimum, maximum=offered.maximum, singleStep=offered.step, value=first,
                    **properties)
