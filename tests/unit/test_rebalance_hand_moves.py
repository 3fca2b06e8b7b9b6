"""Rebalance after a few hand moves (issue 23, item 3): it moves what it must and no more.

A balanced plan with a metro cluster (three units of 50-90 % of a target, six of 20-30 %), three of
its heaviest border units painted by hand into their least loaded neighbouring territory, as a
user would; then Rebalance. Undoing the paint brings the plan back within tolerance, so the
rebalance must not move more workload than that, nor any unit of a territory the paint did not touch.
"""

from __future__ import annotations

import numpy as np
import pytest
from territory_planner.core.engine import build_territories, rebalance_territories
from territory_planner.core.graph import Neighbours
from territory_planner.core.metrics import plan_figures
from territory_planner.core.problem import Problem

TOL = 0.05
TERRITORIES = 8
UNITS = 200


def _metro_workloads(rng: np.random.Generator, positions: np.ndarray) -> np.ndarray:
    """Small units of 15-100, and a metro cluster whose units are shares of the final target."""
    workload = rng.uniform(15, 100, UNITS)
    centre = rng.uniform(2500, 7500, (1, 2))[0]
    nearest = np.argsort(((positions - centre) ** 2).sum(axis=1), kind="stable")[:9]
    share = np.zeros(UNITS)
    share[nearest[:3]] = rng.uniform(0.5, 0.9, 3)
    share[nearest[3:]] = rng.uniform(0.2, 0.3, 6)
    metro = share > 0
    target = workload[~metro].sum() / (TERRITORIES - share.sum())
    workload[metro] = share[metro] * target
    return workload


def _paint_by_hand(labels: np.ndarray, problem: Problem, count: int = 3) -> tuple:
    """(painted labels, painted units, territories touched): the heaviest border units, each from a
    territory no earlier pick touched, into their least loaded neighbouring territory."""
    neighbours = Neighbours(problem.adjacency.tocsr())
    territory_load = plan_figures(labels, problem).sums[:, 0]
    workload = problem.workloads[:, 0]
    painted = labels.copy()
    touched: set = set()
    units = []
    for unit in np.argsort(-workload, kind="stable").tolist():
        own = int(painted[unit])
        others = sorted({int(painted[v]) for v in neighbours.lists[unit]} - {own} - touched,
                        key=lambda k: territory_load[k])
        if own in touched or not others or not neighbours.removal_keeps_connected(unit, painted):
            continue
        painted[unit] = others[0]
        touched |= {own, others[0]}
        units.append(unit)
        if len(units) == count:
            break
    return painted, units, touched


@pytest.mark.slow(8)
def test_rebalance_after_hand_moves_moves_no_more_than_undoing_them(adjacency_of):
    rng = np.random.default_rng(7)
    positions = rng.uniform(0, 10000, (UNITS, 2))
    adjacency = adjacency_of(positions)
    workload = _metro_workloads(rng, positions)
    problem = Problem(positions, workload[:, None], adjacency, TERRITORIES, tolerance=TOL, random_seed=1)
    labels = build_territories(problem).labels
    assert plan_figures(labels, problem).max_deviation <= TOL  # undoing the paint restores balance

    painted, units, touched = _paint_by_hand(labels, problem)
    assert len(units) == 3
    assert plan_figures(painted, problem).max_deviation > 3 * TOL
    rebalanced = rebalance_territories(Problem(positions, workload[:, None], adjacency, TERRITORIES,
                                               initial=painted, tolerance=TOL, random_seed=1))
    assert rebalanced.figures.max_deviation <= TOL + 1e-9
    changed = rebalanced.labels != painted
    undo = float(workload[units].sum())
    assert float(workload[changed].sum()) <= undo * (1 + 1e-9), "no more workload than undoing the paint"
    untouched = changed & ~np.isin(painted, sorted(touched))
    assert not np.any(untouched), "no unit of a territory the paint did not touch"
