"""A slow reference for measures that pull apart: long annealings of single border moves.

The search that first found a plan within tolerance on a national county layer with accounts and
population (issue 23): one unit crosses a border, both territories stay connected, the plan is
scored by its worst deviation over every measure (balance first, compactness a distant second),
and worse steps are taken now and then while a temperature falls. Here it runs the engine's
border-move annealing (core.solve.border_anneal) far longer than the engine does: each round
cools ten times more slowly than the engine's, from the best plan so far, with its own random
stream, and ends with the engine's single-move polish; the best plan of all rounds is kept.

Not part of the plugin: it only tells the benchmark what balance the data allow, so that "best
known" means more than the engine's own result.

    .venv/bin/python bench/reference_anneal.py nat-accounts --seconds 600 [--cpu-clock]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

#: How much more slowly than the engine a round cools (proposals per cooling).
SLOWER = 10


def reference_anneal(problem, labels: np.ndarray, seconds: float, seed: int = 271828, log=None) -> np.ndarray:
    """Best plan found in ``seconds`` of the engine's clock (core.clock.CLOCK: wall-clock seconds
    unless the caller swapped its source) from ``labels`` (never worse than ``labels``)."""
    from territory_planner.core.clock import CLOCK
    from territory_planner.core.engine import GOAL_FRACTION, POLISH_LEVELS, LocalSearch
    from territory_planner.core.solve.border_anneal import BorderAnneal
    from territory_planner.core.solve.model import build_model
    from territory_planner.core.solve.quality import better, plan_key

    model = build_model(problem)
    tol = model.tolerance_vector
    best = np.asarray(labels, dtype=np.int64).copy()
    best_key = plan_key(model.ratios(best), model.active, tol)
    end = CLOCK() + seconds

    def polish(cand):
        ls = LocalSearch(model, cand, goal=GOAL_FRACTION * tol)
        ls.run(None, levels=POLISH_LEVELS)
        return ls.labels

    round_no = 0
    while CLOCK() < end - 1.0 and best_key.worst > GOAL_FRACTION:
        round_no += 1
        search = BorderAnneal(model, best, np.random.default_rng([seed, round_no]), tolerance=tol)
        found = search.run(end, goal=GOAL_FRACTION, sweep=SLOWER * search.sweep(), polish=polish,
                           max_proposals=SLOWER * search.sweep())
        for cand in (found, polish(found)):
            key = plan_key(model.ratios(cand), model.active, tol)
            if better(key, best_key):
                best, best_key = np.asarray(cand).copy(), key
        if log is not None:
            log(f"round {round_no}: {100 * best_key.worst_deviation:.2f} % after {search.proposals} proposals")
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("instance")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=271828)
    parser.add_argument("--cpu-clock", action="store_true", help="count --seconds in CPU seconds of this process")
    parser.add_argument("--start", default="", help=".npy labels to start from (default: the engine's plan)")
    parser.add_argument("--out", default=str(BENCH / "out" / "reference_anneal.json"))
    args = parser.parse_args(argv)
    from common import figures_record, make_importable, problem_for
    from engine_quality import cases

    make_importable()
    from territory_planner.core.clock import CLOCK
    from territory_planner.core.engine import build_territories

    if args.cpu_clock:
        CLOCK.source = time.process_time
    [(name, inst, _)] = cases([args.instance])
    problem = problem_for(inst)
    labels = np.load(args.start) if args.start else build_territories(problem).labels
    start = CLOCK()
    best = reference_anneal(problem, labels, args.seconds, args.seed, log=lambda text: print(text, flush=True))
    record = figures_record(best, problem)
    row = {"worst_pct": max(record["max_deviation_pct"]), "seconds": CLOCK() - start,
           "clock": "cpu" if args.cpu_clock else "wall", "inertia_km2": record["inertia_km2"],
           "noncontiguous": record["noncontiguous"]}
    print(name, json.dumps(row), flush=True)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results[name] = row
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    np.save(out.with_name(f"reference_anneal-{name}.npy"), best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
