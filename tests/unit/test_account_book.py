"""Accounts over geography: an account's territory is its override when set, else its home unit's;
overridden accounts are fixed loads of their override territory; plan figures count them there."""

import numpy as np
import pytest
from territory_planner.core.metrics import plan_figures
from territory_planner.core.plan.accounts import (
    SOURCE_NONE,
    SOURCE_OVERRIDE,
    SOURCE_UNIT,
    AccountBook,
    changed_accounts,
    override_lists,
)
from territory_planner.core.problem import Problem, ProblemError

# units 0, 1 in territory 0; unit 2 in territory 1; unit 3 has no territory yet
UNIT_LABELS = np.array([0, 0, 1, -1])


def book() -> AccountBook:
    # accounts: in unit 0; in unit 0 overridden to 1; in unit 2; outside every unit; in unit 2
    # overridden to its own territory (a pin); outside every unit overridden to 0; in unit 3
    return AccountBook(home=[0, 0, 2, -1, 2, -1, 3], override=[-1, 1, -1, -1, 1, 0, -1],
                       workloads=[[1.0], [2.0], [4.0], [8.0], [16.0], [32.0], [64.0]])


def test_territory_is_the_override_else_the_home_units():
    accounts = book()
    np.testing.assert_array_equal(accounts.territories(UNIT_LABELS), [0, 1, 1, -1, 1, 0, -1])
    np.testing.assert_array_equal(accounts.sources(UNIT_LABELS), [SOURCE_UNIT, SOURCE_OVERRIDE, SOURCE_UNIT,
                                                                  SOURCE_NONE, SOURCE_OVERRIDE, SOURCE_OVERRIDE,
                                                                  SOURCE_NONE])


def test_sums_counts_and_overrides_both_ways():
    accounts = book()
    np.testing.assert_allclose(accounts.territory_sums(UNIT_LABELS, 2), [[33.0], [22.0]])
    np.testing.assert_array_equal(accounts.account_counts(UNIT_LABELS, 2), [2, 3])
    # the pin (override = its home territory) is neither gained nor lost
    np.testing.assert_array_equal(accounts.overrides_in(UNIT_LABELS, 2), [1, 1])
    np.testing.assert_array_equal(accounts.overrides_out(UNIT_LABELS, 2), [1, 0])
    gained, lost = accounts.override_workloads(UNIT_LABELS, 2)
    np.testing.assert_allclose(gained, [[32.0], [2.0]])
    np.testing.assert_allclose(lost, [[2.0], [0.0]])


def test_fixed_loads_and_unit_loads_split_the_accounts():
    accounts = book()
    np.testing.assert_allclose(accounts.fixed_loads(2), [[32.0], [18.0]])
    np.testing.assert_allclose(accounts.unit_workloads(4), [[1.0], [0.0], [4.0], [64.0]])
    # whatever the units' territories, units plus fixed loads give the account sums
    labels = np.array([1, 0, 0, 1])
    sums = np.zeros((2, 1))
    np.add.at(sums, labels, accounts.unit_workloads(4))
    np.testing.assert_allclose(sums + accounts.fixed_loads(2), accounts.territory_sums(labels, 2))


def test_plan_figures_count_fixed_loads_in_sums_and_targets():
    workloads = np.array([[10.0], [10.0], [10.0], [10.0]])
    fixed = np.array([[0.0], [8.0]])
    figures = plan_figures(np.array([0, 0, 1, 1]), workloads, territory_count=2, fixed_loads=fixed)
    np.testing.assert_allclose(figures.sums[:, 0], [20.0, 28.0])
    np.testing.assert_allclose(figures.targets[:, 0], [24.0, 24.0])
    problem = Problem(positions=np.zeros((4, 2)) + np.arange(4)[:, None], workloads=workloads, adjacency=None,
                      territory_count=2, fixed_loads=fixed)
    np.testing.assert_allclose(plan_figures(np.array([0, 0, 1, 1]), problem).sums[:, 0], [20.0, 28.0])


@pytest.mark.parametrize("fixed, words", [(np.zeros((3, 1)), "one row per territory"),
                                          (np.array([[1.0], [-1.0]]), "negative"),
                                          (np.array([[1.0], [np.nan]]), "missing")])
def test_bad_fixed_loads_are_named(fixed, words):
    problem = Problem(positions=np.arange(8.0).reshape(4, 2), workloads=np.ones((4, 1)), adjacency=None,
                      territory_count=2, fixed_loads=fixed)
    with pytest.raises(ProblemError, match=words):
        problem.validate()


def test_changed_accounts_count_gaining_or_losing_a_territory():
    np.testing.assert_array_equal(changed_accounts([0, 1, -1, 2], [0, 2, 1, 2]), [1, 2])


def test_override_lists_name_both_ways_with_the_other_territory():
    lists = override_lists(book(), UNIT_LABELS, 2)
    np.testing.assert_array_equal(lists[0].kept, [5])
    np.testing.assert_array_equal(lists[0].kept_from, [-1])
    np.testing.assert_array_equal(lists[0].served, [1])
    np.testing.assert_array_equal(lists[0].served_by, [1])
    np.testing.assert_array_equal(lists[1].kept, [1])
    np.testing.assert_array_equal(lists[1].kept_from, [0])
    assert lists[1].served.size == 0
