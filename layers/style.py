"""Territory styling: one distinct colour per territory, unassigned units shown clearly."""

from __future__ import annotations

import colorsys

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsRendererCategory,
    QgsSymbol,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QColor

GOLDEN = 0.6180339887498949


def territory_colour(index: int) -> QColor:
    """A colour for the index-th territory: hues spread by the golden ratio, with lightness and
    saturation cycling so that even 200 territories stay apart."""
    hue = (0.08 + index * GOLDEN) % 1.0
    saturation = (0.55, 0.75, 0.45)[index % 3]
    value = (0.90, 0.75, 0.98, 0.82)[(index // 3) % 4]
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return QColor(int(r * 255), int(g * 255), int(b * 255))


def territory_renderer(layer: QgsVectorLayer, field: str, values: list | None = None) -> QgsCategorizedSymbolRenderer:
    """A categorised renderer on ``field``: one category per territory value, plus an
    "Unassigned" category (NULL or empty) drawn hatched in grey."""
    if values is None:
        index = layer.fields().lookupField(field)
        values = sorted((v for v in layer.uniqueValues(index) if v not in (None, "") and not _is_null(v)), key=str)
    geometry_type = layer.geometryType()
    categories = []
    for k, value in enumerate(values):
        symbol = QgsSymbol.defaultSymbol(geometry_type)
        symbol.setColor(territory_colour(k))
        if geometry_type == QgsWkbTypes.PolygonGeometry:
            symbol.symbolLayer(0).setStrokeColor(QColor(60, 60, 60))
            symbol.symbolLayer(0).setStrokeWidth(0.1)
        categories.append(QgsRendererCategory(value, symbol, str(value)))
    unassigned = QgsSymbol.defaultSymbol(geometry_type)
    unassigned.setColor(QColor(200, 200, 200))
    if geometry_type == QgsWkbTypes.PolygonGeometry:
        unassigned.symbolLayer(0).setBrushStyle(_hatch())
        unassigned.symbolLayer(0).setStrokeColor(QColor(120, 120, 120))
    label = QCoreApplication.translate("TerritoryStyle", "Unassigned")
    categories.append(QgsRendererCategory(None, unassigned, label))
    return QgsCategorizedSymbolRenderer(field, categories)


#: layer property naming the field of the territory style this plugin gave the layer
STYLED_PROPERTY = "territory_planner/styled_field"


def has_own_style(layer: QgsVectorLayer, field: str) -> bool:
    """True when ``layer`` is drawn with a style someone made (anything but QGIS's default single
    symbol or a territory style on ``field``): replacing it needs the user's consent."""
    renderer = layer.renderer()
    if renderer is None or renderer.type() == "singleSymbol":
        return False
    if renderer.type() == "categorizedSymbol":
        ours = layer.customProperty(STYLED_PROPERTY, "")
        if renderer.classAttribute() in (field, ours):
            return False
    return True


def apply_territory_style(layer: QgsVectorLayer, field: str, values: list | None = None) -> None:
    layer.setRenderer(territory_renderer(layer, field, values))
    layer.setCustomProperty(STYLED_PROPERTY, field)
    layer.triggerRepaint()


def _is_null(value) -> bool:
    return hasattr(value, "isNull") and value.isNull()


def _hatch():
    from qgis.PyQt.QtCore import Qt

    return Qt.BrushStyle.BDiagPattern
