"""Territory statistics' performance part: sales and potential per unit, penetration and
attainment per territory (with the goals of the territory table), their columns in the
territories output, and the opportunities output (the units with the most untapped potential)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qgis.core import (
    QgsFeature,
    QgsFields,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
)

from ..compat import DOUBLE, INT, STRING, make_field
from ..core.plan.index import INDEX_AVERAGE, INDEX_NAME
from ..core.plan.performance import Performance, territory_performance, top_opportunities, untapped_potential
from ..i18n import tr
from ..layers.alignment import read_unit_names
from ..layers.territory_table import TerritoryRow
from ..layers.thematic import OverUnderScale
from ..layers.unit_values import read_unit_values
from ..layers.units import UnitDataError, Units
from ..layers.values import likely_name_field
from .engine_run import check_cancelled
from .outputs import add_feature, destination_of, output_field_names
from .parameters import (
    INPUT,
    OPPORTUNITY_COUNT,
    OUTPUT_OPPORTUNITIES,
    PERFORMANCE_THRESHOLD,
    POTENTIAL_FIELD,
    SALES_FIELD,
)
from .report_performance import Opportunity
from .territory_layer import Column, figure_columns

HELP = (
    "<b>Sales field</b> and <b>potential field</b>: optional, per unit. Per territory the layer and the "
    "report add sales, potential, penetration (sales / potential, %), attainment (sales / goal, %, with "
    "the goals of the territory table, see Set territory goals) and their ranks (1 = best); the report "
    "gains a performance section (ranked charts, potential against sales, the territories below the "
    "<b>performance threshold</b>: attainment under that % of goal, or without goals penetration under "
    "that % of the overall penetration) and the over/under map. NULL or negative sales or potential are "
    "errors.\n"
    "<b>Opportunities</b> (output): the <b>opportunity count</b> units with the most untapped potential: "
    "a unit's potential minus the sales its territory's penetration predicts (potential × (1 − "
    "penetration)), with their name (the unit name field, or the layer's name field), territory and rep; "
    "loaded coloured by untapped potential.\n"
    "The territories output loads coloured over/under target (a diverging ramp centred on the target: "
    "1,000 on the index, 0 % deviation on the first measure otherwise; the tolerance band is neutral); "
    "its territory colours stay as the style “territory colours” (Layers panel ▸ Styles).\n"
)


@dataclass
class OverUnder:
    """What the over/under map shows: the territories output's ``column``, its value per
    territory, the scale centred on the target and how its numbers read."""

    column: str
    values: list
    scale: OverUnderScale
    unit: str
    decimals: int
    title: str

    @classmethod
    def of(cls, figures, tolerance: float) -> OverUnder:
        """The index against 1,000 when the run has it, else the first measure's deviation against 0 %."""
        if INDEX_NAME in figures.measures:
            values = figures.sums[:, figures.measures.index(INDEX_NAME)].tolist()
            return cls(INDEX_NAME, values, OverUnderScale.fit(values, INDEX_AVERAGE, tolerance * INDEX_AVERAGE), "",
                       0, tr("Over and under target: the index (1,000 = the average territory)"))
        measure = figures.measures[0]
        values = (100.0 * figures.deviation[:, 0]).tolist()
        return cls(f"{measure}_dev", values, OverUnderScale.fit(values, 0.0, 100.0 * tolerance), " %", 1,
                   tr("Over and under target: {} (deviation from the target, %)").format(measure))


def add_performance_parameters(algorithm) -> None:
    """SALES_FIELD, POTENTIAL_FIELD, PERFORMANCE_THRESHOLD and OPPORTUNITY_COUNT."""
    for name, description in ((SALES_FIELD, tr("Sales field (per unit)")),
                              (POTENTIAL_FIELD, tr("Potential field (per unit)"))):
        algorithm.addParameter(QgsProcessingParameterField(
            name, description, parentLayerParameterName=INPUT, type=QgsProcessingParameterField.DataType.Numeric,
            optional=True))
    algorithm.addParameter(QgsProcessingParameterNumber(
        PERFORMANCE_THRESHOLD, tr("Performance threshold (% of goal, or of the overall penetration)"),
        QgsProcessingParameterNumber.Type.Double, defaultValue=90.0, minValue=0.0))
    algorithm.addParameter(QgsProcessingParameterNumber(
        OPPORTUNITY_COUNT, tr("Opportunities to list (units with the most untapped potential)"),
        QgsProcessingParameterNumber.Type.Integer, defaultValue=20, minValue=1))


def add_opportunities_output(algorithm) -> None:
    """OUTPUT_OPPORTUNITIES: optional, the units with the most untapped potential."""
    algorithm.addParameter(QgsProcessingParameterFeatureSink(
        OUTPUT_OPPORTUNITIES, tr("Opportunities (untapped potential)"), QgsProcessing.SourceType.TypeVectorAnyGeometry,
        optional=True, createByDefault=False))


@dataclass
class PerformanceRun:
    """Sales and potential per unit and what follows from them per territory and unit."""

    sales_field: str
    potential_field: str
    sales: np.ndarray
    potential: np.ndarray | None
    performance: Performance
    untapped: np.ndarray | None
    threshold: float
    count: int

    def columns(self):
        """The territories output's performance columns."""
        performance = self.performance
        pairs = [(Column("sales", DOUBLE, tr("Sales")), performance.sales.tolist())]
        if self.potential is not None:
            pairs += [(Column("potential", DOUBLE, tr("Potential")), performance.potential.tolist()),
                      (Column("penetration", DOUBLE, tr("Penetration (% of potential)")),
                       _figures(performance.penetration)),
                      (Column("penetration_rank", INT, tr("Penetration rank (1 = highest)")),
                       _ranks(performance.penetration_rank))]
        if performance.has_goals:
            pairs += [(Column("attainment", DOUBLE, tr("Attainment (% of goal)")), _figures(performance.attainment)),
                      (Column("attainment_rank", INT, tr("Attainment rank (1 = highest)")),
                       _ranks(performance.attainment_rank))]
        return figure_columns(*pairs)

    def top(self) -> np.ndarray:
        """The units with the most untapped potential, most first."""
        return np.zeros(0, dtype=np.int64) if self.untapped is None else top_opportunities(self.untapped, self.count)


def read_performance(algorithm, parameters, context, source, units: Units, labels: np.ndarray,
                     rows: list[TerritoryRow], feedback) -> PerformanceRun | None:
    """The performance of the alignment ``labels``; None without a sales field. Raises naming the
    field and the fix for a potential without sales, and for NULL or negative values."""
    sales_field = algorithm.parameterAsString(parameters, SALES_FIELD, context)
    potential_field = algorithm.parameterAsString(parameters, POTENTIAL_FIELD, context)
    if not sales_field:
        if potential_field:
            raise QgsProcessingException(tr(
                "A potential field (“{}”) was given without a sales field. Give the sales field too: penetration is "
                "sales against potential.").format(potential_field))
        return None
    try:
        sales = read_unit_values(source, [sales_field], units, tr("sales"), feedback)[:, 0]
        potential = (read_unit_values(source, [potential_field], units, tr("potential"), feedback)[:, 0]
                     if potential_field else None)
    except UnitDataError as error:
        raise QgsProcessingException(str(error)) from error
    goals = [row.goal if row.goal is not None else np.nan for row in rows]
    # without potential every territory's potential is 0, so none has a penetration
    performance = territory_performance(labels, sales, potential if potential is not None else np.zeros_like(sales),
                                        len(rows), goals)
    untapped = untapped_potential(labels, potential, performance.penetration) if potential is not None else None
    return PerformanceRun(sales_field, potential_field, sales, potential, performance, untapped,
                          algorithm.parameterAsDouble(parameters, PERFORMANCE_THRESHOLD, context),
                          algorithm.parameterAsInt(parameters, OPPORTUNITY_COUNT, context))


def opportunities(run: PerformanceRun, labels: np.ndarray, rows: list[TerritoryRow], reps: list,
                  unit_names: list[str]) -> list[Opportunity]:
    """The report's list: the top units with their territory and rep."""
    out = []
    for i in run.top():
        k = int(labels[i])
        out.append(Opportunity(unit_names[i], rows[k].label, reps[k] or rows[k].rep, float(run.potential[i]),
                               float(run.sales[i]), float(run.untapped[i])))
    return out


def names_of_units(source, units: Units, unit_names: list[str] | None) -> list[str]:
    """Each unit's name: the unit name field's, else the layer's likely name field's, else its id."""
    if unit_names is not None:
        return unit_names
    return read_unit_names(source, likely_name_field(source), units) or [str(int(fid)) for fid in units.fids]


def write_opportunities(algorithm, parameters, context, feedback, source, units: Units, geometries, run: PerformanceRun,
                        labels: np.ndarray, rows: list[TerritoryRow], reps: list, unit_names: list[str]) -> str | None:
    """OUTPUT_OPPORTUNITIES: one feature per opportunity (its unit's geometry), most first; None
    when the output is not wanted or there is no potential."""
    if run.potential is None or not parameters.get(OUTPUT_OPPORTUNITIES):
        if parameters.get(OUTPUT_OPPORTUNITIES) and run.potential is None:
            feedback.pushWarning(tr("No opportunities are written without a potential field."))
        return None
    spec = [("rank", INT), ("name", STRING), ("territory", STRING), ("territory_name", STRING), ("rep", STRING),
            ("potential", DOUBLE), ("sales", DOUBLE), ("expected_sales", DOUBLE), ("untapped", DOUBLE)]
    fields = QgsFields()
    for name, (_, kind) in zip(output_field_names([s[0] for s in spec], destination_of(parameters,
                                                                                        OUTPUT_OPPORTUNITIES)), spec):
        fields.append(make_field(name, kind, 254 if kind == STRING else 0))
    sink, dest_id = algorithm.parameterAsSink(parameters, OUTPUT_OPPORTUNITIES, context, fields, source.wkbType(),
                                              source.sourceCrs())
    if sink is None:
        return None
    for rank, i in enumerate(run.top(), start=1):
        check_cancelled(feedback)
        k = int(labels[i])
        feature = QgsFeature(fields)
        feature.setGeometry(geometries[i])
        potential = float(run.potential[i])
        expected = potential * float(run.performance.penetration[k]) / 100.0
        feature.setAttributes([rank, unit_names[i], rows[k].code, rows[k].label, reps[k] or rows[k].rep, potential,
                               float(run.sales[i]), expected, float(run.untapped[i])])
        add_feature(sink, feature)
    return dest_id


def _figures(values) -> list:
    return [round(float(v), 3) if np.isfinite(v) else None for v in values]


def _ranks(values) -> list:
    return [int(v) if v > 0 else None for v in values]
