"""The local search keeps its boundary moves and their scores between rounds (issue 14): what it
keeps must equal a full recompute over every edge, whatever happened to the plan in between."""

from __future__ import annotations

import numpy as np
import pytest
from territory_planner.core.problem import Problem
from territory_planner.core.solve.model import build_model
from territory_planner.core.solve.search import LocalSearch


def _search(adjacency_of, seed: int, n: int = 400, p: int = 8, initial: bool = False, heavy: bool = False):
    rng = np.random.default_rng(seed)
    positions = rng.uniform(0.0, 10_000.0, (n, 2))
    workloads = np.column_stack([rng.lognormal(0.0, 0.6, n), rng.uniform(1.0, 5.0, n)])
    if heavy:
        workloads[:3, 0] = workloads[:, 0].sum() / p * 0.7  # three units that may never share
    problem = Problem(positions=positions, workloads=workloads, adjacency=adjacency_of(positions),
                      territory_count=p, measure_names=["visits", "sales"], tolerance=0.05, contiguous=True)
    model = build_model(problem)
    centres = positions[rng.choice(n, p, replace=False)]
    labels = np.argmin(((positions[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2), axis=1)
    labels[rng.choice(n, p, replace=False)] = np.arange(p)  # every territory has a unit
    kwargs = {}
    if initial:
        kwargs = {"initial": labels.copy(), "disruption": 0.3}
    return LocalSearch(model, labels, goal=0.02, **kwargs), rng


def _same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("seed,initial,heavy", [(0, False, False), (1, True, False), (2, False, True), (3, True, True)])
def test_kept_moves_equal_a_full_recompute_after_random_changes(adjacency_of, seed, initial, heavy):
    ls, rng = _search(adjacency_of, seed, initial=initial, heavy=heavy)
    _same(ls.candidates(), ls.full_candidates())
    for step in range(60):
        action = rng.integers(0, 6)
        unit, src, dst, delta = ls.full_candidates()
        if action <= 1 and unit.size:
            # a few random boundary moves, improving or not
            for t in rng.choice(unit.size, size=min(unit.size, int(rng.integers(1, 12))), replace=False).tolist():
                u, a, b = int(unit[t]), int(src[t]), int(dst[t])
                if ls.labels[u] == a and ls.count[a] > 1:
                    ls.apply(u, a, b)
        elif action == 2 and unit.size:
            # a chain scored by moving and moving back: same labels, figures off by rounding
            t = int(rng.integers(0, unit.size))
            ls._rescore_chain(int(unit[t]), int(unit[t]), int(src[t]), int(dst[t]), int(src[t]))
        elif action == 3:
            ls.big, ls.beta = [(0.5, 0.0), (1000.0, 0.0), (1000.0, 10.0)][int(rng.integers(0, 3))]
            ls.goal = [0.02, 0.15, 0.4][int(rng.integers(0, 3))]  # many, some or few territories off
        elif action == 4:
            ls.round(check_connected=True, swaps=bool(rng.integers(0, 2)))
        else:
            ls.fixed_centres = None if rng.integers(0, 2) else ls.xy[rng.choice(ls.xy.shape[0], ls.territory_count)]
            ls.inertia_ref = max(ls.inertia_total(), 1e-12)
        if step % 7 == 0:
            ls._recompute()  # figures recomputed from the labels (bitwise different from the updates)
        moves = ls.candidates()
        _same(moves, ls.full_candidates())
        if step % 3 != 1:  # pairs kept over one or several rounds
            kept_swaps, full_swaps = ls.swap_candidates(*moves), ls.full_swap_candidates(*moves)
            assert (kept_swaps is None) == (full_swaps is None)
            if full_swaps is not None:
                _same(kept_swaps, full_swaps)
        if step % 4 != 2:
            kept_chains, full_chains = ls.chain_candidates(*moves), ls.full_chain_candidates(*moves)
            assert (kept_chains is None) == (full_chains is None)
            if full_chains is not None:
                _same(kept_chains, full_chains)


def test_search_with_kept_moves_makes_the_same_plan_as_full_recomputes(adjacency_of):
    kept, _ = _search(adjacency_of, 7, n=600, p=10)
    full, _ = _search(adjacency_of, 7, n=600, p=10)
    full.candidates = full.full_candidates
    full.swap_candidates = full.full_swap_candidates
    full.chain_candidates = full.full_chain_candidates
    np.testing.assert_array_equal(kept.run(), full.run())
    assert kept.rounds == full.rounds
    assert kept.rounds > 3
