"""Territory styling: one colour per territory code (from the territory table, chosen by
``core.plan.colouring``), unassigned units shown clearly, territory outlines bold and labelled."""

from __future__ import annotations

import colorsys

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsRendererCategory,
    QgsSymbol,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QColor

from ..core.plan.colouring import assign_colours, territory_neighbours
from ..i18n import tr
from .values import is_null

GOLDEN = 0.6180339887498949


def territory_colour(index: int) -> QColor:
    """A colour for the index-th territory: hues spread by the golden ratio, with lightness and
    saturation cycling so that even 200 territories stay apart."""
    hue = (0.08 + index * GOLDEN) % 1.0
    saturation = (0.55, 0.75, 0.45)[index % 3]
    value = (0.90, 0.75, 0.98, 0.82)[(index // 3) % 4]
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return QColor(int(r * 255), int(g * 255), int(b * 255))


def territory_renderer(layer: QgsVectorLayer, field: str, values: list | None = None,
                       colours: dict | None = None, outline: bool = False,
                       titles: dict | None = None) -> QgsCategorizedSymbolRenderer:
    """A categorised renderer on ``field``: one category per territory value, plus an
    "Unassigned" category (NULL or empty) drawn hatched in grey.

    ``colours`` maps a territory code to its ``#rrggbb`` colour (the territory table's); codes
    without one fall back to a colour by position. ``outline``: bold dark outlines, for the
    territory layer drawn over the units. ``titles`` maps a code to its legend text (its name)."""
    if values is None:
        index = layer.fields().lookupField(field)
        values = sorted((v for v in layer.uniqueValues(index) if v not in (None, "") and not is_null(v)), key=str)
    colours = colours or {}
    titles = titles or {}
    geometry_type = layer.geometryType()
    categories = []
    for k, value in enumerate(values):
        symbol = QgsSymbol.defaultSymbol(geometry_type)
        wanted = colours.get(str(value))
        symbol.setColor(QColor(wanted) if wanted else territory_colour(k))
        if geometry_type == QgsWkbTypes.GeometryType.PolygonGeometry:
            symbol.symbolLayer(0).setStrokeColor(QColor(40, 40, 40) if outline else QColor(90, 90, 90))
            symbol.symbolLayer(0).setStrokeWidth(0.6 if outline else 0.1)
        categories.append(QgsRendererCategory(value, symbol, str(titles.get(str(value)) or value)))
    unassigned = QgsSymbol.defaultSymbol(geometry_type)
    unassigned.setColor(QColor(200, 200, 200))
    if geometry_type == QgsWkbTypes.GeometryType.PolygonGeometry:
        unassigned.symbolLayer(0).setBrushStyle(_hatch())
        unassigned.symbolLayer(0).setStrokeColor(QColor(120, 120, 120))
    label = tr("Unassigned")
    categories.append(QgsRendererCategory(None, unassigned, label))
    return QgsCategorizedSymbolRenderer(field, categories)


#: layer property naming the field of the territory style this plugin gave the layer
STYLED_PROPERTY = "territory_planner/styled_field"
#: layer property naming the map view (over/under, penetration) the panel colours the territories by
THEMED_PROPERTY = "territory_planner/themed"


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


def apply_territory_style(layer: QgsVectorLayer, field: str, values: list | None = None,
                          colours: dict | None = None, outline: bool = False, titles: dict | None = None) -> None:
    layer.setRenderer(territory_renderer(layer, field, values, colours, outline, titles))
    layer.setCustomProperty(STYLED_PROPERTY, field)
    layer.removeCustomProperty(THEMED_PROPERTY)
    layer.triggerRepaint()


def layer_colours(layer: QgsVectorLayer | None, field: str) -> dict[str, str]:
    """The colour (#rrggbb) the layer's categorised style gives each territory of ``field`` (e.g. a
    Build output styled from its territory table); empty for any other style."""
    renderer = layer.renderer() if layer is not None else None
    if renderer is None or renderer.type() != "categorizedSymbol" or renderer.classAttribute() != field:
        return {}
    if layer.customProperty(THEMED_PROPERTY, ""):  # coloured by a figure (the panel's map views), not by territory
        return {}
    return {str(c.value()): c.symbol().color().name() for c in renderer.categories()
            if c.value() is not None and str(c.value()) != "" and c.symbol() is not None}


class TerritoryColours:
    """One colour per territory of the plan being edited, chosen on the territory adjacency graph as
    the algorithms choose them (``core.plan.colouring``), neighbours clearly apart. A colour a
    territory has is kept: from an earlier choice (a rename takes its colour along), from the layer's
    style, or from the territory table, where colours are kept when the plan has one."""

    def __init__(self) -> None:
        self.by_name: dict[str, str] = {}

    def of(self, name: str) -> str | None:
        """Territory ``name``'s colour, None before any was chosen."""
        return self.by_name.get(name)

    def rename(self, old: str, new: str) -> None:
        if old in self.by_name:
            self.by_name[new] = self.by_name[old]

    def choose(self, names: list[str], labels, neighbour_pairs, layer: QgsVectorLayer | None, field: str,
               table_colours: dict[str, str]) -> dict[str, str]:
        """Colours of ``names`` (positions in ``labels``: −1 unassigned); ``neighbour_pairs`` (k, 2)
        are the unit pairs that touch, None while the neighbours are unknown."""
        known = dict(self.by_name)
        known.update(layer_colours(layer, field))
        known.update(table_colours)
        keep = {k: known[name] for k, name in enumerate(names) if name in known}
        if neighbour_pairs is not None and names:
            neighbours = territory_neighbours(labels, neighbour_pairs, len(names))
        else:
            neighbours = [set() for _ in names]
        self.by_name = dict(zip(names, assign_colours(neighbours, keep)))
        return self.by_name

    def paint(self, layer: QgsVectorLayer, field: str, names: list[str], values: list, labels, neighbour_pairs,
              table_colours: dict[str, str], keep_style: bool, titles: dict | None = None) -> None:
        """Choose the colours (see :meth:`choose`) and, unless the user keeps the layer's own style, draw
        ``layer`` by territory: ``values[k]`` is territory ``names[k]``'s value in ``field``; ``titles``
        gives a code its legend text (its name)."""
        colours = self.choose(names, labels, neighbour_pairs, layer, field, table_colours)
        if not keep_style:
            apply_territory_style(layer, field, values, {str(v): colours[name] for v, name in zip(values, names)},
                                  titles={str(v): (titles or {}).get(name, name) for v, name in zip(values, names)})


def haloed_text(size: float, colour: QColor | None = None, halo: float = 1.0, font=None):
    """A label text format of ``size`` points with a white halo of ``halo`` mm, readable over any
    territory colour: in ``colour`` and ``font`` (a QFont), QGIS's default colour and font where not given."""
    from qgis.core import QgsTextBufferSettings, QgsTextFormat

    text_format = QgsTextFormat()
    if font is not None:
        text_format.setFont(font)
    text_format.setSize(size)
    if colour is not None:
        text_format.setColor(colour)
    buffer = QgsTextBufferSettings()
    buffer.setEnabled(True)
    buffer.setSize(halo)
    buffer.setColor(QColor(255, 255, 255))
    text_format.setBuffer(buffer)
    return text_format


def label_font(bold: bool = False, italic: bool = False):
    """DejaVu Sans (it has every accent), the font of the plugin's map labels."""
    from qgis.PyQt.QtGui import QFont

    font = QFont("DejaVu Sans")
    font.setBold(bold)
    font.setItalic(italic)
    return font


def label_territories(layer: QgsVectorLayer, name_field: str = "name", rep_field: str = "rep",
                      code_field: str | None = None, size: float = 9.0) -> None:
    """Bold labels with each territory's name (its code when unnamed) and, below it, its rep when known."""
    from qgis.core import (
        QgsPalLayerSettings,
        QgsVectorLayerSimpleLabeling,
    )

    fields = layer.fields()
    parts = []
    name_ref = f'"{name_field}"' if fields.lookupField(name_field) >= 0 else None
    code_ref = f'"{code_field}"' if code_field and fields.lookupField(code_field) >= 0 else None
    if name_ref and code_ref:
        parts.append(f"coalesce(nullif({name_ref}, ''), {code_ref})")
    elif name_ref or code_ref:
        parts.append(name_ref or code_ref)
    else:
        return
    if fields.lookupField(rep_field) >= 0:
        parts.append(f"if(coalesce(\"{rep_field}\", '') = '', '', '\\n' || \"{rep_field}\")")
    settings = QgsPalLayerSettings()
    settings.fieldName = " || ".join(parts)
    settings.isExpression = True
    settings.setFormat(haloed_text(size, QColor(20, 20, 20), font=label_font(bold=True)))
    if layer.geometryType() == QgsWkbTypes.GeometryType.PolygonGeometry:
        settings.placement = QgsPalLayerSettings.Placement.OverPoint
        settings.fitInPolygonOnly = False
    layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
    layer.setLabelsEnabled(True)


def order_territories_above_units(project, territories_id: str | None, units_id: str | None) -> None:
    """Put the territory layer right above the units layer in the project's layer tree (either may
    be given as a layer id or a data source path; nothing happens until both are loaded)."""
    if not territories_id or not units_id or project is None:
        return
    root = project.layerTreeRoot()

    def node_of(key: str):
        for node in root.findLayers():
            layer = node.layer()
            if layer is not None and (layer.id() == key or layer.source().split("|")[0] == key.split("|")[0]):
                return node
        return None

    territories, units = node_of(territories_id), node_of(units_id)
    if territories is None or units is None or territories.parent() is not units.parent():
        return
    parent = units.parent()
    children = parent.children()
    if children.index(territories) < children.index(units):
        return
    clone = territories.clone()
    parent.insertChildNode(children.index(units), clone)
    parent.removeChildNode(territories)


def _hatch():
    from qgis.PyQt.QtCore import Qt

    return Qt.BrushStyle.BDiagPattern
