"""Build a territory hierarchy: regions that are balanced, contiguous groups of whole territories."""

from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..compat import DOUBLE, INT, STRING, make_field
from ..core.engine import build_territories
from ..core.metrics import plan_figures
from ..core.plan.hierarchy import coarsen, region_problem, units_in_regions
from ..core.problem import Problem
from ..layers.shapes import TerritoryShapes
from ..layers.territory_table import TerritoryRow
from . import parameters as shared
from .base import TerritoryAlgorithm, removes_partial_outputs
from .engine_run import engine_progress, run_engine
from .messages import listed
from .outputs import TerritoryStyler, write_units
from .parameters import OUTPUT, OUTPUT_REGIONS, RANDOM_SEED, REGION_COUNT, REGION_FIELD, TERRITORY_FIELD
from .plan_inputs import PlanInputs
from .territory_layer import Column, figure_columns, plan_columns, write_territory_layer

HELP = (
    "Groups whole territories into regions (e.g. one per regional manager) so that every region "
    "carries its share of each workload and is one connected piece. A territory is never split "
    "between regions. Run it again on the output, with the region field as the territory field, "
    "for a third level (areas, divisions…).\n\n"
    "<b>Input layer</b>: the units with their territory (every unit needs one).\n"
    "<b>Territory field</b>: each unit's territory.\n"
    "<b>Number of regions</b>: at most the number of territories.\n"
    "<b>Balance fields</b>: numeric workload fields, all balanced at once. None chosen: regions "
    "get equal unit counts.\n"
    "<b>Tolerance</b>: the allowed deviation from each region's target, in percent. Whole "
    "territories are coarse building blocks, so a tight tolerance may be out of reach; the log "
    "then says so.\n"
    "<b>Region field name</b>: the field added to the output units; regions are named after it "
    "(“Region 1”, “Region 2”…; a field “zone” gives “Zone 1”…).\n"
    "<b>Random seed</b>: the same seed gives the same regions.\n"
    "<b>Territory table</b>: optional; when it holds goals (Set territory goals), each region's goal "
    "is the sum of its territories' goals (column goal).\n\n"
    "Two territories are neighbours when any of their units touch. Outputs: the units with "
    "their region, and one feature per region with its sum, target and deviation per measure, "
    "its number of territories (terr_count) and their names (members), contiguity and compactness. Results: "
    "MAX_DEVIATION (percent, worst measure) and NONCONTIGUOUS."
)


class BuildHierarchyAlgorithm(TerritoryAlgorithm):
    """Build territory hierarchy: regions made of whole territories."""

    algorithm_id = "buildhierarchy"
    display_name = "Build territory hierarchy"
    help_text = (HELP, shared.INDEX_HELP)

    def initAlgorithm(self, config=None):
        shared.add_units_layer(self, self.tr("Units layer (polygons or points)"))
        shared.add_unit_field(self, TERRITORY_FIELD, self.tr("Territory field"))
        self.addParameter(QgsProcessingParameterNumber(
            REGION_COUNT, self.tr("Number of regions"), QgsProcessingParameterNumber.Type.Integer,
            defaultValue=3, minValue=1))
        shared.add_measures(self, self.tr("Tolerance (% of each region's target)"))
        self.addParameter(QgsProcessingParameterString(
            REGION_FIELD, self.tr("Region field name"), defaultValue="region"))
        shared.add_random_seed(self)
        shared.add_territory_table(self, self.tr("Territory table (the territories' goals roll up to the regions)"))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT, self.tr("Units with regions"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT_REGIONS, self.tr("Regions"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addOutput(QgsProcessingOutputNumber(shared.MAX_DEVIATION, self.tr("Worst deviation (%)")))
        self.addOutput(QgsProcessingOutputNumber(shared.NONCONTIGUOUS, self.tr("Non-contiguous regions")))

    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        inputs = PlanInputs.read(self, parameters, context, feedback)
        source, territory_field = inputs.source, inputs.territory_field
        region_count = self.parameterAsInt(parameters, REGION_COUNT, context)
        weights = shared.index_weights(self, parameters, context)
        tolerance = shared.tolerance(self, parameters, context)
        region_field = self.parameterAsString(parameters, REGION_FIELD, context).strip()
        random_seed = self.parameterAsInt(parameters, RANDOM_SEED, context)
        if not region_field:
            raise QgsProcessingException(self.tr("Give the region field a name (e.g. “region”)."))
        if region_field == territory_field:
            raise QgsProcessingException(self.tr(
                "The region field name “{}” is the territory field's own name; the output needs both. Choose "
                "another region field name (e.g. “zone” for a third level).").format(region_field))
        if region_count < 1:
            raise QgsProcessingException(self.tr("Ask for at least one region."))

        units = inputs.read_units(self.tr("Reading units and their neighbours…"), 30.0)
        alignment = inputs.read_alignment()
        territories = alignment.names
        if alignment.unassigned:
            missing = [int(units.fids[i]) for i in np.flatnonzero(alignment.labels < 0)]
            raise QgsProcessingException(self.tr(
                "{} units have no territory in “{}” (feature ids {}). Regions are groups of whole "
                "territories: give every unit a territory (e.g. with Rebalance territories, which fills "
                "them in) and run again.").format(len(missing), territory_field, listed(missing)))
        if region_count > len(territories):
            raise QgsProcessingException(self.tr(
                "There are {} territories in “{}” but {} regions were asked for. Ask for at most {} regions."
            ).format(len(territories), territory_field, region_count, len(territories)))

        # the index scaled so the average region scores 1,000
        units = inputs.with_index(weights, region_count)
        super_units = coarsen(alignment.labels, units.positions, units.workloads, units.adjacency,
                              len(territories))
        problem = region_problem(super_units, region_count, list(units.measure_names), tolerance,
                                 random_seed=random_seed)
        region_names = _region_names(region_field, region_count, self.tr)
        feedback.setProgressText(self.tr("Grouping {} territories into {} regions…")
                                 .format(len(territories), region_count))
        plan = run_engine(build_territories, problem, engine_progress(feedback, 30, 80))
        self._push_diagnostics(plan, territories, region_names, feedback)
        region_of_territory = np.asarray(plan.labels, dtype=np.int64)
        labels = units_in_regions(alignment.labels, region_of_territory)

        # Figures at unit level, with the same definitions as for territories.
        unit_problem = Problem(
            positions=units.positions, workloads=units.workloads, adjacency=units.adjacency,
            territory_count=region_count, measure_names=list(units.measure_names), tolerance=tolerance,
            contiguous=True, random_seed=random_seed)
        figures = plan_figures(labels, unit_problem)
        out_id, regions_id = self._write_outputs(parameters, context, feedback, source, units, labels,
                                                 figures, region_names, region_field, territories,
                                                 region_of_territory, inputs.territory_table())
        max_deviation = round(100.0 * float(figures.max_deviation), 3)
        feedback.pushInfo(self.tr(
            "{} regions from {} territories; worst deviation {:.2f} % (tolerance {:.1f} %); {} not "
            "contiguous.").format(region_count, len(territories), max_deviation, tolerance * 100,
                                  int(figures.noncontiguous)))
        return {
            OUTPUT: out_id,
            OUTPUT_REGIONS: regions_id,
            shared.MAX_DEVIATION: max_deviation,
            shared.NONCONTIGUOUS: int(figures.noncontiguous),
        }

    def _push_diagnostics(self, plan, territories, region_names, feedback) -> None:
        """Engine diagnostics, naming territories (the super-units) and regions."""
        for diagnostic in plan.diagnostics:
            text = diagnostic.message
            if diagnostic.units:
                text += " " + self.tr("Territories: {}.").format(
                    ", ".join(territories[i] for i in list(diagnostic.units)[:20]))
            if diagnostic.territories:
                text += " " + self.tr("Regions: {}.").format(
                    ", ".join(region_names[k] for k in list(diagnostic.territories)[:20]))
            if diagnostic.severity == "info":
                feedback.pushInfo(text)
            else:
                feedback.pushWarning(text)

    def _write_outputs(self, parameters, context, feedback, source, units, labels, figures, region_names,
                       region_field, territories, region_of_territory, table):
        out_id, geometries = write_units(
            self, parameters, OUTPUT, context, feedback, source, units,
            [make_field(region_field, STRING, 80)], lambda i: [region_names[int(labels[i])]],
            progress=(80.0, 90.0))
        TerritoryStyler.attach(out_id, region_field, region_names, context)

        members = [[territories[t] for t in np.flatnonzero(region_of_territory == k)] for k in range(len(region_names))]
        regions = figure_columns((Column("terr_count", INT), [len(names) for names in members]),
                                 (Column("members", STRING, length=254), [", ".join(names)[:254] for names in members]))
        goals = self._region_goals(table, feedback, members)
        rows = [TerritoryRow(code=name, name=name) for name in region_names]
        shapes = TerritoryShapes.dissolve(units, geometries, labels, len(region_names), source.sourceCrs(),
                                          context.transformContext(), feedback, (90.0, 100.0))
        regions_id, _ = write_territory_layer(
            self, parameters, OUTPUT_REGIONS, context, feedback,
            plan_columns(region_field, rows, units, figures, shapes) + [regions] + goals, shapes, source.sourceCrs(),
            units.is_polygon)
        if regions_id is not None:
            TerritoryStyler.attach(regions_id, region_field, region_names, context)
        return out_id, regions_id


    def _region_goals(self, table: dict[str, TerritoryRow], feedback, members: list[list[str]]) -> list:
        """A region's goal is the sum of its territories' goals (``table``, the territory table's rows by
        code): a column ``goal`` when the table has goals, none otherwise."""
        if not any(row.goal is not None for row in table.values()):
            return []
        missing = sorted({code for names in members for code in names
                          if code not in table or table[code].goal is None})
        if missing:
            feedback.pushWarning(self.tr("{} territories have no goal in the territory table ({}); their regions' "
                                         "goals leave them out.").format(len(missing), listed(missing)))
        goals = [sum(table[code].goal for code in names if code in table and table[code].goal is not None)
                 for names in members]
        return [figure_columns((Column("goal", DOUBLE, self.tr("Goal (the territories' goals)")), goals))]


def _region_names(region_field: str, count: int, tr) -> list[str]:
    """“Region 1”, “Region 2”… for the default field; otherwise named after the field (“Zone 1”)."""
    if region_field.lower() == "region":
        return [tr("Region {}").format(k + 1) for k in range(count)]
    label = region_field.replace("_", " ").strip()
    label = label[:1].upper() + label[1:]
    return [f"{label} {k + 1}" for k in range(count)]
