"""core.solve.rebalance: least-workload flows over the territory graph, and giving back needless moves."""

from __future__ import annotations

import numpy as np
import pytest
from territory_planner.core.engine import rebalance_territories
from territory_planner.core.graph import count_parts
from territory_planner.core.metrics import plan_figures
from territory_planner.core.problem import Problem
from territory_planner.core.solve.give_back import undo_moves
from territory_planner.core.solve.model import build_model
from territory_planner.core.solve.rebalance import flow_rebalance, match_identities

TOL = 0.05


def _columns(rows: int, cols: int, k: int) -> np.ndarray:
    """Vertical strips of equal width on a rows × cols grid (units numbered row by row)."""
    return np.tile(np.arange(cols) * k // cols, rows).astype(np.int64)


def _excess_above(labels, problem) -> float:
    """Workload above (1 + tolerance) × target, summed over territories: the least that must move."""
    fig = plan_figures(labels, problem)
    return float(np.maximum(fig.sums[:, 0] - (1 + TOL) * fig.targets[:, 0], 0).sum())


@pytest.fixture
def west_grows(grid_instance):
    """Four strips on a 12 × 16 grid; the western quarter's workload grows by 40 %."""
    positions, adjacency = grid_instance(12, 16)
    rng = np.random.default_rng(3)
    workload = rng.uniform(50, 150, positions.shape[0])
    labels = _columns(12, 16, 4)
    workload[labels == 0] *= 1.4
    problem = Problem(positions, workload[:, None], adjacency, 4, initial=labels, tolerance=TOL, random_seed=2)
    return problem, labels


def test_flows_bring_a_regional_shift_back_moving_little(west_grows):
    problem, labels = west_grows
    model = build_model(problem)
    assert plan_figures(labels, problem).max_deviation > 0.2  # the shift broke balance
    out = flow_rebalance(model, labels, np.full(model.m, TOL), labels)
    moved = float(problem.workloads[out != labels, 0].sum())
    least = _excess_above(labels, problem)
    # issue 8's target: back within tolerance moving at most 1.5 × the least that must move (the
    # west's excess has to cross the second strip to reach the under-loaded east)
    assert plan_figures(out, problem).max_deviation <= TOL + 1e-9
    assert moved <= 1.5 * least
    assert np.all(count_parts(out, model.adjacency, 4) == 1), "every territory stays in one piece"


def test_rebalance_after_a_regional_shift_is_within_tolerance(west_grows):
    problem, labels = west_grows
    plan = rebalance_territories(problem)
    assert plan.figures.max_deviation <= TOL + 1e-9
    assert plan.figures.noncontiguous == 0
    least = _excess_above(labels, problem)
    assert float(plan.moved_workload[0]) <= 1.5 * least
    again = rebalance_territories(problem)
    assert np.array_equal(plan.labels, again.labels), "the same seed gives the same plan"


def test_needless_moves_are_given_back(west_grows):
    problem, labels = west_grows
    plan = rebalance_territories(problem)
    model = build_model(problem)
    # move a few units of the balanced plan across borders where balance allows it
    noisy = plan.labels.copy()
    lists = model.neighbours.lists
    for u in range(0, model.n, 23):
        other = [noisy[v] for v in lists[u] if noisy[v] != noisy[u]]
        if other and model.neighbours.removal_keeps_connected(u, noisy):
            noisy[u] = other[0]
    tol = np.full(model.m, 1.0)  # a wide band: every return keeps the plan within it
    back = undo_moves(model, noisy, plan.labels, tol)
    assert np.sum(back != plan.labels) < np.sum(noisy != plan.labels)
    assert np.all(count_parts(back, model.adjacency, 4) == 1)


def test_identities_follow_the_initial_plan(west_grows):
    problem, labels = west_grows
    model = build_model(problem)
    renamed = (labels + 1) % 4  # the same areas under shifted names
    assert np.array_equal(match_identities(model, renamed, labels), labels)


def test_least_flow_counts_load_passing_through_a_territory_twice():
    from territory_planner.core.solve.rebalance import least_flow

    load = np.array([1.2, 1.0, 0.8])
    target = np.ones(3)
    chain = np.array([[0, 1], [1, 2]])
    # 0.15 must leave territory 0 and 0.15 reach territory 2: through territory 1, it crosses two borders
    assert least_flow(load, target, TOL, chain) == pytest.approx(0.30, abs=1e-9)
    # with a border between 0 and 2 it crosses one
    assert least_flow(load, target, TOL, np.vstack([chain, [[2, 0]]])) == pytest.approx(0.15, abs=1e-9)
    # territory 1 may take up to its band's top: 0.05 of the excess can stop there, the rest goes on
    assert least_flow(np.array([1.2, 1.0, 0.95]), target, TOL, chain) == pytest.approx(0.15 + 0.10, abs=1e-9)
    # balanced already: nothing moves; no border to the under-loaded territory: no flow can do it
    assert least_flow(np.ones(3), target, TOL, chain) == 0.0
    assert np.isnan(least_flow(load, target, TOL, np.array([[0, 1]])))


def test_least_flow_is_a_lower_bound_of_a_rebalance(west_grows):
    from territory_planner.core.solve.rebalance import least_flow

    problem, labels = west_grows
    fig = plan_figures(labels, problem)
    coo = problem.adjacency.tocoo()
    flow = least_flow(fig.sums[:, 0], fig.targets[:, 0], TOL, np.column_stack([labels[coo.row], labels[coo.col]]))
    assert flow >= _excess_above(labels, problem) - 1e-9
    plan = rebalance_territories(problem)
    assert plan.figures.max_deviation <= TOL + 1e-9
    assert plan.moved_workload[0] >= flow - 1e-6


@pytest.mark.parametrize("east, returned", [(94.0, True), (90.0, False)])
def test_out_of_tolerance_a_move_that_buys_little_is_taken_back(east, returned):
    """Units on a line: [120 | 95, 5 | east | rest]. Territory 0 holds one unit 20 % above its target,
    so no plan gets its worst deviation below 20 %. The unit of 5 moved from territory 1 to 2: with
    territory 2 at 94 before, the move removed 1 of load beyond the band for 5 moved (taken back at
    MOVE_RATE = 0.25); at 90 before, it removed 5 for 5 (kept)."""
    import scipy.sparse as sp
    from territory_planner.core.solve.rebalance import MOVE_RATE

    work = np.array([120.0, 95.0, 5.0, east, 400.0 - 120 - 100 - east])
    positions = np.column_stack([np.arange(5) * 1000.0, np.zeros(5)])
    adjacency = sp.diags([np.ones(4), np.ones(4)], [1, -1], shape=(5, 5), format="csr")
    initial = np.array([0, 1, 1, 2, 3])
    moved = np.array([0, 1, 2, 2, 3])
    problem = Problem(positions, work[:, None], adjacency, 4, initial=initial, tolerance=TOL, contiguous=True)
    model = build_model(problem)
    tol = np.full(model.m, TOL)
    # without a rate a return that adds excess is refused: the rank (worst, then excess) would drop
    assert np.array_equal(undo_moves(model, moved, initial, tol), moved)
    back = undo_moves(model, moved, initial, tol, rate=MOVE_RATE)
    assert np.array_equal(back, initial if returned else moved)
    assert plan_figures(back, problem).max_deviation == pytest.approx(0.2)


@pytest.mark.parametrize("east, moves", [(94.0, False), (93.0, False), (90.0, True)])
def test_at_the_lower_bound_rebalance_moves_nothing_for_a_tiny_gain(east, moves):
    """The same line, rebalanced from the plan before the move: 20 % is the proven floor. Moving the
    unit of 5 into territory 2 lowers the load beyond the bands by 1 (east 94) or 2 (east 93): less
    than KEEP_RATE = 0.5 times what it moves, not worth it, the plan stays and says so (at 93 the
    searches' MOVE_RATE of 0.25 alone would keep the move); by 5 (east 90): it moves."""
    import scipy.sparse as sp

    work = np.array([120.0, 95.0, 5.0, east, 400.0 - 120 - 100 - east])
    positions = np.column_stack([np.arange(5) * 1000.0, np.zeros(5)])
    adjacency = sp.diags([np.ones(4), np.ones(4)], [1, -1], shape=(5, 5), format="csr")
    initial = np.array([0, 1, 1, 2, 3])
    problem = Problem(positions, work[:, None], adjacency, 4, initial=initial, tolerance=TOL, contiguous=True,
                      time_limit=5)
    plan = rebalance_territories(problem)
    assert plan.figures.max_deviation == pytest.approx(0.2)
    assert max(plan.lower_bounds) == pytest.approx(0.2, abs=1e-6)
    if moves:
        assert np.array_equal(plan.labels, [0, 1, 2, 2, 3])
    else:
        assert np.array_equal(plan.labels, initial)
        assert "no_improvement" in plan.diagnostic_codes()
