"""Build territories: balanced on every chosen workload, contiguous and compact."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from qgis.core import (
    QgsFeatureRequest,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..compat import STRING, make_field
from ..core.engine import build_territories, rebalance_territories
from ..core.problem import Problem
from ..i18n import tr
from ..layers.alignment import keep_codes_by_overlap, read_alignment
from ..layers.shapes import TerritoryShapes
from ..layers.units import points_to_metric
from ..layers.values import default_names, lock_value, text_or_none
from . import parameters as shared
from .base import TerritoryAlgorithm, removes_partial_outputs
from .engine_run import engine_progress, run_engine
from .messages import push_diagnostics, report_lower_bound
from .network_params import HELP as TRAVEL_HELP
from .network_params import TravelRun, add_travel_parameters
from .outputs import TerritoryStyler, write_units
from .parameters import (
    LOCKED_FIELD,
    OUTPUT,
    OUTPUT_TERRITORIES,
    RANDOM_SEED,
    SEED_NAME_FIELD,
    SEED_TARGET_FIELD,
    SEEDS,
    TERRITORY_COUNT,
    TERRITORY_FIELD,
)
from .plan_inputs import PlanInputs
from .territory_layer import account_columns, plan_columns, write_territory_layer

HELP = (
    "Splits a layer of sales units (ZIP codes, counties, accounts…) into territories, one per "
    "rep, so that each territory carries its share of every chosen workload, stays in one "
    "connected piece and is compact.\n\n"
    "<b>Input layer</b>: polygons (units touching along a boundary are neighbours; small "
    "gaps and slivers are tolerated) or points (neighbours by Delaunay triangulation). A layer "
    "in a geographic CRS is measured in a local projection, never in degrees.\n"
    "<b>Number of territories</b>: ignored when a seed layer is given (one territory per seed).\n"
    "<b>Balance fields</b>: numeric workload fields (accounts, potential, visits…). Every one "
    "is balanced at once. None chosen: territories get equal unit counts. NULL or negative "
    "values are errors.\n"
    "<b>Tolerance</b>: the allowed deviation from each territory's target, in percent.\n"
    "<b>Contiguous</b>: keep every territory in one piece. Islands and units touching nothing "
    "are joined to their nearest neighbour, and reported.\n"
    "<b>Seeds</b>: optional points (e.g. rep homes); each becomes a territory centre. "
    "<b>Seed name field</b> names the territories; <b>seed target field</b> gives a relative "
    "target (1 = full share, 0.5 = a half-time rep).\n"
    "<b>Locked field</b>: units with a value here keep that territory (a seed name, or any "
    "territory name); empty values are free.\n"
    "<b>Tolerances</b>: optional, one percentage per balance field in the same order (e.g. 5,10): "
    "each measure is judged against its own tolerance. When not every measure can be within "
    "tolerance, the worst deviation (relative to each measure's tolerance) is made as small as possible.\n"
    "<b>Time limit</b>: seconds the whole build may take; when it is up, the best plan found so far "
    "is returned. The search stops sooner, as soon as every territory is within tolerance.\n"
    "<b>Random seed</b>: the same seed gives the same plan.\n"
    "<b>Territory field</b>: the name of the field added to the output units; it holds each "
    "territory's code. When the input already has this field (an existing plan), each new "
    "territory keeps the code, name, rep and colour of the old territory it overlaps most.\n"
    "<b>Territory table</b>: optional, the territory table of the existing plan (names, reps, "
    "colours by code), as written by this algorithm.\n"
    "<b>Unit name field</b>: optional, names units in messages (feature ids otherwise).\n\n"
    "Outputs: the units with their territory, and one feature per territory with its sum, "
    "target and deviation per measure, unit count, contiguity and compactness. The result "
    "also gives MAX_DEVIATION (percent, worst measure), LOWER_BOUND (percent: no plan can have a "
    "smaller worst deviation; 0 when nothing is proven) and NONCONTIGUOUS. When the tolerance "
    "cannot be reached (a single unit outweighs a territory's target, say), the plan is still "
    "complete and the log names the units and territories responsible.\n\n"
)
ACCOUNTS_HELP = (
    "With accounts, <b>balance fields</b> may name fields of the units, of the accounts (summed per unit) or "
    "both. An overridden account counts for its override territory, never for its unit's; overrides are never "
    "changed, the codes they name are kept (each new territory keeps the code of the old one it overlaps most) "
    "and overrides whose territory no longer exists are named in the log. The territories then also get "
    "<b>accounts</b>, <b>overrides_in</b> and <b>overrides_out</b>.\n\n"
)


class BuildTerritoriesAlgorithm(TerritoryAlgorithm):
    """Build territories: one territory per rep, balanced, contiguous and compact."""

    algorithm_id = "buildterritories"
    display_name = "Build territories"
    help_text = (HELP, shared.INDEX_HELP, shared.ACCOUNTS_HELP, ACCOUNTS_HELP, TRAVEL_HELP)

    def initAlgorithm(self, config=None):
        shared.add_units_layer(self, self.tr("Units layer (polygons or points)"))
        self.addParameter(QgsProcessingParameterNumber(
            TERRITORY_COUNT, self.tr("Number of territories"), QgsProcessingParameterNumber.Type.Integer,
            defaultValue=10, minValue=1))
        shared.add_measures(self)
        shared.add_search_settings(self)
        self.addParameter(QgsProcessingParameterFeatureSource(
            SEEDS, self.tr("Seeds (territory centres, e.g. rep homes)"),
            [QgsProcessing.SourceType.TypeVectorPoint],
            optional=True))
        self.addParameter(QgsProcessingParameterField(
            SEED_NAME_FIELD, self.tr("Seed name field"), parentLayerParameterName=SEEDS, optional=True))
        self.addParameter(QgsProcessingParameterField(
            SEED_TARGET_FIELD, self.tr("Seed relative target field"), parentLayerParameterName=SEEDS,
            type=QgsProcessingParameterField.DataType.Numeric, optional=True))
        shared.add_unit_field(self, LOCKED_FIELD, self.tr("Locked territory field"), optional=True)
        shared.add_random_seed(self)
        self.addParameter(QgsProcessingParameterString(
            TERRITORY_FIELD, self.tr("Territory field name"), defaultValue="territory"))
        shared.add_territory_table(self, self.tr("Territory table of the existing plan (names, reps, colours)"))
        shared.add_unit_field(self, shared.UNIT_NAME_FIELD, self.tr("Unit name field (for messages)"), optional=True)
        shared.add_accounts(self)
        add_travel_parameters(self)
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT, self.tr("Units with territories"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT_TERRITORIES, self.tr("Territories"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addOutput(QgsProcessingOutputNumber(shared.MAX_DEVIATION, self.tr("Worst deviation (%)")))
        self.addOutput(QgsProcessingOutputNumber(
            shared.LOWER_BOUND, self.tr("Proven lower bound on the worst deviation (%)")))
        self.addOutput(QgsProcessingOutputNumber(shared.NONCONTIGUOUS, self.tr("Non-contiguous territories")))

    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        inputs = PlanInputs.read(self, parameters, context, feedback, territory_field=None)
        source = inputs.source
        weights = shared.index_weights(self, parameters, context)
        search = shared.search_settings(self, parameters, context, shared.measure_names(inputs.balance_fields, weights))
        random_seed = self.parameterAsInt(parameters, RANDOM_SEED, context)
        territory_field = self.parameterAsString(parameters, TERRITORY_FIELD, context).strip()
        if not territory_field:
            raise QgsProcessingException(self.tr("Give the territory field a name (e.g. “territory”)."))
        # the field the plan is written to: the old plan and the territory table's codes are read by it
        inputs.territory_field = territory_field
        locked_field = self.parameterAsString(parameters, LOCKED_FIELD, context)
        count = self.parameterAsInt(parameters, TERRITORY_COUNT, context)

        units = inputs.read_units(self.tr("Reading units and their neighbours…"), 20.0, accounts_until=25.0)
        account_run = inputs.account_run
        travel_run = TravelRun.read(self, parameters, context, feedback, source, units)

        seeds = self.parameterAsSource(parameters, SEEDS, context)
        seed_positions = seed_targets = None
        names: list[str] = []
        if seeds is not None:
            seed_positions, seed_targets, names = self._read_seeds(parameters, context, seeds, units)
            count = len(names)
        if units.count < count:
            raise QgsProcessingException(self.tr(
                "The layer has {} units but {} territories were asked for. Ask for at most {} territories.")
                .format(units.count, count, units.count))

        units = inputs.with_index(weights, count)

        locked = None
        if locked_field:
            locked, names = self._read_locks(source, locked_field, units, names, count)
        names = default_names(names, count)
        known = inputs.territory_table()
        # codes fixed before the build (seeds, locks) take the overrides at once; otherwise the codes come
        # from the old plan after the build, and a second pass counts the overrides where they belong
        names_fixed = seeds is not None or locked is not None
        own_workloads = units.workloads
        book = None
        if account_run.given:
            account_run.book(self._plan_codes(source, territory_field, units, known, names))  # refuses unknown codes
            book = account_run.book(names, strict=False) if names_fixed else account_run.at_home()
            units = account_run.with_accounts(units, book)

        problem = Problem(
            positions=units.positions, workloads=units.workloads, adjacency=units.adjacency,
            territory_count=count, measure_names=list(units.measure_names), seeds=seed_positions,
            seed_targets=seed_targets, locked=locked, tolerance=search.tolerance, contiguous=search.contiguous,
            random_seed=random_seed, time_limit=search.time_limit, tolerances=search.tolerances,
            fixed_loads=account_run.fixed_loads(book, count, units.workloads.shape[1]))
        second_pass = account_run.given and not names_fixed and bool(account_run.accounts.overridden_any)
        feedback.setProgressText(self.tr("Building {} territories from {} units…").format(count, units.count))
        engine_problem = travel_run.engine_problem(problem, feedback, random_seed)
        plan = run_engine(build_territories, engine_problem, engine_progress(feedback, 25, 75 if second_pass else 85))
        labels, figures = travel_run.finish(plan.labels, problem, engine_problem, plan.figures, feedback, names)
        labels = np.asarray(labels)
        if not names_fixed:
            names = keep_codes_by_overlap(source, territory_field, units, labels, names, feedback)
        if account_run.given:
            account_run.report_vanished(names, feedback)
            book = account_run.book(names, strict=False)
        if second_pass and book.overridden.any():
            plan, labels, figures, units = self._count_overrides(problem, plan, labels, units, own_workloads,
                                                                  account_run, book, travel_run, names, feedback)
        unit_names = inputs.unit_names()
        push_diagnostics(plan, units, names, feedback, unit_names)

        rows = inputs.rows(names, labels)
        out_id, territories_id = self._write_outputs(parameters, context, feedback, source, units, labels,
                                                     figures, names, territory_field, rows, travel_run, book)
        max_deviation = round(100.0 * float(figures.max_deviation), 3)
        lower_bound = report_lower_bound(plan, max_deviation, feedback)
        feedback.pushInfo(self.tr("{} territories; worst deviation {:.2f} % (tolerance {:.1f} %); {} not contiguous.")
                          .format(count, max_deviation, search.tolerance * 100, int(figures.noncontiguous)))
        return {
            OUTPUT: out_id,
            OUTPUT_TERRITORIES: territories_id,
            shared.MAX_DEVIATION: max_deviation,
            shared.LOWER_BOUND: lower_bound,
            shared.NONCONTIGUOUS: int(figures.noncontiguous),
        }

    def _count_overrides(self, problem, plan, labels, units, own_workloads, account_run, book, travel_run, names,
                         feedback):
        """The built plan again, the overridden accounts counted for their territories (now that the
        codes are known) and the rest at their units: a rebalance moves what that needs."""
        problem = replace(problem, workloads=account_run.workloads(own_workloads, book),
                          fixed_loads=account_run.fixed_loads(book, len(names), problem.workloads.shape[1]),
                          initial=np.asarray(labels))
        units = replace(units, workloads=problem.workloads)
        feedback.setProgressText(self.tr("Counting {} overridden accounts for their territories…").format(
            int(book.overridden.sum())))
        engine_problem = travel_run.engine_problem(problem, feedback, problem.random_seed)
        plan = run_engine(rebalance_territories, engine_problem, progress=engine_progress(feedback, 75, 85))
        labels, figures = travel_run.finish(plan.labels, problem, engine_problem, plan.figures, feedback, names)
        return plan, np.asarray(labels), figures, units

    @staticmethod
    def _plan_codes(source, territory_field, units, known, names) -> list[str]:
        """The codes overrides may name: the existing plan's (the territory field and table) and the
        territories named up front (seeds, locks)."""
        old = []
        if source.fields().lookupField(territory_field) >= 0:
            old = read_alignment(source, territory_field, units).names
        return list(dict.fromkeys([*old, *known, *names]))

    # -- inputs --------------------------------------------------------------------------------
    def _read_seeds(self, parameters, context, seeds, units):
        name_field = self.parameterAsString(parameters, SEED_NAME_FIELD, context)
        target_field = self.parameterAsString(parameters, SEED_TARGET_FIELD, context)
        points, names, targets = [], [], []
        for feature in seeds.getFeatures():
            geometry = feature.geometry()
            if geometry.isNull() or geometry.isEmpty():
                raise QgsProcessingException(self.tr("Seed feature {} has no geometry.").format(feature.id()))
            points.append(geometry.centroid().asPoint())
            if name_field:
                name = text_or_none(feature[name_field])
                if name is None:
                    raise QgsProcessingException(self.tr(
                        "Seed feature {} has no name in “{}”. Name every seed, or leave the seed name field empty."
                    ).format(feature.id(), name_field))
                names.append(name)
            else:
                names.append(self.tr("Territory {}").format(len(names) + 1))
            if target_field:
                value = feature[target_field]
                try:
                    target = float(value)
                except (TypeError, ValueError):
                    target = float("nan")
                if not target > 0:
                    raise QgsProcessingException(self.tr(
                        "Seed “{}” has a relative target of {}; targets must be positive numbers (1 = a full share)."
                    ).format(names[-1], value))
                targets.append(target)
        if not points:
            raise QgsProcessingException(self.tr("The seed layer has no features. Remove it or add seed points."))
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise QgsProcessingException(
                self.tr("Seed names must be unique; repeated: {}. Give every seed its own name.").format(
                    ", ".join(duplicates)))
        positions = points_to_metric(points, seeds.sourceCrs(), units, context.transformContext())
        _check_seeds_near_units(positions, units.positions, names)
        return positions, (np.asarray(targets, dtype=float) if target_field else None), names

    def _read_locks(self, source, locked_field, units, names, count):
        index = source.fields().lookupField(locked_field)
        locked = np.full(units.count, -1, dtype=np.int64)
        request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([index])
        known = {name: k for k, name in enumerate(names)}
        fixed_names = bool(names)
        extra: list[str] = []
        for feature in source.getFeatures(request):
            locked_here, key = lock_value(feature.attribute(index), known)
            if not locked_here:
                continue
            if key is None:
                raise QgsProcessingException(self.tr(
                    "Feature {} is locked with a flag ({}) but Build has no territory to keep it in. Put the "
                    "name of the territory it must belong to in the locked field (flags such as 1 or yes lock "
                    "a unit to its current territory in Rebalance and in the panel).").format(
                        feature.id(), feature.attribute(index)))
            if key not in known:
                if fixed_names:
                    raise QgsProcessingException(self.tr(
                        "Feature {} is locked to “{}”, which is not the name of any seed. Use a seed name or "
                        "clear the lock.").format(feature.id(), key))
                known[key] = len(known)
                extra.append(key)
            locked[units.index_of_fid[feature.id()]] = known[key]
        all_names = names + extra
        if len(all_names) > count:
            raise QgsProcessingException(self.tr(
                "The locked field names {} territories ({}), but only {} were asked for. Ask for at least {} "
                "territories or clear some locks.").format(len(all_names), ", ".join(all_names[:10]), count,
                                                          len(all_names)))
        return locked, all_names

    # -- outputs -------------------------------------------------------------------------------
    def _write_outputs(self, parameters, context, feedback, source, units, labels, figures, names, territory_field,
                       rows, travel_run, book=None):
        unit_codes = [names[k] for k in np.asarray(labels, dtype=np.int64).tolist()]
        out_id, geometries = write_units(
            self, parameters, OUTPUT, context, feedback, source, units,
            [make_field(territory_field, STRING, 80)] + travel_run.fields(),
            (lambda i: [unit_codes[i]] + travel_run.values(i)) if travel_run.fields() else (lambda i: [unit_codes[i]]))
        shapes = TerritoryShapes.dissolve(units, geometries, labels, len(names), source.sourceCrs(),
                                          context.transformContext(), feedback, (90.0, 100.0))
        groups = plan_columns(territory_field, rows, units, figures, shapes)
        if book is not None:
            groups.append(account_columns(book, labels, len(names)))
        territories_id, _ = write_territory_layer(
            self, parameters, OUTPUT_TERRITORIES, context, feedback, groups, shapes, source.sourceCrs(),
            units.is_polygon)
        if territories_id is not None:
            TerritoryStyler.attach(territories_id, territory_field, names, context, rows, outline=True, peer=out_id)
        TerritoryStyler.attach(out_id, territory_field, names, context, rows, peer=territories_id)
        return out_id, territories_id


def _check_seeds_near_units(seeds: np.ndarray, positions: np.ndarray, names: list[str]) -> None:
    """Seeds far outside the units' extent are almost always a CRS mix-up."""
    low, high = positions.min(axis=0), positions.max(axis=0)
    span = float(max(np.hypot(*(high - low)), 1.0))
    outside = np.maximum(np.maximum(low - seeds, seeds - high), 0.0)
    distance = np.hypot(outside[:, 0], outside[:, 1])
    far = np.flatnonzero(~np.isfinite(distance) | (distance > span))
    if len(far):

        raise QgsProcessingException(tr(
            "Seeds {} lie far outside the units' extent (more than the extent's own size away). This usually "
            "means the seed layer's CRS is set wrong; check it in Layer Properties ▸ Source.").format(
            ", ".join(f"“{names[k]}”" for k in far[:10])))
