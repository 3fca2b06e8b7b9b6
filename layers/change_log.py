"""The change log: one row per unit whose territory changed, written when the edits are saved.

A :class:`ChangeRecorder` watches one layer's territory field. Just before QGIS saves the layer's
edits it notes, for every unit whose territory value is in the edit buffer, the saved (old) value,
the new one and the unit's workloads; once QGIS reports the attribute changes as committed, the
rows whose value really changed are appended to a ``territory_changes`` table beside the data
(:mod:`.beside_data`: in the same GeoPackage or database schema; a shapefile gets a sidecar GeoPackage
``<name>_territory_changes.gpkg`` next to it).

Edits that are rolled back, or undone before saving, never reach the log. Layers kept only in
memory have no place for a log and are not recorded.

The log is written at the save or the save does not happen: just before a save the recorder checks
that the log can take rows (:meth:`ChangeLogStore.check_writable`: the GeoPackage opens for writing;
PostgreSQL accepts a row written and undone in one statement); when it cannot, the panel's save guard
holds the save back with the edits kept in the buffer. Only a database that goes away between the
units' save and the log's write leaves rows in :attr:`ChangeRecorder.backlog`, written with the next save.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import os
import re
from dataclasses import dataclass, field

from qgis.core import QgsApplication, QgsExpression, QgsFeature, QgsFeatureRequest, QgsFields, QgsVectorLayer
from qgis.PyQt.QtCore import QObject

from ..compat import DOUBLE, STRING, make_field
from .beside_data import create_table, place_beside, provider_connection
from .edit_checks import is_integer_field
from .signal_links import SignalLinks
from .values import is_empty_value as is_missing
from .values import looks_like_id, text_or_none

TABLE = "territory_changes"
#: the fixed columns, in order; one numeric column per balance field follows them
COLUMNS = ("changed_at", "user_name", "scenario", "action", "unit", "from_territory", "to_territory", "note")
#: what ``action`` says when an edit did not come from the panel
TABLE_EDIT = "table edit"
#: the actions of the rows that change scenarios rather than units
NEW_SCENARIO, RENAME_SCENARIO, DELETE_SCENARIO = "new scenario", "rename scenario", "delete scenario"
#: the layer's custom property holding the scenario notes of the edits not saved yet
NOTES_PROPERTY = "territory_planner/log_notes"


def local_now() -> str:
    """The time now, local, with its offset from UTC (2026-12-06T14:03:12+01:00)."""
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def note_scenario(layer: QgsVectorLayer, action: str, scenario: str, note: str, copy_of: str = "",
                  renamed_from: str = "") -> None:
    """Log one row at the layer's next save for a change of scenarios (``action``: "new scenario",
    "rename scenario", "delete scenario"); ``copy_of``: the scenario a new one copies, whose values
    are then not logged unit by unit. Kept on the layer until the save or a rollback."""
    notes = scenario_notes(layer)
    if action == RENAME_SCENARIO:  # a scenario made, then renamed, before one save
        for earlier in notes:
            for key in ("scenario", "copy_of"):
                if earlier.get(key) == renamed_from:
                    earlier[key] = scenario
    notes.append({"action": action, "scenario": scenario, "note": note, "copy_of": copy_of})
    layer.setCustomProperty(NOTES_PROPERTY, json.dumps(notes))


def scenario_notes(layer: QgsVectorLayer) -> list[dict]:
    try:
        notes = json.loads(layer.customProperty(NOTES_PROPERTY, "[]") or "[]")
    except (TypeError, ValueError):
        return []
    return [note for note in notes if isinstance(note, dict)] if isinstance(notes, list) else []


def unit_label_field(layer: QgsVectorLayer, unit_name_field: str) -> str:
    """The field that names units in the log: the plan's unit-name field, else the layer's id field
    (a text or whole-number field named like fips, geoid, id…), else "" (the feature id)."""
    if unit_name_field and layer.fields().lookupField(unit_name_field) >= 0:
        return unit_name_field
    for index, candidate in enumerate(layer.fields()):
        if looks_like_id(candidate.name()) and candidate.name().lower() not in ("fid", "ogc_fid") \
                and (not candidate.isNumeric() or is_integer_field(layer, index)):
            return candidate.name()
    return ""


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
    #: what a row says beside the move: why, when the panel knows (an accepted rep request: the rep and
    #: the reason), or what a row that moves no unit records (a new, copied or renamed scenario)
    note: str | None = ""


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
        place = place_beside(layer, TABLE)
        return None if place is None else cls(place.provider, place.uri, place.schema, place.sidecar)

    @property
    def description(self) -> str:
        if self.provider == "postgres":
            return f"{self.schema}.{TABLE}"
        return f"{self.uri} ({TABLE})"

    def _connection(self):
        return provider_connection(self.provider, self.uri)

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

    def check_writable(self) -> None:
        """Raise ``RuntimeError`` saying why rows cannot be appended now (checked before a save, so a
        save whose log cannot be written is refused rather than logged later)."""
        if self.provider == "ogr":
            self._check_geopackage()
            return
        connection = self._connection()
        try:
            connection.schemas()  # reaches the server
        except Exception as error:  # noqa: BLE001 - the provider's exception says why
            raise LogUnreachable(f"the change log {self.description} cannot be reached: {error}") from None
        if not self._exists(connection):
            granted = _may_create_tables(connection, self.schema)
            if not granted or not granted[0] or not granted[0][0]:
                raise RuntimeError(f"the change log {self.description} cannot be created: no right to create "
                                   f"tables in the schema {self.schema}")
            return
        # a row written and undone in one statement: any right, constraint or trigger that refuses
        # the log's rows refuses this one too; only the planned exception means the row would go in
        table = QgsExpression.quotedColumnRef(self.schema) + "." + QgsExpression.quotedColumnRef(TABLE)
        columns = ", ".join(QgsExpression.quotedColumnRef(name) for name in COLUMNS)
        values = ", ".join("''" for _ in COLUMNS)
        insert = f"INSERT INTO {table} ({columns}) VALUES ({values})"
        try:
            _insert_and_undo(connection, insert)
        except Exception as error:  # noqa: BLE001 - the provider's exception carries PostgreSQL's text
            text = str(error)
            # the provider's message repeats the statement: only PostgreSQL's own error counts
            if re.search(r"ERROR:\s+" + re.escape(_PROBE_END), text):
                return
            found = re.search(r"ERROR:\s+([^\n]*)", text)
            reason = found.group(1).strip() if found else (text.strip().splitlines() or ["unknown error"])[0]
            raise RuntimeError(f"the change log {self.description} cannot be written: {reason}") from None

    def _check_geopackage(self) -> None:
        from osgeo import gdal, ogr

        if not os.path.isfile(self.uri):
            folder = os.path.dirname(os.path.abspath(self.uri))
            if os.path.exists(self.uri) or not os.access(folder, os.W_OK):
                raise RuntimeError(f"the change log {self.uri} cannot be created in {folder}")
            return
        gdal.ErrorReset()
        source = ogr.Open(self.uri, 1)
        if source is None:
            raise RuntimeError(f"the change log {self.uri} ({TABLE}) cannot be opened for writing: "
                               f"{gdal.GetLastErrorMsg() or 'read-only or not a GeoPackage'}")
        source = None  # noqa: F841 - closes the file

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
        if self.provider == "ogr":
            # straight through GDAL: QGIS's OGR provider cannot reopen a GeoPackage in update mode while
            # a layer opened by its path alone (as Processing loads outputs) holds it during a save
            _append_to_geopackage(self.uri, rows, measures, create=self.sidecar and not os.path.isfile(self.uri))
            return
        connection = self._connection()
        if not self._exists(connection):
            create_table(connection, self.schema, TABLE, fields)
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
                if table.fields().lookupField(name) >= 0:
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


def export_rows(rows: list[dict], measures: list[str], path: str) -> str | None:
    """Write log ``rows`` to ``path``, a CSV or an Excel workbook (by its extension, .xlsx by default);
    None when written, else why not."""
    from qgis.core import QgsProject, QgsVectorFileWriter

    driver = "CSV" if path.lower().endswith(".csv") else "XLSX"
    if driver == "XLSX" and not path.lower().endswith(".xlsx"):
        path += ".xlsx"
    fields = QgsFields()
    for name in COLUMNS:
        fields.append(make_field(name, STRING, 254))
    for name in measures:
        fields.append(make_field(name, DOUBLE))
    table = QgsVectorLayer("None", TABLE, "memory")
    table.dataProvider().addAttributes(fields.toList())
    table.updateFields()
    features = []
    for row in rows:
        feature = QgsFeature(table.fields())
        feature.setAttributes([row.get(name) for name in [*COLUMNS, *measures]])
        features.append(feature)
    table.dataProvider().addFeatures(features)
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = driver
    options.layerName = TABLE
    options.fileEncoding = "UTF-8"
    error, message, *_ = QgsVectorFileWriter.writeAsVectorFormatV3(table, path, QgsProject.instance()
                                                                    .transformContext(), options)
    if error != QgsVectorFileWriter.WriterError.NoError:
        return message or f"{path} could not be written"
    return None


class LogUnreachable(RuntimeError):
    """The log's database cannot be reached (then neither can units kept in the same database)."""


#: the exception that ends the log's write check when the row went in (see ChangeLogStore.check_writable)
_PROBE_END = "territory_planner: the change log accepts rows"


def _may_create_tables(connection, schema: str) -> list:
    return connection.executeSql(f"SELECT has_schema_privilege({QgsExpression.quotedValue(schema)}, 'CREATE')")


def _insert_and_undo(connection, insert: str) -> None:
    """Run ``insert`` (its names quoted) and undo it in one statement; raises, with _PROBE_END when it went in."""
    connection.executeSql(f"DO $p$ BEGIN {insert}; RAISE EXCEPTION {QgsExpression.quotedValue(_PROBE_END)}; END $p$")


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


def _append_to_geopackage(path: str, rows: list[ChangeRow], measures: list[str], create: bool) -> None:
    """Append ``rows`` to the log table of GeoPackage ``path`` in one transaction (the table, and
    the file when ``create``, made first). Raises ``RuntimeError`` saying why not."""
    from osgeo import gdal, ogr

    def failed(what: str) -> RuntimeError:
        return RuntimeError(f"the change log {path} ({TABLE}) could not be {what}: "
                            f"{gdal.GetLastErrorMsg() or 'unknown error'}")

    gdal.ErrorReset()
    source = ogr.GetDriverByName("GPKG").CreateDataSource(path) if create else ogr.Open(path, 1)
    if source is None:
        raise failed("opened")
    try:
        table = source.GetLayerByName(TABLE) or source.CreateLayer(TABLE, geom_type=ogr.wkbNone)
        if table is None:
            raise failed("created")
        definition = table.GetLayerDefn()
        present = {definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())}
        for name in [*COLUMNS, *measures]:
            if name not in present and table.CreateField(
                    ogr.FieldDefn(name, ogr.OFTString if name in COLUMNS else ogr.OFTReal)) != 0:
                raise failed("given the column " + name)
        table.StartTransaction()
        for row in rows:
            feature = ogr.Feature(table.GetLayerDefn())
            for name in COLUMNS:
                value = getattr(row, name)
                if value is not None:
                    feature.SetField(name, str(value))
            for name, value in row.workloads.items():
                feature.SetField(name, float(value))
            if table.CreateFeature(feature) != 0:
                table.RollbackTransaction()
                raise failed("written")
        if table.CommitTransaction() != 0:
            raise failed("written")
    finally:
        source = None  # noqa: F841 - closes the file


@dataclass
class Step:
    """One edit the panel made, as the undo stack holds it: ``position`` is the stack's index once
    the edit command ended; ``moves`` {fid: (from, to)} the units it moved."""

    position: int
    action: str
    moves: dict
    notes: dict = field(default_factory=dict)


class ChangeRecorder(QObject):
    """Records the committed territory changes of one layer into its :class:`ChangeLogStore`.

    The panel tells each edit (:meth:`note`), with the territory every unit came from; at the save
    each unit gets one row per edit still on the undo stack that moved it (a build then a paint of
    the same county before one save: two rows, each with its *from*), or, when the edits do not
    explain the change (the attribute table, the field calculator), one "table edit" row from the
    saved value. Scenario notes (:func:`note_scenario`) become one row each, and the copy that made
    a new scenario gives no per-unit rows. ``unit_name_field`` names units in the log (see
    :func:`unit_label_field`).

    The accounts' overrides are logged the same way: ``layer`` is then the accounts layer and
    ``territory_field`` its override field, ``store`` the units' log, ``territory_of(fid, value)``
    the account's territory when its override is ``value`` (its unit's when empty), and
    ``name_of(fid)`` its name; the moves the panel notes are then territories, not override values.
    """

    def __init__(self, layer: QgsVectorLayer, territory_field: str, measures: list[str],
                 unit_name_field: str = "", parent: QObject | None = None, store: ChangeLogStore | None = None,
                 territory_of=None, name_of=None):
        super().__init__(parent)
        self.layer = layer
        self.territory_field = territory_field
        self.measures = list(measures)
        self.unit_name_field = unit_label_field(layer, unit_name_field)
        self.store = store if store is not None else ChangeLogStore.for_layer(layer)
        self.territory_of = territory_of
        self.name_of = name_of
        #: the panel's edits since the last save, oldest first
        self.steps: list[Step] = []
        self.error: str | None = None
        #: rows of saved edits that could not be written to the log yet; written with the next save
        self.backlog: list[ChangeRow] = []
        #: ``refuse(reason) -> bool``: holds this save back when the log cannot be written (False: it could not)
        self.refuse = None
        self._written_this_save = False
        self._pending: dict[int, tuple] = {}
        self._notes: list[dict] = []
        self._links = SignalLinks([
            (layer.beforeCommitChanges, self._before_commit),
            (layer.committedAttributeValuesChanges, self._committed),
            (layer.afterRollBack, self._forget),
            (layer.afterCommitChanges, self._after_commit),
        ])

    def detach(self) -> None:
        self._links.cut()

    def note(self, moves: dict, action: str, notes: dict[int, str] | None = None) -> None:
        """The panel changed units by ``action``: ``moves`` {fid: (from, to)}, in the edit command
        that now ends at the undo stack's current index; ``notes`` (fid → text) say why."""
        position = self.layer.undoStack().index()
        # an edit made after undoing others replaces them on the stack: they can never come back
        self.steps = [step for step in self.steps if step.position < position]
        self.steps.append(Step(position, action, {int(fid): move for fid, move in moves.items()},
                               {int(fid): text for fid, text in (notes or {}).items()}))

    def _forget(self, *_args) -> None:
        self.steps.clear()
        self._pending.clear()
        self.layer.removeCustomProperty(NOTES_PROPERTY)

    def _moves_of(self, fid: int) -> list[tuple]:
        """(action, from, to) of every edit still on the undo stack that moved ``fid``, oldest first."""
        done = self.layer.undoStack().index()
        return [(step.action, *step.moves[fid], step.notes.get(fid, "")) for step in self.steps
                if step.position <= done and fid in step.moves]

    def _before_commit(self, *_args) -> None:
        self._pending = {}
        self._notes = scenario_notes(self.layer)
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
        # a scenario made in this session: its units start from the scenario it copied, not from empty
        copied_from = next((note["copy_of"] for note in self._notes
                            if note.get("scenario") == self.territory_field and note.get("copy_of")), "")
        if copied_from and self.layer.fields().lookupField(copied_from) < 0:
            copied_from = ""
        if saved_index >= 0 and not copied_from:  # else a new field: all were empty
            old = read_saved_values(provider, fids, saved_index)
        names_wanted = [n for n in [self.unit_name_field, copied_from, *self.measures] if n]
        request = QgsFeatureRequest().setFilterFids(fids).setFlags(QgsFeatureRequest.Flag.NoGeometry)
        request.setSubsetOfAttributes(names_wanted + [self.territory_field], self.layer.fields())
        for feature in self.layer.getFeatures(request):
            fid = int(feature.id())
            before = text_or_none(feature[copied_from] if copied_from else old.get(fid))
            after = text_or_none(feature[self.territory_field])
            moves = self._moves_of(fid)
            if copied_from and moves:
                before = moves[0][1]  # the copy gave the unit the territory its first edit moved it from
            if before == after:
                continue
            if self.territory_of is not None:
                before, after = self.territory_of(fid, before), self.territory_of(fid, after)
            if self.name_of is not None:
                name = self.name_of(fid)
            else:
                name = text_or_none(feature[self.unit_name_field]) if self.unit_name_field else None
            workloads = {}
            for measure in self.measures:
                value = feature[measure]
                workloads[measure] = 0.0 if is_missing(value) else float(value)
            if not (moves and moves[0][1] == before and moves[-1][2] == after):
                moves = [(moves[-1][0], before, after, moves[-1][3]) if moves else (TABLE_EDIT, before, after, "")]
            self._pending[fid] = (moves, name or str(fid), workloads)
        self._refuse_unless_writable()

    def _refuse_unless_writable(self) -> None:
        """Hold the save back when its rows could not be logged: the log is written at the save or
        the save does not happen."""
        if not (self._pending or self._notes or self.backlog) or self.store is None or self.refuse is None:
            return
        try:
            self.store.check_writable()
            return
        except LogUnreachable as error:
            if self.layer.providerType() == self.store.provider:
                return  # the units are in the same database: QGIS's save fails by itself and keeps the edits
            reason = str(error)
        except Exception as error:  # noqa: BLE001 - any failure to reach or write the log refuses the save
            reason = str(error)
        done = self.layer.undoStack().index()
        if not self.refuse(reason):
            return
        self._pending, self._notes = {}, []
        # the held-back edits come back as one edit command (index 1): the panel's edits are all in it
        self.steps = [step for step in self.steps if step.position <= done]
        for step in self.steps:
            step.position = 1

    def _after_commit(self) -> None:
        # a save without territory changes still writes what an earlier failed log write left
        if (self.backlog or self._notes) and not self._written_this_save:
            self.write(self._note_rows())
        self._notes = []

    def _note_rows(self) -> list[ChangeRow]:
        self.layer.removeCustomProperty(NOTES_PROPERTY)
        now, user = local_now(), current_user()
        return [ChangeRow(now, user, note.get("scenario", ""), note.get("action", ""), None, None, None,
                          note=note.get("note")) for note in self._notes]

    def _committed(self, layer_id: str, changes) -> None:
        if layer_id != self.layer.id() or self.store is None or not (self._pending or self._notes):
            return
        self._written_this_save = True
        index = self.layer.fields().lookupField(self.territory_field)
        committed = {int(fid) for fid, values in changes.items() if index in values}
        now = local_now()
        user = current_user()
        rows = self._note_rows()
        for fid, (moves, name, workloads) in sorted(self._pending.items()):
            if fid not in committed:
                continue
            for action, before, after, note in moves:
                rows.append(ChangeRow(now, user, self.territory_field, action, name, before, after, workloads, note))
        self._pending = {}
        self._notes = []
        self.steps.clear()
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
