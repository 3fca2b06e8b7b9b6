"""Where a table of the plugin's own lives beside the units' data, one rule for the change log and the
panel's territory table:

- PostgreSQL/PostGIS: a table in the layer's schema;
- GeoPackage: a table in the same file;
- shapefile and other files: a sidecar GeoPackage ``<name>_<sidecar>.gpkg`` next to them;
- memory layers and other providers: no place (their tables are kept in memory, or not at all).

Tables in a database are made through QGIS's provider connection; those in a GeoPackage each
module writes through GDAL itself (QGIS's OGR provider cannot reopen a GeoPackage in update mode
while a layer opened by its path holds it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsDataSourceUri,
    QgsFields,
    QgsProviderRegistry,
    QgsVectorLayer,
    QgsWkbTypes,
)


@dataclass(frozen=True)
class TablePlace:
    """Where tables beside a layer's data go.

    provider   "postgres" or "ogr"
    uri        the database connection's uri, or the GeoPackage's path
    schema     the layer's schema in the database; "" in a GeoPackage
    sidecar    the GeoPackage is a file of its own beside the data (a shapefile's, say)
    data_name  the layer's own table (database) or layer name (GeoPackage); "" when its uri names none
    """

    provider: str
    uri: str
    schema: str
    sidecar: bool
    data_name: str


def place_beside(layer: QgsVectorLayer, sidecar: str) -> TablePlace | None:
    """Where tables beside ``layer``'s data live (a sidecar GeoPackage is ``<name>_<sidecar>.gpkg``);
    None for a layer with no place for them (memory, a file that is missing)."""
    provider = layer.providerType()
    if provider == "postgres":
        uri = QgsDataSourceUri(layer.source())
        return TablePlace("postgres", layer.source(), uri.schema() or "public", False, uri.table())
    if provider != "ogr":
        return None
    parts = QgsProviderRegistry.instance().decodeUri("ogr", layer.source())
    path = parts.get("path") or ""
    if not path or not os.path.isfile(path):
        return None
    if path.lower().endswith(".gpkg"):
        return TablePlace("ogr", path, "", False, parts.get("layerName") or "")
    stem = os.path.splitext(path)[0]
    return TablePlace("ogr", f"{stem}_{sidecar}.gpkg", "", True, "")


def provider_connection(provider: str, uri: str):
    """QGIS's connection (``QgsAbstractDatabaseProviderConnection``) to the database or GeoPackage ``uri``."""
    return QgsProviderRegistry.instance().providerMetadata(provider).createConnection(uri, {})


def create_table(connection, schema: str, name: str, fields: QgsFields) -> None:
    """A table ``name`` without geometry, with ``fields``, in ``schema`` of ``connection``."""
    connection.createVectorTable(schema, name, fields, QgsWkbTypes.Type.NoGeometry, QgsCoordinateReferenceSystem(),
                                 False, {})
