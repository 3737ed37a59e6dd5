"""Translation helper for the plugin's plain modules (widgets use their own ``self.tr``)."""

from __future__ import annotations

from qgis.PyQt.QtCore import QCoreApplication

CONTEXT = "Terraprobe"


def tr(text: str, context: str = CONTEXT) -> str:
    """``text`` translated in ``context`` (unchanged until a translation is installed)."""
    return QCoreApplication.translate(context, text)
