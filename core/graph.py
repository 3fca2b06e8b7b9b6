"""Adjacency graph helpers: cleaning, joining islands, pieces of territories, safe removals."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree


def undirected(adjacency, n: int) -> sp.csr_matrix:
    """Return a symmetric 0/1 CSR matrix without self loops."""
    a = adjacency if sp.issparse(adjacency) else sp.csr_matrix(np.asarray(adjacency))
    coo = sp.coo_matrix(a)
    keep = (coo.data != 0) & (coo.row != coo.col)
    r, c = coo.row[keep], coo.col[keep]
    a = sp.csr_matrix(
        (np.ones(2 * r.size), (np.concatenate([r, c]), np.concatenate([c, r]))), shape=coo.shape
    )
    a.data[:] = 1.0  # duplicates were summed
    a.sort_indices()
    if a.shape != (n, n):
        raise ValueError(f"adjacency must be ({n}, {n}), got {a.shape}")
    return a


def nearest_neighbour_graph(positions: np.ndarray, k: int = 6) -> sp.csr_matrix:
    """Symmetric graph joining every unit to its k nearest units (for problems without adjacency)."""
    n = positions.shape[0]
    k = int(min(k, n - 1))
    if k <= 0:
        return sp.csr_matrix((n, n))
    _, near = cKDTree(positions).query(positions, k=k + 1)
    near = np.asarray(near).reshape(n, k + 1)[:, 1:]
    rows = np.repeat(np.arange(n), k)
    return undirected(sp.csr_matrix((np.ones(rows.size), (rows, near.ravel())), shape=(n, n)), n)


@dataclass
class JoinedGraph:
    """The adjacency used for the solve: the input graph plus one edge per joined island."""

    adjacency: sp.csr_matrix
    joins: list = field(default_factory=list)  # (unit in detached group, nearest unit elsewhere)
    detached_units: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    detached_groups: int = 0


def _nearest_outside(positions: np.ndarray, members: np.ndarray, outside: np.ndarray) -> tuple:
    """Closest pair (i in members, j in outside) by straight-line distance."""
    if members.size <= outside.size:
        tree = cKDTree(positions[outside])
        d, k = tree.query(positions[members])
        best = int(np.argmin(d))
        return int(members[best]), int(outside[k[best]]), float(d[best])
    tree = cKDTree(positions[members])
    d, k = tree.query(positions[outside])
    best = int(np.argmin(d))
    return int(members[k[best]]), int(outside[best]), float(d[best])


def join_islands(adjacency: sp.csr_matrix, positions: np.ndarray) -> JoinedGraph:
    """Connect every detached group of units to the nearest unit of another group.

    Borůvka rounds: each group joins its nearest outside unit (KD-tree on positions) until the
    graph is connected. Groups other than the largest are reported as detached. The result is
    deterministic for given inputs.
    """
    n = adjacency.shape[0]
    ncomp, comp = connected_components(adjacency, directed=False)
    if ncomp <= 1 or positions is None:
        return JoinedGraph(adjacency)
    ncomp_start = ncomp
    sizes = np.bincount(comp, minlength=ncomp)
    main = int(np.argmax(sizes))
    detached = np.flatnonzero(comp != main)
    pos = np.asarray(positions, dtype=float)
    tree = cKDTree(pos)
    k = int(min(n, 16))
    dd, nn = tree.query(pos, k=k)
    nn = nn.reshape(n, k)
    reach = dd.reshape(n, k)[:, -1]  # nothing outside within this distance when none was found
    joins: list = []
    while ncomp > 1:
        # nearest outside neighbour among each unit's k nearest, then best per group
        other = comp[nn] != comp[:, None]
        has = other.any(axis=1)
        first = np.argmax(other, axis=1)
        cand_j = nn[np.arange(n), first]
        dist = np.where(has, np.linalg.norm(pos - pos[cand_j], axis=1), np.inf)
        order = np.lexsort((np.arange(n), dist, comp))
        starts = np.flatnonzero(np.r_[True, comp[order][1:] != comp[order][:-1]])
        ends = np.r_[starts[1:], n]
        unfound = np.full(ncomp, np.inf)
        np.minimum.at(unfound, comp[~has], reach[~has])
        largest = int(np.argmax(np.bincount(comp, minlength=ncomp)))
        round_joins = {}
        for c_start, c_end in zip(starts.tolist(), ends.tolist()):
            best = int(order[c_start])
            if comp[best] == largest:
                continue
            if dist[best] <= unfound[comp[best]]:
                i, j = best, int(cand_j[best])
            else:
                members = np.sort(order[c_start:c_end])
                outside = np.flatnonzero(comp != comp[best])
                i, j, _ = _nearest_outside(pos, members, outside)
            round_joins[(min(i, j), max(i, j))] = (i, j)
        rows = [i for i, _ in round_joins.values()]
        cols = [j for _, j in round_joins.values()]
        joins.extend(round_joins.values())
        extra = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        adjacency = (adjacency + extra + extra.T).tocsr()
        adjacency.data[:] = 1.0
        ncomp, comp = connected_components(adjacency, directed=False)
    adjacency.sort_indices()
    return JoinedGraph(adjacency, joins, detached, int(ncomp_start - 1))


def territory_pieces(labels: np.ndarray, adjacency: sp.csr_matrix) -> np.ndarray:
    """Connected-piece id of every unit within its own territory (units with label < 0 get -1)."""
    coo = adjacency.tocoo()
    same = (labels[coo.row] == labels[coo.col]) & (labels[coo.row] >= 0)
    n = labels.shape[0]
    g = sp.csr_matrix((np.ones(int(same.sum())), (coo.row[same], coo.col[same])), shape=(n, n))
    _, piece = connected_components(g, directed=False)
    piece = piece.astype(np.int64)
    piece[labels < 0] = -1
    return piece


def count_parts(labels: np.ndarray, adjacency: sp.csr_matrix, p: int) -> np.ndarray:
    """Number of connected pieces of every territory 0..p-1 (0 for an empty one)."""
    piece = territory_pieces(labels, adjacency)
    ok = (labels >= 0) & (labels < p)
    if not np.any(ok):
        return np.zeros(p, dtype=np.int64)
    uniq = np.unique(piece[ok])
    # every piece lies in exactly one territory; take the label of one member
    first = np.full(piece.max() + 1, -1, dtype=np.int64)
    idx = np.flatnonzero(ok)
    first[piece[idx]] = labels[idx]
    return np.bincount(first[uniq], minlength=p)[:p].astype(np.int64)


class Neighbours:
    """Fast Python-level neighbour lists for connectivity checks."""

    def __init__(self, adjacency: sp.csr_matrix):
        indptr = adjacency.indptr
        indices = adjacency.indices
        self.lists = [indices[indptr[i]:indptr[i + 1]].tolist() for i in range(adjacency.shape[0])]

    def removal_keeps_connected(self, unit: int, labels: np.ndarray, limit: int = 600) -> bool:
        """True if taking ``unit`` out of its territory does not split the piece it belongs to.

        Conservative: when the search would visit more than ``limit`` units the answer is False
        (the move is skipped, never wrongly allowed).
        """
        lists = self.lists
        own = labels[unit]
        nbrs = [v for v in lists[unit] if labels[v] == own]
        if len(nbrs) <= 1:
            return True
        # local test: the territory neighbours of the unit are connected among themselves
        nset = set(nbrs)
        seen = {nbrs[0]}
        stack = [nbrs[0]]
        while stack:
            v = stack.pop()
            for w in lists[v]:
                if w in nset and w not in seen:
                    seen.add(w)
                    stack.append(w)
        if len(seen) == len(nset):
            return True
        # exact test: search the territory without the unit until every neighbour is found
        visited = {unit, nbrs[0]}
        stack = [nbrs[0]]
        missing = set(nbrs[1:])
        while stack:
            v = stack.pop()
            for w in lists[v]:
                if w not in visited and labels[w] == own:
                    visited.add(w)
                    missing.discard(w)
                    if not missing:
                        return True
                    if len(visited) > limit:
                        return False
                    stack.append(w)
        return not missing
