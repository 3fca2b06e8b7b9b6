"""Assign accounts to territories: the account → territory → rep list a CRM imports."""

from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsFeature,
    QgsFields,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsWkbTypes,
)

from ..compat import DOUBLE, INT, STRING, make_field, parameter_as_fields
from ..core.plan.accounts import SOURCE_NAMES
from ..layers.account_style import apply_account_style
from ..layers.territory_table import TerritoryRow, read_territory_table
from ..layers.units import ScaledFeedback
from ..layers.values import natural_key, text_or_none
from .account_params import (
    ACCOUNT_ID_FIELD,
    ACCOUNT_NAME_FIELD,
    ACCOUNT_UNIT_FIELD,
    ACCOUNTS,
    OVERRIDE_FIELD,
    UNIT_ID_FIELD,
    add_account_parameters,
    read_account_parameters,
)
from .account_params import HELP as ACCOUNTS_HELP
from .common import TerritoryAlgorithm, add_feature, read_alignment, removes_partial_outputs, write_units

#: the columns the account list adds (a CRM imports them by these names)
ACCOUNT_COLUMNS = ("territory", "territory_name", "rep", "source", "unit")


class AssignAccountsAlgorithm(TerritoryAlgorithm):
    INPUT = "INPUT"
    TERRITORY_FIELD = "TERRITORY_FIELD"
    TERRITORIES = "TERRITORIES"
    ACCOUNTS = ACCOUNTS
    ACCOUNT_ID_FIELD = ACCOUNT_ID_FIELD
    ACCOUNT_NAME_FIELD = ACCOUNT_NAME_FIELD
    OVERRIDE_FIELD = OVERRIDE_FIELD
    UNIT_ID_FIELD = UNIT_ID_FIELD
    ACCOUNT_UNIT_FIELD = ACCOUNT_UNIT_FIELD
    BALANCE_FIELDS = "BALANCE_FIELDS"
    OUTPUT = "OUTPUT"
    OUTPUT_SUMMARY = "OUTPUT_SUMMARY"

    def name(self) -> str:
        return "assignaccounts"

    def displayName(self) -> str:
        return self.tr("Assign accounts to territories")

    def shortHelpString(self) -> str:
        return self.tr(
            "Gives every account (customer, hospital, store) its territory and rep: the list a CRM imports.\n\n"
            "<b>Units layer</b> and its <b>territory field</b>: the plan (each unit's territory code). "
            "<b>Territory table</b>: optional, names and reps by code, as Build or Rebalance write it.\n"
        ) + self.tr(ACCOUNTS_HELP) + self.tr(
            "\n<b>Account name field</b>: optional, names accounts in messages.\n"
            "<b>Balance fields</b>: optional numeric fields of the accounts, summed per territory.\n\n"
            "Outputs: the accounts with <b>territory</b> (code), <b>territory_name</b>, <b>rep</b>, <b>source</b> "
            "(unit: from the unit it stands in; override; none: no territory) and <b>unit</b> (the home unit's id); "
            "and one row per territory with <b>accounts</b>, <b>overrides_in</b> (accounts from outside its units "
            "it keeps), <b>overrides_out</b> (accounts in its units served by another territory) and the sums. Both "
            "can be written to CSV or XLSX."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, self.tr("Units layer with territories"),
            [QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeVectorPoint]))
        self.addParameter(QgsProcessingParameterField(
            self.TERRITORY_FIELD, self.tr("Territory field"), parentLayerParameterName=self.INPUT))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.TERRITORIES, self.tr("Territory table (names, reps)"), [QgsProcessing.SourceType.TypeVector],
            optional=True))
        add_account_parameters(self, optional=False, with_name=True)
        self.addParameter(QgsProcessingParameterField(
            self.BALANCE_FIELDS, self.tr("Account fields to sum per territory"), parentLayerParameterName=ACCOUNTS,
            type=QgsProcessingParameterField.DataType.Numeric, allowMultiple=True, optional=True))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Accounts with territories"), QgsProcessing.SourceType.TypeVector))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_SUMMARY, self.tr("Accounts per territory"), QgsProcessing.SourceType.TypeVector))

    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, self.INPUT))
        territory_field = self.parameterAsString(parameters, self.TERRITORY_FIELD, context)
        balance_fields = parameter_as_fields(self, parameters, self.BALANCE_FIELDS, context)

        feedback.setProgressText(self.tr("Reading units…"))
        units = self.read_units(source, [], context, ScaledFeedback(feedback, 0, 15), with_adjacency=False)
        alignment = read_alignment(source, territory_field, units, feedback)
        known = read_territory_table(self.parameterAsSource(parameters, self.TERRITORIES, context), territory_field)
        codes = sorted(set(alignment.names) | set(known), key=natural_key)
        position = {code: k for k, code in enumerate(codes)}
        unit_labels = np.array([position[alignment.names[k]] if k >= 0 else -1 for k in alignment.labels.tolist()],
                               dtype=np.int64)
        accounts = read_account_parameters(self, parameters, context, source, units, balance_fields, feedback,
                                           (15.0, 60.0))
        book = accounts.book(codes)  # an override naming no territory stops here, before anything is written

        territory = book.territories(unit_labels)
        sources = book.sources(unit_labels)
        rows = [known.get(code) or TerritoryRow(code=code, name=code) for code in codes]
        unit_ids = self._unit_ids(parameters, context, source, units)
        feedback.setProgressText(self.tr("Writing the account list…"))
        out_id = self._write_accounts(parameters, context, feedback, accounts, territory, sources, rows, codes,
                                      unit_ids)
        summary_id = self._write_summary(parameters, context, feedback, book, unit_labels, codes, rows,
                                         territory_field, balance_fields)
        counts = np.bincount(sources, minlength=3)
        feedback.pushInfo(self.tr("{} accounts: {} by their unit, {} by override, {} without a territory.").format(
            accounts.count, int(counts[0]), int(counts[1]), int(counts[2])))
        return {self.OUTPUT: out_id, self.OUTPUT_SUMMARY: summary_id}

    def _unit_ids(self, parameters, context, source, units) -> list[str]:
        """Each unit's id for the ``unit`` column: the unit id field's value, else the feature id."""
        ids = [str(int(fid)) for fid in units.fids.tolist()]
        field_name = self.parameterAsString(parameters, UNIT_ID_FIELD, context)
        index = source.fields().lookupField(field_name) if field_name else -1
        if index >= 0:
            from qgis.core import QgsFeatureRequest

            request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([index])
            for feature in source.getFeatures(request):
                i = units.index_of_fid.get(feature.id())
                value = text_or_none(feature.attribute(index))
                if i is not None and value is not None:
                    ids[i] = value
        return ids

    def _write_accounts(self, parameters, context, feedback, accounts, territory, sources, rows, codes, unit_ids):
        account_source = self.parameterAsSource(parameters, ACCOUNTS, context)
        fields = [make_field("territory", STRING, 80), make_field("territory_name", STRING, 120),
                  make_field("rep", STRING, 120), make_field("source", STRING, 8), make_field("unit", STRING, 80)]
        by_territory = [[code, row.name, row.rep] for code, row in zip(codes, rows)] + [[None, None, None]]
        territory_list = territory.tolist()
        source_list = sources.tolist()
        home_list = accounts.home.tolist()

        def values_of(i: int) -> list:
            home = home_list[i]
            return by_territory[territory_list[i]] + [SOURCE_NAMES[source_list[i]],
                                                      unit_ids[home] if home >= 0 else None]

        out_id, _ = write_units(self, parameters, self.OUTPUT, context, feedback, account_source, accounts, fields,
                                values_of, progress=(60.0, 95.0), keep_geometries=False)
        if account_source.wkbType() != QgsWkbTypes.Type.NoGeometry:
            AccountStyler.attach(out_id, codes, rows, context)
        return out_id

    def _write_summary(self, parameters, context, feedback, book, unit_labels, codes, rows, territory_field,
                       balance_fields):
        fields = QgsFields()
        for new in [make_field(territory_field, STRING, 80), make_field("name", STRING, 120),
                    make_field("rep", STRING, 120), make_field("accounts", INT), make_field("overrides_in", INT),
                    make_field("overrides_out", INT)] + [make_field(name, DOUBLE) for name in balance_fields]:
            fields.append(new)
        sink, summary_id = self.parameterAsSink(parameters, self.OUTPUT_SUMMARY, context, fields,
                                                QgsWkbTypes.Type.NoGeometry)
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT_SUMMARY))
        p = len(codes)
        counts = book.account_counts(unit_labels, p)
        gained = book.overrides_in(unit_labels, p)
        lost = book.overrides_out(unit_labels, p)
        sums = book.territory_sums(unit_labels, p)
        for k, code in enumerate(codes):
            feature = QgsFeature(fields)
            feature.setAttributes([code, rows[k].name, rows[k].rep, int(counts[k]), int(gained[k]), int(lost[k])]
                                  + [float(v) for v in sums[k].tolist()])
            add_feature(sink, feature)
        feedback.setProgress(100.0)
        return summary_id


class AccountStyler(QgsProcessingLayerPostProcessorInterface):
    """Draws the loaded account list in the territories' colours, overrides ringed."""

    _alive: list[AccountStyler] = []  # Processing keeps only a reference

    def __init__(self, codes: list[str], rows: list[TerritoryRow]):
        super().__init__()
        self.codes, self.rows = codes, rows

    def postProcessLayer(self, layer, context, feedback):
        apply_account_style(layer, "territory", "\"source\" = 'override'", self.codes,
                            {row.code: row.colour for row in self.rows if row.colour},
                            {row.code: row.label for row in self.rows})

    @classmethod
    def attach(cls, dest_id: str, codes: list[str], rows: list[TerritoryRow], context) -> None:
        if not dest_id or not context.willLoadLayerOnCompletion(dest_id):
            return
        styler = cls(codes, rows)
        cls._alive.append(styler)
        del cls._alive[:-1000]
        context.layerToLoadOnCompletionDetails(dest_id).setPostProcessor(styler)
