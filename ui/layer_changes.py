"""Keeping the panel's plan in step with its units layer.

The bound layer tells of every change made to it: a value edited (by the panel, by undo and redo, or
elsewhere, e.g. in the attribute table), features added or deleted, a rollback, fields or geometries
changed, editing stopped, the edits saved; the project tells when the layer is removed.
:class:`LayerChanges` hands each value to the plan ledger by the toolbox's rules (a workload typed
empty or invalid is reported once the change settles, never counted as 0), has the plan read again,
once, when a change reaches further than one value, and has the service let go of the layer when a
field of the plan or the layer itself is gone.
"""

from __future__ import annotations

from qgis.core import Qgis, QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import QTimer

from ..i18n import tr
from ..layers.plan_reader import UnitDataError, workload_problem, workload_value
from ..layers.signal_links import SignalLinks
from ..layers.values import lock_value, text_or_none
from .plan_reading import PlanColumns


class LayerChanges:
    """The bound layer's signals, and what each means for the assignment service's plan."""

    def __init__(self, service, layer: QgsVectorLayer, project: QgsProject):
        self.service = service
        self.layer = layer
        #: (fid, measure, value) of workloads typed empty or invalid since the last settle
        self._bad_workloads: list[tuple[int, int, object]] = []
        self._reload_pending = False
        # Inside an edit command the undo stack's index only moves when the command ends, so the plan
        # settles once per user action, undo or redo.
        settles = (layer.undoStack().indexChanged, layer.editingStopped)
        reads_again = (layer.afterRollBack, layer.featureAdded, layer.featuresDeleted)
        self._links = SignalLinks([(signal, lambda *_args: service.settle()) for signal in settles])
        self._links.link([(signal, self.schedule_reload) for signal in reads_again])
        self._links.link([(layer.attributeValueChanged, self._on_value_changed),
                          (layer.updatedFields, self.check_fields),
                          (layer.geometryChanged, self._on_geometry_changed),
                          (layer.afterCommitChanges, self._on_saved),
                          (project.layersWillBeRemoved, self._on_layers_removed)])

    def cut(self) -> None:
        """Stop listening (the service lets go of the layer)."""
        self._links.cut()

    def _on_value_changed(self, fid: int, index: int, value) -> None:
        service = self.service
        i = service.index_of_fid.get(fid)
        if i is None:
            return
        ledger, columns = service.ledger, service.columns
        if index == columns.territory:
            if ledger.move(i, text_or_none(value)) is not None:
                service.new_revision()
        elif index in columns.measures and service.measures:
            measure = columns.measures.index(index)
            try:
                number = workload_value(fid, service.measures[measure], value)
            except UnitDataError:
                # the toolbox refuses such a unit; here it is told, and its last workload still counts
                self._bad_workloads.append((fid, measure, value))
                return
            ledger.set_workload(i, measure, number)
            service.new_revision()
        if index in columns.index_fields:
            # every unit's index depends on the field's total: read the plan again
            self.schedule_reload()
        elif index == columns.rep:
            ledger.set_rep(i, text_or_none(value))
        elif index == columns.lock:
            ledger.set_field_lock(i, lock_value(value)[0])
            service.new_revision()

    def report_bad_workloads(self) -> None:
        """Say which unit got an empty or invalid workload since the change settled last, in which
        field, and how to fix it."""
        bad, self._bad_workloads = self._bad_workloads, []
        if not bad:
            return
        service = self.service
        fid, measure, value = bad[0]
        text = workload_problem(self.layer, service.plan.unit_name_field, fid, service.measures[measure], value)
        text += " " + tr("Until then the panel counts its last valid workload ({:g}), not 0.").format(
            float(service.workloads[service.index_of_fid[fid], measure]))
        if len(bad) > 1:
            text += " " + tr("{} more value(s) of this edit are empty or invalid too.").format(len(bad) - 1)
        service.warn(text)

    def check_fields(self) -> bool:
        """Look the plan's fields up again (the layer's fields changed); when one is gone (rolled back
        or deleted), have the service let go of the layer. Whether the plan's fields are all there."""
        service = self.service
        if not service.is_bound:
            return False
        service.columns = PlanColumns.look_up(self.layer, service.plan, service.index)
        if service.columns.lost(service.plan, service.own_measures):
            service.let_go(tr("A field of the plan is no longer in “{}” (rolled back or deleted). Choose the "
                              "territory field again.").format(self.layer.name()))
            return False
        return True

    def _on_layers_removed(self, layer_ids) -> None:
        if self.service.is_bound and self.service.layer_id in layer_ids:
            self.service.let_go(tr("The layer “{}” was removed from the project; the territory panel let go "
                                   "of it.").format(self.layer.name()), Qgis.MessageLevel.Info)

    def _on_saved(self) -> None:
        """The units were saved: the territory table is saved with them (``TerritoryIdentity``)."""
        problem = self.service.identity.save_with_units(self.service.layer_id, self.service.territory_names)
        if problem is not None:
            self.service.warn(problem)

    def _on_geometry_changed(self, *_args) -> None:
        # a reshaped unit may touch other neighbours: read them again
        self.service.units = None
        self.schedule_reload()

    def schedule_reload(self, *_args) -> None:
        """Have the plan read again once the event loop runs (one read for a burst of changes)."""
        if self._reload_pending or not self.service.is_bound:
            return
        self._reload_pending = True
        QTimer.singleShot(0, self._reload)

    def _reload(self) -> None:
        self._reload_pending = False
        self.service.reload()
