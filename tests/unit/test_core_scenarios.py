"""Scenario comparison: figures per alignment and what changed against the baseline."""

import numpy as np
import pytest
import scipy.sparse as sp
from territory_planner.core.plan.scenarios import compare_scenarios, encode


def path_graph(n):
    rows = np.arange(n - 1)
    a = sp.coo_matrix((np.ones(n - 1), (rows, rows + 1)), shape=(n, n))
    return (a + a.T).tocsr()


def test_encode_keeps_names_and_marks_empty_units():
    labels, names = encode(["b", None, "a", " ", "b"])
    assert names == ["a", "b"]
    assert labels.tolist() == [1, -1, 0, -1, 1]


def test_figures_and_changes_against_the_baseline():
    workloads = np.array([[1.0], [1.0], [1.0], [1.0], [2.0], [2.0]])
    positions = np.column_stack([np.arange(6) * 1000.0, np.zeros(6)])
    plan_a = ["A", "A", "A", "B", "B", "B"]           # sums 3 / 5: ±25 %
    plan_b = ["A", "A", "A", "A", "B", "B"]           # sums 4 / 4: balanced
    plan_c = ["A", "B", "A", "B", "B", "A"]           # A = {0, 2, 5}: three pieces on a path
    rows = compare_scenarios({"a": plan_a, "b": plan_b, "c": plan_c}, workloads, baseline="a",
                             adjacency=path_graph(6), positions=positions, tolerance=0.05)
    a, b, c = rows
    assert [r.name for r in rows] == ["a", "b", "c"]
    assert a.worst_deviation[0] == pytest.approx(0.25) and a.out_of_tolerance == 2
    assert b.worst_deviation[0] == pytest.approx(0.0) and b.out_of_tolerance == 0
    assert a.changed_units == 0 and b.changed_units == 1
    assert b.changed_workload[0] == pytest.approx(1.0 / 8.0)
    assert c.noncontiguous == 2 and b.noncontiguous == 0
    assert c.changed_units == 2  # units 1 and 5
    assert b.inertia_km2 < c.inertia_km2


def test_the_unit_count_is_balanced_without_measures_and_lengths_must_agree():
    rows = compare_scenarios({"x": ["A", "A", "B"], "y": ["A", "B", "B"]}, np.zeros((3, 0)))
    assert rows[0].worst_deviation[0] == pytest.approx(1 / 3)
    assert rows[1].changed_units == 1
    with pytest.raises(ValueError, match="units"):
        compare_scenarios({"x": ["A"], "y": ["A", "B"]}, np.zeros((2, 0)))
