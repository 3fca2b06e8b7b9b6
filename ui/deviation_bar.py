"""How the territory list draws a deviation: a bar from the cell's centre, green inside the
tolerance, red outside it."""

from __future__ import annotations

from qgis.PyQt.QtCore import QRectF
from qgis.PyQt.QtGui import QBrush, QColor
from qgis.PyQt.QtWidgets import QStyledItemDelegate

from .territory_list_model import DEVIATION_ROLE, OUT_OF_TOLERANCE_ROLE, TOLERANCE_ROLE


class DeviationBarDelegate(QStyledItemDelegate):
    """Draws a deviation as a bar from the cell's centre: green inside the tolerance, red outside.
    The full half-width of the cell stands for twice the tolerance."""

    def paint(self, painter, option, index):
        deviation = index.data(DEVIATION_ROLE)
        if deviation is None:
            return super().paint(painter, option, index)
        tolerance = index.data(TOLERANCE_ROLE) or 0.05
        outside = bool(index.data(OUT_OF_TOLERANCE_ROLE))
        rect = option.rect.adjusted(2, 3, -2, -3)
        centre = rect.center().x()
        share = max(-1.0, min(1.0, float(deviation) / (2.0 * max(tolerance, 1e-6))))
        width = share * rect.width() / 2.0
        painter.save()
        colour = QColor(214, 60, 50, 170) if outside else QColor(70, 160, 80, 150)
        bar = QRectF(min(centre, centre + width), rect.top(), abs(width), rect.height())
        painter.fillRect(bar, QBrush(colour))
        painter.setPen(QColor(120, 120, 120))
        painter.drawLine(centre, rect.top(), centre, rect.bottom())
        painter.restore()
        super().paint(painter, option, index)
