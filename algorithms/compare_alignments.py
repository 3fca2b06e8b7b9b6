"""Compare alignments: which units and how much workload change territory between two plans.

The flows are counted in ``core.plan.realignment``, the map drawn in ``report_maps`` and the
HTML written in ``report_compare``.
"""

from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsFeature,
    QgsFeatureRequest,
    QgsField,
    QgsFields,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsWkbTypes,
)

from ..compat import DOUBLE, INT, STRING, make_field
from ..core.plan.accounts import AccountBook, changed_accounts
from ..core.plan.realignment import flow_changes, flows
from ..i18n import tr
from ..layers.territory_table import plan_rows, read_territory_table
from ..layers.values import is_null, natural_key, text_or_none
from . import parameters as shared
from . import report
from .base import TerritoryAlgorithm, removes_partial_outputs
from .engine_run import check_cancelled
from .messages import listed
from .outputs import TerritoryStyler, add_feature, destination_of, output_field_names
from .parameters import (
    ACCOUNTS,
    CHANGED_ACCOUNTS,
    CHANGED_UNITS,
    CHANGED_WORKLOAD,
    FIELD_AFTER,
    FIELD_BEFORE,
    INPUT_AFTER,
    OUTPUT,
    OUTPUT_ACCOUNTS,
    OUTPUT_HTML,
    OUTPUT_SUMMARY,
    OVERRIDE_FIELD,
    OVERRIDE_FIELD_BEFORE,
    TERRITORIES,
    TERRITORIES_CHANGED,
    UNIT_ID_FIELD,
)
from .plan_inputs import PlanInputs
from .report_compare import account_moves, compare_report, unit_moves
from .report_maps import changes_map
from .territory_layer import measure_columns

FROM = "from_territory"
TO = "to_territory"


HELP = (
    "Compares two alignments of the same units (say, last year's territories and a proposal) and "
    "tells who gains what from whom.\n\n"
    "<b>Units layer</b>: the units, with the alignment before (and, in one-layer mode, after).\n"
    "<b>Territory field before</b>: each unit's territory before.\n"
    "<b>Territory field after</b>: each unit's territory after: a different field of the units "
    "layer, or, when a second layer is given, the field of that layer.\n"
    "<b>Layer after</b> (optional): a second layer with the alignment after, e.g. an edited copy. "
    "Its units are matched to the units layer by <b>unit id field</b>, a field both layers have "
    "(fips, ZIP code…); every id must be present once in each layer.\n"
    "<b>Balance fields</b>: numeric workload fields of the units layer; workloads are always "
    "read from the units layer. None chosen: units are counted.\n"
    "<b>Territory table</b> (optional): names and colours by territory code, for the report. "
    "<b>Unit name field</b> (optional): names the units each territory gains and loses in the "
    "report (feature ids otherwise).\n\n"
    "NULL or blank territories are <i>unassigned</i>; a unit that becomes assigned or "
    "unassigned counts as changed, and the summary has a row with an empty territory for "
    "the unassigned units, so that gains and losses balance.\n"
    "<b>Changed units</b> (output): only the units whose territory changed, with all their "
    "attributes and from_territory / to_territory.\n"
    "<b>Summary</b> (output table, no geometry; CSV and XLSX work): per territory the units and "
    "the workload of every measure before, after, gained, lost and net. A shapefile or dBase "
    "destination gets field names cut to 10 characters.\n"
    "<b>Report</b>: a self-contained HTML file with a map of the changes, a gain/loss chart per "
    "measure and, per territory, what it gains from and loses to whom.\n\n"
    "Results: CHANGED_UNITS, CHANGED_WORKLOAD (percent of the first measure's total, or of the "
    "unit count without measures) and TERRITORIES_CHANGED."
)


ACCOUNTS_HELP = (
    "With accounts (the unit id field above also finds the accounts' units when the accounts' unit field is "
    "given), <b>balance fields</b> may name fields of the units or of the accounts; an account follows its unit "
    "unless overridden. The <b>override field</b> holds the overrides after, and before too unless the "
    "<b>override field before</b> (optional, a field of the accounts) holds the overrides before: then an account "
    "whose override changed changes territory even where its unit stays (the territory fields before and after "
    "may then be the same field). The report counts and lists the accounts whose territory changes, the result "
    "gives CHANGED_ACCOUNTS, and <b>changed accounts</b> (optional) gets them with from_territory and "
    "to_territory."
)


class CompareAlignmentsAlgorithm(TerritoryAlgorithm):
    """Compare alignments: who gains what from whom between two plans."""

    algorithm_id = "comparealignments"
    display_name = "Compare alignments"
    help_text = (HELP, shared.ACCOUNTS_HELP, ACCOUNTS_HELP)

    def initAlgorithm(self, config=None):
        shared.add_units_layer(self, self.tr("Units layer"))
        shared.add_unit_field(self, FIELD_BEFORE, self.tr("Territory field before"))
        shared.add_unit_field(self, FIELD_AFTER,
                              self.tr("Territory field after (on the units layer, or on the layer after)"))
        self.addParameter(QgsProcessingParameterFeatureSource(
            INPUT_AFTER, self.tr("Layer after (optional, joined by unit id)"), [QgsProcessing.SourceType.TypeVector],
            optional=True))
        shared.add_unit_field(self, UNIT_ID_FIELD, self.tr("Unit id field (in both layers)"), optional=True)
        shared.add_balance_fields(self)
        shared.add_territory_table(self, self.tr("Territory table (names, reps, colours by code)"))
        shared.add_unit_field(self, shared.UNIT_NAME_FIELD, self.tr("Unit name field (for the report)"), optional=True)
        shared.add_accounts(self, with_name=True)
        self.addParameter(QgsProcessingParameterField(
            OVERRIDE_FIELD_BEFORE, self.tr("Override field before (the override field is the after)"),
            parentLayerParameterName=ACCOUNTS, optional=True))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT, self.tr("Changed units"), QgsProcessing.SourceType.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT_SUMMARY, self.tr("Summary per territory"), QgsProcessing.SourceType.TypeVector))
        self.addParameter(QgsProcessingParameterFileDestination(
            OUTPUT_HTML, self.tr("Realignment report"), self.tr("HTML files (*.html)")))
        self.addOutput(QgsProcessingOutputNumber(CHANGED_UNITS, self.tr("Changed units")))
        self.addOutput(QgsProcessingOutputNumber(CHANGED_WORKLOAD, self.tr("Changed workload (%)")))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT_ACCOUNTS, self.tr("Changed accounts"), QgsProcessing.SourceType.TypeVector, optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(TERRITORIES_CHANGED, self.tr("Territories that change")))
        self.addOutput(QgsProcessingOutputNumber(CHANGED_ACCOUNTS, self.tr("Accounts that change territory")))

    # -- run -----------------------------------------------------------------------------------
    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        # two territory fields, before and after: the plan's inputs are read without one
        inputs = PlanInputs.read(self, parameters, context, feedback, territory_field=None)
        source = inputs.source
        after_source = self.parameterAsSource(parameters, INPUT_AFTER, context)
        field_before = self.parameterAsString(parameters, FIELD_BEFORE, context)
        field_after = self.parameterAsString(parameters, FIELD_AFTER, context)
        id_field = self.parameterAsString(parameters, UNIT_ID_FIELD, context)
        html_path = self.parameterAsFileOutput(parameters, OUTPUT_HTML, context)
        override_before = self.parameterAsString(parameters, OVERRIDE_FIELD_BEFORE, context).strip()
        overrides_differ = bool(override_before) and override_before != self.parameterAsString(
            parameters, OVERRIDE_FIELD, context).strip()
        self._check_fields(source, after_source, field_before, field_after, id_field, overrides_differ)

        table_source = self.parameterAsSource(parameters, TERRITORIES, context)
        known = read_territory_table(table_source, [field_after, field_before])
        # without a territory table, colours are chosen on the territories' adjacency, as Build does
        units = inputs.read_units(self.tr("Reading units…"), 25.0, accounts_until=30.0,
                                  with_adjacency=table_source is None)
        account_run = inputs.account_run
        unit_names = inputs.unit_names()
        before, ids = self._read_column(
            source, field_before, id_field if after_source is not None else None, units, feedback
        )
        if after_source is not None:
            after = self._join_after(after_source, field_after, id_field, ids, feedback)
        else:
            after, _ = self._read_column(source, field_after, None, units, feedback)

        names = sorted({v for v in before + after if v is not None}, key=natural_key)
        names, books = self._account_books(parameters, context, account_run, names, known, override_before)
        units = account_run.with_accounts(units, _geography_in_both(*books) if books else None)
        measures = measure_columns(units)
        weights = units.workloads
        rows: list[str | None] = list(names)
        unassigned = np.array([v is None for v in before + after], dtype=bool)
        count = len(names)
        row_of = {name: r for r, name in enumerate(rows)}
        row_before = np.array([row_of.get(v, count) for v in before], dtype=np.int64)
        row_after = np.array([row_of.get(v, count) for v in after], dtype=np.int64)
        account_changes = self._account_changes(books, names, row_before, row_after)
        if unassigned.any() or (account_changes is not None and account_changes["unaligned"]):
            rows.append(None)
        changed = row_before != row_after
        table = plan_rows(names, np.where(row_after < len(names), row_after, -1), inputs.neighbours(), known)
        moved_between = flows(row_before, row_after, weights, len(rows))
        if account_changes is not None:
            moved_between += _apart_flows(account_run, account_changes, len(rows), weights.shape[1])
        summary = flow_changes(moved_between)

        feedback.setProgressText(self.tr("Writing changed units…"))
        out_id = self._write_changed(parameters, context, source, units, before, after, changed, names, feedback,
                                     table)
        summary_id = self._write_summary(parameters, context, rows, measures, summary)
        accounts_id = None
        if account_changes is not None and parameters.get(OUTPUT_ACCOUNTS):
            accounts_id = self._write_changed(
                parameters, context, self.parameterAsSource(parameters, ACCOUNTS, context), account_run.accounts,
                account_changes["before"], account_changes["after"], account_changes["changed"], names, feedback,
                table, OUTPUT_ACCOUNTS)

        changed_units = int(np.count_nonzero(changed))
        # the first measure (the unit count without measures), of the units and of the accounts apart
        first = moved_between[:, :, 1 if weights.shape[1] else 0]
        total = float(first.sum())
        changed_workload = round(100.0 * float(total - np.trace(first)) / total, 3) if total > 0 else 0.0
        moved = (summary[:, 0, 2] > 0) | (summary[:, 0, 3] > 0)
        territories_changed = int(sum(bool(moved[r]) for r, name in enumerate(rows) if name is not None))

        feedback.setProgressText(self.tr("Writing the realignment report…"))
        feedback.setProgress(85)
        check_cancelled(feedback)
        image = changes_map(source, units, after, changed, names, context, table)
        info = {
            "layer": source.sourceName(),
            "after_layer": after_source.sourceName() if after_source else None,
            "before": field_before,
            "after": field_after,
            "id": id_field,
            "units": units.count,
            "changed_units": changed_units,
            "changed_workload": changed_workload,
            "territories_changed": territories_changed,
        }
        moves = unit_moves(row_before, row_after, changed, weights, unit_names, units, len(rows))
        changed_list = None
        if account_changes is not None:
            info["changed_accounts"] = int(account_changes["changed"].sum())
            changed_list = account_moves(account_run.accounts, account_changes)
            feedback.pushInfo(self.tr("{} of {} accounts change territory.").format(
                info["changed_accounts"], account_run.accounts.count))
        report.write_document(html_path, compare_report(rows, measures, summary, moved_between, info, image, table,
                                                        moves, changed_list))
        feedback.setProgress(100)
        feedback.pushInfo(self.tr("{} of {} units change territory ({:.2f} % of {}).").format(
            changed_units, units.count, changed_workload, measures[0]))
        return {
            OUTPUT: out_id,
            OUTPUT_SUMMARY: summary_id,
            OUTPUT_HTML: html_path,
            CHANGED_UNITS: changed_units,
            CHANGED_WORKLOAD: changed_workload,
            TERRITORIES_CHANGED: territories_changed,
            **({CHANGED_ACCOUNTS: info["changed_accounts"]} if account_changes is not None else {}),
            **({OUTPUT_ACCOUNTS: accounts_id} if accounts_id is not None else {}),
        }

    # -- inputs --------------------------------------------------------------------------------
    def _check_fields(self, source, after_source, field_before, field_after, id_field, overrides_differ) -> None:
        """Raise, naming the field and the fix, when the field parameters do not fit the layers
        (``overrides_differ``: the accounts' overrides before and after are two fields, so one
        territory field may serve before and after)."""
        in_units = source.fields().lookupField
        if not field_before or in_units(field_before) < 0:
            raise QgsProcessingException(self.tr(
                "The territory field before, “{}”, is not in the units layer. Choose the field with the "
                "alignment before.").format(field_before))
        if after_source is None:
            if not field_after or in_units(field_after) < 0:
                raise QgsProcessingException(self.tr(
                    "The territory field after, “{}”, is not in the units layer. Choose the field with the "
                    "alignment after, or give the layer after.").format(field_after))
            if field_after == field_before and not overrides_differ:
                raise QgsProcessingException(self.tr(
                    "The fields before and after are the same field (“{}”), so nothing can change. Choose "
                    "the field with the other alignment, or give the layer after and a unit id field.").format(
                    field_before))
            return
        in_after = after_source.fields().lookupField
        if not id_field:
            raise QgsProcessingException(self.tr(
                "A layer after was given without a unit id field. Choose the field that identifies each unit "
                "in both layers (fips, ZIP code…)."))
        if in_units(id_field) < 0:
            raise QgsProcessingException(self.tr(
                "The unit id field “{}” is not in the units layer. Choose a field both layers have.").format(id_field))
        if in_after(id_field) < 0:
            raise QgsProcessingException(self.tr(
                "The unit id field “{}” is not in the layer after. Choose a field both layers have.").format(id_field))
        if not field_after or in_after(field_after) < 0:
            raise QgsProcessingException(self.tr(
                "The territory field after, “{}”, is not in the layer after. Choose the field of the layer "
                "after that holds the new alignment.").format(field_after))

    def _read_column(self, source, field_name, id_field, units, feedback):
        """Territory per unit (None = unassigned) and, with ``id_field``, each unit's id key."""
        fields = source.fields()
        index = fields.lookupField(field_name)
        wanted = [index]
        id_index = fields.lookupField(id_field) if id_field else -1
        if id_index >= 0:
            wanted.append(id_index)
        request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes(wanted)
        values: list[str | None] = [None] * units.count
        ids: list = [None] * units.count
        for count, feature in enumerate(source.getFeatures(request)):
            if count % 1000 == 0 and feedback.isCanceled():
                raise QgsProcessingException(self.tr("Cancelled."))
            i = units.index_of_fid.get(feature.id())
            if i is None:
                continue
            value = feature.attribute(index)
            values[i] = text_or_none(value)
            if id_index >= 0:
                ids[i] = _id_key(feature.attribute(id_index))
        if id_index >= 0:
            _check_ids(ids, [int(f) for f in units.fids], id_field, self.tr("the units layer"))
        return values, ids

    def _join_after(self, after_source, field_after, id_field, ids, feedback) -> list[str | None]:
        fields = after_source.fields()
        index, id_index = fields.lookupField(field_after), fields.lookupField(id_field)
        request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([index,
                                                                                                         id_index])
        keys, values, fids = [], [], []
        for count, feature in enumerate(after_source.getFeatures(request)):
            if count % 1000 == 0 and feedback.isCanceled():
                raise QgsProcessingException(self.tr("Cancelled."))
            keys.append(_id_key(feature.attribute(id_index)))
            value = feature.attribute(index)
            values.append(text_or_none(value))
            fids.append(feature.id())
        _check_ids(keys, fids, id_field, self.tr("the layer after"))
        by_key = dict(zip(keys, values))
        missing = [k for k in ids if k not in by_key]
        if missing:
            raise QgsProcessingException(self.tr(
                "{} units of the units layer are missing from the layer after (ids in “{}”: {}). Both layers "
                "must hold the same units.").format(len(missing), id_field, listed(missing)))
        extra = sorted(set(keys) - set(ids), key=str)
        if extra:
            raise QgsProcessingException(self.tr(
                "{} units of the layer after are not in the units layer (ids in “{}”: {}). Both layers must "
                "hold the same units.").format(len(extra), id_field, listed(extra)))
        return [by_key[k] for k in ids]

    def _account_books(self, parameters, context, account_run, names, known, override_before):
        """The territory codes of the comparison (``names``, and the codes only overrides name) and the
        accounts before and after (None without accounts): the override field's overrides after, and
        before too unless ``override_before`` names the field of the overrides before. An override
        naming neither a unit's territory nor one of the territory table stops here."""
        if not account_run.given:
            if override_before:
                raise QgsProcessingException(self.tr(
                    "The override field before is given without accounts: choose the accounts layer (ACCOUNTS), "
                    "or leave the override field before empty."))
            return names, None
        allowed = list(dict.fromkeys([*names, *known]))
        after = account_run.book(allowed)
        before = account_run.book_of_field(self, parameters, context, override_before, allowed) \
            if override_before else after
        used = {allowed[k] for book in (before, after) for k in np.unique(book.override[book.override >= 0]).tolist()}
        if used <= set(names):
            return names, (before, after)
        names = sorted(set(names) | used, key=natural_key)  # a territory without units that keeps accounts
        after = account_run.book(names)
        before = account_run.book_of_field(self, parameters, context, override_before, names) \
            if override_before else after
        return names, (before, after)

    @staticmethod
    def _account_changes(books, names, row_before, row_after) -> dict | None:
        """The accounts' territories before and after (codes, and rows: past ``names`` for none), which
        change, which stand apart from their unit in either plan (overridden), whether one of those
        has no territory, and their workloads."""
        if books is None:
            return None
        book_before, book_after = books
        count = len(names)
        before = book_before.territories(np.where(row_before < count, row_before, -1))
        after = book_after.territories(np.where(row_after < count, row_after, -1))
        changed = np.zeros(book_after.count, dtype=bool)
        changed[changed_accounts(before, after)] = True
        apart = book_before.overridden | book_after.overridden
        code = [*names, None]  # −1 (no territory) is the last
        return {"before": [code[k] for k in before.tolist()], "after": [code[k] for k in after.tolist()],
                "changed": changed, "apart": apart, "unaligned": bool(((before < 0) | (after < 0))[apart].any()),
                "rows_before": np.where(before >= 0, before, count), "rows_after": np.where(after >= 0, after, count),
                "workloads": book_after.workloads}

    # -- outputs -------------------------------------------------------------------------------
    def _write_changed(self, parameters, context, source, units, before, after, changed, names, feedback, table,
                       key: str = OUTPUT):
        """The changed units (or, with ``key`` OUTPUT_ACCOUNTS, accounts: ``units`` is then the
        accounts, with the same fids and index) with the territory before and after."""
        input_names = [f.name() for f in source.fields()]
        field_names = output_field_names(input_names + [FROM, TO], destination_of(parameters, key))
        fields = QgsFields()
        for name, qfield in zip(field_names, list(source.fields())):
            copy = QgsField(qfield)
            copy.setName(name)
            fields.append(copy)
        for name, alias in zip(field_names[-2:], (self.tr("Territory before"), self.tr("Territory after"))):
            qfield = make_field(name, STRING, 254)
            qfield.setAlias(alias)
            fields.append(qfield)
        sink, out_id = self.parameterAsSink(
            parameters, key, context, fields, source.wkbType(), source.sourceCrs()
        )
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, key))
        changed_fids = [int(units.fids[i]) for i in np.flatnonzero(changed)]
        total = max(len(changed_fids), 1)
        request = QgsFeatureRequest().setFilterFids(changed_fids)
        for count, feature in enumerate(source.getFeatures(request)):
            if count % 500 == 0:
                check_cancelled(feedback)
                feedback.setProgress(35 + 40 * count / total)
            i = units.index_of_fid[feature.id()]
            out = QgsFeature(fields)
            out.setGeometry(feature.geometry())
            out.setAttributes(list(feature.attributes()) + [before[i], after[i]])
            add_feature(sink, out)
        TerritoryStyler.attach(out_id, field_names[-1], names, context, table)
        return out_id

    def _summary_fields(self, measures: list[str], destination: str) -> QgsFields:
        spec = [("territory", STRING, self.tr("Territory"))]
        stages = [
            ("before", self.tr("{} before")),
            ("after", self.tr("{} after")),
            ("gained", self.tr("{} gained")),
            ("lost", self.tr("{} lost")),
            ("net", self.tr("{} net change")),
        ]
        blocks = ["units"] + [m for m in measures if m != "units"]
        for block in blocks:
            kind = INT if block == "units" else DOUBLE
            for stage, alias in stages:
                spec.append((f"{block}_{stage}", kind, alias.format(block)))
        names = output_field_names([s[0] for s in spec], destination)
        fields = QgsFields()
        for name, (_, kind, alias) in zip(names, spec):
            qfield = make_field(name, kind, 254 if kind == STRING else 0)
            qfield.setAlias(alias)
            fields.append(qfield)
        return fields

    def _write_summary(self, parameters, context, rows, measures, summary) -> str | None:
        fields = self._summary_fields(measures, destination_of(parameters, OUTPUT_SUMMARY))
        sink, summary_id = self.parameterAsSink(
            parameters, OUTPUT_SUMMARY, context, fields, QgsWkbTypes.Type.NoGeometry
        )
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, OUTPUT_SUMMARY))
        with_measures = measures != ["units"]
        for r, name in enumerate(rows):
            values: list = [name]
            values += [int(v) for v in summary[r, 0]]
            if with_measures:
                for m in range(len(measures)):
                    values += [float(v) for v in summary[r, m + 1]]
            feature = QgsFeature(fields)
            feature.setAttributes(values)
            add_feature(sink, feature)
        return summary_id


# --- helpers ----------------------------------------------------------------------------------


def _geography_in_both(before: AccountBook, after: AccountBook) -> AccountBook:
    """The accounts that follow their unit in both plans (the units carry them); an account
    overridden in either plan stands apart and moves on its own (:func:`_apart_flows`)."""
    apart = before.overridden | after.overridden
    return AccountBook(home=after.home, override=np.where(apart, np.maximum(before.override, after.override), -1),
                       workloads=after.workloads)


def _apart_flows(account_run, changes: dict, rows: int, width: int) -> np.ndarray:
    """(rows, rows, 1 + width) the workload of the accounts standing apart from their unit (overridden
    in either plan) from their row before to their row after; they are not units (count 0)."""
    apart = np.flatnonzero(changes["apart"])
    values = np.zeros((apart.size, 1 + width))
    values[:, 1:] = account_run.in_measures(changes["workloads"][apart], width)
    out = np.zeros((rows, rows, 1 + width))
    np.add.at(out, (changes["rows_before"][apart], changes["rows_after"][apart]), values)
    return out



def _id_key(value):
    """A unit id comparable across layers and field types (13001, 13001.0 and "13001" differ
    only when the text differs)."""
    if is_null(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _check_ids(keys, fids, id_field, where) -> None:
    """Raise when a unit has no id or an id is repeated (``where``: which layer, for the message)."""
    empty = [fid for fid, key in zip(fids, keys) if key is None or key == ""]
    if empty:
        raise QgsProcessingException(tr(
            "{} features of {} have no unit id in “{}” (feature ids {}). Every unit needs an id to be matched."
        ).format(len(empty), where, id_field, listed(empty)))
    seen: dict = {}
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
    duplicated = [key for key, count in seen.items() if count > 1]
    if duplicated:
        raise QgsProcessingException(tr(
            "Unit ids in “{}” are repeated in {}: {}. Each id must identify one unit; choose a unique id field."
        ).format(id_field, where, listed(duplicated)))
