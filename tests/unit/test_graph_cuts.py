"""Connectivity checks of the local search (core.graph): a unit may leave its territory only
when the rest of its piece stays in one piece. Every check is compared with a brute-force count
of pieces on random Delaunay layers with scattered, interleaved territories."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay
from territory_planner.core.graph import Neighbours, piece_cut_units, territory_cut_units, undirected


def _layer(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0.0, 1.0, (n, 2))
    tri = Delaunay(pos).simplices
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]])
    adjacency = undirected(sp.csr_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)), n)
    labels = (pos[:, 0] * 3).astype(int) + 3 * (pos[:, 1] * 3).astype(int)
    stray = rng.choice(n, n // 6, replace=False)
    labels[stray] = rng.integers(0, 9, stray.size)  # holes, thin necks and detached bits
    return adjacency, labels


def _splits(adjacency, labels, unit) -> bool:
    """Brute force: does removing ``unit`` split the piece of its territory it lies in?"""
    coo = adjacency.tocoo()
    own = labels[unit]
    keep = (labels[coo.row] == own) & (labels[coo.col] == own) & (coo.row != unit) & (coo.col != unit)
    n = labels.size
    graph = sp.csr_matrix((np.ones(int(keep.sum())), (coo.row[keep], coo.col[keep])), shape=(n, n))
    _, piece = connected_components(graph, directed=False)
    neighbours = [v for v in adjacency.indices[adjacency.indptr[unit]:adjacency.indptr[unit + 1]] if labels[v] == own]
    return len({piece[v] for v in neighbours}) > 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_check_agrees_with_counting_pieces(seed):
    adjacency, labels = _layer(seed)
    truth = np.array([_splits(adjacency, labels, u) for u in range(labels.size)])
    assert truth.any() and not truth.all()
    assert np.array_equal(territory_cut_units(labels, adjacency), truth)
    nb = Neighbours(adjacency)
    cuts = nb.cuts(9)
    for unit in range(labels.size):
        assert nb.removal_keeps_connected(unit, labels, limit=10**9) == (not truth[unit])
        if nb.ring_keeps_connected(unit, labels):
            assert not truth[unit]  # the ring test only ever says "safe" when it is
        quick = nb.bounded_keeps_connected(unit, labels, limit=10)
        assert quick is None or quick == (not truth[unit])
        assert cuts.keeps_connected(unit, labels, version=0) == (not truth[unit])
        nodes, cut = piece_cut_units(nb.lists, labels, unit)
        assert [bool(c) for c in cut] == truth[nodes].tolist()


def test_cached_answers_follow_the_territory_version():
    adjacency, labels = _layer(4)
    nb = Neighbours(adjacency)
    cuts = nb.cuts(9)
    versions = np.zeros(9, dtype=np.int64)
    rng = np.random.default_rng(0)
    for _ in range(200):
        unit = int(rng.integers(labels.size))
        expected = not _splits(adjacency, labels, unit)
        assert cuts.keeps_connected(unit, labels, int(versions[labels[unit]])) == expected
        if expected:  # move it to a neighbouring territory, as the local search would
            others = [labels[v] for v in adjacency.indices[adjacency.indptr[unit]:adjacency.indptr[unit + 1]]
                      if labels[v] != labels[unit]]
            if others:
                versions[labels[unit]] += 1
                labels[unit] = others[0]
                versions[labels[unit]] += 1
