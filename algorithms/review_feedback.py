"""Review rep feedback: read the reps' feedback files, judge every request against the alignment
(balance, contiguity, conflicts, stale pages), apply the accepted ones to a copy of the units, and
write a reply page per rep so the loop closes."""

from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsFeature,
    QgsField,
    QgsFields,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsWkbTypes,
)

from ..compat import DOUBLE, INT, STRING, make_field, parameter_as_fields
from ..core.graph import join_islands, undirected
from ..core.metrics import balance_matrix, territory_targets
from ..core.plan.feedback import FEEDBACK_COLUMNS, STATUSES, Alignment, review_requests
from ..layers.feedback_files import read_feedback_folder, read_unit_ids, why_text
from ..layers.territory_table import plan_rows, read_territory_table
from ..layers.units import ScaledFeedback
from .common import (
    TerritoryAlgorithm,
    TerritoryStyler,
    add_feature,
    destination_of,
    deviation_percent,
    measure_columns,
    parse_tolerances,
    read_alignment,
    removes_partial_outputs,
    write_units,
)
from .feedback_html import file_code, write_replies
from .report import is_dbf_destination, short_field_names

PREVIOUS_FIELD = "previous_territory"
CHANGED_FIELD = "changed"


def request_fields(measures: list[str], destination: str = "") -> QgsFields:
    """One row per request: the feedback file's columns, the review's answer and the figures."""
    fields = QgsFields()
    fields.append(make_field("order", INT))
    for name in FEEDBACK_COLUMNS:
        fields.append(make_field(name, STRING, 2000 if name == "reason" else 200))
    for name in ("status", "why", "from_territory", "to_territory"):
        fields.append(make_field(name, STRING, 400 if name == "why" else 80))
    for measure in measures:
        for side in ("from", "to"):
            for when in ("before", "after"):
                fields.append(make_field(f"{measure}_{side}_dev_{when}", DOUBLE))
    fields.append(make_field("contiguous", INT))
    fields.append(make_field("file", STRING, 200))
    fields.append(make_field("line", INT))
    if is_dbf_destination(destination):
        for index, name in enumerate(short_field_names(fields.names())):
            fields.rename(index, name)
    return fields


class ReviewFeedbackAlgorithm(TerritoryAlgorithm):
    INPUT = "INPUT"
    TERRITORY_FIELD = "TERRITORY_FIELD"
    TERRITORIES = "TERRITORIES"
    BALANCE_FIELDS = "BALANCE_FIELDS"
    TOLERANCE = "TOLERANCE"
    TOLERANCES = "TOLERANCES"
    CONTIGUOUS = "CONTIGUOUS"
    UNIT_ID_FIELD = "UNIT_ID_FIELD"
    FEEDBACK_FOLDER = "FEEDBACK_FOLDER"
    RULE = "RULE"
    OUTPUT = "OUTPUT"
    OUTPUT_REQUESTS = "OUTPUT_REQUESTS"
    OUTPUT_REPLIES = "OUTPUT_REPLIES"
    ACCEPTED = "ACCEPTED"

    def name(self) -> str:
        return "reviewfeedback"

    def displayName(self) -> str:
        return self.tr("Review rep feedback")

    def shortHelpString(self) -> str:
        return self.tr(
            "Reads every feedback_*.csv the reps saved from their feedback pages and judges each request "
            "against the alignment: what it does to the balance of both territories, whether they stay in one "
            "piece, and whether the request is still valid.\n\n"
            "Requests are taken earliest first (by the time the rep saved them; then territory, unit, action, "
            "file and line); accepted requests build on each other. Checks: an unknown territory or unit id, "
            "or a value that is not a kind or action, is <i>invalid</i>; a page made from another alignment "
            "(its plan id differs) or a unit no longer where the page showed it is <i>stale</i>; two "
            "territories asking for the same unit is a <i>conflict</i> for both; account requests and drops "
            "of units bordering no other territory <i>need review</i>. A drop goes to the neighbouring "
            "territory that takes the unit best.\n\n"
            "<b>Rule</b>: accept a request when both territories end within tolerance, or no further from it "
            "than before, neither is emptied, and (with Contiguous) neither is split; or evaluate only "
            "(every request that could be applied <i>needs review</i>, nothing is accepted).\n"
            "<b>Unit id field</b>: the same field the pages were made with (feature ids when empty).\n"
            "<b>Tolerance</b> / <b>Tolerances</b>: as in Rebalance territories.\n\n"
            "Outputs: the units with the accepted requests applied (the input is never changed; "
            "“previous_territory” and “changed” say what moved), one row per request (status, why, the "
            "territories, per balance field the deviation in percent of both territories before and after), "
            "and a folder of reply_<code>.html pages, one per rep. Result ACCEPTED: requests accepted."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, self.tr("Units layer with an alignment"),
            [QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeVectorPoint]))
        self.addParameter(QgsProcessingParameterField(
            self.TERRITORY_FIELD, self.tr("Territory field"), parentLayerParameterName=self.INPUT))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.TERRITORIES, self.tr("Territory table (names, reps, colours by code)"),
            [QgsProcessing.SourceType.TypeVector], optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.BALANCE_FIELDS, self.tr("Balance fields (workload measures)"), parentLayerParameterName=self.INPUT,
            type=QgsProcessingParameterField.DataType.Numeric, allowMultiple=True, optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.TOLERANCE, self.tr("Tolerance (% of each territory's target)"),
            QgsProcessingParameterNumber.Type.Double, defaultValue=5.0, minValue=0.0, maxValue=100.0))
        self.addParameter(QgsProcessingParameterString(
            self.TOLERANCES, self.tr("Tolerance per balance field (%, comma separated, e.g. 5,10)"), optional=True))
        self.addParameter(QgsProcessingParameterBoolean(
            self.CONTIGUOUS, self.tr("Keep territories contiguous"), defaultValue=True))
        self.addParameter(QgsProcessingParameterField(
            self.UNIT_ID_FIELD, self.tr("Unit id field (feature ids when empty)"), parentLayerParameterName=self.INPUT,
            optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.FEEDBACK_FOLDER, self.tr("Folder of feedback files (feedback_*.csv)"),
            behavior=QgsProcessingParameterFile.Behavior.Folder))
        self.addParameter(QgsProcessingParameterEnum(
            self.RULE, self.tr("Rule"), [self.tr("Accept requests that keep balance and contiguity"),
                                         self.tr("Evaluate only (accept nothing)")], defaultValue=0))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Units with accepted requests"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_REQUESTS, self.tr("Requests and their review"), QgsProcessing.SourceType.TypeVector))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_REPLIES, self.tr("Replies to the reps")))
        self.addOutput(QgsProcessingOutputNumber(self.ACCEPTED, self.tr("Requests accepted")))

    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        territory_field = self.parameterAsString(parameters, self.TERRITORY_FIELD, context)
        balance_fields = parameter_as_fields(self, parameters, self.BALANCE_FIELDS, context)
        tolerance = self.parameterAsDouble(parameters, self.TOLERANCE, context) / 100.0
        tolerances = parse_tolerances(self.parameterAsString(parameters, self.TOLERANCES, context),
                                      balance_fields, self.tr)
        contiguous = self.parameterAsBool(parameters, self.CONTIGUOUS, context)
        accept = self.parameterAsEnum(parameters, self.RULE, context) == 0
        replies_folder = self.parameterAsString(parameters, self.OUTPUT_REPLIES, context)
        if territory_field in (PREVIOUS_FIELD, CHANGED_FIELD):
            raise QgsProcessingException(self.tr(
                "The territory field may not be called “{}”: the output uses that name for its own figures. "
                "Rename the field and run again.").format(territory_field))
        # the files first: a folder with nothing to review stops before the layer is read
        requests = read_feedback_folder(self.parameterAsFile(parameters, self.FEEDBACK_FOLDER, context))

        feedback.setProgressText(self.tr("Reading units and their neighbours…"))
        units = self.read_units(source, balance_fields, context, ScaledFeedback(feedback, 0, 40))
        alignment = read_alignment(source, territory_field, units, feedback)
        codes, labels = alignment.names, alignment.labels
        if not codes:
            raise QgsProcessingException(self.tr(
                "No unit has a territory in “{}”. Choose the field that holds the plan the pages were made "
                "from.").format(territory_field))
        unit_ids = read_unit_ids(source, self.parameterAsString(parameters, self.UNIT_ID_FIELD, context), units)
        known = read_territory_table(self.parameterAsSource(parameters, self.TERRITORIES, context), territory_field)
        rows = plan_rows(codes, labels, units.adjacency, known)
        measures = measure_columns(units)
        workloads = balance_matrix(units.workloads)
        # islands are joined to their nearest unit, as the engine and every plan figure join them
        adjacency = join_islands(undirected(units.adjacency, units.count), units.positions).adjacency
        plan = Alignment(codes=codes, labels=labels, unit_ids=unit_ids, workloads=workloads,
                         targets=territory_targets(units.workloads, len(codes)),
                         tolerances=np.asarray(tolerances if tolerances else [tolerance] * workloads.shape[1]),
                         adjacency=adjacency, contiguous=contiguous)
        feedback.setProgressText(self.tr("Reviewing {} requests…").format(len(requests)))
        review = review_requests(plan, requests, accept=accept)
        feedback.setProgress(60)
        for verdict in review.verdicts:
            if verdict.why == "unknown_territory":
                feedback.pushWarning(self.tr("{} (line {}): territory “{}” is not in the alignment.").format(
                    verdict.request.source, verdict.request.line, verdict.request.territory))
        names = {row.code: row.label for row in rows}
        why = [why_text(v, codes, names) for v in review.verdicts]

        changed = review.labels != labels
        territory = QgsField(alignment.field)
        territory.setName(territory_field)
        previous = QgsField(alignment.field)
        previous.setName(PREVIOUS_FIELD)
        values = alignment.values

        def values_of(i):
            new, old = int(review.labels[i]), int(labels[i])
            return [values[new] if new >= 0 else None, values[old] if old >= 0 else None, 1 if changed[i] else 0]

        out_id, _ = write_units(self, parameters, self.OUTPUT, context, feedback, source, units,
                                [territory, previous, make_field(CHANGED_FIELD, INT)], values_of, (60.0, 85.0))
        TerritoryStyler.attach(out_id, territory_field, list(values), context, rows)
        requests_id = self._write_requests(parameters, context, review, why, codes, measures)
        taken: set[str] = set()
        codes_in_files = sorted({v.request.territory for v in review.verdicts})
        write_replies(replies_folder, {code: file_code(code, taken) for code in codes_in_files}, review, why,
                      codes, names, measures)
        feedback.setProgress(100)
        counts = {status: sum(1 for v in review.verdicts if v.status == status) for status in STATUSES}
        feedback.pushInfo(self.tr("{} requests reviewed: {}. {} units changed territory.").format(
            len(review.verdicts), ", ".join(f"{n} {s}" for s, n in counts.items() if n), int(changed.sum())))
        return {self.OUTPUT: out_id, self.OUTPUT_REQUESTS: requests_id, self.OUTPUT_REPLIES: replies_folder,
                self.ACCEPTED: counts["accepted"]}

    def _write_requests(self, parameters, context, review, why, codes, measures) -> str:
        fields = request_fields(measures, destination_of(parameters, self.OUTPUT_REQUESTS))
        sink, dest_id = self.parameterAsSink(parameters, self.OUTPUT_REQUESTS, context, fields,
                                             QgsWkbTypes.Type.NoGeometry)
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT_REQUESTS))
        for order, (verdict, text) in enumerate(zip(review.verdicts, why), start=1):
            request, impact = verdict.request, verdict.impact
            values = [order] + [getattr(request, name) for name in FEEDBACK_COLUMNS] + [verdict.status, text]
            values += [codes[impact.from_territory] if impact and impact.from_territory >= 0 else None,
                       codes[impact.to_territory] if impact and impact.to_territory >= 0 else None]
            for a in range(len(measures)):
                for side in (0, 1):
                    for figures in ("before", "after"):
                        value = getattr(impact, figures)[side, a] if impact is not None else np.nan
                        values.append(deviation_percent(value) if np.isfinite(value) else None)
            values.append(None if impact is None else int(impact.contiguous))
            values += [request.source, request.line]
            feature = QgsFeature(fields)
            feature.setAttributes(values)
            add_feature(sink, feature)
        return dest_id
