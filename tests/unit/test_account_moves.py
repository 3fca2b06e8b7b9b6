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
