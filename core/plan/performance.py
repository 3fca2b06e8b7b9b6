"""How territories perform: sales against potential (penetration), sales against goal
(attainment), their ranks, and where the untapped potential lies.

Penetration and attainment are percentages; a territory without potential (or without a goal)
has none (NaN) and no rank. A unit's untapped potential is its potential minus the sales its
territory's penetration predicts for it: potential × (1 − penetration), never below 0.

Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..problem import ProblemError


class PerformanceError(ProblemError):
    """Sales or potential cannot be used as given; the message names the field and the fix."""


@dataclass
class Performance:
    """Per-territory figures (index k = territory k).

    sales, potential    sums over the territory's units
    goal                the territory's goal (NaN: none)
    penetration         100 × sales / potential (NaN without potential)
    attainment          100 × sales / goal (NaN without a goal)
    penetration_rank    1 = the highest penetration; ties share the rank; 0 = no penetration
    attainment_rank     the same for attainment
    overall_penetration 100 × all sales / all potential over the assigned units (NaN without potential)
    """

    sales: np.ndarray
    potential: np.ndarray
    goal: np.ndarray
    penetration: np.ndarray
    attainment: np.ndarray
    penetration_rank: np.ndarray
    attainment_rank: np.ndarray
    overall_penetration: float

    @property
    def has_goals(self) -> bool:
        return bool(np.any(np.isfinite(self.goal)))


def check_unit_values(values, field: str, role: str, unit_names: Sequence[str] | None = None) -> np.ndarray:
    """``values`` as floats; raises :class:`PerformanceError` naming the field (``role``: "sales",
    "potential") and up to five units when a value is missing (NaN) or negative."""
    values = np.asarray(values, dtype=float).reshape(-1)
    for bad, what, fix in (
            (~np.isfinite(values), "has no value (NULL)", "Fill them in (0 where there were none)"),
            (values < 0, "is negative", f"{role.capitalize()} are zero or more; correct them")):
        where = np.flatnonzero(bad)
        if where.size:
            listed = ", ".join(unit_names[i] if unit_names is not None else str(i) for i in where[:5])
            more = f" and {where.size - 5} more" if where.size > 5 else ""
            raise PerformanceError(
                f"The {role} field “{field}” {what} for {where.size} units ({listed}{more}). {fix}, or filter "
                f"those units out.")
    return values


def territory_performance(labels, sales, potential, territory_count: int, goals=None) -> Performance:
    """Sums, penetration, attainment and ranks per territory. ``labels`` (n,) territory index per
    unit, −1 = unassigned (counted nowhere); ``goals`` (p,) or None (NaN entries: no goal)."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    p = int(territory_count)
    assigned = (labels >= 0) & (labels < p)
    sales_sum = np.bincount(labels[assigned], np.asarray(sales, dtype=float)[assigned], minlength=p)[:p]
    potential_sum = np.bincount(labels[assigned], np.asarray(potential, dtype=float)[assigned], minlength=p)[:p]
    goal = np.full(p, np.nan) if goals is None else np.asarray(goals, dtype=float).reshape(p).copy()
    penetration = _percent(sales_sum, potential_sum)
    attainment = _percent(sales_sum, goal)
    total_potential = potential_sum.sum()
    overall = 100.0 * sales_sum.sum() / total_potential if total_potential > 0 else float("nan")
    return Performance(sales=sales_sum, potential=potential_sum, goal=goal, penetration=penetration,
                       attainment=attainment, penetration_rank=rank_descending(penetration),
                       attainment_rank=rank_descending(attainment), overall_penetration=float(overall))


def _percent(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    ok = np.isfinite(whole) & (whole > 0)
    return np.where(ok, 100.0 * part / np.where(ok, whole, 1.0), np.nan)


def rank_descending(values) -> np.ndarray:
    """Competition ranks, 1 = the largest value; equal values share a rank (1, 2, 2, 4); NaN gets 0."""
    values = np.asarray(values, dtype=float).reshape(-1)
    finite = np.isfinite(values)
    ascending = np.sort(values[finite])
    ranks = np.zeros(values.size, dtype=np.int64)
    # rank = 1 + how many values are strictly larger
    ranks[finite] = 1 + ascending.size - np.searchsorted(ascending, values[finite], side="right")
    return ranks


def below_threshold(performance: Performance, threshold: float) -> np.ndarray:
    """Territories performing below ``threshold`` percent: of their goal when goals are known,
    else of the overall penetration. Territories without a figure are never listed."""
    if performance.has_goals:
        figure = performance.attainment
        limit = float(threshold)
    else:
        figure = performance.penetration
        limit = float(threshold) / 100.0 * performance.overall_penetration
    return np.isfinite(figure) & (figure < limit)


def untapped_potential(labels, potential, penetration) -> np.ndarray:
    """Each unit's potential minus the sales its territory's penetration predicts for it:
    potential × (1 − penetration / 100), 0 below zero (territories over 100 %), NaN for
    unassigned units and territories without penetration."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    potential = np.asarray(potential, dtype=float).reshape(-1)
    penetration = np.asarray(penetration, dtype=float).reshape(-1)
    rate = np.full(labels.size, np.nan)
    assigned = (labels >= 0) & (labels < penetration.size)
    rate[assigned] = penetration[labels[assigned]] / 100.0
    return np.maximum(potential - rate * potential, 0.0, where=np.isfinite(rate), out=np.full(labels.size, np.nan))


def top_opportunities(untapped, count: int) -> np.ndarray:
    """Indices of the ``count`` units with the most untapped potential (above 0), largest first;
    ties keep unit order."""
    untapped = np.asarray(untapped, dtype=float).reshape(-1)
    candidates = np.flatnonzero(np.isfinite(untapped) & (untapped > 0))
    order = candidates[np.argsort(-untapped[candidates], kind="stable")]
    return order[:max(int(count), 0)]
