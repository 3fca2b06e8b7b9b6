"""The merit's two forms (core.solve.merit): many moves at once in numpy, one move in Python floats.
They are one formula: every term agrees to rounding, for moves and exchanges, with and without the
spread term, fixed centres and the disruption charge."""

from __future__ import annotations

import numpy as np
import pytest
from territory_planner.core.problem import Problem
from territory_planner.core.solve.model import build_model
from territory_planner.core.solve.search import LocalSearch


def _search(adjacency_of, seed: int, initial: bool) -> LocalSearch:
    rng = np.random.default_rng(seed)
    n, p = 300, 6
    positions = rng.uniform(0.0, 10_000.0, (n, 2))
    workloads = np.column_stack([rng.lognormal(0.0, 0.6, n), rng.uniform(1.0, 5.0, n), np.zeros(n)])
    problem = Problem(positions=positions, workloads=workloads, adjacency=adjacency_of(positions),
                      territory_count=p, tolerance=0.05, contiguous=True)
    labels = (positions[:, 0] // (10_000.0 / p)).astype(np.int64).clip(0, p - 1)
    kwargs = {"initial": np.roll(labels, 7), "disruption": 0.3} if initial else {}
    return LocalSearch(build_model(problem), labels, goal=0.02, **kwargs)


@pytest.mark.parametrize("seed,initial", [(0, False), (1, True)])
@pytest.mark.parametrize("beta,fixed", [(0.0, False), (10.0, False), (0.0, True), (100.0, True)])
def test_one_move_in_python_floats_equals_the_numpy_form(adjacency_of, seed, initial, beta, fixed):
    search = _search(adjacency_of, seed, initial)
    search.big, search.beta = 1000.0, beta
    if fixed:
        search.fixed_centres = search.xy[np.random.default_rng(seed).choice(search.xy.shape[0], search.territory_count)]
        search.inertia_ref = max(search.inertia_total(), 1e-12)
    unit, src, dst, delta = search.full_candidates()
    movable = np.flatnonzero(np.isfinite(delta))
    assert movable.size > 50
    for t in movable.tolist():
        one = search.merit.rescore(int(unit[t]), int(unit[t]), int(src[t]), int(dst[t]), False)
        assert one == pytest.approx(delta[t], rel=1e-9, abs=1e-9)
    exchanges = search.full_swap_candidates(unit, src, dst, delta)
    assert exchanges is not None and exchanges[0].size > 20
    for first, second, a, b, score in zip(*(x.tolist() for x in exchanges)):
        assert search.merit.rescore(first, second, a, b, True) == pytest.approx(score, rel=1e-9, abs=1e-9)
