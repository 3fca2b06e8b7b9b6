"""Matching reps to territories: each rep gets the territory whose units lie, workload-weighted,
closest to the rep's home, and the total over all reps is as small as possible.

Pure numpy/scipy. Distances are straight lines in whatever units the positions are given in
(the algorithms pass metres in the units' metric CRS).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist


class MatchingError(ValueError):
    """The matching cannot be set up; the message names the problem."""


def unit_weights(workloads: np.ndarray) -> np.ndarray:
    """One weight per unit from its workloads: each measure divided by its total, summed, so
    every measure counts equally whatever its scale. No measures (or all totals zero): 1 each."""
    workloads = np.asarray(workloads, dtype=float)
    n = workloads.shape[0]
    if workloads.ndim != 2 or workloads.shape[1] == 0:
        return np.ones(n)
    totals = workloads.sum(axis=0)
    used = totals > 0
    if not used.any():
        return np.ones(n)
    return (workloads[:, used] / totals[used]).sum(axis=1)


def territory_distance_costs(positions: np.ndarray, weights: np.ndarray, labels: np.ndarray,
                             territory_count: int, homes: np.ndarray, chunk: int = 20000) -> np.ndarray:
    """The (territories × reps) cost matrix: ``cost[k, r]`` is the sum over the units of
    territory ``k`` of ``weights[i] · |positions[i] − homes[r]|``.

    ``labels`` gives each unit's territory (0 … territory_count − 1); units labelled −1 count
    for no territory. Units are processed ``chunk`` at a time so memory stays bounded.
    """
    positions = np.asarray(positions, dtype=float).reshape(-1, 2)
    homes = np.asarray(homes, dtype=float).reshape(-1, 2)
    weights = np.asarray(weights, dtype=float).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if not (len(positions) == len(weights) == len(labels)):
        raise MatchingError("positions, weights and labels must have one entry per unit")
    if len(labels) and labels.max(initial=-1) >= territory_count:
        raise MatchingError("a unit's territory index is outside 0 … territory_count − 1")
    costs = np.zeros((territory_count, len(homes)))
    if len(homes) == 0 or territory_count == 0:
        return costs
    assigned = np.flatnonzero(labels >= 0)
    for start in range(0, len(assigned), chunk):
        rows = assigned[start:start + chunk]
        distances = cdist(positions[rows], homes)
        membership = sparse.csr_matrix((weights[rows], (labels[rows], np.arange(len(rows)))),
                                       shape=(territory_count, len(rows)))
        costs += membership @ distances
    return costs


@dataclass
class RepMatching:
    """``rep_of_territory[k]`` is the rep index matched to territory ``k``, or −1 (a vacancy).
    ``unassigned_reps`` are the reps left without a territory, in index order."""

    rep_of_territory: np.ndarray
    unassigned_reps: np.ndarray
    total_cost: float
    kept: list[tuple[int, int]] = field(default_factory=list)


def match_reps(costs: np.ndarray, kept: list[tuple[int, int]] | None = None) -> RepMatching:
    """The one-to-one matching of reps (columns) to territories (rows) with the least total cost.

    ``kept`` pairs ``(territory, rep)`` are fixed; the rest are matched optimally around them
    (Hungarian method). With more territories than reps some territories stay vacant; with more
    reps than territories some reps stay unassigned — whichever choice minimises the total.
    Raises :class:`MatchingError` for non-finite costs or a territory or rep kept twice.
    """
    costs = np.asarray(costs, dtype=float)
    if costs.ndim != 2:
        raise MatchingError("costs must be a territories × reps matrix")
    if not np.all(np.isfinite(costs)):
        raise MatchingError("costs must be finite numbers")
    p, r = costs.shape
    kept = [(int(k), int(j)) for k, j in (kept or [])]
    rep_of_territory = np.full(p, -1, dtype=np.int64)
    taken_reps = np.zeros(r, dtype=bool)
    for k, j in kept:
        if not (0 <= k < p and 0 <= j < r):
            raise MatchingError(f"kept pair ({k}, {j}) is outside the cost matrix")
        if rep_of_territory[k] >= 0:
            raise MatchingError(f"territory {k} is kept for two reps")
        if taken_reps[j]:
            raise MatchingError(f"rep {j} is kept for two territories")
        rep_of_territory[k] = j
        taken_reps[j] = True
    free_territories = np.flatnonzero(rep_of_territory < 0)
    free_reps = np.flatnonzero(~taken_reps)
    if len(free_territories) and len(free_reps):
        rows, cols = linear_sum_assignment(costs[np.ix_(free_territories, free_reps)])
        rep_of_territory[free_territories[rows]] = free_reps[cols]
    matched = rep_of_territory >= 0
    used = np.zeros(r, dtype=bool)
    used[rep_of_territory[matched]] = True
    total = float(costs[np.flatnonzero(matched), rep_of_territory[matched]].sum())
    return RepMatching(rep_of_territory=rep_of_territory, unassigned_reps=np.flatnonzero(~used),
                       total_cost=total, kept=kept)
