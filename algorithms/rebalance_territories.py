"""Rebalance territories: bring an existing plan back within tolerance while moving as little
workload as possible."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
from qgis.core import (
    QgsFeatureRequest,
    QgsField,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterNumber,
)

from ..compat import INT, make_field
from ..core.engine import rebalance_territories
from ..core.metrics import plan_figures
from ..core.problem import Plan, Problem
from ..layers.shapes import TerritoryShapes
from ..layers.values import lock_value
from . import parameters as shared
from .base import TerritoryAlgorithm, removes_partial_outputs
from .engine_run import engine_progress, run_engine
from .messages import push_diagnostics, report_lower_bound
from .network_params import HELP as TRAVEL_HELP
from .network_params import TravelRun, add_travel_parameters
from .outputs import TerritoryStyler, write_units
from .parameters import (
    CHANGED_UNITS,
    CHANGED_WORKLOAD,
    FILLED_UNITS,
    LOCKED_FIELD,
    MAX_CHANGED_UNITS,
    OUTPUT,
    OUTPUT_ACCOUNTS,
    OUTPUT_TERRITORIES,
    SCOPE,
    TERRITORY_FIELD,
)
from .plan_inputs import PlanInputs
from .territory_layer import Column, account_columns, figure_columns, plan_columns, write_territory_layer

#: SCOPE's values
SCOPE_UNITS, SCOPE_ACCOUNTS, SCOPE_BOTH = 0, 1, 2
PREVIOUS_FIELD = "previous_territory"
CHANGED_FIELD = "changed"


HELP = (
    "Brings an existing territory plan back within tolerance after workloads have changed, "
    "moving as few units and as little workload as possible. Units that have no territory yet "
    "(new ZIP codes, new accounts) are filled in.\n\n"
    "<b>Input layer</b>: the units, polygons or points, with their current territory.\n"
    "<b>Territory field</b>: the current alignment. NULL or empty values mean “not yet "
    "assigned”. The plan keeps the same territories: their names stay, none is added or removed.\n"
    "<b>Balance fields</b>: numeric workload fields, all balanced at once. None chosen: unit "
    "counts.\n"
    "<b>Tolerance</b>: the allowed deviation from each territory's target, in percent.\n"
    "<b>Contiguous</b>: keep every territory in one connected piece.\n"
    "<b>Tolerances</b>: optional, one percentage per balance field in the same order (e.g. 5,10): "
    "each measure is judged against its own tolerance. When not every measure can be within "
    "tolerance, the worst deviation (relative to each measure's tolerance) is made as small as possible.\n"
    "<b>Time limit</b>: seconds the search may spend while some territory is still out of "
    "tolerance; when they are up, the best plan found so far is returned (0: only the first quick "
    "steps). The result is never worse than "
    "the input plan: when nothing better is found, the plan is returned unchanged and the log "
    "says so.\n"
    "<b>Locked field</b>: units with a value here do not move. A value naming a territory puts "
    "the unit in that territory (it must be one of the territory field's values); a flag such as "
    "1, yes, true or x keeps the unit's current territory; 0, no, false or empty leave it free.\n"
    "<b>Maximum changed units</b>: optional cap, in percent of all units, on how many units may "
    "change territory (filling in unassigned units does not count). When the cap keeps the "
    "plan from reaching the tolerance, the best plan within the cap is returned with a warning.\n"
    "<b>Territory table</b>: optional, the plan's territory table (names, reps, colours by code); "
    "the output table keeps them.\n"
    "<b>Unit name field</b>: optional, names units in messages (feature ids otherwise).\n\n"
    "Outputs: the units with their new territory in the territory field, the "
    "“previous_territory” they had and “changed” (1 when the unit moved to another territory, "
    "else 0); and one feature per territory with its figures and the units moved in and out. "
    "Results: MAX_DEVIATION (percent, worst measure), LOWER_BOUND (percent, proven; 0 when "
    "nothing is proven), CHANGED_UNITS, CHANGED_WORKLOAD (percent of "
    "the first balance field's total that moved, the index's when it is the only measure; of the unit count "
    "with neither), "
    "FILLED_UNITS and NONCONTIGUOUS.\n\n"
)
SCOPE_HELP = (
    "With accounts, <b>balance fields</b> may name fields of the units, of the accounts (summed per unit) or "
    "both; an overridden account counts for its override territory and is never changed. <b>Alignment "
    "scope</b>: units (move units, as without accounts); accounts only (the units stay; accounts are moved as "
    "new overrides, each only to a territory bordering its unit's territory, as little workload as possible); "
    "units and accounts (units first, then accounts for what is left). With the accounts scopes the result also "
    "has <b>OUTPUT_ACCOUNTS</b>: the accounts with their override field as it now stands (the input is never "
    "changed).\n\n"
)
SCOPES = ("Units", "Accounts only (new overrides; units stay)", "Units and accounts")


class RebalanceTerritoriesAlgorithm(TerritoryAlgorithm):
    """Rebalance territories: an existing plan back within tolerance, moving little."""

    algorithm_id = "rebalanceterritories"
    display_name = "Rebalance territories"
    help_text = (HELP, shared.INDEX_HELP, shared.ACCOUNTS_HELP, SCOPE_HELP, TRAVEL_HELP)

    def initAlgorithm(self, config=None):
        shared.add_units_layer(self, self.tr("Units layer (polygons or points)"))
        shared.add_unit_field(self, TERRITORY_FIELD, self.tr("Territory field (current alignment)"))
        shared.add_measures(self)
        shared.add_search_settings(self)
        shared.add_unit_field(self, LOCKED_FIELD, self.tr("Locked field"), optional=True)
        self.addParameter(QgsProcessingParameterNumber(
            MAX_CHANGED_UNITS, self.tr("Maximum changed units (% of all units)"),
            QgsProcessingParameterNumber.Type.Double, optional=True, minValue=0.0, maxValue=100.0))
        shared.add_territory_table(self, self.tr("Territory table (names, reps, colours)"))
        shared.add_unit_field(self, shared.UNIT_NAME_FIELD, self.tr("Unit name field (for messages)"), optional=True)
        shared.add_accounts(self)
        self.addParameter(QgsProcessingParameterEnum(
            SCOPE, self.tr("Alignment scope"), options=[self.tr(option) for option in SCOPES], defaultValue=0))
        add_travel_parameters(self)
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT, self.tr("Rebalanced units"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT_TERRITORIES, self.tr("Rebalanced territories"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT_ACCOUNTS, self.tr("Accounts with their overrides (accounts scopes)"),
            QgsProcessing.SourceType.TypeVector, optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(shared.MAX_DEVIATION, self.tr("Worst deviation (%)")))
        self.addOutput(QgsProcessingOutputNumber(
            shared.LOWER_BOUND, self.tr("Proven lower bound on the worst deviation (%)")))
        self.addOutput(QgsProcessingOutputNumber(CHANGED_UNITS, self.tr("Units that changed territory")))
        self.addOutput(QgsProcessingOutputNumber(
            CHANGED_WORKLOAD, self.tr("Workload that changed territory (%)")))
        self.addOutput(QgsProcessingOutputNumber(FILLED_UNITS, self.tr("Unassigned units filled in")))
        self.addOutput(QgsProcessingOutputNumber(shared.NONCONTIGUOUS, self.tr("Non-contiguous territories")))

    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        inputs = PlanInputs.read(self, parameters, context, feedback)
        source, territory_field = inputs.source, inputs.territory_field
        weights = shared.index_weights(self, parameters, context)
        search = shared.search_settings(self, parameters, context, shared.measure_names(inputs.balance_fields, weights))
        locked_field = self.parameterAsString(parameters, LOCKED_FIELD, context)
        cap_percent = None
        raw_cap = parameters.get(MAX_CHANGED_UNITS)
        if raw_cap is not None and str(raw_cap).strip() != "":
            cap_percent = self.parameterAsDouble(parameters, MAX_CHANGED_UNITS, context)
            if not (0.0 <= cap_percent <= 100.0) or math.isnan(cap_percent):
                raise QgsProcessingException(self.tr(
                    "The maximum of changed units is a percentage of all units, between 0 and 100 (got {})."
                ).format(raw_cap))
        if territory_field in (PREVIOUS_FIELD, CHANGED_FIELD):
            raise QgsProcessingException(self.tr(
                "The territory field may not be called “{}”: the output uses that name for its own figures. "
                "Rename the field and run again.").format(territory_field))

        scope = self.parameterAsEnum(parameters, SCOPE, context)
        account_run = inputs.accounts()
        if scope and self.parameterAsSource(parameters, shared.ACCOUNTS, context) is None:
            raise QgsProcessingException(self.tr(
                "The alignment scope “{}” moves accounts: give the accounts layer (ACCOUNTS), or choose the scope "
                "“units”.").format(self.tr(SCOPES[scope])))

        units = inputs.read_units(self.tr("Reading units and their neighbours…"), 20.0, accounts_until=25.0)
        travel_run = TravelRun.read(self, parameters, context, feedback, source, units)
        alignment = inputs.read_alignment(self.tr(
            "The territory field “{}” is empty for every unit, so there is no plan to rebalance. Build territories "
            "first (Build territories), or pick the field that holds the current territories."))
        names = alignment.names
        count = len(names)
        units = inputs.with_index(weights, count)
        initial = alignment.labels
        locked = None
        if locked_field:
            locked = self._read_locks(source, locked_field, units, names, initial)
        cap = None
        if cap_percent is not None:
            cap = int(math.floor(cap_percent / 100.0 * units.count + 1e-9))

        own_workloads = units.workloads
        units = inputs.count_accounts()
        book = inputs.book
        problem = Problem(
            positions=units.positions, workloads=units.workloads, adjacency=units.adjacency,
            territory_count=count, measure_names=list(units.measure_names), locked=locked,
            tolerance=search.tolerance, contiguous=search.contiguous, time_limit=search.time_limit,
            tolerances=search.tolerances, initial=initial,
            fixed_loads=account_run.fixed_loads(book, count, units.workloads.shape[1]))
        if scope == SCOPE_ACCOUNTS:
            travel_run.max_minutes = None  # the units stay where they are
        feedback.setProgressText(self.tr("Rebalancing {} territories of {} units…")
                                 .format(count, units.count))
        engine_problem = travel_run.engine_problem(problem, feedback)
        if scope == SCOPE_ACCOUNTS:
            plan = Plan(labels=initial.copy(), figures=plan_figures(initial, engine_problem))
        else:
            plan = run_engine(rebalance_territories, engine_problem, max_changed_units=cap,
                              progress=engine_progress(feedback, 25, 85))
        # The engine's "cap reached" note is replaced by one that quotes the cap as the user set it.
        capped = [d for d in plan.diagnostics if d.code == "cap_reached"]
        unit_names = inputs.unit_names()
        push_diagnostics(SimpleNamespace(diagnostics=[d for d in plan.diagnostics if d.code != "cap_reached"]),
                         units, names, feedback, unit_names)
        labels, plan.figures = travel_run.finish(plan.labels, problem, engine_problem, plan.figures, feedback, names)
        labels = np.asarray(labels, dtype=np.int64)
        if scope != SCOPE_UNITS:
            book = account_run.move_accounts(problem, labels, book, feedback)
            problem = account_run.problem_with(problem, own_workloads, book)
            units = replace(units, workloads=problem.workloads)
            moved = plan_figures(labels, problem)
            plan.figures = replace(moved, parts=plan.figures.parts, contiguous=plan.figures.contiguous,
                                   noncontiguous=plan.figures.noncontiguous)
        rows = inputs.rows(labels=labels)

        was_assigned = initial >= 0
        changed = was_assigned & (labels != initial)
        filled = ~was_assigned
        changed_units = int(changed.sum())
        if units.workloads.shape[1] and units.workloads[:, 0].sum() > 0:
            first = units.workloads[:, 0]
            changed_workload = 100.0 * float(first[changed].sum()) / float(first.sum())
        else:
            changed_workload = 100.0 * changed_units / units.count
        changed_workload = round(changed_workload, 3)

        out_id, territories_id = self._write_outputs(parameters, context, feedback, source, units, labels,
                                                     plan, alignment, changed, territory_field, rows, travel_run, book)
        accounts_id = None
        if scope != SCOPE_UNITS:
            accounts_id = account_run.write_overrides(self, parameters, context, feedback, book, alignment,
                                                      OUTPUT_ACCOUNTS)
        figures = plan.figures
        max_deviation = round(100.0 * float(figures.max_deviation), 3)
        lower_bound = report_lower_bound(plan, max_deviation, feedback)
        feedback.pushInfo(self.tr(
            "{} units changed territory ({:.2f} % of the workload); {} unassigned units filled in; worst "
            "deviation {:.2f} % (tolerance {:.1f} %); {} territories not contiguous.").format(
            changed_units, changed_workload, int(filled.sum()), max_deviation, search.tolerance * 100,
            int(figures.noncontiguous)))
        if capped:
            off = ", ".join(names[k] for k in capped[0].territories[:20])
            feedback.pushWarning(self.tr(
                "The cap on changed units stopped the rebalancing short of the tolerance: with at most {} "
                "units changing territory ({:g} % of {}), the best plan reaches a worst deviation of {:.2f} % "
                "(tolerance {:.1f} %; off target: {}). Raise the maximum of changed units, or leave it empty, "
                "to balance further.").format(cap, cap_percent, units.count, max_deviation, search.tolerance * 100,
                                              off))
        return {
            OUTPUT: out_id,
            OUTPUT_TERRITORIES: territories_id,
            shared.MAX_DEVIATION: max_deviation,
            shared.LOWER_BOUND: lower_bound,
            CHANGED_UNITS: changed_units,
            CHANGED_WORKLOAD: changed_workload,
            FILLED_UNITS: int(filled.sum()),
            shared.NONCONTIGUOUS: int(figures.noncontiguous),
            **({OUTPUT_ACCOUNTS: accounts_id} if accounts_id is not None else {}),
        }

    # -- inputs --------------------------------------------------------------------------------
    def _read_locks(self, source, locked_field, units, names, initial) -> np.ndarray:
        index = source.fields().lookupField(locked_field)
        if index < 0:
            raise QgsProcessingException(self.tr("The locked field “{}” is not in the layer.")
                                         .format(locked_field))
        known = {name: k for k, name in enumerate(names)}
        locked = np.full(units.count, -1, dtype=np.int64)
        request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([index])
        for feature in source.getFeatures(request):
            value = feature.attribute(index)
            locked_here, text = lock_value(value, known)
            if not locked_here:
                continue
            i = units.index_of_fid[feature.id()]
            if text in known:
                locked[i] = known[text]
            elif text is None:
                if initial[i] < 0:
                    raise QgsProcessingException(self.tr(
                        "Feature {} is locked but has no territory to keep. Give it a territory, put a "
                        "territory name in the locked field, or clear the lock.").format(feature.id()))
                locked[i] = initial[i]
            else:
                listed = ", ".join(names[:10]) + (", …" if len(names) > 10 else "")
                raise QgsProcessingException(self.tr(
                    "Feature {} is locked to “{}”, which is not a territory in the territory field. Use "
                    "one of the territory names ({}), a flag such as 1 or yes to keep the current "
                    "territory, or clear the lock.").format(feature.id(), text, listed))
        return locked

    # -- outputs -------------------------------------------------------------------------------
    def _write_outputs(self, parameters, context, feedback, source, units, labels, plan, alignment, changed,
                       territory_field, rows, travel_run, book=None):
        territory = QgsField(alignment.field)
        territory.setName(territory_field)
        previous = QgsField(alignment.field)
        previous.setName(PREVIOUS_FIELD)
        old_values = [alignment.values[k] if k >= 0 else None for k in alignment.labels]

        def values_of(i):
            return [alignment.values[int(labels[i])], old_values[i], 1 if changed[i] else 0] + travel_run.values(i)

        out_id, geometries = write_units(
            self, parameters, OUTPUT, context, feedback, source, units,
            [territory, previous, make_field(CHANGED_FIELD, INT)] + travel_run.fields(), values_of)
        names = alignment.names
        style_values = [alignment.values[k] for k in range(len(names))]

        p = len(names)
        moves = figure_columns((Column("moved_in", INT), np.bincount(labels[changed], minlength=p).tolist()),
                               (Column("moved_out", INT), np.bincount(alignment.labels[changed], minlength=p).tolist()))
        shapes = TerritoryShapes.dissolve(units, geometries, labels, p, source.sourceCrs(),
                                          context.transformContext(), feedback, (90.0, 100.0))
        groups = plan_columns(territory_field, rows, units, plan.figures, shapes) + [moves]
        if book is not None:
            groups.append(account_columns(book, labels, p))
        territories_id, _ = write_territory_layer(
            self, parameters, OUTPUT_TERRITORIES, context, feedback, groups, shapes, source.sourceCrs(),
            units.is_polygon)
        if territories_id is not None:
            TerritoryStyler.attach(territories_id, territory_field, names, context, rows, outline=True,
                                   peer=out_id)
        TerritoryStyler.attach(out_id, territory_field, style_values, context, rows, peer=territories_id)
        return out_id, territories_id
