"""The dock's scroll area: the wheel scrolls the dock, not the combo box under the mouse, and the dock
never scrolls by itself when a focused button is disabled (a run starts or ends)."""

from __future__ import annotations

from qgis.PyQt.QtCore import QCoreApplication, QEvent, QObject, Qt
from qgis.PyQt.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QScrollArea, QWidget

#: Widgets that change their value on the mouse wheel.
WHEEL_WIDGETS = (QComboBox, QAbstractSpinBox)


class DockScrollArea(QScrollArea):
    """A scroll area that follows the keyboard focus only when the analyst moves it (Tab), not when
    Qt hands the focus on because the focused widget was just disabled."""

    def focusNextPrevChild(self, forward: bool) -> bool:
        focused = QApplication.focusWidget()
        if focused is not None and not focused.isEnabled():
            return QWidget.focusNextPrevChild(self, forward)
        return super().focusNextPrevChild(forward)


class WheelGuard(QObject):
    """Sends wheel events of unfocused combo boxes and spin boxes to the scroll area instead.

    The guarded widgets take the focus by click or Tab only (``Qt.StrongFocus``), so a wheel turn while
    scrolling the dock never changes a choice (e.g. *Device* from auto to cuda); once the analyst clicks
    one, the wheel steps through its values as usual.
    """

    def __init__(self, scroll: QScrollArea) -> None:
        super().__init__(scroll)
        self.scroll = scroll

    def guard(self, root: QWidget) -> None:
        """Guard every combo and spin box under ``root`` (again after rows are rebuilt: idempotent)."""
        for widget in root.findChildren(QWidget):
            if isinstance(widget, WHEEL_WIDGETS) and not widget.property("terraprobe_wheel_guard"):
                widget.setFocusPolicy(Qt.StrongFocus)
                widget.installEventFilter(self)
                widget.setProperty("terraprobe_wheel_guard", True)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            QCoreApplication.sendEvent(self.scroll.verticalScrollBar(), event)
            return True
        return False
