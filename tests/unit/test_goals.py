"""Territory goals: shares of a basis blended with history, floor and cap, exact rounding."""

from __future__ import annotations

import numpy as np
import pytest
from territory_planner.core.plan.goals import GoalError, blended_shares, set_goals


def test_goals_follow_the_basis_and_add_up_exactly():
    result = set_goals([1.0, 2.0, 3.0, 4.0], 1000)
    np.testing.assert_array_equal(result.goals, [100, 200, 300, 400])
    assert result.goals.sum() == 1000
    assert not result.at_floor.any() and not result.at_cap.any()


def test_largest_remainder_rounding_is_exact():
    # thirds of 100: 33.33 each; the one step left goes to the first (largest remainder, then order)
    result = set_goals([1.0, 1.0, 1.0], 100)
    np.testing.assert_array_equal(result.goals, [34, 33, 33])
    # 1,000,000 in steps of 1,000 over seven unequal territories
    basis = np.array([13.0, 7.0, 29.0, 3.0, 11.0, 17.0, 19.0])
    result = set_goals(basis, 1_000_000, round_to=1000)
    assert result.goals.sum() == 1_000_000
    assert np.all(result.goals % 1000 == 0)
    raw = 1_000_000 * basis / basis.sum()
    assert np.all(np.abs(result.goals - raw) < 1000)
    # the steps rounded up are the ones with the largest remainders
    rounded_up = result.goals > np.floor(raw / 1000) * 1000
    remainders = raw / 1000 - np.floor(raw / 1000)
    assert remainders[rounded_up].min() >= remainders[~rounded_up].max()


def test_cents_round_exactly():
    result = set_goals([1.0, 1.0, 1.0], 100, round_to=0.01)
    assert result.goals.tolist() == [33.34, 33.33, 33.33]
    assert round(result.goals.sum(), 2) == 100


def test_history_blend():
    shares = blended_shares([1.0, 3.0], history=[3.0, 1.0], history_weight=0.25)
    np.testing.assert_allclose(shares, [0.75 * 0.25 + 0.25 * 0.75, 0.75 * 0.75 + 0.25 * 0.25])
    result = set_goals([1.0, 3.0], 1000, history=[3.0, 1.0], history_weight=0.25)
    np.testing.assert_array_equal(result.goals, [375, 625])
    # weight 0 ignores the history; weight 1 uses only it
    assert set_goals([1.0, 3.0], 100, history=[3.0, 1.0], history_weight=1).goals.tolist() == [75, 25]
    assert set_goals([1.0, 3.0], 100, history=[0.0, 0.0], history_weight=0).goals.tolist() == [25, 75]


def test_floor_and_cap_bind_and_the_rest_is_spread_in_proportion():
    # average goal 1,000; floor 80 % = 800, cap 120 % = 1,200
    basis = np.array([1.0, 4.0, 5.0, 10.0, 20.0])
    result = set_goals(basis, 5000, floor=80, cap=120)
    assert result.goals.sum() == 5000
    assert result.goals.min() >= 800 and result.goals.max() <= 1200
    assert result.at_floor.tolist() == [True, True, False, False, False]
    assert result.at_cap.tolist() == [False, False, False, True, True]
    # the one free territory takes the rest: 5000 − 2 × 800 − 2 × 1200
    assert result.goals.tolist() == [800, 800, 1000, 1200, 1200]


def test_free_territories_keep_their_proportions():
    basis = np.array([1.0, 30.0, 31.0, 32.0, 100.0])
    result = set_goals(basis, 10_000, floor=50, cap=150, round_to=0.0001)
    free = ~(result.at_floor | result.at_cap)
    assert result.at_floor[0] and result.at_cap[4]
    ratio = result.unrounded[free] / basis[free]
    np.testing.assert_allclose(ratio, ratio[0])
    assert result.unrounded.sum() == pytest.approx(10_000)


def test_floor_and_cap_by_direct_computation():
    rng = np.random.default_rng(7)
    for _ in range(50):
        basis = rng.uniform(0, 1, size=12) ** 3
        total = 1_200_000
        result = set_goals(basis, total, floor=70, cap=140, round_to=100)
        assert result.goals.sum() == total
        assert result.goals.min() >= 70_000 - 1e-6 and result.goals.max() <= 140_000 + 1e-6
        # the unrounded goals are clip(scale × share) for one scale
        free = ~(result.at_floor | result.at_cap)
        if free.any():
            scale = (result.unrounded[free] / result.shares[free])[0]
            np.testing.assert_allclose(np.clip(scale * result.shares, 70_000, 140_000), result.unrounded, rtol=1e-9)


def test_territories_without_basis_get_the_floor():
    result = set_goals([0.0, 1.0, 1.0], 300, floor=50)
    assert result.goals.tolist() == [50, 125, 125]
    assert result.at_floor.tolist() == [True, False, False]


def test_when_every_share_is_capped_territories_without_basis_take_the_rest():
    result = set_goals([1.0, 0.0, 0.0], 300, cap=150)
    assert result.goals.tolist() == [150, 75, 75]


def test_rounding_keeps_floor_and_cap_where_the_step_allows():
    # floor 90 % of 100 = 90; rounding down to tens must not take a floored territory under it
    result = set_goals([1.0, 1.0, 10.0], 300, floor=90, round_to=10)
    assert result.goals.sum() == 300
    assert result.goals.min() >= 90


@pytest.mark.parametrize("kwargs, words", [
    ({"basis": [0.0, 0.0], "total_goal": 100, "basis_name": "potential"}, ["“potential”", "0 for every territory"]),
    ({"basis": [1.0, -1.0], "total_goal": 100, "basis_name": "potential", "names": ["A", "B"]},
     ["“potential”", "negative", "B"]),
    ({"basis": [1.0, np.nan], "total_goal": 100, "basis_name": "potential", "names": ["A", "B"]},
     ["NULL", "B"]),
    ({"basis": [1.0, 1.0], "total_goal": 0}, ["total goal", "above 0"]),
    ({"basis": [1.0, 1.0], "total_goal": 1050, "round_to": 100}, ["not a multiple", "1,000", "1,100"]),
    ({"basis": [1.0, 1.0], "total_goal": 100, "round_to": 0}, ["Round to"]),
    ({"basis": [1.0, 1.0], "total_goal": 100, "floor": 120}, ["floor", "at most 100"]),
    ({"basis": [1.0, 1.0], "total_goal": 100, "cap": 90}, ["cap", "at least 100"]),
    ({"basis": [1.0, 1.0], "total_goal": 100, "history": [1.0, 1.0], "history_weight": 1.5}, ["history weight"]),
    ({"basis": [1.0, 1.0], "total_goal": 100, "history": [0.0, 0.0], "history_weight": 0.5,
      "history_name": "sales_2025"}, ["“sales_2025”", "0 for every territory"]),
])
def test_bad_goal_inputs_name_the_problem(kwargs, words):
    with pytest.raises(GoalError) as error:
        set_goals(**kwargs)
    for word in words:
        assert word in str(error.value)
