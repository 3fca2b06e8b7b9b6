"""Reading the panel's plan from its units layer (attributes only: the neighbours come later, from a
task): where the plan's fields are (:class:`PlanColumns`), the features that are units of the plan
(:func:`unit_request`), and every unit's territory, workloads, rep and lock made into the plan's ledger
(:func:`read_plan`). The attributes are read by ``layers.plan_reader``, the toolbox's rules: a workload
that is empty or invalid stops the read, never counts as 0.

The assignment service reads its plan when it binds, and again when the layer changes underneath it
(``ui/layer_changes.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from qgis.core import QgsFeatureRequest, QgsVectorLayer

from ..core.plan.ledger import TerritoryLedger
from ..layers.edit_checks import is_integer_field
from ..layers.plan_reader import read_plan_attributes
from .plan_index import PlanIndex
from .settings import PlanSettings
from .territory_identity import TerritoryIdentity
from .territory_list import plan_territory_list


def unit_measures(layer: QgsVectorLayer, plan: PlanSettings) -> list[str]:
    """The plan's measures that are the units' own: with an accounts layer, a measure the units do
    not have is the accounts' (counted by ``ui.account_binding``)."""
    if not plan.accounts_layer:
        return list(plan.measures)
    return [m for m in plan.measures if layer.fields().lookupField(m) >= 0]


def unit_request(plan: PlanSettings) -> QgsFeatureRequest:
    """The features that are units of ``plan``: all, or those matching the scenario's filter."""
    request = QgsFeatureRequest()
    expression = plan.filter_expression
    if expression:
        request.setFilterExpression(expression)  # the user's own expression, as typed
    return request


@dataclass
class PlanColumns:
    """Where the plan's fields are among the units layer's fields (−1: not there, or none)."""

    territory: int = -1
    #: one per plan measure; a measure the units do not have is the accounts' (−1 here: the account
    #: binding counts it)
    measures: list[int] = field(default_factory=list)
    #: the fields the workload index is made of
    index_fields: list[int] = field(default_factory=list)
    rep: int = -1
    lock: int = -1
    #: whether the territory field holds whole numbers (territory names are then numbers too)
    integer_territory: bool = False

    @classmethod
    def look_up(cls, layer: QgsVectorLayer, plan: PlanSettings, index: PlanIndex) -> PlanColumns:
        fields = layer.fields()
        territory = fields.lookupField(plan.territory_field)
        return cls(territory=territory,
                   measures=[fields.lookupField(m) for m in plan.measures],
                   index_fields=[fields.lookupField(m) for m in index.fields],
                   rep=fields.lookupField(plan.rep_field) if plan.rep_field else -1,
                   lock=fields.lookupField(plan.lock_field) if plan.lock_field else -1,
                   integer_territory=is_integer_field(layer, territory))

    def territory_value(self, name: str | None):
        """The territory field's value for territory ``name`` (None: unassigned)."""
        if name is None:
            return None
        return int(name) if self.integer_territory else name

    def lost(self, plan: PlanSettings, own_measures: list[str]) -> bool:
        """Whether a field the plan reads from the units is no longer in the layer."""
        return (self.territory < 0
                or any(i < 0 for m, i in zip(plan.measures, self.measures) if m in own_measures)
                or any(i < 0 for i in self.index_fields))


@dataclass
class PlanRead:
    """The plan as :func:`read_plan` read it from its layer."""

    index: PlanIndex
    columns: PlanColumns
    #: the measures that are the units' own fields (the others are the accounts')
    own_measures: list[str]
    #: the balanced measures: the plan's, then the workload index when it has one
    measures: list[str]
    ledger: TerritoryLedger
    #: what the user should hear of (a territory table that cannot be read, an index left out)
    problems: list[str]


def read_plan(layer: QgsVectorLayer, plan: PlanSettings, identity: TerritoryIdentity, saving) -> PlanRead:
    """Read ids, territories, workloads, reps and locks of every unit of ``plan`` on ``layer`` (no
    geometry), and the rows of its territory table into ``identity``. ``saving`` (a PlanSaving, or None)
    remembers the territories as read. Raises ``UnitDataError`` (a ValueError) for a bad workload.
    An index that cannot be made is left out of ``plan`` (its tolerances follow what it measures)."""
    index = PlanIndex(plan.index_weights, layer)
    columns = PlanColumns.look_up(layer, plan, index)
    own_measures = unit_measures(layer, plan)
    own = [(m, i) for m, i in zip(plan.measures, columns.measures) if m in own_measures]
    read = read_plan_attributes(layer, columns.territory, own + list(zip(index.fields, columns.index_fields)),
                                columns.rep, columns.lock, unit_request(plan))
    width = len(plan.measures)
    if len(own) < width:  # the accounts' measures start at 0 until the accounts are read
        workloads = np.zeros((len(read.fids), width + len(index.fields)))
        workloads[:, [k for k, m in enumerate(plan.measures) if m in own_measures]] = read.workloads[:, :len(own)]
        if index.fields:
            workloads[:, width:] = read.workloads[:, len(own):]
        read.workloads = workloads
    if saving is not None:
        saving.remember(read.fids, read.territory_values)
    listed = set(plan.locked_units)
    listed_locks = (np.isin(read.fids, np.fromiter(listed, dtype=np.int64, count=len(listed)))
                    if listed else np.zeros(len(read.fids), dtype=bool))
    problem = identity.read()
    problems = [problem] if problem is not None else []
    territories = plan_territory_list(plan, read.territories, identity.rows)
    workloads = index.workloads(read.workloads, width, len(territories.names))
    if index.problem is not None:
        problems.append(index.problem)
        plan.index_weights = ""  # the plan balances what it measures: its tolerances follow
    ledger = TerritoryLedger(read.territories, workloads, registry=list(territories.names), rep_values=read.reps,
                             territories=territories, field_locks=read.locked, listed_locks=listed_locks,
                             fids=read.fids)
    return PlanRead(index, columns, own_measures, index.measures(list(plan.measures)), ledger, problems)
