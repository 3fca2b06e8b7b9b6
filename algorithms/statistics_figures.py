"""The figures of Territory statistics: everything its layer and its report say about each territory.

Balance, pieces and targets come from ``core.metrics.plan_figures`` (the same the dock shows),
shapes from ``layers.shapes`` (one dissolve per territory), enclaves and the reps' reach from
``core.plan.checks``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.metrics import plan_figures
from ..core.plan.checks import distances_km, enclaves, reach, surrounding_territories
from ..core.plan.matching import unit_weights
from ..layers.reps import Rep
from ..layers.shapes import TerritoryShapes
from ..layers.territory_table import TerritoryRow
from ..layers.units import Units
from .territory_layer import measure_columns


@dataclass
class TerritoryFigures:
    """Everything the layer and the report say about each territory (index k = names[k])."""

    names: list[str]
    measures: list[str]
    sums: np.ndarray
    targets: np.ndarray
    deviation: np.ndarray  # fraction of the target, signed
    unit_count: np.ndarray
    parts: np.ndarray
    contiguous: np.ndarray
    shapes: TerritoryShapes
    enclave_of: list
    rep: list
    rep_mean_km: list
    rep_max_km: list
    within: np.ndarray
    issues: list[tuple[str, str]] = field(default_factory=list)
    rows: list[TerritoryRow] = field(default_factory=list)  # the territory table's rows, names[k] = rows[k].code
    # with a road network: minutes from the rep's home, per territory (mean, workload-weighted mean, max)
    rep_travel: dict | None = None
    # with accounts: per territory "accounts", "overrides_in" and "overrides_out" (counts), and the
    # accounts themselves (a core.plan.accounts.AccountBook) with the units' labels they were counted on
    accounts: dict | None = None
    book: object | None = None
    labels: np.ndarray | None = None


def measure_territories(units: Units, labels: np.ndarray, names: list[str], tolerance: float,
                        shapes: TerritoryShapes, reps: list[Rep], book=None, fixed_loads=None) -> TerritoryFigures:
    """The figures of the alignment ``labels`` (−1: unassigned). Unassigned units count in no
    territory, but their workload counts in the targets, since it still has to be served. Each
    territory's rep is the first rep given it; distances are measured from that rep's home. With
    accounts (``book``, a ``core.plan.accounts.AccountBook``), ``units`` carry the accounts aligned
    by geography and ``fixed_loads`` the overridden ones, counted for their territory."""
    p = len(names)
    plan = plan_figures(labels, units.workloads, units.adjacency, units.positions, territory_count=p,
                        tolerance=tolerance, fixed_loads=fixed_loads)
    around = surrounding_territories(labels, units.adjacency, p)
    enclave_owner = enclaves(labels, around, shapes.edge_units(units, labels)) if around else {}
    rep_of = territory_reps(names, reps)
    rep_mean: list[float | None] = [None] * p
    rep_max: list[float | None] = [None] * p
    for k, rep in rep_of.items():
        members = np.flatnonzero(labels == k)
        if rep.has_home and len(members):
            mean, _, longest = reach(distances_km(units.positions[members], rep.position), np.ones(len(members)))
            rep_mean[k], rep_max[k] = mean, longest
    return TerritoryFigures(
        names=names,
        measures=measure_columns(units),
        sums=np.asarray(plan.sums, dtype=float).reshape(p, -1),
        targets=np.asarray(plan.targets, dtype=float).reshape(p, -1),
        deviation=np.asarray(plan.deviation, dtype=float).reshape(p, -1),
        unit_count=np.asarray(plan.unit_count, dtype=int).reshape(p),
        parts=np.asarray(plan.parts).reshape(p),
        contiguous=np.asarray(plan.contiguous, dtype=bool).reshape(p),
        shapes=shapes,
        enclave_of=[names[enclave_owner[k]] if k in enclave_owner else None for k in range(p)],
        rep=[rep_of[k].name if k in rep_of else None for k in range(p)],
        rep_mean_km=rep_mean,
        rep_max_km=rep_max,
        within=np.asarray(plan.within_tolerance, dtype=bool).reshape(p),
        accounts=None if book is None else {"accounts": book.account_counts(labels, p),
                                            "overrides_in": book.overrides_in(labels, p),
                                            "overrides_out": book.overrides_out(labels, p)},
        book=book, labels=labels,
    )


def territory_reps(names: list[str], reps: list[Rep]) -> dict[int, Rep]:
    """{territory index: its rep}: the first rep (in the layer's order) given each territory."""
    index_of = {name: k for k, name in enumerate(names)}
    out: dict[int, Rep] = {}
    for rep in reps:
        k = index_of.get(rep.territory, -1)
        if k >= 0:
            out.setdefault(k, rep)
    return out


def rep_travel(minutes: np.ndarray, homes: list[int], units: Units, labels: np.ndarray, count: int) -> dict:
    """Minutes by road from each territory's rep: ``minutes[row]`` from the home of the rep of
    territory ``homes[row]`` to every unit. Per territory: mean, workload-weighted mean, max
    (None where no unit is reached)."""
    out = {key: [None] * count for key in ("mean", "weighted", "max")}
    weights = unit_weights(units.workloads)
    for row, k in enumerate(homes):
        members = np.flatnonzero(labels == k)
        figures = reach(minutes[row, members], weights[members])
        if figures is not None:
            out["mean"][k], out["weighted"][k], out["max"][k] = figures
    return out
