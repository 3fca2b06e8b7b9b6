"""Problem.validate() rejects bad input with a message that names the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest
from territory_planner.core.problem import Problem, ProblemError


@pytest.fixture
def good(grid_instance):
    positions, adjacency = grid_instance(6, 6)
    workloads = np.ones((36, 2))
    return dict(positions=positions, workloads=workloads, adjacency=adjacency, territory_count=4)


def test_a_good_problem_passes(good):
    Problem(**good).validate()


def test_one_dimensional_workloads_are_one_measure(good):
    good["workloads"] = np.ones(36)
    problem = Problem(**good)
    problem.validate()
    assert problem.workload_matrix().shape == (36, 1)


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(territory_count=0), "at least 1"),
        (dict(territory_count=40), "fewer units"),
        (dict(territory_count=2.5), "whole number"),
        (dict(positions=np.zeros((36, 3))), "(n, 2)"),
        (dict(workloads=np.ones((30, 2))), "one row per unit"),
        (dict(tolerance=-0.1), "tolerance"),
        (dict(tolerance=1.5), "tolerance"),
        (dict(seeds=np.zeros((3, 2))), "3 seeds"),
        (dict(seed_targets=np.array([1.0, 1.0, 0.0, 1.0])), "positive"),
        (dict(seed_targets=np.array([1.0, 1.0])), "one per territory"),
        (dict(locked=np.full(36, 7)), "outside 0..3"),
        (dict(initial=np.full(36, -2)), "outside 0..3"),
        (dict(initial=np.zeros(10, dtype=int)), "one value per unit"),
        (dict(measure_names=["only one"]), "one name per measure"),
    ],
)
def test_bad_input_is_named(good, change, words):
    good.update(change)
    with pytest.raises(ProblemError, match=None) as info:
        Problem(**good).validate()
    assert words in str(info.value)


def test_missing_workload_names_the_units_and_measure(good):
    w = good["workloads"].copy()
    w[[3, 17], 1] = np.nan
    good["workloads"] = w
    good["measure_names"] = ["accounts", "sales"]
    with pytest.raises(ProblemError) as info:
        Problem(**good).validate()
    message = str(info.value)
    assert "'sales'" in message and "3, 17" in message and "fill" in message


def test_negative_workload_is_rejected(good):
    w = good["workloads"].copy()
    w[5, 0] = -1
    good["workloads"] = w
    with pytest.raises(ProblemError, match="negative for units 5"):
        Problem(**good).validate()


def test_wrong_adjacency_shape(good):
    good["adjacency"] = good["adjacency"][:10, :10]
    with pytest.raises(ProblemError, match="square matrix"):
        Problem(**good).validate()


def test_nan_position(good):
    pos = good["positions"].copy()
    pos[2] = np.nan
    good["positions"] = pos
    with pytest.raises(ProblemError, match="Units 2 have no valid position"):
        Problem(**good).validate()


def test_problem_error_is_a_value_error():
    assert issubclass(ProblemError, ValueError)
