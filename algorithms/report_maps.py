"""The map images of the HTML reports, drawn by QGIS from memory layers.

Statistics draws the alignment (units in their territory colours, territory outlines and names,
reps as stars); Compare alignments draws the units in their new territory's colour with the units
that change outlined in red. Layers in longitude/latitude are drawn in the units' local metric
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

from ..compat import STRING, make_field
from ..layers.reps import RepLayer
from ..layers.style import apply_territory_style
from ..layers.territory_table import TerritoryRow
from ..layers.units import Units
from . import report
from .map_style import haloed_text, show_labels, star_symbol

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
        outline = _memory_layer("territories", fields, QgsWkbTypes.Type.MultiPolygon, crs, [
            _feature(fields, geometry, [row.label]) for geometry, row in zip(outlines, rows) if not geometry.isNull()])
        outline.renderer().setSymbol(_outline_symbol(outline, QColor(30, 30, 30), 0.5))
        settings = QgsPalLayerSettings()
        settings.fieldName = TERRITORY
        show_labels(outline, settings, haloed_text(9, 1.0, QColor(20, 20, 20)))
        layers.insert(0, outline)
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
