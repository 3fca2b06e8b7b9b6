"""Territory statistics and report: the figures of an existing alignment, and an HTML report.

The figures are computed in ``statistics_figures``, the problems listed in ``statistics_checks``,
the map drawn in ``report_maps`` and the HTML written in ``report_statistics``.
"""

from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFileDestination,
)

from ..compat import DOUBLE, INT, STRING
from ..core.plan.checks import coefficient_of_variation
from ..layers.reps import RepLayer, read_reps
from ..layers.shapes import TerritoryShapes, read_unit_geometries
from ..layers.territory_table import plan_rows
from ..layers.units import Units
from ..layers.values import natural_key
from . import parameters as shared
from . import report
from .base import TerritoryAlgorithm, removes_partial_outputs
from .engine_run import check_cancelled
from .network_params import NETWORK, add_travel_parameters, rep_travel_minutes
from .parameters import (
    COEFFICIENT_OF_VARIATION,
    ISSUES,
    OUTPUT,
    OUTPUT_HTML,
    OUTPUT_OPPORTUNITIES,
    REP_NAME_FIELD,
    REP_TERRITORY_FIELD,
    REPS,
    TERRITORY_COUNT,
    TERRITORY_FIELD,
    UNASSIGNED,
    WITHIN_TOLERANCE,
)
from .plan_inputs import PlanInputs
from .report_maps import alignment_map, over_under_map, untapped_map
from .report_performance import performance_section
from .report_statistics import statistics_report
from .statistics_checks import account_issues, alignment_issues, rep_issues, stray_rep_issues
from .statistics_figures import TerritoryFigures, measure_territories, rep_travel, territory_reps
from .statistics_performance import HELP as PERFORMANCE_HELP
from .statistics_performance import (
    OverUnder,
    add_opportunities_output,
    add_performance_parameters,
    names_of_units,
    opportunities,
    read_performance,
    write_opportunities,
)
from .territory_layer import (
    Column,
    account_columns,
    figure_columns,
    piece_columns,
    rep_distance_columns,
    shape_columns,
    table_columns,
    workload_columns,
    write_territory_layer,
)
from .themed_outputs import OverUnderStyler, UntappedStyler

TERRITORY = "territory"
#: Statistics writes every text column 254 characters wide
TEXT_WIDTHS = (254, 254, 254, 254)


HELP = (
    "Measures an existing alignment (a layer whose units carry a territory name) and writes "
    "one feature per territory and an HTML report for the sales manager.\n\n"
    "<b>Units layer</b>: polygons or points, each with its territory in the territory field.\n"
    "<b>Territory field</b>: the territory of each unit. NULL or blank values are "
    "<i>unassigned</i>: they belong to no territory, are counted in UNASSIGNED and listed in "
    "the report.\n"
    "<b>Balance fields</b>: numeric workload fields (accounts, potential…). None chosen: the "
    "unit count is the workload. Each territory's target is its equal share of the layer's total "
    "(unassigned units included: their workload still has to be served); the deviation is "
    "(sum − target) / target in percent.\n"
    "<b>Tolerance</b>: the allowed deviation in percent; a territory is within tolerance when "
    "every measure is.\n"
    "<b>Reps</b>: optional points (rep homes or offices). <b>Rep name field</b> names the rep. "
    "<b>Rep territory field</b> holds the rep's territory code (or its name in the territory "
    "table); without it, a field named like the territory field is used (Assign reps writes "
    "one), else a rep belongs to the territory whose code equals the rep's name. A rep whose "
    "territory matches no territory is warned about; reps never add territories. "
    "<b>Territory table</b>: optional names, reps and colours by code; its territories without "
    "units are listed as empty. <b>Unit name field</b> names units in the report. "
    "Distances are straight lines from the rep to each unit's "
    "centre (its centroid, or a point inside it when the centroid falls outside), in km; the "
    "report gives their mean and maximum per territory. With a <b>road network</b> (speed, "
    "direction and tolerance settings as in Build territories) the report and the layer add the "
    "rep's travel time by road in minutes: mean (rep_avg_min), workload-weighted mean "
    "(rep_wavg_min) and longest (rep_max_min).\n"
    "<b>Territories</b> (output): one feature per territory with unit count, sum, target "
    "(_tgt) and deviation in percent (_dev) per measure, area (km²), perimeter (km), "
    "Polsby-Popper compactness (4πA/P², 1 = a circle), number of parts, contiguity, the "
    "territory surrounding it when it is an enclave, and the rep's mean and maximum distance. "
    "A shapefile gets field names cut to 10 characters.\n"
    "<b>Report</b>: a self-contained HTML file (map, a bar chart per measure with target and "
    "tolerance band, the table and a list of problems).\n\n"
    "An <i>enclave</i> is a territory whose neighbouring units all belong to one other "
    "territory and that does not reach the outer edge of the layer. Results: MAX_DEVIATION "
    "(percent, worst measure and territory), WITHIN_TOLERANCE, UNASSIGNED, TERRITORY_COUNT, "
    "ISSUES (number of problems listed) and COEFFICIENT_OF_VARIATION (per measure: the "
    "standard deviation of the territory sums over their mean, in percent)."
)


ACCOUNTS_HELP = (
    "With accounts, <b>balance fields</b> may name fields of the units, of the accounts (summed per unit) or "
    "both; an overridden account counts for its override territory. The territories then also get "
    "<b>accounts</b>, <b>overrides_in</b> and <b>overrides_out</b>, in the layer and the report, and the "
    "validation lists the accounts without a territory."
)


class TerritoryStatisticsAlgorithm(TerritoryAlgorithm):
    """Territory statistics and report: the figures of an alignment, as a layer and an HTML report."""

    algorithm_id = "territorystatistics"
    display_name = "Territory statistics and report"
    help_text = (HELP, shared.INDEX_HELP, PERFORMANCE_HELP, shared.ACCOUNTS_HELP, ACCOUNTS_HELP)

    def initAlgorithm(self, config=None):
        shared.add_units_layer(self, self.tr("Units layer with an alignment"))
        shared.add_unit_field(self, TERRITORY_FIELD, self.tr("Territory field"))
        shared.add_measures(self)
        shared.add_reps(self, self.tr("Reps (points)"),
                        territory_field=self.tr("Rep territory field (default: the rep's name)"))
        add_travel_parameters(self, network_only=True)
        shared.add_territory_table(self, self.tr("Territory table (names, reps, colours by code)"))
        shared.add_unit_field(self, shared.UNIT_NAME_FIELD, self.tr("Unit name field (for the report)"), optional=True)
        add_performance_parameters(self)
        shared.add_accounts(self)
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT, self.tr("Territories"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterFileDestination(
            OUTPUT_HTML, self.tr("Report"), self.tr("HTML files (*.html)")))
        add_opportunities_output(self)
        self.addOutput(QgsProcessingOutputNumber(shared.MAX_DEVIATION, self.tr("Worst deviation (%)")))
        self.addOutput(QgsProcessingOutputNumber(WITHIN_TOLERANCE, self.tr("Territories within tolerance")))
        self.addOutput(QgsProcessingOutputNumber(UNASSIGNED, self.tr("Unassigned units")))
        self.addOutput(QgsProcessingOutputNumber(TERRITORY_COUNT, self.tr("Territories")))
        self.addOutput(QgsProcessingOutputNumber(ISSUES, self.tr("Problems listed in the report")))

    # -- run -----------------------------------------------------------------------------------
    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        inputs = PlanInputs.read(self, parameters, context, feedback)
        source, territory_field = inputs.source, inputs.territory_field
        if not territory_field or source.fields().lookupField(territory_field) < 0:
            raise QgsProcessingException(self.tr(
                "The territory field “{}” is not in the units layer. Choose the field that holds each "
                "unit's territory.").format(territory_field))
        if territory_field in inputs.balance_fields:
            raise QgsProcessingException(self.tr(
                "“{}” is chosen both as the territory field and as a balance field. Choose a different "
                "balance field.").format(territory_field))
        tolerance = shared.tolerance(self, parameters, context)
        weights = shared.index_weights(self, parameters, context)
        html_path = self.parameterAsFileOutput(parameters, OUTPUT_HTML, context)

        units = inputs.read_units(self.tr("Reading units and their neighbours…"), 35.0, accounts_until=40.0)
        accounts = inputs.account_run.accounts
        alignment = inputs.read_alignment()
        geometries = read_unit_geometries(source, units, feedback)
        feedback.setProgress(45)

        known = inputs.territory_table()
        unit_names = inputs.unit_names()
        reps = self._read_reps(parameters, context, units, territory_field)
        rep_list = reps.reps if reps is not None else []

        # territories of the table without units are listed (empty); reps never invent territories
        names = alignment.names + [code for code in sorted(known, key=natural_key) if code not in alignment.names]
        stray = self._resolve_rep_territories(rep_list, names, known,
                                              by_table=not self._rep_territory_field(parameters, context, units,
                                                                                     territory_field))
        if not names:
            raise QgsProcessingException(self.tr(
                "No unit has a territory in “{}” (all values are empty). Choose the field that holds the "
                "alignment, or build territories first.").format(territory_field))
        labels = alignment.labels
        inputs.count_accounts(names)
        units = inputs.with_index(weights, len(names))
        account_run, book = inputs.account_run, inputs.book

        feedback.setProgressText(self.tr("Measuring {} territories…").format(len(names)))
        shapes = TerritoryShapes.dissolve(units, geometries, labels, len(names), source.sourceCrs(),
                                          context.transformContext(), feedback, (45.0, 85.0))
        figures = measure_territories(units, labels, names, tolerance, shapes, rep_list, book,
                                      account_run.fixed_loads(book, len(names), units.workloads.shape[1]))
        figures.rows = plan_rows(names, labels, units.adjacency, known, figures.rep)
        figures.issues += stray_rep_issues(stray, with_table=bool(known))
        run = read_performance(self, parameters, context, source, units, labels, figures.rows, feedback)
        if rep_list and self.parameterAsSource(parameters, NETWORK, context) is not None:
            figures.rep_travel = self._rep_travel(parameters, context, feedback, units, labels, names, rep_list)
        unassigned = np.flatnonzero(labels < 0)
        figures.issues += alignment_issues(figures, units, unassigned, tolerance, territory_field, unit_names)
        figures.issues += rep_issues(figures, units, labels, rep_list)
        figures.issues += account_issues(accounts, book, labels)
        for severity, text in figures.issues:
            (feedback.pushWarning if severity != "info" else feedback.pushInfo)(text)

        feedback.setProgressText(self.tr("Writing territories…"))
        theme = OverUnder.of(figures, tolerance)
        out_id = self._write_layer(parameters, context, feedback, source, figures, units.is_polygon, run, theme)
        unit_names = names_of_units(source, units, unit_names)
        opportunities_id = None
        if run is None and parameters.get(OUTPUT_OPPORTUNITIES):
            feedback.pushWarning(self.tr("The opportunities need the sales and the potential field; none were "
                                         "written."))
        if run is not None:
            opportunities_id = write_opportunities(self, parameters, context, feedback, source, units, geometries, run,
                                                   labels, figures.rows, figures.rep, unit_names)
            UntappedStyler.attach_theme(opportunities_id, "untapped", context)

        measures = figures.measures
        max_deviation = round(100.0 * float(np.max(np.abs(figures.deviation))), 3) if figures.deviation.size else 0.0
        cv = {m: coefficient_of_variation(figures.sums[:, a]) for a, m in enumerate(measures)}
        within = int(np.count_nonzero(figures.within))

        feedback.setProgressText(self.tr("Drawing the map and writing the report…"))
        feedback.setProgress(88)
        check_cancelled(feedback)
        image = alignment_map(source, units, labels, names, geometries, shapes.geometry, reps, context, figures.rows)
        sections = self._analytics_sections(source, units, labels, geometries, figures, theme, run, unit_names,
                                            context)
        summary = {
            "layer": source.sourceName(),
            "field": territory_field,
            "tolerance": tolerance,
            "units": units.count,
            "unassigned": len(unassigned),
            "max_deviation": max_deviation,
            "within": within,
            "cv": cv,
        }
        report.write_document(html_path, statistics_report(figures, summary, image, bool(rep_list), sections,
                                                           run is not None))
        feedback.setProgress(100)
        feedback.pushInfo(self.tr(
            "{} territories; {} within tolerance; worst deviation {:.2f} %; {} unassigned "
            "units; {} problems listed.").format(len(names), within, max_deviation, len(unassigned),
                                                 len(figures.issues)))
        return {
            OUTPUT: out_id,
            OUTPUT_HTML: html_path,
            shared.MAX_DEVIATION: max_deviation,
            WITHIN_TOLERANCE: within,
            UNASSIGNED: int(len(unassigned)),
            TERRITORY_COUNT: len(names),
            ISSUES: len(figures.issues),
            COEFFICIENT_OF_VARIATION: cv,
            OUTPUT_OPPORTUNITIES: opportunities_id,
        }

    # -- inputs --------------------------------------------------------------------------------
    def _read_reps(self, parameters, context, units: Units, unit_territory_field: str) -> RepLayer | None:
        """The reps layer, or None. Without a name field a rep is named by its territory field; without
        a territory field its territory is its name."""
        reps_source = self.parameterAsSource(parameters, REPS, context)
        if reps_source is None:
            return None
        name_field = self.parameterAsString(parameters, REP_NAME_FIELD, context)
        territory_field = self.parameterAsString(parameters, REP_TERRITORY_FIELD, context)
        if not territory_field and reps_source.fields().lookupField(unit_territory_field) >= 0:
            # Assign reps writes each rep's territory code in a field named like the units' territory field
            territory_field = unit_territory_field
        if not name_field and not territory_field:
            raise QgsProcessingException(self.tr(
                "A rep layer was given without a rep name field. Choose the field that names each rep "
                "(and, if names differ from territory names, the rep territory field)."))
        return read_reps(reps_source, name_field or territory_field, territory_field or name_field, units,
                         context.transformContext())

    def _rep_territory_field(self, parameters, context, units: Units, unit_territory_field: str) -> str:
        """The reps layer's field that gives each rep's territory ("" when none: the table's reps do)."""
        reps_source = self.parameterAsSource(parameters, REPS, context)
        field = self.parameterAsString(parameters, REP_TERRITORY_FIELD, context)
        if not field and reps_source is not None and reps_source.fields().lookupField(unit_territory_field) >= 0:
            field = unit_territory_field
        return field

    @staticmethod
    def _resolve_rep_territories(reps, names: list[str], known, by_table: bool = False) -> list:
        """Give each rep the code of their territory: with ``by_table`` (the reps layer names no
        territory) the code whose rep in the territory table is the rep (as Assign reps writes it);
        where the reps layer names it by its table name, that code. Returns the reps whose territory
        matches no code or name (they are listed, never added)."""
        code_of_name = {row.name: code for code, row in known.items()}
        code_of_rep = {row.rep: code for code, row in known.items() if row.rep}
        stray = []
        for rep in reps:
            if by_table and rep.name in code_of_rep:
                rep.territory = code_of_rep[rep.name]
                continue
            if rep.territory is not None and rep.territory not in names:
                if rep.territory in code_of_name:
                    rep.territory = code_of_name[rep.territory]
                else:
                    stray.append(rep)
        return stray

    def _rep_travel(self, parameters, context, feedback, units: Units, labels, names, reps) -> dict:
        """Minutes by road from each territory's rep (the first one named for it) to its units."""
        placed = {k: rep for k, rep in territory_reps(names, reps).items() if rep.has_home}
        if not placed:
            return {key: [None] * len(names) for key in ("mean", "weighted", "max")}
        order = sorted(placed)
        homes = np.array([placed[k].position for k in order], dtype=float)
        minutes = rep_travel_minutes(self, parameters, context, feedback, units, homes)
        return rep_travel(minutes, order, units, labels, len(names))

    # -- outputs -------------------------------------------------------------------------------
    def _analytics_sections(self, source, units, labels, geometries, figures: TerritoryFigures, theme, run,
                            unit_names, context) -> str:
        """The over/under map and, with sales, the performance section with the untapped potential map."""
        over_under = over_under_map(source, units, figures.shapes.geometry, figures.rows, theme.values, theme.scale,
                                    context, theme.unit, theme.decimals)
        if run is None:
            return (f"<h2>{report.esc(theme.title)}</h2>" + report.image_tag(over_under, theme.title))
        colours = report.colours_of(figures.rows)
        labels_shown = [row.label for row in figures.rows]
        untapped_image = None
        if run.untapped is not None:
            untapped_image = untapped_map(source, units, geometries, run.untapped, figures.shapes.geometry,
                                          figures.rows, run.top(), context)
        return performance_section(run.performance, labels_shown, colours, run.threshold,
                                   opportunities(run, labels, figures.rows, figures.rep, unit_names), over_under,
                                   untapped_image, theme.title)

    def _write_layer(self, parameters, context, feedback, source, figures: TerritoryFigures, is_polygon: bool,
                     run=None, theme=None):
        groups = [
            table_columns(TERRITORY, figures.rows, figures.rep, TEXT_WIDTHS),
            workload_columns(figures.measures, figures.unit_count, figures.sums, figures.targets),
            shape_columns(figures.shapes, perimeter=True),
            piece_columns(figures.parts, figures.contiguous),
            figure_columns((Column("enclave_of", STRING, self.tr("Enclave of"), 254), figures.enclave_of),
                           (Column("within_tol", INT, self.tr("Within tolerance (1 = yes)")),
                            [1 if within else 0 for within in figures.within])),
            rep_distance_columns(figures.rep_mean_km, figures.rep_max_km),
        ]
        if figures.book is not None:
            groups.append(account_columns(figures.book, figures.labels, len(figures.names)))
        if figures.rep_travel is not None:
            travel = figures.rep_travel
            groups.append(figure_columns(
                (Column("rep_avg_min", DOUBLE, self.tr("Rep mean travel time (min)")), travel["mean"]),
                (Column("rep_wavg_min", DOUBLE, self.tr("Rep workload-weighted travel time (min)")),
                 travel["weighted"]),
                (Column("rep_max_min", DOUBLE, self.tr("Rep max travel time (min)")), travel["max"])))
        if run is not None:
            groups.append(run.columns())
        out_id, fields = write_territory_layer(self, parameters, OUTPUT, context, feedback, groups, figures.shapes,
                                               source.sourceCrs(), is_polygon, aliases=True)
        if out_id is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, OUTPUT))
        column_names = [column.name for group in groups for column in group.columns]
        theme_field = fields.at(column_names.index(theme.column)).name()
        OverUnderStyler.attach_theme(out_id, fields.at(0).name(), figures.names, context, figures.rows, theme_field,
                                     theme.scale, theme.unit, theme.decimals)
        return out_id
