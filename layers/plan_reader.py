"""Reading a plan from a layer's attributes: the one reading path of the panel and the toolbox.

What a value means is decided here once: a unit's workload (:func:`workload_value`, which
``layers.units.read_units`` applies for the toolbox), its territory and rep (text, blank = none:
``layers.values.text_or_none``), its lock (``layers.values.lock_value``) and its name in messages.

The panel needs, once per plan, the feature id and a handful of attributes (territory, measures,
rep, lock) of every unit, and no geometry (:func:`read_plan_attributes`). Through
``QgsVectorLayer.getFeatures`` that costs about 3 s of CPU per million features (a Python call per
feature and per attribute). A GeoPackage is an SQLite file: read straight from it, the same columns
take a fraction of that. :func:`read_columns` does so when the answer is certain to equal what QGIS
would return:

- the layer is a GeoPackage table opened through OGR, without a provider subset (filter) and
  without a filter expression of the plan;
- every column asked for is a field of the table itself (no joined, virtual or added field);
- the layer's edit buffer adds no features and changes no fields; its changed attribute values
  and deleted features are applied on top of what the file holds.

Anything else (and any error while reading the file) is read through QGIS.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qgis.core import (
    QgsExpression,
    QgsFeature,
    QgsFeatureRequest,
    QgsFields,
    QgsProviderRegistry,
    QgsVectorLayer,
)

from ..i18n import tr
from .values import as_number, lock_value, text_or_none


class UnitDataError(ValueError):
    """The layer cannot be turned into units; the message names the problem and the fix."""


def workload_value(unit: int | str, field_name: str, value) -> float:
    """A unit's workload in balance field ``field_name``: the one workload rule of the toolbox and
    the panel. NULL (or text that is no number), negative and non-finite values raise
    :class:`UnitDataError` naming the feature (``unit``: its id, or how messages name it), the field
    and the fix."""
    if type(value) is float and 0.0 <= value < math.inf:  # the usual case, a million times on a large layer
        return value
    number = as_number(value)
    if number is None:
        raise UnitDataError(tr(
            "Feature {} has no value (NULL) in the balance field “{}”. Fill it in (0 if the "
            "unit has no workload) or filter the feature out.").format(unit, field_name))
    if number < 0 or not math.isfinite(number):
        raise UnitDataError(tr(
            "Feature {} has a negative or invalid workload ({}) in “{}”. Workloads must be "
            "zero or more.").format(unit, value, field_name))
    return number


def workload_column(fids, field_name: str, values: list) -> np.ndarray:
    """:func:`workload_value` of every unit, as one array (a million values at numpy speed; the
    first bad value is looked up one by one, to name its feature)."""
    try:
        column = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        column = None
    if column is None or not np.all(np.isfinite(column)) or (column < 0).any():
        column = np.array([workload_value(int(fid), field_name, v) for fid, v in zip(fids, values)], dtype=float)
    return column


def texts(values: list) -> list:
    """``text_or_none`` of every value (territories, reps), computed once per distinct value: a
    million units hold a few thousand territory names."""
    try:
        distinct = {value: text_or_none(value) for value in set(values)}
    except TypeError:  # an unhashable value (a QVariant NULL): one by one
        return [text_or_none(value) for value in values]
    if any(type(value) is not str and type(value) is not int for value in distinct):
        # 1 and 1.0 (and True) are one dict key but read differently: one by one
        return [text_or_none(value) for value in values]
    return list(map(distinct.__getitem__, values))


def lock_flags(values: list) -> np.ndarray:
    """Whether each lock-field value locks its unit (``layers.values.lock_value``)."""
    return np.fromiter((lock_value(value)[0] for value in values), dtype=bool, count=len(values))


@dataclass
class PlanAttributes:
    """Every unit's attributes as a plan reads them, in the layer's feature order."""

    fids: np.ndarray
    #: the territory field's values as the layer holds them (the save guard remembers them)
    territory_values: list
    territories: list  # text or None
    workloads: np.ndarray  # (n, m); a column of ones when no measure is balanced
    reps: list | None  # text or None per unit; None without a rep field
    locked: np.ndarray  # by the lock field; all False without one


def read_plan_attributes(layer: QgsVectorLayer, territory_index: int, measures: list[tuple[str, int]],
                         rep_index: int, lock_index: int, request: QgsFeatureRequest) -> PlanAttributes:
    """Ids, territories, workloads (``measures``: (name, field index) pairs), reps and locks of the
    units ``request`` selects, in one read of those columns (no geometry). A field index below 0
    means the plan has no such field. Raises :class:`UnitDataError` for a bad workload."""
    columns = [territory_index] + [index for _, index in measures] + [i for i in (rep_index, lock_index) if i >= 0]
    fids, raw = read_columns(layer, columns, request)
    count = len(fids)
    fids = np.asarray(fids, dtype=np.int64)
    if measures:
        workloads = np.column_stack([workload_column(fids, name, values)
                                     for (name, _), values in zip(measures, raw[1:1 + len(measures)])])
    else:
        workloads = np.ones((count, 1))
    extra = iter(raw[1 + len(measures):])
    reps = texts(next(extra)) if rep_index >= 0 else None
    locked = lock_flags(next(extra)) if lock_index >= 0 else np.zeros(count, dtype=bool)
    return PlanAttributes(fids=fids, territory_values=raw[0], territories=texts(raw[0]), workloads=workloads,
                          reps=reps, locked=locked)


def workload_problem(layer: QgsVectorLayer, name_field: str, fid: int, field_name: str, value) -> str:
    """Why ``value`` cannot be feature ``fid``'s workload in ``field_name`` (:func:`workload_value`'s
    message, naming the unit by its name field too); "" when it can."""
    name = unit_label(layer, name_field, fid)
    try:
        workload_value(name if name == str(int(fid)) else f"{int(fid)} ({name})", field_name, value)
    except UnitDataError as error:
        return str(error)
    return ""


def unit_label(layer: QgsVectorLayer, name_field: str, fid: int) -> str:
    """How messages name a unit: its unit-name field's text, else its feature id."""
    if name_field and layer is not None and layer.fields().lookupField(name_field) >= 0:
        feature = layer.getFeature(int(fid))
        # an invalid feature (the database went away) has no attributes: name the unit by its id
        name = text_or_none(feature[name_field]) if feature.isValid() else None
        if name is not None:
            return name
    return str(int(fid))


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
    read = GeoPackageColumns.prepare(layer, indexes)
    return read.read() if read is not None else None


class GeoPackageColumns:
    """A read of some columns (and, for a point layer, the points) of a GeoPackage table straight
    from the file, in two steps: :meth:`prepare` looks at the layer (on the main thread: its source,
    fields and edit buffer), :meth:`read` reads the file (on any thread) and applies the edit
    buffer's changed values and deleted features on top. Either gives None when the answer might
    differ from what QGIS would read; read through QGIS then."""

    def __init__(self, path: str, table: str, names: list[str], count: int, changed: dict, deleted: set,
                 indexes: list[int]):
        self.path, self.table, self.names, self.count = path, table, names, count
        self.changed, self.deleted, self.indexes = changed, deleted, indexes
        self.geometry_column = ""

    @classmethod
    def prepare(cls, layer: QgsVectorLayer, indexes: list[int], points: bool = False) -> GeoPackageColumns | None:
        """``points``: read each feature's point too (unless the edit buffer changes geometries)."""
        where = geopackage_table(layer)
        if where is None:
            return None
        fields = layer.fields()
        if any(fields.fieldOrigin(i) != QgsFields.FieldOrigin.OriginProvider for i in indexes):
            return None
        buffer = layer.editBuffer() if layer.isEditable() else None
        if buffer is not None and (buffer.addedFeatures() or buffer.addedAttributes() or buffer.deletedAttributeIds()
                                   or (points and buffer.changedGeometries())):
            return None
        provider_fields = layer.dataProvider().fields()  # the table's own column names (a rename is not saved yet)
        names = [provider_fields.at(fields.fieldOriginIndex(i)).name() for i in indexes]
        changed = {int(fid): dict(values) for fid, values in buffer.changedAttributeValues().items()} \
            if buffer is not None else {}
        deleted = set(buffer.deletedFeatureIds()) if buffer is not None else set()
        read = cls(*where, names, layer.dataProvider().featureCount(), changed, deleted, list(indexes))
        if points:
            read.geometry_column = "?"  # looked up in the file by read()
        return read

    def read(self):
        """(fids, one list of values per column) — with points also an (n, 2) array of x, y — or None."""
        try:
            connection = sqlite3.connect(f"{Path(self.path).resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error:
            return None
        try:
            columns = connection.execute(f"PRAGMA table_info({QgsExpression.quotedColumnRef(self.table)})").fetchall()
            key = [row[1] for row in columns if row[5] and str(row[2]).upper() == "INTEGER"]
            known = {row[1] for row in columns}
            if len(key) != 1 or not all(name in known for name in self.names):
                return None
            wanted = [key[0]] + self.names
            if self.geometry_column:
                # no value in the statement: the table's row is picked here, not in SQL
                tables = dict(connection.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
                if self.table not in tables:
                    return None
                wanted.append(tables[self.table])
            # identifiers only, each quoted (no value is ever part of the statement)
            quote = QgsExpression.quotedColumnRef
            cols = ", ".join(quote(c) for c in wanted)
            rows = connection.execute(f"SELECT {cols} FROM {quote(self.table)} ORDER BY 1")  # quotedColumnRef
            rows = rows.fetchall()
        except sqlite3.Error:
            return None
        finally:
            connection.close()
        if len(rows) != self.count and self.count >= 0:
            return None  # not the table QGIS shows (a view, or the count is stale): ask QGIS
        fids = [row[0] for row in rows]
        raw = [[row[k] for row in rows] for k in range(1, len(self.names) + 1)]
        xy = None
        if self.geometry_column:
            xy = geopackage_points([row[-1] for row in rows])
            if xy is None:
                return None
        del rows
        fids, raw, xy = self._apply_edits(fids, raw, xy)
        return (fids, raw) if xy is None else (fids, raw, xy)

    def _apply_edits(self, fids, raw, xy):
        if self.changed:
            position = {fid: k for k, fid in enumerate(fids)}
            for fid, values in self.changed.items():
                k = position.get(fid)
                if k is None:
                    continue
                for column, index in enumerate(self.indexes):
                    if index in values:
                        raw[column][k] = values[index]
        if self.deleted:
            keep = [k for k, fid in enumerate(fids) if fid not in self.deleted]
            fids = [fids[k] for k in keep]
            raw = [[values[k] for k in keep] for values in raw]
            if xy is not None:
                xy = xy[keep]
        return fids, raw, xy


#: a GeoPackage point blob without envelope: "GP", version, flags, srs id, then a little-endian WKB point
_POINT_BLOB = np.dtype([("magic", "S2"), ("version", "u1"), ("flags", "u1"), ("srs", "<i4"), ("order", "u1"),
                        ("kind", "<u4"), ("x", "<f8"), ("y", "<f8")])


def geopackage_points(blobs: list) -> np.ndarray | None:
    """(n, 2) x, y of GeoPackage point geometries, NaN for an empty one (NULL or empty point); None
    when some blob is not a plain 2-D point (an envelope, Z or M, a multipoint): read through QGIS."""
    out = np.full((len(blobs), 2), np.nan)
    present = [k for k, blob in enumerate(blobs) if blob is not None]
    if not present:
        return out
    size = _POINT_BLOB.itemsize
    if any(len(blobs[k]) != size for k in present):
        return None
    parsed = np.frombuffer(b"".join(blobs[k] for k in present), dtype=_POINT_BLOB)
    flags = parsed["flags"]
    # little-endian header (bit 0), no envelope (bits 1-3); the empty flag (bit 4) marks empty points
    if (parsed["magic"] != b"GP").any() or ((flags & 0x0F) != 0x01).any() or (parsed["order"] != 1).any() \
            or (parsed["kind"] != 1).any():
        return None
    xy = np.column_stack([parsed["x"], parsed["y"]])
    xy[(flags & 0x10) != 0] = np.nan
    out[present] = xy
    return out
