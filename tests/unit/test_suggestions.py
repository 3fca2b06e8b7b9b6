"""Suggested moves: the best single-unit moves around the active territory, checked against
scoring every possible move by hand; locks and contiguity respected."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from territory_planner.core.metrics import plan_figures
from territory_planner.core.plan.suggestions import suggest_moves


def grid(columns: int, rows: int) -> sp.csr_matrix:
    n = columns * rows
    edges = []
    for r in range(rows):
        for c in range(columns):
            i = r * columns + c
            if c + 1 < columns:
                edges.append((i, i + 1))
            if r + 1 < rows:
                edges.append((i, i + columns))
    a, b = np.array(edges).T
    return sp.csr_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n))


def score(labels, workloads, p) -> float:
    deviation = plan_figures(labels, workloads, territory_count=p).deviation
    return float((deviation ** 2).sum())


def pieces(labels, adjacency, p):
    return plan_figures(labels, np.ones((len(labels), 1)), adjacency=adjacency, territory_count=p).parts


def test_best_moves_match_scoring_every_move_by_hand():
    rng = np.random.default_rng(1)
    adjacency = grid(6, 5)
    n, p = 30, 3
    labels = np.repeat([0, 1, 2], 10)
    workloads = rng.uniform(1, 10, size=(n, 2))
    targets = plan_figures(labels, workloads, territory_count=p).targets
    found = suggest_moves(labels, workloads, targets, adjacency, territory=1, count=4, keep_contiguous=False)

    base = score(labels, workloads, p)
    gains = {}
    coo = adjacency.tocoo()
    for i, j in zip(coo.row, coo.col):
        if labels[i] != labels[j] and 1 in (labels[i], labels[j]):
            moved = labels.copy()
            moved[i] = labels[j]
            gains[(int(i), int(labels[j]))] = base - score(moved, workloads, p)
    best = sorted((g for g in gains.values() if g > 1e-12), reverse=True)[:4]
    assert np.allclose([s.improvement for s in found], best)
    for s in found:
        assert np.isclose(gains[(s.unit, s.target)], s.improvement)
        assert s.source == labels[s.unit] and 1 in (s.source, s.target)
        after = labels.copy()
        after[s.unit] = s.target
        figures = plan_figures(after, workloads, territory_count=p)
        assert np.allclose(s.deviation_after, figures.deviation[[s.source, s.target]])


def test_moves_that_split_the_giving_territory_or_touch_locks_are_left_out():
    adjacency = grid(5, 1)  # a path 0-1-2-3-4
    labels = np.array([0, 0, 0, 1, 1])
    workloads = np.array([[1.0], [1.0], [1.0], [1.0], [10.0]])
    targets = plan_figures(labels, workloads, territory_count=2).targets
    # territory 1 is heavy; the only helpful move is unit 3 → territory 0 (unit 4 is not on the boundary)
    found = suggest_moves(labels, workloads, targets, adjacency, territory=1)
    assert [(s.unit, s.source, s.target) for s in found] == [(3, 1, 0)]
    # the heavy territory gives the unit away and comes down; the light one goes up
    assert found[0].deviation_after[0, 0] < found[0].deviation_before[0, 0]
    assert found[0].deviation_after[1, 0] > found[0].deviation_before[1, 0]

    movable = np.ones(5, dtype=bool)
    movable[3] = False
    assert suggest_moves(labels, workloads, targets, adjacency, territory=1, movable=movable) == []
    assert suggest_moves(labels, workloads, targets, adjacency, territory=1, frozen_territories=[0]) == []

    # a middle unit whose move would cut its territory in two is never suggested
    labels = np.array([0, 0, 0, 0, 1])
    workloads = np.array([[5.0], [1.0], [5.0], [5.0], [1.0]])
    targets = plan_figures(labels, workloads, territory_count=2).targets
    for s in suggest_moves(labels, workloads, targets, adjacency, territory=0, count=10):
        after = labels.copy()
        after[s.unit] = s.target
        assert pieces(after, adjacency, 2).max() == 1


def test_no_suggestion_when_balanced_or_territory_unknown():
    adjacency = grid(4, 1)
    labels = np.array([0, 0, 1, 1])
    workloads = np.ones((4, 1))
    targets = plan_figures(labels, workloads, territory_count=2).targets
    assert suggest_moves(labels, workloads, targets, adjacency, territory=0) == []
    assert suggest_moves(labels, workloads, targets, adjacency, territory=5) == []
