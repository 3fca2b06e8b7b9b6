"""Maps to look at: territories coloured by how far they are over or under their target (a
diverging ramp centred on the target, the tolerance band neutral), and units coloured by their
untapped potential (a sequential ramp). The toolbox's outputs and the panel's views use these."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsGradientColorRamp,
    QgsGraduatedSymbolRenderer,
    QgsRendererCategory,
    QgsRendererRange,
    QgsSymbol,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QColor

from ..i18n import tr
from .values import is_null

#: under the target (blue) … on target (pale) … over the target (red): ColorBrewer RdBu, 7 classes
DIVERGING = ("#2166ac", "#67a9cf", "#d1e5f0", "#f7f7f7", "#fddbc7", "#ef8a62", "#b2182b")
#: little … much untapped potential: ColorBrewer YlOrRd, 5 classes
SEQUENTIAL = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
#: the named style a themed output keeps its territory colours under (Layers panel ▸ Styles)
TERRITORY_COLOURS_STYLE = "territory colours"


@dataclass(frozen=True)
class OverUnderScale:
    """Seven classes symmetric about ``centre``: the middle one is within ``band`` of it (the
    tolerance), three under and three over, out to ``reach`` from the centre."""

    centre: float
    band: float
    reach: float

    @classmethod
    def fit(cls, values: Sequence[float], centre: float, band: float) -> OverUnderScale:
        """A scale reaching the value farthest from ``centre`` (at least twice the band, so the
        classes stay apart when every territory is close)."""
        finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        farthest = max((abs(v - centre) for v in finite), default=0.0)
        band = max(float(band), 0.0)
        floor = 2.0 * band if band > 0 else max(abs(centre) * 0.1, 1.0)
        return cls(float(centre), band, _nice(max(farthest, floor)))

    def breaks(self) -> list[float]:
        """The eight class limits from the lowest to the highest."""
        c, b, r = self.centre, self.band, self.reach
        step = (r - b) / 3.0
        return [c - r, c - b - 2 * step, c - b - step, c - b, c + b, c + b + step, c + b + 2 * step, c + r]

    def colour_of(self, value: float | None) -> QColor:
        """The class colour of ``value`` (grey when it has none)."""
        if value is None or not math.isfinite(float(value)):
            return QColor(200, 200, 200)
        limits = self.breaks()
        position = int(np.searchsorted(limits[1:-1], float(value), side="left"))
        if limits[3] <= float(value) <= limits[4]:
            position = 3
        return QColor(DIVERGING[min(max(position, 0), 6)])

    def labels(self, unit: str = "", decimals: int = 0) -> list[str]:
        limits = self.breaks()

        def number(value: float) -> str:
            return f"{value:,.{decimals}f}{unit}"

        out = []
        for k in range(7):
            if k == 3:
                out.append(tr("within tolerance ({} – {})").format(number(limits[3]), number(limits[4])))
            else:
                out.append(f"{number(limits[k])} – {number(limits[k + 1])}")
        return out


def over_under_renderer(layer: QgsVectorLayer, field: str, scale: OverUnderScale, unit: str = "",
                        decimals: int = 0) -> QgsGraduatedSymbolRenderer:
    """A graduated renderer on ``field`` with the diverging ramp centred on the scale's target;
    the outer classes reach to the layer's smallest and largest values."""
    limits = scale.breaks()
    values = _values(layer, field)
    if values.size:
        limits[0] = min(limits[0], float(values.min()))
        limits[-1] = max(limits[-1], float(values.max()))
    labels = scale.labels(unit, decimals)
    ranges = []
    for k in range(7):
        symbol = _symbol(layer, QColor(DIVERGING[k]))
        ranges.append(QgsRendererRange(limits[k], limits[k + 1], symbol, labels[k]))
    renderer = QgsGraduatedSymbolRenderer(field, ranges)
    renderer.setSourceColorRamp(_ramp(DIVERGING))
    return renderer


def untapped_renderer(layer: QgsVectorLayer, field: str, classes: int = 5) -> QgsGraduatedSymbolRenderer:
    """A graduated renderer on ``field`` in quantile classes from pale (little) to dark red (much)."""
    values = _values(layer, field)
    if values.size == 0:
        values = np.array([0.0, 1.0])
    limits = np.unique(np.quantile(values, np.linspace(0, 1, classes + 1)))
    if limits.size < 2:
        limits = np.array([limits[0], limits[0] + 1.0])
    colours = _spread(SEQUENTIAL, limits.size - 1)
    ranges = []
    for k in range(limits.size - 1):
        label = f"{limits[k]:,.0f} – {limits[k + 1]:,.0f}"
        ranges.append(QgsRendererRange(float(limits[k]), float(limits[k + 1]), _symbol(layer, colours[k]), label))
    renderer = QgsGraduatedSymbolRenderer(field, ranges)
    renderer.setSourceColorRamp(_ramp(SEQUENTIAL))
    return renderer


def territory_theme_renderer(layer: QgsVectorLayer, field: str, territories: Sequence[tuple],
                             scale: OverUnderScale, unit: str = "") -> QgsCategorizedSymbolRenderer:
    """Units coloured by their territory's figure: one category per territory, ``territories``
    being (the field's value, the name shown, the figure or None), in the scale's colour of the
    figure (the panel's over/under and penetration views)."""
    categories = []
    for value, title, figure in territories:
        shown = "–" if figure is None or not math.isfinite(float(figure)) else f"{float(figure):,.1f}{unit}"
        categories.append(QgsRendererCategory(value, _symbol(layer, scale.colour_of(figure)), f"{title}: {shown}"))
    categories.append(QgsRendererCategory(None, _symbol(layer, QColor(200, 200, 200)), tr("Unassigned")))
    return QgsCategorizedSymbolRenderer(field, categories)


def keep_territory_colours_and_show(layer: QgsVectorLayer, renderer, style_name: str) -> None:
    """Make ``renderer`` the layer's current style, named ``style_name``, and keep the style it
    had (its territory colours) as the named style “territory colours” (Layers panel ▸ Styles)."""
    manager = layer.styleManager()
    current = manager.currentStyle()
    if current != TERRITORY_COLOURS_STYLE:
        manager.renameStyle(current, TERRITORY_COLOURS_STYLE)
    if style_name not in manager.styles():
        manager.addStyleFromLayer(style_name)
    manager.setCurrentStyle(style_name)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


# --- helpers ----------------------------------------------------------------------------------


def _values(layer: QgsVectorLayer, field: str) -> np.ndarray:
    index = layer.fields().lookupField(field)
    if index < 0:
        return np.zeros(0)
    values = []
    for feature in layer.getFeatures():
        value = feature.attribute(index)
        if not is_null(value):
            try:
                values.append(float(value))
            except (TypeError, ValueError):
                continue
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def _symbol(layer: QgsVectorLayer, colour: QColor) -> QgsSymbol:
    symbol = QgsSymbol.defaultSymbol(layer.geometryType())
    symbol.setColor(QColor(colour))
    if layer.geometryType() == QgsWkbTypes.GeometryType.PolygonGeometry:
        symbol.symbolLayer(0).setStrokeColor(QColor(60, 60, 60))
        symbol.symbolLayer(0).setStrokeWidth(0.3)
    return symbol


def _ramp(colours: Sequence[str]) -> QgsGradientColorRamp:
    from qgis.core import QgsGradientStop

    stops = [QgsGradientStop(k / (len(colours) - 1), QColor(c)) for k, c in enumerate(colours[1:-1], start=1)]
    return QgsGradientColorRamp(QColor(colours[0]), QColor(colours[-1]), False, stops)


def _spread(colours: Sequence[str], count: int) -> list[QColor]:
    """``count`` colours of the ramp, from its first to its last."""
    if count <= 1:
        return [QColor(colours[-1])]
    return [QColor(colours[round(k * (len(colours) - 1) / (count - 1))]) for k in range(count)]


def _nice(value: float) -> float:
    """``value`` rounded up to 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value - 1e-12 * power:
            return step * power
    return 10.0 * power
