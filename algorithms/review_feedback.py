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
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
    QgsWkbTypes,
)

from ..compat import DOUBLE, INT, STRING, make_field
from ..core.graph import join_islands, undirected
from ..core.metrics import balance_matrix, territory_targets
from ..core.plan.accounts import AccountBook
from ..core.plan.feedback import FEEDBACK_COLUMNS, STATUSES, Alignment, review_requests
from ..layers.feedback_files import read_feedback_folder, read_unit_ids, why_text
from . import parameters as shared
from .base import TerritoryAlgorithm, removes_partial_outputs
from .feedback_html import file_code, write_replies
from .outputs import TerritoryStyler, add_feature, destination_of, output_field_names, write_units
from .parameters import (
    ACCEPTED,
    CONTIGUOUS,
    FEEDBACK_FOLDER,
    OUTPUT,
    OUTPUT_ACCOUNTS,
    OUTPUT_REPLIES,
    OUTPUT_REQUESTS,
    RULE,
    TOLERANCES,
    UNIT_ID_FIELD,
)
from .plan_inputs import PlanInputs

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
    for index, name in enumerate(output_field_names(fields.names(), destination)):
        fields.rename(index, name)
    return fields


def percent(fraction: float) -> float | None:
    """A deviation (fraction of the target) as the outputs write it: percent, 3 decimals
    (territory_layer.deviation_percent's rounding); None when there is no such territory."""
    return round(100.0 * float(fraction), 3) if np.isfinite(fraction) else None


HELP = (
    "Reads every feedback_*.csv the reps saved from their feedback pages and judges each request "
    "against the alignment: what it does to the balance of both territories, whether they stay in one "
    "piece, and whether the request is still valid.\n\n"
    "Requests are taken earliest first (by the time the rep saved them; then territory, unit, action, "
    "file and line); accepted requests build on each other. Checks: an unknown territory or unit id, "
    "or a value that is not a kind or action, is <i>invalid</i>; a page made from another alignment "
    "(its plan id differs) or a unit no longer where the page showed it is <i>stale</i>; two "
    "territories asking for the same unit is a <i>conflict</i> for both; drops of units bordering no other "
    "territory (and account requests when no accounts are given) <i>need review</i>. A drop goes to the "
    "neighbouring territory that takes the unit best.\n\n"
    "<b>Accounts</b> (optional, the parameters of the accounts below): account requests are judged by the same "
    "rule, the account moving as an override: an added account is overridden to the rep's territory (its "
    "override cleared when that is its unit's territory); a dropped one goes back to its unit's territory when "
    "it is kept from outside, else to the territory bordering its unit that takes it best. Workloads count "
    "every account where it is aligned. <b>Accounts with accepted requests</b> (OUTPUT_ACCOUNTS) gets the "
    "accounts with their override field as it then stands.\n\n"
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


class ReviewFeedbackAlgorithm(TerritoryAlgorithm):
    """Review rep feedback: every request judged, the accepted ones applied, a reply per rep."""

    algorithm_id = "reviewfeedback"
    display_name = "Review rep feedback"
    help_text = (HELP, shared.ACCOUNTS_HELP)

    def initAlgorithm(self, config=None):
        shared.add_alignment_inputs(self)
        self.addParameter(QgsProcessingParameterString(
            TOLERANCES, self.tr("Tolerance per balance field (%, comma separated, e.g. 5,10)"), optional=True))
        self.addParameter(QgsProcessingParameterBoolean(
            CONTIGUOUS, self.tr("Keep territories contiguous"), defaultValue=True))
        shared.add_unit_field(self, UNIT_ID_FIELD, self.tr("Unit id field (feature ids when empty)"), optional=True)
        shared.add_accounts(self)
        self.addParameter(QgsProcessingParameterFile(
            FEEDBACK_FOLDER, self.tr("Folder of feedback files (feedback_*.csv)"),
            behavior=QgsProcessingParameterFile.Behavior.Folder))
        self.addParameter(QgsProcessingParameterEnum(
            RULE, self.tr("Rule"), [self.tr("Accept requests that keep balance and contiguity"),
                                    self.tr("Evaluate only (accept nothing)")], defaultValue=0))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT, self.tr("Units with accepted requests"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT_REQUESTS, self.tr("Requests and their review"), QgsProcessing.SourceType.TypeVector))
        self.addParameter(QgsProcessingParameterFolderDestination(OUTPUT_REPLIES, self.tr("Replies to the reps")))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT_ACCOUNTS, self.tr("Accounts with accepted requests (their overrides)"),
            QgsProcessing.SourceType.TypeVector, optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(ACCEPTED, self.tr("Requests accepted")))

    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        inputs = PlanInputs.read(self, parameters, context, feedback)
        territory_field = inputs.territory_field
        tolerance = shared.tolerance(self, parameters, context)
        tolerances = shared.parse_tolerances(self.parameterAsString(parameters, TOLERANCES, context),
                                             inputs.balance_fields)
        contiguous = self.parameterAsBool(parameters, CONTIGUOUS, context)
        accept = self.parameterAsEnum(parameters, RULE, context) == 0
        replies_folder = self.parameterAsString(parameters, OUTPUT_REPLIES, context)
        if territory_field in (PREVIOUS_FIELD, CHANGED_FIELD):
            raise QgsProcessingException(self.tr(
                "The territory field may not be called “{}”: the output uses that name for its own figures. "
                "Rename the field and run again.").format(territory_field))
        # the files first: a folder with nothing to review stops before the layer is read
        requests = read_feedback_folder(self.parameterAsFile(parameters, FEEDBACK_FOLDER, context))

        units = inputs.read_units(self.tr("Reading units and their neighbours…"), 35.0, accounts_until=40.0)
        alignment = inputs.read_alignment(self.tr("No unit has a territory in “{}”. Choose the field that holds the "
                                                "plan the pages were made from."))
        codes, labels = inputs.codes, inputs.labels
        unit_ids = read_unit_ids(inputs.source, self.parameterAsString(parameters, UNIT_ID_FIELD, context), units)
        rows = inputs.rows()
        units = inputs.count_accounts()
        account_run, book = inputs.account_run, inputs.book
        measures = inputs.measures
        workloads = balance_matrix(units.workloads)
        fixed = inputs.fixed_loads(len(codes))
        # islands are joined to their nearest unit, as the engine and every plan figure join them
        adjacency = join_islands(undirected(units.adjacency, units.count), units.positions).adjacency
        plan = Alignment(codes=codes, labels=labels, unit_ids=unit_ids, workloads=workloads,
                         targets=territory_targets(units.workloads, len(codes), fixed_loads=fixed),
                         tolerances=np.asarray(tolerances if tolerances else [tolerance] * workloads.shape[1]),
                         adjacency=adjacency, contiguous=contiguous)
        if book is not None:
            # the accounts' workloads in the balanced measures' columns (none of the units' own)
            plan.accounts = AccountBook(home=book.home, override=book.override,
                                        workloads=account_run.in_measures(book.workloads, workloads.shape[1]))
            plan.account_ids = list(account_run.accounts.ids)
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

        out_id, _ = write_units(self, parameters, OUTPUT, context, feedback, inputs.source, units,
                                [territory, previous, make_field(CHANGED_FIELD, INT)], values_of, (60.0, 85.0))
        TerritoryStyler.attach(out_id, territory_field, list(values), context, rows)
        accounts_id = None
        if book is not None:
            accounts_id = account_run.write_overrides(
                self, parameters, context, feedback, AccountBook(book.home, review.overrides, book.workloads),
                alignment, OUTPUT_ACCOUNTS)
            feedback.pushInfo(self.tr("{} accounts have a new override.").format(
                int((review.overrides != book.override).sum())))
        requests_id = self._write_requests(parameters, context, review, why, codes, measures)
        taken: set[str] = set()
        codes_in_files = sorted({v.request.territory for v in review.verdicts})
        write_replies(replies_folder, {code: file_code(code, taken) for code in codes_in_files}, review, why,
                      codes, names, measures)
        feedback.setProgress(100)
        counts = {status: sum(1 for v in review.verdicts if v.status == status) for status in STATUSES}
        feedback.pushInfo(self.tr("{} requests reviewed: {}. {} units changed territory.").format(
            len(review.verdicts), ", ".join(f"{n} {s}" for s, n in counts.items() if n), int(changed.sum())))
        return {OUTPUT: out_id, OUTPUT_REQUESTS: requests_id, OUTPUT_REPLIES: replies_folder,
                ACCEPTED: counts["accepted"], **({OUTPUT_ACCOUNTS: accounts_id} if accounts_id is not None else {})}

    def _write_requests(self, parameters, context, review, why, codes, measures) -> str:
        fields = request_fields(measures, destination_of(parameters, OUTPUT_REQUESTS))
        sink, dest_id = self.parameterAsSink(parameters, OUTPUT_REQUESTS, context, fields,
                                             QgsWkbTypes.Type.NoGeometry)
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, OUTPUT_REQUESTS))
        for order, (verdict, text) in enumerate(zip(review.verdicts, why), start=1):
            request, impact = verdict.request, verdict.impact
            values = [order] + [getattr(request, name) for name in FEEDBACK_COLUMNS] + [verdict.status, text]
            values += [codes[impact.from_territory] if impact and impact.from_territory >= 0 else None,
                       codes[impact.to_territory] if impact and impact.to_territory >= 0 else None]
            for a in range(len(measures)):
                for side in (0, 1):
                    for figures in ("before", "after"):
                        value = getattr(impact, figures)[side, a] if impact is not None else np.nan
                        values.append(percent(value))
            values.append(None if impact is None else int(impact.contiguous))
            values += [request.source, request.line]
            feature = QgsFeature(fields)
            feature.setAttributes(values)
            add_feature(sink, feature)
        return dest_id
