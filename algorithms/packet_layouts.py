"""The print layouts of Territory packets: one A4 page per territory (an atlas over the territories
layer) and a landscape overview, with the helpers that place labels, maps and tables on a page."""

from __future__ import annotations

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsExpression,
    QgsFillSymbol,
    QgsLayoutExporter,
    QgsLayoutFrame,
    QgsLayoutItemAttributeTable,
    QgsLayoutItemLabel,
    QgsLayoutItemMap,
    QgsLayoutItemPage,
    QgsLayoutItemShape,
    QgsLayoutMultiFrame,
    QgsLayoutPoint,
    QgsLayoutSize,
    QgsLayoutTableColumn,
    QgsPrintLayout,
    QgsProperty,
    QgsRenderContext,
    QgsSymbolLayer,
    QgsTextFormat,
    QgsUnitTypes,
)
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor

from ..compat import set_label_text_format
from ..i18n import tr
from ..layers.style import label_font
from .packet_layers import GAINED, LOST

#: the units gained (and lost) listed on a packet's first page; all of them are in its list of units
CHANGES_SHOWN = 4

INK = QColor(30, 30, 30)
MUTED = QColor(95, 95, 95)


def pdf_settings():
    """Vector PDFs at 150 dpi whose text stays text (searchable, and readable by pdftotext)."""
    settings = QgsLayoutExporter.PdfExportSettings()
    settings.dpi = 150
    settings.rasterizeWholeImage = False
    settings.forceVectorOutput = True
    settings.textRenderFormat = _always_text()
    return settings


def packet_layout(project, layers, with_changes: bool) -> QgsPrintLayout:
    """One A4 page per territory (an atlas over the territories layer): header, map, workload
    against target, units gained and lost, units in the territory; with accounts, a second page
    with the territory's overrides both ways."""
    layout = _a4_layout(project, "territory packets", landscape=False)
    territories = layers["territories"]

    bar = QgsLayoutItemShape(layout)
    bar.setShapeType(QgsLayoutItemShape.Shape.Rectangle)
    bar_symbol = QgsFillSymbol.createSimple({"color": "#cccccc", "outline_style": "no"})
    bar_symbol.symbolLayer(0).setDataDefinedProperty(
        QgsSymbolLayer.Property.PropertyFillColor,
        QgsProperty.fromExpression("attribute(@atlas_feature, 'colour')"))
    bar.setSymbol(bar_symbol)
    layout.addLayoutItem(bar)
    _place(bar, 10, 10, 4, 20)

    _label(layout, "[% attribute(@atlas_feature, 'name') %]", 17, 9, 170, 10, 18, bold=True)
    rep_text = tr("Rep")
    code_text = tr("territory code")
    units_text = tr("units")
    unit_text = tr("unit")
    _label(layout, (
        f"{rep_text}: [% coalesce(nullif(attribute(@atlas_feature, 'rep'), ''), '–') %]   ·   "
        f"{code_text} [% attribute(@atlas_feature, 'code') %]   ·   "
        f"[% attribute(@atlas_feature, 'units') %] "
        f"[% if(attribute(@atlas_feature, 'units') = '1', '{unit_text}', '{units_text}') %]"),
        17, 20, 183, 7, 10.5, colour=MUTED)
    _label(layout, tr("Territory packet"), 150, 9, 50, 6, 8.5, colour=MUTED, align_right=True)
    # a rep whose home lies outside the territory, as AlignMix outlines such reps in red
    _label(layout, "[% if(coalesce(attribute(@atlas_feature, 'rep_note'), '') = '', '', "
           "attribute(@atlas_feature, 'rep') || ' ' || attribute(@atlas_feature, 'rep_note')) %]",
           17, 27, 183, 4.5, 8, colour=QColor(LOST))

    map_item = _map_item(layout, project, layers, _extent_in(territories, project), 10, 32, 190, 125)
    map_item.setAtlasDriven(True)
    map_item.setAtlasScalingMode(QgsLayoutItemMap.AtlasScalingMode.Auto)
    map_item.setAtlasMargin(0.08)

    legend = tr("Neighbouring territories in grey. Stars: rep homes.")
    if with_changes:
        legend += " " + tr("Outlined green: units gained; outlined red (pink fill): units lost.")
    _label(layout, legend, 10, 158, 190, 6, 7.5, colour=MUTED)

    y = 167
    _label(layout, tr("Workload against target"), 10, y, 90, 6, 11, bold=True)
    workload = _table(layout, layers["workload"], [
        ("measure", tr("Measure")), ("workload", tr("Workload")), ("target", tr("Target")),
        ("deviation", tr("Deviation"))], "\"code\" = attribute(@atlas_feature, 'code')", 10, y + 7, 92, 30,
        numeric={"workload", "target", "deviation"})
    workload.setResizeMode(QgsLayoutMultiFrame.ResizeMode.UseExistingFrames)

    shown = layers["measures"]
    unit_columns = [("unit", tr("Unit"))] + [(f"w{a}", m) for a, m in enumerate(shown)]
    current = "attribute(@atlas_feature, 'code')"
    if with_changes:
        # the first rows of each here; every one of them in the list of units, which runs on over further pages
        for top, heading, colour, column, other, count, code in (
                (205, tr("Units gained"), GAINED, "before_name", tr("From"), "gained", "code"),
                (246, tr("Units lost"), LOST, "terr_name", tr("To"), "lost", "before")):
            _label(layout, heading, 10, top, 92, 6, 11, bold=True, colour=QColor(colour))
            changes = _table(layout, layers["units"], [("unit", tr("Unit")), (column, other)]
                             + [(f"w{a}", m) for a, m in enumerate(shown)],
                             f"\"change\" = 'moved' AND \"{code}\" = {current}", 10, top + 7, 92, 28,
                             numeric={f"w{a}" for a in range(len(shown))}, empty=tr("none"))
            changes.setMaximumNumberOfFeatures(CHANGES_SHOWN)
            count_of = f"to_int(attribute(@atlas_feature, '{count}'))"
            before, after = tr("… and {} more: every change is in the list of units").split("{}")
            more = f"{QgsExpression.quotedString(before)} || ({count_of} - {CHANGES_SHOWN}) || " \
                   f"{QgsExpression.quotedString(after)}"
            _label(layout, f"[% if({count_of} > {CHANGES_SHOWN}, {more}, '') %]", 10, top + 35, 92, 4.5, 7.5,
                   colour=MUTED)

    _label(layout, tr("Units in the territory"), 108, y, 92, 6, 11, bold=True)
    if with_changes:  # gained and lost units are marked; the lost ones follow the territory's own
        gained_from = QgsExpression.quotedString(tr("gained from") + " ")
        lost_to = QgsExpression.quotedString(tr("lost to") + " ")
        change = (f"CASE WHEN \"change\" = 'moved' AND \"code\" = {current} THEN {gained_from} || \"before_name\" "
                  f"WHEN \"change\" = 'moved' AND \"before\" = {current} THEN {lost_to} || \"terr_name\" ELSE '' END")
        unit_columns.insert(1, (change, tr("Change")))
    units_table = _table(layout, layers["units"], unit_columns,
                         f"\"code\" = {current} OR (\"change\" = 'moved' AND \"before\" = {current})",
                         108, y + 7, 92, 287 - y - 7, numeric={f"w{a}" for a in range(len(shown))},
                         shares=[0.24, 0.44] if with_changes else None)
    if with_changes:
        _sort_by(units_table, f"if(\"code\" = {current}, 0, 1) * 1000000 + \"order\"")
    units_table.setResizeMode(QgsLayoutMultiFrame.ResizeMode.ExtendToNextPage)

    if "overrides" in layers:
        _accounts_page(layout, layers)

    atlas = layout.atlas()
    atlas.setCoverageLayer(territories)
    atlas.setEnabled(True)
    atlas.setPageNameExpression("\"name\"")
    atlas.setFilenameExpression("'territory_' || \"file\"")
    return layout


def _accounts_page(layout, layers) -> None:
    """Page 2: the accounts outside the territory that it keeps, and the accounts in it that another
    territory serves, with their workload (the left column; the units list may go on at the right)."""
    page = QgsLayoutItemPage(layout)
    page.setPageSize("A4", QgsLayoutItemPage.Orientation.Portrait)
    layout.pageCollection().addPage(page)
    current = "attribute(@atlas_feature, 'code')"
    _label(layout, "[% attribute(@atlas_feature, 'name') %]: " + tr("accounts"), 10, 9, 190, 10, 16, bold=True,
           page=1)
    shown = layers["account_measures"]
    workload_columns = [(f"w{a}", m) for a, m in enumerate(shown)]
    numeric = {f"w{a}" for a in range(len(shown))}
    for y, direction, title, other, colour in (
            (22, "kept", tr("Accounts outside your area that you keep"), tr("Stands in"), QColor(GAINED)),
            (156, "served", tr("Accounts in your area served by another rep"), tr("Served by"), QColor(LOST))):
        _label(layout, f"{title} ([% attribute(@atlas_feature, '{direction}') %])", 10, y, 190, 6, 11, bold=True,
               colour=colour, page=1)
        _table(layout, layers["overrides"], [("account", tr("Account")), ("other", other)] + workload_columns,
               f"\"direction\" = '{direction}' AND \"code\" = {current}", 10, y + 7, 92, 124, numeric=numeric,
               empty=tr("none"), page=1)


def overview_layout(project, layers, measures, with_changes: bool, count: int) -> QgsPrintLayout:
    """The manager's overview: every territory on one landscape map, and the table of territories."""
    layout = _a4_layout(project, "overview", landscape=True)
    territories = layers["territories"]
    _label(layout, tr("Territory plan: overview"), 10, 8, 200, 10, 18, bold=True)
    _label(layout, tr("{} territories").format(count), 10, 19, 200, 6, 10.5, colour=MUTED)
    extent = _extent_in(territories, project)
    extent.scale(1.04)
    _map_item(layout, project, layers, extent, 10, 27, 130, 175)

    columns = [("name", tr("Territory")), ("rep", tr("Rep")), ("units", tr("Units"))]
    for a, measure in enumerate(measures):
        if measure != "units":
            columns.append((f"sum{a}", measure))
        columns.append((f"dev{a}", tr("± target")))
    if with_changes:
        columns += [("gained", tr("Gained")), ("lost", tr("Lost"))]
    numeric = {c for c, _ in columns if c not in ("name", "rep")}
    table = _table(layout, territories, columns, None, 145, 27, 142, 175, numeric=numeric,
                   shares=[0.15, 0.12, 0.06])
    table.setResizeMode(QgsLayoutMultiFrame.ResizeMode.ExtendToNextPage)
    return layout



def _sort_by(table: QgsLayoutItemAttributeTable, expression: str) -> None:
    """Rows of ``table`` in the order of ``expression`` (ascending), a column not shown."""
    column = QgsLayoutTableColumn()
    column.setAttribute(expression)
    column.setSortOrder(Qt.SortOrder.AscendingOrder)
    table.setSortColumns([column])
    table.refreshAttributes()


def _a4_layout(project, name: str, landscape: bool) -> QgsPrintLayout:
    """An empty layout of one A4 page."""
    layout = QgsPrintLayout(project)
    layout.setName(name)
    layout.initializeDefaults()
    page = layout.pageCollection().page(0)
    page.setPageSize("A4", page.Landscape if landscape else page.Portrait)
    return layout


def _place(item, x: float, y: float, width: float, height: float, page: int = 0) -> None:
    """Place an item at (x, y) mm on page ``page`` (0: the first)."""
    item.attemptMove(QgsLayoutPoint(x, y, QgsUnitTypes.LayoutUnit.LayoutMillimeters), page=page)
    item.attemptResize(QgsLayoutSize(width, height, QgsUnitTypes.LayoutUnit.LayoutMillimeters))


def map_crs(source, crs, context):
    """The packets' map CRS: the layer's own when projected; for longitude/latitude layers the UTM
    zone of the layer's centre, so territories are not stretched."""
    if not crs.isGeographic():
        return crs
    wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    centre = QgsCoordinateTransform(crs, wgs84, context.transformContext()).transform(
        source.sourceExtent().center())
    zone = min(max(int((centre.x() + 180.0) // 6.0) + 1, 1), 60)
    utm = QgsCoordinateReferenceSystem(f"EPSG:{32600 + zone if centre.y() >= 0 else 32700 + zone}")
    return utm if utm.isValid() else crs


def _extent_in(layer, project):
    """The layer's extent in the project's (map) CRS."""
    transform = QgsCoordinateTransform(layer.crs(), project.crs(), project.transformContext())
    return transform.transformBoundingBox(layer.extent())


def _map_item(layout, project, layers, extent, x: float, y: float, width: float, height: float) -> QgsLayoutItemMap:
    """A framed map of the packet layers (homes on top) in the project's CRS, showing ``extent``."""
    item = QgsLayoutItemMap(layout)
    item.setLayers([layers["homes"], layers["territories"], layers["changes"], layers["units"]])
    item.setCrs(project.crs())
    item.setFrameEnabled(True)
    item.setFrameStrokeColor(QColor(170, 170, 170))
    layout.addLayoutItem(item)
    _place_map(item, extent, x, y, width, height)
    return item


def _place_map(item, extent, x: float, y: float, width: float, height: float) -> None:
    """Place a map item and show ``extent`` in it at that size. A new map item has no extent, and
    setting one changes its height, so: size, set the extent, size again, then fit the extent."""
    _place(item, x, y, width, height)
    item.setExtent(extent)
    _place(item, x, y, width, height)
    item.zoomToExtent(extent)


def _page_text(size: float, bold: bool = False, colour: QColor = INK) -> QgsTextFormat:
    """Text on a packet page: DejaVu Sans (it has every accent) of ``size`` points."""
    text_format = QgsTextFormat()
    text_format.setFont(label_font(bold))
    text_format.setSize(size)
    text_format.setSizeUnit(QgsUnitTypes.RenderUnit.RenderPoints)
    text_format.setColor(colour)
    return text_format


def _label(layout, text: str, x, y, width, height, size: float, bold: bool = False, colour: QColor = INK,
           align_right: bool = False, page: int = 0) -> QgsLayoutItemLabel:
    label = QgsLayoutItemLabel(layout)
    label.setText(text)
    set_label_text_format(label, _page_text(size, bold, colour))
    label.setVAlign(Qt.AlignmentFlag.AlignVCenter)
    if align_right:
        label.setHAlign(Qt.AlignmentFlag.AlignRight)
    layout.addLayoutItem(label)
    _place(label, x, y, width, height, page)
    return label


def _table(layout, layer, columns, expression: str | None, x, y, width, height, numeric=(),
           empty: str = "", shares: list[float] | None = None, page: int = 0) -> QgsLayoutItemAttributeTable:
    """An attribute table of ``layer`` (in its feature order) with ``columns`` (field, heading),
    features filtered by ``expression``, in one frame at the given place (mm)."""
    table = QgsLayoutItemAttributeTable(layout)
    table.setVectorLayer(layer)
    table.setMaximumNumberOfFeatures(100000)
    table.setDisplayOnlyVisibleFeatures(False)
    if expression:
        table.setFilterFeatures(True)
        table.setFeatureFilter(expression)
    table_columns = []
    # column widths fill the frame: the first columns get ``shares`` of it, the others share the rest
    shares = list(shares or [0.34 if len(columns) > 2 else 0.5])[:len(columns)]
    rest = (1.0 - sum(shares)) / max(len(columns) - len(shares), 1)
    for n, (field, heading) in enumerate(columns):
        column = QgsLayoutTableColumn(heading)
        column.setAttribute(field)
        share = shares[n] if n < len(shares) else rest
        column.setWidth(max(width * share - 2.0, 6.0))  # cell margins: 1 mm a side
        if field in numeric:
            column.setHAlignment(Qt.AlignmentFlag.AlignRight)
        table_columns.append(column)
    table.setColumns(table_columns)
    # QGIS 3.22 measures rows with the new columns against contents fetched for the old ones
    # (out-of-bounds writes) until the contents are refreshed: refresh before anything recalculates.
    table.refreshAttributes()
    table.setHeaderTextFormat(_page_text(7.5, bold=True))
    table.setContentTextFormat(_page_text(7.5))
    table.setCellMargin(1.0)
    table.setGridStrokeWidth(0.15)
    table.setGridColor(QColor(190, 190, 190))
    table.setHorizontalGrid(True)
    table.setVerticalGrid(False)
    table.setHeaderHAlignment(QgsLayoutItemAttributeTable.HeaderHAlignment.FollowColumn)
    if empty:
        table.setEmptyTableBehavior(QgsLayoutItemAttributeTable.EmptyTableMode.ShowMessage)
        table.setEmptyTableMessage(empty)
    layout.addMultiFrame(table)
    frame = QgsLayoutFrame(layout, table)
    _place(frame, x, y, width, height, page)
    table.addFrame(frame)
    return table


def _always_text():
    """Text stays text in the PDFs (searchable, and readable by pdftotext)."""
    scope = getattr(QgsRenderContext, "TextFormatAlwaysText", None)
    if scope is None:
        scope = Qgis.TextRenderFormat.AlwaysText
    return scope
