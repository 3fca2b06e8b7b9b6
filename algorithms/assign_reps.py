"""Assign reps to territories: the one-to-one matching with the least workload-weighted travel
from each rep's home to the units of their territory."""

from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsFeature,
    QgsFields,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFeatureSink,
)

from ..compat import DOUBLE, INT, STRING, make_field
from ..core.plan.checks import distances_km, reach
from ..core.plan.matching import match_reps, territory_distance_costs, unit_weights
from ..layers.reps import read_reps, refuse_reps_without_home
from ..layers.shapes import TerritoryShapes
from ..layers.territory_table import TerritoryRow
from . import parameters as shared
from .base import TerritoryAlgorithm, removes_partial_outputs
from .engine_run import check_cancelled
from .network_params import add_travel_parameters, rep_travel_minutes, territory_travel_costs
from .outputs import TerritoryStyler, add_feature, write_units
from .parameters import (
    MEAN_DISTANCE_KM,
    OUTPUT,
    OUTPUT_REPS,
    OUTPUT_TERRITORIES,
    REP_NAME_FIELD,
    REP_TERRITORY_FIELD,
    REPS,
    TERRITORY_FIELD,
    UNASSIGNED_REPS,
    VACANCIES,
)
from .plan_inputs import PlanInputs
from .territory_layer import (
    Column,
    figure_columns,
    measure_columns,
    rep_distance_columns,
    table_columns,
    workload_columns,
    write_territory_layer,
)

REP_FIELD = "rep"
#: text widths of the territory-table columns (code, name, rep, colour) in Assign reps' territories
TEXT_WIDTHS = (80, 120, 80, 7)


HELP = (
    "Gives every territory one rep so that, over all reps, the workload-weighted straight-line "
    "distance from each rep's home to the units of their territory is as small as possible. The "
    "matching is optimal (Hungarian method), not greedy: no swap of reps between territories "
    "would shorten the total.\n\n"
    "<b>Input layer</b>: the units with their territory.\n"
    "<b>Territory field</b>: each unit's territory. Units without one get no rep.\n"
    "<b>Reps</b>: a point layer with one point per rep (their home or office), in any CRS.\n"
    "<b>Rep name field</b>: the reps' names; every rep needs a name and names must be unique.\n"
    "<b>Rep territory field</b> (optional, on the reps layer): a territory name keeps that rep "
    "on that territory; empty values leave the rep free. Each territory can be kept for one rep.\n"
    "<b>Balance fields</b> (optional): the workloads that weight the distance (a unit with twice "
    "the accounts counts twice); with several fields each counts equally. None chosen: every unit "
    "weighs the same.\n\n"
    "More territories than reps: the territories that would add the most travel stay vacant and "
    "are named “Vacancy 1”, “Vacancy 2”…. More reps than territories: the reps left over are "
    "listed in a warning and in the UNASSIGNED_REPS result.\n"
    "<b>Territory table</b> (optional): names and colours by territory code.\n"
    "Outputs: the units with a “rep” field; one feature per territory with its code, name, rep, "
    "colour, the workload-weighted mean distance (rep_avg_km) and the farthest unit (rep_max_km) "
    "from the rep's home, and its workload per balance field; and the reps with their territory "
    "code (in a field named like the territory field, for Statistics and Territory packets). "
    "Distances are in kilometres, measured in a metric projection of the units' layer."
)

HELP_ROAD_NETWORK = (
    "\n\n<b>Road network</b> (optional; with its speed, direction and tolerance settings as in "
    "Build territories): reps are matched on workload-weighted travel time by road from home "
    "instead of straight-line distance, one-way streets included; the territories output adds "
    "rep_avg_min (workload-weighted mean) and rep_max_min (farthest unit), in minutes from the "
    "rep's home."
)


class AssignRepsAlgorithm(TerritoryAlgorithm):
    """Assign reps to territories: the matching with the least workload-weighted travel."""

    algorithm_id = "assignreps"
    display_name = "Assign reps to territories"
    help_text = (HELP, HELP_ROAD_NETWORK)

    def initAlgorithm(self, config=None):
        shared.add_units_layer(self, self.tr("Units layer (polygons or points)"))
        shared.add_unit_field(self, TERRITORY_FIELD, self.tr("Territory field"))
        shared.add_reps(self, self.tr("Reps (points at their homes)"), optional=False,
                        territory_field=self.tr("Rep territory field (pairs to keep)"))
        shared.add_balance_fields(self, self.tr("Balance fields (weights for the distance)"))
        shared.add_territory_table(self, self.tr("Territory table (names, colours by code)"))
        add_travel_parameters(self, network_only=True)
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT, self.tr("Units with reps"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT_TERRITORIES, self.tr("Territories with reps"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT_REPS, self.tr("Reps with their territory code"), QgsProcessing.SourceType.TypeVectorPoint,
            optional=True, createByDefault=True))
        self.addOutput(QgsProcessingOutputNumber(
            MEAN_DISTANCE_KM, self.tr("Workload-weighted mean distance to the rep (km)")))
        self.addOutput(QgsProcessingOutputNumber(VACANCIES, self.tr("Territories without a rep")))
        self.addOutput(QgsProcessingOutputString(UNASSIGNED_REPS, self.tr("Reps without a territory")))

    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        inputs = PlanInputs.read(self, parameters, context, feedback)
        source, territory_field = inputs.source, inputs.territory_field
        reps = self.parameterAsSource(parameters, REPS, context)
        if reps is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, REPS))
        name_field = self.parameterAsString(parameters, REP_NAME_FIELD, context)
        keep_field = self.parameterAsString(parameters, REP_TERRITORY_FIELD, context)
        if not name_field:
            raise QgsProcessingException(self.tr("Choose the reps layer's field that holds the reps' names."))

        # without a territory table, colours are chosen on the territories' adjacency, as Build does
        units = inputs.read_units(self.tr("Reading units…"), 40.0, with_adjacency=not inputs.table_given())
        alignment = inputs.read_alignment(self.tr(
            "The territory field “{}” is empty for every unit. Build territories first, or pick the "
            "field that holds each unit's territory."))
        names = alignment.names
        if alignment.unassigned:
            feedback.pushWarning(self.tr("{} units have no territory in “{}”; they get no rep.")
                                 .format(alignment.unassigned, territory_field))
        rep_names, homes, kept = self._read_reps(reps, name_field, keep_field, names, units, context)
        check_cancelled(feedback)

        feedback.setProgressText(self.tr("Matching {} reps to {} territories…")
                                 .format(len(rep_names), len(names)))
        labels = alignment.labels
        weights = unit_weights(units.workloads)
        minutes = rep_travel_minutes(self, parameters, context, feedback, units, homes)
        if minutes is None:
            costs = territory_distance_costs(units.positions, weights, labels, len(names), homes)
        else:  # a road network: match on workload-weighted travel time instead
            costs = territory_travel_costs(minutes, weights, labels, len(names))
        matching = match_reps(costs, kept)
        feedback.setProgress(60)

        p = len(names)
        rep_of_territory = matching.rep_of_territory
        vacancy_number = np.cumsum(rep_of_territory < 0)
        territory_rep = [rep_names[int(rep_of_territory[k])] if rep_of_territory[k] >= 0
                         else self.tr("Vacancy {}").format(int(vacancy_number[k])) for k in range(p)]
        unassigned = [rep_names[int(j)] for j in matching.unassigned_reps]
        vacancies = int((rep_of_territory < 0).sum())
        if unassigned:
            feedback.pushWarning(self.tr(
                "{} reps have no territory (there are {} territories for {} reps): {}.").format(
                len(unassigned), p, len(rep_names), ", ".join(unassigned)))
        if vacancies:
            vacant = ", ".join(names[k] for k in range(p) if rep_of_territory[k] < 0)
            feedback.pushWarning(self.tr(
                "{} territories have no rep (there are {} territories for {} reps): {}.").format(
                vacancies, p, len(rep_names), vacant))

        stats = territory_reach(units, labels, weights, homes, rep_of_territory, p, minutes)
        rows = inputs.rows(reps=[rep_names[int(j)] if j >= 0 else None for j in rep_of_territory])
        out_id, territories_id = self._write_outputs(parameters, context, feedback, source, units, alignment,
                                                     territory_rep, rep_of_territory, kept, stats, rows)
        territory_of_rep = {int(j): k for k, j in enumerate(rep_of_territory) if j >= 0}
        reps_id = self._write_reps(parameters, context, reps, territory_field, names, territory_of_rep, stats)
        served = rep_of_territory >= 0
        served_weight = float(stats["weight"][served].sum())
        mean_km = round(float(np.nansum(stats["mean_km"][served] * stats["weight"][served])) / served_weight, 3) \
            if served_weight > 0 else None
        for k in range(p):
            if served[k]:
                feedback.pushInfo(self.tr("{}: {} (mean distance {:.1f} km)")
                                  .format(names[k], territory_rep[k], stats["mean_km"][k]))
                if minutes is not None:
                    feedback.pushInfo(self.tr("{}: {} (travel from home: workload-weighted mean {:.1f} min, "
                                              "longest {:.1f} min)").format(
                        names[k], territory_rep[k], stats["mean_min"][k], stats["max_min"][k]))
        return {
            OUTPUT: out_id,
            OUTPUT_TERRITORIES: territories_id,
            OUTPUT_REPS: reps_id,
            MEAN_DISTANCE_KM: mean_km,
            VACANCIES: vacancies,
            UNASSIGNED_REPS: ", ".join(unassigned),
        }

    # -- inputs --------------------------------------------------------------------------------
    def _read_reps(self, reps, name_field, keep_field, territory_names, units, context):
        """The reps' names, homes (metres) and the (territory, rep) pairs to keep. Every rep needs a
        name, a unique one, and a home: the matching is on the distance from home."""
        layer = read_reps(reps, name_field, keep_field, units, context.transformContext())
        refuse_reps_without_home(layer, self.tr("Assign reps matches reps to territories by the distance from "
                                                "their home."))
        territory_of_name = {name: k for k, name in enumerate(territory_names)}
        kept: list[tuple[int, int]] = []
        kept_by: dict[int, str] = {}
        for j, rep in enumerate(layer.reps):
            if not rep.named:
                raise QgsProcessingException(self.tr(
                    "Rep feature {} has no name in “{}”. Name every rep.").format(rep.fid, name_field))
            if rep.territory is None:
                continue
            if rep.territory not in territory_of_name:
                raise QgsProcessingException(self.tr(
                    "Rep “{}” is kept on territory “{}”, which is not in the territory field. Use "
                    "one of: {}; or clear the value.").format(
                    rep.name, rep.territory, ", ".join(territory_names[:20])))
            k = territory_of_name[rep.territory]
            if k in kept_by:
                raise QgsProcessingException(self.tr(
                    "Territory “{}” is kept for two reps, “{}” and “{}”. Keep it for one of them.")
                    .format(rep.territory, kept_by[k], rep.name))
            kept_by[k] = rep.name
            kept.append((k, j))
        names = [rep.name for rep in layer.reps]
        if not names:
            raise QgsProcessingException(self.tr("The reps layer has no features. Add a point per rep."))
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise QgsProcessingException(self.tr(
                "Rep names must be unique; repeated: {}. Tell the reps apart (e.g. add an initial).")
                .format(", ".join(duplicates)))
        return names, np.array([rep.position for rep in layer.reps], dtype=float).reshape(-1, 2), kept

    # -- outputs -------------------------------------------------------------------------------
    def _write_reps(self, parameters, context, reps, territory_field, names, territory_of_rep, stats):
        """The reps layer with each rep's territory code (in a field named like the units' territory
        field, so Statistics and Packets join reps by code) and their mean distance."""
        fields = QgsFields()
        kept_columns = []
        for index, field in enumerate(reps.fields()):
            if field.name() not in (territory_field, "rep_avg_km"):
                fields.append(field)
                kept_columns.append(index)
        fields.append(make_field(territory_field, STRING, 80))
        fields.append(make_field("rep_avg_km", DOUBLE))
        sink, reps_id = self.parameterAsSink(parameters, OUTPUT_REPS, context, fields, reps.wkbType(),
                                             reps.sourceCrs())
        if sink is None:
            return None
        for j, feature in enumerate(reps.getFeatures()):
            k = territory_of_rep.get(j)
            out = QgsFeature(fields)
            out.setGeometry(feature.geometry())
            out.setAttributes([feature.attribute(c) for c in kept_columns]
                              + [names[k] if k is not None else None,
                                 float(stats["mean_km"][k]) if k is not None else None])
            add_feature(sink, out)
        return reps_id

    def _write_outputs(self, parameters, context, feedback, source, units, alignment, territory_rep,
                       rep_of_territory, kept, stats, rows):
        labels = alignment.labels
        p = len(alignment.names)
        out_id, geometries = write_units(
            self, parameters, OUTPUT, context, feedback, source, units,
            [make_field(REP_FIELD, STRING, 80)],
            lambda i: [territory_rep[int(labels[i])] if labels[i] >= 0 else None], progress=(60.0, 85.0))
        # units are coloured by rep, each rep in their territory's colour
        by_rep = [TerritoryRow(code=territory_rep[k], name=territory_rep[k], colour=rows[k].colour) for k in range(p)]
        TerritoryStyler.attach(out_id, REP_FIELD, list(territory_rep), context, by_rep)

        served = rep_of_territory >= 0
        kept_territories = {k for k, _ in kept}
        groups = [
            table_columns(alignment.field.name(), rows, territory_rep, TEXT_WIDTHS),
            figure_columns((Column("vacancy", INT), [0 if served[k] else 1 for k in range(p)]),
                           (Column("kept", INT), [1 if k in kept_territories else 0 for k in range(p)])),
            workload_columns(measure_columns(units), stats["units"], stats["sums"]),
            rep_distance_columns(*[[float(stats[key][k]) if served[k] else None for k in range(p)]
                                   for key in ("mean_km", "max_km")]),
        ]
        if "mean_min" in stats:
            groups.append(figure_columns(*[
                (Column(name, DOUBLE), [round(float(stats[key][k]), 3) if served[k] and np.isfinite(stats[key][k])
                                        else None for k in range(p)])
                for name, key in (("rep_avg_min", "mean_min"), ("rep_max_min", "max_min"))]))
        shapes = TerritoryShapes.dissolve(units, geometries, labels, p, source.sourceCrs(), context.transformContext(),
                                          feedback, (85.0, 100.0))
        territories_id, _ = write_territory_layer(self, parameters, OUTPUT_TERRITORIES, context, feedback, groups,
                                                  shapes, source.sourceCrs(), units.is_polygon)
        if territories_id is not None:
            TerritoryStyler.attach(territories_id, alignment.field.name(), list(alignment.names), context, rows,
                                   outline=True, peer=out_id)
        return out_id, territories_id


def territory_reach(units, labels, weights, homes, rep_of_territory, p: int, minutes=None) -> dict[str, np.ndarray]:
    """Per territory: unit count, workload sums, summed weight, and the workload-weighted mean and
    largest distance (km) from its rep's home (NaN for vacancies); with ``minutes`` (reps × units,
    by road) the same in minutes, units off the network left out."""
    assigned = labels >= 0
    unit_count = np.bincount(labels[assigned], minlength=p)
    sums = np.zeros((p, units.workloads.shape[1]))
    np.add.at(sums, labels[assigned], units.workloads[assigned])
    out = {"units": unit_count, "sums": sums, "weight": np.bincount(labels[assigned], weights=weights[assigned],
                                                                  minlength=p)}
    keys = ("mean_km", "max_km") + (("mean_min", "max_min") if minutes is not None else ())
    out.update({key: np.full(p, np.nan) for key in keys})
    for k in range(p):
        rep = rep_of_territory[k]
        members = np.flatnonzero(labels == k)
        if rep < 0 or len(members) == 0:
            continue
        _, out["mean_km"][k], out["max_km"][k] = reach(distances_km(units.positions[members], homes[rep]),
                                                       weights[members])
        if minutes is not None:
            by_road = reach(minutes[rep, members], weights[members])
            if by_road is not None:
                _, out["mean_min"][k], out["max_min"][k] = by_road
    return out
