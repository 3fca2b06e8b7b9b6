"""Territories as super-units: summed workloads, weighted centres, adjacency across territories."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from territory_planner.core.plan.hierarchy import coarsen, units_in_regions


def grid(width: int, height: int):
    """Rook adjacency of a width × height grid of unit squares; positions are cell centres."""
    n = width * height
    xy = np.array([(x + 0.5, y + 0.5) for y in range(height) for x in range(width)])
    rows, cols = [], []
    for y in range(height):
        for x in range(width):
            i = y * width + x
            if x + 1 < width:
                rows.append(i)
                cols.append(i + 1)
            if y + 1 < height:
                rows.append(i)
                cols.append(i + width)
    a = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return xy, (a + a.T).tocsr()


def test_super_units_sum_workloads_and_link_touching_territories():
    # 6 × 1 strip cut into three territories of two cells: 0-1 | 2-3 | 4-5
    xy, adjacency = grid(6, 1)
    labels = np.array([0, 0, 1, 1, 2, 2])
    workloads = np.array([[1.0, 10], [3, 10], [2, 0], [2, 0], [0, 5], [0, 5]])
    result = coarsen(labels, xy, workloads, adjacency)
    np.testing.assert_allclose(result.workloads, [[4, 20], [4, 0], [0, 10]])
    np.testing.assert_array_equal(result.unit_count, [2, 2, 2])
    assert not result.counted_units
    links = result.adjacency.toarray()
    np.testing.assert_array_equal(links, [[0, 1, 0], [1, 0, 1], [0, 1, 0]])


def test_centres_are_workload_weighted():
    xy, adjacency = grid(4, 1)
    labels = np.array([0, 0, 0, 1])
    # measure totals 4 and 10: weights are (w1/4 + w2/10)
    workloads = np.array([[4.0, 0], [0, 0], [0, 10], [0, 0]])
    result = coarsen(labels, xy, workloads, adjacency)
    # unit 0 (x=0.5) and unit 2 (x=2.5) weigh 1 each, unit 1 weighs nothing
    assert result.positions[0] == pytest.approx([1.5, 0.5])
    # territory 1 has no workload at all: its plain centre
    assert result.positions[1] == pytest.approx([3.5, 0.5])


def test_no_measures_balances_unit_counts():
    xy, adjacency = grid(3, 2)
    labels = np.array([0, 0, 1, 2, 2, 1])
    result = coarsen(labels, xy, np.zeros((6, 0)), adjacency)
    assert result.counted_units
    np.testing.assert_allclose(result.workloads, [[2], [2], [2]])
    np.testing.assert_allclose(result.positions[1], [(2.5 + 2.5) / 2, (0.5 + 1.5) / 2])


def test_corner_contact_is_no_link_and_islands_stay_apart():
    xy, adjacency = grid(2, 2)
    # diagonal territories: 0 = cells 0 and 3, 1 = cell 1, 2 = cell 2; 1 and 2 meet only at a corner
    labels = np.array([0, 1, 2, 0])
    result = coarsen(labels, xy, np.ones((4, 1)), adjacency)
    links = result.adjacency.toarray()
    assert links[1, 2] == 0 and links[2, 1] == 0
    assert links[0, 1] == 1 and links[0, 2] == 1


def test_every_unit_needs_a_territory():
    xy, adjacency = grid(3, 1)
    with pytest.raises(ValueError, match="1 units have no territory"):
        coarsen(np.array([0, -1, 1]), xy, np.ones((3, 1)), adjacency)
    with pytest.raises(ValueError, match="no units"):
        coarsen(np.array([0, 0, 2]), xy, np.ones((3, 1)), adjacency)


def test_units_inherit_their_territorys_region():
    labels = np.array([2, 0, 1, 1, 2])
    np.testing.assert_array_equal(units_in_regions(labels, np.array([1, 0, 1])), [1, 1, 0, 0, 1])


def test_regions_from_the_engine_are_contiguous_groups_of_whole_territories():
    from scipy.sparse.csgraph import connected_components
    from territory_planner.core.engine import build_territories
    from territory_planner.core.plan.hierarchy import region_problem

    # a 6 × 4 grid cut into six 2 × 2 blocks; regions of two blocks each are balanced exactly
    xy, adjacency = grid(6, 4)
    labels = np.array([(int(x) // 2) + 3 * (int(y) // 2) for x, y in xy])
    workloads = np.ones((24, 1))
    super_units = coarsen(labels, xy, workloads, adjacency)
    plan = build_territories(region_problem(super_units, 3, ["accounts"], tolerance=0.05))
    regions = np.asarray(plan.labels)
    assert sorted(np.bincount(regions, minlength=3).tolist()) == [2, 2, 2]
    unit_regions = units_in_regions(labels, regions)
    for k in range(3):
        members = np.flatnonzero(unit_regions == k)
        assert connected_components(adjacency[members][:, members], directed=False)[0] == 1
