"""A slow reference search: what balance the data allow, to judge the engine against.

Long runs of the multi-tree merge-and-resplit annealing (core.solve.resplit) from the engine's plan,
each with a different random stream and no patience limit, every one finished with single
moves; the best plan of all is kept. Not part of the plugin: it only tells the benchmark how far
the engine's default search stops from a plan that exists.
"""

from __future__ import annotations

import time

import numpy as np


def reference_search(problem, labels: np.ndarray, seconds: float, seed: int = 12345) -> np.ndarray:
    """Best plan found in ``seconds`` from ``labels`` (never worse than ``labels``)."""
    from territory_planner.core.engine import (
        BIG,
        GOAL_FRACTION,
        POLISH_LEVELS,
        RESPLIT_COOLING,
        RESPLIT_POWER,
        RESPLIT_TEMPERATURE,
        LocalSearch,
    )
    from territory_planner.core.solve.model import build_model
    from territory_planner.core.solve.quality import not_worse, plan_key
    from territory_planner.core.solve.resplit import Resplit

    model = build_model(problem)
    tol = model.tolerance_vector
    best = np.asarray(labels, dtype=np.int64).copy()
    best_key = plan_key(model.ratios(best), model.active, tol)
    end = time.monotonic() + seconds

    def polish(cand):
        ls = LocalSearch(model, cand, goal=GOAL_FRACTION * tol)
        ls.run(None, levels=POLISH_LEVELS)
        return ls.labels

    round_no = 0
    while time.monotonic() < end - 1.0 and best_key.worst > GOAL_FRACTION:
        round_no += 1
        rng = np.random.default_rng([seed, round_no])
        # longer cooling than the engine's: a slower annealing explores more
        rs = Resplit(model, best, rng, tolerance=tol, power=RESPLIT_POWER)
        chunk = min(end, time.monotonic() + max(30.0, seconds / 4))
        found = rs.run(chunk, goal=GOAL_FRACTION, temperature=RESPLIT_TEMPERATURE,
                       cooling=3 * RESPLIT_COOLING, polish=polish)
        ls = LocalSearch(model, found, goal=GOAL_FRACTION * tol)
        ls.run(None, levels=[(BIG, 0.0)])
        for cand in (found, ls.labels):
            key = plan_key(model.ratios(cand), model.active, tol)
            if not_worse(key, best_key) and key != best_key:
                best, best_key = np.asarray(cand).copy(), key
    return best
