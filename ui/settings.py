"""Settings of the dock: user preferences in QgsSettings, the plan itself in the QGIS project.

Everything a user chose for one plan (layer, territory field, measures, tolerance, locks, the
order of territories) is written into the project with ``QgsProject.writeEntry``, so saving the
project and opening it again restores the dock exactly. Preferences that are not about one plan
(the tolerance to start with) live in ``QgsSettings`` under one prefix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from qgis.core import QgsProject, QgsSettings

from ..core.plan.index import INDEX_NAME

PREFIX = "territory_planner/"
SCOPE = "TerritoryPlanner"


class Preferences:
    """The plugin's entries in QgsSettings, all under :data:`PREFIX`."""

    def __init__(self) -> None:
        self._settings = QgsSettings()

    def value(self, key: str, default=None, kind=None):
        if kind is None:
            return self._settings.value(PREFIX + key, default)
        return self._settings.value(PREFIX + key, default, type=kind)

    def set_value(self, key: str, value) -> None:
        self._settings.setValue(PREFIX + key, value)

    @property
    def default_tolerance(self) -> float:
        return float(self.value("default_tolerance", 5.0, float))

    @default_tolerance.setter
    def default_tolerance(self, value: float) -> None:
        self.set_value("default_tolerance", float(value))


@dataclass
class PlanSettings:
    """What defines one plan in the dock.

    ``territories`` is the order of territory names (their colours follow it); it also keeps
    territories that have no units yet. ``tolerance`` is in percent. ``locked_units`` are
    feature ids; ``lock_field`` is an optional field whose non-empty, non-zero values lock a unit.
    """

    layer_id: str = ""
    territory_field: str = ""
    measures: list[str] = field(default_factory=list)
    tolerance: float = 5.0
    rep_field: str = ""
    lock_field: str = ""
    territories: list[str] = field(default_factory=list)
    locked_territories: list[str] = field(default_factory=list)
    locked_units: list[int] = field(default_factory=list)
    territory_count: int = 10
    unit_name_field: str = ""
    scenarios: list[str] = field(default_factory=list)
    baseline: str = ""
    keep_style: bool = False
    #: id of the territory table layer (code, name, rep, colour, locked), e.g. Build's Territories output
    territory_table: str = ""
    #: id of a road network layer: the panel then shows the active territory's travel times
    network_layer: str = ""
    #: a filter expression per scenario field: a segment team's alignment covers only its units
    filters: dict = field(default_factory=dict)
    #: a tolerance (percent) of its own per balance field (TOLERANCES); others use ``tolerance``
    tolerances: dict = field(default_factory=dict)
    #: seconds a Build or Rebalance may run in all (TIME_LIMIT)
    time_limit: float = 60.0
    #: the workload index (INDEX_WEIGHTS, ``field:weight,…``): balanced as one more measure, ``index``
    index_weights: str = ""
    #: sales and potential per unit, for the penetration view of the map
    sales_field: str = ""
    potential_field: str = ""
    #: id of the accounts layer (points), its id field and its override field (a territory code per
    #: account kept by a territory other than its unit's); ``measures`` may name its numeric fields
    accounts_layer: str = ""
    account_id_field: str = ""
    override_field: str = ""
    #: id of the reps layer (points at the reps' homes) and the field naming each rep
    reps_layer: str = ""
    rep_name_field: str = ""

    @property
    def balanced_measures(self) -> list[str]:
        """The measures the plan balances: the balance fields, then ``index`` when it has index weights."""
        return self.measures + [INDEX_NAME] if self.index_weights.strip() else list(self.measures)

    @property
    def filter_expression(self) -> str:
        return str(self.filters.get(self.territory_field, "") or "")

    def write(self, project: QgsProject) -> None:
        """Store the plan in ``project`` (marks the project dirty, as any change does)."""
        project.writeEntry(SCOPE, "plan/layer", self.layer_id)
        project.writeEntry(SCOPE, "plan/territory_field", self.territory_field)
        project.writeEntry(SCOPE, "plan/measures", list(self.measures))
        project.writeEntryDouble(SCOPE, "plan/tolerance", float(self.tolerance))
        project.writeEntry(SCOPE, "plan/rep_field", self.rep_field)
        project.writeEntry(SCOPE, "plan/lock_field", self.lock_field)
        # JSON keeps names with commas, empty strings and their order intact.
        project.writeEntry(SCOPE, "plan/territories", json.dumps([str(t) for t in self.territories]))
        project.writeEntry(SCOPE, "plan/locked_territories",
                           json.dumps([str(t) for t in self.locked_territories]))
        project.writeEntry(SCOPE, "plan/locked_units", json.dumps(sorted(int(f) for f in self.locked_units)))
        project.writeEntry(SCOPE, "plan/territory_count", int(self.territory_count))
        project.writeEntry(SCOPE, "plan/unit_name_field", self.unit_name_field)
        project.writeEntry(SCOPE, "plan/scenarios", json.dumps([str(t) for t in self.scenarios]))
        project.writeEntry(SCOPE, "plan/baseline", self.baseline)
        project.writeEntryBool(SCOPE, "plan/keep_style", bool(self.keep_style))
        project.writeEntry(SCOPE, "plan/territory_table", self.territory_table)
        project.writeEntry(SCOPE, "plan/network_layer", self.network_layer)
        project.writeEntry(SCOPE, "plan/filters", json.dumps({str(k): str(v) for k, v in self.filters.items() if v}))
        project.writeEntry(SCOPE, "plan/tolerances", json.dumps({str(k): float(v) for k, v in self.tolerances.items()
                                                                 if v is not None}))
        project.writeEntryDouble(SCOPE, "plan/time_limit", float(self.time_limit))
        project.writeEntry(SCOPE, "plan/index_weights", self.index_weights)
        project.writeEntry(SCOPE, "plan/sales_field", self.sales_field)
        project.writeEntry(SCOPE, "plan/potential_field", self.potential_field)
        project.writeEntry(SCOPE, "plan/accounts_layer", self.accounts_layer)
        project.writeEntry(SCOPE, "plan/account_id_field", self.account_id_field)
        project.writeEntry(SCOPE, "plan/override_field", self.override_field)
        project.writeEntry(SCOPE, "plan/reps_layer", self.reps_layer)
        project.writeEntry(SCOPE, "plan/rep_name_field", self.rep_name_field)

    @classmethod
    def read(cls, project: QgsProject) -> PlanSettings | None:
        """The plan stored in ``project``, or None when the project has none."""
        layer_id, ok = project.readEntry(SCOPE, "plan/layer", "")
        if not ok or not layer_id:
            return None
        plan = cls(layer_id=layer_id)
        plan.territory_field = project.readEntry(SCOPE, "plan/territory_field", "")[0]
        plan.measures = [m for m in project.readListEntry(SCOPE, "plan/measures", [])[0] if m]
        plan.tolerance = project.readDoubleEntry(SCOPE, "plan/tolerance", 5.0)[0]
        plan.rep_field = project.readEntry(SCOPE, "plan/rep_field", "")[0]
        plan.lock_field = project.readEntry(SCOPE, "plan/lock_field", "")[0]
        plan.territories = _json_list(project.readEntry(SCOPE, "plan/territories", "[]")[0], str)
        plan.locked_territories = _json_list(project.readEntry(SCOPE, "plan/locked_territories", "[]")[0], str)
        plan.locked_units = _json_list(project.readEntry(SCOPE, "plan/locked_units", "[]")[0], int)
        plan.territory_count = project.readNumEntry(SCOPE, "plan/territory_count", 10)[0]
        plan.unit_name_field = project.readEntry(SCOPE, "plan/unit_name_field", "")[0]
        plan.scenarios = _json_list(project.readEntry(SCOPE, "plan/scenarios", "[]")[0], str)
        plan.baseline = project.readEntry(SCOPE, "plan/baseline", "")[0]
        plan.keep_style = project.readBoolEntry(SCOPE, "plan/keep_style", False)[0]
        plan.territory_table = project.readEntry(SCOPE, "plan/territory_table", "")[0]
        plan.network_layer = project.readEntry(SCOPE, "plan/network_layer", "")[0]
        try:
            filters = json.loads(project.readEntry(SCOPE, "plan/filters", "{}")[0] or "{}")
        except ValueError:
            filters = {}
        plan.filters = {str(k): str(v) for k, v in filters.items()} if isinstance(filters, dict) else {}
        try:
            tolerances = json.loads(project.readEntry(SCOPE, "plan/tolerances", "{}")[0] or "{}")
        except ValueError:
            tolerances = {}
        plan.tolerances = {}
        for key, value in (tolerances.items() if isinstance(tolerances, dict) else ()):
            try:
                plan.tolerances[str(key)] = float(value)
            except (TypeError, ValueError):
                continue
        plan.time_limit = project.readDoubleEntry(SCOPE, "plan/time_limit", 60.0)[0]
        plan.index_weights = project.readEntry(SCOPE, "plan/index_weights", "")[0]
        plan.sales_field = project.readEntry(SCOPE, "plan/sales_field", "")[0]
        plan.potential_field = project.readEntry(SCOPE, "plan/potential_field", "")[0]
        plan.accounts_layer = project.readEntry(SCOPE, "plan/accounts_layer", "")[0]
        plan.account_id_field = project.readEntry(SCOPE, "plan/account_id_field", "")[0]
        plan.override_field = project.readEntry(SCOPE, "plan/override_field", "")[0]
        plan.reps_layer = project.readEntry(SCOPE, "plan/reps_layer", "")[0]
        plan.rep_name_field = project.readEntry(SCOPE, "plan/rep_name_field", "")[0]
        return plan

    def tolerance_of(self, measure: str) -> float:
        """The tolerance (percent) of one balance field: its own, else the plan's."""
        value = self.tolerances.get(measure)
        return float(value) if value is not None else float(self.tolerance)

    def tolerance_fractions(self) -> np.ndarray:
        """The tolerance (a fraction) of each balanced measure: a measure's own (TOLERANCES) or the
        plan's; one entry for the unit count when no measure is balanced."""
        measures = self.balanced_measures
        if not measures:
            return np.array([self.tolerance / 100.0])
        return np.array([self.tolerance_of(m) / 100.0 for m in measures])

    def engine_tolerances(self) -> list[float] | None:
        """The per-measure tolerances for the engine (fractions), None when every measure uses the plan's."""
        measures = self.balanced_measures
        if not measures or not any(m in self.tolerances for m in measures):
            return None
        return [float(v) for v in self.tolerance_fractions()]

    def tolerance_text(self) -> str:
        """The tolerance as the user set it: "5 %", or "visits 5 %, sales 10 %" when measures differ."""
        if self.engine_tolerances() is None:
            return f"{self.tolerance:g} %"
        return ", ".join(f"{m} {self.tolerance_of(m):g} %" for m in self.balanced_measures)

    @staticmethod
    def clear(project: QgsProject) -> None:
        project.removeEntry(SCOPE, "plan")


def _json_list(text: str, kind) -> list:
    try:
        values = json.loads(text or "[]")
    except ValueError:
        return []
    if not isinstance(values, list):
        return []
    out = []
    for value in values:
        try:
            out.append(kind(value))
        except (TypeError, ValueError):
            continue
    return out
