"""Background work for the dock, as QgsTasks in QGIS's task manager.

Each task takes a snapshot on the main thread (arrays, or a feature source for the layer), does
its work in ``run()`` (checking ``isCanceled()``), and hands the result back in ``finished()``
on the main thread. An engine result is written as ONE undoable edit command; a cancelled or
failed task changes nothing, and a task whose layer went away is refused with a message.
"""

from __future__ import annotations

import gc
import time
import traceback
from dataclasses import dataclass, field, replace

import numpy as np
from qgis.core import (
    Qgis,
    QgsFeatureRequest,
    QgsFields,
    QgsMessageLog,
    QgsProject,
    QgsTask,
    QgsVectorLayer,
    QgsVectorLayerFeatureSource,
)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import pyqtSignal

from ..core.plan.ledger import prepare_units
from ..core.problem import Problem, ProblemError
from ..core.progress import Cancelled, Progress
from ..i18n import tr
from ..layers.units import UnitDataError, read_units, unit_frame
from ..layers.values import default_names
from .assignment_service import LOG_TAG, AssignmentService


def is_alive(service) -> bool:
    """Whether ``service`` (a QObject the task reports to) still exists: unloading the plugin, or
    quitting QGIS, deletes it while a task may still be running."""
    return service is not None and not sip.isdeleted(service)


class LayerSnapshot:
    """What ``read_units`` needs from a layer, safe to read from a worker thread: a
    QgsVectorLayerFeatureSource (which includes unsaved edits) and the layer's metadata."""

    def __init__(self, layer: QgsVectorLayer):
        self._source = QgsVectorLayerFeatureSource(layer)
        self._fields = QgsFields(layer.fields())
        self._wkb_type = layer.wkbType()
        self._count = layer.featureCount()
        self._extent = layer.extent()
        self._crs = layer.crs()

    def fields(self) -> QgsFields:
        return self._fields

    def wkbType(self):
        return self._wkb_type

    def featureCount(self) -> int:
        return self._count

    def sourceExtent(self):
        return self._extent

    def sourceCrs(self):
        return self._crs

    def getFeatures(self, request: QgsFeatureRequest | None = None):
        return self._source.getFeatures(request or QgsFeatureRequest())


class _TaskFeedback:
    """The two calls ``read_units`` makes on a feedback, answered by a task."""

    def __init__(self, task: QgsTask):
        self._task = task

    def isCanceled(self) -> bool:
        return self._task.isCanceled()

    def setProgress(self, value: float) -> None:
        self._task.setProgress(value)


def release_in_blocks(items: list, block: int = 20_000) -> None:
    """Empty ``items``, freeing its objects ``block`` at a time.

    Dropping a list of a million geometries is one step for the interpreter: it deletes them all
    without letting another thread run (the panel paused for half a second on a worker thread
    at a million polygons). A block at a time, the main thread gets its turns in between."""
    while items:
        del items[-block:]


class PanelTask(QgsTask):
    """A task of the panel: ``finished()`` hands the result over (:meth:`_hand_over`, on the main
    thread), then calls :attr:`on_finished` whatever the outcome, so the controller knows it is over."""

    def __init__(self, description: str):
        super().__init__(description, QgsTask.Flag.CanCancel)
        #: called on the main thread once the task is over, whatever its outcome
        self.on_finished = None

    def finished(self, result: bool) -> None:
        try:
            self._hand_over(result)
        finally:
            if self.on_finished is not None:
                self.on_finished(self)

    def _hand_over(self, result: bool) -> None:
        raise NotImplementedError


class UnitsTask(PanelTask):
    """Reads the units' neighbours and positions with ``layers.units.read_units``."""

    def __init__(self, service: AssignmentService):
        layer = service.layer
        super().__init__(tr("Reading the neighbours of “{}”").format(layer.name()))
        self.service = service
        self.layer_id = layer.id()
        self.revision = service.revision
        self.snapshot = LayerSnapshot(layer)
        self.request = service.unit_request()
        self.context = QgsProject.instance().transformContext()
        self.units = None
        #: the service's units when the task started; the neighbours are put in their order in run()
        self.fids = service.fids
        #: each unit's territory now: the pieces are counted on it in run(), the panel recounts those that change
        self.labels = service.labels.copy()
        self.prepared = None
        self.error = ""
        self.setDependentLayers([layer])

    def run(self) -> bool:
        try:
            # Python's cycle collector would walk the millions of objects a large layer's reading
            # makes, again and again, holding the interpreter (and so the panel) for seconds each time:
            # off while reading; what the reading leaves behind is freed when it returns.
            collecting = gc.isenabled()
            gc.disable()
            try:
                self.units = read_units(self.snapshot, [], self.context, _TaskFeedback(self), with_adjacency=True,
                                        request=self.request, point_geometries=False)
                if self.units is not None and not self.isCanceled():
                    # the panel needs positions and neighbours, not a geometry object per unit
                    release_in_blocks(self.units.geometries)
                    # the heavy part of taking them over (ordering, islands), off the main thread
                    self.prepared = prepare_units(self.units, self.fids, self.labels)
            finally:
                if collecting:
                    gc.enable()
        except UnitDataError as error:
            self.error = str(error)
            return False
        except Exception:  # noqa: BLE001 - reported in the log, the dock keeps working without contiguity
            self.error = traceback.format_exc()
            return False
        return self.units is not None and not self.isCanceled()

    def _hand_over(self, result: bool) -> None:
        service = self.service
        if not is_alive(service):  # the plugin unloaded (QGIS quits) while the task ran: nothing to tell
            return
        if not result:
            if self.error:
                QgsMessageLog.logMessage(self.error, LOG_TAG, Qgis.MessageLevel.Warning)
                service.message.emit(tr("Could not read the units' neighbours, so contiguity is not shown: {}")
                                     .format(self.error.strip().splitlines()[-1]), Qgis.MessageLevel.Warning)
            return
        if service.layer_id != self.layer_id:
            return
        if service.adopt_units(self.prepared):
            return
        if not service.set_units(self.units):
            # the layer changed while it was read: read it again
            service.planChanged.emit()


class AccountsTask(QgsTask):
    """Reads the plan's accounts (``layers.accounts.read_accounts``: ids, overrides, workloads, and
    the unit each stands in) and hands them to the account binding."""

    def __init__(self, service: AssignmentService, binding):
        layer = binding.layer
        super().__init__(tr("Reading the accounts of “{}”").format(layer.name()), QgsTask.Flag.CanCancel)
        self.service, self.binding = service, binding
        self.layer_id, self.units_id = layer.id(), service.layer_id
        self.generation = binding.generation
        self.units_snapshot = LayerSnapshot(service.layer)
        self.accounts_snapshot = LayerSnapshot(layer)
        #: the plan's units (the units' request selects the same ones)
        self.unit_fids = np.array(service.fids, dtype=np.int64)
        self.request = service.unit_request()
        self.context = QgsProject.instance().transformContext()
        self.id_field, self.override_field = service.plan.account_id_field, service.plan.override_field
        self.measures = binding.account_measures
        from ..layers.accounts import HomeCache, prepare_file_read

        # a GeoPackage is read straight from the file on the worker thread (see layers.plan_reader), and
        # the accounts' units found last time for the same files are taken as they were
        self.from_file = prepare_file_read(layer, self.id_field, self.override_field, self.measures)
        self.homes = HomeCache.for_layers(service.layer, layer, service.plan.filter_expression)
        self.units = self.accounts = None
        self.error = ""
        self.on_finished = None
        self.setDependentLayers([layer, service.layer])

    def run(self) -> bool:
        from ..layers.accounts import AccountDataError, read_accounts

        collecting = gc.isenabled()
        gc.disable()  # a million accounts: see UnitsTask.run
        try:
            known = self.homes.load()

            def with_shapes():
                return read_units(self.units_snapshot, [], self.context, None, with_adjacency=False,
                                  request=self.request, with_positions=False)

            # the units' shapes are read only when some account must be located (none are, reopening)
            self.units = unit_frame(self.units_snapshot, self.context, self.request, self.unit_fids) \
                if known is not None else with_shapes()
            if self.units is None or self.isCanceled():
                return False
            self.accounts = read_accounts(self.accounts_snapshot, self.units, self.id_field, self.context,
                                          override_field=self.override_field, balance_fields=self.measures,
                                          feedback=_TaskFeedback(self), from_file=self.from_file, known_homes=known,
                                          units_with_shapes=with_shapes)
            if self.accounts is not None and (known is None or self.accounts.located):
                self.homes.save(self.accounts, self.units)
            release_in_blocks(self.units.geometries)
        except (UnitDataError, AccountDataError) as error:
            self.error = str(error)
            return False
        except Exception:  # noqa: BLE001 - reported; the panel keeps working without the accounts
            self.error = traceback.format_exc()
            return False
        finally:
            if collecting:
                gc.enable()
        return self.accounts is not None and not self.isCanceled()

    def finished(self, result: bool) -> None:
        try:
            if not is_alive(self.service):  # the plugin unloaded while the accounts were read
                return
            if not result:
                if self.error:
                    QgsMessageLog.logMessage(self.error, LOG_TAG, Qgis.MessageLevel.Warning)
                    self.service.message.emit(tr("The accounts could not be read, so they do not count: {}").format(
                        self.error.strip().splitlines()[-1]), Qgis.MessageLevel.Warning)
                return
            if self.binding.generation != self.generation or self.binding.layer is None \
                    or self.service.layer_id != self.units_id:
                return  # read for an earlier setup
            self.binding.adopt(self.accounts, self.units.fids)
        finally:
            if self.on_finished is not None:
                self.on_finished(self)


@dataclass
class EngineJob:
    """The snapshot an engine run works on: a problem over the free units and territories."""

    mode: str  # "build" or "rebalance"
    problem: Problem
    units: np.ndarray  # service unit index of each problem unit
    names: list[str]  # territory name of each problem territory
    territory_list: list[str]  # the plan's territory list after the run
    previous: np.ndarray | None = None  # each problem unit's territory before the run (problem numbering)
    #: (m,) the fixed load of each territory that has one (its accounts overridden to it), by name
    fixed_loads: dict = field(default_factory=dict)
    #: the names a build settled on before its fixed loads were counted (they stay with those names)
    run_names: list | None = None

    @property
    def counts_fixed_loads_after(self) -> bool:
        """A build learns its territories' names only once built: their fixed loads are counted then."""
        return self.mode == "build" and bool(self.fixed_loads)

    def with_fixed_loads(self, plan, progress: Progress):
        """The built ``plan`` again with each territory's fixed load counted, now that its names are
        known (by overlap): a rebalance moves what that needs, as the toolbox's Build does."""
        from ..core.engine import rebalance_territories

        self.run_names = self.names_for(np.asarray(plan.labels, dtype=np.int64))
        width = self.problem.workload_matrix().shape[1]
        fixed = np.array([self.fixed_loads.get(name, np.zeros(width)) for name in self.run_names]).reshape(-1, width)
        problem = replace(self.problem, initial=np.asarray(plan.labels, dtype=np.int64), fixed_loads=fixed)
        return rebalance_territories(problem, progress=progress)

    def names_for(self, labels: np.ndarray) -> list[str]:
        """The territory name of each of the run's territories. A build on a plan keeps each existing
        name for the new territory that overlaps it most (one optimal matching), never by position."""
        if self.run_names is not None:
            return list(self.run_names)
        names = list(self.names)
        if self.mode != "build" or self.previous is None or not (self.previous >= 0).any():
            return names
        from ..core.plan.identity import match_by_overlap

        count = len(names)
        match = match_by_overlap(self.previous, labels, count, count, self.problem.workloads.sum(axis=1)
                                 if self.problem.workloads.shape[1] else None)
        kept = [names[int(o)] if o >= 0 else None for o in match]
        spare = iter([name for name in names if name not in kept])
        return [name if name is not None else next(spare) for name in kept]


def engine_job(service: AssignmentService, mode: str, territory_count: int | None = None) -> EngineJob:
    """Build the problem for ``mode`` from the service's current plan (main thread).

    Locked territories and their units are left out entirely, so the engine can neither take
    from nor add to them; locked units of other territories are passed as locks. Raises
    ProblemError when there is nothing the engine may change.
    """
    if service.adjacency is None and not read_units_now(service):
        raise ProblemError(tr("The units' neighbours could not be read (see the message above), so territories "
                              "cannot be built or rebalanced."))
    ledger = service.ledger
    names = list(service.territory_names)
    locked_names = set(ledger.territories.locked)
    if mode == "build":
        count = int(territory_count or len(names) or service.plan.territory_count)
        if count < 1:
            raise ProblemError(tr("Ask for at least one territory."))
        names = _complete_names(names, count)
    territory_list = list(names)
    free_names = [name for name in names if name not in locked_names]
    if not free_names:
        raise ProblemError(tr("Every territory is locked; unlock some to let the engine change them."))
    labels = ledger.plan_labels()
    position_of = {name: k for k, name in enumerate(service.territory_names)}
    locked_positions = {position_of[name] for name in locked_names if name in position_of}
    in_locked = np.isin(labels, list(locked_positions)) if locked_positions else np.zeros(len(labels), dtype=bool)
    units = np.flatnonzero(~in_locked)
    if len(units) == 0:
        raise ProblemError(tr("Every unit is in a locked territory; unlock some territories first."))
    free_index = {name: k for k, name in enumerate(free_names)}
    # current labels in the problem's numbering (−1: unassigned or a territory not in the build)
    remap = np.full(len(service.territory_names) + 1, -1, dtype=np.int64)
    for name, k in position_of.items():
        remap[k] = free_index.get(name, -1)
    initial = remap[labels[units]]
    locked_units = (ledger.field_locks | ledger.listed_locks)[units]
    locked = np.where(locked_units, initial, -1)
    adjacency = service.raw_adjacency[units][:, units]
    # accounts overridden to a territory are its fixed load: a rebalance keeps every territory's name,
    # a build counts them once its territories have their names (EngineJob.with_fixed_loads)
    fixed_loads = {}
    if service.measures:
        fixed_loads = {name: ledger.fixed[ledger.registry_index[name]].copy() for name in free_names
                       if name in ledger.registry_index and ledger.fixed[ledger.registry_index[name]].any()}
    fixed = None
    if mode == "rebalance" and fixed_loads:
        fixed = np.array([fixed_loads.get(name, np.zeros(len(service.measures))) for name in free_names])
    problem = Problem(
        positions=service.positions[units], workloads=service.problem_workloads()[units], adjacency=adjacency,
        territory_count=len(free_names), measure_names=list(service.measures), locked=locked,
        initial=initial if mode == "rebalance" else None, tolerance=service.plan.tolerance / 100.0,
        tolerances=service.plan.engine_tolerances(), time_limit=max(0.0, float(service.plan.time_limit)),
        contiguous=True, fixed_loads=fixed)
    problem.validate()
    return EngineJob(mode=mode, problem=problem, units=units, names=free_names, territory_list=territory_list,
                     previous=initial, fixed_loads=fixed_loads)


def read_units_now(service: AssignmentService) -> bool:
    """Read the neighbours and positions of ``service``'s units on this thread (when no background
    read has); False, after saying why, when they cannot be read."""
    if not service.is_bound:
        return False
    try:
        units = read_units(service.layer, [], service.project.transformContext(), with_adjacency=True,
                           request=service.unit_request())
    except UnitDataError as error:
        service.warn(str(error))
        return False
    return service.set_units(units)


def _complete_names(names: list[str], count: int) -> list[str]:
    return default_names(names, count, tr("Territory"))


class EngineTask(PanelTask):
    """Runs ``core.engine.build_territories`` or ``rebalance_territories`` on a snapshot and writes
    the result back as one undoable edit. While it searches, :attr:`progressText` tells what it
    does ("Searching: worst deviation 6.20 %"); the task's description in QGIS's task manager
    says the same."""

    #: the engine's latest progress message (emitted from the worker thread, queued to the main thread)
    progressText = pyqtSignal(str)  # noqa: N815 - Qt's naming

    def __init__(self, service: AssignmentService, job: EngineJob, max_changed_units: int | None = None):
        layer = service.layer
        title = tr("Building territories on “{}”") if job.mode == "build" else tr("Rebalancing “{}”")
        super().__init__(title.format(layer.name()))
        self.service = service
        self.job = job
        self.layer_id = layer.id()
        self.layer_name = layer.name()
        self.field_name = service.field_name
        self.revision = service.revision
        self.max_changed_units = max_changed_units
        self.title = title.format(layer.name())
        self.last_message = ""
        self.worst_text = ""
        self._last_sent = 0.0
        self.plan = None
        self.error = ""
        self.setDependentLayers([layer])

    def run(self) -> bool:
        from ..core.engine import build_territories, rebalance_territories

        progress = Progress(report=self._report, is_cancelled=self.isCanceled)
        try:
            if self.job.counts_fixed_loads_after:
                built = build_territories(self.job.problem, progress=progress.sub(0.0, 0.75))
                self.plan = self.job.with_fixed_loads(built, progress.sub(0.75, 1.0))
            elif self.job.mode == "build":
                self.plan = build_territories(self.job.problem, progress=progress)
            else:
                self.plan = rebalance_territories(self.job.problem, max_changed_units=self.max_changed_units,
                                                  progress=progress)
        except Cancelled:
            return False
        except ProblemError as error:
            self.error = str(error)
            return False
        except Exception:  # noqa: BLE001 - shown to the user, logged in full
            self.error = traceback.format_exc()
            QgsMessageLog.logMessage(self.error, LOG_TAG, Qgis.MessageLevel.Critical)
            return False
        self._report(1.0, f"Done: worst deviation {100.0 * float(self.plan.figures.max_deviation):.2f} %")
        return not self.isCanceled()

    def _report(self, fraction: float, message: str) -> None:
        self.setProgress(100.0 * fraction)
        marker = "worst deviation"
        if marker in message:
            self.worst_text = message[message.index(marker):]
        elif fraction >= 1.0:
            return  # run() says the plan's own figure once the engine is done
        elif message and self.worst_text:
            message = f"{message} ({self.worst_text})"  # the phase, and the last figure of the search
        if not message or message == self.last_message:
            return
        # a new phase at once; the figures of one phase at most four times a second (the search reports
        # every few rounds: the panel need not redraw its line that often)
        phase = message.split(":", 1)[0]
        now = time.monotonic()
        if phase == self.last_message.split(":", 1)[0] and now - self._last_sent < 0.25:
            return
        self.last_message = message
        self._last_sent = now
        self.progressText.emit(message)

    def _hand_over(self, result: bool) -> None:
        service = self.service
        if not is_alive(service):  # the plugin unloaded (QGIS quits) while the engine ran: nothing to write
            return
        what = tr("Building territories") if self.job.mode == "build" else tr("Rebalancing")
        if (QgsProject.instance().mapLayer(self.layer_id) is None or service.layer_id != self.layer_id
                or service.field_name != self.field_name):
            service.message.emit(tr("{}: the layer “{}” was removed (or the plan changed) while the engine ran; "
                                    "nothing was changed.").format(what, self.layer_name), Qgis.MessageLevel.Warning)
            return
        if not result:
            if self.error:
                text = self.error.strip().splitlines()[-1]
                service.message.emit(tr("{} failed: {}").format(what, text), Qgis.MessageLevel.Critical)
            else:
                service.message.emit(tr("{} was cancelled; nothing was changed.").format(what), Qgis.MessageLevel.Info)
            return
        if service.revision != self.revision:
            service.message.emit(tr("{}: the plan was edited while the engine ran, so its result was not "
                                    "applied. Run it again.").format(what), Qgis.MessageLevel.Warning)
            return
        labels = np.asarray(self.plan.labels, dtype=np.int64)
        run_names = self.job.names_for(labels)
        names = [run_names[k] if 0 <= k < len(run_names) else None for k in labels.tolist()]
        text = tr("Build territories") if self.job.mode == "build" else tr("Rebalance territories")
        notes = [d.message for d in getattr(self.plan, "diagnostics", [])]
        preview = service.propose(self.job.units, names, text, self.job.territory_list, action=self.job.mode,
                                  notes=notes)
        if preview is not None:
            service.message.emit(
                tr("{}: {} unit(s) would change territory; worst deviation {:.1f} % → {:.1f} %. Apply or discard "
                   "the proposal in the panel.").format(what, len(preview.moved), 100.0 * preview.worst_before,
                                                        100.0 * preview.worst_after), Qgis.MessageLevel.Info)
        for diagnostic in getattr(self.plan, "diagnostics", []):
            QgsMessageLog.logMessage(diagnostic.message, LOG_TAG, Qgis.MessageLevel.Info)
