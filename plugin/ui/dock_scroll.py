"""The dock's scroll area and its compact layout: the wheel scrolls the dock, not the combo box under the
mouse; the dock never scrolls by itself when a focused button is disabled (a run starts or ends); long
choices and labels do not widen it (it fits beside the map on a 1280×800 screen)."""

from __future__ import annotations

from qgis.PyQt.QtCore import QCoreApplication, QEvent, QObject, QSize, Qt
from qgis.PyQt.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QFormLayout, QScrollArea, QWidget

#: Widgets that change their value on the mouse wheel.
WHEEL_WIDGETS = (QComboBox, QAbstractSpinBox)
#: The narrowest a combo or spin box gets in the dock (its full text shows in the open list / tooltip).
NARROWEST_CHOICE_PX = 72
#: The dock's width when it opens (if its content fits; 400 px leaves a 1280 px screen's map ~800 px).
OPENING_WIDTH_PX = 400
#: Characters a combo box shows before eliding.
COMBO_CHARACTERS = 6


def compact(root: QWidget) -> None:
    """Let long choices and labels not widen the dock: combo and spin boxes may shrink to
    :data:`NARROWEST_CHOICE_PX` (their text elides), and form labels go above their field when the dock
    is narrow."""
    for combo in root.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(COMBO_CHARACTERS)
    for widget in root.findChildren(QWidget):
        if isinstance(widget, WHEEL_WIDGETS):
            widget.setMinimumWidth(min(NARROWEST_CHOICE_PX, widget.minimumSizeHint().width()))
    for form in root.findChildren(QFormLayout):
        form.setRowWrapPolicy(QFormLayout.WrapLongRows)


class DockScrollArea(QScrollArea):
    """The dock's scroll area: at least as wide as its content, and following the keyboard focus only when
    the analyst moves it (Tab), not when Qt hands the focus on because the focused widget was disabled."""

    def minimumSizeHint(self) -> QSize:
        """As wide as the content's minimum plus a vertical scrollbar: never a horizontal scrollbar."""
        hint = super().minimumSizeHint()
        body = self.widget()
        if body is None:
            return hint
        scrollbar = self.style().pixelMetric(self.style().PM_ScrollBarExtent)
        return QSize(body.minimumSizeHint().width() + scrollbar + 2 * self.frameWidth() + 4, hint.height())

    def sizeHint(self) -> QSize:
        """Open at most :data:`OPENING_WIDTH_PX` wide (the content's minimum when wider): the map keeps the
        room; the analyst can widen the dock."""
        width = max(self.minimumSizeHint().width(), min(OPENING_WIDTH_PX, super().sizeHint().width()))
        return QSize(width, super().sizeHint().height())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.widget() and event.type() == QEvent.LayoutRequest:
            self.updateGeometry()  # a section opened or closed: the dock's minimum width follows
        return super().eventFilter(watched, event)

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
