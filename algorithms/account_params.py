"""Accounts beside the units: the parameters every algorithm that takes accounts shares, and the one
helper that reads them (``layers.accounts`` does the reading; this turns its errors into messages
for the toolbox and names in the log the accounts that stand in no unit).
"""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
)

from ..i18n import tr
from ..layers.accounts import AccountDataError, Accounts, read_accounts
from ..layers.units import ScaledFeedback, Units

ACCOUNTS = "ACCOUNTS"
ACCOUNT_ID_FIELD = "ACCOUNT_ID_FIELD"
ACCOUNT_NAME_FIELD = "ACCOUNT_NAME_FIELD"
OVERRIDE_FIELD = "OVERRIDE_FIELD"
UNIT_ID_FIELD = "UNIT_ID_FIELD"
ACCOUNT_UNIT_FIELD = "ACCOUNT_UNIT_FIELD"

HELP = (
    "<b>Accounts</b>: optional points (customers, hospitals, stores) or a table without geometry. Each account "
    "belongs to the territory of the unit it stands in (accounts in another CRS are transformed), unless its "
    "<b>override field</b> holds a territory code: then it belongs to that territory, whatever its unit. "
    "<b>Account id field</b> tells accounts apart (ids must not repeat).\n"
    "<b>Unit id field</b> and <b>accounts' unit field</b> (together, optional): find each account's unit by "
    "its id instead of its location (accounts that carry a ZIP code; an empty unit id falls back to the location).\n"
    "Accounts outside every unit have no territory unless overridden; they are listed in the log. Repeated ids, "
    "overrides naming no territory of the plan, accounts with neither location nor unit id, NULL or negative "
    "workloads and multipoints are errors, and nothing is written."
)


def add_account_parameters(algorithm, input_name: str = "INPUT", optional: bool = True,
                           with_name: bool = False) -> None:
    """The accounts layer, its id and override fields and the unit-id pair (``with_name``: the
    account name field too)."""
    t = algorithm.tr
    algorithm.addParameter(QgsProcessingParameterFeatureSource(
        ACCOUNTS, t("Accounts (points, or a table with a unit id)"), [QgsProcessing.SourceType.TypeVector],
        optional=optional))
    algorithm.addParameter(QgsProcessingParameterField(
        ACCOUNT_ID_FIELD, t("Account id field"), parentLayerParameterName=ACCOUNTS, optional=optional))
    if with_name:
        algorithm.addParameter(QgsProcessingParameterField(
            ACCOUNT_NAME_FIELD, t("Account name field"), parentLayerParameterName=ACCOUNTS, optional=True))
    algorithm.addParameter(QgsProcessingParameterField(
        OVERRIDE_FIELD, t("Override field (territory code an account is aligned to on purpose)"),
        parentLayerParameterName=ACCOUNTS, optional=True))
    algorithm.addParameter(QgsProcessingParameterField(
        UNIT_ID_FIELD, t("Unit id field (to find accounts' units by id)"), parentLayerParameterName=input_name,
        optional=True))
    algorithm.addParameter(QgsProcessingParameterField(
        ACCOUNT_UNIT_FIELD, t("Accounts' unit field (the id of each account's unit)"),
        parentLayerParameterName=ACCOUNTS, optional=True))


def read_account_parameters(algorithm, parameters, context, unit_source, units: Units, balance_fields: list[str],
                            feedback, progress: tuple[float, float] = (20.0, 60.0)) -> Accounts | None:
    """The accounts the parameters name (None when no accounts layer is given). Raises a
    QgsProcessingException naming the accounts and the fix for every bad input."""
    source = algorithm.parameterAsSource(parameters, ACCOUNTS, context)
    if source is None:
        if parameters.get(ACCOUNTS):
            raise QgsProcessingException(algorithm.invalidSourceError(parameters, ACCOUNTS))
        return None

    def field(name: str) -> str | None:
        return algorithm.parameterAsString(parameters, name, context).strip() or None

    id_field = field(ACCOUNT_ID_FIELD)
    if not id_field:
        raise QgsProcessingException(tr(
            "Give the account id field (ACCOUNT_ID_FIELD): the field that tells accounts apart."))
    feedback.setProgressText(tr("Reading accounts and finding their units…"))
    try:
        accounts = read_accounts(
            source, units, id_field, context.transformContext(),
            name_field=field(ACCOUNT_NAME_FIELD) if ACCOUNT_NAME_FIELD in parameters else None,
            override_field=field(OVERRIDE_FIELD), balance_fields=balance_fields, unit_source=unit_source,
            unit_id_field=field(UNIT_ID_FIELD), account_unit_field=field(ACCOUNT_UNIT_FIELD),
            feedback=ScaledFeedback(feedback, *progress))
    except AccountDataError as error:
        raise QgsProcessingException(str(error)) from error
    if accounts is None:
        raise QgsProcessingException(tr("Cancelled."))
    report_accounts_outside(accounts, feedback)
    return accounts


def report_accounts_outside(accounts: Accounts, feedback) -> None:
    """Name in the log the accounts that stand in no unit, and those whose unit id matches none."""
    unknown = set(accounts.unknown_unit.tolist())
    outside = [i for i in accounts.outside().tolist() if i not in unknown]
    if outside:
        feedback.pushWarning(tr(
            "{} accounts stand in no unit (they have no territory unless overridden): {}.").format(
            len(outside), accounts.listing(outside)))
    if unknown:
        feedback.pushWarning(tr(
            "{} accounts hold a unit id that no unit has (they have no territory unless overridden): {}.").format(
            len(unknown), accounts.listing(sorted(unknown))))
