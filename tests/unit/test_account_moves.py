"""Alignment scope "accounts only": new overrides bring territories into their band, only to
bordering territories, moving as little workload as possible; units and existing overrides stay."""

import numpy as np
from territory_planner.core.solve.account_moves import move_accounts


def path_of_three(b_load: float):
    """Territories A - B - C in a row (A and C do not border), targets 100, tolerance 5 %:
    A carries 115, B ``b_load``, C 85 (the rest to reach those sums sits in the units)."""
    territory = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    workloads = np.array([10.0, 7.0, 3.0, 12.0, 10.0, 6.0, 4.0, 11.0, 5.0, 5.0]).reshape(-1, 1)
    sums = np.array([[115.0], [b_load], [85.0]])
    targets = np.full((3, 1), 100.0)
    borders = np.array([[0, 1], [1, 2]])
    return territory, workloads, sums, targets, borders


def test_the_least_workload_crosses_each_border_and_only_to_neighbours():
    territory, workloads, sums, targets, borders = path_of_three(100.0)
    result = move_accounts(territory, np.ones(territory.size, dtype=bool), workloads, sums, targets, [0.05], borders)
    # A must shed 10 (to B, its only neighbour), C must gain 10 (from B): 20 is the least possible
    assert result.moved_workload[0] == 20.0
    moved = result.moved
    for account in moved.tolist():
        assert abs(int(result.destination[account]) - int(territory[account])) == 1, "only to a bordering territory"
    np.testing.assert_allclose(result.sums.sum(), sums.sum())
    assert np.all(np.abs(result.sums[:, 0] - 100.0) <= 5.0 + 1e-9)


def test_a_full_neighbour_passes_the_load_on():
    territory, workloads, sums, targets, borders = path_of_three(104.0)
    result = move_accounts(territory, np.ones(territory.size, dtype=bool), workloads, sums, targets, [0.05], borders)
    # A sheds 10 into B; B then sheds at least 9 and C needs 10: 20 is the optimum again
    assert result.moved_workload[0] == 20.0
    assert np.all(np.abs(result.sums[:, 0] - 100.0) <= 5.0 + 1e-9)


def test_pinned_accounts_never_move_and_a_balanced_plan_is_left_alone():
    territory, workloads, sums, targets, borders = path_of_three(100.0)
    movable = np.ones(territory.size, dtype=bool)
    movable[[0, 1, 2, 3]] = False  # every account of A already carries an override
    result = move_accounts(territory, movable, workloads, sums, targets, [0.05], borders)
    assert np.all(result.destination[:4] == -1)
    balanced = move_accounts(territory, np.ones(territory.size, dtype=bool), workloads,
                             np.full((3, 1), 100.0), targets, [0.05], borders)
    assert balanced.moved.size == 0


def test_two_measures_on_a_grid_reach_the_band():
    rng = np.random.default_rng(5)
    p, per = 9, 200
    territory = np.repeat(np.arange(p), per)
    workloads = rng.uniform(0.5, 1.5, (p * per, 2))
    sums = np.zeros((p, 2))
    np.add.at(sums, territory, workloads)
    sums[0] *= 1.12  # the corner territory is 12 % over on both (unit load that cannot move)
    sums[8] *= 0.90
    targets = np.repeat(sums.mean(axis=0, keepdims=True), p, axis=0)
    borders = [(r * 3 + c, r * 3 + c + 1) for r in range(3) for c in range(2)]
    borders += [(r * 3 + c, (r + 1) * 3 + c) for r in range(2) for c in range(3)]
    result = move_accounts(territory, np.ones(territory.size, dtype=bool), workloads, sums, targets,
                           [0.05, 0.05], np.asarray(borders))
    deviation = np.abs(result.sums / targets - 1.0)
    assert deviation.max() <= 0.05 + 1e-9
    neighbours = {(a, b) for a, b in borders} | {(b, a) for a, b in borders}
    for account in result.moved.tolist():
        assert (int(territory[account]), int(result.destination[account])) in neighbours
    # far less than everything: the flows move about what the two corners are off
    assert result.moved_workload.sum() < 0.25 * workloads.sum() / p * 2


def test_on_a_plan_only_accounts_move_and_their_workload_leaves_the_unit():
    import scipy.sparse as sp
    from territory_planner.core.metrics import plan_figures
    from territory_planner.core.plan.accounts import AccountBook
    from territory_planner.core.problem import Problem
    from territory_planner.core.solve.account_moves import move_accounts_in_plan

    # units 0-1 in territory 0, 2-3 in territory 1, in a row; accounts: 3 in unit 0, 1 in unit 3
    positions = np.arange(8.0).reshape(4, 2)
    adjacency = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]]))
    book = AccountBook(home=[0, 0, 0, 3], override=[-1, -1, -1, -1], workloads=[[3.0], [2.0], [2.0], [1.0]])
    labels = np.array([0, 0, 1, 1])
    unit_workloads = np.column_stack([np.full(4, 10.0), book.unit_workloads(4)[:, 0]])
    problem = Problem(positions=positions, workloads=unit_workloads, adjacency=adjacency, territory_count=2,
                      initial=labels, tolerance=0.1, fixed_loads=np.zeros((2, 2)))
    moves, moved_book = move_accounts_in_plan(problem, labels, book, [1])
    # accounts: territory 0 holds 7, territory 1 holds 1 (target 4 ± 0.4): the account of 3 crosses
    assert set(moves.moved.tolist()) <= {0, 1, 2}, "only territory 0's accounts move, to its neighbour"
    after = moved_book.territory_sums(labels, 2)[:, 0]
    np.testing.assert_allclose(after, [4.0, 4.0])
    assert moves.moved_workload[1] == 3.0
    again = Problem(positions=positions, workloads=np.column_stack([np.full(4, 10.0),
                                                                     moved_book.unit_workloads(4)[:, 0]]),
                    adjacency=adjacency, territory_count=2, fixed_loads=np.column_stack(
                        [np.zeros(2), moved_book.fixed_loads(2)[:, 0]]))
    np.testing.assert_allclose(plan_figures(labels, again).sums[:, 1], after)
    np.testing.assert_allclose(plan_figures(labels, again).sums[:, 0], [20.0, 20.0]), "units stay"
