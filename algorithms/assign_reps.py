"""Assign reps to territories: the one-to-one matching with the least workload-weighted travel
from each rep's home to the units of their territory."""

from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsFeature,
    QgsFields,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
)
from scipy import sparse

from ..compat import DOUBLE, INT, STRING, make_field, parameter_as_fields
from ..core.plan.matching import match_reps, territory_distance_costs, unit_weights
from ..layers.territory_table import TerritoryRow, plan_rows, read_territory_table
from ..layers.units import ScaledFeedback, points_to_metric
from .common import (
    TerritoryAlgorithm,
    TerritoryStyler,
    add_feature,
    is_empty_value,
    read_alignment,
    removes_partial_outputs,
    territory_wkb_type,
    write_units,
)
from .network_params import add_travel_parameters, rep_travel_minutes, territory_travel_costs

REP_FIELD = "rep"


class AssignRepsAlgorithm(TerritoryAlgorithm):
    INPUT = "INPUT"
    TERRITORY_FIELD = "TERRITORY_FIELD"
    REPS = "REPS"
    REP_NAME_FIELD = "REP_NAME_FIELD"
    REP_TERRITORY_FIELD = "REP_TERRITORY_FIELD"
    BALANCE_FIELDS = "BALANCE_FIELDS"
    OUTPUT = "OUTPUT"
    OUTPUT_TERRITORIES = "OUTPUT_TERRITORIES"
    OUTPUT_REPS = "OUTPUT_REPS"
    TERRITORIES = "TERRITORIES"
    MEAN_DISTANCE_KM = "MEAN_DISTANCE_KM"
    VACANCIES = "VACANCIES"
    UNASSIGNED_REPS = "UNASSIGNED_REPS"

    def name(self) -> str:
        return "assignreps"

    def displayName(self) -> str:
        return self.tr("Assign reps to territories")

    def shortHelpString(self) -> str:
        return self.tr(
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
        ) + self.tr(
            "\n\n<b>Road network</b> (optional; with its speed, direction and tolerance settings as in "
            "Build territories): reps are matched on workload-weighted travel time by road from home "
            "instead of straight-line distance, one-way streets included; the territories output adds "
            "rep_avg_min (workload-weighted mean) and rep_max_min (farthest unit), in minutes from the "
            "rep's home."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, self.tr("Units layer (polygons or points)"),
            [QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeVectorPoint]))
        self.addParameter(QgsProcessingParameterField(
            self.TERRITORY_FIELD, self.tr("Territory field"), parentLayerParameterName=self.INPUT))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.REPS, self.tr("Reps (points at their homes)"), [QgsProcessing.SourceType.TypeVectorPoint]))
        self.addParameter(QgsProcessingParameterField(
            self.REP_NAME_FIELD, self.tr("Rep name field"), parentLayerParameterName=self.REPS))
        self.addParameter(QgsProcessingParameterField(
            self.REP_TERRITORY_FIELD, self.tr("Rep territory field (pairs to keep)"),
            parentLayerParameterName=self.REPS, optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.BALANCE_FIELDS, self.tr("Balance fields (weights for the distance)"),
            parentLayerParameterName=self.INPUT, type=QgsProcessingParameterField.DataType.Numeric, allowMultiple=True,
            optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.TERRITORIES, self.tr("Territory table (names, colours by code)"),
            [QgsProcessing.SourceType.TypeVector],
            optional=True))
        add_travel_parameters(self, network_only=True)
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Units with reps"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_TERRITORIES, self.tr("Territories with reps"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_REPS, self.tr("Reps with their territory code"), QgsProcessing.SourceType.TypeVectorPoint,
            optional=True, createByDefault=True))
        self.addOutput(QgsProcessingOutputNumber(
            self.MEAN_DISTANCE_KM, self.tr("Workload-weighted mean distance to the rep (km)")))
        self.addOutput(QgsProcessingOutputNumber(self.VACANCIES, self.tr("Territories without a rep")))
        self.addOutput(QgsProcessingOutputString(self.UNASSIGNED_REPS, self.tr("Reps without a territory")))

    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        reps = self.parameterAsSource(parameters, self.REPS, context)
        if reps is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.REPS))
        territory_field = self.parameterAsString(parameters, self.TERRITORY_FIELD, context)
        name_field = self.parameterAsString(parameters, self.REP_NAME_FIELD, context)
        keep_field = self.parameterAsString(parameters, self.REP_TERRITORY_FIELD, context)
        balance_fields = parameter_as_fields(self, parameters, self.BALANCE_FIELDS, context)
        if not name_field:
            raise QgsProcessingException(self.tr("Choose the reps layer's field that holds the reps' names."))

        feedback.setProgressText(self.tr("Reading units…"))
        table_source = self.parameterAsSource(parameters, self.TERRITORIES, context)
        known = read_territory_table(table_source, territory_field)
        # without a territory table, colours are chosen on the territories' adjacency, as Build does
        units = self.read_units(source, balance_fields, context, ScaledFeedback(feedback, 0, 40),
                                with_adjacency=table_source is None)
        alignment = read_alignment(source, territory_field, units, feedback)
        names = alignment.names
        if not names:
            raise QgsProcessingException(self.tr(
                "The territory field “{}” is empty for every unit. Build territories first, or pick the "
                "field that holds each unit's territory.").format(territory_field))
        if alignment.unassigned:
            feedback.pushWarning(self.tr("{} units have no territory in “{}”; they get no rep.")
                                 .format(alignment.unassigned, territory_field))
        rep_names, homes, kept = self._read_reps(reps, name_field, keep_field, names, units, context)
        if feedback.isCanceled():
            raise QgsProcessingException(self.tr("Cancelled."))

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

        stats = _territory_stats(units, labels, weights, homes, rep_of_territory, p, minutes)
        adjacency = units.adjacency if units.adjacency is not None else sparse.csr_matrix((units.count, units.count))
        rows = plan_rows(names, labels, adjacency, known,
                         [rep_names[int(j)] if j >= 0 else None for j in rep_of_territory])
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
            self.OUTPUT: out_id,
            self.OUTPUT_TERRITORIES: territories_id,
            self.OUTPUT_REPS: reps_id,
            self.MEAN_DISTANCE_KM: mean_km,
            self.VACANCIES: vacancies,
            self.UNASSIGNED_REPS: ", ".join(unassigned),
        }

    # -- inputs --------------------------------------------------------------------------------
    def _read_reps(self, reps, name_field, keep_field, territory_names, units, context):
        fields = reps.fields()
        name_index = fields.lookupField(name_field)
        if name_index < 0:
            raise QgsProcessingException(self.tr("The rep name field “{}” is not in the reps layer.")
                                         .format(name_field))
        keep_index = fields.lookupField(keep_field) if keep_field else -1
        if keep_field and keep_index < 0:
            raise QgsProcessingException(self.tr("The rep territory field “{}” is not in the reps layer.")
                                         .format(keep_field))
        territory_of_name = {name: k for k, name in enumerate(territory_names)}
        names: list[str] = []
        points = []
        kept: list[tuple[int, int]] = []
        kept_by: dict[int, str] = {}
        for feature in reps.getFeatures():
            geometry = feature.geometry()
            if geometry is None or geometry.isNull() or geometry.isEmpty():
                raise QgsProcessingException(self.tr(
                    "Rep feature {} has no geometry. Place the rep at their home or remove the feature.")
                    .format(feature.id()))
            value = feature.attribute(name_index)
            if is_empty_value(value):
                raise QgsProcessingException(self.tr(
                    "Rep feature {} has no name in “{}”. Name every rep.").format(feature.id(), name_field))
            name = str(value).strip()
            if keep_index >= 0:
                wanted = feature.attribute(keep_index)
                if not is_empty_value(wanted):
                    wanted = str(wanted).strip()
                    if wanted not in territory_of_name:
                        raise QgsProcessingException(self.tr(
                            "Rep “{}” is kept on territory “{}”, which is not in the territory field. Use "
                            "one of: {}; or clear the value.").format(
                            name, wanted, ", ".join(territory_names[:20])))
                    k = territory_of_name[wanted]
                    if k in kept_by:
                        raise QgsProcessingException(self.tr(
                            "Territory “{}” is kept for two reps, “{}” and “{}”. Keep it for one of them.")
                            .format(wanted, kept_by[k], name))
                    kept_by[k] = name
                    kept.append((k, len(names)))
            names.append(name)
            points.append(geometry.centroid().asPoint())
        if not names:
            raise QgsProcessingException(self.tr("The reps layer has no features. Add a point per rep."))
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise QgsProcessingException(self.tr(
                "Rep names must be unique; repeated: {}. Tell the reps apart (e.g. add an initial).")
                .format(", ".join(duplicates)))
        homes = points_to_metric(points, reps.sourceCrs(), units, context.transformContext())
        if not np.all(np.isfinite(homes)):
            raise QgsProcessingException(self.tr(
                "Some reps could not be placed in the units' coordinate system; check the reps layer's CRS."))
        return names, homes, kept

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
        sink, reps_id = self.parameterAsSink(parameters, self.OUTPUT_REPS, context, fields, reps.wkbType(),
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
            self, parameters, self.OUTPUT, context, feedback, source, units,
            [make_field(REP_FIELD, STRING, 80)],
            lambda i: [territory_rep[int(labels[i])] if labels[i] >= 0 else None], progress=(60.0, 85.0))
        members: list[list[QgsGeometry]] = [[] for _ in range(p)]
        for fid, geometry in geometries.items():
            k = int(labels[units.index_of_fid[fid]])
            if k >= 0:
                members[k].append(geometry)
        # units are coloured by rep, each rep in their territory's colour
        by_rep = [TerritoryRow(code=territory_rep[k], name=territory_rep[k], colour=rows[k].colour) for k in range(p)]
        TerritoryStyler.attach(out_id, REP_FIELD, list(territory_rep), context, by_rep)

        kept_territories = {k for k, _ in kept}
        t_fields = QgsFields()
        t_fields.append(make_field(alignment.field.name(), STRING, 80))
        t_fields.append(make_field("name", STRING, 120))
        t_fields.append(make_field(REP_FIELD, STRING, 80))
        t_fields.append(make_field("colour", STRING, 7))
        t_fields.append(make_field("locked", INT))
        t_fields.append(make_field("vacancy", INT))
        t_fields.append(make_field("kept", INT))
        t_fields.append(make_field("units", INT))
        for name in units.measure_names:
            t_fields.append(make_field(name, DOUBLE))
        t_fields.append(make_field("rep_avg_km", DOUBLE))
        t_fields.append(make_field("rep_max_km", DOUBLE))
        if "mean_min" in stats:
            t_fields.append(make_field("rep_avg_min", DOUBLE))
            t_fields.append(make_field("rep_max_min", DOUBLE))
        t_sink, territories_id = self.parameterAsSink(
            parameters, self.OUTPUT_TERRITORIES, context, t_fields,
            territory_wkb_type(source.wkbType(), units.is_polygon), source.sourceCrs())
        if t_sink is None:
            return out_id, None
        for k in range(p):
            if feedback.isCanceled():
                raise QgsProcessingException(self.tr("Cancelled."))
            feedback.setProgress(85 + 15 * k / max(p, 1))
            geometry = QgsGeometry.unaryUnion(members[k]) if members[k] else QgsGeometry()
            if not geometry.isNull():
                geometry.convertToMultiType()
            served = rep_of_territory[k] >= 0
            values = [alignment.names[k], rows[k].name, territory_rep[k], rows[k].colour, 1 if rows[k].locked else 0,
                      0 if served else 1,
                      1 if k in kept_territories else 0, int(stats["units"][k])]
            values.extend(float(v) for v in stats["sums"][k])
            values.append(float(stats["mean_km"][k]) if served else None)
            values.append(float(stats["max_km"][k]) if served else None)
            if "mean_min" in stats:
                for key in ("mean_min", "max_min"):
                    value = stats[key][k]
                    values.append(round(float(value), 3) if served and np.isfinite(value) else None)
            feature = QgsFeature(t_fields)
            feature.setGeometry(geometry)
            feature.setAttributes(values)
            add_feature(t_sink, feature)
        TerritoryStyler.attach(territories_id, alignment.field.name(), list(alignment.names), context, rows,
                               outline=True, peer=out_id)
        return out_id, territories_id


def _territory_stats(units, labels, weights, homes, rep_of_territory, p: int,
                     minutes=None) -> dict[str, np.ndarray]:
    """Per territory: unit count, workload sums, summed weight, and the weighted mean and largest
    distance (km) from its rep's home (NaN for vacancies). A territory without workload gets the
    plain mean distance."""
    assigned = labels >= 0
    unit_count = np.bincount(labels[assigned], minlength=p)
    sums = np.zeros((p, units.workloads.shape[1]))
    np.add.at(sums, labels[assigned], units.workloads[assigned])
    weight = np.bincount(labels[assigned], weights=weights[assigned], minlength=p)
    mean_km = np.full(p, np.nan)
    max_km = np.full(p, np.nan)
    for k in range(p):
        r = rep_of_territory[k]
        members = np.flatnonzero(labels == k)
        if r < 0 or len(members) == 0:
            continue
        distance = np.hypot(*(units.positions[members] - homes[r]).T) / 1000.0
        w = weights[members]
        mean_km[k] = float((w * distance).sum() / w.sum()) if w.sum() > 0 else float(distance.mean())
        max_km[k] = float(distance.max())
    out = {"units": unit_count, "sums": sums, "weight": weight, "mean_km": mean_km, "max_km": max_km}
    if minutes is not None:  # travel by road from the rep's home (units off the network left out)
        out["mean_min"] = np.full(p, np.nan)
        out["max_min"] = np.full(p, np.nan)
        for k in range(p):
            r = rep_of_territory[k]
            members = np.flatnonzero(labels == k)
            if r < 0 or len(members) == 0:
                continue
            time = minutes[r, members]
            ok = np.isfinite(time)
            if ok.any():
                w = weights[members][ok]
                out["mean_min"][k] = float((w * time[ok]).sum() / w.sum()) if w.sum() > 0 else float(time[ok].mean())
                out["max_min"][k] = float(time[ok].max())
    return out
