"""core.plan.checks and core.plan.realignment: the rules behind the Statistics and Compare reports."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from territory_planner.core.plan.checks import (
    coefficient_of_variation,
    distances_km,
    enclaves,
    names_alike,
    reach,
    surrounding_territories,
    tolerance_breaches,
)
from territory_planner.core.plan.realignment import flows, territory_changes


def grid_adjacency(side: int):
    """Rook adjacency of a side × side grid, units numbered row by row."""
    cells = np.array([(i % side, i // side) for i in range(side * side)])
    steps = np.abs(cells[:, None, :] - cells[None, :, :]).sum(axis=2)
    return sparse.csr_matrix(steps == 1)


def test_coefficient_of_variation_in_percent():
    assert coefficient_of_variation([10, 10, 10]) == 0.0
    assert coefficient_of_variation([5, 15]) == 50.0
    assert coefficient_of_variation([0, 0]) is None


def test_a_territory_inside_another_is_an_enclave_unless_it_touches_the_edge():
    adjacency = grid_adjacency(3)
    labels = np.zeros(9, dtype=np.int64)
    labels[4] = 1  # the centre
    around = surrounding_territories(labels, adjacency, 2)
    assert around == {0: 1, 1: 0}  # territory 0 touches only territory 1 too, but it reaches the edge
    on_edge = np.ones(9, dtype=bool)
    on_edge[4] = False
    assert enclaves(labels, around, on_edge) == {1: 0}
    labels[4], labels[5] = 1, 1  # the territory reaches the edge
    assert enclaves(labels, surrounding_territories(labels, adjacency, 2), on_edge) == {}
    labels[:] = 0
    labels[4], labels[0] = 1, -1  # an unassigned unit next to territory 0 only
    assert surrounding_territories(labels, adjacency, 2) == {1: 0}


def test_tolerance_breaches_skip_empty_territories_and_keep_the_sign():
    deviation = np.array([[0.06, -0.01], [-0.2, 0.05], [0.5, 0.5]])
    assert tolerance_breaches(deviation, 0.05, [3, 2, 0]) == [(0, 0, 0.06), (1, 0, -0.2)]


def test_names_alike_differ_only_in_case_or_spaces():
    assert names_alike(["North", "north ", "South", "No rth", "  South"]) == [["North", "north "], ["South", "  South"]]


def test_reach_leaves_out_units_not_reached():
    assert reach([1.0, 3.0, np.inf], [1.0, 3.0, 5.0]) == (2.0, 2.5, 3.0)
    assert reach([2.0, 4.0], [0.0, 0.0]) == (3.0, 3.0, 4.0)
    assert reach([np.nan, np.inf], [1.0, 1.0]) is None
    assert distances_km([[3000.0, 4000.0], [0.0, 0.0]], [0.0, 0.0]) == pytest.approx([5.0, 0.0])


def test_flows_and_changes_balance():
    before = np.array([0, 0, 1, 2])
    after = np.array([0, 1, 1, 1])
    weights = np.array([[1.0], [2.0], [3.0], [4.0]])
    moved = flows(before, after, weights, 3)
    assert moved[0, 1].tolist() == [1.0, 2.0] and moved[2, 1].tolist() == [1.0, 4.0]
    changes = territory_changes(before, after, weights, 3)
    # territory 1: had 1 unit (3), has 3 (9), gains 2 (6), loses none, net +2 (+6)
    assert changes[1].tolist() == [[1, 3, 2, 0, 2], [3, 9, 6, 0, 6]]
    assert changes[:, :, 4].sum(axis=0).tolist() == [0, 0]
