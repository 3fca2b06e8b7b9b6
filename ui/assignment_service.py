"""Every change the panel makes to a plan goes through here.

The service binds to one layer and its territory field. All edits go through the layer's edit
buffer, one ``beginEditCommand``/``endEditCommand`` per user action, so QGIS's own undo/redo,
save and rollback work and nothing reaches the data source until the user saves.

The per-territory figures live in the plan ledger (``core.plan.ledger``), read from the layer by
``ui/plan_reading.py`` (the toolbox's rules: a workload that is empty or invalid is reported, never
counted as 0). The layer's own changes (our edits, undo/redo, edits made elsewhere, e.g. in the
attribute table) reach the ledger through ``ui/layer_changes.py``; once the undo stack settles, the
service has the pieces of the territories that changed counted again and says which figures changed.

Territories are known by name (the field's value as text). Their order and their locks belong to
the plan (``ui/territory_list.py``, whose changes travel on the same undo stack); their names, reps
and colours to the territory table and the map (``ui/territory_identity.py``).
"""

from __future__ import annotations

import itertools

import numpy as np
from qgis.core import Qgis, QgsFeatureRequest, QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import QObject, pyqtSignal

from ..core.plan.ledger import PreparedUnits, TerritoryLedger, TerritoryList, prepare_units
from ..i18n import tr
from ..layers.edit_checks import plan_problem, start_editing
from ..layers.save_guard import CANCEL, LOG_TAG
from ..layers.values import natural_key
from .layer_changes import LayerChanges
from .plan_index import PlanIndex
from .plan_reading import PlanColumns, read_plan, unit_measures, unit_request
from .plan_saving import PlanSaving
from .preview import Preview, applied_message, make_preview
from .settings import PlanSettings
from .territory_identity import TerritoryIdentity
from .territory_list import TerritoryListCommand

__all__ = ["LOG_TAG", "AssignmentService"]

_REVISIONS = itertools.count(1)
#: the plan settings :meth:`AssignmentService.change_plan` changes without reading the layer again
PLAN_SETTINGS_IN_PLACE = ("tolerance", "tolerances", "time_limit", "territory_count", "keep_style", "network_layer",
                          "scenarios", "baseline")


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
        #: what the service hears from the bound layer (None while unbound)
        self.layer_changes: LayerChanges | None = None
        #: the save guard and change log of the bound layer
        self.saving: PlanSaving | None = None
        #: ``chooser(conflicts, can_cancel)`` → "mine", "theirs" or "cancel" (plugin.py: a dialog); None cancels
        self.conflict_chooser = None
        self.preview: Preview | None = None
        #: the map view shown instead of the territory colours (``ui/thematic_view.py``), when one is
        self.theme = None
        self._clear_state()

    def _clear_state(self) -> None:
        self.measures: list[str] = []
        #: the measures that are the units' own fields (the others are the accounts')
        self.own_measures: list[str] = []
        #: the plan ledger: territory list, locks, per-territory figures and pieces, fed by the layer's changes
        self.ledger = TerritoryLedger([], np.zeros((0, 1)))
        #: the territories' names, reps and colours (the territory table's rows, the map's colours)
        self.identity = TerritoryIdentity(self.project, self.plan)
        self.positions: np.ndarray | None = None
        self.raw_adjacency = None
        self.units = None
        #: changes whenever the plan's data change (edits, undo, reload); never repeats
        self.revision = next(_REVISIONS)
        #: the workload index (one more measure, last) and the fields it is made of
        self.index = PlanIndex("", None)
        #: where the plan's fields are in the layer
        self.columns = PlanColumns()

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
    #: the territory table's rows by code (names, reps, colours, locks), when the plan has one
    table_rows = property(lambda self: self.identity.rows)
    colours = property(lambda self: self.identity.colours)
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
        self.identity = TerritoryIdentity(self.project, plan)
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
        self.layer_changes = LayerChanges(self, layer, self.project)
        self.saving.log_changes(self.own_measures)
        self.planChanged.emit()
        if self.active not in self.territories.names:
            self.set_active(self.territories.names[0] if self.territories.names else None)
        return True

    def close(self) -> None:
        """Let go of the layer and the project (before the plugin unloads)."""
        self.unbind()

    def unbind(self, emit: bool = True) -> None:
        if self.layer_changes is not None:
            self.layer_changes.cut()
            self.layer_changes = None
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

    def let_go(self, text: str, level=None) -> None:
        """Unbind, and tell the user why (a field of the plan or the layer itself is gone)."""
        self.unbind()
        self.warn(text, level)

    def _load(self) -> None:
        """Read ids, territories, workloads, reps and locks of every unit (no geometry)."""
        units = self.units
        read = read_plan(self.layer, self.plan, self.identity, self.saving)
        for problem in read.problems:
            self.warn(problem)
        self.index, self.columns = read.index, read.columns
        self.own_measures, self.measures = read.own_measures, read.measures
        # neighbours of the previous read no longer apply (set again below when the units are the same)
        self.ledger = read.ledger
        self.units = self.raw_adjacency = self.positions = None
        self._remember_list()
        self.new_revision()
        self.set_units(units, emit=False)

    def unit_request(self) -> QgsFeatureRequest:
        """The features that are units of this plan: all, or those matching the scenario's filter."""
        return unit_request(self.plan)

    def reload(self) -> None:
        """Read the layer again (after rollback, or features added or deleted)."""
        if not self.is_bound or not self.layer_changes.check_fields():
            return
        try:
            self._load()
        except ValueError as error:
            self.let_go(str(error))
            return
        self.planChanged.emit()
        self.restyle()

    # -- neighbours ------------------------------------------------------------------------------
    def set_units(self, units, emit: bool = True) -> bool:
        """Take the units read by ``layers.units.read_units`` (neighbours, positions).

        Returns False (and keeps figures without contiguity) when they no longer match the layer.
        """
        return self.is_bound and self.adopt_units(prepare_units(units, self.fids), emit)

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

    # -- the territory table: names, reps, colours by code (``ui/territory_identity.py``) ----------
    def table(self) -> QgsVectorLayer | None:
        """The plan's territory table (a layer of the project), None when it has none."""
        return self.identity.table()

    def display_name(self, code: str | None) -> str | None:
        """What people call territory ``code``: its name in the territory table, else the code."""
        return self.identity.display_name(code)

    def read_table(self) -> None:
        """Read the territory table again (after a rename or reps were written to it)."""
        if not self.is_bound:
            return
        problem = self.identity.read()
        if problem is not None:
            self.warn(problem)
        self.territoriesChanged.emit()
        self.restyle()  # the legend names the territories

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
        """Whether the bound layer is in editing mode for an edit (started when it was not); else says why."""
        problem = start_editing(self.layer) if self.is_bound else tr("Choose a layer and a territory field first.")
        if problem is not None:
            self.warn(problem)
        return problem is None

    @property
    def integer_field(self) -> bool:
        """Whether the territory field holds whole numbers (territory names are then numbers too)."""
        return self.columns.integer_territory

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
            value_of, field = self.columns.territory_value, self.columns.territory
            for i, name in changes:
                old = value_of(self.registry[self.labels[i]])
                layer.changeAttributeValue(int(self.fids[i]), field, value_of(name), old)
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

    # -- keeping figures in step with the layer (``ui/layer_changes.py`` hears its changes) ------------
    def new_revision(self) -> None:
        """The plan's data changed (an edit, undo or redo, a new read): a proposal made before no
        longer applies."""
        self.revision = next(_REVISIONS)

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
        if self.layer_changes is not None:
            self.layer_changes.report_bad_workloads()
        if self.preview is not None and self.preview.revision != self.revision:
            self.discard_preview()  # made for a plan that no longer exists

    def restyle(self) -> None:
        """Colour the layer by territory, neighbours clearly apart, unassigned units hatched (unless
        the user chose to keep the layer's own style; the table still shows each colour)."""
        if not self.is_bound:
            return
        if self.theme is not None and self.theme.paint():
            return
        names = list(self.territories.names)
        self.identity.paint(self.layer, names, [self.columns.territory_value(name) for name in names],
                            self.ledger.plan_labels(), self.adjacency)

    # -- preview before apply ----------------------------------------------------------------------
    def propose(self, units: np.ndarray, names: list, title: str, territory_list: list | None = None,
                action: str = "build", notes: list | None = None) -> Preview | None:
        """Hold a proposed change (unit ``units[i]`` to territory ``names[i]``) for the user to apply
        or discard; nothing changes on the layer until :meth:`apply_preview`."""
        if not self.is_bound:
            return None
        preview = make_preview(title, action, self.ledger, units, names, territory_list, bool(self.measures),
                               self.measure_names, self.plan.tolerance_fractions(), self.revision)
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
