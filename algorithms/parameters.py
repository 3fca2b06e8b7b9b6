"""The parameters the algorithms share: the provider's parameter and result names, one block per
kind of input (added in the order the calling algorithm lists them), and the readers of their values.

Descriptions that differ between algorithms (a units layer "with an alignment", balance fields
as "weights for the distance") are passed in; everything else is written once here. The road
network's parameters live in ``network_params``.
"""

from __future__ import annotations

from dataclasses import dataclass

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..compat import parameter_as_fields
from ..core.engine import DEFAULT_TIME_LIMIT
from ..core.plan.index import INDEX_NAME, IndexWeights, IndexWeightsError, parse_index_weights
from ..i18n import tr
from ..layers.alignment import read_unit_names
from ..layers.territory_table import TerritoryRow, read_territory_table

INPUT = "INPUT"
TERRITORY_FIELD = "TERRITORY_FIELD"
BALANCE_FIELDS = "BALANCE_FIELDS"
TOLERANCE = "TOLERANCE"
CONTIGUOUS = "CONTIGUOUS"
TOLERANCES = "TOLERANCES"
TIME_LIMIT = "TIME_LIMIT"
LOCKED_FIELD = "LOCKED_FIELD"
RANDOM_SEED = "RANDOM_SEED"
TERRITORIES = "TERRITORIES"
UNIT_NAME_FIELD = "UNIT_NAME_FIELD"
REPS = "REPS"
REP_NAME_FIELD = "REP_NAME_FIELD"
REP_TERRITORY_FIELD = "REP_TERRITORY_FIELD"
FIELD_BEFORE = "FIELD_BEFORE"
OUTPUT = "OUTPUT"
OUTPUT_TERRITORIES = "OUTPUT_TERRITORIES"
OUTPUT_HTML = "OUTPUT_HTML"
MAX_DEVIATION = "MAX_DEVIATION"
LOWER_BOUND = "LOWER_BOUND"
NONCONTIGUOUS = "NONCONTIGUOUS"
ACCOUNTS = "ACCOUNTS"
ACCOUNT_ID_FIELD = "ACCOUNT_ID_FIELD"
OVERRIDE_FIELD = "OVERRIDE_FIELD"
UNIT_ID_FIELD = "UNIT_ID_FIELD"
ACCOUNT_UNIT_FIELD = "ACCOUNT_UNIT_FIELD"
ACCOUNT_BALANCE_FIELDS = "ACCOUNT_BALANCE_FIELDS"
INDEX_WEIGHTS = "INDEX_WEIGHTS"
# the names of one algorithm's own parameters and results, kept here with the rest: every
# Processing name of the provider is a contract, listed in one place
ACCEPTED = "ACCEPTED"
ACCOUNT_NAME_FIELD = "ACCOUNT_NAME_FIELD"
AT_CAP = "AT_CAP"
AT_FLOOR = "AT_FLOOR"
BASIS = "BASIS"
CAP = "CAP"
CHANGED_ACCOUNTS = "CHANGED_ACCOUNTS"
CHANGED_UNITS = "CHANGED_UNITS"
CHANGED_WORKLOAD = "CHANGED_WORKLOAD"
COEFFICIENT_OF_VARIATION = "COEFFICIENT_OF_VARIATION"
DUE_DATE = "DUE_DATE"
FEEDBACK_FOLDER = "FEEDBACK_FOLDER"
FIELD_AFTER = "FIELD_AFTER"
FILLED_UNITS = "FILLED_UNITS"
FLOOR = "FLOOR"
HISTORY_FIELD = "HISTORY_FIELD"
HISTORY_WEIGHT = "HISTORY_WEIGHT"
INPUT_AFTER = "INPUT_AFTER"
ISSUES = "ISSUES"
MAX_CHANGED_UNITS = "MAX_CHANGED_UNITS"
MEAN_DISTANCE_KM = "MEAN_DISTANCE_KM"
OPPORTUNITY_COUNT = "OPPORTUNITY_COUNT"
OUTPUT_ACCOUNTS = "OUTPUT_ACCOUNTS"
OUTPUT_FOLDER = "OUTPUT_FOLDER"
OUTPUT_OPPORTUNITIES = "OUTPUT_OPPORTUNITIES"
OUTPUT_OVERVIEW = "OUTPUT_OVERVIEW"
OUTPUT_REGIONS = "OUTPUT_REGIONS"
OUTPUT_REPLIES = "OUTPUT_REPLIES"
OUTPUT_REPS = "OUTPUT_REPS"
OUTPUT_REQUESTS = "OUTPUT_REQUESTS"
OUTPUT_SUMMARY = "OUTPUT_SUMMARY"
OVERRIDE_FIELD_BEFORE = "OVERRIDE_FIELD_BEFORE"
PACKETS = "PACKETS"
PAGES = "PAGES"
PERFORMANCE_THRESHOLD = "PERFORMANCE_THRESHOLD"
POTENTIAL_FIELD = "POTENTIAL_FIELD"
REGION_COUNT = "REGION_COUNT"
REGION_FIELD = "REGION_FIELD"
ROUND_TO = "ROUND_TO"
RULE = "RULE"
SALES_FIELD = "SALES_FIELD"
SCOPE = "SCOPE"
SEEDS = "SEEDS"
SEED_NAME_FIELD = "SEED_NAME_FIELD"
SEED_TARGET_FIELD = "SEED_TARGET_FIELD"
TERRITORIES_CHANGED = "TERRITORIES_CHANGED"
TERRITORY_COUNT = "TERRITORY_COUNT"
TOTAL_GOAL = "TOTAL_GOAL"
UNASSIGNED = "UNASSIGNED"
UNASSIGNED_REPS = "UNASSIGNED_REPS"
VACANCIES = "VACANCIES"
WITHIN_TOLERANCE = "WITHIN_TOLERANCE"

UNITS_LAYER_TYPES = [QgsProcessing.SourceType.TypeVectorPolygon, QgsProcessing.SourceType.TypeVectorPoint]


# --- blocks -----------------------------------------------------------------------------------


def add_units_layer(algorithm, description: str) -> None:
    """INPUT: the units, polygons or points."""
    algorithm.addParameter(QgsProcessingParameterFeatureSource(INPUT, description, UNITS_LAYER_TYPES))


def add_unit_field(algorithm, name: str, description: str, optional: bool = False) -> None:
    """A field of the units layer (INPUT), e.g. the territory field."""
    algorithm.addParameter(QgsProcessingParameterField(name, description, parentLayerParameterName=INPUT,
                                                       optional=optional))


def add_balance_fields(algorithm, description: str | None = None) -> None:
    """BALANCE_FIELDS: numeric workload fields of the units layer, any number (none: unit counts)."""
    algorithm.addParameter(QgsProcessingParameterField(
        BALANCE_FIELDS, description or tr("Balance fields (workload measures)"), parentLayerParameterName=INPUT,
        type=QgsProcessingParameterField.DataType.Numeric, allowMultiple=True, optional=True))


def add_tolerance(algorithm, description: str | None = None) -> None:
    """TOLERANCE: the allowed deviation from each target, in percent (default 5)."""
    algorithm.addParameter(QgsProcessingParameterNumber(
        TOLERANCE, description or tr("Tolerance (% of each territory's target)"),
        QgsProcessingParameterNumber.Type.Double, defaultValue=5.0, minValue=0.0, maxValue=100.0))


def add_index_weights(algorithm) -> None:
    """INDEX_WEIGHTS: the workload index (``field:weight,…``), balanced or measured as one more measure."""
    algorithm.addParameter(QgsProcessingParameterString(
        INDEX_WEIGHTS, tr("Workload index weights (field:weight,…, e.g. accounts:0.6,sales:0.1,potential:0.3)"),
        optional=True))


def add_measures(algorithm, tolerance_description: str | None = None) -> None:
    """BALANCE_FIELDS, INDEX_WEIGHTS and TOLERANCE: what a plan balances and how closely (Build, Rebalance,
    the statistics and the hierarchy)."""
    add_balance_fields(algorithm)
    add_index_weights(algorithm)
    add_tolerance(algorithm, tolerance_description)


#: the help of INDEX_WEIGHTS, shared by the algorithms that take it
INDEX_HELP = (
    "<b>Index weights</b>: optional, a workload index as one more measure, named “index”: "
    "field:weight,… (e.g. accounts:0.6,sales:0.1,potential:0.3). Each field counts as its share of the "
    "layer's total, weighted (weights are shares: 0.6/0.1/0.3 or 60/10/30), scaled so the average "
    "territory scores 1,000. It is balanced and reported like a balance field (index, index_tgt, "
    "index_dev), alone or beside them; its tolerance is the tolerance, or its entry in Tolerances "
    "(index:3).\n")


def add_search_settings(algorithm) -> None:
    """CONTIGUOUS, TOLERANCES (one per balance field) and TIME_LIMIT, for Build and Rebalance."""
    algorithm.addParameter(QgsProcessingParameterBoolean(
        CONTIGUOUS, tr("Keep territories contiguous"), defaultValue=True))
    algorithm.addParameter(QgsProcessingParameterString(
        TOLERANCES, tr("Tolerance per balance field (%, comma separated, e.g. 5,10)"), optional=True))
    algorithm.addParameter(QgsProcessingParameterNumber(
        TIME_LIMIT, tr("Time limit of the whole run (seconds)"),
        QgsProcessingParameterNumber.Type.Double, defaultValue=DEFAULT_TIME_LIMIT, minValue=0.0))


def add_alignment_inputs(algorithm) -> None:
    """INPUT (units with an alignment), TERRITORY_FIELD, TERRITORIES, BALANCE_FIELDS and TOLERANCE: an
    existing plan and how its balance is judged (the feedback pages and their review)."""
    add_units_layer(algorithm, tr("Units layer with an alignment"))
    add_unit_field(algorithm, TERRITORY_FIELD, tr("Territory field"))
    add_territory_table(algorithm, tr("Territory table (names, reps, colours by code)"))
    add_balance_fields(algorithm)
    add_tolerance(algorithm)


def add_random_seed(algorithm) -> None:
    """RANDOM_SEED: the same seed gives the same plan."""
    algorithm.addParameter(QgsProcessingParameterNumber(
        RANDOM_SEED, tr("Random seed"), QgsProcessingParameterNumber.Type.Integer, defaultValue=0, minValue=0))


def add_territory_table(algorithm, description: str) -> None:
    """TERRITORIES: the optional territory table (names, reps, colours by code)."""
    algorithm.addParameter(QgsProcessingParameterFeatureSource(
        TERRITORIES, description, [QgsProcessing.SourceType.TypeVector], optional=True))


def add_reps(algorithm, description: str, optional: bool = True, territory_field: str | None = None) -> None:
    """REPS (points at the reps' homes), REP_NAME_FIELD and, given its description, REP_TERRITORY_FIELD."""
    algorithm.addParameter(QgsProcessingParameterFeatureSource(
        REPS, description, [QgsProcessing.SourceType.TypeVectorPoint], optional=optional))
    algorithm.addParameter(QgsProcessingParameterField(
        REP_NAME_FIELD, tr("Rep name field"), parentLayerParameterName=REPS, optional=optional))
    if territory_field is not None:
        algorithm.addParameter(QgsProcessingParameterField(
            REP_TERRITORY_FIELD, territory_field, parentLayerParameterName=REPS, optional=True))


ACCOUNTS_HELP = (
    "<b>Accounts</b>: optional points (customers, hospitals, stores) or a table without geometry. Each account "
    "belongs to the territory of the unit it stands in (accounts in another CRS are transformed), unless its "
    "<b>override field</b> holds a territory code: then it belongs to that territory, whatever its unit. "
    "<b>Account id field</b> tells accounts apart (ids must not repeat).\n"
    "<b>Account balance fields</b> (optional): numeric fields of the accounts to balance, summed where each "
    "account is aligned; they are balanced beside the balance fields (which may name account fields too, from "
    "Python or qgis_process). A name that is a field of both layers is an error naming it.\n"
    "<b>Unit id field</b> and <b>accounts' unit field</b> (together, optional): find each account's unit by "
    "its id instead of its location (accounts that carry a ZIP code; an empty unit id falls back to the location).\n"
    "Accounts outside every unit have no territory unless overridden: they count nowhere (not even in the "
    "targets) and are listed in the log. Repeated ids, "
    "overrides naming no territory of the plan, accounts with neither location nor unit id, NULL or negative "
    "workloads and multipoints are errors, and nothing is written.\n"
)


def add_accounts(algorithm, optional: bool = True, with_name: bool = False, with_balance: bool = True) -> None:
    """ACCOUNTS (points or a table), ACCOUNT_ID_FIELD, OVERRIDE_FIELD, UNIT_ID_FIELD and
    ACCOUNT_UNIT_FIELD (``with_name``: ACCOUNT_NAME_FIELD too; ``with_balance``: ACCOUNT_BALANCE_FIELDS,
    the accounts' fields for the Processing dialog's picker, read by :func:`balance_fields` beside
    BALANCE_FIELDS). UNIT_ID_FIELD is added only when the algorithm has none yet (Compare's already
    names the units)."""
    algorithm.addParameter(QgsProcessingParameterFeatureSource(
        ACCOUNTS, tr("Accounts (points, or a table with a unit id)"), [QgsProcessing.SourceType.TypeVector],
        optional=optional))
    algorithm.addParameter(QgsProcessingParameterField(
        ACCOUNT_ID_FIELD, tr("Account id field"), parentLayerParameterName=ACCOUNTS, optional=optional))
    if with_name:
        algorithm.addParameter(QgsProcessingParameterField(
            ACCOUNT_NAME_FIELD, tr("Account name field"), parentLayerParameterName=ACCOUNTS, optional=True))
    algorithm.addParameter(QgsProcessingParameterField(
        OVERRIDE_FIELD, tr("Override field (territory code an account is aligned to on purpose)"),
        parentLayerParameterName=ACCOUNTS, optional=True))
    if algorithm.parameterDefinition(UNIT_ID_FIELD) is None:
        algorithm.addParameter(QgsProcessingParameterField(
            UNIT_ID_FIELD, tr("Unit id field (to find accounts' units by id)"), parentLayerParameterName=INPUT,
            optional=True))
    algorithm.addParameter(QgsProcessingParameterField(
        ACCOUNT_UNIT_FIELD, tr("Accounts' unit field (the id of each account's unit)"),
        parentLayerParameterName=ACCOUNTS, optional=True))
    if with_balance:
        # BALANCE_FIELDS' picker lists the units' fields only: a picker of its own for the accounts'
        algorithm.addParameter(QgsProcessingParameterField(
            ACCOUNT_BALANCE_FIELDS, tr("Account balance fields (workload measures of the accounts)"),
            parentLayerParameterName=ACCOUNTS, type=QgsProcessingParameterField.DataType.Numeric,
            allowMultiple=True, optional=True))


# --- values -----------------------------------------------------------------------------------


def units_source(algorithm, parameters, context):
    """The INPUT layer; raises when it cannot be read."""
    source = algorithm.parameterAsSource(parameters, INPUT, context)
    if source is None:
        raise QgsProcessingException(algorithm.invalidSourceError(parameters, INPUT))
    return source


def balance_fields(algorithm, parameters, context) -> list[str]:
    """The measures to balance: BALANCE_FIELDS (fields of the units, or of the accounts), then the
    ACCOUNT_BALANCE_FIELDS not named there already, for the algorithms that take accounts."""
    fields = parameter_as_fields(algorithm, parameters, BALANCE_FIELDS, context)
    if algorithm.parameterDefinition(ACCOUNT_BALANCE_FIELDS) is not None:
        fields += parameter_as_fields(algorithm, parameters, ACCOUNT_BALANCE_FIELDS, context)
    return list(dict.fromkeys(fields))


def tolerance(algorithm, parameters, context) -> float:
    """TOLERANCE as a fraction of the target."""
    return algorithm.parameterAsDouble(parameters, TOLERANCE, context) / 100.0


@dataclass
class SearchSettings:
    """What Build and Rebalance ask of the search: tolerance (fraction), one tolerance per
    measure or None, contiguity, and the time limit in seconds."""

    tolerance: float
    tolerances: list[float] | None
    contiguous: bool
    time_limit: float


def search_settings(algorithm, parameters, context, fields: list[str]) -> SearchSettings:
    """The search settings; ``fields`` are the measures balanced (the balance fields, then
    ``index`` with index weights)."""
    single = tolerance(algorithm, parameters, context)
    return SearchSettings(
        tolerance=single,
        tolerances=parse_tolerances(algorithm.parameterAsString(parameters, TOLERANCES, context), fields, single),
        contiguous=algorithm.parameterAsBool(parameters, CONTIGUOUS, context),
        time_limit=algorithm.parameterAsDouble(parameters, TIME_LIMIT, context))


def parse_tolerances(text: str, fields: list, default: float | None = None) -> list[float] | None:
    """TOLERANCES as fractions, one per measure of ``fields``; None when empty.

    Percentages in the order of the balance fields ("5,10"), and entries named by their measure
    ("index:3", "population:4"); a measure without an entry takes ``default`` (the single
    tolerance). The order alone may leave out the index, the last measure."""
    text = (text or "").strip()
    if not text:
        return None
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    named: dict[str, str] = {}
    ordered: list[str] = []
    for part in parts:
        name, colon, number = part.rpartition(":")
        if colon:
            if name.strip() not in fields:
                raise QgsProcessingException(tr(
                    "The tolerance “{}” names “{}”, which is not a measure of this run. Name one of: {}.").format(
                    part, name.strip(), ", ".join(fields) or "units"))
            named[name.strip()] = number.strip()
        else:
            ordered.append(part)
    try:
        values = [float(p) for p in ordered]
        named_values = {name: float(value) for name, value in named.items()}
    except ValueError as error:
        raise QgsProcessingException(tr(
            "The tolerances “{}” are not numbers. Give one percentage per balance field, separated by commas "
            "(e.g. 5,10).").format(text)) from error
    expected = max(len(fields), 1)
    allowed = {expected}
    if named:
        allowed.add(0)
    if fields and fields[-1] == INDEX_NAME and default is not None:
        allowed.add(expected - 1)  # the index takes the single tolerance
    if len(values) not in allowed:
        raise QgsProcessingException(tr(
            "{} tolerance(s) were given for {} balance field(s). Give one percentage per balance field, in the "
            "same order (e.g. 5,10), or leave Tolerances empty to use the single tolerance.").format(
            len(values), expected))
    if any(not (0.0 <= v < 100.0) for v in [*values, *named_values.values()]):
        raise QgsProcessingException(tr(
            "Each tolerance is a percentage of the target from 0 up to (not including) 100; got “{}”.").format(text))
    names = list(fields) or ["units"]
    out = []
    for position, name in enumerate(names):
        if name in named_values:
            out.append(named_values[name] / 100.0)
        elif position < len(values):
            out.append(values[position] / 100.0)
        else:
            out.append(default)
    return out


def index_weights(algorithm, parameters, context) -> IndexWeights | None:
    """INDEX_WEIGHTS read, or None when empty; a bad text raises naming the entry and the fix."""
    try:
        return parse_index_weights(algorithm.parameterAsString(parameters, INDEX_WEIGHTS, context))
    except IndexWeightsError as error:
        raise QgsProcessingException(str(error)) from error


def measure_names(fields: list[str], weights: IndexWeights | None) -> list[str]:
    """The measures a run balances or measures: the balance fields, then the index when weighted."""
    return [*fields, INDEX_NAME] if weights is not None else list(fields)


def territory_table(algorithm, parameters, context, territory_field) -> dict[str, TerritoryRow]:
    """The TERRITORIES table's rows by code ({} when none is given)."""
    return read_territory_table(algorithm.parameterAsSource(parameters, TERRITORIES, context), territory_field)


def unit_names(algorithm, parameters, context, source, units) -> list[str] | None:
    """Each unit's name from UNIT_NAME_FIELD (engine order); None when no field is given."""
    return read_unit_names(source, algorithm.parameterAsString(parameters, UNIT_NAME_FIELD, context), units)
