"""Assign accounts to territories: the account → territory → rep list a CRM imports."""

from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterField,
    QgsWkbTypes,
)

from ..compat import DOUBLE, STRING, make_field
from ..core.plan.accounts import SOURCE_NAMES
from ..layers.account_style import apply_account_style
from ..layers.alignment import read_unit_names
from ..layers.territory_table import TerritoryRow
from ..layers.values import natural_key
from . import parameters as shared
from .account_run import read_account_parameters
from .base import TerritoryAlgorithm, removes_partial_outputs
from .outputs import write_units
from .parameters import ACCOUNTS, BALANCE_FIELDS, OUTPUT, OUTPUT_SUMMARY, TERRITORY_FIELD, UNIT_ID_FIELD
from .plan_inputs import PlanInputs
from .territory_layer import Column, account_columns, figure_columns, table_columns, write_territory_layer

HELP = (
    "Gives every account (customer, hospital, store) its territory and rep: the list a CRM imports.\n\n"
    "<b>Units layer</b> and its <b>territory field</b>: the plan (each unit's territory code). "
    "<b>Territory table</b>: optional, names and reps by code, as Build or Rebalance write it.\n"
)
OUTPUTS_HELP = (
    "<b>Account name field</b>: optional, names accounts in messages.\n"
    "<b>Balance fields</b>: optional numeric fields of the accounts, summed per territory.\n\n"
    "Outputs: the accounts with <b>territory</b> (code), <b>territory_name</b>, <b>rep</b>, <b>source</b> "
    "(unit: from the unit it stands in; override; none: no territory) and <b>unit</b> (the home unit's id: "
    "the unit id field's value, else its feature id); and one row per territory with <b>accounts</b>, "
    "<b>overrides_in</b> (accounts from outside its units it keeps), <b>overrides_out</b> (accounts in its units "
    "served by another territory) and the sums. Both can be written to CSV or XLSX."
)

#: the columns the account list adds (a CRM imports them by these names)
ACCOUNT_COLUMNS = ("territory", "territory_name", "rep", "source", "unit")


class AssignAccountsAlgorithm(TerritoryAlgorithm):
    """Assign accounts to territories: the account → territory → rep list."""

    algorithm_id = "assignaccounts"
    display_name = "Assign accounts to territories"
    help_text = (HELP, shared.ACCOUNTS_HELP, OUTPUTS_HELP)

    def initAlgorithm(self, config=None):
        shared.add_units_layer(self, self.tr("Units layer with territories"))
        shared.add_unit_field(self, TERRITORY_FIELD, self.tr("Territory field"))
        shared.add_territory_table(self, self.tr("Territory table (names, reps)"))
        shared.add_accounts(self, optional=False, with_name=True, with_balance=False)
        self.addParameter(QgsProcessingParameterField(
            BALANCE_FIELDS, self.tr("Account fields to sum per territory"), parentLayerParameterName=ACCOUNTS,
            type=QgsProcessingParameterField.DataType.Numeric, allowMultiple=True, optional=True))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT, self.tr("Accounts with territories"), QgsProcessing.SourceType.TypeVector))
        self.addParameter(QgsProcessingParameterFeatureSink(
            OUTPUT_SUMMARY, self.tr("Accounts per territory"), QgsProcessing.SourceType.TypeVector))

    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        inputs = PlanInputs.read(self, parameters, context, feedback)
        source, territory_field, balance_fields = inputs.source, inputs.territory_field, inputs.balance_fields

        # the balance fields are the accounts': the units are read for their place only
        units = inputs.read_units(self.tr("Reading units…"), 15.0, with_adjacency=False, fields=[])
        alignment = inputs.read_alignment()
        known = inputs.territory_table()
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
        return {OUTPUT: out_id, OUTPUT_SUMMARY: summary_id}

    def _unit_ids(self, parameters, context, source, units) -> list[str]:
        """Each unit's id for the ``unit`` column: the unit id field's value, else the feature id."""
        field_name = self.parameterAsString(parameters, UNIT_ID_FIELD, context)
        return read_unit_names(source, field_name, units) or [str(int(fid)) for fid in units.fids.tolist()]

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

        out_id, _ = write_units(self, parameters, OUTPUT, context, feedback, account_source, accounts, fields,
                                values_of, progress=(60.0, 95.0), keep_geometries=False)
        if account_source.wkbType() != QgsWkbTypes.Type.NoGeometry:
            AccountStyler.attach(out_id, codes, rows, context)
        return out_id

    def _write_summary(self, parameters, context, feedback, book, unit_labels, codes, rows, territory_field,
                       balance_fields):
        p = len(codes)
        sums = book.territory_sums(unit_labels, p)
        groups = [table_columns(territory_field, rows),
                  account_columns(book, unit_labels, p),
                  figure_columns(*[(Column(name, DOUBLE, self.tr("{} (sum)").format(name)), sums[:, a].tolist())
                                   for a, name in enumerate(balance_fields)])]
        summary_id, _ = write_territory_layer(self, parameters, OUTPUT_SUMMARY, context, feedback, groups, None,
                                              None, False, territory_count=p)
        if summary_id is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, OUTPUT_SUMMARY))
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
