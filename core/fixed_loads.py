"""Fixed loads in the engine: workload a territory carries whatever its units are (accounts
overridden to it).

The search only knows units. A territory's fixed load therefore rides on a *ghost unit*: a unit
carrying the load, locked to the territory, whose only neighbour is one *anchor* unit of the
territory, locked there too, at the anchor's place. The ghost counts in the territory's sums on
every measure, everywhere the engine sums (building, moving, merging and splitting, ranking
plans), never moves, and keeps the territory connected (a leaf on a unit that stays). The price
is that one unit of each territory with a fixed load stays in it: the anchor is a locked unit of
the territory when there is one, else the unit deepest inside it (farthest from its border, in
steps), which no rebalance moves anyway; for a new plan, the unit nearest the territory's seed.

Only :mod:`core.engine` calls this: ``Ghosts.of(problem)`` gives the problem with ghosts (or
None when there are no fixed loads) and ``Ghosts.strip(plan)`` the plan of the real units, its
figures measured on the problem as given (fixed loads in the sums and the targets).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from .graph import nearest_neighbour_graph, undirected
from .metrics import plan_figures
from .problem import Plan, Problem, ProblemError


@dataclass
class Ghosts:
    """The problem with a ghost unit per territory with a fixed load; see the module docstring."""

    original: Problem
    problem: Problem
    unit_count: int
    territories: np.ndarray  # (g,) territory of each ghost
    anchors: np.ndarray  # (g,) its anchor unit

    @classmethod
    def of(cls, problem: Problem) -> Optional[Ghosts]:
        """The problem with ghosts, or None when ``problem`` has no (nonzero) fixed loads. Raises
        ProblemError when a territory with a fixed load has nothing to anchor it to."""
        fixed = problem.fixed_load_matrix()
        if fixed is None or problem.measure_count == 0 or not np.any(fixed > 0):
            return None
        problem.validate()
        territories = np.flatnonzero(fixed.sum(axis=1) > 0)
        n = problem.unit_count
        adjacency = undirected(problem.adjacency, n) if problem.adjacency is not None else nearest_neighbour_graph(
            np.asarray(problem.positions, dtype=float))
        locked = (np.asarray(problem.locked, dtype=np.int64).copy() if problem.locked is not None
                  else np.full(n, -1, dtype=np.int64))
        anchors = _anchors(problem, adjacency, locked, territories)
        g = territories.size
        positions = np.asarray(problem.positions, dtype=float)
        ghost_rows = np.arange(n, n + g)
        links = sp.coo_matrix((np.ones(2 * g), (np.r_[ghost_rows, anchors], np.r_[anchors, ghost_rows])),
                              shape=(n + g, n + g))
        grown = sp.bmat([[adjacency, None], [None, sp.csr_matrix((g, g))]]).tocsr() + links.tocsr()
        locked[anchors] = territories
        initial = None
        if problem.initial is not None:
            initial = np.concatenate([np.asarray(problem.initial, dtype=np.int64), territories])
        with_ghosts = replace(
            problem, positions=np.vstack([positions, positions[anchors]]),
            workloads=np.vstack([problem.workload_matrix(), fixed[territories]]), adjacency=grown,
            locked=np.concatenate([locked, territories]), initial=initial, fixed_loads=None)
        return cls(problem, with_ghosts, n, territories, anchors)

    def strip(self, plan: Plan) -> Plan:
        """The plan of the real units, measured with the fixed loads; diagnostics name real units only."""
        n = self.unit_count
        labels = np.asarray(plan.labels, dtype=np.int64)[:n]
        for diagnostic in plan.diagnostics:
            diagnostic.units = [u for u in diagnostic.units if int(u) < n]
        given = self.original
        tolerance = given.tolerance_vector() if given.tolerances is not None else float(given.tolerance)
        adjacency = self.problem.adjacency[:n, :n]
        figures = plan_figures(labels, given.workload_matrix(), adjacency, given.positions, given.territory_count,
                               given.seed_targets, tolerance, True, given.fixed_load_matrix())
        return replace(plan, labels=labels, figures=figures)


def _anchors(problem: Problem, adjacency: sp.csr_matrix, locked: np.ndarray, territories: np.ndarray) -> np.ndarray:
    """One unit per territory with a fixed load: a unit locked to it, else the deepest unit of the
    existing plan, else the unit nearest its seed."""
    n = problem.unit_count
    anchors = np.full(territories.size, -1, dtype=np.int64)
    for j, k in enumerate(territories.tolist()):
        mine = np.flatnonzero(locked == k)
        if mine.size:
            anchors[j] = mine[0]
    missing = anchors < 0
    if np.any(missing) and problem.initial is not None:
        initial = np.asarray(problem.initial, dtype=np.int64)
        free_initial = np.where((locked < 0) | (locked == initial), initial, -1)
        depth = _depth(free_initial, adjacency)
        for j in np.flatnonzero(missing).tolist():
            members = np.flatnonzero(free_initial == territories[j])
            if members.size:
                anchors[j] = members[np.argmax(depth[members])]
    missing = anchors < 0
    if np.any(missing) and problem.seeds is not None:
        seeds = np.asarray(problem.seeds, dtype=float)
        free = np.flatnonzero(locked < 0)
        tree = cKDTree(np.asarray(problem.positions, dtype=float)[free])
        taken = set(anchors[anchors >= 0].tolist())
        for j in np.flatnonzero(missing).tolist():
            _, near = tree.query(seeds[territories[j]], k=min(free.size, 8))
            for unit in free[np.atleast_1d(near)].tolist():
                if unit not in taken:
                    anchors[j] = unit
                    taken.add(unit)
                    break
    if np.any(anchors < 0):
        names = list(problem.measure_names or ())
        bad = ", ".join(str(int(k)) for k in territories[anchors < 0][:10])
        raise ProblemError(
            f"Territories {bad} carry a fixed load but have no unit in the existing plan, no locked unit and no "
            "seed to hold it; give them a unit (or a seed) or remove their fixed load"
            + (f" ({', '.join(names)})." if names else ".")
        )
    del n
    return anchors


def _depth(labels: np.ndarray, adjacency: sp.csr_matrix) -> np.ndarray:
    """(n,) steps from each unit to the nearest unit of its territory with a neighbour outside it
    (inside its territory's own graph); units on a border are 0, unassigned units -1."""
    coo = adjacency.tocoo()
    same = labels[coo.row] == labels[coo.col]
    border = np.zeros(labels.size, dtype=bool)
    np.logical_or.at(border, coo.row[~same], True)
    inside = sp.csr_matrix((np.ones(int(same.sum())), (coo.row[same], coo.col[same])), shape=adjacency.shape)
    sources = np.flatnonzero(border & (labels >= 0))
    if sources.size == 0:
        return np.where(labels >= 0, 0.0, -1.0)
    distance = dijkstra(inside, directed=False, indices=sources, unweighted=True, min_only=True)
    # a territory without any border (the only one) has no source: every unit is equally deep
    return np.where(labels < 0, -1.0, np.where(np.isfinite(distance), distance, 0.0))
