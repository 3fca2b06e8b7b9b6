"""The toolbox's algorithms started from the panel, filled in with the plan in the panel: Territory
packets, Territory statistics, Compare alignments and Assign reps. Every one gets the plan's
territory table (names, reps, colours by code) and, where it takes them, its reps and unit names;
Assign reps writes the reps it matches into the territory table."""

from __future__ import annotations

from ..i18n import tr
from ..layers.territory_table import code_column, set_in_table
from ..layers.values import text_or_none


def plan_parameters(service, accounts: bool = True) -> dict:
    """What every algorithm that takes a plan needs: the units, the scenario in use, the balance
    fields, the territory table and the unit names; ``accounts``: the plan's accounts layer too (for
    the algorithms that take one), else only the units' own balance fields."""
    plan = service.plan
    account_layer = service.project.mapLayer(plan.accounts_layer) if plan.accounts_layer else None
    with_accounts = accounts and account_layer is not None and bool(plan.account_id_field)
    measures = list(plan.measures) if with_accounts else list(service.own_measures or plan.measures)
    parameters = {"INPUT": service.layer, "TERRITORY_FIELD": service.field_name, "BALANCE_FIELDS": measures}
    if with_accounts:
        parameters |= {"ACCOUNTS": account_layer, "ACCOUNT_ID_FIELD": plan.account_id_field}
        if plan.override_field:
            parameters["OVERRIDE_FIELD"] = plan.override_field
    table = service.table()
    if table is not None:
        parameters["TERRITORIES"] = table
    if service.plan.unit_name_field:
        parameters["UNIT_NAME_FIELD"] = service.plan.unit_name_field
    return parameters


def reps_parameters(service) -> dict:
    """The plan's reps layer and its name field, when the plan has them."""
    layer = service.project.mapLayer(service.plan.reps_layer) if service.plan.reps_layer else None
    if layer is None:
        return {}
    parameters = {"REPS": layer}
    if service.plan.rep_name_field:
        parameters["REP_NAME_FIELD"] = service.plan.rep_name_field
    return parameters


def packet_parameters(service, baseline: str) -> dict:
    """Territory packets of the plan, with the changes since the scenario ``baseline``."""
    parameters = plan_parameters(service) | reps_parameters(service)
    if baseline and baseline != service.field_name:
        parameters["FIELD_BEFORE"] = baseline
    return parameters


def statistics_parameters(service) -> dict:
    """Territory statistics of the plan, judged by its tolerance."""
    parameters = plan_parameters(service) | reps_parameters(service) | {"TOLERANCE": float(service.plan.tolerance)}
    if service.plan.index_weights.strip():
        parameters["INDEX_WEIGHTS"] = service.plan.index_weights
    return parameters


def compare_parameters(service, baseline: str) -> dict:
    """Compare alignments: the scenario ``baseline`` before, the scenario in use after."""
    parameters = plan_parameters(service)
    parameters.pop("TERRITORY_FIELD")
    parameters["FIELD_BEFORE"] = baseline or service.field_name
    parameters["FIELD_AFTER"] = service.field_name
    return parameters


def assign_reps_parameters(service) -> dict:
    return plan_parameters(service, accounts=False) | reps_parameters(service) | {
        "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT", "OUTPUT_REPS": "TEMPORARY_OUTPUT"}


def assigned_reps(territories, territory_field: str) -> dict[str, str | None]:
    """{code: rep} from the territories output of Assign reps (vacancies have no rep)."""
    code_index = code_column(territories.fields(), territory_field)
    rep_index = territories.fields().lookupField("rep")
    vacancy_index = territories.fields().lookupField("vacancy")
    reps = {}
    for feature in territories.getFeatures():
        code = text_or_none(feature.attribute(code_index))
        if code is None:
            continue
        vacant = vacancy_index >= 0 and str(feature.attribute(vacancy_index)) == "1"
        reps[code] = None if vacant else text_or_none(feature.attribute(rep_index))
    return reps


def write_reps(editor, service, reps: dict[str, str | None]) -> bool:
    """Write ``reps`` {code: rep} into the plan's territory table as one undoable step of the plan."""
    table = service.table()
    if table is None:
        service.warn(tr("The plan has no territory table to keep its reps in."))
        return False
    values = {code: {"rep": rep} for code, rep in reps.items()}
    return editor.edit_table(table, tr("Assign reps"),
                             lambda: set_in_table(table, service.field_name, values, tr("Assign reps")))


def rep_home_flags(service) -> dict[str, str]:
    """{code: "<rep> lives outside the territory (… km away)"} for the territories whose rep (by the
    territory table) has a home in the plan's reps layer outside the territory."""
    reps = reps_parameters(service)
    units = service.units
    if not reps or units is None or service.positions is None or not service.table_rows:
        return {}
    from qgis.core import QgsCoordinateTransform
    from qgis.PyQt.QtGui import QTransform

    from ..layers.reps import home_outside_km, outside_note, read_reps

    layer = service.layer
    try:
        rep_layer = read_reps(reps["REPS"], reps.get("REP_NAME_FIELD", ""), None, units,
                              service.project.transformContext())
    except Exception:  # noqa: BLE001 - a reps layer that cannot be read flags nobody (Assign reps says why)
        return {}
    to_metric = QgsCoordinateTransform(layer.crs(), units.metric_crs, service.project.transformContext())
    cache = {}

    def geometry_of(i: int):
        if i not in cache:
            geometry = layer.getFeature(int(service.fids[i])).geometry()
            geometry.transform(to_metric)
            if units.unit_factor != 1.0:
                geometry.transform(QTransform.fromScale(units.unit_factor, units.unit_factor))
            cache[i] = geometry
        return cache[i]

    homes = {rep.name: rep for rep in rep_layer.reps if rep.has_home}
    labels = service.ledger.plan_labels()
    flags = {}
    for k, code in enumerate(service.territory_names):
        row = service.table_rows.get(code)
        rep = homes.get(row.rep) if row is not None and row.rep else None
        if rep is None:
            continue
        km = home_outside_km(rep.position, k, labels, service.positions, units.is_polygon, geometry_of)
        if km is not None:
            flags[code] = f"{rep.name} {outside_note(km)}"
    return flags
