"""Every change the panel makes to a plan goes through here.

The service binds to one layer and its territory field. All edits go through the layer's edit
buffer, one ``beginEditCommand``/``endEditCommand`` per user action, so QGIS's own undo/redo,
save and rollback work and nothing reaches the data source until the user saves.

The per-territory figures live in the plan ledger (``core.plan.ledger``): the service listens to the
layer's ``attributeValueChanged`` (emitted for our edits, for undo/redo and for edits made
elsewhere, e.g. in the attribute table), hands each change to the ledger, and once the undo stack
settles has the pieces of the territories that changed counted again and says which figures changed.
The attributes are read by ``layers.plan_reader``, the toolbox's rules: a workload that is empty or
invalid is reported, never counted as 0.

Territories are known by name (the field's value as text). Their order and their locks belong to
the plan (``ui/territory_list.py``, whose changes travel on the same undo stack).
"""

from __future__ import annotations

import itertools

import numpy as np
from qgis.core import Qgis, QgsFeatureRequest, QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import QObject, QTimer, pyqtSignal

from ..core.plan.ledger import PreparedUnits, TerritoryLedger, TerritoryList, prepare_units
from ..i18n import tr
from ..layers.edit_checks import editing_problem, is_integer_field, plan_problem
from ..layers.plan_reader import UnitDataError, read_plan_attributes, workload_problem, workload_value
from ..layers.plan_table import TABLE_OF, add_missing_rows
from ..layers.save_guard import CANCEL, LOG_TAG
from ..layers.signal_links import SignalLinks
from ..layers.style import TerritoryColours
from ..layers.territory_table import (
    adjacency_pairs,
    code_column,
    display_name,
    plan_table_layer,
    read_plan_table,
)
from ..layers.values import lock_value, natural_key, text_or_none
from .plan_index import PlanIndex
from .plan_saving import PlanSaving
from .preview import Preview, applied_message, make_preview
from .settings import PlanSettings
from .territory_list import TerritoryListCommand, plan_territory_list

__all__ = ["LOG_TAG", "AssignmentService"]

_REVISIONS = itertools.count(1)
#: the plan settings :meth:`AssignmentService.change_plan` changes without reading the layer again
PLAN_SETTINGS_IN_PLACE = ("tolerance", "tolerances", "time_limit", "territory_count", "keep_style", "network_layer",
                          "scenarios", "baseline")


def unit_measures(layer: QgsVectorLayer, plan: PlanSettings) -> list[str]:
    """The plan's measures that are the units' own: with an accounts layer, a measure the units do
    not have is the accounts' (counted by ``ui.account_binding``)."""
    if not plan.accounts_layer:
        return list(plan.measures)
    return [m for m in plan.measures if layer.fields().lookupField(m) >= 0]


class AssignmentService(QObject):
    """Holds the bound plan, makes its edits and keeps its per-territory figures in step."""

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
        self._layer_links = SignalLinks()
        #: the save guard and change log of the bound layer
        self.saving: PlanSaving | None = None
        #: ``chooser(conflicts, can_cancel)`` → "mine", "theirs" or "cancel" (plugin.py: a dialog); None cancels
        self.conflict_chooser = None
        self.preview: Preview | None = None
        #: the territory table's rows by code (names, reps, colours, locks), when the plan has one
        self.table_rows: dict = {}
        #: the map view shown instead of the territory colours (``ui/thematic_view.py``), when one is
        self.theme = None
        self._clear_state()
        self._project_links = SignalLinks([(self.project.layersWillBeRemoved, self._on_layers_removed)])

    def _clear_state(self) -> None:
        self.measures: list[str] = []
        #: the measures that are the units' own fields (the others are the accounts')
        self.own_measures: list[str] = []
        #: the plan ledger: territory list, locks, per-territory figures and pieces, fed by the layer's changes
        self.ledger = TerritoryLedger([], np.zeros((0, 1)))
        self.colours = TerritoryColours()
        self.positions: np.ndarray | None = None
        self.raw_adjacency = None
        self.units = None
        #: changes whenever the plan's data change (edits, undo, reload); never repeats
        self.revision = next(_REVISIONS)
        #: (fid, measure, value) of workloads typed empty or invalid since the last settle
        self._bad_workloads: list[tuple[int, int, object]] = []
        self._field_index = -1
        self._measure_indexes: list[int] = []
        #: the workload index (one more measure, last) and the fields it is made of
        self.index = PlanIndex("", None)
        self._index_indexes: list[int] = []
        self._rep_index = -1
        self._lock_index = -1
        self._integer_field = False
        self._reload_pending = False

    @property
    def is_bound(self) -> bool:
        return self.layer is not None

    # the ledger's arrays, read by the table, the tasks and the suggestions
    fids = property(lambda self: self.ledger.fids)
    index_of_fid = property(lambda self: self.ledger.index_of_fid)
    labels = property(lambda self: self.ledger.labels)
    registry = property(lambda self: self.ledger.registry)
    registry_index = property(lambda self: self.ledger.registry_index)
    sums = property(lambda self: self.ledger.sums)
    workloads = property(lambda self: self.ledger.workloads)
    territories = property(lambda self: self.ledger.territories)
    #: each territory's number of pieces (registry numbers; −1 while the neighbours are unknown)
    parts = property(lambda self: self.ledger.pieces.parts)
    #: the units' neighbours, islands joined (None until read)
    adjacency = property(lambda self: self.ledger.pieces.adjacency)

    @property
    def measure_names(self) -> list[str]:
        """Names of the balanced measures; "units" (a count) when the plan has none."""
        return list(self.measures) if self.measures else ["units"]

    @property
    def territory_names(self) -> list[str]:
        return list(self.territories.names)

    # -- binding ---------------------------------------------------------------------------------
    def bind(self, layer: QgsVectorLayer, plan: PlanSettings) -> bool:
        """Bind to ``layer`` with ``plan`` (field, measures, locks, territory order).

        Reads the attributes (not the geometries: neighbours come later, see :meth:`set_units`).
        Returns False and emits :attr:`message` when the layer or a field cannot be used.
        """
        problem = plan_problem(layer, plan.territory_field, unit_measures(layer, plan), plan.rep_field,
                               plan.lock_field, plan.filter_expression)
        if problem is not None:
            self.warn(problem)
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
        self.saving = PlanSaving(layer, self.field_name, plan.unit_name_field, self._choose_on_conflict, self)
        self.saving.message.connect(self.message)
        try:
            self._load()
        except ValueError as error:
            self.unbind(emit=False)
            self.warn(str(error))
            self.planChanged.emit()
            return False
        self._layer_links.link([
            (layer.attributeValueChanged, self._on_value_changed),
            (layer.undoStack().indexChanged, self._on_undo_index),
            (layer.afterRollBack, self._schedule_reload),
            (layer.featureAdded, self._schedule_reload),
            (layer.featuresDeleted, self._schedule_reload),
            (layer.updatedFields, self._on_fields_changed),
            (layer.geometryChanged, self._on_geometry_changed),
            (layer.editingStopped, self.settle),
            (layer.afterCommitChanges, self._save_table),
        ])
        self.saving.log_changes(self.own_measures)
        self.planChanged.emit()
        if self.active not in self.territories.names:
            self.set_active(self.territories.names[0] if self.territories.names else None)
        return True

    def close(self) -> None:
        """Let go of the layer and the project (before the plugin unloads)."""
        self._project_links.cut()
        self.unbind()

    def unbind(self, emit: bool = True) -> None:
        self._layer_links.cut()
        self.discard_preview()
        if self.saving is not None:
            self.saving.detach()
            self.saving.deleteLater()
            self.saving = None
        self.layer = None
        self.layer_id = ""
        self.field_name = ""
        self._clear_state()
        if emit:
            self.planChanged.emit()
            self.set_active(None)

    def _lookup_indexes(self) -> None:
        fields = self.layer.fields()
        self._field_index = fields.lookupField(self.field_name)
        # a measure the units do not have is the accounts' (−1 here: the account binding counts it)
        self._measure_indexes = [fields.lookupField(m) for m in self.plan.measures]
        self._index_indexes = [fields.lookupField(m) for m in self.index.fields]
        self._rep_index = fields.lookupField(self.plan.rep_field) if self.plan.rep_field else -1
        self._lock_index = fields.lookupField(self.plan.lock_field) if self.plan.lock_field else -1
        self._integer_field = is_integer_field(self.layer, self._field_index)

    def _load(self) -> None:
        """Read ids, territories, workloads, reps and locks of every unit (no geometry)."""
        units = self.units
        self.index = PlanIndex(self.plan.index_weights, self.layer)
        self._lookup_indexes()
        self.own_measures = unit_measures(self.layer, self.plan)
        own = [(m, i) for m, i in zip(self.plan.measures, self._measure_indexes) if m in self.own_measures]
        columns = own + list(zip(self.index.fields, self._index_indexes))
        read = read_plan_attributes(self.layer, self._field_index, columns, self._rep_index, self._lock_index,
                                    self.unit_request())
        width = len(self.plan.measures)
        if len(own) < width:  # the accounts' measures start at 0 until the accounts are read
            workloads = np.zeros((len(read.fids), width + len(self.index.fields)))
            workloads[:, [k for k, m in enumerate(self.plan.measures) if m in self.own_measures]] = \
                read.workloads[:, :len(own)]
            if self.index.fields:
                workloads[:, width:] = read.workloads[:, len(own):]
            read.workloads = workloads
        n = len(read.fids)
        if self.saving is not None:
            self.saving.remember(read.fids, read.territory_values)
        listed = set(self.plan.locked_units)
        listed_locks = (np.isin(read.fids, np.fromiter(listed, dtype=np.int64, count=len(listed)))
                        if listed else np.zeros(n, dtype=bool))
        self.table_rows, problem = read_plan_table(self.table(), self.field_name)
        if problem is not None:
            self.warn(problem)
        territories = plan_territory_list(self.plan, read.territories, self.table_rows)
        workloads = self.index.workloads(read.workloads, len(self.plan.measures), len(territories.names))
        if self.index.problem is not None:
            self.warn(self.index.problem)
            self.plan.index_weights = ""  # the plan balances what it measures: its tolerances follow
        self.measures = self.index.measures(list(self.plan.measures))
        # neighbours of the previous read no longer apply (set again below when the units match)
        self.ledger = TerritoryLedger(read.territories, workloads, registry=list(territories.names),
                                      rep_values=read.reps, territories=territories, field_locks=read.locked,
                                      listed_locks=listed_locks, fids=read.fids)
        self.units = self.raw_adjacency = self.positions = None
        self._remember_list()
        self.revision = next(_REVISIONS)
        if units is not None and n == len(units.fids) and set(map(int, units.fids)) == set(self.index_of_fid):
            self.set_units(units, emit=False)

    def unit_request(self) -> QgsFeatureRequest:
        """The features that are units of this plan: all, or those matching the scenario's filter."""
        request = QgsFeatureRequest()
        expression = self.plan.filter_expression
        if expression:
            request.setFilterExpression(expression)  # the user's own expression, as typed
        return request

    def _on_fields_changed(self) -> None:
        if not self.is_bound:
            return
        self._lookup_indexes()
        if self._field_index < 0 or any(i < 0 for m, i in zip(self.plan.measures, self._measure_indexes)
                                        if m in self.own_measures) or any(i < 0 for i in self._index_indexes):
            name = self.layer.name()
            self.unbind()
            self.warn(tr("A field of the plan is no longer in “{}” (rolled back or deleted). Choose the "
                         "territory field again.").format(name))

    def _on_geometry_changed(self, *_args) -> None:
        # a reshaped unit may touch other neighbours: read them again
        self.units = None
        self._schedule_reload()

    def _schedule_reload(self, *_args) -> None:
        if self._reload_pending or not self.is_bound:
            return
        self._reload_pending = True
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
            self.warn(str(error))
            return
        self.planChanged.emit()
        self.restyle()

    def _on_layers_removed(self, layer_ids) -> None:
        if self.is_bound and self.layer_id in layer_ids:
            name = self.layer.name()
            self.unbind()
            self.warn(tr("The layer “{}” was removed from the project; the territory panel let go of it.")
                      .format(name), Qgis.MessageLevel.Info)

    # -- neighbours ------------------------------------------------------------------------------
    def set_units(self, units, emit: bool = True) -> bool:
        """Take the units read by ``layers.units.read_units`` (neighbours, positions).

        Returns False (and keeps figures without contiguity) when they no longer match the layer.
        """
        if units is None or not self.is_bound:
            return False
        return self.adopt_units(prepare_units(units, self.fids), emit)

    def adopt_units(self, prepared: PreparedUnits | None, emit: bool = True) -> bool:
        """Take neighbours and positions prepared by ``core.plan.ledger.prepare_units`` (the heavy
        part, which a task does on its worker thread); False when they were prepared for other units."""
        if prepared is None or not self.is_bound:
            return False
        if prepared.fids is not self.fids and not np.array_equal(prepared.fids, self.fids):
            return False
        self.positions = prepared.positions
        self.raw_adjacency = prepared.raw_adjacency
        self.units = prepared.units
        self.ledger.count_pieces(prepared.adjacency, prepared)
        if emit:
            self.unitsReady.emit()
            self.figuresChanged.emit([])
        return True

    # -- figures ---------------------------------------------------------------------------------
    def problem_workloads(self) -> np.ndarray:
        """Workloads as the engine takes them: (n, 0) when the unit count is balanced."""
        return self.workloads if self.measures else np.zeros((len(self.fids), 0))

    def out_of_tolerance(self, name: str | None) -> bool:
        """Whether some measure of territory ``name`` is outside its tolerance."""
        return self.ledger.out_of_tolerance(name, self.plan.tolerance_fractions())

    def set_units_locked(self, fids, locked: bool) -> int:
        """Lock (or unlock) single units; the list is saved with the project. Units locked by the
        lock field stay locked."""
        indexes = [self.index_of_fid[int(f)] for f in fids if int(f) in self.index_of_fid]
        if not indexes:
            return 0
        changed = self.ledger.lock_units(indexes, locked)
        self.plan.locked_units = self.fids[self.ledger.listed_locks].tolist()
        self.figuresChanged.emit([self.registry[self.labels[i]] for i in indexes])
        self.territoriesChanged.emit()
        return changed

    # -- the territory table: names, reps, colours by code -------------------------------------------
    def table(self) -> QgsVectorLayer | None:
        """The plan's territory table (a layer of the project), None when it has none."""
        return plan_table_layer(self.project, self.plan.territory_table)

    def display_name(self, code: str | None) -> str | None:
        """What people call territory ``code``: its name in the territory table, else the code."""
        return display_name(self.table_rows, code)

    def read_table(self) -> None:
        """Read the territory table again (after a rename or reps were written to it)."""
        if not self.is_bound:
            return
        self.table_rows, problem = read_plan_table(self.table(), self.field_name)
        if problem is not None:
            self.warn(problem)
        self.territoriesChanged.emit()
        self.restyle()  # the legend names the territories

    def _save_table(self) -> None:
        """The units were saved: the territory table's edits (renames, reps) are saved with them, and
        every territory of the plan gets its row and colour there."""
        table = self.table()
        if table is None:
            return
        if table.isEditable() and table.isModified() and not table.commitChanges():
            self.warn(tr("The territory table “{}” could not be saved: {}").format(
                table.name(), "; ".join(table.commitErrors())))
            return
        code_index = code_column(table.fields(), self.field_name)
        if code_index >= 0 and table.customProperty(TABLE_OF, "") == self.layer_id:
            add_missing_rows(table, code_index, list(self.territories.names), dict(self.colours.by_name))
            self.table_rows, _problem = read_plan_table(table, self.field_name)

    # -- the plan's settings -----------------------------------------------------------------------
    def set_active(self, name: str | None) -> None:
        if name is not None and name not in self.territories.names:
            name = None
        if name != self.active:
            self.active = name
            self.activeChanged.emit(name)

    def change_plan(self, **settings) -> None:
        """Change settings of the plan that need no new read (:data:`PLAN_SETTINGS_IN_PLACE`); a
        change of tolerance has the figures judged again."""
        for name, value in settings.items():
            if name not in PLAN_SETTINGS_IN_PLACE:
                raise AttributeError(f"{name} is not a plan setting the panel changes in place")
            setattr(self.plan, name, value)
        if "tolerance" in settings or "tolerances" in settings:
            self.figuresChanged.emit([])

    # -- edits -----------------------------------------------------------------------------------
    def warn(self, text: str, level=None) -> None:
        self.message.emit(text, Qgis.MessageLevel.Warning if level is None else level)

    def ensure_editing(self) -> bool:
        if not self.is_bound:
            self.warn(tr("Choose a layer and a territory field first."))
            return False
        problem = editing_problem(self.layer)
        if problem is not None:
            self.warn(problem)
            return False
        if not self.layer.isEditable() and not self.layer.startEditing():
            self.warn(tr("QGIS could not start editing “{}”. Check that its data source is writable.")
                      .format(self.layer.name()))
            return False
        return True

    @property
    def integer_field(self) -> bool:
        """Whether the territory field holds whole numbers (territory names are then numbers too)."""
        return self._integer_field

    def _value_for(self, name: str | None):
        if name is None:
            return None
        return int(name) if self._integer_field else name

    def edit(self, text: str, changes: list[tuple[int, str | None]], after: TerritoryList | None = None,
             action: str = "paint", notes: dict[int, str] | None = None) -> bool:
        """Apply ``changes`` (unit index, territory name) and an optional new territory list as ONE
        edit command on the layer's undo stack. ``action`` is what the change log calls it;
        ``notes`` (unit index → text) what it notes beside a unit (a rep's reason)."""
        if not self.ensure_editing():
            return False
        layer = self.layer
        before = self.territories
        # what each unit moves from and to, for the change log (the labels change as the values do)
        moves = {int(self.fids[i]): (self.registry[self.labels[i]], name) for i, name in changes}
        layer.beginEditCommand(text)
        try:
            if after is not None:
                TerritoryListCommand.push(layer.undoStack(), TerritoryListCommand(self, before, after, on_redo=True))
            for i, name in changes:
                old = self._value_for(self.registry[self.labels[i]])
                layer.changeAttributeValue(int(self.fids[i]), self._field_index, self._value_for(name), old)
            if after is not None:
                TerritoryListCommand.push(layer.undoStack(), TerritoryListCommand(self, before, after, on_redo=False))
        except Exception:
            layer.destroyEditCommand()
            raise
        layer.endEditCommand()
        if self.saving is not None and moves:
            self.saving.note(moves, action, {int(self.fids[i]): text for i, text in (notes or {}).items()})
        self.settle()
        layer.triggerRepaint()
        return True

    def assign(self, fids, name: str | None, action: str = "paint") -> int:
        """Put the units ``fids`` into territory ``name`` (None: unassign them). Locked units and
        units already there are left alone. Returns how many units changed territory."""
        if not self.is_bound:
            self.warn(tr("Choose a layer and a territory field first."))
            return 0
        if name is not None and name not in self.territories.names:
            self.warn(tr("There is no territory “{}”. Create it first.").format(name))
            return 0
        if self.ledger.is_locked(name):
            self.warn(tr("Territory “{}” is locked; unlock it to add units.").format(name))
            return 0
        indexes = np.fromiter((self.index_of_fid.get(int(f), -1) for f in fids), dtype=np.int64)
        indexes = np.unique(indexes[indexes >= 0])
        if len(indexes) == 0:
            return 0
        indexes = indexes[self.labels[indexes] != self.registry_index[name]]
        locked = self.ledger.locked_mask(indexes)
        skipped = int(locked.sum())
        indexes = indexes[~locked]
        if skipped:
            self.warn(tr("{} locked unit(s) were left unchanged.").format(skipped), Qgis.MessageLevel.Info)
        if len(indexes) == 0:
            return 0
        text = tr("Assign {} unit(s) to {}").format(len(indexes), name) if name is not None else \
            tr("Unassign {} unit(s)").format(len(indexes))
        if not self.edit(text, [(int(i), name) for i in indexes], action=action):
            return 0
        return len(indexes)

    def apply_labels(self, indexes: np.ndarray, names: list[str | None], text: str,
                     territory_list: list[str] | None = None, action: str = "build") -> int:
        """Write engine results: unit ``indexes[i]`` goes to ``names[i]``; one edit command.
        Locked units are never changed. ``territory_list`` replaces the territory list (build)."""
        free = ~self.ledger.locked_mask(np.asarray(indexes, dtype=np.int64))
        changes = [(int(i), n) for i, n, movable in zip(indexes, names, free)
                   if movable and self.registry[self.labels[i]] != n]
        after = None
        if territory_list is not None and tuple(territory_list) != self.territories.names:
            after = TerritoryList(tuple(territory_list), self.territories.locked & set(territory_list))
        if not changes and after is None:
            return 0
        if not self.edit(text, changes, after, action=action):
            return 0
        return len(changes)

    def apply_list(self, territories: TerritoryList) -> None:
        """Make ``territories`` the plan's territory list (the plan remembers it, and the panel is told,
        when the change settles)."""
        self.ledger.set_list(territories)

    def _remember_list(self) -> None:
        self.plan.territories = list(self.territories.names)
        self.plan.locked_territories = sorted(self.territories.locked)

    # -- keeping figures in step with the layer --------------------------------------------------
    def _on_value_changed(self, fid: int, index: int, value) -> None:
        i = self.index_of_fid.get(fid)
        if i is None:
            return
        if index == self._field_index:
            if self.ledger.move(i, text_or_none(value)) is not None:
                self.revision = next(_REVISIONS)
        elif index in self._measure_indexes and self.measures:
            measure = self._measure_indexes.index(index)
            try:
                number = workload_value(fid, self.measures[measure], value)
            except UnitDataError:
                # the toolbox refuses such a unit; here it is told, and its last workload still counts
                self._bad_workloads.append((fid, measure, value))
                return
            self.ledger.set_workload(i, measure, number)
            self.revision = next(_REVISIONS)
        if index in self._index_indexes:
            # every unit's index depends on the field's total: read the plan again
            self._schedule_reload()
        elif index == self._rep_index:
            self.ledger.set_rep(i, text_or_none(value))
        elif index == self._lock_index:
            self.ledger.set_field_lock(i, lock_value(value)[0])
            self.revision = next(_REVISIONS)

    def _on_undo_index(self, _index: int) -> None:
        # Inside an edit command the stack's index only moves when the command ends, so this
        # runs once per user action, undo or redo.
        self.settle()

    def settle(self) -> None:
        """After a change: new names join the list, pieces are counted again where the change
        touched, and the list, the figures and the map say what changed."""
        if not self.is_bound:
            return
        settled = self.ledger.settle(natural_key)
        if self.index.rescale(self.ledger, len(self.territories.names)):
            settled.totals_changed = not settled.list_changed
        if settled.list_changed:
            self._remember_list()  # values written elsewhere (attribute table…) may have joined it
            if self.active is not None and self.active not in self.territories.names:
                self.set_active(None)
            self.territoriesChanged.emit()
            self.restyle()
        elif settled.totals_changed:
            self.figuresChanged.emit([])
        elif settled.territories:
            self.figuresChanged.emit(settled.territories)
        self._report_bad_workloads()
        if self.preview is not None and self.preview.revision != self.revision:
            self.discard_preview()  # made for a plan that no longer exists

    def _report_bad_workloads(self) -> None:
        """Say which unit got an empty or invalid workload, in which field, and how to fix it."""
        bad, self._bad_workloads = self._bad_workloads, []
        if not bad:
            return
        fid, measure, value = bad[0]
        text = workload_problem(self.layer, self.plan.unit_name_field, fid, self.measures[measure], value)
        text += " " + tr("Until then the panel counts its last valid workload ({:g}), not 0.").format(
            float(self.workloads[self.index_of_fid[fid], measure]))
        if len(bad) > 1:
            text += " " + tr("{} more value(s) of this edit are empty or invalid too.").format(len(bad) - 1)
        self.warn(text)

    def restyle(self) -> None:
        """Colour the layer by territory, neighbours clearly apart, unassigned units hatched (unless
        the user chose to keep the layer's own style; the table still shows each colour)."""
        if not self.is_bound:
            return
        names = list(self.territories.names)
        if self.theme is not None and self.theme.paint():
            return
        self.colours.paint(self.layer, self.field_name, names, [self._value_for(name) for name in names],
                           self.ledger.plan_labels(),
                           adjacency_pairs(self.adjacency) if self.adjacency is not None else None,
                           {code: row.colour for code, row in self.table_rows.items() if row.colour},
                           self.plan.keep_style, {code: row.label for code, row in self.table_rows.items()})

    # -- preview before apply ----------------------------------------------------------------------
    def propose(self, units: np.ndarray, names: list, title: str, territory_list: list | None = None,
                action: str = "build", notes: list | None = None) -> Preview | None:
        """Hold a proposed change (unit ``units[i]`` to territory ``names[i]``) for the user to apply
        or discard; nothing changes on the layer until :meth:`apply_preview`."""
        if not self.is_bound:
            return None
        workloads = self.workloads if self.measures else np.ones((len(self.fids), 1))
        preview = make_preview(title, action, self.ledger.plan_labels(), list(self.territories.names), units, names,
                               territory_list, workloads, self.measure_names, self.plan.tolerance_fractions(),
                               self.revision, self.ledger.locked_mask())
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
            self.warn(tr("The plan was edited after this proposal was made, so it was not applied. Run it again."))
            return 0
        changed = self.apply_labels(preview.units, preview.names, preview.title, preview.territory_list,
                                    action=preview.action)
        outside = [name for name in self.territories.names if self.out_of_tolerance(name)]
        self.message.emit(*applied_message(preview.title, changed, self.ledger.max_deviation(), outside,
                                           self.plan.tolerance_text()))
        return changed

    # -- saving ------------------------------------------------------------------------------------
    def _choose_on_conflict(self, conflicts: list, can_cancel: bool) -> str:
        if self.conflict_chooser is None:
            return CANCEL
        return self.conflict_chooser(conflicts, can_cancel)

    def change_log(self, territory: str | None = None) -> list[dict]:
        """The saved change log of the bound layer (rows into or out of ``territory`` when given)."""
        return self.saving.rows(territory) if self.saving is not None else []
