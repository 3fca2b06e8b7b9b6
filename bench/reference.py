"""A slow reference search: what balance the data allow, to judge the engine against.

A long merge-and-resplit annealing (core.recom) from the engine's plan, with no patience limit,
finished with single moves. Not part of the plugin: it only tells the benchmark how far the
engine's default search stops from a plan that exists.
"""

from __future__ import annotations

import time

import numpy as np


def reference_search(problem, labels: np.ndarray, seconds: float, seed: int = 12345) -> np.ndarray:
    """Best plan found in ``seconds`` from ``labels`` (never worse than ``labels``)."""
    from territory_planner.core.engine import BIG, GOAL_FRACTION, LocalSearch, _tol
    from territory_planner.core.model import build_model
    from territory_planner.core.quality import not_worse, plan_key
    from territory_planner.core.recom import Recombination

    model = build_model(problem)
    tol = _tol(model)
    best = np.asarray(labels, dtype=np.int64).copy()
    best_key = plan_key(model.ratios(best), model.active, tol)
    end = time.monotonic() + seconds
    round_no = 0
    while time.monotonic() < end - 1.0 and best_key.worst > 1.0:
        round_no += 1
        rng = np.random.default_rng([seed, round_no])
        rc = Recombination(model, best, rng, tolerance=tol)
        chunk = min(end, time.monotonic() + max(30.0, seconds / 4))
        found = rc.run(chunk, temperature=1.0 * float(np.min(tol)))
        ls = LocalSearch(model, found, goal=GOAL_FRACTION * tol)
        ls.run(None, levels=[(BIG, 0.0)])
        for cand in (found, ls.labels):
            key = plan_key(model.ratios(cand), model.active, tol)
            if not_worse(key, best_key) and key != best_key:
                best, best_key = np.asarray(cand).copy(), key
    return best
