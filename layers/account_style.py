"""Accounts drawn in their territory's colour, overrides ringed: the one account style of the
toolbox outputs and the panel.

The territory colours are the territory table's (``layers.style.territory_renderer`` makes the
categories); every symbol gets a dark ring that shows only where ``overridden`` (an expression)
is true, so an account kept by another territory than its unit's stands out on the map.
"""

from __future__ import annotations

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsProperty,
    QgsSimpleMarkerSymbolLayer,
    QgsSimpleMarkerSymbolLayerBase,
    QgsSymbolLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

from .style import STYLED_PROPERTY, territory_renderer

#: marker size of an account (mm) and of the ring around an override
ACCOUNT_SIZE = 1.8
RING_SIZE = 3.4


def account_renderer(layer: QgsVectorLayer, territory: str, overridden: str, values: list | None = None,
                     colours: dict | None = None, titles: dict | None = None) -> QgsCategorizedSymbolRenderer:
    """Categories on ``territory`` (a field or an expression giving the account's territory code),
    one per territory in its colour, a ring where the expression ``overridden`` holds."""
    renderer = territory_renderer(layer, territory, values, colours, titles=titles)
    for index, category in enumerate(renderer.categories()):
        symbol = category.symbol().clone()
        marker = symbol.symbolLayer(0)
        if isinstance(marker, QgsSimpleMarkerSymbolLayer):
            marker.setShape(QgsSimpleMarkerSymbolLayerBase.Shape.Circle)
            marker.setSize(ACCOUNT_SIZE)
            marker.setStrokeColor(QColor(60, 60, 60))
            marker.setStrokeWidth(0.15)
        ring = QgsSimpleMarkerSymbolLayer(QgsSimpleMarkerSymbolLayerBase.Shape.Circle, RING_SIZE)
        ring.setColor(QColor(0, 0, 0, 0))
        ring.setStrokeColor(QColor(20, 20, 20))
        ring.setStrokeWidth(0.5)
        ring.setDataDefinedProperty(QgsSymbolLayer.Property.PropertyLayerEnabled,
                                    QgsProperty.fromExpression(overridden))
        symbol.appendSymbolLayer(ring)
        renderer.updateCategorySymbol(index, symbol)
    return renderer


def apply_account_style(layer: QgsVectorLayer, territory: str, overridden: str, values: list | None = None,
                        colours: dict | None = None, titles: dict | None = None) -> None:
    layer.setRenderer(account_renderer(layer, territory, overridden, values, colours, titles))
    layer.setCustomProperty(STYLED_PROPERTY, territory)
    layer.triggerRepaint()
