"""The engine's working form of a Problem: normalised, scaled, with the solve graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from ..graph import JoinedGraph, Neighbours, join_islands, nearest_neighbour_graph, undirected
from ..metrics import balance_matrix, combined_weight
from ..problem import Problem

# Units with no workload still get a little compactness weight, so they join a near territory.
ZERO_WEIGHT_FLOOR = 1e-3


@dataclass
class Model:
    """Arrays the solver works on.

    frac      (n, m') workload / total of each balanced measure (a column of 1/n for unit counts)
    share     (p,) target share of each territory (sums to 1)
    ratio of territory k on measure a = sum of frac over its units / share[k]; 1 = on target.
    active    (m',) measures that count for balance (a measure whose total is 0 is always balanced)
    weight    (n,) compactness weight (combined weight, floored)
    xy        (n, 2) positions centred and divided by ``scale`` (numerically tame)
    locked    (n,) -1 or the territory a unit must stay in (user locks plus seed anchors)
    """

    n: int
    p: int
    frac: np.ndarray
    share: np.ndarray
    active: np.ndarray
    weight: np.ndarray
    xy: np.ndarray
    offset: np.ndarray
    scale: float
    graph: JoinedGraph
    locked: np.ndarray
    user_locked: np.ndarray
    seeds_xy: Optional[np.ndarray]
    anchors: np.ndarray
    tolerance: float
    contiguous: bool
    random_seed: int
    tolerances: Optional[np.ndarray] = None  # (m',) per measure; ``tolerance`` is their minimum
    _neighbours: Optional[Neighbours] = None
    _edges: Optional[tuple] = None

    @property
    def adjacency(self) -> sp.csr_matrix:
        return self.graph.adjacency

    @property
    def neighbours(self) -> Neighbours:
        if self._neighbours is None:
            self._neighbours = Neighbours(self.adjacency)
        return self._neighbours

    @property
    def edges(self) -> tuple:
        """Directed edge arrays (u, v), both directions present."""
        if self._edges is None:
            coo = self.adjacency.tocoo()
            self._edges = (coo.row.astype(np.int64), coo.col.astype(np.int64))
        return self._edges

    @property
    def m(self) -> int:
        return self.frac.shape[1]

    @property
    def tolerance_vector(self) -> np.ndarray:
        """(m',) the tolerance of every balanced measure."""
        return self.tolerances if self.tolerances is not None else np.full(self.m, self.tolerance)

    def territory_pairs(self, labels: np.ndarray) -> np.ndarray:
        """(q, 2) pairs of territories that share a border (a < b), sorted."""
        p = self.p
        edge_from, edge_to = self.edges
        first, second = labels[edge_from], labels[edge_to]
        keep = first < second
        key = np.unique(first[keep] * p + second[keep])
        return np.column_stack([key // p, key % p])

    def ratios(self, labels: np.ndarray) -> np.ndarray:
        """(p, m') load of every territory as a fraction of its target."""
        out = np.zeros((self.p, self.m))
        for a in range(self.m):
            out[:, a] = np.bincount(labels, self.frac[:, a], minlength=self.p)[: self.p]
        return out / self.share[:, None]


def build_model(problem: Problem) -> Model:
    """Normalise a validated problem into a Model (joins islands, snaps seeds to anchors)."""
    n = problem.unit_count
    p = int(problem.territory_count)
    pos = np.asarray(problem.positions, dtype=float)
    w = problem.workload_matrix()
    bal = balance_matrix(w)
    totals = bal.sum(axis=0)
    active = totals > 0
    if not np.any(active):
        # every measure is empty: balance hidden unit counts so territories stay comparable
        bal = np.ones((n, 1))
        totals = np.array([float(n)])
        active = np.array([True])
    frac = np.where(active[None, :], bal / np.where(totals > 0, totals, 1.0)[None, :], 0.0)
    share = problem.target_shares()

    cw = combined_weight(w)
    mean_cw = float(cw.mean()) if n else 1.0
    weight = cw + ZERO_WEIGHT_FLOOR * (mean_cw if mean_cw > 0 else 1.0)

    offset = pos.mean(axis=0)
    xy = pos - offset
    scale = float(np.sqrt((xy**2).sum(axis=1).mean())) or 1.0
    xy = xy / scale

    if problem.adjacency is None:
        adj = nearest_neighbour_graph(pos)
    else:
        adj = undirected(problem.adjacency, n)
    graph = join_islands(adj, pos)

    user_locked = (
        np.asarray(problem.locked, dtype=np.int64).copy()
        if problem.locked is not None
        else np.full(n, -1, dtype=np.int64)
    )
    locked = user_locked.copy()
    seeds_xy = None
    anchors = np.full(p, -1, dtype=np.int64)
    if problem.seeds is not None:
        seeds_xy = (np.asarray(problem.seeds, dtype=float) - offset) / scale
        anchors = _snap_seeds(seeds_xy, xy, locked)
        for k, unit in enumerate(anchors):
            if unit >= 0 and locked[unit] < 0:
                locked[unit] = k
    return Model(
        n=n,
        p=p,
        frac=frac,
        share=share,
        active=active,
        weight=weight,
        xy=xy,
        offset=offset,
        scale=scale,
        graph=graph,
        locked=locked,
        user_locked=user_locked,
        seeds_xy=seeds_xy,
        anchors=anchors,
        tolerance=float(np.min(problem.tolerance_vector())),
        tolerances=problem.tolerance_vector()[: frac.shape[1]] if problem.measure_count else np.full(
            frac.shape[1], float(problem.tolerance)),
        contiguous=bool(problem.contiguous),
        random_seed=int(problem.random_seed),
    )


def _snap_seeds(seeds_xy: np.ndarray, xy: np.ndarray, locked: np.ndarray) -> np.ndarray:
    """Nearest free unit to every seed (each unit anchors at most one seed); -1 if none is free."""
    p = seeds_xy.shape[0]
    n = xy.shape[0]
    tree = cKDTree(xy)
    k = int(min(n, p + 1))
    _, near = nearest_stable(tree, seeds_xy, k)
    taken = set()
    anchors = np.full(p, -1, dtype=np.int64)
    for s in range(p):
        for unit in near[s].tolist():
            if unit in taken:
                continue
            if locked[unit] >= 0 and locked[unit] != s:
                continue
            anchors[s] = unit
            taken.add(unit)
            break
    return anchors


def nearest_stable(tree: cKDTree, points: np.ndarray, k: int) -> tuple:
    """(distances, indices), each (len(points), k): the k nearest, ties broken by the lower index.

    A k-d tree returns equidistant points in an order of its own making, which differs between
    SciPy releases (two centres snapped to the same unit tie for every point); one neighbour more
    is asked for and the ties are ordered by index, so the choice is the same everywhere.
    """
    total = int(tree.n)
    ask = int(min(k + 1, total))
    d, idx = tree.query(points, k=ask)
    d = np.asarray(d, dtype=float).reshape(len(points), ask)
    idx = np.asarray(idx).reshape(len(points), ask).astype(np.int64)
    # the tree returns distances in ascending order: only rows with equal distances need sorting
    tied = np.flatnonzero((d[:, 1:] == d[:, :-1]).any(axis=1)) if ask > 1 else np.zeros(0, dtype=np.int64)
    if tied.size:
        order = np.lexsort((idx[tied], d[tied]), axis=1)
        d[tied] = np.take_along_axis(d[tied], order, axis=1)
        idx[tied] = np.take_along_axis(idx[tied], order, axis=1)
    return d[:, :k], idx[:, :k]
