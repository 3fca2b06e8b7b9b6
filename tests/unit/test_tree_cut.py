"""Cuts of a spanning tree (core.solve.tree_cut): the sums below every cut, the locks and heavy pairs
each cut keeps, and the side of the chosen cut, against a walk of the tree with the edge removed."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from territory_planner.core.solve.heavy_pairs import HeavyPairs
from territory_planner.core.solve.tree_cut import TreeCuts, walk_tree


def _tree(grid_instance, seed: int):
    _, adjacency = grid_instance(6, 7)
    n = adjacency.shape[0]
    coo = sp.triu(adjacency).tocoo()
    weights = np.random.default_rng(seed).random(coo.nnz) + 1e-3
    graph = sp.csr_matrix((weights, (coo.row, coo.col)), shape=(n, n))
    return graph, n


def _sides(graph, node: int, parent: int, n: int) -> np.ndarray:
    """Units on the node's side once the tree edge to its parent is removed (the reference)."""
    tree = minimum_spanning_tree(graph).tolil()
    tree[node, parent] = 0
    tree[parent, node] = 0
    _, component = connected_components(tree.tocsr(), directed=False)
    return component == component[node]


def test_sums_locks_pairs_and_sides_match_the_tree_without_the_edge(grid_instance):
    graph, n = _tree(grid_instance, 3)
    rng = np.random.default_rng(4)
    root = 17
    order, predecessors = walk_tree(graph, root)
    cuts = TreeCuts(order, predecessors, n)
    assert cuts.count == n - 1
    values = rng.random((n, 3))
    below, total = cuts.sums_below(values)
    np.testing.assert_allclose(total, values.sum(axis=0))
    locked = np.full(n, -1)
    locked[[2, 30]] = 0  # two units locked to territory 0, one to territory 1
    locked[40] = 1
    to_first, to_rest = cuts.keeps_locks(locked, 0, (1,))
    frac = np.zeros((n, 1))
    frac[[5, 6]] = 0.7  # two units too heavy to share a territory
    pairs = HeavyPairs(frac, np.full(2, 0.5), np.array([True]), 0.05)
    ((first_below, second_below),) = list(cuts.heavy_pairs_below(pairs, np.arange(n)))
    for i, node in enumerate(cuts.cut_nodes.tolist()):
        side = _sides(graph, node, int(predecessors[node]), n)
        np.testing.assert_allclose(below[i], values[side].sum(axis=0))
        assert to_first[i] == (side[[2, 30]].all() and not side[40])
        assert to_rest[i] == (not side[[2, 30]].any() and side[40])
        assert first_below[i] == side[5] and second_below[i] == side[6]
        np.testing.assert_array_equal(cuts.side(i), side)
        np.testing.assert_array_equal(cuts.side(i + cuts.count), ~side)


def test_several_trees_under_a_super_root_are_cut_one_by_one(grid_instance):
    graph, n = _tree(grid_instance, 5)
    coo = graph.tocoo()
    trees = 3
    offset = np.arange(trees)[:, None] * n
    super_root = trees * n
    rows = np.concatenate([(coo.row[None, :] + offset).ravel(), offset[:, 0] + np.array([0, 9, 20])])
    cols = np.concatenate([(coo.col[None, :] + offset).ravel(), np.full(trees, super_root)])
    weights = np.concatenate([np.tile(coo.data, trees), np.full(trees, 1e-6)])
    forest = sp.csr_matrix((weights, (rows, cols)), shape=(super_root + 1, super_root + 1))
    order, predecessors = walk_tree(forest, super_root, both_ways=False)
    cuts = TreeCuts(order, predecessors, n, super_root=super_root)
    assert cuts.count == trees * (n - 1)
    values = np.random.default_rng(6).random((n, 2))
    below, _ = cuts.sums_below(values)
    for i, node in enumerate(cuts.cut_nodes.tolist()):
        local, parent = node % n, int(predecessors[node]) % n
        side = _sides(graph, local, parent, n)
        np.testing.assert_allclose(below[i], values[side].sum(axis=0))
        np.testing.assert_array_equal(cuts.side(i), side)
