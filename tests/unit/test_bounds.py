"""Quality certificate: the LP lower bound sits below every plan's cost about centre units."""

from __future__ import annotations

import numpy as np
import pytest
from territory_planner.core.engine import build_territories
from territory_planner.core.metrics import plan_figures
from territory_planner.core.problem import Problem
from territory_planner.core.solve.bounds import lp_lower_bound, plan_cost_best_unit_centres


def test_bound_is_below_the_engine_plan_and_close_to_it(random_instance):
    points, workloads, adjacency = random_instance(60, seed=21)
    problem = Problem(points, workloads, adjacency, 3, tolerance=0.05)
    plan = build_territories(problem)
    bound = lp_lower_bound(problem)
    cost = plan_cost_best_unit_centres(plan.labels, problem)
    assert 0 < bound <= cost
    assert cost <= 1.15 * bound


def test_plan_cost_is_inertia_plus_offset_to_the_nearest_unit(random_instance):
    points, workloads, adjacency = random_instance(80, seed=22)
    problem = Problem(points, workloads, adjacency, 3)
    labels = (points[:, 0] > 33_000).astype(int) + (points[:, 0] > 66_000).astype(int)
    cost = plan_cost_best_unit_centres(labels, problem)
    assert cost >= plan_figures(labels, problem).inertia.sum()
    # brute force: every territory about every unit
    from territory_planner.core.metrics import combined_weight

    w = combined_weight(workloads)
    brute = 0.0
    for k in range(3):
        members = labels == k
        d2 = ((points[members][:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
        brute += float((w[members][:, None] * d2).sum(axis=0).min())
    assert cost == pytest.approx(brute, rel=1e-9)


def test_bound_exists_with_a_giant_unit(grid_instance):
    # the relaxation may split the giant unit, so it still has a value (no plan meets the band,
    # so the value bounds nothing a user gets; it must simply not fail)
    positions, adjacency = grid_instance(4, 4)
    workloads = np.ones((16, 1))
    workloads[5] = 30.0
    bound = lp_lower_bound(Problem(positions, workloads, adjacency, 3, tolerance=0.05))
    assert np.isfinite(bound) and bound >= 0
