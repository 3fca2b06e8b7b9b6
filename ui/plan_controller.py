"""The panel's controller: what the user's choices mean for the plan, and the work behind the panel.

``plugin.py`` creates it with the assignment service; the dock is a view of both. The controller

- completes the setup the user chose in the form with what belongs to the layer (scenarios, filters,
  tolerances, time limit) and the territory list, and binds the service;
- restores the plan stored in the project when a project is read, and writes it back on changes;
- runs the background work as QgsTasks (the neighbours, Build and Rebalance);
- owns the scenarios, the territory list's edits, the travel times and the packets' parameters.
"""

from __future__ import annotations

import dataclasses

from qgis.core import Qgis, QgsApplication, QgsExpression, QgsProject, QgsVectorLayer
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QObject, pyqtSignal

from ..i18n import tr
from ..layers.plan_table import TABLE_OF, open_plan_table
from ..layers.signal_links import SignalLinks
from ..layers.style import has_own_style
from .account_binding import AccountBinding
from .assignment_service import AssignmentService
from .plan_outputs import (
    assign_reps_parameters,
    assigned_reps,
    compare_parameters,
    packet_parameters,
    statistics_parameters,
    write_reps,
)
from .road_travel import NETWORK_ERRORS, RoadTravel
from .scenarios import Scenarios, add_territory_field
from .settings import PlanSettings, Preferences
from .tasks import AccountsTask, EngineTask, UnitsTask, engine_job
from .territory_list import TerritoryListEditor
from .territory_list_model import TerritoryListModel
from .thematic_view import ThematicView

#: the plan's settings the setup form chooses; the rest belongs to the layer or comes from the plan
FORM_FIELDS = ("layer_id", "territory_field", "network_layer", "territory_table", "unit_name_field", "measures",
               "tolerance", "rep_field", "lock_field", "territory_count", "index_weights", "sales_field",
               "potential_field", "accounts_layer", "account_id_field", "override_field", "reps_layer",
               "rep_name_field")


def form_part(plan: PlanSettings) -> PlanSettings:
    """Only what the setup form chooses of ``plan`` (a new plan for the same choices)."""
    return PlanSettings(**{name: getattr(plan, name) for name in FORM_FIELDS})


class PlanController(QObject):
    """Sets up, restores and saves the plan of ``service``, and runs the panel's background work."""

    #: show this setup in the form: the layer (or None) and its plan (None: guesses for a new layer)
    setupShown = pyqtSignal(object, object)  # noqa: N815 - Qt's naming
    #: what the engine is doing ("Building territories on …: worst deviation 6.20 %")
    progress = pyqtSignal(str)
    #: an engine run started (its title: "Rebalancing “counties”")
    engineStarted = pyqtSignal(str)  # noqa: N815 - Qt's naming
    #: how far the engine run is (percent)
    engineFraction = pyqtSignal(float)  # noqa: N815 - Qt's naming
    #: the engine run ended (a proposal, a message, or nothing when it was cancelled)
    engineEnded = pyqtSignal()  # noqa: N815 - Qt's naming
    #: the layer's scenarios or the baseline changed
    scenariosChanged = pyqtSignal()  # noqa: N815 - Qt's naming

    def __init__(self, service: AssignmentService, project: QgsProject | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.service = service
        self.project = project or QgsProject.instance()
        self.preferences = Preferences()
        #: the territory list the panel shows (before the controller's own reactions to the service)
        self.model = TerritoryListModel(service, self)
        self.scenarios = Scenarios(service)
        self.territory_editor = TerritoryListEditor(service)
        self.road_travel = RoadTravel(self.project)
        #: the map's view: territory colours, over/under target or penetration
        self.thematic = ThematicView(service, self)
        #: the plan's accounts: their loads, overrides and colours
        self.accounts = AccountBinding(service, self)
        self._accounts_task: AccountsTask | None = None
        #: the setup the user chose in the form (with the territory count), None before there is one
        self.choice: PlanSettings | None = None
        #: asks the user a yes/no question (the panel gives its dialog; tests answer themselves)
        self.confirm = lambda _title, _text: True
        #: asks the user for a text: ``ask(title, label, text)`` → the text, or None when cancelled
        self.ask = lambda _title, _label, _text="": None
        #: how tasks are started; tests replace it to run tasks synchronously
        self.run_task = self._run_in_task_manager
        #: the tasks started and not finished yet
        self.tasks: list = []
        #: the engine runs (Build, Rebalance) started and not finished yet
        self.engine_tasks: list[EngineTask] = []
        self._reading_neighbours: set[str] = set()
        self._style_answers: dict = {}
        self._links = SignalLinks([
            (self.project.readProject, self._on_project_read),
            (self.project.cleared, self._on_project_cleared),
            (service.planChanged, self._on_plan_changed),
            (service.territoriesChanged, self._on_territories_changed),
        ])

    # -- setup -----------------------------------------------------------------------------------
    def stored_plan_for(self, layer: QgsVectorLayer | None) -> PlanSettings | None:
        """The project's plan when it is a plan of ``layer`` (back on it: its choices are shown again)."""
        stored = PlanSettings.read(self.project)
        return stored if stored is not None and layer is not None and stored.layer_id == layer.id() else None

    def apply_setup(self, layer: QgsVectorLayer | None, choice: PlanSettings | None) -> bool:
        """Bind the service to ``layer`` with the plan the user chose (``choice``: the form's part)."""
        self.choice = form_part(choice) if choice is not None else None
        if layer is None or choice is None:
            if self.service.is_bound:
                self.service.unbind()
            return False
        return self.service.bind(layer, self._completed(self.choice))

    def _completed(self, choice: PlanSettings) -> PlanSettings:
        """``choice`` with the territory list and locks of the same plan (bound, or stored in the project),
        and what belongs to the layer rather than to one scenario (it carries over between scenarios)."""
        plan = dataclasses.replace(choice)
        if not plan.territory_table:
            plan.territory_table = choice.territory_table = self._plan_table(plan.layer_id)
        current = self.service.plan if self.service.is_bound else None
        stored = PlanSettings.read(self.project)
        for source in (current, stored):
            if source is not None and source.layer_id == plan.layer_id \
                    and source.territory_field == plan.territory_field:
                plan.territories = list(source.territories)
                plan.locked_territories = list(source.locked_territories)
                plan.locked_units = list(source.locked_units)
                break
        for source in (current, stored):
            if source is not None and source.layer_id == plan.layer_id:
                plan.scenarios = list(source.scenarios)
                plan.baseline = source.baseline
                plan.keep_style = source.keep_style if source.territory_field == plan.territory_field \
                    else plan.keep_style
                plan.filters = dict(source.filters)
                plan.tolerances = dict(source.tolerances)
                plan.time_limit = source.time_limit
                break
        return plan

    def _plan_table(self, layer_id: str) -> str:
        """The id of the territory table the panel keeps for the units layer ``layer_id`` (found in the
        project, else opened or made beside the data and added to the project); "" without a layer."""
        layer = self.project.mapLayer(layer_id)
        if not isinstance(layer, QgsVectorLayer):
            return ""
        for candidate in self.project.mapLayers().values():
            if isinstance(candidate, QgsVectorLayer) and candidate.customProperty(TABLE_OF, "") == layer_id:
                return candidate.id()
        table, problem = open_plan_table(layer, tr("{} — territories").format(layer.name()))
        for candidate in self.project.mapLayers().values():  # the same table, loaded by the user
            if isinstance(candidate, QgsVectorLayer) and candidate.source() == table.source() \
                    and table.providerType() != "memory":
                candidate.setCustomProperty(TABLE_OF, layer_id)
                return candidate.id()
        if problem is not None:
            self.service.warn(problem, Qgis.MessageLevel.Info)
        self.project.addMapLayer(table)
        return table.id()

    def _rebind(self, **changes) -> bool:
        """Bind again to the chosen setup with ``changes`` (another territory field, another filter)."""
        layer = self.service.layer
        if layer is None or self.choice is None:
            return False
        choice = dataclasses.replace(self.choice, **{k: v for k, v in changes.items() if k in FORM_FIELDS})
        self.choice = choice
        plan = self._completed(choice)
        for name, value in changes.items():
            if name not in FORM_FIELDS:
                setattr(plan, name, value)
        return self.service.bind(layer, plan)

    def add_field(self, layer: QgsVectorLayer, name: str) -> bool:
        """Add a new text territory field to ``layer`` (through its edit buffer)."""
        problem = add_territory_field(layer, name)
        if problem is not None:
            self.service.warn(problem)
            return False
        return True

    def set_tolerance(self, percent: float) -> None:
        """The plan's tolerance, and the one the next plan starts with."""
        self.preferences.default_tolerance = percent
        if self.choice is not None:
            self.choice.tolerance = float(percent)
        if self.service.is_bound:
            self.service.change_plan(tolerance=float(percent))
            self.save_plan()

    def set_measure_tolerance(self, measure: str, percent: float | None) -> None:
        """Give balance field ``measure`` a tolerance of its own (percent), or None: the plan's."""
        if not self.service.is_bound:
            return
        tolerances = dict(self.service.plan.tolerances)
        if percent is None:
            tolerances.pop(measure, None)
        else:
            tolerances[measure] = float(percent)
        self.service.change_plan(tolerances=tolerances)
        self.save_plan()

    def set_time_limit(self, seconds: float) -> None:
        if self.service.is_bound:
            self.service.change_plan(time_limit=float(seconds))
            self.save_plan()

    def set_territory_count(self, count: int) -> None:
        """How many territories Build makes (remembered with the plan at its next save)."""
        if self.choice is not None:
            self.choice.territory_count = int(count)
        if self.service.is_bound:
            self.service.change_plan(territory_count=int(count))

    # -- the project -------------------------------------------------------------------------------
    def save_plan(self) -> None:
        if self.service.is_bound:
            self.service.plan.write(self.project)

    def restore_from_project(self) -> bool:
        """Show and bind the plan stored in the project (if its layer is there)."""
        plan = PlanSettings.read(self.project)
        layer = self.project.mapLayer(plan.layer_id) if plan is not None else None
        if not isinstance(layer, QgsVectorLayer):
            return False
        if not isinstance(self.project.mapLayer(plan.territory_table), QgsVectorLayer):
            plan.territory_table = self._plan_table(layer.id())
        self.choice = form_part(plan)
        self.setupShown.emit(layer, plan)
        return self.service.bind(layer, plan)

    def _on_project_read(self, *_args) -> None:
        self.restore_from_project()

    def _on_project_cleared(self) -> None:
        self.cancel_tasks()
        self.service.unbind()
        self.choice = None
        self.setupShown.emit(None, None)

    def _on_plan_changed(self) -> None:
        if not self.service.is_bound:
            self.accounts.unbind()
            return
        self._ask_about_style()
        self.save_plan()
        self.service.restyle()
        if self.service.adjacency is None:
            self.read_neighbours()
        self.read_accounts()

    def _on_territories_changed(self) -> None:
        self.save_plan()
        self.accounts.restyle()

    def read_accounts(self) -> None:
        """Bind the plan's accounts layer and read its accounts in the background (none: unbind)."""
        problem = self.accounts.bind()
        if problem is not None:
            self.service.warn(problem)
        previous, self._accounts_task = self._accounts_task, None
        if previous is not None and not sip.isdeleted(previous):
            previous.cancel()  # read for a setup that is gone
        if not self.accounts.is_bound:
            return
        self._accounts_task = AccountsTask(self.service, self.accounts)
        self.run_task(self._accounts_task)

    def _ask_about_style(self) -> None:
        """Ask once before replacing a style someone made with the territory colours."""
        service = self.service
        key = (service.layer_id, service.field_name)
        if service.plan.keep_style or key in self._style_answers or not has_own_style(service.layer,
                                                                                       service.field_name):
            service.change_plan(keep_style=self._style_answers.get(key, service.plan.keep_style))
            return
        replace = self.confirm(tr("Territory colours"), tr(
            "“{}” has a style of its own. Replace it with one colour per territory? (Choose No to keep it; "
            "the table still shows each territory's colour.)").format(service.layer.name()))
        self._style_answers[key] = not replace
        service.change_plan(keep_style=not replace)

    # -- scenarios ---------------------------------------------------------------------------------
    def switch_scenario(self, name: str) -> bool:
        """Work on scenario ``name`` (its territory field)."""
        if not name or name == self.service.field_name:
            return False
        self._rebind(territory_field=name)
        return self.service.field_name == name

    def new_scenario(self, name: str | None = None) -> bool:
        """A new scenario copied from the current one (asks for its name when None), then work on it."""
        if not self.service.is_bound:
            return False
        if name is None:
            name = self.ask(tr("New scenario"), tr("Name of the new scenario (a new field):"),
                            self._free_scenario_name())
        if not name or not self.scenarios.create(name, self.service.plan.territory_field):
            return False
        self.save_plan()
        return self.switch_scenario(name.strip())

    def _free_scenario_name(self) -> str:
        fields = self.service.layer.fields()
        number = 2
        while fields.lookupField(f"scenario_{number}") >= 0:
            number += 1
        return f"scenario_{number}"

    def rename_scenario(self, new: str | None = None) -> bool:
        """Rename the scenario in use (asks for the new name when None)."""
        old = self.service.field_name
        if old and new is None:
            new = self.ask(tr("Rename scenario"), tr("New name of scenario “{}”:").format(old), old)
        if not old or not new:
            return False
        other = next((n for n in self.scenarios.names() if n != old), "")
        if not other:
            self.service.warn(tr("Create a second scenario first; the scenario in use is renamed from another one."),
                              Qgis.MessageLevel.Info)
            return False
        # the field in use cannot be renamed under the bound plan: step aside, rename, come back
        self.switch_scenario(other)
        renamed = self.scenarios.rename(old, new)
        self.save_plan()
        self.switch_scenario(new.strip() if renamed else old)
        self.scenariosChanged.emit()
        return renamed

    def delete_scenario(self, name: str | None = None) -> bool:
        """Delete scenario ``name`` (the one in use by default, after switching to another)."""
        name = name or self.service.field_name
        if name == self.service.field_name:
            other = next((n for n in self.scenarios.names() if n != name), "")
            if not other:
                self.service.warn(tr("The only scenario cannot be deleted."), Qgis.MessageLevel.Info)
                return False
            self.switch_scenario(other)
        deleted = self.scenarios.delete(name)
        self.save_plan()
        self.scenariosChanged.emit()
        return deleted

    def promote_scenario(self) -> None:
        """Make the scenario in use the baseline that changes are counted against."""
        self.scenarios.promote(self.service.field_name)
        self.save_plan()
        self.scenariosChanged.emit()

    def set_scenario_filter(self, expression: str | None = None) -> bool:
        """Limit the current scenario to the units matching ``expression`` (empty: every unit; asks
        when None), e.g. a segment team's accounts: the table, Build and Rebalance then use only those."""
        plan = self.service.plan
        if not self.service.is_bound:
            return False
        if expression is None:
            expression = self.ask(tr("Segment filter"), tr(
                "Units of scenario “{}” (an expression, e.g. \"industry\" = 'healthcare'; empty: all units):")
                .format(plan.territory_field), plan.filter_expression)
            if expression is None:
                return False
        expression = expression.strip()
        parsed = QgsExpression(expression)  # the user's own expression, parsed to check it
        if expression and parsed.hasParserError():
            self.service.warn(tr("That filter is not a valid expression: {}").format(parsed.parserErrorString()))
            return False
        filters = {field: text for field, text in plan.filters.items() if field != plan.territory_field}
        if expression:
            filters[plan.territory_field] = expression
        # bind again: figures, neighbours, Build and Rebalance now cover the matching units only
        self._rebind(filters=filters)
        return True

    def packet_parameters(self) -> dict:
        """The Territory packets parameters of the plan in the panel (its territory table and reps; the
        changes since the baseline scenario)."""
        return packet_parameters(self.service, self.scenarios.baseline)

    def algorithm_parameters(self, algorithm: str) -> dict:
        """The parameters of ``algorithm`` ("territorypackets", "territorystatistics",
        "comparealignments", "assignreps") filled in with the plan in the panel."""
        if algorithm == "territorypackets":
            return self.packet_parameters()
        if algorithm == "territorystatistics":
            return statistics_parameters(self.service)
        if algorithm == "comparealignments":
            return compare_parameters(self.service, self.scenarios.baseline)
        return assign_reps_parameters(self.service)

    def assign_reps(self) -> bool:
        """Run Assign reps on the plan and its reps layer, and write each territory's rep into the
        territory table (one undoable step); the packets and Statistics then take the reps from there."""
        service = self.service
        if not service.is_bound:
            return False
        parameters = assign_reps_parameters(service)
        if "REPS" not in parameters or "REP_NAME_FIELD" not in parameters:
            service.warn(tr("Choose the reps layer (a point at each rep's home) and its name field in the setup "
                            "first."), Qgis.MessageLevel.Info)
            return False
        import processing
        from qgis.core import QgsProcessingException

        try:
            result = processing.run("territory:assignreps", parameters)
        except QgsProcessingException as error:
            service.warn(str(error))
            return False
        reps = assigned_reps(result["OUTPUT_TERRITORIES"], service.field_name)
        if not write_reps(self.territory_editor, service, reps):
            return False
        service.message.emit(tr("Reps assigned to {} territories (mean distance {} km); they are kept in the territory "
                                "table.").format(sum(1 for rep in reps.values() if rep),
                                                 result.get("MEAN_DISTANCE_KM")), Qgis.MessageLevel.Success)
        return True

    # -- travel ------------------------------------------------------------------------------------
    def travel_of_active(self) -> dict | None:
        """Travel minutes by road within the active territory (see ``ui/road_travel.py``); None
        without a road network or before the units' positions are read."""
        service = self.service
        if not service.is_bound or service.active is None:
            return None
        try:
            return self.road_travel.figures(service.plan.network_layer, service.units, service.positions,
                                            service.ledger.members(service.active), service.problem_workloads(),
                                            service.fids)
        except NETWORK_ERRORS as error:
            service.warn(str(error))
            service.change_plan(network_layer="")
            return None

    # -- background work ---------------------------------------------------------------------------
    def read_neighbours(self) -> None:
        """Start reading the layer's neighbours in the background, once per layer at a time."""
        layer_id = self.service.layer_id
        if layer_id in self._reading_neighbours:
            return
        task = UnitsTask(self.service)
        self._reading_neighbours.add(layer_id)
        task.on_finished = lambda finished: self._reading_neighbours.discard(finished.layer_id)
        self.run_task(task)

    def build(self, count: int) -> EngineTask | None:
        """Build ``count`` territories from scratch (a proposal, shown before it is applied)."""
        return self._start_engine("build", count)

    def rebalance(self, cap_percent: float = 0.0) -> EngineTask | None:
        """Improve the current plan, changing at most ``cap_percent`` % of the units (0: no cap)."""
        service = self.service
        if not service.is_bound:
            return None
        if not any(service.ledger.counts[service.ledger.listed()]):
            service.warn(tr("No unit is in a territory yet: use Build to make a first plan."), Qgis.MessageLevel.Info)
            return None
        return self._start_engine("rebalance", cap_percent=cap_percent)

    def _start_engine(self, mode: str, count: int | None = None, cap_percent: float = 0.0) -> EngineTask | None:
        from ..core.problem import ProblemError

        if not self.service.is_bound:
            return None
        try:
            job = engine_job(self.service, mode, count)
        except ProblemError as error:
            self.service.warn(str(error))
            return None
        cap = max(1, int(round(cap_percent / 100.0 * len(job.units)))) if mode == "rebalance" and cap_percent > 0 \
            else None
        task = EngineTask(self.service, job, max_changed_units=cap)
        task.progressText.connect(lambda text, started=task: self._on_engine_progress(started, text))
        task.progressChanged.connect(lambda percent, started=task: self._on_engine_fraction(started, percent))
        task.on_finished = self._on_engine_finished
        self.engine_tasks.append(task)
        self.engineStarted.emit(task.title)
        self.run_task(task)
        return task

    def cancel_engine(self) -> None:
        """Stop the Build or Rebalance that runs: it ends at its next step and changes nothing."""
        for task in list(self.engine_tasks):
            if not sip.isdeleted(task):
                task.cancel()

    def _on_engine_finished(self, task: EngineTask) -> None:
        if sip.isdeleted(self):  # the plugin unloaded (QGIS quits) while the engine ran
            return
        if task in self.engine_tasks:
            self.engine_tasks.remove(task)
        if not self.engine_tasks:
            self.engineEnded.emit()

    def _on_engine_fraction(self, task: EngineTask, percent: float) -> None:
        if sip.isdeleted(self):
            return
        if task in self.engine_tasks and task is self.engine_tasks[-1]:
            self.engineFraction.emit(float(percent))

    def _on_engine_progress(self, task: EngineTask, text: str) -> None:
        """The engine's progress ("Searching: worst deviation 6.20 %") in the panel and the task manager."""
        if sip.isdeleted(task) or sip.isdeleted(self):  # the plugin unloaded while the engine ran
            return
        line = f"{task.title}: {text}"
        task.setDescription(line)
        self.progress.emit(line)

    def _run_in_task_manager(self, task) -> None:
        # Python must keep the task object alive until QGIS is done with it.
        self.tasks.append(task)
        task.taskCompleted.connect(lambda done=task: self._forget_task(done))
        task.taskTerminated.connect(lambda done=task: self._forget_task(done))
        QgsApplication.taskManager().addTask(task)

    def _forget_task(self, task) -> None:
        if sip.isdeleted(self):  # the task outlived the panel: the task manager keeps it till it ends
            return
        if task in self.tasks:
            self.tasks.remove(task)
        if isinstance(task, EngineTask):
            self._on_engine_finished(task)  # also when QGIS ended it before it ran

    def cancel_tasks(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    def unload(self) -> None:
        """Let go of the project and the service's signals, and cancel the work in progress."""
        self.cancel_tasks()
        self._links.cut()
        self.thematic.unload()
        self.accounts.unbind()
