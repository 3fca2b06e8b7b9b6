"""How the algorithms' own maps (the report images and the packets) draw text and rep homes: labels
with a white halo, so they read over any territory colour, and homes as dark stars."""

from __future__ import annotations

from qgis.core import (
    QgsPalLayerSettings,
    QgsSimpleMarkerSymbolLayerBase,
    QgsSymbol,
    QgsTextBufferSettings,
    QgsTextFormat,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt.QtGui import QColor, QFont


def haloed_text(size: float, halo: float, colour: QColor | None = None, font: QFont | None = None) -> QgsTextFormat:
    """Text of ``size`` points with a white halo ``halo`` mm wide (QGIS's default colour and font
    unless given)."""
    text = QgsTextFormat()
    if font is not None:
        text.setFont(font)
    text.setSize(size)
    if colour is not None:
        text.setColor(colour)
    buffer = QgsTextBufferSettings()
    buffer.setEnabled(True)
    buffer.setSize(halo)
    buffer.setColor(QColor(255, 255, 255))
    text.setBuffer(buffer)
    return text


def show_labels(layer, settings: QgsPalLayerSettings, text: QgsTextFormat) -> None:
    """Label ``layer`` with ``settings`` in ``text``."""
    settings.setFormat(text)
    layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
    layer.setLabelsEnabled(True)


def star_symbol(layer, size: float):
    """A dark star of ``size`` mm, for rep homes."""
    star = QgsSymbol.defaultSymbol(layer.geometryType())
    star.setColor(QColor(20, 20, 20))
    star.setSize(size)
    star.symbolLayer(0).setShape(QgsSimpleMarkerSymbolLayerBase.Shape.Star)
    return star
