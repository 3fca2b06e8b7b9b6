"""The panel's own territory table: where a plan without one keeps its territories' identity.

A plan whose units layer has no territory table gets one (names, reps, colours and locks by code,
the columns of :mod:`layers.territory_table`), beside the data as the change log is kept (:mod:`.beside_data`):

- GeoPackage: a table ``<layer>_territories`` in the same file;
- PostgreSQL/PostGIS: a table ``<table>_territories`` in the layer's schema;
- shapefile and other files: a sidecar GeoPackage ``<name>_territories.gpkg`` next to them;
- memory layers (and a source that cannot take a table): a memory table, kept for the session.

Made once and found again at the next bind (by where it lives); its rows are filled in as the plan's
codes are saved (:func:`add_missing_rows`). Renames, reps and locks are edits of this table, never of
the units.
"""

from __future__ import annotations

import os

from qgis.core import QgsFeature, QgsFeatureRequest, QgsFields, QgsVectorLayer

from ..compat import INT, STRING, make_field
from ..i18n import tr
from .beside_data import create_table, place_beside, provider_connection
from .values import text_or_none

CODE = "code"
#: the custom property that ties a panel-made table to its units layer (the units layer's id)
TABLE_OF = "territory_planner/territory_table_of"


def table_fields() -> QgsFields:
    fields = QgsFields()
    for name, width in ((CODE, 120), ("name", 254), ("rep", 254), ("colour", 7)):
        fields.append(make_field(name, STRING, width))
    fields.append(make_field("locked", INT))
    return fields


def table_place(layer: QgsVectorLayer) -> tuple[str, str, str, str] | None:
    """(provider, connection uri or file, schema, table name) of ``layer``'s territory table; None for
    a layer with no place for one (memory)."""
    place = place_beside(layer, "territories")
    if place is None:
        return None
    if place.sidecar:
        return place.provider, place.uri, place.schema, "territories"
    name = place.data_name
    if place.provider == "ogr" and not name:
        name = _first_layer_name(place.uri) or os.path.splitext(os.path.basename(place.uri))[0]
    return place.provider, place.uri, place.schema, f"{name}_territories"


def _first_layer_name(path: str) -> str:
    from osgeo import ogr

    source = ogr.Open(path)
    try:
        return source.GetLayer(0).GetName() if source is not None and source.GetLayerCount() else ""
    finally:
        source = None  # noqa: F841 - closes the file


def open_plan_table(layer: QgsVectorLayer, title: str) -> tuple[QgsVectorLayer, str | None]:
    """``layer``'s territory table, made when missing: (the table as a layer named ``title``, a
    warning when it could only be kept in memory)."""
    place = table_place(layer)
    problem = None
    if place is not None:
        try:
            table = _open_or_create(*place, title)
            table.setCustomProperty(TABLE_OF, layer.id())
            return table, None
        except RuntimeError as error:
            problem = tr("The territory table could not be kept beside “{}” ({}); it is kept in memory for this "
                         "session, so names and reps given in the panel are not saved.").format(layer.name(), error)
    table = QgsVectorLayer("None", title, "memory")
    table.dataProvider().addAttributes(table_fields().toList())
    table.updateFields()
    table.setCustomProperty(TABLE_OF, layer.id())
    return table, problem


def _open_or_create(provider: str, uri: str, schema: str, name: str, title: str) -> QgsVectorLayer:
    if provider == "ogr":
        _ensure_geopackage_table(uri, name)
        table = QgsVectorLayer(f"{uri}|layername={name}", title, "ogr")
    else:
        connection = provider_connection(provider, uri)
        if not connection.tableExists(schema, name):
            create_table(connection, schema, name, table_fields())
        table = QgsVectorLayer(connection.tableUri(schema, name), title, provider)
    if not table.isValid():
        raise RuntimeError(tr("the table {} could not be opened").format(name))
    return table


def _ensure_geopackage_table(path: str, name: str) -> None:
    """The table ``name`` in GeoPackage ``path`` (both made when missing), through GDAL: QGIS's OGR
    provider cannot reopen a GeoPackage in update mode while a layer opened by its path holds it."""
    from osgeo import gdal, ogr

    gdal.ErrorReset()
    source = ogr.Open(path, 1) if os.path.isfile(path) else ogr.GetDriverByName("GPKG").CreateDataSource(path)
    if source is None:
        raise RuntimeError(gdal.GetLastErrorMsg() or path)
    try:
        if source.GetLayerByName(name) is not None:
            return
        table = source.CreateLayer(name, geom_type=ogr.wkbNone)
        if table is None:
            raise RuntimeError(gdal.GetLastErrorMsg() or name)
        for field in table_fields():
            definition = ogr.FieldDefn(field.name(), ogr.OFTInteger if field.isNumeric() else ogr.OFTString)
            if table.CreateField(definition) != 0:
                raise RuntimeError(gdal.GetLastErrorMsg() or field.name())
    finally:
        source = None  # noqa: F841 - closes the file


def table_codes(table: QgsVectorLayer, code_index: int) -> dict[str, int]:
    """{code: feature id} of the table's rows (its edit buffer included)."""
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([code_index])
    return {code: f.id() for f in table.getFeatures(request)
            if (code := text_or_none(f.attribute(code_index))) is not None}


def add_missing_rows(table: QgsVectorLayer, code_index: int, codes: list[str], colours: dict[str, str]) -> int:
    """Give every code of ``codes`` a row (named by its code, with its colour), and a colour to the
    rows that have none, straight through the table's data provider (what the plan already holds,
    not a user's edit). Returns how many rows were added."""
    fields = table.fields()
    colour_index = fields.lookupField("colour")
    present = table_codes(table, code_index)
    features = []
    for code in codes:
        if code in present:
            continue
        feature = QgsFeature(fields)
        feature.setAttribute(code_index, code)
        for column, value in (("name", code), ("colour", colours.get(code)), ("locked", 0)):
            if fields.lookupField(column) >= 0:
                feature.setAttribute(fields.lookupField(column), value)
        features.append(feature)
    if colour_index >= 0:
        request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry)
        missing = {f.id(): {colour_index: colours[code]} for f in table.dataProvider().getFeatures(request)
                   if (code := text_or_none(f.attribute(code_index))) in colours
                   and text_or_none(f.attribute(colour_index)) is None}
        if missing:
            table.dataProvider().changeAttributeValues(missing)
    if features:
        table.dataProvider().addFeatures(features)
    if (features or colour_index >= 0) and not table.isEditable():
        table.reload()  # the layer reads what the provider now holds
    return len(features)
