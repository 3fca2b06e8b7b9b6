"""Penetration, attainment, ranks and untapped potential against a direct computation."""

from __future__ import annotations

import numpy as np
import pytest
from territory_planner.core.plan.performance import (
    PerformanceError,
    below_threshold,
    check_unit_values,
    rank_descending,
    territory_performance,
    top_opportunities,
    untapped_potential,
)


def test_figures_by_hand():
    labels = np.array([0, 0, 1, 1, 2, -1])
    sales = np.array([10.0, 20, 5, 5, 0, 99])
    potential = np.array([50.0, 50, 40, 60, 0, 1])
    result = territory_performance(labels, sales, potential, 3, goals=[40.0, 5.0, np.nan])
    np.testing.assert_allclose(result.sales, [30, 10, 0])
    np.testing.assert_allclose(result.potential, [100, 100, 0])
    np.testing.assert_allclose(result.penetration, [30, 10, np.nan])
    np.testing.assert_allclose(result.attainment, [75, 200, np.nan])
    assert result.penetration_rank.tolist() == [1, 2, 0]
    assert result.attainment_rank.tolist() == [2, 1, 0]
    assert result.overall_penetration == pytest.approx(20.0)
    assert result.has_goals


def test_without_goals_there_is_no_attainment():
    result = territory_performance([0, 1], [1.0, 2.0], [2.0, 2.0], 2)
    assert not result.has_goals
    assert np.isnan(result.attainment).all()
    assert result.attainment_rank.tolist() == [0, 0]


def test_ranks_share_ties():
    assert rank_descending([5.0, 7.0, 7.0, 1.0, np.nan]).tolist() == [3, 1, 1, 4, 0]
    assert rank_descending([]).tolist() == []


def test_below_threshold_uses_goals_when_known():
    result = territory_performance([0, 1, 2], [80.0, 95.0, 10.0], [100.0, 100.0, 100.0], 3,
                                   goals=[100.0, 100.0, np.nan])
    assert below_threshold(result, 90).tolist() == [True, False, False]
    # without goals: below 90 % of the overall penetration (61.67 %) is below 55.5 %
    result = territory_performance([0, 1, 2], [80.0, 95.0, 10.0], [100.0, 100.0, 100.0], 3)
    assert below_threshold(result, 90).tolist() == [False, False, True]


def test_untapped_potential_against_a_direct_computation():
    rng = np.random.default_rng(11)
    n, p = 200, 6
    labels = rng.integers(-1, p, size=n)
    potential = rng.uniform(0, 1000, size=n)
    sales = potential * rng.uniform(0, 0.8, size=n)
    result = territory_performance(labels, sales, potential, p)
    untapped = untapped_potential(labels, potential, result.penetration)
    for i in range(n):
        k = labels[i]
        if k < 0:
            assert np.isnan(untapped[i])
            continue
        rate = sales[labels == k].sum() / potential[labels == k].sum()
        assert untapped[i] == pytest.approx(potential[i] - rate * potential[i])
    top = top_opportunities(untapped, 10)
    direct = sorted((i for i in range(n) if labels[i] >= 0), key=lambda i: -untapped[i])[:10]
    assert top.tolist() == direct


def test_over_penetrated_territories_have_no_untapped_potential():
    untapped = untapped_potential([0, 0, 1], [10.0, 20.0, 5.0], [150.0, np.nan])
    assert untapped[:2].tolist() == [0.0, 0.0]
    assert np.isnan(untapped[2])
    assert top_opportunities(untapped, 5).tolist() == []


@pytest.mark.parametrize("values, words", [
    ([1.0, np.nan], ["“sales_2025”", "NULL", "1 units", "B"]),
    ([1.0, -2.0], ["“sales_2025”", "negative", "B"]),
])
def test_bad_sales_name_field_and_units(values, words):
    with pytest.raises(PerformanceError) as error:
        check_unit_values(values, "sales_2025", "sales", ["A", "B"])
    for word in words:
        assert word in str(error.value)
