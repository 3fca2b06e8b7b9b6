"""The map images of the HTML reports, drawn by QGIS from memory layers.

Statistics draws the alignment (units in their territory colours, territory outlines and names,
reps as stars), the territories over and under their target, and the untapped potential; Compare
alignments draws the units in their new territory's colour with the units that change outlined
in red. Layers in longitude/latitude are drawn in the units' local metric
projection, so shapes are not stretched.
"""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureRequest,
    QgsFields,
    QgsGeometry,
    QgsMemoryProviderUtils,
    QgsPalLayerSettings,
    QgsSymbol,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor

from ..compat import DOUBLE, STRING, make_field
from ..layers.reps import RepLayer
from ..layers.style import apply_territory_style, haloed_text
from ..layers.territory_table import TerritoryRow
from ..layers.thematic import OverUnderScale, over_under_renderer, untapped_renderer
from ..layers.units import Units
from . import report
from .map_style import show_labels, star_symbol

TERRITORY = "territory"


def alignment_map(source, units: Units, labels, names: list[str], geometries, outlines, reps: RepLayer | None,
                  context, rows: list[TerritoryRow]):
    """The alignment: units (``geometries``, the layer's CRS) in their territory colours, the
    territories' ``outlines`` with their names (polygon units), reps' homes as stars."""
    crs = source.sourceCrs()
    fields = _territory_fields()
    unit_layer = _memory_layer("units", fields, source.wkbType(), crs, [
        _feature(fields, geometry, [names[labels[i]] if labels[i] >= 0 else None])
        for i, geometry in enumerate(geometries)])
    apply_territory_style(unit_layer, TERRITORY, names, {row.code: row.colour for row in rows})
    layers = [unit_layer]
    if units.is_polygon:
        layers.insert(0, _named_outlines(outlines, rows, crs, QColor(30, 30, 30), 0.5, 9))
    homes = reps.with_home() if reps is not None else []
    if homes:
        rep_fields = QgsFields()
        rep_fields.append(make_field("rep", STRING))
        rep_layer = _memory_layer("reps", rep_fields, QgsWkbTypes.Type.Point, reps.crs, [
            _feature(rep_fields, QgsGeometry.fromPointXY(rep.point), [rep.name]) for rep in homes])
        rep_layer.renderer().setSymbol(star_symbol(rep_layer, 3.2))
        layers.insert(0, rep_layer)
    return _render(layers, source, units, context)


def changes_map(source, units: Units, after, changed, names: list[str], context, rows: list[TerritoryRow]):
    """The units in their new territory's colour (``after[i]``: a code or None); units that
    change territory (``changed[i]``) outlined in red."""
    crs = source.sourceCrs()
    fields = _territory_fields()
    everything, moved = [], []
    for feature in source.getFeatures(QgsFeatureRequest().setNoAttributes()):
        i = units.index_of_fid.get(feature.id())
        if i is None:
            continue
        out = _feature(fields, QgsGeometry(feature.geometry()), [after[i]])
        everything.append(out)
        if changed[i]:
            moved.append(out)
    layer = _memory_layer("units", fields, source.wkbType(), crs, everything)
    changes = _memory_layer("changes", fields, source.wkbType(), crs, moved)
    apply_territory_style(layer, TERRITORY, names, {row.code: row.colour for row in rows})
    if units.is_polygon:
        changes.renderer().setSymbol(_outline_symbol(changes, QColor(200, 0, 0), 0.7))
    else:
        symbol = QgsSymbol.defaultSymbol(changes.geometryType())
        symbol.setColor(QColor(200, 0, 0))
        changes.renderer().setSymbol(symbol)
    return _render([changes, layer], source, units, context)


def over_under_map(source, units: Units, outlines, rows: list[TerritoryRow], values, scale: OverUnderScale, context,
                   unit: str = "", decimals: int = 0):
    """The territories (``outlines``) coloured by ``values`` on the diverging ramp of ``scale``,
    centred on the target, with their names."""
    fields = _territory_fields()
    fields.append(make_field("value", DOUBLE))
    layer = _memory_layer("over/under", fields, QgsWkbTypes.Type.MultiPolygon if units.is_polygon
                          else QgsWkbTypes.Type.MultiPoint, source.sourceCrs(), [
        _feature(fields, geometry, [row.label, None if value is None else float(value)])
        for geometry, row, value in zip(outlines, rows, values) if not geometry.isNull()])
    layer.setRenderer(over_under_renderer(layer, "value", scale, unit, decimals))
    _label_territories(layer, 9)
    return with_legend(_render([layer], source, units, context), layer.renderer())


def untapped_map(source, units: Units, geometries, untapped, outlines, rows: list[TerritoryRow], top, context):
    """Every unit coloured by its untapped potential (quantiles), the territories outlined with
    their names, the ``top`` units outlined in black."""
    fields = QgsFields()
    fields.append(make_field("untapped", DOUBLE))
    layer = _memory_layer("untapped", fields, source.wkbType(), source.sourceCrs(), [
        _feature(fields, geometry, [float(value) if value == value else None])
        for geometry, value in zip(geometries, untapped)])
    layer.setRenderer(untapped_renderer(layer, "untapped"))
    best = _memory_layer("opportunities", fields, source.wkbType(), source.sourceCrs(), [
        _feature(fields, geometries[i], [float(untapped[i])]) for i in top])
    if units.is_polygon:
        best.renderer().setSymbol(_outline_symbol(best, QColor(0, 0, 0), 0.8))
    else:
        best.renderer().setSymbol(star_symbol(best, 3.0))
    layers = [best, layer]
    if units.is_polygon:
        layers.insert(0, _named_outlines(outlines, rows, source.sourceCrs(), QColor(60, 60, 60), 0.4, 8))
    return with_legend(_render(layers, source, units, context), layer.renderer())


def with_legend(image, renderer):
    """``image`` with the graduated ``renderer``'s classes (colour and range) in a box at its lower left."""
    from qgis.PyQt.QtCore import QRectF
    from qgis.PyQt.QtGui import QFont, QPainter

    items = [(r.symbol().color(), r.label()) for r in renderer.ranges()]
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    font = QFont("DejaVu Sans")
    font.setPixelSize(12)
    painter.setFont(font)
    metrics = painter.fontMetrics()
    line = 18
    width = 36 + max(metrics.horizontalAdvance(text) for _, text in items)
    height = 10 + line * len(items)
    left, top = 8, image.height() - height - 8
    painter.setPen(QColor(160, 160, 160))
    painter.setBrush(QColor(255, 255, 255, 230))
    painter.drawRect(QRectF(left, top, width, height))
    for row, (colour, text) in enumerate(items):
        y = top + 5 + row * line
        painter.setPen(QColor(80, 80, 80))
        painter.setBrush(colour)
        painter.drawRect(QRectF(left + 6, y + 2, 18, 12))
        painter.setPen(QColor(20, 20, 20))
        painter.drawText(QRectF(left + 30, y, width - 32, line), int(Qt.AlignmentFlag.AlignVCenter), text)
    painter.end()
    return image


def _named_outlines(outlines, rows: list[TerritoryRow], crs, colour: QColor, width: float, size: float):
    """The territories' outlines (no fill) labelled with their names."""
    fields = _territory_fields()
    layer = _memory_layer("territories", fields, QgsWkbTypes.Type.MultiPolygon, crs, [
        _feature(fields, geometry, [row.label]) for geometry, row in zip(outlines, rows) if not geometry.isNull()])
    layer.renderer().setSymbol(_outline_symbol(layer, colour, width))
    _label_territories(layer, size)
    return layer


def _label_territories(layer, size: float) -> None:
    settings = QgsPalLayerSettings()
    settings.fieldName = TERRITORY
    show_labels(layer, settings, haloed_text(size, QColor(20, 20, 20)))


def _render(layers, source, units: Units, context):
    """Draw ``layers`` (top first) over the source's extent, geographic layers in metres."""
    crs = source.sourceCrs()
    map_crs = units.metric_crs if crs.isGeographic() else crs
    extent = source.sourceExtent()
    if map_crs != crs:
        extent = QgsCoordinateTransform(crs, map_crs, context.transformContext()).transformBoundingBox(extent)
    return report.render_map(layers, map_crs, extent, transform_context=context.transformContext())


def _territory_fields() -> QgsFields:
    fields = QgsFields()
    fields.append(make_field(TERRITORY, STRING))
    return fields


def _memory_layer(name: str, fields: QgsFields, wkb_type, crs, features: list[QgsFeature]):
    layer = QgsMemoryProviderUtils.createMemoryLayer(name, fields, wkb_type, crs)
    layer.dataProvider().addFeatures(features)
    return layer


def _feature(fields: QgsFields, geometry: QgsGeometry, attributes: list) -> QgsFeature:
    feature = QgsFeature(fields)
    feature.setGeometry(geometry)
    feature.setAttributes(attributes)
    return feature


def _outline_symbol(layer, colour: QColor, width: float):
    """Outlines only: no fill, so the units' colours show through."""
    symbol = QgsSymbol.defaultSymbol(layer.geometryType())
    symbol.symbolLayer(0).setBrushStyle(Qt.BrushStyle.NoBrush)
    symbol.symbolLayer(0).setStrokeColor(colour)
    symbol.symbolLayer(0).setStrokeWidth(width)
    return symbol
