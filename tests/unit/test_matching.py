"""Rep matching: optimal against brute force, kept pairs honoured, vacancies and spare reps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from territory_planner.core.plan.matching import (
    MatchingError,
    match_reps,
    territory_distance_costs,
    unit_weights,
)


def brute_force(costs: np.ndarray, kept=()) -> float:
    """Least total cost over every injective matching of the smaller side into the larger."""
    p, r = costs.shape
    kept = dict(kept)
    best = np.inf
    if p <= r:
        for reps in itertools.permutations(range(r), p):
            if any(reps[k] != j for k, j in kept.items()):
                continue
            best = min(best, sum(costs[k, reps[k]] for k in range(p)))
    else:
        for territories in itertools.permutations(range(p), r):
            pairs = {t: j for j, t in enumerate(territories)}
            if any(pairs.get(k) != j for k, j in kept.items()):
                continue
            best = min(best, sum(costs[t, j] for j, t in enumerate(territories)))
    return float(best)


@pytest.mark.parametrize("shape", [(6, 6), (5, 7), (7, 4), (1, 3), (3, 1)])
def test_matching_is_optimal(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        costs = rng.uniform(0, 100, shape)
        result = match_reps(costs)
        assert result.total_cost == pytest.approx(brute_force(costs))
        matched = result.rep_of_territory[result.rep_of_territory >= 0]
        assert len(set(matched.tolist())) == len(matched) == min(shape)
        assert sorted(matched.tolist() + result.unassigned_reps.tolist()) == list(range(shape[1]))


def test_kept_pairs_are_honoured_and_the_rest_is_optimal():
    rng = np.random.default_rng(3)
    costs = rng.uniform(0, 100, (6, 6))
    free = match_reps(costs)
    # keep a pair the free optimum does not choose
    k = 0
    j = int((free.rep_of_territory[k] + 1) % 6)
    result = match_reps(costs, kept=[(k, j)])
    assert result.rep_of_territory[k] == j
    assert result.total_cost == pytest.approx(brute_force(costs, [(k, j)]))
    assert result.total_cost > free.total_cost


def test_kept_pair_with_more_territories_than_reps():
    rng = np.random.default_rng(5)
    costs = rng.uniform(0, 100, (6, 3))
    result = match_reps(costs, kept=[(5, 2)])
    assert result.rep_of_territory[5] == 2
    assert (result.rep_of_territory >= 0).sum() == 3
    assert result.total_cost == pytest.approx(brute_force(costs, [(5, 2)]))


def test_a_territory_or_rep_kept_twice_is_an_error():
    costs = np.ones((3, 3))
    with pytest.raises(MatchingError, match="territory 1"):
        match_reps(costs, kept=[(1, 0), (1, 2)])
    with pytest.raises(MatchingError, match="rep 2"):
        match_reps(costs, kept=[(0, 2), (1, 2)])
    with pytest.raises(MatchingError, match="finite"):
        match_reps(np.array([[1.0, np.nan]]))


def test_costs_are_weighted_distances_per_territory():
    rng = np.random.default_rng(7)
    positions = rng.uniform(0, 1000, (40, 2))
    weights = rng.uniform(0, 5, 40)
    labels = rng.integers(-1, 4, 40)
    homes = rng.uniform(0, 1000, (3, 2))
    costs = territory_distance_costs(positions, weights, labels, 4, homes, chunk=7)
    expected = np.zeros((4, 3))
    for i in range(40):
        if labels[i] < 0:
            continue
        for j in range(3):
            expected[labels[i], j] += weights[i] * np.hypot(*(positions[i] - homes[j]))
    np.testing.assert_allclose(costs, expected)


def test_unit_weights_count_every_measure_equally():
    workloads = np.array([[1.0, 100.0], [3.0, 300.0], [0.0, 600.0]])
    weights = unit_weights(workloads)
    np.testing.assert_allclose(weights, [0.25 + 0.1, 0.75 + 0.3, 0.6])
    np.testing.assert_allclose(unit_weights(np.zeros((3, 0))), [1, 1, 1])
    np.testing.assert_allclose(unit_weights(np.zeros((2, 1))), [1, 1])
