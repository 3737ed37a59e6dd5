"""Map tools of the dock: draw the area rectangle, click a point for similarity search."""

from __future__ import annotations

from qgis.core import QgsPointXY, QgsRectangle, QgsWkbTypes
from qgis.gui import QgsMapCanvas, QgsMapTool, QgsMapToolEmitPoint, QgsRubberBand, QgsVertexMarker
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor

from ..i18n import tr


class RectangleTool(QgsMapTool):
    """Drag a rectangle on the canvas; emits it in the canvas CRS."""

    rectangle_drawn = pyqtSignal(QgsRectangle)

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self.band = QgsRubberBand(canvas, QgsWkbTypes.PolygonGeometry)
        self.band.setColor(QColor(255, 140, 0, 60))
        self.band.setStrokeColor(QColor(255, 140, 0))
        self.band.setWidth(2)
        self.start: QgsPointXY | None = None
        self.setCursor(Qt.CrossCursor)

    def canvasPressEvent(self, event) -> None:
        self.start = self.toMapCoordinates(event.pos())
        self.band.reset(QgsWkbTypes.PolygonGeometry)

    def canvasMoveEvent(self, event) -> None:
        if self.start is not None:
            self._show(QgsRectangle(self.start, self.toMapCoordinates(event.pos())))

    def canvasReleaseEvent(self, event) -> None:
        if self.start is None:
            return
        rect = QgsRectangle(self.start, self.toMapCoordinates(event.pos()))
        self.start = None
        if rect.width() > 0 and rect.height() > 0:
            self._show(rect)
            self.rectangle_drawn.emit(rect)

    def _show(self, rect: QgsRectangle) -> None:
        self.band.reset(QgsWkbTypes.PolygonGeometry)
        corners = ((rect.xMinimum(), rect.yMinimum()), (rect.xMaximum(), rect.yMinimum()),
                   (rect.xMaximum(), rect.yMaximum()), (rect.xMinimum(), rect.yMaximum()))
        for x, y in corners:
            self.band.addPoint(QgsPointXY(x, y), False)
        self.band.closePoints(True)

    def clear(self) -> None:
        self.band.reset(QgsWkbTypes.PolygonGeometry)

    def deactivate(self) -> None:
        super().deactivate()


class PointTool(QgsMapToolEmitPoint):
    """Click a point for similarity search; emits it in the canvas CRS."""

    point_clicked = pyqtSignal(QgsPointXY)

    def __init__(self, canvas) -> None:
        super().__init__(canvas)
        self.canvasClicked.connect(lambda point, _button: self.point_clicked.emit(point))


def place_marker(canvas: QgsMapCanvas, point: QgsPointXY, previous: QgsVertexMarker | None = None
                 ) -> QgsVertexMarker:
    """Mark ``point`` (canvas CRS) with a cross in a circle, replacing ``previous``."""
    remove_marker(canvas, previous)
    marker = QgsVertexMarker(canvas)
    marker.setCenter(point)
    marker.setIconType(QgsVertexMarker.ICON_CIRCLE)
    marker.setIconSize(16)
    marker.setPenWidth(3)
    marker.setColor(QColor(255, 0, 160))
    marker.setToolTip(tr("Similarity query point"))
    return marker


def remove_marker(canvas: QgsMapCanvas, marker: QgsVertexMarker | None) -> None:
    """Take ``marker`` off the canvas (no-op for ``None``)."""
    if marker is not None and marker.scene() is not None:
        canvas.scene().removeItem(marker)
