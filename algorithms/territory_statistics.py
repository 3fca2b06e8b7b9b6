"""Territory statistics and report: the figures of an existing alignment, and an HTML report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from qgis.core import (
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureRequest,
    QgsFields,
    QgsGeometry,
    QgsMemoryProviderUtils,
    QgsPalLayerSettings,
    QgsPointXY,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsSpatialIndex,
    QgsSymbol,
    QgsTextBufferSettings,
    QgsTextFormat,
    QgsVectorLayerSimpleLabeling,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QColor

from ..compat import DOUBLE, INT, STRING, make_field, parameter_as_fields
from ..core.metrics import plan_figures
from ..layers.style import apply_territory_style
from ..layers.territory_table import TerritoryRow, plan_rows, read_territory_table
from ..layers.units import ScaledFeedback, Units, default_snap_tolerance, points_to_metric
from . import report
from .common import (
    TerritoryAlgorithm,
    TerritoryStyler,
    add_feature,
    destination_of,
    deviation_percent,
    is_empty_value,
    measure_columns,
    natural_key,
    read_unit_names,
    removes_partial_outputs,
    unit_list,
)
from .network_params import NETWORK, add_travel_parameters, rep_travel_minutes

TERRITORY = "territory"


def territory_name(value) -> str | None:
    """The territory a field value names: the text without surrounding spaces, None when empty."""
    return None if is_empty_value(value) else str(value).strip()


@dataclass
class Rep:
    name: str
    territory: str | None
    fid: int
    position: np.ndarray
    point: QgsPointXY
    crs: object


@dataclass
class TerritoryFigures:
    """Everything the layer and the report say about each territory (index k = names[k])."""

    names: list[str]
    measures: list[str]
    sums: np.ndarray
    targets: np.ndarray
    deviation: np.ndarray  # fraction of the target, signed
    unit_count: np.ndarray
    parts: np.ndarray
    contiguous: np.ndarray
    area_km2: list
    perimeter_km: list
    polsby_popper: list
    enclave_of: list
    rep: list
    rep_mean_km: list
    rep_max_km: list
    within: np.ndarray
    issues: list[tuple[str, str]] = field(default_factory=list)
    rows: list[TerritoryRow] = field(default_factory=list)  # the territory table's rows, names[k] = rows[k].code
    # with a road network: minutes from the rep's home, per territory (mean, workload-weighted mean, max)
    rep_travel: dict | None = None


class TerritoryStatisticsAlgorithm(TerritoryAlgorithm):
    INPUT = "INPUT"
    TERRITORY_FIELD = "TERRITORY_FIELD"
    BALANCE_FIELDS = "BALANCE_FIELDS"
    TOLERANCE = "TOLERANCE"
    REPS = "REPS"
    REP_NAME_FIELD = "REP_NAME_FIELD"
    REP_TERRITORY_FIELD = "REP_TERRITORY_FIELD"
    TERRITORIES = "TERRITORIES"
    UNIT_NAME_FIELD = "UNIT_NAME_FIELD"
    OUTPUT = "OUTPUT"
    OUTPUT_HTML = "OUTPUT_HTML"
    MAX_DEVIATION = "MAX_DEVIATION"
    WITHIN_TOLERANCE = "WITHIN_TOLERANCE"
    UNASSIGNED = "UNASSIGNED"
    TERRITORY_COUNT = "TERRITORY_COUNT"
    ISSUES = "ISSUES"
    COEFFICIENT_OF_VARIATION = "COEFFICIENT_OF_VARIATION"

    def name(self) -> str:
        return "territorystatistics"

    def displayName(self) -> str:
        return self.tr("Territory statistics and report")

    def shortHelpString(self) -> str:
        return self.tr(
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

    def initAlgorithm(self, config=None):
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.INPUT,
                self.tr("Units layer with an alignment"),
                [QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeVectorPoint],
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.TERRITORY_FIELD, self.tr("Territory field"), parentLayerParameterName=self.INPUT
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.BALANCE_FIELDS,
                self.tr("Balance fields (workload measures)"),
                parentLayerParameterName=self.INPUT,
                type=QgsProcessingParameterField.DataType.Numeric,
                allowMultiple=True,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.TOLERANCE,
                self.tr("Tolerance (% of each territory's target)"),
                QgsProcessingParameterNumber.Type.Double,
                defaultValue=5.0,
                minValue=0.0,
                maxValue=100.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.REPS, self.tr("Reps (points)"), [QgsProcessing.SourceType.TypeVectorPoint], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.REP_NAME_FIELD, self.tr("Rep name field"), parentLayerParameterName=self.REPS, optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.REP_TERRITORY_FIELD,
                self.tr("Rep territory field (default: the rep's name)"),
                parentLayerParameterName=self.REPS,
                optional=True,
            )
        )
        add_travel_parameters(self, network_only=True)
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.TERRITORIES, self.tr("Territory table (names, reps, colours by code)"),
                [QgsProcessing.SourceType.TypeVector], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.UNIT_NAME_FIELD, self.tr("Unit name field (for the report)"),
                parentLayerParameterName=self.INPUT, optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSink(self.OUTPUT, self.tr("Territories"),
                                              QgsProcessing.SourceType.TypeVectorAnyGeometry)
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(self.OUTPUT_HTML, self.tr("Report"), self.tr("HTML files (*.html)"))
        )
        self.addOutput(QgsProcessingOutputNumber(self.MAX_DEVIATION, self.tr("Worst deviation (%)")))
        self.addOutput(QgsProcessingOutputNumber(self.WITHIN_TOLERANCE, self.tr("Territories within tolerance")))
        self.addOutput(QgsProcessingOutputNumber(self.UNASSIGNED, self.tr("Unassigned units")))
        self.addOutput(QgsProcessingOutputNumber(self.TERRITORY_COUNT, self.tr("Territories")))
        self.addOutput(QgsProcessingOutputNumber(self.ISSUES, self.tr("Problems listed in the report")))

    # -- run -----------------------------------------------------------------------------------
    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        territory_field = self.parameterAsString(parameters, self.TERRITORY_FIELD, context)
        if not territory_field or source.fields().lookupField(territory_field) < 0:
            raise QgsProcessingException(
                self.tr(
                    "The territory field “{}” is not in the units layer. Choose the field that holds each "
                    "unit's territory."
                ).format(territory_field)
            )
        balance_fields = parameter_as_fields(self, parameters, self.BALANCE_FIELDS, context)
        if territory_field in balance_fields:
            raise QgsProcessingException(
                self.tr(
                    "“{}” is chosen both as the territory field and as a balance field. Choose a different "
                    "balance field."
                ).format(territory_field)
            )
        tolerance = self.parameterAsDouble(parameters, self.TOLERANCE, context) / 100.0
        html_path = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)

        feedback.setProgressText(self.tr("Reading units and their neighbours…"))
        units = self.read_units(source, balance_fields, context, ScaledFeedback(feedback, 0, 40))
        values, geometries = self._read_territories(source, territory_field, units, feedback)

        known = read_territory_table(self.parameterAsSource(parameters, self.TERRITORIES, context), territory_field)
        self._unit_names = read_unit_names(
            source, self.parameterAsString(parameters, self.UNIT_NAME_FIELD, context), units)
        reps_source = self.parameterAsSource(parameters, self.REPS, context)
        reps = (self._read_reps(parameters, context, reps_source, units, territory_field)
                if reps_source is not None else [])

        names = sorted({v for v in values if v is not None}, key=natural_key)
        # territories of the table without units are listed (empty); reps never invent territories
        names += [code for code in sorted(known, key=natural_key) if code not in names]
        code_of_name = {row.name: code for code, row in known.items()}
        self._stray_reps = []
        for rep_ in reps:
            if rep_.territory is not None and rep_.territory not in names:
                if rep_.territory in code_of_name:
                    rep_.territory = code_of_name[rep_.territory]
                else:
                    self._stray_reps.append(rep_)
        if not names:
            raise QgsProcessingException(
                self.tr(
                    "No unit has a territory in “{}” (all values are empty). Choose the field that holds the "
                    "alignment, or build territories first."
                ).format(territory_field)
            )
        index_of = {name: k for k, name in enumerate(names)}
        labels = np.array([index_of[v] if v is not None else -1 for v in values], dtype=np.int64)

        feedback.setProgressText(self.tr("Measuring {} territories…").format(len(names)))
        figures = self._figures(units, labels, names, tolerance, reps, feedback)
        figures.rows = plan_rows(names, labels, units.adjacency, known, figures.rep)
        for rep_ in self._stray_reps:
            figures.issues.append(("warning", self.tr(
                "Rep “{}” (feature {}) is given the territory “{}”, which matches no territory code{}. Check "
                "the rep territory field.").format(
                rep_.name, rep_.fid, rep_.territory, self.tr(" or name") if known else "")))
        if reps and self.parameterAsSource(parameters, NETWORK, context) is not None:
            figures.rep_travel = self._rep_travel(parameters, context, feedback, units, labels, names, reps)
        unassigned = np.flatnonzero(labels < 0)
        self._validate(figures, units, labels, unassigned, reps, tolerance, territory_field)
        for severity, text in figures.issues:
            (feedback.pushWarning if severity != "info" else feedback.pushInfo)(text)

        feedback.setProgressText(self.tr("Writing territories…"))
        dissolved = self._dissolve(geometries, labels, len(names), units.is_polygon, feedback, 75, 85)
        out_id = self._write_layer(parameters, context, source, figures, dissolved, units.is_polygon)

        measures = figures.measures
        max_deviation = round(100.0 * float(np.max(np.abs(figures.deviation))), 3) if figures.deviation.size else 0.0
        cv = {m: _coefficient_of_variation(figures.sums[:, a]) for a, m in enumerate(measures)}
        within = int(np.count_nonzero(figures.within))

        feedback.setProgressText(self.tr("Drawing the map and writing the report…"))
        feedback.setProgress(88)
        if feedback.isCanceled():
            raise QgsProcessingException(self.tr("Cancelled."))
        image = self._map_image(source, units, labels, names, geometries, dissolved, reps, context, figures.rows)
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
        report.write_document(html_path, self._report_html(figures, summary, image, bool(reps)))
        feedback.setProgress(100)
        feedback.pushInfo(
            self.tr(
                "{} territories; {} within tolerance; worst deviation {:.2f} %; {} unassigned "
                "units; {} problems listed."
            ).format(len(names), within, max_deviation, len(unassigned), len(figures.issues))
        )
        return {
            self.OUTPUT: out_id,
            self.OUTPUT_HTML: html_path,
            self.MAX_DEVIATION: max_deviation,
            self.WITHIN_TOLERANCE: within,
            self.UNASSIGNED: int(len(unassigned)),
            self.TERRITORY_COUNT: len(names),
            self.ISSUES: len(figures.issues),
            self.COEFFICIENT_OF_VARIATION: cv,
        }

    # -- inputs --------------------------------------------------------------------------------
    def _read_territories(self, source, territory_field, units: Units, feedback):
        """Each unit's territory name (None when unassigned) and its geometry in the source CRS."""
        index = source.fields().lookupField(territory_field)
        values: list[str | None] = [None] * units.count
        geometries: list[QgsGeometry | None] = [None] * units.count
        request = QgsFeatureRequest().setSubsetOfAttributes([index])
        total = max(units.count, 1)
        for count, feature in enumerate(source.getFeatures(request)):
            if count % 500 == 0:
                if feedback.isCanceled():
                    raise QgsProcessingException(self.tr("Cancelled."))
                feedback.setProgress(40 + 5 * count / total)
            i = units.index_of_fid.get(feature.id())
            if i is None:
                continue
            value = feature.attribute(index)
            values[i] = territory_name(value)
            geometries[i] = QgsGeometry(feature.geometry())
        return values, geometries

    def _read_reps(self, parameters, context, reps_source, units: Units, unit_territory_field: str) -> list[Rep]:
        name_field = self.parameterAsString(parameters, self.REP_NAME_FIELD, context)
        territory_field = self.parameterAsString(parameters, self.REP_TERRITORY_FIELD, context)
        if not territory_field and reps_source.fields().lookupField(unit_territory_field) >= 0:
            # Assign reps writes each rep's territory code in a field named like the units' territory field
            territory_field = unit_territory_field
        if not name_field and not territory_field:
            raise QgsProcessingException(
                self.tr(
                    "A rep layer was given without a rep name field. Choose the field that names each rep "
                    "(and, if names differ from territory names, the rep territory field)."
                )
            )
        for label, name in ((self.tr("rep name"), name_field), (self.tr("rep territory"), territory_field)):
            if name and reps_source.fields().lookupField(name) < 0:
                raise QgsProcessingException(
                    self.tr("The {} field “{}” is not in the rep layer. Pick one of its fields.").format(label, name)
                )
        points: list[QgsPointXY] = []
        reps: list[Rep] = []
        for feature in reps_source.getFeatures():
            geometry = feature.geometry()
            if geometry is None or geometry.isNull() or geometry.isEmpty():
                raise QgsProcessingException(
                    self.tr("Rep feature {} has no location. Give it a point or remove it.").format(feature.id())
                )
            name_value = feature[name_field] if name_field else feature[territory_field]
            name = territory_name(name_value)
            territory_value = feature[territory_field] if territory_field else name_value
            territory = territory_name(territory_value)
            point = geometry.centroid().asPoint()
            points.append(point)
            reps.append(
                Rep(
                    name=name if name is not None else self.tr("Rep {}").format(feature.id()),
                    territory=territory,
                    fid=feature.id(),
                    position=np.zeros(2),
                    point=point,
                    crs=reps_source.sourceCrs(),
                )
            )
        if points:
            positions = points_to_metric(points, reps_source.sourceCrs(), units, context.transformContext())
            for rep, position in zip(reps, positions):
                rep.position = position
        return reps

    # -- figures -------------------------------------------------------------------------------
    def _figures(
        self, units: Units, labels: np.ndarray, names: list[str], tolerance: float, reps: list[Rep], feedback
    ) -> TerritoryFigures:
        p = len(names)
        plan = _plan_figures(units, labels, p, tolerance)
        sums = np.asarray(plan.sums, dtype=float).reshape(p, -1)
        targets = np.asarray(plan.targets, dtype=float).reshape(p, -1)
        deviation = np.asarray(plan.deviation, dtype=float).reshape(p, -1)
        within = np.asarray(plan.within_tolerance, dtype=bool).reshape(p)

        members = [np.flatnonzero(labels == k) for k in range(p)]
        area, perimeter, polsby = [], [], []
        for k in range(p):
            if feedback.isCanceled():
                raise QgsProcessingException(self.tr("Cancelled."))
            feedback.setProgress(45 + 25 * k / max(p, 1))
            if not units.is_polygon or len(members[k]) == 0:
                area.append(None if not units.is_polygon else 0.0)
                perimeter.append(None if not units.is_polygon else 0.0)
                polsby.append(None)
                continue
            geometry = QgsGeometry.unaryUnion([units.geometries[i] for i in members[k]])
            a, length = geometry.area(), geometry.length()
            area.append(a / 1e6)
            perimeter.append(length / 1e3)
            polsby.append(4 * math.pi * a / length**2 if length > 0 else None)

        enclave_of = self._enclaves(units, labels, names, members)
        rep_names: list[str | None] = [None] * p
        rep_mean: list[float | None] = [None] * p
        rep_max: list[float | None] = [None] * p
        for rep in reps:
            k = names.index(rep.territory) if rep.territory in names else -1
            if k < 0 or rep_names[k] is not None:
                continue
            rep_names[k] = rep.name
            if len(members[k]):
                distance = np.hypot(*(units.positions[members[k]] - rep.position).T) / 1000.0
                rep_mean[k] = float(distance.mean())
                rep_max[k] = float(distance.max())
        return TerritoryFigures(
            names=names,
            measures=measure_columns(units),
            sums=sums,
            targets=targets,
            deviation=deviation,
            unit_count=np.asarray(plan.unit_count, dtype=int).reshape(p),
            parts=np.asarray(plan.parts).reshape(p),
            contiguous=np.asarray(plan.contiguous, dtype=bool).reshape(p),
            area_km2=area,
            perimeter_km=perimeter,
            polsby_popper=polsby,
            enclave_of=enclave_of,
            rep=rep_names,
            rep_mean_km=rep_mean,
            rep_max_km=rep_max,
            within=within,
        )

    def _enclaves(self, units: Units, labels: np.ndarray, names: list[str], members) -> list[str | None]:
        """For each territory, the territory that surrounds it (None when it is no enclave).

        Candidates are territories whose units' neighbours outside the territory all belong to one
        other territory (unassigned neighbours count as outside). A candidate touching the outer
        edge of the layer is not surrounded, so it is no enclave."""
        adjacency = units.adjacency.tocsr()
        candidates: dict[int, int] = {}
        for k, rows in enumerate(members):
            if len(rows) == 0:
                continue
            neighbours = np.unique(adjacency[rows].indices)
            outside = labels[neighbours[labels[neighbours] != k]]
            owners = np.unique(outside)
            if len(owners) == 1 and owners[0] >= 0:
                candidates[k] = int(owners[0])
        result: list[str | None] = [None] * len(names)
        if not candidates:
            return result
        edge = _edge_units(units)
        for k, owner in candidates.items():
            if not edge[members[k]].any():
                result[k] = names[owner]
        return result

    def _validate(
        self,
        figures: TerritoryFigures,
        units: Units,
        labels,
        unassigned,
        reps: list[Rep],
        tolerance: float,
        territory_field: str,
    ) -> None:
        issues = figures.issues
        names = figures.names
        for k, name in enumerate(names):
            if figures.unit_count[k] == 0:
                issues.append(("error", self.tr("Territory “{}” is empty: it has no units.").format(name)))
        for k, name in enumerate(names):
            if figures.unit_count[k] == 0:
                continue
            for a, measure in enumerate(figures.measures):
                deviation = float(figures.deviation[k, a])
                if deviation > tolerance + 1e-9:
                    issues.append(
                        (
                            "warning",
                            self.tr("Territory “{}” is over tolerance on {}: {:+.1f} % of its target.").format(
                                name, measure, 100 * deviation
                            ),
                        )
                    )
                elif deviation < -tolerance - 1e-9:
                    issues.append(
                        (
                            "warning",
                            self.tr("Territory “{}” is under tolerance on {}: {:+.1f} % of its target.").format(
                                name, measure, 100 * deviation
                            ),
                        )
                    )
        for k, name in enumerate(names):
            if figures.unit_count[k] > 0 and not figures.contiguous[k]:
                issues.append(
                    (
                        "warning",
                        self.tr("Territory “{}” is not contiguous: it is in {} parts.").format(
                            name, int(figures.parts[k])
                        ),
                    )
                )
        for k, name in enumerate(names):
            if figures.enclave_of[k] is not None:
                issues.append(
                    (
                        "warning",
                        self.tr("Territory “{}” is an enclave: it is entirely surrounded by territory “{}”.").format(
                            name, figures.enclave_of[k]
                        ),
                    )
                )
        if len(unassigned):
            issues.append(
                (
                    "warning",
                    self.tr("{} units have no territory (empty “{}”): {}.").format(
                        len(unassigned), territory_field, unit_list(unassigned, units, self._unit_names)
                    ),
                )
            )
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(" ".join(name.split()).casefold(), []).append(name)
        for similar in groups.values():
            if len(similar) > 1:
                issues.append(
                    (
                        "warning",
                        self.tr(
                            "Territory names differ only in case or spaces: {}. They are "
                            "counted as different territories."
                        ).format(", ".join(f"“{n}”" for n in similar)),
                    )
                )
        self._validate_reps(issues, figures, units, labels, reps)

    def _validate_reps(self, issues, figures: TerritoryFigures, units: Units, labels, reps: list[Rep]) -> None:
        if not reps:
            return
        names = figures.names
        seen: dict[str, int] = {}
        for rep in reps:
            seen[rep.name] = seen.get(rep.name, 0) + 1
        for name, count in seen.items():
            if count > 1:
                issues.append(("warning", self.tr("{} reps are named “{}”.").format(count, name)))
        by_territory: dict[str, list[str]] = {}
        for rep in reps:
            if rep.territory is None:
                issues.append(("warning", self.tr("Rep “{}” (feature {}) has no territory.").format(rep.name, rep.fid)))
                continue
            by_territory.setdefault(rep.territory, []).append(rep.name)
        for territory, rep_names in by_territory.items():
            if len(rep_names) > 1:
                issues.append(
                    (
                        "warning",
                        self.tr("Territory “{}” has {} reps ({}); distances are measured from “{}”.").format(
                            territory, len(rep_names), ", ".join(rep_names), rep_names[0]
                        ),
                    )
                )
        for name in names:
            if name not in by_territory:
                issues.append(("info", self.tr("Territory “{}” has no rep.").format(name)))
        home = _unit_at(units, np.array([rep.position for rep in reps]))
        for rep, i in zip(reps, home):
            if rep.territory is None:
                continue
            if i < 0:
                issues.append(("warning", self.tr("Rep “{}” lives outside every unit of the layer.").format(rep.name)))
            elif labels[i] < 0 or names[labels[i]] != rep.territory:
                where = names[labels[i]] if labels[i] >= 0 else self.tr("an unassigned unit")
                issues.append(
                    (
                        "warning",
                        self.tr("Rep “{}” lives outside their territory “{}” (in {}).").format(
                            rep.name, rep.territory, where
                        ),
                    )
                )

    # -- outputs -------------------------------------------------------------------------------
    def _dissolve(self, geometries, labels, p: int, is_polygon: bool, feedback, start, end) -> list[QgsGeometry]:
        out = []
        for k in range(p):
            if feedback.isCanceled():
                raise QgsProcessingException(self.tr("Cancelled."))
            feedback.setProgress(start + (end - start) * k / max(p, 1))
            parts = [geometries[i] for i in np.flatnonzero(labels == k)]
            geometry = QgsGeometry.unaryUnion(parts) if parts else QgsGeometry()
            if not geometry.isNull():
                point_type = QgsWkbTypes.GeometryType.PointGeometry
                if not is_polygon and QgsWkbTypes.geometryType(geometry.wkbType()) != point_type:
                    geometry = QgsGeometry()
                else:
                    geometry.convertToMultiType()
            out.append(geometry)
        return out

    def _rep_travel(self, parameters, context, feedback, units: Units, labels, names, reps) -> dict:
        """Minutes by road from each territory's rep (the first one named for it) to its units."""
        from ..core.plan.matching import unit_weights

        p = len(names)
        first: dict[int, Rep] = {}
        for rep in reps:
            if rep.territory in names:
                first.setdefault(names.index(rep.territory), rep)
        out = {key: [None] * p for key in ("mean", "weighted", "max")}
        if not first:
            return out
        order = sorted(first)
        homes = np.array([first[k].position for k in order], dtype=float)
        minutes = rep_travel_minutes(self, parameters, context, feedback, units, homes)
        weights = unit_weights(units.workloads)
        for row, k in enumerate(order):
            members = np.flatnonzero(labels == k)
            time = minutes[row, members]
            ok = np.isfinite(time)
            if not ok.any():
                continue
            w = weights[members][ok]
            out["mean"][k] = float(time[ok].mean())
            out["weighted"][k] = float((w * time[ok]).sum() / w.sum()) if w.sum() > 0 else float(time[ok].mean())
            out["max"][k] = float(time[ok].max())
        return out

    def _output_fields(self, figures: TerritoryFigures, shapefile: bool) -> tuple[QgsFields, list[str]]:
        spec: list[tuple[str, object, str]] = [
            (TERRITORY, STRING, self.tr("Territory code")),
            ("name", STRING, self.tr("Name")),
            ("rep", STRING, self.tr("Rep")),
            ("colour", STRING, self.tr("Colour")),
            ("locked", INT, self.tr("Locked (1 = yes)")),
            ("units", INT, self.tr("Units")),
        ]
        for measure in figures.measures:
            if measure != "units":
                spec.append((measure, DOUBLE, self.tr("{} (sum)").format(measure)))
            spec.append((f"{measure}_tgt", DOUBLE, self.tr("{} target").format(measure)))
            spec.append((f"{measure}_dev", DOUBLE, self.tr("{} deviation (%)").format(measure)))
        spec += [
            ("area_km2", DOUBLE, self.tr("Area (km²)")),
            ("perim_km", DOUBLE, self.tr("Perimeter (km)")),
            ("polsby", DOUBLE, self.tr("Polsby-Popper compactness")),
            ("parts", INT, self.tr("Parts")),
            ("contiguous", INT, self.tr("Contiguous (1 = yes)")),
            ("enclave_of", STRING, self.tr("Enclave of")),
            ("within_tol", INT, self.tr("Within tolerance (1 = yes)")),
            ("rep_avg_km", DOUBLE, self.tr("Rep mean distance (km)")),
            ("rep_max_km", DOUBLE, self.tr("Rep max distance (km)")),
        ]
        if figures.rep_travel is not None:
            spec += [
                ("rep_avg_min", DOUBLE, self.tr("Rep mean travel time (min)")),
                ("rep_wavg_min", DOUBLE, self.tr("Rep workload-weighted travel time (min)")),
                ("rep_max_min", DOUBLE, self.tr("Rep max travel time (min)")),
            ]
        names = _unique([s[0] for s in spec])
        if shapefile:
            names = report.short_field_names(names)
        fields = QgsFields()
        for name, (_, kind, alias) in zip(names, spec):
            qfield = make_field(name, kind, 254 if kind == STRING else 0)
            qfield.setAlias(alias)
            fields.append(qfield)
        return fields, names

    def _write_layer(self, parameters, context, source, figures: TerritoryFigures, dissolved, is_polygon: bool):
        destination = destination_of(parameters, self.OUTPUT)
        fields, field_names = self._output_fields(figures, report.is_dbf_destination(destination))
        wkb = QgsWkbTypes.Type.MultiPolygon if is_polygon else QgsWkbTypes.Type.MultiPoint
        sink, out_id = self.parameterAsSink(parameters, self.OUTPUT, context, fields, wkb, source.sourceCrs())
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT))
        for k, name in enumerate(figures.names):
            row = figures.rows[k]
            values: list = [name, row.name, figures.rep[k] or row.rep, row.colour, 1 if row.locked else 0,
                            int(figures.unit_count[k])]
            for a, measure in enumerate(figures.measures):
                if measure != "units":
                    values.append(float(figures.sums[k, a]))
                values.append(float(figures.targets[k, a]))
                values.append(deviation_percent(figures.deviation[k, a]))
            values += [
                figures.area_km2[k],
                figures.perimeter_km[k],
                figures.polsby_popper[k],
                int(figures.parts[k]),
                1 if figures.contiguous[k] else 0,
                figures.enclave_of[k],
                1 if figures.within[k] else 0,
                figures.rep_mean_km[k],
                figures.rep_max_km[k],
            ]
            if figures.rep_travel is not None:
                values += [figures.rep_travel[key][k] for key in ("mean", "weighted", "max")]
            feature = QgsFeature(fields)
            feature.setGeometry(dissolved[k])
            feature.setAttributes(values)
            add_feature(sink, feature)
        TerritoryStyler.attach(out_id, field_names[0], figures.names, context, figures.rows, outline=True)
        return out_id

    def _map_image(self, source, units: Units, labels, names, geometries, dissolved, reps: list[Rep], context,
                   rows: list[TerritoryRow]):
        """The alignment drawn by QGIS: units in their territory colours, territory outlines and
        names, reps as stars."""
        crs = source.sourceCrs()
        fields = QgsFields()
        fields.append(make_field(TERRITORY, STRING))
        unit_layer = QgsMemoryProviderUtils.createMemoryLayer("units", fields, source.wkbType(), crs)
        features = []
        for i, geometry in enumerate(geometries):
            feature = QgsFeature(fields)
            feature.setGeometry(geometry)
            feature.setAttributes([names[labels[i]] if labels[i] >= 0 else None])
            features.append(feature)
        unit_layer.dataProvider().addFeatures(features)
        apply_territory_style(unit_layer, TERRITORY, names, {r.code: r.colour for r in rows})
        layers = [unit_layer]
        if units.is_polygon:
            outline = QgsMemoryProviderUtils.createMemoryLayer("territories", fields, QgsWkbTypes.Type.MultiPolygon,
                                                               crs)
            outline.dataProvider().addFeatures(
                [_feature(fields, g, [r.label]) for g, r in zip(dissolved, rows) if not g.isNull()]
            )
            symbol = QgsSymbol.defaultSymbol(outline.geometryType())
            symbol.symbolLayer(0).setBrushStyle(_no_brush())
            symbol.symbolLayer(0).setStrokeColor(QColor(30, 30, 30))
            symbol.symbolLayer(0).setStrokeWidth(0.5)
            outline.renderer().setSymbol(symbol)
            _label(outline)
            layers.insert(0, outline)
        if reps:
            rep_fields = QgsFields()
            rep_fields.append(make_field("rep", STRING))
            rep_layer = QgsMemoryProviderUtils.createMemoryLayer("reps", rep_fields, QgsWkbTypes.Type.Point,
                                                                 reps[0].crs)
            rep_layer.dataProvider().addFeatures(
                [_feature(rep_fields, QgsGeometry.fromPointXY(rep.point), [rep.name]) for rep in reps]
            )
            star = QgsSymbol.defaultSymbol(rep_layer.geometryType())
            star.setColor(QColor(20, 20, 20))
            star.setSize(3.2)
            star.symbolLayer(0).setShape(_star_shape())
            rep_layer.renderer().setSymbol(star)
            layers.insert(0, rep_layer)
        # Geographic layers are drawn in the local metric projection so shapes are not stretched.
        map_crs = units.metric_crs if crs.isGeographic() else crs
        extent = source.sourceExtent()
        if map_crs != crs:
            extent = QgsCoordinateTransform(crs, map_crs, context.transformContext()).transformBoundingBox(extent)
        return report.render_map(layers, map_crs, extent, transform_context=context.transformContext())

    def _report_html(self, figures: TerritoryFigures, summary: dict, image, with_reps: bool) -> str:
        esc, fmt = report.esc, report.fmt
        names = figures.names
        colours = report.colours_of(figures.rows)
        labels = [row.label for row in figures.rows]
        tolerance = summary["tolerance"]
        body = [
            f'<p class="meta">{esc(self.tr("Layer"))}: <b>{esc(summary["layer"])}</b> · '
            f"{esc(self.tr('territory field'))}: <b>{esc(summary['field'])}</b> · "
            f"{esc(self.tr('measures'))}: <b>{esc(', '.join(figures.measures))}</b> · "
            f"{esc(self.tr('tolerance'))}: <b>±{fmt(100 * tolerance)} %</b> · "
            f"{esc(self.tr('units'))}: <b>{summary['units']}</b></p>"
        ]
        p = len(names)
        cards = [
            (str(p), self.tr("territories"), ""),
            (f"{summary['within']} / {p}", self.tr("within tolerance"), "ok" if summary["within"] == p else "bad"),
            (
                f"{fmt(summary['max_deviation'])} %",
                self.tr("worst deviation"),
                "ok" if summary["max_deviation"] <= 100 * tolerance + 1e-9 else "bad",
            ),
            (str(summary["unassigned"]), self.tr("unassigned units"), "ok" if not summary["unassigned"] else "bad"),
            (str(len(figures.issues)), self.tr("problems listed"), "ok" if not figures.issues else "warn"),
        ]
        for measure, cv in summary["cv"].items():
            cards.append(
                (f"{fmt(cv)} %" if cv is not None else "–", self.tr("coefficient of variation, {}").format(measure), "")
            )
        body.append(report.cards(cards))

        body.append(f"<h2>{esc(self.tr('Map'))}</h2>")
        body.append(report.image_tag(image, self.tr("Map of the territories")))

        body.append(f"<h2>{esc(self.tr('Balance'))}</h2>")
        for a, measure in enumerate(figures.measures):
            body.append(
                "<div>"
                + report.bar_chart(measure, labels, figures.sums[:, a], figures.targets[:, a], tolerance, colours)
                + "</div>"
            )

        body.append(f"<h2>{esc(self.tr('Territories'))}</h2>")
        headers = [self.tr("Territory"), self.tr("Units")]
        for measure in figures.measures:
            if measure != "units":
                headers.append(measure)
            headers += [self.tr("{} target").format(measure), self.tr("{} deviation %").format(measure)]
        headers += [
            self.tr("Area km²"),
            self.tr("Perimeter km"),
            self.tr("Polsby-Popper"),
            self.tr("Parts"),
            self.tr("Contiguous"),
            self.tr("Enclave of"),
        ]
        if with_reps:
            headers += [self.tr("Rep"), self.tr("Rep mean km"), self.tr("Rep max km")]
            if figures.rep_travel is not None:
                headers += [self.tr("Rep mean min"), self.tr("Rep weighted min"), self.tr("Rep max min")]
        rows, flagged = [], []
        for k in range(len(names)):
            row = [report.swatch(colours[k]) + esc(report.display_name(figures.rows[k])),
                   str(int(figures.unit_count[k]))]
            for a, measure in enumerate(figures.measures):
                if measure != "units":
                    row.append(fmt(figures.sums[k, a]))
                row.append(fmt(figures.targets[k, a]))
                deviation = 100 * float(figures.deviation[k, a])
                css = "ok" if abs(deviation) <= 100 * tolerance + 1e-7 else "bad"
                row.append(f'<span class="{css}">{deviation:+.1f}</span>')
            row += [
                fmt(figures.area_km2[k]),
                fmt(figures.perimeter_km[k]),
                fmt(figures.polsby_popper[k], 3),
                str(int(figures.parts[k])),
                self.tr("yes") if figures.contiguous[k] else f'<span class="bad">{esc(self.tr("no"))}</span>',
                esc(figures.enclave_of[k]),
            ]
            if with_reps:
                row += [esc(figures.rep[k]), fmt(figures.rep_mean_km[k]), fmt(figures.rep_max_km[k])]
                if figures.rep_travel is not None:
                    row += [fmt(figures.rep_travel[key][k]) for key in ("mean", "weighted", "max")]
            rows.append(row)
            flagged.append(
                not figures.within[k]
                or not figures.contiguous[k]
                or figures.enclave_of[k] is not None
                or figures.unit_count[k] == 0
            )
        numeric = [False] + [True] * (len(headers) - 1)
        numeric[headers.index(self.tr("Contiguous"))] = False
        numeric[headers.index(self.tr("Enclave of"))] = False
        if with_reps:
            numeric[headers.index(self.tr("Rep"))] = False
        body.append(report.table(headers, rows, numeric, flagged))

        body.append(f"<h2>{esc(self.tr('Validation'))}</h2>")
        if figures.issues:
            css = {"error": "bad", "warning": "warn", "info": ""}
            body.append(
                '<ul class="issues">'
                + "".join(f'<li class="{css.get(severity, "")}">{esc(text)}</li>' for severity, text in figures.issues)
                + "</ul>"
            )
        else:
            body.append(f'<p class="ok">{esc(self.tr("No problems found."))}</p>')
        body.append(f"<h2>{esc(self.tr('How to read this report'))}</h2>")
        body.append(
            "<ul>"
            + "".join(
                f"<li>{esc(text)}</li>"
                for text in (
                    self.tr(
                        "Target: each territory's equal share of the layer's total, unassigned units included. "
                        "Deviation: (sum − target) / target."
                    ),
                    self.tr(
                        "Coefficient of variation: the standard deviation of the territory sums divided by their mean; "
                        "0 % is perfect balance."
                    ),
                    self.tr("Polsby-Popper: 4π × area / perimeter²; 1 for a circle, near 0 for long thin shapes."),
                    self.tr(
                        "Parts: pieces of the territory that do not touch each other; a contiguous territory has 1."
                    ),
                    self.tr("Enclave: a territory entirely surrounded by one other territory."),
                    self.tr("Rep distances: straight lines from the rep to each unit's centre, mean and maximum."),
                )
            )
            + "</ul>"
        )
        return report.document(self.tr("Territory report"), "\n".join(body))


# --- helpers ----------------------------------------------------------------------------------


def _plan_figures(units: Units, labels: np.ndarray, p: int, tolerance: float):
    """The core's figures (the same the dock shows): unassigned units (label -1) count in no
    territory but their workload counts in the targets, since it still has to be served."""
    return plan_figures(
        labels, units.workloads, units.adjacency, units.positions, territory_count=p, tolerance=tolerance
    )


def _coefficient_of_variation(values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if len(values) else 0.0
    if mean <= 0:
        return None
    return round(100.0 * float(values.std()) / mean, 3)


def _edge_units(units: Units) -> np.ndarray:
    """Units on the outer edge of the layer: polygons within snapping distance of the outline of
    all units (holes such as lakes do not count as edge); points on the convex hull."""
    n = units.count
    edge = np.zeros(n, dtype=bool)
    if not units.is_polygon:
        from scipy.spatial import ConvexHull, QhullError

        unique = np.unique(units.positions, axis=0)
        if len(unique) < 3:
            return np.ones(n, dtype=bool)
        try:
            hull = ConvexHull(units.positions)
        except QhullError:
            return np.ones(n, dtype=bool)
        edge[hull.vertices] = True
        return edge
    tolerance = default_snap_tolerance(units.geometries)
    union = QgsGeometry.unaryUnion(units.geometries).buffer(tolerance, 2)
    rings = []
    for part in union.constParts():
        exterior = part.exteriorRing() if hasattr(part, "exteriorRing") else None
        if exterior is not None:
            rings.append(QgsGeometry(exterior.clone()))
    if not rings:
        return np.ones(n, dtype=bool)
    outline = QgsGeometry.collectGeometry(rings)
    engine = QgsGeometry.createGeometryEngine(outline.constGet())
    engine.prepareGeometry()
    for i, geometry in enumerate(units.geometries):
        edge[i] = engine.distance(geometry.constGet()) <= 3 * tolerance
    return edge


def _unit_at(units: Units, points: np.ndarray) -> np.ndarray:
    """Index of the unit each metric point lies in (polygons; -1 when in none) or of the nearest
    unit (points)."""
    out = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0:
        return out
    if not units.is_polygon:
        for r, point in enumerate(points):
            out[r] = int(np.argmin(np.hypot(*(units.positions - point).T)))
        return out
    index = QgsSpatialIndex()
    for i, geometry in enumerate(units.geometries):
        index.addFeature(i, geometry.boundingBox())
    for r, (x, y) in enumerate(points):
        point = QgsGeometry.fromPointXY(QgsPointXY(float(x), float(y)))
        for i in index.intersects(point.boundingBox()):
            if units.geometries[i].intersects(point):
                out[r] = i
                break
    return out


def _unique(names: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, number = name, 2
        while candidate.lower() in seen:
            candidate = f"{name}_{number}"
            number += 1
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def _feature(fields: QgsFields, geometry: QgsGeometry, attributes: list) -> QgsFeature:
    feature = QgsFeature(fields)
    feature.setGeometry(geometry)
    feature.setAttributes(attributes)
    return feature


def _label(layer) -> None:
    settings = QgsPalLayerSettings()
    settings.fieldName = TERRITORY
    text = QgsTextFormat()
    text.setSize(9)
    text.setColor(QColor(20, 20, 20))
    buffer = QgsTextBufferSettings()
    buffer.setEnabled(True)
    buffer.setSize(1.0)
    buffer.setColor(QColor(255, 255, 255))
    text.setBuffer(buffer)
    settings.setFormat(text)
    layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
    layer.setLabelsEnabled(True)


def _no_brush():
    from qgis.PyQt.QtCore import Qt

    return Qt.BrushStyle.NoBrush


def _star_shape():
    from qgis.core import QgsSimpleMarkerSymbolLayerBase

    return QgsSimpleMarkerSymbolLayerBase.Shape.Star
