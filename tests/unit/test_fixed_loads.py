"""Fixed loads (accounts overridden to a territory) in Build and Rebalance: counted in the
territory's sums and targets everywhere the engine balances; the anchor unit holding them stays."""

import numpy as np
import pytest
from territory_planner.core.engine import build_territories, rebalance_territories
from territory_planner.core.metrics import plan_figures
from territory_planner.core.problem import Problem, ProblemError


def grid(columns: int, rows: int):
    """Square units on a grid, 4-neighbour adjacency."""
    import scipy.sparse as sp

    n = columns * rows
    positions = np.array([(c, r) for r in range(rows) for c in range(columns)], dtype=float) * 1000.0
    pairs = [(r * columns + c, r * columns + c + 1) for r in range(rows) for c in range(columns - 1)]
    pairs += [(r * columns + c, (r + 1) * columns + c) for r in range(rows - 1) for c in range(columns)]
    a = np.array(pairs)
    adjacency = sp.coo_matrix((np.ones(len(a)), (a[:, 0], a[:, 1])), shape=(n, n)).tocsr()
    return positions, adjacency + adjacency.T


def test_rebalance_counts_a_fixed_load_for_its_territory():
    positions, adjacency = grid(8, 4)
    workloads = np.ones((32, 1))
    initial = (np.arange(32) % 8 >= 4).astype(np.int64)  # west and east halves, 16 units each
    fixed = np.array([[0.0], [8.0]])  # the east keeps accounts worth 8 units: it must give units away
    problem = Problem(positions=positions, workloads=workloads, adjacency=adjacency, territory_count=2,
                      initial=initial, tolerance=0.05, fixed_loads=fixed)
    plan = rebalance_territories(problem)
    sums = np.bincount(plan.labels, minlength=2)[:2] + fixed[:, 0]
    assert np.all(np.abs(sums - 20.0) <= 1.0 + 1e-9), sums
    assert plan.labels.size == 32, "the ghost unit is not part of the plan"
    np.testing.assert_allclose(plan.figures.sums[:, 0], sums)
    np.testing.assert_allclose(plan.figures.targets[:, 0], [20.0, 20.0])
    assert plan.figures.balanced and plan.figures.noncontiguous == 0
    assert np.all(plan.figures.sums == plan_figures(plan.labels, problem).sums)


def test_without_fixed_loads_the_territory_would_be_judged_balanced():
    positions, adjacency = grid(8, 4)
    initial = (np.arange(32) % 8 >= 4).astype(np.int64)
    problem = Problem(positions=positions, workloads=np.ones((32, 1)), adjacency=adjacency, territory_count=2,
                      initial=initial, tolerance=0.05)
    assert rebalance_territories(problem).changed_units == 0


def test_build_with_seeds_anchors_fixed_loads_at_the_seeds_territory():
    positions, adjacency = grid(10, 6)
    seeds = np.array([[0.0, 2500.0], [9000.0, 2500.0]])
    fixed = np.array([[12.0], [0.0]])
    problem = Problem(positions=positions, workloads=np.ones((60, 1)), adjacency=adjacency, territory_count=2,
                      seeds=seeds, tolerance=0.05, fixed_loads=fixed)
    plan = build_territories(problem)
    counts = np.bincount(plan.labels, minlength=2)
    assert abs(counts[0] + 12 - 36) <= 1.8 and abs(counts[1] - 36) <= 1.8, counts
    assert plan.figures.balanced


def test_a_fixed_load_with_nothing_to_hold_it_is_refused():
    positions, adjacency = grid(4, 4)
    problem = Problem(positions=positions, workloads=np.ones((16, 1)), adjacency=adjacency, territory_count=2,
                      fixed_loads=np.array([[1.0], [0.0]]))
    with pytest.raises(ProblemError, match="fixed load"):
        build_territories(problem)
