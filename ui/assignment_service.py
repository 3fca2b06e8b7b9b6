"""Every change the dock makes to a plan goes through here.

The service binds to one layer and its territory field. All edits go through the layer's edit
buffer, one ``beginEditCommand``/``endEditCommand`` per user action, so QGIS's own undo/redo,
save and rollback work and nothing reaches the data source until the user saves.

Per-territory figures (unit count, sum per measure, pieces) are kept incrementally: the service
listens to the layer's ``attributeValueChanged`` (emitted for our edits, for undo/redo and for
edits made elsewhere, e.g. in the attribute table) and moves each unit's workload from its old
territory to its new one, then recounts contiguity for the territories that changed when the
undo stack settles. A full recount (:meth:`AssignmentService.recount`) gives the same figures.

Territories are known by name (the field's value as text). Their order — which gives their
colour — and their locks belong to the plan; changes to that list are pushed onto the layer's
undo stack inside the same edit command as the attribute changes, so undoing a rename, merge,
deletion or new territory restores the list too.
"""

from __future__ import annotations

import dataclasses
import itertools
import weakref
from dataclasses import dataclass

import numpy as np
from qgis.core import (
    Qgis,
    QgsExpression,
    QgsFeatureRequest,
    QgsField,
    QgsMessageLog,
    QgsProject,
    QgsRectangle,
    QgsVectorDataProvider,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QMetaType, QObject, pyqtSignal
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from ..compat import STRING, make_field, undo_command_class
from ..core.graph import components, join_islands, undirected
from ..core.metrics import plan_figures
from ..core.plan.ledger import TerritoryLedger
from ..core.plan.suggestions import Suggestion, suggest_moves
from ..i18n import tr
from ..layers.change_log import ChangeRecorder
from ..layers.save_guard import CANCEL, SaveGuard
from ..layers.style import apply_territory_style
from ..layers.values import is_null, lock_value, natural_key
from .attribute_reader import read_columns
from .preview import Preview, make_preview
from .settings import PlanSettings

LOG_TAG = "Territory Planner"
_REVISIONS = itertools.count(1)
UNASSIGNED = 0  # registry index of "no territory"




def _metatypes(*names: str) -> set[int]:
    scope = getattr(QMetaType, "Type", QMetaType)
    return {int(getattr(scope, name)) for name in names if hasattr(scope, name)}


STRING_TYPES = _metatypes("QString")
INTEGER_TYPES = _metatypes("Int", "UInt", "LongLong", "ULongLong")


def territory_field_problem(layer: QgsVectorLayer, name: str) -> str | None:
    """Why ``name`` cannot hold territories on ``layer`` (None when it can)."""
    index = layer.fields().lookupField(name)
    if index < 0:
        return tr("The layer has no field “{}”. Pick one of its fields or create a new territory field.").format(name)
    kind = int(layer.fields().at(index).type())
    if kind not in STRING_TYPES | INTEGER_TYPES:
        return tr("The field “{}” is a {} field; territory names need a text or whole-number field. "
                  "Pick another field or create a new territory field.").format(
            name, layer.fields().at(index).typeName())
    if layer.fields().fieldOrigin(index) not in (layer.fields().OriginProvider, layer.fields().OriginEdit):
        return tr("The field “{}” is computed (virtual or joined) and cannot be edited. Pick a field of the "
                  "layer itself.").format(name)
    return None


def editing_problem(layer: QgsVectorLayer, add_field: bool = False) -> str | None:
    """Why the dock cannot edit ``layer`` (None when it can)."""
    if layer is None or not layer.isValid():
        return tr("The layer is not valid.")
    if layer.readOnly():
        return tr("The layer “{}” is read-only. Make it editable (Project ▸ Properties ▸ Data Sources) or "
                  "save a copy, e.g. as a GeoPackage, and plan on the copy.").format(layer.name())
    capabilities = layer.dataProvider().capabilities()
    if not capabilities & QgsVectorDataProvider.Capability.ChangeAttributeValues:
        return tr("The data source of “{}” does not allow changing attribute values. Save a copy of the "
                  "layer (e.g. as a GeoPackage) and plan on the copy.").format(layer.name())
    if add_field and not capabilities & QgsVectorDataProvider.Capability.AddAttributes:
        return tr("The data source of “{}” does not allow adding fields. Add the territory field with the "
                  "layer's own tools, or save a copy as a GeoPackage.").format(layer.name())
    return None


def geometry_problem(layer: QgsVectorLayer) -> str | None:
    geometry_type = QgsWkbTypes.geometryType(layer.wkbType())
    if geometry_type not in (QgsWkbTypes.GeometryType.PolygonGeometry, QgsWkbTypes.GeometryType.PointGeometry):
        return tr("Territories are painted on polygon or point layers; “{}” has {} geometries.").format(
            layer.name(), QgsWkbTypes.geometryDisplayString(geometry_type))
    return None


@dataclass(frozen=True)
class TerritoryList:
    """The plan's territories in order, and which of them are locked."""

    names: tuple[str, ...]
    locked: frozenset[str]


QUndoCommand = undo_command_class()


class _ListCommand(QUndoCommand):
    """Changes the plan's territory list as part of a layer edit command.

    Two of these bracket the attribute changes of one action: the first applies the new list on
    redo, the last restores the old list on undo, so while attribute values change the list
    always already holds the names they move to.
    """

    # The undo stack owns the C++ command, but its Python half (with our undo/redo) must be kept
    # alive by Python, or the stack would call QUndoCommand's empty methods.
    _alive: list[_ListCommand] = []

    @classmethod
    def push(cls, stack, command: _ListCommand) -> None:
        cls._alive = [c for c in cls._alive if not sip.isdeleted(c)]
        cls._alive.append(command)
        stack.push(command)

    def __init__(self, service: AssignmentService, before: TerritoryList, after: TerritoryList, on_redo: bool):
        super().__init__(tr("Territory list"))
        self._service = weakref.ref(service)
        self._layer_id = service.layer_id
        self._field = service.field_name
        self.before, self.after, self.on_redo = before, after, on_redo

    def _target(self) -> AssignmentService | None:
        service = self._service()
        if service is None or service.layer_id != self._layer_id or service.field_name != self._field:
            return None
        return service

    def redo(self) -> None:
        service = self._target()
        if self.on_redo and service is not None:
            service._set_list(self.after)

    def undo(self) -> None:
        service = self._target()
        if not self.on_redo and service is not None:
            service._set_list(self.before)


@dataclass
class PreparedUnits:
    """Neighbours and positions of a plan's units in the service's numbering (see prepare_units)."""

    units: object  # what layers.units.read_units returned
    fids: np.ndarray  # the service's feature ids they were prepared for
    positions: np.ndarray
    raw_adjacency: sparse.csr_matrix
    adjacency: sparse.csr_matrix  # islands joined to their nearest unit
    #: the territory (registry number) of each unit when the read started, and the pieces counted on it
    labels: np.ndarray | None = None
    parts: np.ndarray | None = None
    strays: dict = dataclasses.field(default_factory=dict)


def territory_pieces(adjacency: sparse.csr_matrix, labels: np.ndarray, size: int,
                     order: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """The pieces of every territory at once: the components of the graph of neighbours in the same
    territory, counted per territory (one pass over the neighbours, not one per territory); and the
    units outside each territory's largest piece (the first of equal ones, as a territory's own count
    numbers them), by territory. ``labels`` are registry numbers below ``size``. ``order`` (e.g. the
    units sorted along x) lets the search go block by block (:func:`core.graph.components`), so that
    a worker thread counting a million units never holds the interpreter long."""
    graph = adjacency.tocoo()
    same = labels[graph.row] == labels[graph.col]
    n = len(labels)
    inside = sparse.csr_matrix((np.ones(int(same.sum())), (graph.row[same], graph.col[same])), shape=(n, n))
    count, component = components(inside, order)
    owner = np.zeros(count, dtype=np.int64)
    owner[component] = labels
    parts = np.bincount(owner, minlength=size)[:size]
    sizes = np.bincount(component, minlength=count)
    order = np.lexsort((np.arange(count), -sizes, owner))
    first = np.ones(count, dtype=bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    main = np.full(max(size, int(owner.max(initial=0)) + 1), -1, dtype=np.int64)
    main[owner[order][first]] = order[first]
    stray = np.flatnonzero((labels != UNASSIGNED) & (component != main[labels]))
    by_territory = np.argsort(labels[stray], kind="stable")
    stray = stray[by_territory]
    keys, starts = np.unique(labels[stray], return_index=True)
    groups = np.split(stray, starts[1:]) if len(stray) else []
    return parts, {int(k): np.sort(g) for k, g in zip(keys.tolist(), groups)}


def prepare_units(units, fids: np.ndarray, labels: np.ndarray | None = None) -> PreparedUnits | None:
    """Put the units read by ``layers.units.read_units`` into the order of ``fids`` (the service's
    units) and join islands, as figures and the engine count them. Touches no Qt object: a task
    runs it on its worker thread. None when the units are not exactly ``fids``."""
    n = len(fids)
    if units is None or len(units.fids) != n:
        return None
    read = np.asarray(units.fids, dtype=np.int64)
    sorter = np.argsort(fids, kind="stable")
    at = np.minimum(np.searchsorted(fids, read, sorter=sorter), max(n - 1, 0)) if n else np.zeros(0, dtype=np.int64)
    order = sorter[at] if n else at
    if not np.array_equal(fids[order], read) or len(np.unique(order)) != n:
        return None
    coo = sparse.coo_matrix(units.adjacency)
    adjacency = sparse.csr_matrix((np.ones(len(coo.row)), (order[coo.row], order[coo.col])), shape=(n, n))
    positions = np.zeros((n, 2))
    positions[order] = units.positions
    raw = undirected(adjacency, n)
    joined = join_islands(raw, positions, in_blocks=True).adjacency
    prepared = PreparedUnits(units=units, fids=fids, positions=positions, raw_adjacency=raw, adjacency=joined)
    if labels is not None and len(labels) == n:
        prepared.labels = labels
        prepared.parts, prepared.strays = territory_pieces(joined, labels, int(labels.max(initial=0)) + 1,
                                                           np.argsort(positions[:, 0], kind="stable"))
    return prepared


class AssignmentService(QObject):
    """Holds the bound plan, makes its edits and keeps its per-territory figures."""

    #: figures of these territories changed (names; None = the unassigned row); all rows when empty
    figuresChanged = pyqtSignal(list)  # noqa: N815 - Qt's naming
    #: the territory list changed (new, rename, merge, delete, order, lock)
    territoriesChanged = pyqtSignal()  # noqa: N815 - Qt's naming
    #: bound to another layer, field or measures, read again, or unbound (territories too)
    planChanged = pyqtSignal()  # noqa: N815 - Qt's naming
    #: the active territory (name or None)
    activeChanged = pyqtSignal(object)  # noqa: N815 - Qt's naming
    #: a message for the user: text, Qgis.MessageLevel
    message = pyqtSignal(str, object)
    #: neighbours are known (contiguity and suggestions available)
    unitsReady = pyqtSignal()  # noqa: N815 - Qt's naming
    #: a proposal waits for Apply or Discard (the Preview), or none does any more (None)
    previewChanged = pyqtSignal(object)  # noqa: N815 - Qt's naming

    def __init__(self, project: QgsProject | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.project = project or QgsProject.instance()
        self.layer: QgsVectorLayer | None = None
        self.layer_id = ""
        self.field_name = ""
        self.plan = PlanSettings()
        self.active: str | None = None
        self._connections: list = []
        self.recorder: ChangeRecorder | None = None
        #: checks every save of the bound layer for units changed by someone else, reports failed saves
        self.guard: SaveGuard | None = None
        #: ``chooser(conflicts, can_cancel)`` → "mine", "theirs" or "cancel" (plugin.py: a dialog); None cancels
        self.conflict_chooser = None
        self.preview: Preview | None = None
        #: the territory table's rows by code (names, reps, colours, locks), when the plan has one
        self.table_rows: dict = {}
        self._network_cache = None
        self._clear_state()
        self.project.layersWillBeRemoved.connect(self._on_layers_removed)

    # -- state -----------------------------------------------------------------------------------
    def _clear_state(self) -> None:
        self.fids = np.zeros(0, dtype=np.int64)
        self.index_of_fid: dict[int, int] = {}
        self.measures: list[str] = []
        #: per-territory bookkeeping (labels, counts, sums, reps): core.plan.ledger, fed by the layer's changes
        self.ledger = TerritoryLedger([], np.zeros((0, 1)))
        self.parts = np.full(1, -1, dtype=np.int64)
        self.territories = TerritoryList((), frozenset())
        self.unit_lock_field = np.zeros(0, dtype=bool)
        self.unit_lock_list = np.zeros(0, dtype=bool)
        self.adjacency: sparse.csr_matrix | None = None
        self.positions: np.ndarray | None = None
        self.raw_adjacency: sparse.csr_matrix | None = None
        self.units = None
        #: changes whenever the plan's data change (edits, undo, reload); never repeats
        self.revision = next(_REVISIONS)
        self._dirty: set[int] = set()
        #: sorted unit indexes of the territories whose pieces were counted lately, kept in step with
        #: the moves (a million-unit layer is not scanned per click); units moved since, by index
        self._members: dict[int, np.ndarray] = {}
        self._moved: list[int] = []
        self._touched: set[int] = set()
        #: unit indexes outside each territory's largest piece (only territories in pieces)
        self._strays: dict[int, np.ndarray] = {}
        self._list_dirty = False
        self._totals_dirty = False
        self._field_index = -1
        self._measure_indexes: list[int] = []
        self._rep_index = -1
        self._lock_index = -1
        self._integer_field = False
        self._reload_pending = False
        self._colours: dict[str, str] = {}  # territory name -> #rrggbb, kept across restyles and renames

    @property
    def is_bound(self) -> bool:
        return self.layer is not None

    # the ledger's arrays, read by the table, the tasks and the suggestions
    labels = property(lambda self: self.ledger.labels)
    registry = property(lambda self: self.ledger.registry)
    registry_index = property(lambda self: self.ledger.registry_index)
    counts = property(lambda self: self.ledger.counts)
    sums = property(lambda self: self.ledger.sums)
    totals = property(lambda self: self.ledger.totals)
    workloads = property(lambda self: self.ledger.workloads)
    reps = property(lambda self: self.ledger.reps)
    rep_values = property(lambda self: self.ledger.rep_values)

    @property
    def measure_names(self) -> list[str]:
        """Names of the balanced measures; "units" (a count) when the plan has none."""
        return list(self.measures) if self.measures else ["units"]

    @property
    def territory_names(self) -> list[str]:
        return list(self.territories.names)

    def is_territory_locked(self, name: str | None) -> bool:
        return name is not None and name in self.territories.locked

    # -- binding ---------------------------------------------------------------------------------
    def bind(self, layer: QgsVectorLayer, plan: PlanSettings) -> bool:
        """Bind to ``layer`` with ``plan`` (field, measures, locks, territory order).

        Reads the attributes (not the geometries: neighbours come later, see :meth:`set_units`).
        Returns False and emits :attr:`message` when the layer or a field cannot be used.
        """
        problem = (geometry_problem(layer) or editing_problem(layer)
                   or territory_field_problem(layer, plan.territory_field))
        if problem is None:
            problem = self._measure_problem(layer, plan)
        if problem is None and plan.filter_expression:
            expression = QgsExpression(plan.filter_expression)  # the user's own expression
            if expression.hasParserError():
                problem = tr("The filter of scenario “{}” is not a valid expression ({}). Fix or clear it.").format(
                    plan.territory_field, expression.parserErrorString())
        if problem is not None:
            self._warn(problem)
            return False
        # neighbours depend on the geometries only: keep them when only fields or measures change
        kept_units = self.units if self.layer_id == layer.id() else None
        self.unbind(emit=False)
        self.units = kept_units
        self.layer = layer
        self.layer_id = layer.id()
        self.field_name = plan.territory_field
        self.plan = plan
        plan.layer_id = layer.id()
        # first of the layer's save listeners: the change log must see the buffer as it resolves conflicts
        self.guard = SaveGuard(layer, self.field_name, plan.unit_name_field, None, self)
        self.guard.chooser = self._choose_on_conflict
        self.guard.message.connect(self.message)
        try:
            self._load()
        except ValueError as error:
            self.unbind(emit=False)
            self._warn(str(error))
            self.planChanged.emit()
            return False
        self._connect(layer)
        self.recorder = ChangeRecorder(layer, self.field_name, self.measures, plan.unit_name_field, self)
        self.guard.store = self.recorder.store
        self.planChanged.emit()
        if self.active not in self.territories.names:
            self.set_active(self.territories.names[0] if self.territories.names else None)
        return True

    def close(self) -> None:
        """Let go of the layer and the project (before the plugin unloads)."""
        try:
            self.project.layersWillBeRemoved.disconnect(self._on_layers_removed)
        except (TypeError, RuntimeError):
            pass
        self.unbind()

    def unbind(self, emit: bool = True) -> None:
        for signal, slot in self._connections:
            try:
                signal.disconnect(slot)
            except (TypeError, RuntimeError):
                pass
        self._connections = []
        self.discard_preview()
        if self.recorder is not None:
            self.recorder.detach()
            self.recorder = None
        if self.guard is not None:
            self.guard.detach()
            self.guard.message.disconnect(self.message)
            self.guard.deleteLater()
            self.guard = None
        self.layer = None
        self.layer_id = ""
        self.field_name = ""
        self._clear_state()
        if emit:
            self.planChanged.emit()
            self.set_active(None)

    def _measure_problem(self, layer: QgsVectorLayer, plan: PlanSettings) -> str | None:
        fields = layer.fields()
        for name in plan.measures:
            index = fields.lookupField(name)
            if index < 0:
                return tr("The balance field “{}” is not in the layer. Pick one of its fields.").format(name)
            if not fields.at(index).isNumeric():
                return tr("The balance field “{}” is not numeric. Choose a numeric field.").format(name)
            if name == plan.territory_field:
                return tr("The territory field cannot also be a balance field.")
        for label, name in ((tr("rep"), plan.rep_field), (tr("lock"), plan.lock_field)):
            if name and fields.lookupField(name) < 0:
                return tr("The {} field “{}” is not in the layer.").format(label, name)
        return None

    def _connect(self, layer: QgsVectorLayer) -> None:
        pairs = [
            (layer.attributeValueChanged, self._on_value_changed),
            (layer.undoStack().indexChanged, self._on_undo_index),
            (layer.afterRollBack, self._schedule_reload),
            (layer.featureAdded, self._schedule_reload),
            (layer.featuresDeleted, self._schedule_reload),
            (layer.updatedFields, self._on_fields_changed),
            (layer.geometryChanged, self._on_geometry_changed),
            (layer.editingStopped, self._flush),
            (layer.afterCommitChanges, self._after_commit),
        ]
        for signal, slot in pairs:
            signal.connect(slot)
        self._connections = pairs

    def _lookup_indexes(self) -> None:
        fields = self.layer.fields()
        self._field_index = fields.lookupField(self.field_name)
        self._measure_indexes = [fields.lookupField(m) for m in self.measures]
        self._rep_index = fields.lookupField(self.plan.rep_field) if self.plan.rep_field else -1
        self._lock_index = fields.lookupField(self.plan.lock_field) if self.plan.lock_field else -1
        if self._field_index >= 0:
            self._integer_field = int(fields.at(self._field_index).type()) in INTEGER_TYPES

    def _load(self) -> None:
        """Read ids, territories, workloads, reps and locks of every feature (no geometry)."""
        layer = self.layer
        units = self.units
        self.measures = list(self.plan.measures)
        self._lookup_indexes()
        columns = [self._field_index] + self._measure_indexes
        columns += [i for i in (self._rep_index, self._lock_index) if i >= 0]
        # one read of the few columns the panel needs (no geometry): straight from a GeoPackage's
        # table when that gives what QGIS would, else through QGIS (see ui/attribute_reader.py)
        fids, raw = read_columns(layer, columns, self.unit_request())
        n = len(fids)
        m = len(self.measures)
        names = self._names_of(raw[0])
        self.fids = np.asarray(fids, dtype=np.int64)
        if self.guard is not None:
            self.guard.remember(self.fids, raw[0])
        self.index_of_fid = dict(zip(fids, range(n)))
        if m:
            workloads = np.column_stack([self._workload_column(name, values)
                                         for name, values in zip(self.measures, raw[1:1 + m])])
        else:
            workloads = np.ones((n, 1))
        extra = iter(raw[1 + m:])
        rep_values = self._names_of(next(extra)) if self._rep_index >= 0 else None
        self.unit_lock_field = (np.fromiter((_truthy(v) for v in next(extra)), dtype=bool, count=n)
                                if self._lock_index >= 0 else np.zeros(n, dtype=bool))
        listed = set(self.plan.locked_units)
        self.unit_lock_list = (np.isin(self.fids, np.fromiter(listed, dtype=np.int64, count=len(listed)))
                               if listed else np.zeros(n, dtype=bool))

        self.table_rows = self._read_table()
        order = [t for t in dict.fromkeys(self.plan.territories) if t]
        present = sorted(set(names) - {None} - set(order), key=_natural_key)
        self.territories = TerritoryList(tuple(order + present),
                                         frozenset(t for t in order + present if t in self.plan.locked_territories
                                                   or (t in self.table_rows and self.table_rows[t].locked)))
        self.ledger = TerritoryLedger(names, workloads, registry=list(self.territories.names), rep_values=rep_values)
        self._members, self._moved, self._touched, self._strays = {}, [], set(), {}
        # neighbours of the previous read no longer apply (set again below when the units match)
        self.units = None
        self.adjacency = self.raw_adjacency = self.positions = None
        self.recount()
        self.plan.territories = list(self.territories.names)
        self.plan.locked_territories = sorted(self.territories.locked)
        self.revision = next(_REVISIONS)
        if units is not None and len(units.fids) == n and set(map(int, units.fids)) == set(self.index_of_fid):
            self.set_units(units, emit=False)

    def unit_request(self) -> QgsFeatureRequest:
        """The features that are units of this plan: all, or those matching the scenario's filter."""
        request = QgsFeatureRequest()
        expression = self.plan.filter_expression
        if expression:
            request.setFilterExpression(expression)  # the user's own expression, as typed
        return request

    def _names_of(self, values: list) -> list:
        """``_name_of`` of every value, computed once per distinct value (a million units hold a few
        thousand territory names)."""
        try:
            distinct = {value: self._name_of(value) for value in set(values)}
        except TypeError:  # an unhashable value (a QVariant NULL): one by one
            return [self._name_of(value) for value in values]
        if any(type(value) is not str and type(value) is not int for value in distinct):
            # 1 and 1.0 (and True) are one dict key but may read differently: one by one
            return [self._name_of(value) for value in values]
        return list(map(distinct.__getitem__, values))

    def _name_of(self, value) -> str | None:
        if type(value) is str:
            return value if value.strip() else None
        if is_null(value):
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value)
        return text if text.strip() else None

    def _workload_column(self, name: str, values: list) -> np.ndarray:
        try:
            column = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            column = None
        if column is None or not np.all(np.isfinite(column)) or (column < 0).any():
            # find the first bad feature and say which it is
            column = np.array([self._workload(int(fid), name, v) for fid, v in zip(self.fids, values)])
        return column

    def _workload(self, fid: int, name: str, value) -> float:
        try:
            number = float(value) if not is_null(value) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise ValueError(tr("Feature {} has no value (NULL) in the balance field “{}”. Fill it in (0 if "
                                "the unit has no workload) or choose other balance fields.").format(fid, name))
        if not number >= 0 or number == float("inf"):
            raise ValueError(tr("Feature {} has a negative or invalid workload ({}) in “{}”. Workloads must "
                                "be zero or more.").format(fid, value, name))
        return number

    def recount(self) -> None:
        """Recount every territory's units, sums, reps and pieces from the labels, with
        ``core.metrics.plan_figures`` (the toolbox's definition)."""
        self.ledger.recount()
        names = self.territories.names
        p = len(names)
        self.parts = np.full(len(self.registry), -1, dtype=np.int64)
        if p and self.adjacency is not None:
            listed = np.array([self.registry_index[name] for name in names], dtype=np.int64)
            figures = plan_figures(self.plan_labels(), self.problem_workloads(), adjacency=self.adjacency,
                                   territory_count=p, join_islands_first=False)
            self.parts[listed] = figures.parts

    def plan_labels(self) -> np.ndarray:
        """Every unit's position in the territory list (the engine's labels); −1 unassigned."""
        return self.ledger.positions(self.territories.names)

    def problem_workloads(self) -> np.ndarray:
        """Workloads as the engine takes them: (n, 0) when the unit count is balanced."""
        return self.workloads if self.measures else np.zeros((len(self.fids), 0))

    # -- neighbours ------------------------------------------------------------------------------
    def set_units(self, units, emit: bool = True) -> bool:
        """Take the units read by ``layers.units.read_units`` (neighbours, positions).

        Returns False (and keeps figures without contiguity) when they no longer match the layer.
        """
        if units is None or not self.is_bound:
            return False
        return self.adopt_units(prepare_units(units, self.fids), emit)

    def adopt_units(self, prepared: PreparedUnits | None, emit: bool = True) -> bool:
        """Take neighbours and positions prepared by :func:`prepare_units` (the heavy part, which a
        task does on its worker thread); False when they were prepared for other units."""
        if prepared is None or not self.is_bound:
            return False
        if prepared.fids is not self.fids and not np.array_equal(prepared.fids, self.fids):
            return False
        self.positions = prepared.positions
        self.raw_adjacency = prepared.raw_adjacency
        self.adjacency = prepared.adjacency
        self.units = prepared.units
        self._update_all_parts(prepared)
        if emit:
            self.unitsReady.emit()
            self.figuresChanged.emit([])
        return True

    def _update_all_parts(self, prepared: PreparedUnits | None = None) -> None:
        """The pieces of every territory at once (see :func:`territory_pieces`); with ``prepared``,
        those counted on the worker thread, recounted only where units moved since."""
        if self.adjacency is None:
            return
        size = len(self.registry)
        labels = self.labels
        if prepared is not None and prepared.labels is not None and len(prepared.labels) == len(labels):
            parts, self._strays = prepared.parts, dict(prepared.strays)
            moved = np.flatnonzero(prepared.labels != labels)
            redo = set(np.unique(prepared.labels[moved]).tolist()) | set(np.unique(labels[moved]).tolist())
        else:
            parts, self._strays = territory_pieces(self.adjacency, labels, size)
            redo = set()
        self.parts = np.asarray(self.parts, dtype=np.int64).copy()
        if len(self.parts) < size:
            self.parts = np.append(self.parts, np.zeros(size - len(self.parts), dtype=np.int64))
        count = min(len(parts), size)
        self.parts[1:count] = parts[1:count]
        redo.update(range(count, size))  # territories named after the snapshot
        self._members, self._moved, self._touched = {}, [], set()
        self._update_parts(sorted(k for k in redo if k != UNASSIGNED))

    def read_units_now(self) -> bool:
        """Read neighbours and positions on this thread (when no background read has)."""
        if not self.is_bound:
            return False
        from ..layers.units import UnitDataError, read_units

        try:
            units = read_units(self.layer, [], self.project.transformContext(), with_adjacency=True,
                               request=self.unit_request())
        except UnitDataError as error:
            self._warn(str(error))
            return False
        return self.set_units(units)

    def max_deviation(self) -> float:
        """Largest |deviation| (a fraction) over territories and measures."""
        names = self.territories.names
        if not names:
            return 0.0
        listed = [self.registry_index[name] for name in names]
        target = self.totals / len(names)
        scale = np.where(target > 0, target, 1.0)
        deviation = np.where(target > 0, (self.sums[listed] - target) / scale, 0.0)
        return float(np.abs(deviation).max()) if deviation.size else 0.0

    def stray_piece_fids(self) -> list[int]:
        """Units of every territory in pieces that lie outside its largest piece (to mark on the map).
        Kept per territory as pieces are counted: no walk over all units."""
        if self.adjacency is None:
            return []
        listed = [self.registry_index[name] for name in self.territories.names]
        parts = [self._strays[k] for k in listed if k in self._strays and self.parts[k] > 1]
        return self.fids[np.concatenate(parts)].tolist() if parts else []

    def noncontiguous(self) -> int:
        """Territories in more than one piece (0 while neighbours are unknown)."""
        listed = [self.registry_index[name] for name in self.territories.names]
        return int((self.parts[listed] > 1).sum()) if listed else 0

    def _members_of(self, k: int) -> np.ndarray:
        """The sorted unit indexes of territory ``k`` (registry number)."""
        if self._moved:
            # bring the remembered territories up to date with the units moved since
            moved = np.unique(np.asarray(self._moved, dtype=np.int64))
            touched, self._moved, self._touched = self._touched, [], set()
            now = self.labels[moved]
            for t in touched & self._members.keys():  # only the territories units left or joined
                members = self._members[t]
                kept = members[~np.isin(members, moved, assume_unique=True)]
                self._members[t] = np.union1d(kept, moved[now == t])
        members = self._members.get(k)
        if members is None:
            if len(self._members) > 64:
                self._members.clear()
            members = self._members[k] = np.flatnonzero(self.labels == k)
        return members

    def _update_parts(self, indexes) -> None:
        if self.adjacency is None:
            return
        adjacency = self.adjacency
        for k in indexes:
            if k == UNASSIGNED or k >= len(self.parts):
                continue
            members = self._members_of(k)
            if len(members) == 0:
                self.parts[k] = 0
                self._strays.pop(k, None)
                continue
            # the neighbours among the territory's own units: its rows, columns looked up in members
            rows = adjacency[members]
            at = np.searchsorted(members, rows.indices)
            inside = members[np.minimum(at, len(members) - 1)] == rows.indices
            row_of = np.repeat(np.arange(len(members)), np.diff(rows.indptr))
            sub = sparse.csr_matrix((np.ones(int(inside.sum())), (row_of[inside], at[inside])),
                                    shape=(len(members), len(members)))
            count, piece = connected_components(sub, directed=False)
            self.parts[k] = int(count)
            if count > 1:
                self._strays[k] = members[piece != np.bincount(piece).argmax()]
            else:
                self._strays.pop(k, None)

    # -- figures for the table -------------------------------------------------------------------
    def territory_index(self, name: str | None) -> int:
        return self.registry_index.get(name, -1)

    def tolerance_vector(self) -> np.ndarray:
        """The tolerance (a fraction) of each balanced measure: a measure's own (TOLERANCES) or the
        plan's; one entry for the unit count when no measure is balanced."""
        if not self.measures:
            return np.array([self.plan.tolerance / 100.0])
        return np.array([self.plan.tolerance_of(m) / 100.0 for m in self.measures])

    def engine_tolerances(self) -> list[float] | None:
        """The per-measure tolerances for the engine (fractions), None when every measure uses the plan's."""
        if not self.measures or not any(m in self.plan.tolerances for m in self.measures):
            return None
        return [float(v) for v in self.tolerance_vector()]

    def out_of_tolerance(self, name: str | None) -> bool:
        """Whether some measure of territory ``name`` is outside its tolerance."""
        deviation = self.figures_of(name).get("deviation")
        if name is None or deviation is None or not len(deviation):
            return False
        return bool((np.abs(deviation) > self.tolerance_vector()[:len(deviation)] + 1e-9).any())

    def tolerance_text(self) -> str:
        """The tolerance as the user set it: "5 %", or "visits 5 %, sales 10 %" when measures differ."""
        if self.engine_tolerances() is None:
            return f"{self.plan.tolerance:g} %"
        return ", ".join(f"{m} {self.plan.tolerance_of(m):g} %" for m in self.measures)

    def targets(self) -> np.ndarray:
        """Each territory's target per measure: an equal share of the layer's total."""
        p = max(len(self.territories.names), 1)
        return np.broadcast_to(self.totals / p, (p, self.workloads.shape[1]))

    def figures_of(self, name: str | None) -> dict:
        """Unit count, sums, deviations (fractions), pieces and rep of one territory."""
        k = self.registry_index.get(name)
        if k is None:
            return {}
        p = max(len(self.territories.names), 1)
        target = self.totals / p
        sums = self.sums[k]
        deviation = np.where(target > 0, (sums - target) / np.where(target > 0, target, 1.0), 0.0)
        return {
            "units": int(self.counts[k]),
            "sums": sums.copy(),
            "targets": target,
            "deviation": deviation if name is not None else np.full_like(deviation, np.nan),
            "parts": int(self.parts[k]) if name is not None else -1,
            "rep": self.rep_of(name),
            "locked": self.is_territory_locked(name),
        }

    def rep_of(self, name: str | None) -> str:
        k = self.registry_index.get(name)
        if k is None or self._rep_index < 0 or not self.reps[k]:
            row = self.table_rows.get(name) if name is not None else None
            return row.rep if row is not None and row.rep else ""
        common = self.reps[k].most_common()
        if len(common) == 1:
            return common[0][0]
        return tr("{} (+{} more)").format(common[0][0], len(common) - 1)

    def territory_of_fid(self, fid: int) -> str | None:
        i = self.index_of_fid.get(int(fid))
        return None if i is None else self.registry[self.labels[i]]

    def fids_of(self, name: str | None) -> list[int]:
        k = self.registry_index.get(name)
        if k is None:
            return []
        return self.fids[self.labels == k].tolist()

    def territory_extent(self, name: str | None) -> QgsRectangle:
        """Bounding box of a territory's units in the layer's CRS (empty when it has none)."""
        extent = QgsRectangle()
        fids = self.fids_of(name)
        if not fids or not self.is_bound:
            return extent
        request = QgsFeatureRequest().setFilterFids(fids).setNoAttributes()
        for feature in self.layer.getFeatures(request):
            if feature.hasGeometry():
                extent.combineExtentWith(feature.geometry().boundingBox())
        return extent

    def locked_mask(self, indexes: np.ndarray | None = None) -> np.ndarray:
        """Units nothing may move: locked units and every unit of a locked territory (of the units
        ``indexes`` only, when given: a click need not look at a million units)."""
        locked_regs = np.zeros(len(self.registry), dtype=bool)
        for name in self.territories.locked:
            k = self.registry_index.get(name)
            if k is not None:
                locked_regs[k] = True
        if indexes is not None:
            return self.unit_lock_field[indexes] | self.unit_lock_list[indexes] | locked_regs[self.labels[indexes]]
        return self.unit_lock_field | self.unit_lock_list | locked_regs[self.labels]

    # -- active territory ------------------------------------------------------------------------
    def set_active(self, name: str | None) -> None:
        if name is not None and name not in self.territories.names:
            name = None
        if name != self.active:
            self.active = name
            self.activeChanged.emit(name)

    # -- edits -----------------------------------------------------------------------------------
    def _warn(self, text: str, level=None) -> None:
        self.message.emit(text, Qgis.MessageLevel.Warning if level is None else level)

    def _ensure_editing(self) -> bool:
        if not self.is_bound:
            self._warn(tr("Choose a layer and a territory field first."))
            return False
        problem = editing_problem(self.layer)
        if problem is not None:
            self._warn(problem)
            return False
        if not self.layer.isEditable() and not self.layer.startEditing():
            self._warn(tr("QGIS could not start editing “{}”. Check that its data source is writable.")
                       .format(self.layer.name()))
            return False
        return True

    def _value_for(self, name: str | None):
        if name is None:
            return None
        return int(name) if self._integer_field else name

    def _valid_name(self, name: str) -> str | None:
        name = (name or "").strip()
        if not name:
            self._warn(tr("Give the territory a name."))
            return None
        if self._integer_field:
            try:
                return str(int(name))
            except ValueError:
                self._warn(tr("The territory field “{}” holds whole numbers; “{}” is not one. Use a number, "
                              "or create a text territory field.").format(self.field_name, name))
                return None
        return name

    def _edit(self, text: str, changes: list[tuple[int, str | None]], after: TerritoryList | None = None,
              action: str = "paint") -> bool:
        """Apply ``changes`` (unit index, territory name) and an optional new territory list as ONE
        edit command on the layer's undo stack. ``action`` is what the change log calls it."""
        if not self._ensure_editing():
            return False
        if self.recorder is not None:
            self.recorder.note((int(self.fids[i]) for i, _ in changes), action)
        layer = self.layer
        before = self.territories
        layer.beginEditCommand(text)
        try:
            if after is not None:
                _ListCommand.push(layer.undoStack(), _ListCommand(self, before, after, on_redo=True))
            for i, name in changes:
                old = self._value_for(self.registry[self.labels[i]])
                layer.changeAttributeValue(int(self.fids[i]), self._field_index, self._value_for(name), old)
            if after is not None:
                _ListCommand.push(layer.undoStack(), _ListCommand(self, before, after, on_redo=False))
        except Exception:
            layer.destroyEditCommand()
            raise
        layer.endEditCommand()
        self._flush()
        layer.triggerRepaint()
        return True

    def assign(self, fids, name: str | None, action: str = "paint") -> int:
        """Put the units ``fids`` into territory ``name`` (None: unassign them). Locked units and
        units already there are left alone. Returns how many units changed territory."""
        if not self.is_bound:
            self._warn(tr("Choose a layer and a territory field first."))
            return 0
        if name is not None and name not in self.territories.names:
            self._warn(tr("There is no territory “{}”. Create it first.").format(name))
            return 0
        if self.is_territory_locked(name):
            self._warn(tr("Territory “{}” is locked; unlock it to add units.").format(name))
            return 0
        indexes = np.fromiter((self.index_of_fid.get(int(f), -1) for f in fids), dtype=np.int64)
        indexes = np.unique(indexes[indexes >= 0])
        if len(indexes) == 0:
            return 0
        k = self.registry_index[name]
        indexes = indexes[self.labels[indexes] != k]
        locked = self.locked_mask(indexes)
        skipped = int(locked.sum())
        indexes = indexes[~locked]
        if skipped:
            self._warn(tr("{} locked unit(s) were left unchanged.").format(skipped), Qgis.MessageLevel.Info)
        if len(indexes) == 0:
            return 0
        text = tr("Assign {} unit(s) to {}").format(len(indexes), name) if name is not None else \
            tr("Unassign {} unit(s)").format(len(indexes))
        if not self._edit(text, [(int(i), name) for i in indexes], action=action):
            return 0
        return len(indexes)

    def assign_selected(self, name: str | None) -> int:
        if not self.is_bound:
            return 0
        selected = self.layer.selectedFeatureIds()
        if not selected:
            self._warn(tr("Select some features of “{}” first (e.g. with QGIS's selection tools).")
                       .format(self.layer.name()), Qgis.MessageLevel.Info)
            return 0
        return self.assign(selected, name)

    def apply_labels(self, indexes: np.ndarray, names: list[str | None], text: str,
                     territory_list: list[str] | None = None, action: str = "build") -> int:
        """Write engine results: unit ``indexes[i]`` goes to ``names[i]``; one edit command.
        Locked units are never changed. ``territory_list`` replaces the territory list (build)."""
        mask = ~self.locked_mask(np.asarray(indexes, dtype=np.int64))
        changes = [(int(i), n) for i, n, free in zip(indexes, names, mask)
                   if free and self.registry[self.labels[i]] != n]
        after = None
        if territory_list is not None and tuple(territory_list) != self.territories.names:
            after = TerritoryList(tuple(territory_list), self.territories.locked & set(territory_list))
        if not changes and after is None:
            return 0
        if not self._edit(text, changes, after, action=action):
            return 0
        return len(changes)

    # -- territories -----------------------------------------------------------------------------
    def new_territory(self, name: str) -> bool:
        name = self._valid_name(name)
        if name is None:
            return False
        if name in self.territories.names:
            self._warn(tr("A territory “{}” already exists. Choose another name.").format(name))
            return False
        after = TerritoryList(self.territories.names + (name,), self.territories.locked)
        if self._edit(tr("New territory {}").format(name), [], after):
            self.set_active(name)
            return True
        return False

    # -- the territory table -------------------------------------------------------------------
    def table_layer(self) -> QgsVectorLayer | None:
        layer = self.project.mapLayer(self.plan.territory_table) if self.plan.territory_table else None
        return layer if isinstance(layer, QgsVectorLayer) and layer.isValid() else None

    def _read_table(self) -> dict:
        layer = self.table_layer()
        if layer is None:
            return {}
        from qgis.core import QgsProcessingException

        from ..layers.territory_table import read_territory_table

        try:
            return read_territory_table(layer, self.field_name)
        except QgsProcessingException as error:
            self._warn(str(error))
            return {}

    # -- travel by road --------------------------------------------------------------------------
    def travel_of(self, name: str | None) -> dict | None:
        """Travel minutes by road within territory ``name`` from its centre unit (the member nearest
        its workload-weighted centre): mean, workload-weighted mean, max, and units off the network.
        None without a road network or before the neighbours (positions) are read."""
        network = self._road_network()
        if network is None or name is None or name not in self.registry_index:
            return None
        from ..core import travel
        from ..core.metrics import combined_weight

        network, snapped = network
        members = np.flatnonzero(self.labels == self.registry_index[name])
        if len(members) == 0:
            return None
        weights = combined_weight(self.problem_workloads()[members])
        centre = members[travel.centre_units(np.zeros(len(members), dtype=np.int64), self.positions[members], 1,
                                             weights)[0]]
        on = snapped.on_network[members]
        minutes = travel.travel_minutes(network, snapped.node[[centre]], snapped.node[members[on]])[0]
        finite = np.isfinite(minutes)
        if not finite.any():
            return {"mean": float("nan"), "weighted": float("nan"), "max": float("nan"),
                    "off_network": int((~on).sum()) + int((~finite).sum()), "centre": int(self.fids[centre])}
        w = weights[on][finite]
        return {"mean": float(minutes[finite].mean()), "max": float(minutes[finite].max()),
                "weighted": float((minutes[finite] * w).sum() / w.sum()) if w.sum() > 0 else float("nan"),
                "off_network": int((~on).sum()) + int((~finite).sum()), "centre": int(self.fids[centre])}

    def _road_network(self):
        layer = self.project.mapLayer(self.plan.network_layer) if self.plan.network_layer else None
        if not isinstance(layer, QgsVectorLayer) or self.units is None or self.positions is None:
            return None
        key = (layer.id(), id(self.units))
        if self._network_cache is not None and self._network_cache[0] == key:
            return self._network_cache[1]
        from ..core import travel
        from ..layers.network import NetworkDataError, NetworkSettings, read_network

        try:
            roads = read_network(layer, self.units, NetworkSettings(), self.project.transformContext(),
                                 keep_roads=False)
            snapped = travel.snap(roads.network, self.positions)
        except (NetworkDataError, travel.NetworkError) as error:
            self._warn(str(error))
            self.plan.network_layer = ""
            return None
        self._network_cache = (key, (roads.network, snapped))
        return self._network_cache[1]

    def display_name(self, code: str | None) -> str | None:
        """What people call territory ``code``: its name in the territory table, else the code."""
        row = self.table_rows.get(code) if code is not None else None
        return row.label if row is not None else code

    def _rename_in_table(self, code: str, new: str) -> bool:
        """A rename with a territory table changes the name, never the code (through the table's edit buffer)."""
        layer = self.table_layer()
        from ..layers.territory_table import code_column

        index = code_column(layer.fields(), self.field_name)
        name_index = layer.fields().lookupField("name")
        if index < 0 or name_index < 0:
            self._warn(tr("The territory table “{}” has no name column to hold the new name.").format(layer.name()))
            return False
        if not layer.isEditable() and not layer.startEditing():
            self._warn(tr("QGIS could not start editing the territory table “{}”.").format(layer.name()))
            return False
        fids = [f.id() for f in layer.getFeatures() if str(f.attribute(index)).strip() == code]
        layer.beginEditCommand(tr("Rename territory {} to {}").format(code, new))
        for fid in fids:
            layer.changeAttributeValue(fid, name_index, new)
        layer.endEditCommand()
        self.table_rows[code].name = new
        self.territoriesChanged.emit()
        return True

    def rename_territory(self, old: str, new: str) -> bool:
        if old in self.table_rows and self.table_layer() is not None:
            new = (new or "").strip()
            if not new or new == self.display_name(old):
                return False
            return self._rename_in_table(old, new)
        new = self._valid_name(new)
        if new is None or old not in self.territories.names:
            return False
        if new == old:
            return False
        if self.is_territory_locked(old):
            self._warn(tr("Territory “{}” is locked; unlock it to rename it.").format(old))
            return False
        if new in self.territories.names:
            self._warn(tr("A territory “{}” already exists. Use Merge to join two territories.").format(new))
            return False
        names = tuple(new if t == old else t for t in self.territories.names)
        locked = frozenset(new if t == old else t for t in self.territories.locked)
        if old in self._colours:  # a renamed territory keeps its colour
            self._colours[new] = self._colours[old]
        k = self.registry_index[old]
        changes = [(int(i), new) for i in np.flatnonzero(self.labels == k)]
        if self._edit(tr("Rename territory {} to {}").format(old, new), changes, TerritoryList(names, locked),
                      action="rename"):
            if self.active == old:
                self.set_active(new)
            return True
        return False

    def merge_territories(self, source: str, target: str) -> bool:
        """Move every unit of ``source`` into ``target`` and drop ``source``."""
        if source == target or source not in self.territories.names or target not in self.territories.names:
            return False
        for name in (source, target):
            if self.is_territory_locked(name):
                self._warn(tr("Territory “{}” is locked; unlock it to merge.").format(name))
                return False
        k = self.registry_index[source]
        members = np.flatnonzero(self.labels == k)
        locked_units = self.locked_mask()[members]
        if locked_units.any():
            self._warn(tr("{} unit(s) of “{}” are locked; unlock them to merge.").format(
                int(locked_units.sum()), source))
            return False
        after = TerritoryList(tuple(t for t in self.territories.names if t != source), self.territories.locked)
        if self._edit(tr("Merge territory {} into {}").format(source, target),
                      [(int(i), target) for i in members], after, action="merge"):
            self.set_active(target)
            return True
        return False

    def delete_territory(self, name: str) -> bool:
        """Drop territory ``name``; its units become unassigned."""
        if name not in self.territories.names:
            return False
        if self.is_territory_locked(name):
            self._warn(tr("Territory “{}” is locked; unlock it to delete it.").format(name))
            return False
        members = np.flatnonzero(self.labels == self.registry_index[name])
        locked_units = self.locked_mask()[members]
        if locked_units.any():
            self._warn(tr("{} unit(s) of “{}” are locked; unlock them to delete it.").format(
                int(locked_units.sum()), name))
            return False
        after = TerritoryList(tuple(t for t in self.territories.names if t != name), self.territories.locked)
        if self._edit(tr("Delete territory {}").format(name), [(int(i), None) for i in members], after,
                      action="delete"):
            if self.active == name:
                self.set_active(after.names[0] if after.names else None)
            return True
        return False

    # -- locks -----------------------------------------------------------------------------------
    def set_territory_locked(self, name: str, locked: bool) -> None:
        if name not in self.territories.names or self.is_territory_locked(name) == locked:
            return
        names = set(self.territories.locked)
        if locked:
            names.add(name)
        else:
            names.discard(name)
        self._set_list(TerritoryList(self.territories.names, frozenset(names)))
        self._flush()

    def set_units_locked(self, fids, locked: bool) -> int:
        """Lock (or unlock) single units; the list is saved with the project. Units locked by the
        lock field stay locked."""
        indexes = [self.index_of_fid[int(f)] for f in fids if int(f) in self.index_of_fid]
        if not indexes:
            return 0
        before = int(self.unit_lock_list.sum())
        self.unit_lock_list[indexes] = locked
        self.plan.locked_units = self.fids[self.unit_lock_list].tolist()
        changed = abs(int(self.unit_lock_list.sum()) - before)
        self.figuresChanged.emit([self.registry[self.labels[i]] for i in indexes])
        self.territoriesChanged.emit()
        return changed

    def is_unit_locked(self, fid: int) -> bool:
        i = self.index_of_fid.get(int(fid))
        return i is not None and bool(self.locked_mask(np.array([i]))[0])

    def set_tolerance(self, percent: float) -> None:
        self.plan.tolerance = float(percent)
        self.figuresChanged.emit([])

    def set_measure_tolerance(self, measure: str, percent: float | None) -> None:
        """Give balance field ``measure`` a tolerance of its own (percent), or None: the plan's."""
        if percent is None:
            self.plan.tolerances.pop(measure, None)
        else:
            self.plan.tolerances[measure] = float(percent)
        self.figuresChanged.emit([])

    def _set_list(self, territories: TerritoryList) -> None:
        for name in territories.names:
            if name not in self.registry_index:
                self.ledger.add_name(name)
                self.parts = np.append(self.parts, 0 if self.adjacency is not None else -1)
        self.territories = territories
        self.plan.territories = list(territories.names)
        self.plan.locked_territories = sorted(territories.locked)
        self._list_dirty = True

    # -- keeping figures in step with the layer --------------------------------------------------
    def _on_value_changed(self, fid: int, index: int, value) -> None:
        i = self.index_of_fid.get(fid)
        if i is None:
            return
        if index == self._field_index:
            name = self._name_of(value)
            if name not in self.registry_index:
                self.parts = np.append(self.parts, -1)
            moved = self.ledger.move(i, name)
            if moved is None:
                return
            self._dirty.update(moved)
            if self._members:
                self._moved.append(i)
                self._touched.update(moved)
            self.revision = next(_REVISIONS)
        elif index in self._measure_indexes and self.measures:
            a = self._measure_indexes.index(index)
            try:
                number = float(value) if not is_null(value) else 0.0
            except (TypeError, ValueError):
                number = 0.0
            self._dirty.add(self.ledger.set_workload(i, a, number))
            self._totals_dirty = True
            self.revision = next(_REVISIONS)
        elif index == self._rep_index:
            self._dirty.add(self.ledger.set_rep(i, self._name_of(value)))
        elif index == self._lock_index:
            self.unit_lock_field[i] = _truthy(value)
            self._dirty.add(int(self.labels[i]))
            self.revision = next(_REVISIONS)

    def _on_undo_index(self, _index: int) -> None:
        # Inside an edit command the stack's index only moves when the command ends, so this
        # runs once per user action, undo or redo.
        self._flush()

    def _flush(self) -> None:
        if not self.is_bound:
            return
        listed = set(self.territories.names)
        strays = [name for k, name in enumerate(self.registry)
                  if name is not None and name not in listed and self.counts[k] > 0]
        if strays:
            # values written elsewhere (attribute table, field calculator) join the plan
            self._set_list(TerritoryList(self.territories.names + tuple(sorted(strays, key=_natural_key)),
                                         self.territories.locked))
        dirty, self._dirty = self._dirty, set()
        self._update_parts(dirty)
        if self._list_dirty:
            self._list_dirty = False
            self._totals_dirty = False
            if self.active is not None and self.active not in self.territories.names:
                self.set_active(None)
            self.territoriesChanged.emit()
            self.restyle()
        elif self._totals_dirty:
            self._totals_dirty = False
            self.figuresChanged.emit([])
        elif dirty:
            self.figuresChanged.emit([self.registry[k] for k in sorted(dirty)])
        if self.preview is not None and self.preview.revision != self.revision:
            self.discard_preview()  # made for a plan that no longer exists

    def restyle(self) -> None:
        """Colour the layer by territory, neighbours clearly apart, unassigned units hatched (unless
        the user chose to keep the layer's own style; the table still shows each colour)."""
        if self.is_bound:
            self._colours = self._territory_colours()
            if self.plan.keep_style:
                return
            values = self._style_values()
            colours = {str(v): self._colours[n] for v, n in zip(values, self.territories.names)}
            apply_territory_style(self.layer, self.field_name, values, colours)

    def territory_colour(self, name: str) -> str | None:
        """Territory ``name``'s colour (#rrggbb) on the map; None before the layer is styled."""
        return self._colours.get(name)

    def _territory_colours(self) -> dict[str, str]:
        """One colour per territory, chosen on the territory adjacency graph as the algorithms do
        (core.plan.colouring). Colours the layer's style already gives a territory (a Build output styled
        from its territory table) or an earlier restyle gave it are kept."""
        from ..core.plan.colouring import assign_colours, territory_neighbours

        names = list(self.territories.names)
        known = dict(self._colours)
        known.update(self._layer_colours())
        # the territory table, when the plan has one, is where colours are kept
        known.update({code: row.colour for code, row in self.table_rows.items() if row.colour})
        keep = {k: known[name] for k, name in enumerate(names) if name in known}
        if self.adjacency is not None and names:
            coo = sparse.triu(self.adjacency, k=1).tocoo()
            neighbours = territory_neighbours(self.plan_labels(), np.column_stack([coo.row, coo.col]), len(names))
        else:
            neighbours = [set() for _ in names]
        return dict(zip(names, assign_colours(neighbours, keep)))

    def _layer_colours(self) -> dict[str, str]:
        renderer = self.layer.renderer() if self.layer is not None else None
        if renderer is None or renderer.type() != "categorizedSymbol" or renderer.classAttribute() != self.field_name:
            return {}
        return {str(c.value()): c.symbol().color().name() for c in renderer.categories()
                if c.value() is not None and str(c.value()) != "" and c.symbol() is not None}

    def _style_values(self) -> list:
        return [self._value_for(name) for name in self.territories.names]

    def _on_fields_changed(self) -> None:
        if not self.is_bound:
            return
        self._lookup_indexes()
        if self._field_index < 0 or any(i < 0 for i in self._measure_indexes):
            name = self.layer.name()
            self.unbind()
            self._warn(tr("A field of the plan is no longer in “{}” (rolled back or deleted). Choose the "
                          "territory field again.").format(name))

    def _on_geometry_changed(self, *_args) -> None:
        # a reshaped unit may touch other neighbours: read them again
        self.units = None
        self._schedule_reload()

    def _schedule_reload(self, *args) -> None:
        if self._reload_pending or not self.is_bound:
            return
        self._reload_pending = True
        from qgis.PyQt.QtCore import QTimer

        QTimer.singleShot(0, self.reload)

    def reload(self) -> None:
        """Read the layer again (after rollback, or features added or deleted)."""
        self._reload_pending = False
        if not self.is_bound:
            return
        self._lookup_indexes()
        if self._field_index < 0:
            return self._on_fields_changed()
        try:
            self._load()
        except ValueError as error:
            self.unbind()
            self._warn(str(error))
            return
        self.planChanged.emit()
        self.restyle()

    def _on_layers_removed(self, layer_ids) -> None:
        if self.is_bound and self.layer_id in layer_ids:
            name = self.layer.name()
            self.unbind()
            self._warn(tr("The layer “{}” was removed from the project; the territory panel let go of it.")
                       .format(name), Qgis.MessageLevel.Info)

    # -- suggestions -----------------------------------------------------------------------------
    def suggestions(self, count: int = 5) -> list[Suggestion]:
        """The best single-unit moves into or out of the active territory (needs neighbours)."""
        if not self.is_bound or self.adjacency is None or self.active is None:
            return []
        names = self.territories.names
        labels = self.plan_labels()
        frozen = [p for p, name in enumerate(names) if name in self.territories.locked]
        listed = [self.registry_index[name] for name in names]
        found = suggest_moves(labels, self.workloads, self.targets(), self.adjacency, names.index(self.active),
                              count=count, movable=~self.locked_mask(), frozen_territories=frozen,
                              sums=self.sums[listed])
        return found

    def propose_suggestion(self, suggestion: Suggestion) -> Preview | None:
        """Preview a suggested single-unit move (apply it with :meth:`apply_preview`)."""
        names = self.territories.names
        fid = int(self.fids[suggestion.unit])
        if self.territory_of_fid(fid) != names[suggestion.source]:
            self._warn(tr("That suggestion is out of date; the unit has moved since."), Qgis.MessageLevel.Info)
            return None
        return self.propose(np.array([suggestion.unit]), [names[suggestion.target]],
                            tr("Move unit {} to {}").format(self.unit_label(suggestion.unit), names[suggestion.target]),
                            action="suggestion")

    def unit_label(self, index: int) -> str:
        """How messages name unit ``index``: its unit-name field value, else its feature id."""
        fid = int(self.fids[index])
        name_field = self.plan.unit_name_field
        if name_field and self.layer is not None and self.layer.fields().lookupField(name_field) >= 0:
            value = self.layer.getFeature(fid)[name_field]
            if not is_null(value) and str(value).strip():
                return str(value)
        return str(fid)

    def apply_suggestion(self, suggestion: Suggestion) -> bool:
        names = self.territories.names
        fid = int(self.fids[suggestion.unit])
        if self.territory_of_fid(fid) != names[suggestion.source]:
            self._warn(tr("That suggestion is out of date; the unit has moved since."), Qgis.MessageLevel.Info)
            return False
        return self.assign([fid], names[suggestion.target], action="suggestion") == 1

    # -- preview before apply ----------------------------------------------------------------------
    def propose(self, units: np.ndarray, names: list, title: str, territory_list: list | None = None,
                action: str = "build", notes: list | None = None) -> Preview | None:
        """Hold a proposed change (unit ``units[i]`` to territory ``names[i]``) for the user to apply
        or discard; nothing changes on the layer until :meth:`apply_preview`."""
        if not self.is_bound:
            return None
        workloads = self.workloads if self.measures else np.ones((len(self.fids), 1))
        preview = make_preview(title, action, self.plan_labels(), list(self.territories.names), units, names,
                               territory_list, workloads, self.measure_names, self.tolerance_vector(),
                               self.revision, self.locked_mask())
        preview.notes = list(notes or [])
        self.preview = preview
        self.previewChanged.emit(preview)
        return preview

    def preview_fids(self) -> list[int]:
        return [int(f) for f in self.fids[self.preview.moved]] if self.preview is not None else []

    def discard_preview(self) -> None:
        if self.preview is not None:
            self.preview = None
            self.previewChanged.emit(None)

    def apply_preview(self) -> int:
        """Apply the held proposal as ONE undoable edit; says which territories stay out of tolerance."""
        preview = self.preview
        if preview is None:
            return 0
        self.discard_preview()
        if preview.revision != self.revision:
            self._warn(tr("The plan was edited after this proposal was made, so it was not applied. Run it again."))
            return 0
        changed = self.apply_labels(preview.units, preview.names, preview.title, preview.territory_list,
                                    action=preview.action)
        outside = [name for name in self.territories.names if self.out_of_tolerance(name)]
        text = tr("{}: {} unit(s) changed territory; worst deviation {:.1f} %.").format(
            preview.title, changed, 100.0 * self.max_deviation())
        if outside:
            self.message.emit(text + " " + tr("Still outside the tolerance ({}): {}.").format(
                self.tolerance_text(), ", ".join(outside)), Qgis.MessageLevel.Warning)
        else:
            self.message.emit(text + " " + tr("Every territory is within tolerance."), Qgis.MessageLevel.Success)
        return changed

    def _choose_on_conflict(self, conflicts: list, can_cancel: bool) -> str:
        if self.conflict_chooser is None:
            return CANCEL
        return self.conflict_chooser(conflicts, can_cancel)

    def _after_commit(self) -> None:
        recorder = self.recorder
        if recorder is not None and recorder.error:
            self._warn(tr("The edits were saved, but the change log could not be written: {} Its rows are kept "
                          "and written with your next save.").format(recorder.error))

    def change_log(self, territory: str | None = None) -> list[dict]:
        """The saved change log of the bound layer (rows into or out of ``territory`` when given)."""
        if self.recorder is None or self.recorder.store is None:
            return []
        return self.recorder.store.rows(territory)

    def log(self, text: str) -> None:
        QgsMessageLog.logMessage(text, LOG_TAG, Qgis.MessageLevel.Info)

    def create_territory_field(self, layer: QgsVectorLayer, name: str) -> bool:
        """Add a text field ``name`` to ``layer`` through its edit buffer (saved with the layer)."""
        name = (name or "").strip()
        problem = geometry_problem(layer) or editing_problem(layer, add_field=True)
        if not name:
            problem = tr("Give the new territory field a name.")
        elif layer.fields().lookupField(name) >= 0:
            problem = tr("The layer already has a field “{}”; pick it, or choose another name.").format(name)
        if problem is not None:
            self._warn(problem)
            return False
        if not layer.isEditable() and not layer.startEditing():
            self._warn(tr("QGIS could not start editing “{}”.").format(layer.name()))
            return False
        layer.beginEditCommand(tr("Add territory field {}").format(name))
        added = layer.addAttribute(self._text_field(layer, name))
        if not added:
            layer.destroyEditCommand()
            self._warn(tr("QGIS could not add the field “{}” to “{}”.").format(name, layer.name()))
            return False
        layer.endEditCommand()
        return True


    @staticmethod
    def _text_field(layer: QgsVectorLayer, name: str) -> QgsField:
        """A text field in one of the provider's own types (PostGIS needs the type's name)."""
        field = make_field(name, STRING, 80)
        texts = [t for t in layer.dataProvider().nativeTypes() if int(t.mType) in STRING_TYPES]

        def rank(native) -> int:
            # variable-length text first: a fixed "char(n)" would pad every name with spaces
            type_name = native.mTypeName.lower()
            for k, wanted in enumerate(("varchar", "character varying", "string", "text")):
                if type_name == wanted:
                    return k
            return 10 if "char" in type_name and "var" not in type_name else 5

        if texts:
            native = min(texts, key=rank)
            field.setTypeName(native.mTypeName)
            if 0 < native.mMaxLen < 80:
                field.setLength(native.mMaxLen)
        return field


def _truthy(value) -> bool:
    """A unit is locked by any lock value but the empty and "unlocked" ones (layers.values.lock_value)."""
    return lock_value(value)[0]


_natural_key = natural_key
