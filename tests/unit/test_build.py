"""build_territories: balanced, contiguous, compact plans and honest diagnostics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial import cKDTree
from territory_planner.core.engine import build_territories
from territory_planner.core.metrics import plan_figures
from territory_planner.core.problem import Problem
from territory_planner.core.progress import Cancelled, Progress


def assert_complete_and_contiguous(plan, problem):
    p = problem.territory_count
    assert plan.labels.shape == (problem.unit_count,)
    assert plan.labels.min() >= 0 and plan.labels.max() < p
    assert np.all(np.bincount(plan.labels, minlength=p) > 0), "every territory has units"
    assert plan.figures.noncontiguous == 0, plan.figures.parts
    assert np.all(plan.figures.parts == 1)


def test_three_measures_within_tolerance_and_contiguous(random_instance):
    points, workloads, adjacency = random_instance(400, seed=1)
    problem = Problem(points, workloads, adjacency, 8, measure_names=["accounts", "sales", "visits"])
    plan = build_territories(problem)
    assert_complete_and_contiguous(plan, problem)
    assert plan.figures.max_deviation <= 0.05
    assert np.all(np.abs(plan.figures.deviation) <= 0.05)
    assert not [d for d in plan.diagnostics if d.severity == "warning"]


def test_figures_are_those_of_plan_figures(random_instance):
    points, workloads, adjacency = random_instance(200, seed=2)
    problem = Problem(points, workloads, adjacency, 5)
    plan = build_territories(problem)
    again = plan_figures(plan.labels, problem)
    assert np.allclose(plan.figures.deviation, again.deviation)
    assert np.allclose(plan.figures.inertia, again.inertia)


def test_compact_beats_stripes(random_instance):
    points, workloads, adjacency = random_instance(300, seed=3)
    problem = Problem(points, workloads, adjacency, 6, tolerance=0.05)
    plan = build_territories(problem)
    # vertical stripes of equal unit count: balanced-ish but elongated
    stripes = np.argsort(np.argsort(points[:, 0])) * 6 // 300
    stripe_inertia = plan_figures(stripes, problem).inertia.sum()
    assert plan.figures.inertia.sum() < 0.8 * stripe_inertia


def test_locked_units_keep_their_territory(random_instance):
    points, workloads, adjacency = random_instance(300, seed=4)
    tree = cKDTree(points)
    locked = np.full(300, -1)
    _, corner_a = tree.query([10_000, 10_000], k=5)
    _, corner_b = tree.query([90_000, 90_000], k=5)
    locked[corner_a] = 2
    locked[corner_b] = 0
    problem = Problem(points, workloads, adjacency, 6, locked=locked)
    plan = build_territories(problem)
    assert np.all(plan.labels[corner_a] == 2)
    assert np.all(plan.labels[corner_b] == 0)
    assert_complete_and_contiguous(plan, problem)
    assert plan.figures.max_deviation <= 0.05


def test_seeds_with_half_target_get_about_half(random_instance):
    points, workloads, adjacency = random_instance(400, seed=5)
    seeds = np.array([[20_000, 20_000], [80_000, 20_000], [20_000, 80_000], [80_000, 80_000]], dtype=float)
    targets = np.array([1.0, 1.0, 1.0, 0.5])
    problem = Problem(points, workloads, adjacency, 4, seeds=seeds, seed_targets=targets)
    plan = build_territories(problem)
    assert_complete_and_contiguous(plan, problem)
    share = plan.figures.sums / workloads.sum(axis=0)
    assert share[3] == pytest.approx(np.full(3, 0.5 / 3.5), rel=0.06)
    assert share[0] == pytest.approx(np.full(3, 1 / 3.5), rel=0.06)
    # each rep keeps the unit at their home
    _, home_units = cKDTree(points).query(seeds)
    assert list(plan.labels[home_units]) == [0, 1, 2, 3]


def test_islands_are_joined_and_reported(grid_instance):
    positions, adjacency = grid_instance(10, 10)
    extra = np.array([[14_000.0, 3_000.0], [15_000.0, 3_000.0], [13_000.0, 8_000.0]])
    positions = np.vstack([positions, extra])
    island = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=float))
    adjacency = sp.bmat([[adjacency, None], [None, island]]).tocsr()
    workloads = np.ones((103, 1))
    problem = Problem(positions, workloads, adjacency, 4)
    plan = build_territories(problem)
    joined = [d for d in plan.diagnostics if d.code == "island_joined"]
    assert len(joined) == 1 and joined[0].severity == "info"
    assert sorted(joined[0].units) == [100, 101, 102]
    assert_complete_and_contiguous(plan, problem)
    assert plan.figures.max_deviation <= 0.05


def test_giant_unit_gives_diagnostic_and_still_a_plan(random_instance):
    points, workloads, adjacency = random_instance(200, seed=6, measures=2)
    giant = 17
    workloads[giant, 0] = workloads[:, 0].sum()  # half of the first measure in one unit
    problem = Problem(points, workloads, adjacency, 8, measure_names=["accounts", "sales"])
    plan = build_territories(problem)
    assert_complete_and_contiguous(plan, problem)
    codes = plan.diagnostic_codes()
    assert "unit_exceeds_target" in codes and "tolerance_unreachable" in codes
    exceeds = next(d for d in plan.diagnostics if d.code == "unit_exceeds_target")
    assert exceeds.units == [giant]
    assert "'accounts'" in exceeds.message
    unreachable = next(d for d in plan.diagnostics if d.code == "tolerance_unreachable")
    assert giant in unreachable.units
    assert plan.labels[giant] in unreachable.territories
    assert plan.lower_bounds[0] > 1.0  # the giant alone is ~4 targets
    assert plan.granularity[0] > 1.0
    # the giant's territory holds little else
    assert plan.figures.unit_count[plan.labels[giant]] < 200 / 8


def test_same_seed_same_plan(random_instance):
    points, workloads, adjacency = random_instance(250, seed=7)
    a = build_territories(Problem(points, workloads, adjacency, 5, random_seed=3))
    b = build_territories(Problem(points, workloads, adjacency, 5, random_seed=3))
    assert np.array_equal(a.labels, b.labels)
    c = build_territories(Problem(points, workloads, adjacency, 5, random_seed=4))
    assert c.figures.max_deviation <= 0.05  # another seed may give another plan, just as good


def test_no_measure_balances_unit_count(grid_instance):
    positions, adjacency = grid_instance(12, 12)
    problem = Problem(positions, np.zeros((144, 0)), adjacency, 6)
    plan = build_territories(problem)
    assert_complete_and_contiguous(plan, problem)
    assert set(plan.figures.unit_count.tolist()) <= {23, 24, 25}
    assert plan.figures.sums.shape == (6, 1)


def test_zero_workload_units_and_an_empty_measure(random_instance):
    points, workloads, adjacency = random_instance(300, seed=8)
    workloads[::7] = 0.0
    workloads[:, 2] = 0.0  # a measure with nothing in it is balanced by definition
    problem = Problem(points, workloads, adjacency, 6)
    plan = build_territories(problem)
    assert_complete_and_contiguous(plan, problem)
    assert plan.figures.max_deviation <= 0.05


def test_without_contiguity(random_instance):
    points, workloads, adjacency = random_instance(300, seed=9)
    plan = build_territories(Problem(points, workloads, adjacency, 6, contiguous=False))
    assert plan.figures.max_deviation <= 0.05


def test_one_territory_and_one_unit_per_territory(grid_instance):
    positions, adjacency = grid_instance(3, 3)
    one = build_territories(Problem(positions, np.ones((9, 1)), adjacency, 1))
    assert np.all(one.labels == 0) and one.figures.max_deviation == 0
    each = build_territories(Problem(positions, np.ones((9, 1)), adjacency, 9))
    assert sorted(each.labels.tolist()) == list(range(9))


def test_cancel_raises(random_instance):
    points, workloads, adjacency = random_instance(300)
    problem = Problem(points, workloads, adjacency, 6)
    with pytest.raises(Cancelled):
        build_territories(problem, Progress(is_cancelled=lambda: True))
    calls = []

    def later():
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(Cancelled):
        build_territories(problem, Progress(is_cancelled=later))


def test_progress_is_reported(random_instance):
    points, workloads, adjacency = random_instance(200)
    seen = []
    build_territories(Problem(points, workloads, adjacency, 4), Progress(report=lambda f, m: seen.append(f)))
    assert seen[-1] == pytest.approx(1.0)
    assert all(0.0 <= f <= 1.0 for f in seen)
    assert seen == sorted(seen)


def test_without_adjacency_the_nearest_units_are_neighbours(random_instance):
    points, workloads, _ = random_instance(300, seed=13)
    problem = Problem(points, workloads, None, 5)
    problem.validate()
    plan = build_territories(problem)
    assert plan.figures.max_deviation <= 0.05
    assert plan.figures.noncontiguous == 0
    assert "adjacency_assumed" in plan.diagnostic_codes()
    assert plan_figures(plan.labels, problem).noncontiguous == 0  # the same rule outside the engine


def test_locks_that_cut_a_territory_apart_are_reported(grid_instance):
    positions, adjacency = grid_instance(7, 7)
    locked = np.full(49, -1)
    centre = 24
    locked[[17, 23, 25, 31]] = 1  # the centre's four neighbours belong to territory 1
    locked[centre] = 0
    locked[0] = 0  # and territory 0 must also hold a corner
    problem = Problem(positions, np.ones((49, 1)), adjacency, 3, locked=locked)
    plan = build_territories(problem)
    assert np.all(plan.labels[locked >= 0] == locked[locked >= 0])
    conflict = next(d for d in plan.diagnostics if d.code == "locked_conflict")
    assert conflict.territories == [0]
    assert set(conflict.units) == {0, centre}
    split = next(d for d in plan.diagnostics if d.code == "noncontiguous")
    assert split.territories == [0]
    assert np.all(np.bincount(plan.labels, minlength=3) > 0)
