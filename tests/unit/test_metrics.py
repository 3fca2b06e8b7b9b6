"""plan_figures: the one definition of balance, contiguity and compactness."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from territory_planner.core.metrics import combined_weight, plan_figures
from territory_planner.core.problem import Problem


def halves(rows, cols):
    """Left half territory 0, right half territory 1."""
    return (np.arange(rows * cols) % cols >= cols // 2).astype(int)


def test_sums_targets_and_deviation(grid_instance):
    positions, adjacency = grid_instance(4, 4)
    workloads = np.ones((16, 2))
    workloads[0, 1] = 5.0  # left half heavier on the second measure
    labels = halves(4, 4)
    fig = plan_figures(labels, workloads, adjacency, positions, 2)
    assert fig.sums[:, 0] == pytest.approx([8, 8])
    assert fig.sums[:, 1] == pytest.approx([12, 8])
    assert fig.targets[:, 1] == pytest.approx([10, 10])
    assert fig.deviation[:, 1] == pytest.approx([0.2, -0.2])
    assert fig.max_deviation == pytest.approx(0.2)
    assert list(fig.unit_count) == [8, 8]
    assert list(fig.parts) == [1, 1]
    assert fig.noncontiguous == 0
    assert not fig.balanced


def test_unequal_target_shares(grid_instance):
    positions, adjacency = grid_instance(4, 4)
    fig = plan_figures(halves(4, 4), np.ones((16, 1)), adjacency, positions, 2, target_shares=[1.0, 0.5])
    assert fig.targets[:, 0] == pytest.approx([16 * 2 / 3, 16 / 3])


def test_pieces_are_counted(grid_instance):
    positions, adjacency = grid_instance(3, 3)
    labels = np.zeros(9, dtype=int)
    labels[[0, 8]] = 1  # two opposite corners: one territory in two pieces
    fig = plan_figures(labels, np.ones((9, 1)), adjacency, positions, 3)
    assert list(fig.parts) == [1, 2, 0]
    assert list(fig.contiguous) == [True, False, True]
    assert fig.noncontiguous == 1
    assert np.isnan(fig.centres[2]).all()


def test_island_counts_as_joined_to_its_nearest_unit(grid_instance):
    positions, adjacency = grid_instance(3, 3)
    # unit 9 far to the right of unit 5 and touching nothing
    positions = np.vstack([positions, [5000.0, 1000.0]])
    adjacency = sp.bmat([[adjacency, None], [None, sp.csr_matrix((1, 1))]]).tocsr()
    labels = np.array([0, 0, 1, 0, 0, 1, 0, 0, 1, 1])
    fig = plan_figures(labels, np.ones((10, 1)), adjacency, positions, 2)
    assert list(fig.parts) == [1, 1]
    raw = plan_figures(labels, np.ones((10, 1)), adjacency, positions, 2, join_islands_first=False)
    assert list(raw.parts) == [1, 2]


def test_no_measure_balances_unit_count(grid_instance):
    positions, adjacency = grid_instance(2, 3)
    fig = plan_figures(np.array([0, 0, 0, 0, 1, 1]), np.zeros((6, 0)), adjacency, positions, 2)
    assert fig.sums[:, 0] == pytest.approx([4, 2])
    assert fig.deviation[:, 0] == pytest.approx([1 / 3, -1 / 3])


def test_empty_measure_counts_as_balanced(grid_instance):
    positions, adjacency = grid_instance(2, 2)
    fig = plan_figures(np.array([0, 0, 0, 1]), np.zeros((4, 1)), adjacency, positions, 2)
    assert fig.max_deviation == 0.0


def test_unassigned_units_are_counted_nowhere(grid_instance):
    positions, adjacency = grid_instance(2, 2)
    fig = plan_figures(np.array([0, -1, 1, 1]), np.ones((4, 1)), adjacency, positions, 2)
    assert list(fig.unit_count) == [1, 2]
    assert fig.sums[:, 0] == pytest.approx([1, 2])


def test_inertia_and_centres_are_workload_weighted():
    positions = np.array([[0.0, 0.0], [10.0, 0.0]])
    adjacency = sp.csr_matrix(np.array([[0, 1], [1, 0]]))
    workloads = np.array([[3.0], [1.0]])
    fig = plan_figures(np.array([0, 0]), workloads, adjacency, positions, 1)
    w = combined_weight(workloads)  # 1.5 and 0.5
    assert w == pytest.approx([1.5, 0.5])
    assert fig.centres[0] == pytest.approx([2.5, 0.0])
    assert fig.inertia[0] == pytest.approx(1.5 * 2.5**2 + 0.5 * 7.5**2)


def test_problem_form_matches_array_form(random_instance):
    points, workloads, adjacency = random_instance(60)
    labels = (points[:, 0] > 50_000).astype(int)
    problem = Problem(points, workloads, adjacency, 2, tolerance=0.1)
    a = plan_figures(labels, problem)
    b = plan_figures(labels, workloads, adjacency, points, 2, tolerance=0.1)
    assert np.allclose(a.deviation, b.deviation)
    assert np.allclose(a.inertia, b.inertia)
    assert a.tolerance == 0.1


def test_combined_weight_without_measures():
    assert combined_weight(np.zeros((3, 0))) == pytest.approx([1, 1, 1])
    assert combined_weight(np.zeros((3, 2))) == pytest.approx([1, 1, 1])
