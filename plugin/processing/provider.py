"""The "Terraprobe" Processing provider (id ``terraprobe``)."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

ICON_PATH = Path(__file__).resolve().parents[2] / "resources" / "icons" / "terraprobe.svg"


class TerraprobeProvider(QgsProcessingProvider):
    """Holds the Terraprobe algorithms (embed, cluster, classify, segment, similar)."""

    def id(self) -> str:
        return "terraprobe"

    def name(self) -> str:
        return "Terraprobe"

    def longName(self) -> str:
        return "Terraprobe: remote-sensing foundation models"

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))

    def loadAlgorithms(self) -> None:
        from .algorithms import all_algorithms

        for algorithm in all_algorithms():
            self.addAlgorithm(algorithm)
