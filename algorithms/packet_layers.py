"""The memory layers a territory packet is drawn from, and how each is styled.

Expressions on ``@atlas_feature`` make one layer serve every page: the page's own territory in its
colour, its neighbours grey, the units it gained and lost outlined; in the overview (no atlas
feature) every territory in its colour.
"""

from __future__ import annotations

import re

from qgis.core import (
    QgsFeature,
    QgsFields,
    QgsFillSymbol,
    QgsGeometry,
    QgsMemoryProviderUtils,
    QgsPalLayerSettings,
    QgsProperty,
    QgsSymbol,
    QgsSymbolLayer,
    QgsVectorLayerSimpleLabeling,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QColor

from ..compat import INT, STRING, make_field
from ..i18n import tr
from ..layers.shapes import TerritoryShapes
from ..layers.style import haloed_text, label_font, label_territories
from ..layers.values import natural_key
from . import report
from .map_style import show_labels, star_symbol

GREY = "#e3e3e3"
GAINED = "#1a7f37"
LOST = "#b42318"


def packet_layers(source, units, labels, codes, rows, before_codes, unit_names, figures, measures, homes, crs,
                  drives: dict, geometries: list[QgsGeometry], shapes: TerritoryShapes, overrides=None,
                  rep_flags: dict | None = None) -> dict:
    """The packets' memory layers (in ``crs``, the units' own): units, the units that changed
    territory, territories (the atlas coverage, with their header figures), workload against
    target per territory and measure (then its goal, and the drive from home, ``drives[k]``), and
    the reps' homes (``homes``: (territory index, rep name, home point in ``crs``)). ``geometries[i]``:
    unit i's geometry, ``shapes``: the territories dissolved; ``rep_flags[k]``: why territory k's rep
    is flagged (a home outside the territory)."""
    rep_flags = rep_flags or {}
    is_polygon = units.is_polygon
    name_of = {row.code: row.label for row in rows}
    shown = [m for m in measures if m != "units"]

    # units: code, colour, name, before, gained/lost flags and formatted workloads
    fields = QgsFields()
    for name in ("code", "colour", "unit", "before", "terr_name", "before_name", "change"):
        fields.append(make_field(name, STRING, 120))
    fields.append(make_field("order", INT))  # the units' natural order by name, for sorted lists
    for a, _m in enumerate(shown):
        fields.append(make_field(f"w{a}", STRING, 40))
    unit_layer = QgsMemoryProviderUtils.createMemoryLayer(
        "units", fields, QgsWkbTypes.Type.MultiPolygon if is_polygon else QgsWkbTypes.Type.MultiPoint, crs)
    features = []
    for order, i in enumerate(sorted(range(units.count), key=lambda i: natural_key(unit_names[i]))):
        k = int(labels[i])
        code = codes[k] if k >= 0 else None
        before = before_codes[i]
        change = ""
        if before is not None and code is not None and before != code:
            change = "moved"
        geometry = QgsGeometry(geometries[i])
        geometry.convertToMultiType()
        feature = QgsFeature(fields)
        feature.setGeometry(geometry)
        values = [code, rows[k].colour if k >= 0 else None, unit_names[i], before,
                  name_of.get(code, code), name_of.get(before, before), change, order]
        values += [report.fmt(units.workloads[i, a], 0) for a in range(len(shown))]
        feature.setAttributes(values)
        features.append(feature)
    unit_layer.dataProvider().addFeatures(features)
    _style_units(unit_layer)
    # the units that changed territory again, outlines only, drawn above every unit
    changes_layer = QgsMemoryProviderUtils.createMemoryLayer(
        "changes", fields, QgsWkbTypes.Type.MultiPolygon if is_polygon else QgsWkbTypes.Type.MultiPoint, crs)
    changes_layer.dataProvider().addFeatures([f for f in features if f["change"] == "moved"])
    _style_changes(changes_layer)

    # territories: the atlas coverage, one feature per code with its header figures
    t_fields = QgsFields()
    for name in ("code", "name", "rep", "colour", "file", "units", "gained", "lost", "summary", "rep_note"):
        t_fields.append(make_field(name, STRING, 254))
    kept = {code: 0 for code in codes}
    served = {code: 0 for code in codes}
    if overrides is not None:  # the accounts page's counts, "kept" and "served"
        for row in overrides[1]:
            (kept if row[1] == "kept" else served)[row[0]] += 1
        t_fields.append(make_field("kept", STRING, 20))
        t_fields.append(make_field("served", STRING, 20))
    for a, _m in enumerate(measures):
        for part in ("sum", "tgt", "dev"):
            t_fields.append(make_field(f"{part}{a}", STRING, 40))
    territory_layer = QgsMemoryProviderUtils.createMemoryLayer(
        "territories", t_fields, QgsWkbTypes.Type.MultiPolygon, crs)
    # point units: a territory is drawn as the hull around its points, a little widened
    extent = source.sourceExtent()
    pad = 0.015 * max(extent.width(), extent.height(), 1e-9)
    gained = {code: 0 for code in codes}
    lost = {code: 0 for code in codes}
    for i in range(units.count):
        k, before = int(labels[i]), before_codes[i]
        if k >= 0 and before is not None and before != codes[k]:
            gained[codes[k]] += 1
            if before in lost:
                lost[before] += 1
    t_features = []
    used_files: set[str] = set()
    for k in sorted(range(len(rows)), key=lambda t: natural_key(rows[t].label)):  # packets in name order
        row = rows[k]
        geometry = QgsGeometry(shapes.geometry[k])
        if not is_polygon and not geometry.isNull():
            geometry = geometry.convexHull().buffer(pad, 8)
        if not geometry.isNull():
            geometry.convertToMultiType()
        feature = QgsFeature(t_fields)
        feature.setGeometry(geometry)
        file_name = _file_name(row.code, used_files)
        summary = tr("{} units").format(int(figures.unit_count[k]))
        values = [row.code, row.label, row.rep or "", row.colour, file_name, str(int(figures.unit_count[k])),
                  str(gained[row.code]), str(lost[row.code]), summary, rep_flags.get(k, "")]
        if overrides is not None:
            values += [str(kept[row.code]), str(served[row.code])]
        for a in range(len(measures)):
            values += [report.fmt(figures.sums[k, a], 0), report.fmt(figures.targets[k, a], 0),
                       f"{100 * float(figures.deviation[k, a]):+.1f} %"]
        feature.setAttributes(values)
        t_features.append(feature)
    territory_layer.dataProvider().addFeatures(t_features)
    _style_territories(territory_layer)

    # workload against target, one row per territory and measure
    w_fields = QgsFields()
    for name in ("code", "measure", "workload", "target", "deviation", "status"):
        w_fields.append(make_field(name, STRING, 80))
    workload_layer = QgsMemoryProviderUtils.createMemoryLayer("workload", w_fields, QgsWkbTypes.Type.NoGeometry,
                                                              crs)
    w_features = []
    for k, row in enumerate(rows):
        for a, measure in enumerate(measures):
            feature = QgsFeature(w_fields)
            deviation = 100 * float(figures.deviation[k, a])
            feature.setAttributes([row.code, measure, report.fmt(figures.sums[k, a], 0),
                                   report.fmt(figures.targets[k, a], 0), f"{deviation:+.1f} %",
                                   tr("over") if deviation > 0.05 else tr("under")
                                   if deviation < -0.05 else tr("on target")])
            w_features.append(feature)
        if row.goal is not None:  # the goal the territory table gives it (Set territory goals)
            feature = QgsFeature(w_fields)
            feature.setAttributes([row.code, tr("your goal"), report.fmt(row.goal, 0), "", "", ""])
            w_features.append(feature)
        drive = drives.get(k)
        if drive is not None:  # with a road network: the drive from the rep's home
            feature = QgsFeature(w_fields)
            feature.setAttributes([row.code, tr("drive from home (min)"),
                                   tr("mean {:.1f}").format(drive[0]),
                                   tr("longest {:.1f}").format(drive[1]), "", ""])
            w_features.append(feature)
    workload_layer.dataProvider().addFeatures(w_features)

    # rep homes
    h_fields = QgsFields()
    h_fields.append(make_field("code", STRING, 120))
    h_fields.append(make_field("rep", STRING, 120))
    home_layer = QgsMemoryProviderUtils.createMemoryLayer("homes", h_fields, QgsWkbTypes.Type.Point, crs)
    h_features = []
    for k, name, point in homes:
        feature = QgsFeature(h_fields)
        feature.setGeometry(QgsGeometry.fromPointXY(point))
        feature.setAttributes([codes[k] if k >= 0 else None, name])
        h_features.append(feature)
    home_layer.dataProvider().addFeatures(h_features)
    _style_homes(home_layer)
    layers = {"units": unit_layer, "territories": territory_layer, "workload": workload_layer,
              "homes": home_layer, "changes": changes_layer, "measures": shown}
    if overrides is not None:
        layers["account_measures"], layers["overrides"] = overrides[0], _override_layer(*overrides, crs)
    return layers


def _override_layer(account_measures: list[str], rows: list[tuple], crs):
    """The accounts kept from outside and served by others, one row per account and territory page."""
    fields = QgsFields()
    for name in ("code", "direction", "account", "other"):
        fields.append(make_field(name, STRING, 254))
    for a, _m in enumerate(account_measures):
        fields.append(make_field(f"w{a}", STRING, 40))
    layer = QgsMemoryProviderUtils.createMemoryLayer("overrides", fields, QgsWkbTypes.Type.NoGeometry, crs)
    features = []
    for code, direction, account, other, values in sorted(rows, key=lambda row: natural_key(row[2])):
        feature = QgsFeature(fields)
        feature.setAttributes([code, direction, account, other] + [report.fmt(v, 1) for v in values])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    return layer

def _style_units(layer) -> None:
    current = "attribute(@atlas_feature, 'code')"
    if layer.geometryType() == QgsWkbTypes.GeometryType.PolygonGeometry:
        symbol = QgsFillSymbol.createSimple({"color": GREY, "outline_color": "#8a8a8a", "outline_width": "0.12"})
    else:
        symbol = QgsSymbol.defaultSymbol(layer.geometryType())
        symbol.setSize(3.0)
    symbol_layer = symbol.symbolLayer(0)
    # the territory in its colour, neighbours grey; in the overview (no atlas) every territory in colour
    symbol_layer.setDataDefinedProperty(QgsSymbolLayer.Property.PropertyFillColor, QgsProperty.fromExpression(
        f"CASE WHEN @atlas_feature IS NULL OR \"code\" = {current} THEN \"colour\" "
        f"WHEN \"before\" = {current} THEN '#f6d5d1' ELSE '{GREY}' END"))
    layer.renderer().setSymbol(symbol)
    # unit names on the packet's own units and on those it lost
    settings = QgsPalLayerSettings()
    settings.isExpression = True
    settings.fieldName = (f"CASE WHEN @atlas_feature IS NOT NULL AND (\"code\" = {current} OR "
                          f"\"before\" = {current}) THEN \"unit\" END")
    settings.priority = 3
    show_labels(layer, settings, haloed_text(6.5, QColor(40, 40, 40), 0.7, label_font()))


def _style_changes(layer) -> None:
    """Units gained by the packet's territory outlined green, units it lost red; others not drawn."""
    current = "attribute(@atlas_feature, 'code')"
    if layer.geometryType() == QgsWkbTypes.GeometryType.PolygonGeometry:
        symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": GAINED, "outline_width": "1.0"})
    else:
        symbol = QgsSymbol.defaultSymbol(layer.geometryType())
        symbol.setSize(3.4)
        symbol.symbolLayer(0).setColor(QColor(0, 0, 0, 0))  # a ring: outline only
        symbol.symbolLayer(0).setStrokeWidth(0.8)
    symbol.symbolLayer(0).setDataDefinedProperty(QgsSymbolLayer.Property.PropertyStrokeColor,
                                                 QgsProperty.fromExpression(
        f"CASE WHEN \"code\" = {current} THEN '{GAINED}' WHEN \"before\" = {current} THEN '{LOST}' "
        "ELSE '#00000000' END"))
    layer.renderer().setSymbol(symbol)

def _style_territories(layer) -> None:
    if layer.geometryType() == QgsWkbTypes.GeometryType.PolygonGeometry:
        symbol = QgsFillSymbol.createSimple({"style": "no", "outline_color": "#222222", "outline_width": "0.6"})
        symbol.symbolLayer(0).setDataDefinedProperty(QgsSymbolLayer.Property.PropertyStrokeWidth,
                                                     QgsProperty.fromExpression(
            "CASE WHEN \"code\" = attribute(@atlas_feature, 'code') THEN 1.1 ELSE 0.5 END"))
        layer.renderer().setSymbol(symbol)
    else:
        layer.renderer().setSymbol(QgsSymbol.defaultSymbol(layer.geometryType()))
        layer.renderer().symbol().setOpacity(0.0)
    label_territories(layer, "name", "rep", "code", size=8.5)
    labeling = layer.labeling().settings()
    labeling.priority = 10
    labeling.displayAll = True  # every territory named on the overview, even where labels crowd
    # a packet names its neighbours, the overview names every territory; the packet's own name is the title
    labeling.fieldName = (
        "CASE WHEN \"code\" = attribute(@atlas_feature, 'code') THEN NULL ELSE " + labeling.fieldName + " END")
    layer.setLabeling(QgsVectorLayerSimpleLabeling(labeling))

def _style_homes(layer) -> None:
    symbol = star_symbol(layer, 4.2)
    symbol.symbolLayer(0).setStrokeColor(QColor(255, 255, 255))
    layer.renderer().setSymbol(symbol)
    settings = QgsPalLayerSettings()
    settings.isExpression = True
    settings.fieldName = "CASE WHEN @atlas_feature IS NULL THEN NULL ELSE \"rep\" END"  # overview: in the label
    settings.placement = QgsPalLayerSettings.Placement.OrderedPositionsAroundPoint
    settings.dist = 1.5
    settings.priority = 10
    show_labels(layer, settings, haloed_text(7.5, halo=0.8, font=label_font(italic=True)))


def _file_name(code: str, used: set[str]) -> str:
    """A file-system-safe, unique name part for a territory code."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", code).strip("._") or "territory"
    name, number = base, 2
    while name.lower() in used:
        name = f"{base}_{number}"
        number += 1
    used.add(name.lower())
    return name
