"""Set territory goals: a total goal split top-down by each territory's potential (or workload
index), optionally blended with last period's sales, held between a floor and a cap and rounded
so the goals add up to the total exactly. The output is a territory table with a ``goal`` column."""

from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsFeature,
    QgsFeatureRequest,
    QgsFields,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsWkbTypes,
)

from ..compat import DOUBLE, INT, STRING, make_field
from ..core.plan.goals import set_goals
from ..core.plan.index import INDEX_NAME, check_index_fields, territory_index
from ..layers.territory_table import TerritoryRow, code_column, read_territory_table
from ..layers.values import natural_key, text_or_none
from . import parameters as shared
from .base import TerritoryAlgorithm, removes_partial_outputs
from .engine_run import run_engine
from .outputs import add_feature
from .parameters import (
    AT_CAP,
    AT_FLOOR,
    BASIS,
    CAP,
    FLOOR,
    HISTORY_FIELD,
    HISTORY_WEIGHT,
    INPUT,
    OUTPUT,
    ROUND_TO,
    TERRITORY_COUNT,
    TERRITORY_FIELD,
    TOTAL_GOAL,
)

HELP = (
    "Splits a total goal (quota) over the territories, top-down, by each territory's share of a basis "
    "such as sales potential or the workload index, and writes the territory table with a <b>goal</b> "
    "column. Give that table as the territory table (TERRITORIES) of Statistics, Packets, Build or "
    "Rebalance, or to the panel: the goals travel with the territory codes.\n\n"
    "<b>Territory table or units</b>: the territory table (one row per code, e.g. the territories "
    "written by Build territories) or the units layer; units are summed per territory.\n"
    "<b>Territory field</b>: the territory code of each row (units: each unit's territory). Empty: a "
    "column named “code” or “territory”.\n"
    "<b>Territory table</b>: optional names, reps and colours by code, when the input is the units.\n"
    "<b>Total goal</b>: the amount to split; the goals add up to it exactly.\n"
    "<b>Basis</b>: the numeric field whose share sets each goal (potential, say), or “index”: the "
    "workload index of <b>Index weights</b> (field:weight,…, e.g. accounts:0.6,sales:0.1,potential:0.3; "
    "each field as a share of its total, weighted). Empty basis with index weights: the index.\n"
    "<b>History field</b> and <b>history weight</b>: optional, last period's sales; each territory's share "
    "becomes (1 − weight) × its basis share + weight × its sales share (weight 0.4 = 40 % history).\n"
    "<b>Floor</b> and <b>cap</b>: optional, in % of the average goal (total / territories): no goal below "
    "the floor or above the cap; the territories in between share the rest in proportion.\n"
    "<b>Round to</b>: the step of the goals (1 = whole numbers, 1000 = thousands); the total must be a "
    "multiple of it. Goals are rounded by largest remainder, so they still add up to the total.\n\n"
    "Output: code, name, rep, colour, locked, basis, share (%), goal and bound (floor or cap when one "
    "binds). Results: TERRITORY_COUNT, AT_FLOOR and AT_CAP (territories held by the floor or the cap)."
)


class SetGoalsAlgorithm(TerritoryAlgorithm):
    """Set territory goals: a total goal split over the territories by a basis."""

    algorithm_id = "setgoals"
    display_name = "Set territory goals"
    help_text = (HELP,)

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFeatureSource(
            INPUT, self.tr("Territory table or units layer"), [QgsProcessing.SourceType.TypeVector]))
        self.addParameter(QgsProcessingParameterField(
            TERRITORY_FIELD, self.tr("Territory field (the territory code)"), parentLayerParameterName=INPUT,
            optional=True))
        shared.add_territory_table(self, self.tr("Territory table (names, reps, colours by code), for units"))
        self.addParameter(QgsProcessingParameterNumber(
            TOTAL_GOAL, self.tr("Total goal"), QgsProcessingParameterNumber.Type.Double, minValue=0.0))
        self.addParameter(QgsProcessingParameterField(
            BASIS, self.tr("Basis (a field such as potential, or “index”)"), parentLayerParameterName=INPUT,
            type=QgsProcessingParameterField.DataType.Numeric, optional=True))
        shared.add_index_weights(self)
        self.addParameter(QgsProcessingParameterField(
            HISTORY_FIELD, self.tr("History field (last period's sales)"), parentLayerParameterName=INPUT,
            type=QgsProcessingParameterField.DataType.Numeric, optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            HISTORY_WEIGHT, self.tr("History weight (0 = basis only, 1 = history only)"),
            QgsProcessingParameterNumber.Type.Double, defaultValue=0.5, minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(
            FLOOR, self.tr("Floor (% of the average goal)"), QgsProcessingParameterNumber.Type.Double,
            optional=True, minValue=0.0, maxValue=100.0))
        self.addParameter(QgsProcessingParameterNumber(
            CAP, self.tr("Cap (% of the average goal)"), QgsProcessingParameterNumber.Type.Double,
            optional=True, minValue=100.0))
        self.addParameter(QgsProcessingParameterNumber(
            ROUND_TO, self.tr("Round to (step of the goals)"), QgsProcessingParameterNumber.Type.Double,
            defaultValue=1.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT, self.tr("Territory goals"), QgsProcessing.SourceType.TypeVector))
        self.addOutput(QgsProcessingOutputNumber(TERRITORY_COUNT, self.tr("Territories")))
        self.addOutput(QgsProcessingOutputNumber(AT_FLOOR, self.tr("Goals held up by the floor")))
        self.addOutput(QgsProcessingOutputNumber(AT_CAP, self.tr("Goals held down by the cap")))

    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, INPUT))
        fields = source.fields()
        code_field = self.parameterAsString(parameters, TERRITORY_FIELD, context).strip()
        code_index = fields.lookupField(code_field) if code_field else code_column(fields, None)
        if code_index < 0:
            raise QgsProcessingException(self.tr(
                "The layer has no territory code column (looked for “{}”). Choose the field that holds each row's "
                "territory code in Territory field.").format(code_field or "code, territory"))
        code_field = fields.at(code_index).name()
        basis_field, weights = self._basis(parameters, context, fields)
        history_field = self.parameterAsString(parameters, HISTORY_FIELD, context).strip()
        history_weight = self.parameterAsDouble(parameters, HISTORY_WEIGHT, context) if history_field else 0.0
        read = [basis_field] if basis_field else list(weights.fields)
        if history_field:
            read.append(history_field)

        codes, sums, repeated = self._sums(source, code_index, read, feedback)
        # a territory table names each code once (units repeat them): its names, reps and colours count
        own = {} if repeated else read_territory_table(source, code_field)
        table = shared.territory_table(self, parameters, context, code_field)
        # territories of the table without any unit still get a goal (the floor, or 0)
        extra = [code for code in sorted(table, key=natural_key) if code not in codes]
        codes += extra
        sums = np.vstack([sums, np.zeros((len(extra), sums.shape[1]))]) if extra else sums
        if basis_field:
            basis, basis_name = sums[:, 0], basis_field
        else:
            ingredients = sums[:, :len(weights.fields)]
            basis = run_engine(territory_index, ingredients, ingredients.sum(axis=0), weights)
            basis_name = self.tr("index ({})").format(weights.text())
        history = sums[:, -1] if history_field else None
        floor = self._optional_number(parameters, FLOOR, context)
        cap = self._optional_number(parameters, CAP, context)
        result = run_engine(
            set_goals, basis, self.parameterAsDouble(parameters, TOTAL_GOAL, context), history=history,
            history_weight=history_weight, floor=floor, cap=cap,
            round_to=self.parameterAsDouble(parameters, ROUND_TO, context), basis_name=basis_name,
            history_name=history_field, names=codes)

        rows = [table.get(code) or own.get(code) or TerritoryRow(code=code, name=code) for code in codes]
        sink_fields = self._fields(code_field, history_field)
        sink, dest_id = self.parameterAsSink(parameters, OUTPUT, context, sink_fields,
                                             QgsWkbTypes.Type.NoGeometry, source.sourceCrs())
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, OUTPUT))
        for k, row in enumerate(rows):
            bound = "floor" if result.at_floor[k] else "cap" if result.at_cap[k] else None
            values = [row.code, row.name, row.rep, row.colour, 1 if row.locked else 0, float(basis[k])]
            if history_field:
                values.append(float(history[k]))
            values += [round(100.0 * float(result.shares[k]), 4), float(result.goals[k]), bound]
            feature = QgsFeature(sink_fields)
            feature.setAttributes(values)
            add_feature(sink, feature)
        at_floor, at_cap = int(result.at_floor.sum()), int(result.at_cap.sum())
        feedback.pushInfo(self.tr("Goals for {} territories, {} in all; {} held up by the floor, {} held down by the "
                                  "cap.").format(len(codes), f"{float(result.goals.sum()):,.10g}", at_floor, at_cap))
        return {OUTPUT: dest_id, TERRITORY_COUNT: len(codes), AT_FLOOR: at_floor,
                AT_CAP: at_cap}

    # -- inputs --------------------------------------------------------------------------------
    def _basis(self, parameters, context, fields):
        """(basis field, None) or (None, the index weights)."""
        basis = self.parameterAsString(parameters, BASIS, context).strip()
        weights = shared.index_weights(self, parameters, context)
        wants_index = basis.lower() == INDEX_NAME and (weights is not None or fields.lookupField(basis) < 0)
        if basis and not wants_index:
            index = fields.lookupField(basis)
            if index < 0:
                raise QgsProcessingException(self.tr(
                    "The basis field “{}” is not in the layer. Choose the field whose share sets each goal (e.g. the "
                    "potential), or “index” with index weights.").format(basis))
            if not fields.at(index).isNumeric():
                raise QgsProcessingException(self.tr(
                    "The basis field “{}” is not numeric. Choose a numeric field, or convert it with the Field "
                    "Calculator.").format(basis))
            return basis, None
        if weights is None:
            raise QgsProcessingException(self.tr(
                "Goals need a basis: choose a basis field (e.g. the potential), or give index weights "
                "(field:weight,…, e.g. accounts:0.6,sales:0.1,potential:0.3) to split the total by the workload "
                "index."))
        numeric = [f.name() for f in fields if f.isNumeric()]
        run_engine(check_index_fields, weights, fields.names(), numeric, self.tr("the layer"))
        return None, weights

    def _sums(self, source, code_index: int, names: list[str], feedback) -> tuple[list[str], np.ndarray, bool]:
        """Territory codes (natural order), the sums of ``names`` per code and whether a code repeats
        (units rather than a table); rows without a code are left out (and said so). NULL or
        negative values raise, naming the field and the feature."""
        fields = source.fields()
        indexes = [fields.lookupField(name) for name in names]
        request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes(
            [code_index] + indexes)
        totals: dict[str, np.ndarray] = {}
        without_code, repeated = 0, False
        for count, feature in enumerate(source.getFeatures(request)):
            if count % 1000 == 0 and feedback.isCanceled():
                raise QgsProcessingException(self.tr("Cancelled."))
            code = text_or_none(feature.attribute(code_index))
            if code is None:
                without_code += 1
                continue
            row = np.array([self._number(feature, index, name) for index, name in zip(indexes, names)])
            if code in totals:
                totals[code] += row
                repeated = True
            else:
                totals[code] = row
        if without_code:
            feedback.pushWarning(self.tr("{} rows have no territory code; they are left out of the shares.")
                                 .format(without_code))
        if not totals:
            raise QgsProcessingException(self.tr(
                "No row has a territory code in “{}”. Choose the field that holds the territory codes.").format(
                fields.at(code_index).name()))
        codes = sorted(totals, key=natural_key)
        return codes, np.array([totals[code] for code in codes], dtype=float).reshape(len(codes), len(names)), repeated

    def _number(self, feature, index: int, name: str) -> float:
        value = feature.attribute(index)
        try:
            number = None if text_or_none(value) is None else float(value)
        except (TypeError, ValueError):
            number = None
        if number is None or not np.isfinite(number):
            raise QgsProcessingException(self.tr(
                "Feature {} has no value (NULL) in “{}”. Fill it in (0 where there is nothing) or filter the feature "
                "out.").format(feature.id(), name))
        if number < 0:
            raise QgsProcessingException(self.tr(
                "Feature {} has a negative value ({}) in “{}”. Goal bases and sales are zero or more; correct it.")
                .format(feature.id(), value, name))
        return number

    def _optional_number(self, parameters, name: str, context) -> float | None:
        value = parameters.get(name)
        if value is None or str(value).strip() == "":
            return None
        return self.parameterAsDouble(parameters, name, context)

    # -- output --------------------------------------------------------------------------------
    def _fields(self, code_field: str, history_field: str) -> QgsFields:
        fields = QgsFields()
        fields.append(make_field(code_field, STRING, 80))
        fields.append(make_field("name", STRING, 120))
        fields.append(make_field("rep", STRING, 120))
        fields.append(make_field("colour", STRING, 7))
        fields.append(make_field("locked", INT))
        fields.append(make_field("basis", DOUBLE))
        if history_field:
            fields.append(make_field("history", DOUBLE))
        fields.append(make_field("share", DOUBLE))
        fields.append(make_field("goal", DOUBLE))
        fields.append(make_field("bound", STRING, 5))
        return fields
