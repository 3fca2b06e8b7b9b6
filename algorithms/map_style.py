"""How the algorithms' own maps (the report images and the packets) show labels and rep homes: labels in
``layers.style.haloed_text`` (a white halo reads over any territory colour), and homes as dark stars."""

from __future__ import annotations

from qgis.core import (
    QgsPalLayerSettings,
    QgsSimpleMarkerSymbolLayerBase,
    QgsSymbol,
    QgsTextFormat,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt.QtGui import QColor


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
