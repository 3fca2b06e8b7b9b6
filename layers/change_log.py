"""The change log: one row per unit whose territory changed, written when the edits are saved.

A :class:`ChangeRecorder` watches one layer's territory field. Just before QGIS saves the layer's
edits it notes, for every unit whose territory value is in the edit buffer, the saved (old) value,
the new one and the unit's workloads; once QGIS reports the attribute changes as committed, the
rows whose value really changed are appended to a ``territory_changes`` table beside the data:

- GeoPackage: a table in the same file;
- PostgreSQL/PostGIS: a table in the layer's schema;
- shapefile and other files: a sidecar GeoPackage ``<name>_territory_changes.gpkg`` next to them.

Edits that are rolled back, or undone before saving, never reach the log. Layers kept only in
memory have no place for a log and are not recorded.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import os
from dataclasses import dataclass, field

from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsDataSourceUri,
    QgsFeature,
    QgsFeatureRequest,
    QgsFields,
    QgsProviderRegistry,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QObject

from ..compat import DOUBLE, STRING, make_field
from .signal_links import SignalLinks
from .values import is_empty_value as is_missing
from .values import text_or_none

TABLE = "territory_changes"
#: the fixed columns, in order; one numeric column per balance field follows them
COLUMNS = ("changed_at", "user_name", "scenario", "action", "unit", "from_territory", "to_territory", "note")
#: what ``action`` says when an edit did not come from the panel
TABLE_EDIT = "table edit"


def current_user() -> str:
    name = ""
    try:
        name = QgsApplication.userFullName() or QgsApplication.userLoginName()
    except AttributeError:  # pragma: no cover - very old QGIS
        pass
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # pragma: no cover - no user database
            name = ""
    return name


@dataclass
class ChangeRow:
    changed_at: str
    user_name: str
    scenario: str
    action: str
    unit: str
    from_territory: str | None
    to_territory: str | None
    workloads: dict = field(default_factory=dict)
    #: why, when the panel knows (an accepted rep request: the rep and the reason)
    note: str = ""


class ChangeLogStore:
    """Where the log of one layer lives, and how rows are appended and read back."""

    def __init__(self, provider: str, uri: str, schema: str, sidecar: bool):
        self.provider = provider
        self.uri = uri
        self.schema = schema
        self.sidecar = sidecar

    @classmethod
    def for_layer(cls, layer: QgsVectorLayer) -> ChangeLogStore | None:
        """The store beside ``layer``'s data, or None when the layer has no place for one."""
        provider = layer.providerType()
        if provider == "postgres":
            uri = QgsDataSourceUri(layer.source())
            return cls("postgres", layer.source(), uri.schema() or "public", sidecar=False)
        if provider != "ogr":
            return None
        parts = QgsProviderRegistry.instance().decodeUri("ogr", layer.source())
        path = parts.get("path") or ""
        if not path or not os.path.isfile(path):
            return None
        if path.lower().endswith(".gpkg"):
            return cls("ogr", path, "", sidecar=False)
        stem = os.path.splitext(path)[0]
        return cls("ogr", f"{stem}_{TABLE}.gpkg", "", sidecar=True)

    @property
    def description(self) -> str:
        if self.provider == "postgres":
            return f"{self.schema}.{TABLE}"
        return f"{self.uri} ({TABLE})"

    def _connection(self):
        metadata = QgsProviderRegistry.instance().providerMetadata(self.provider)
        return metadata.createConnection(self.uri, {})

    def _exists(self, connection) -> bool:
        try:
            return connection.tableExists(self.schema, TABLE)
        except Exception:  # noqa: BLE001 - a missing file or schema means no table yet
            return False

    def layer(self) -> QgsVectorLayer | None:
        """The log as a (table) layer, or None when nothing was logged yet."""
        if self.provider == "ogr" and not os.path.isfile(self.uri):
            return None
        connection = self._connection()
        if not self._exists(connection):
            return None
        table = QgsVectorLayer(connection.tableUri(self.schema, TABLE), TABLE, self.provider)
        return table if table.isValid() else None

    def append(self, rows: list[ChangeRow], measures: list[str]) -> None:
        """Append ``rows``; creates the table and any missing column (a workload, or ``note`` in a log
        written before it had one) first.

        Raises ``RuntimeError`` naming the table when the rows cannot be written.
        """
        if not rows:
            return
        fields = QgsFields()
        for name in COLUMNS:
            fields.append(make_field(name, STRING, 254))
        for name in measures:
            fields.append(make_field(name, DOUBLE))
        if self.provider == "ogr" and self.sidecar and not os.path.isfile(self.uri):
            _create_empty_geopackage(self.uri)
        connection = self._connection()
        if not self._exists(connection):
            connection.createVectorTable(self.schema, TABLE, fields, QgsWkbTypes.Type.NoGeometry,
                                         QgsCoordinateReferenceSystem(), False, {})
        table = self.layer()
        if table is None:
            raise RuntimeError(f"the change log {self.description} could not be opened")
        provider = table.dataProvider()
        missing = [fields.field(name) for name in [*COLUMNS, *measures] if table.fields().lookupField(name) < 0]
        if missing:
            provider.addAttributes(missing)
            table.updateFields()
        features = []
        for row in rows:
            feature = QgsFeature(table.fields())
            for name in COLUMNS:
                feature[name] = getattr(row, name)
            for name, value in row.workloads.items():
                feature[name] = float(value)
            features.append(feature)
        ok, _ = provider.addFeatures(features)
        if not ok:
            raise RuntimeError(f"the change log {self.description} could not be written: "
                               f"{'; '.join(provider.errors()) or 'unknown error'}")

    def rows(self, territory: str | None = None) -> list[dict]:
        """Logged rows, oldest first; only those into or out of ``territory`` when given."""
        table = self.layer()
        if table is None:
            return []
        names = table.fields().names()
        found = []
        for feature in table.getFeatures():
            row = {name: feature[name] for name in names}
            row = {k: (None if is_missing(v) else v) for k, v in row.items()}
            if territory is not None and territory not in (row.get("from_territory"), row.get("to_territory")):
                continue
            found.append(row)
        found.sort(key=lambda r: (str(r.get("changed_at") or ""), str(r.get("unit") or "")))
        return found


def read_saved_values(provider, fids: list[int], index: int) -> dict[int, object]:
    """Attribute ``index`` of ``fids`` as the data source holds it now: {fid: value}.

    After a database server restarted, the provider's first request on its old connection comes
    back empty (and makes the provider reconnect): an empty answer is asked once more.
    """
    request = QgsFeatureRequest().setFilterFids(list(fids)).setFlags(QgsFeatureRequest.Flag.NoGeometry)
    request.setSubsetOfAttributes([index])
    values = {int(f.id()): f.attribute(index) for f in provider.getFeatures(request)}
    if not values and fids:
        values = {int(f.id()): f.attribute(index) for f in provider.getFeatures(request)}
    return values


def _create_empty_geopackage(path: str) -> None:
    from osgeo import ogr

    driver = ogr.GetDriverByName("GPKG")
    source = driver.CreateDataSource(path)
    if source is None:
        raise RuntimeError(f"the change log file {path} could not be created")
    source = None  # noqa: F841 - closes the file


class ChangeRecorder(QObject):
    """Records the committed territory changes of one layer into its :class:`ChangeLogStore`.

    ``action_of(fid)`` names what changed a unit (paint, build…); edits it does not know are
    "table edit". ``unit_name_field`` names units in the log (the fid when empty).
    """

    def __init__(self, layer: QgsVectorLayer, territory_field: str, measures: list[str],
                 unit_name_field: str = "", parent: QObject | None = None):
        super().__init__(parent)
        self.layer = layer
        self.territory_field = territory_field
        self.measures = list(measures)
        self.unit_name_field = unit_name_field
        self.store = ChangeLogStore.for_layer(layer)
        self.actions: dict[int, str] = {}
        self.notes: dict[int, str] = {}
        self.error: str | None = None
        #: rows of saved edits that could not be written to the log yet; written with the next save
        self.backlog: list[ChangeRow] = []
        self._written_this_save = False
        self._pending: dict[int, tuple] = {}
        self._links = SignalLinks([
            (layer.beforeCommitChanges, self._before_commit),
            (layer.committedAttributeValuesChanges, self._committed),
            (layer.afterRollBack, self._forget),
            (layer.afterCommitChanges, self._after_commit),
        ])

    def detach(self) -> None:
        self._links.cut()

    def note(self, fids, action: str, notes: dict[int, str] | None = None) -> None:
        """The panel is about to change ``fids`` by ``action``; ``notes`` (fid → text) say why."""
        for fid in fids:
            self.actions[int(fid)] = action
            self.notes.pop(int(fid), None)
        for fid, text in (notes or {}).items():
            self.notes[int(fid)] = text

    def _forget(self, *_args) -> None:
        self.actions.clear()
        self.notes.clear()
        self._pending.clear()

    def _before_commit(self, *_args) -> None:
        self._pending = {}
        self._written_this_save = False
        if self.store is None:
            return
        buffer = self.layer.editBuffer()
        index = self.layer.fields().lookupField(self.territory_field)
        if buffer is None or index < 0:
            return
        changed = buffer.changedAttributeValues()
        fids = [int(fid) for fid, values in changed.items() if index in values]
        if not fids:
            return
        provider = self.layer.dataProvider()
        old = {}
        saved_index = provider.fields().lookupField(self.territory_field)
        if saved_index >= 0:  # else a new field: all were empty
            old = read_saved_values(provider, fids, saved_index)
        names_wanted = [n for n in [self.unit_name_field, *self.measures] if n]
        request = QgsFeatureRequest().setFilterFids(fids).setFlags(QgsFeatureRequest.Flag.NoGeometry)
        request.setSubsetOfAttributes(names_wanted + [self.territory_field], self.layer.fields())
        for feature in self.layer.getFeatures(request):
            fid = int(feature.id())
            before = text_or_none(old.get(fid))
            after = text_or_none(feature[self.territory_field])
            if before == after:
                continue
            name = text_or_none(feature[self.unit_name_field]) if self.unit_name_field else None
            workloads = {}
            for measure in self.measures:
                value = feature[measure]
                workloads[measure] = 0.0 if is_missing(value) else float(value)
            self._pending[fid] = (before, after, name or str(fid), workloads)

    def _after_commit(self) -> None:
        # a save without territory changes still writes what an earlier failed log write left
        if self.backlog and not self._written_this_save:
            self.write()

    def _committed(self, layer_id: str, changes) -> None:
        if layer_id != self.layer.id() or not self._pending or self.store is None:
            return
        self._written_this_save = True
        index = self.layer.fields().lookupField(self.territory_field)
        committed = {int(fid) for fid, values in changes.items() if index in values}
        now = _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")
        user = current_user()
        rows = []
        for fid, (before, after, name, workloads) in sorted(self._pending.items()):
            if fid not in committed:
                continue
            rows.append(ChangeRow(now, user, self.territory_field, self.actions.get(fid, TABLE_EDIT), name,
                                  before, after, workloads, self.notes.get(fid, "")))
        self._pending = {}
        self.actions.clear()
        self.notes.clear()
        self.write(rows)

    def write(self, rows: list[ChangeRow] | None = None) -> bool:
        """Append ``rows`` after any rows a failed write left behind; all or none land.

        A log that cannot be written (the server went away between saving the units and writing
        the log) keeps the rows in :attr:`backlog` and sets :attr:`error`; the next save, or a
        call without rows, writes them, so every saved change is logged exactly once.
        """
        rows = self.backlog + list(rows or [])
        if not rows or self.store is None:
            return True
        try:
            self.store.append(rows, self.measures)
        except Exception as error:  # noqa: BLE001 - a provider may fail in many ways; keep the rows
            self.backlog = rows
            self.error = str(error)
            return False
        self.backlog = []
        self.error = None
        return True
