"""Reading a few attribute columns of every unit, fast enough for a million units.

The panel needs, once per plan, the feature id and a handful of attributes (territory, measures,
rep, lock) of every unit, and no geometry. Through ``QgsVectorLayer.getFeatures`` that costs about
3 s of CPU per million features (a Python call per feature and per attribute). A GeoPackage is an
SQLite file: read straight from it, the same columns take a fraction of that. This module does so
when the answer is certain to equal what QGIS would return:

- the layer is a GeoPackage table opened through OGR, without a provider subset (filter) and
  without a filter expression of the plan;
- every column asked for is a field of the table itself (no joined, virtual or added field);
- the layer's edit buffer adds no features and changes no fields; its changed attribute values
  and deleted features are applied on top of what the file holds.

Anything else (and any error while reading the file) is read through QGIS as before.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from qgis.core import (
    QgsExpression,
    QgsFeature,
    QgsFeatureRequest,
    QgsFields,
    QgsProviderRegistry,
    QgsVectorLayer,
)


def read_columns(layer: QgsVectorLayer, indexes: list[int], request: QgsFeatureRequest,
                 direct: bool = True) -> tuple[list[int], list[list]]:
    """Feature ids and the values of fields ``indexes`` (one list per field) of the features
    ``request`` selects (its filter, no geometry). ``direct``: allow the GeoPackage shortcut."""
    if direct and not request.filterExpression():
        found = _read_geopackage(layer, indexes)
        if found is not None:
            return found
    return _read_through_qgis(layer, indexes, request)


def _read_through_qgis(layer: QgsVectorLayer, indexes: list[int], request: QgsFeatureRequest):
    request = QgsFeatureRequest(request).setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes(indexes)
    fids: list[int] = []
    raw: list[list] = [[] for _ in indexes]
    pairs = list(zip(indexes, [values.append for values in raw]))
    feature = QgsFeature()
    iterator = layer.getFeatures(request)
    # one pass, the least Python per feature
    while iterator.nextFeature(feature):
        fids.append(feature.id())
        for index, append in pairs:
            append(feature.attribute(index))
    return fids, raw


def geopackage_table(layer: QgsVectorLayer) -> tuple[str, str] | None:
    """(file, table) when ``layer`` is a whole GeoPackage table read through OGR, else None."""
    if layer.providerType() != "ogr" or layer.subsetString():
        return None
    parts = QgsProviderRegistry.instance().decodeUri("ogr", layer.source())
    path = parts.get("path") or ""
    table = parts.get("layerName") or ""
    if not table or not path.lower().endswith(".gpkg") or not Path(path).is_file() or parts.get("subset"):
        return None
    return path, table


def _read_geopackage(layer: QgsVectorLayer, indexes: list[int]):
    where = geopackage_table(layer)
    if where is None:
        return None
    fields = layer.fields()
    if any(fields.fieldOrigin(i) != QgsFields.FieldOrigin.OriginProvider for i in indexes):
        return None
    buffer = layer.editBuffer() if layer.isEditable() else None
    if buffer is not None and (buffer.addedFeatures() or buffer.addedAttributes() or buffer.deletedAttributeIds()):
        return None
    path, table = where
    provider_fields = layer.dataProvider().fields()  # the table's own column names (a rename is not saved yet)
    names = [provider_fields.at(fields.fieldOriginIndex(i)).name() for i in indexes]
    try:
        connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        columns = connection.execute(f"PRAGMA table_info({QgsExpression.quotedColumnRef(table)})").fetchall()
        key = [row[1] for row in columns if row[5] and str(row[2]).upper() == "INTEGER"]
        known = {row[1] for row in columns}
        if len(key) != 1 or not all(name in known for name in names):
            return None
        # identifiers only, each quoted (no value is ever part of the statement)
        cols = ", ".join(QgsExpression.quotedColumnRef(c) for c in [key[0]] + names)
        rows = connection.execute(f"SELECT {cols} FROM {QgsExpression.quotedColumnRef(table)} ORDER BY 1").fetchall()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    if len(rows) != layer.dataProvider().featureCount() and layer.dataProvider().featureCount() >= 0:
        return None  # not the table QGIS shows (a view, or the count is stale): ask QGIS
    if not rows:
        return [], [[] for _ in indexes]
    fids = [row[0] for row in rows]
    raw = [[row[k] for row in rows] for k in range(1, len(indexes) + 1)]
    del rows
    if buffer is not None:
        deleted = set(buffer.deletedFeatureIds())
        changed = buffer.changedAttributeValues()
        if changed:
            position = {fid: k for k, fid in enumerate(fids)}
            for fid, values in changed.items():
                k = position.get(fid)
                if k is None:
                    continue
                for column, index in enumerate(indexes):
                    if index in values:
                        raw[column][k] = values[index]
        if deleted:
            keep = [k for k, fid in enumerate(fids) if fid not in deleted]
            fids = [fids[k] for k in keep]
            raw = [[values[k] for k in keep] for values in raw]
    return fids, raw
