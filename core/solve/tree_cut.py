"""Cuts of a spanning tree: how the merge-and-resplit searches split a union of territories.

Cutting one edge of a spanning tree leaves two connected sides, the subtree below the edge and
the rest, so a split along a tree cut keeps both territories in one piece by construction.
Walked depth first, every subtree is one run of consecutive positions: the sums of any per-unit
figure below every edge at once are differences of one running sum. The recombination
(recom.py), the multi-tree resplit (resplit.py) and the rebalance's cutting of pairs anew
(recut.py) draw their trees each in their own way; :class:`TreeCuts` turns a walked tree into
its cuts, the figures below each, which cuts keep locks and heavy pairs right, and the units on
each side of the cut chosen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import numpy as np
from scipy.sparse.csgraph import depth_first_order, minimum_spanning_tree

from .heavy_pairs import HeavyPairs


def walk_tree(graph, root: int, both_ways: bool = True) -> tuple:
    """(order, predecessors) of a depth-first walk from ``root`` of the minimum spanning tree of
    ``graph`` (scipy's depth_first_order).

    The walk takes each node's tree edges as stored, out-going first: with ``both_ways`` the
    tree is made symmetric first, otherwise its edges keep the direction the spanning tree gave
    them. Either is a valid walk; each search keeps the one it has always used, because the walk
    sets the order in which the running sums add up.
    """
    tree = minimum_spanning_tree(graph)
    if both_ways:
        tree = tree + tree.T
    return depth_first_order(tree, root, directed=False, return_predecessors=True)


class TreeCuts:
    """The cuts of a spanning tree over ``unit_count`` local units, walked depth first.

    Nodes are the local unit indices, or with several trees under one super root (``super_root``,
    the last node), ``tree * unit_count + unit``. A cut is the edge above a node other than a
    root; ``cut_nodes`` lists them in node order, and the subtree below cut i holds the walk
    positions ``low[i] <= position < high[i]``. Orientation: a choice ``c`` among ``2 * cuts``
    sends the subtree to the first territory when ``c < cuts`` and the rest otherwise.
    """

    def __init__(self, order: np.ndarray, predecessors: np.ndarray, unit_count: int,
                 super_root: Optional[int] = None):
        nodes = order.size
        self.order = order
        self.unit_count = int(unit_count)
        self.super_root = super_root
        self.position = np.empty(nodes, dtype=np.int64)
        self.position[order] = np.arange(nodes)
        below = [1] * nodes  # units in the subtree of every node, itself included
        parent_of = predecessors.tolist()
        for node in order[::-1].tolist():
            parent = parent_of[node]
            if parent >= 0:
                below[parent] += below[node]
        self.subtree_size = np.asarray(below, dtype=np.int64)
        is_cut = predecessors >= 0
        if super_root is not None:
            is_cut &= predecessors != super_root
        self.cut_nodes = np.flatnonzero(is_cut)
        self.low = self.position[self.cut_nodes]
        self.high = self.low + self.subtree_size[self.cut_nodes]

    @property
    def count(self) -> int:
        return int(self.cut_nodes.size)

    def unit_at_positions(self) -> np.ndarray:
        """Local unit at every walk position (-1 for the super root)."""
        units = self.order % self.unit_count
        if self.super_root is not None:
            units = np.where(self.order == self.super_root, -1, units)
        return units

    def sums_below(self, per_unit: np.ndarray) -> tuple:
        """Sums of ``per_unit`` (unit_count, k): (below every cut (cuts, k), over the whole walk (k,)).

        Both come from one running sum in walk order (over every tree of the walk)."""
        units = self.unit_at_positions()
        values = per_unit[units]
        if self.super_root is not None:
            values[units < 0] = 0.0  # the super root carries nothing
        running = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
        return running[self.high] - running[self.low], running[-1]

    def counts_below(self, per_unit: np.ndarray) -> np.ndarray:
        """(cuts,) how many units with ``per_unit`` True lie below every cut."""
        units = self.unit_at_positions()
        flags = np.where(units >= 0, per_unit[units], False)
        running = np.r_[0, np.cumsum(flags)]
        return running[self.high] - running[self.low]

    def below(self, unit: int) -> np.ndarray:
        """(cuts,) True where local ``unit`` lies below the cut (in the cut's own tree)."""
        node = (self.cut_nodes // self.unit_count) * self.unit_count + unit
        at = self.position[node]
        return (self.low <= at) & (at < self.high)

    def keeps_locks(self, locked: np.ndarray, first: int, rest: tuple) -> tuple:
        """(subtree to ``first`` allowed, subtree to ``rest`` allowed), each (cuts,): units locked
        to ``first`` end on its side, units locked to a territory of ``rest`` on the other.
        ``locked`` (unit_count,) holds the local units' locks (-1: none)."""
        if not np.any(locked >= 0):
            every = np.ones(self.count, dtype=bool)
            return every, every.copy()
        to_first = locked == first
        to_rest = np.isin(locked, rest)
        first_below = self.counts_below(to_first)
        rest_below = self.counts_below(to_rest)
        subtree_to_first = (rest_below == 0) & (first_below == int(to_first.sum()))
        subtree_to_rest = (first_below == 0) & (rest_below == int(to_rest.sum()))
        return subtree_to_first, subtree_to_rest

    def heavy_pairs_below(self, pairs: HeavyPairs, units: np.ndarray) -> Iterator[tuple]:
        """For every heavy pair with both units among ``units`` (the local units' unit ids):
        (first below, second below), each (cuts,) bool."""
        local = {int(units[i]): int(i) for i in np.flatnonzero(pairs.mask[units]).tolist()}
        for unit, index in local.items():
            for partner in pairs.partners[unit].tolist():
                if partner > unit and partner in local:
                    yield self.below(index), self.below(local[partner])

    def side(self, choice: int) -> np.ndarray:
        """(unit_count,) True for the local units that go to the first territory under ``choice``."""
        node = self.cut_nodes[choice % self.count]
        start = self.position[node]
        in_subtree = np.zeros(self.unit_count, dtype=bool)
        in_subtree[self.order[start: start + self.subtree_size[node]] % self.unit_count] = True
        return in_subtree if choice < self.count else ~in_subtree
