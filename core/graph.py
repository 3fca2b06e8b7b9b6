"""Adjacency graph helpers: cleaning, joining islands, pieces of territories, safe removals."""

from __future__ import annotations

from collections.abc import Iterator
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


#: units per block of :func:`components` (a block's search holds the interpreter a few ms)
COMPONENT_BLOCK = 50_000


def components(adjacency: sp.spmatrix, order: np.ndarray | None = None,
               block: int = COMPONENT_BLOCK) -> tuple[int, np.ndarray]:
    """``connected_components(adjacency, directed=False)``: the same count and the same labels
    (components numbered by their first unit), found block by block.

    SciPy's search holds the Python interpreter for the whole graph (over a second at a million
    units), freezing every other thread, e.g. the panel's while its neighbours are read in the
    background. Here units are taken in ``order`` (e.g. sorted along x, so that few neighbours
    fall into different blocks) in blocks of ``block`` units: each block's components are found
    alone, then the blocks' components are joined along the edges between blocks; everything
    else is numpy, which lets other threads run. Small graphs go to SciPy directly.
    """
    n = adjacency.shape[0]
    if n <= 2 * block:
        count, labels = connected_components(adjacency, directed=False)
        return int(count), labels
    coo = sp.coo_matrix(adjacency)
    keep = coo.data != 0
    rows, cols = coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64)
    if order is not None:
        rank = np.empty(n, dtype=np.int64)
        rank[np.asarray(order, dtype=np.int64)] = np.arange(n)
        rows, cols = rank[rows], rank[cols]
    row_block, col_block = rows // block, cols // block
    inside = np.flatnonzero(row_block == col_block)
    by_block = np.argsort(row_block[inside], kind="stable")
    inside = inside[by_block]
    blocks = (n + block - 1) // block
    bounds = np.searchsorted(row_block[inside], np.arange(blocks + 1))
    local = np.empty(n, dtype=np.int64)
    offset = 0
    for b in range(blocks):
        start, end = b * block, min(n, (b + 1) * block)
        edges = inside[bounds[b]:bounds[b + 1]]
        sub = sp.csr_matrix((np.ones(edges.size, dtype=np.int8), (rows[edges] - start, cols[edges] - start)),
                            shape=(end - start, end - start))
        count, labels = connected_components(sub, directed=False)
        local[start:end] = labels + offset
        offset += int(count)
    across = np.flatnonzero(row_block != col_block)
    joined = sp.csr_matrix((np.ones(across.size, dtype=np.int8), (local[rows[across]], local[cols[across]])),
                           shape=(offset, offset))
    count, top = connected_components(joined, directed=False)
    labels = top[local]
    if order is not None:
        labels = labels[rank]
    # number the components by their first unit, as SciPy does
    _, first = np.unique(labels, return_index=True)
    renumber = np.empty(int(count), dtype=np.int32)
    renumber[np.argsort(first, kind="stable")] = np.arange(int(count), dtype=np.int32)
    return int(count), renumber[labels]


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


def _delaunay_edges(pos: np.ndarray):
    """Delaunay edges (u, v, length) of the positions, both directions; None when degenerate."""
    from scipy.spatial import Delaunay, QhullError

    unique, first = np.unique(pos, axis=0, return_index=True)
    if unique.shape[0] < 3:
        return None
    try:
        simplices = Delaunay(unique).simplices
    except (QhullError, ValueError):
        return None
    e = np.concatenate([simplices[:, [0, 1]], simplices[:, [1, 2]], simplices[:, [0, 2]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    u, v = first[e[:, 0]], first[e[:, 1]]
    length = np.hypot(*(pos[u] - pos[v]).T)
    return np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([length, length])


def join_islands(adjacency: sp.csr_matrix, positions: np.ndarray, in_blocks: bool = False) -> JoinedGraph:
    """Connect every detached group of units to the nearest unit of another group.

    Borůvka rounds: each group joins its nearest outside unit (KD-tree on positions) until the
    graph is connected. Groups other than the largest are reported as detached. The result is
    deterministic for given inputs. ``in_blocks``: components found block by block along x
    (:func:`components`; the same result, a little more CPU, never the interpreter held for the
    whole graph) for a worker thread beside a user interface.
    """
    n = adjacency.shape[0]
    if in_blocks and positions is not None:
        along_x = np.argsort(np.asarray(positions, dtype=float)[:, 0], kind="stable")

        def find(graph):
            return components(graph, along_x)
    else:
        def find(graph):
            return connected_components(graph, directed=False)
    ncomp, comp = find(adjacency)
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
    delaunay = None
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
        best = order[starts]
        group_of = comp[best]
        joining = group_of != largest
        easy = joining & (dist[best] <= unfound[group_of])
        for i, j in zip(best[easy].tolist(), cand_j[best[easy]].tolist()):
            round_joins[(min(i, j), max(i, j))] = (i, j)
        hard = list(zip(starts[joining & ~easy].tolist(), ends[joining & ~easy].tolist()))
        if len(hard) > 8 and delaunay is None:
            delaunay = _delaunay_edges(pos)
        if hard and delaunay is not None and delaunay[0].size:
            # the nearest pair between a group and the rest is a Delaunay (Gabriel) edge
            du, dv, dl = delaunay
            cross = comp[du] != comp[dv]
            cu, cv, cl = du[cross], dv[cross], dl[cross]
            pick = np.lexsort((cv, cu, cl, comp[cu]))
            first_of = np.r_[True, comp[cu][pick][1:] != comp[cu][pick][:-1]]
            best_edge = {int(comp[cu[e]]): (int(cu[e]), int(cv[e])) for e in pick[first_of].tolist()}
        else:
            best_edge = {}
        for c_start, c_end in hard:
            group = int(comp[order[c_start]])
            if group in best_edge:
                i, j = best_edge[group]
            else:
                members = np.sort(order[c_start:c_end])
                outside = np.flatnonzero(comp != group)
                i, j, _ = _nearest_outside(pos, members, outside)
            round_joins[(min(i, j), max(i, j))] = (i, j)
        rows = [i for i, _ in round_joins.values()]
        cols = [j for _, j in round_joins.values()]
        joins.extend(round_joins.values())
        extra = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        adjacency = (adjacency + extra + extra.T).tocsr()
        adjacency.data[:] = 1.0
        ncomp, comp = find(adjacency)
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


def territory_walk(lists: list, labels: np.ndarray, start: int, seen: set) -> Iterator[int]:
    """Units of ``start``'s territory reached from ``start``, depth first, never through a unit in
    ``seen``; each is added to ``seen`` and yielded when first reached (``start`` is not)."""
    own = labels[start]
    stack = [start]
    while stack:
        unit = stack.pop()
        for neighbour in lists[unit]:
            if neighbour not in seen and labels[neighbour] == own:
                seen.add(neighbour)
                yield neighbour
                stack.append(neighbour)


def path_between(lists: list, sources: list, passable: np.ndarray, target: np.ndarray):
    """The units between ``sources`` and the nearest ``target`` unit, breadth first.

    The search starts at every unit of ``sources`` at once and steps only onto units with
    ``passable`` (n,) True; the first one reached with ``target`` (n,) True ends it. Returns the
    units strictly between that target and the sources, from the target's side back (empty when
    a source touches it), or None when no target can be reached.
    """
    previous = {unit: -1 for unit in sources}
    frontier = list(sources)
    found = -1
    while frontier and found < 0:
        following = []
        for unit in frontier:
            for neighbour in lists[unit]:
                if neighbour in previous or not passable[neighbour]:
                    continue
                previous[neighbour] = unit
                if target[neighbour]:
                    found = neighbour
                    break
                following.append(neighbour)
            if found >= 0:
                break
        frontier = following
    if found < 0:
        return None
    path = []
    unit = previous[found]
    while unit >= 0 and previous[unit] >= 0:
        path.append(unit)
        unit = previous[unit]
    return path


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


def _cut_vertices(indptr: list, indices: list, n: int) -> list:
    """Articulation points of a small graph given as Python CSR lists (iterative Hopcroft–Tarjan).

    A vertex is a cut vertex when removing it splits the connected piece it lies in.
    """
    disc = [-1] * n
    low = [0] * n
    parent = [-1] * n
    ptr = list(indptr[:n])
    cut = [False] * n
    t = 0
    for root in range(n):
        if disc[root] >= 0:
            continue
        disc[root] = low[root] = t
        t += 1
        root_children = 0
        stack = [root]
        while stack:
            v = stack[-1]
            i = ptr[v]
            if i < indptr[v + 1]:
                ptr[v] = i + 1
                w = indices[i]
                if disc[w] < 0:
                    parent[w] = v
                    disc[w] = low[w] = t
                    t += 1
                    stack.append(w)
                    if v == root:
                        root_children += 1
                elif w != parent[v] and disc[w] < low[v]:
                    low[v] = disc[w]
            else:
                stack.pop()
                u = parent[v]
                if u >= 0:
                    if low[v] < low[u]:
                        low[u] = low[v]
                    if u != root and low[v] >= disc[u]:
                        cut[u] = True
        if root_children > 1:
            cut[root] = True
    return cut


def territory_cut_units(labels: np.ndarray, adjacency: sp.csr_matrix, territories=None) -> np.ndarray:
    """Bulk articulation test: True for every unit whose removal splits its territory's piece.

    ``territories`` (optional) limits the work to the units of those territories (others are
    False). Runs one iterative Hopcroft–Tarjan search over the subgraph of same-territory edges,
    linear in the units and edges involved. Units labelled < 0 are never cut units.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if territories is None:
        members = np.flatnonzero(labels >= 0)
    else:
        territories = np.atleast_1d(np.asarray(territories))
        if territories.size == 1:
            members = np.flatnonzero(labels == territories[0])
        else:
            members = np.flatnonzero(np.isin(labels, territories) & (labels >= 0))
    out = np.zeros(n, dtype=bool)
    out[members[_member_cuts(labels, adjacency, members)]] = True
    return out


def _member_cuts(labels: np.ndarray, adjacency: sp.csr_matrix, members: np.ndarray) -> np.ndarray:
    """Cut flags of ``members`` (sorted unit indices) within their own territories."""
    if members.size < 3:
        return np.zeros(members.size, dtype=bool)
    indptr, indices = adjacency.indptr, adjacency.indices
    starts = indptr[members].astype(np.int64)
    counts = indptr[members + 1].astype(np.int64) - starts
    row = np.repeat(np.arange(members.size), counts)
    pos = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(starts, counts)
    col = indices[pos]
    same = labels[col] == labels[members[row]]
    row, col = row[same], np.searchsorted(members, col[same])  # members is sorted
    local_ptr = np.zeros(members.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=members.size), out=local_ptr[1:])
    return np.asarray(_cut_vertices(local_ptr.tolist(), col.tolist(), members.size), dtype=bool)


def piece_cut_units(lists: list, labels: np.ndarray, start: int) -> tuple:
    """Cut units of the piece of ``start``'s territory that holds ``start`` (Hopcroft–Tarjan).

    Walks only that piece (neighbour lists, no scan of all units). Returns (units, is_cut) as
    Python lists, ``start`` first.
    """
    own = labels[start]
    index = {start: 0}
    nodes = [start]
    indptr = [0]
    indices: list = []
    for node in nodes:  # grows while the piece is discovered
        for neighbour in lists[node]:
            if labels[neighbour] != own:
                continue
            local = index.get(neighbour)
            if local is None:
                local = index[neighbour] = len(nodes)
                nodes.append(neighbour)
            indices.append(local)
        indptr.append(len(indices))
    return nodes, _cut_vertices(indptr, indices, len(nodes))


class TerritoryCuts:
    """Which units are cut units of their territory, kept per territory piece and refreshed lazily.

    The caller gives a version number per territory that changes whenever the territory changes
    (``LocalSearch.version``). A check first tries the unit's ring of neighbours and a small
    two-sided search; only when those cannot tell, the cut units of the unit's piece are
    computed (Hopcroft–Tarjan over that piece alone) and kept until the territory changes.
    """

    def __init__(self, neighbours: Neighbours, adjacency: sp.csr_matrix, p: int):
        self.neighbours = neighbours
        self.adjacency = adjacency
        self.territory_count = int(p)
        n = adjacency.shape[0]
        self.cut = np.zeros(n, dtype=bool)
        self.stamp = np.full(n, -1, dtype=np.int64)  # version * p + territory when computed (-1: never)
        self.refreshes = 0

    def refresh(self, labels: np.ndarray, territories, versions) -> None:
        """Recompute the cut units of whole ``territories`` (stamped with ``versions``) in one pass."""
        territories = np.atleast_1d(np.asarray(territories, dtype=np.int64))
        versions = np.atleast_1d(np.asarray(versions, dtype=np.int64))
        if territories.size == 0:
            return
        members = np.flatnonzero(np.isin(labels, territories))
        self.cut[members] = _member_cuts(labels, self.adjacency, members)
        key = np.zeros(self.territory_count, dtype=np.int64)
        key[territories] = versions * self.territory_count + territories
        self.stamp[members] = key[labels[members]]
        self.refreshes += int(territories.size)

    def keeps_connected(self, unit: int, labels: np.ndarray, version: int) -> bool:
        """True if ``unit`` can leave its territory without splitting the piece it lies in (exact)."""
        own = int(labels[unit])
        key = version * self.territory_count + own
        if self.stamp[unit] == key:
            return not bool(self.cut[unit])
        # the local answers are exact too: kept like the cut units until the territory changes
        if self.neighbours.ring_keeps_connected(unit, labels):
            self.cut[unit] = False
            self.stamp[unit] = key
            return True
        quick = self.neighbours.bounded_keeps_connected(unit, labels)
        if quick is not None:
            self.cut[unit] = not quick
            self.stamp[unit] = key
            return quick
        nodes, cut = piece_cut_units(self.neighbours.lists, labels, unit)
        self.cut[nodes] = cut
        self.stamp[nodes] = key
        self.refreshes += 1
        return not cut[0]


class Neighbours:
    """Fast Python-level neighbour lists for connectivity checks."""

    def __init__(self, adjacency: sp.csr_matrix):
        indptr = adjacency.indptr
        indices = adjacency.indices
        self.lists = [indices[indptr[i]:indptr[i + 1]].tolist() for i in range(adjacency.shape[0])]
        self.adjacency = adjacency

    def cuts(self, p: int) -> TerritoryCuts:
        """A lazily refreshed articulation-point cache for labellings with ``p`` territories."""
        return TerritoryCuts(self, self.adjacency, p)

    def territory_neighbours(self, unit: int, labels: np.ndarray) -> list:
        """The unit's neighbours in its own territory."""
        own = labels[unit]
        return [v for v in self.lists[unit] if labels[v] == own]

    def ring_keeps_connected(self, unit: int, labels: np.ndarray, ring: int = 2) -> bool:
        """Local sufficient test: the unit's same-territory neighbours are connected to each other
        through same-territory units within ``ring`` steps of the unit (never through the unit).

        True means removing the unit keeps its territory's piece connected; False means unknown.
        """
        lists = self.lists
        own = labels[unit]
        nbrs = self.territory_neighbours(unit, labels)
        if len(nbrs) <= 1:
            return True
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
        if ring < 2:
            return False
        # second ring: same-territory units next to the neighbours
        area = set(nset)
        for v in nbrs:
            for w in lists[v]:
                if w != unit and labels[w] == own:
                    area.add(w)
        seen = {nbrs[0]}
        stack = [nbrs[0]]
        found = 1
        while stack:
            v = stack.pop()
            for w in lists[v]:
                if w in area and w not in seen:
                    seen.add(w)
                    if w in nset:
                        found += 1
                        if found == len(nset):
                            return True
                    stack.append(w)
        return False

    def bounded_keeps_connected(self, unit: int, labels: np.ndarray, limit: int = 60):
        """True / False when a search of at most ``limit`` units per side settles whether taking
        ``unit`` out splits its territory's piece; None when both sides are larger than that.

        A search started at each same-territory neighbour in turn (never through the unit) that
        reaches every other neighbour proves True; one that runs out of units first proves False
        (that side is cut off). Most cut units cut off a small appendage, found quickly.
        """
        nbrs = self.territory_neighbours(unit, labels)
        if len(nbrs) <= 1:
            return True
        lists = self.lists
        own = labels[unit]
        nset = set(nbrs)
        done = set()
        for start in nbrs:
            if start in done:
                continue
            visited = {unit, start}
            stack = [start]
            found = {start}
            complete = True
            while stack:
                v = stack.pop()
                for w in lists[v]:
                    if w not in visited and labels[w] == own:
                        visited.add(w)
                        if w in nset:
                            found.add(w)
                            if len(found) == len(nset):
                                return True
                        stack.append(w)
                if len(visited) > limit:
                    complete = False
                    break
            if complete:
                return False  # this side ran out of units before meeting the others
            done |= found
        return None

    def removal_keeps_connected(self, unit: int, labels: np.ndarray, limit: int = 600) -> bool:
        """True if taking ``unit`` out of its territory does not split the piece it belongs to.

        Conservative: when the search would visit more than ``limit`` units the answer is False
        (the move is skipped, never wrongly allowed).
        """
        # local test: the territory neighbours of the unit are connected among themselves
        if self.ring_keeps_connected(unit, labels, ring=1):
            return True
        nbrs = self.territory_neighbours(unit, labels)
        # exact test: search the territory without the unit until every neighbour is found
        visited = {unit, nbrs[0]}
        missing = set(nbrs[1:])
        for reached in territory_walk(self.lists, labels, nbrs[0], visited):
            missing.discard(reached)
            if not missing:
                return True
            if len(visited) > limit:
                return False
        return not missing
