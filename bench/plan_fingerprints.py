"""Fingerprints of the engine's plans: one hash of the labels per case, for changes that must not
change a plan (a reshaping of the code, a faster data structure).

    .venv/bin/python bench/plan_fingerprints.py --save build/fingerprints.json     # before
    .venv/bin/python bench/plan_fingerprints.py --check build/fingerprints.json    # after
    .venv/bin/python bench/plan_fingerprints.py --only georgia-8,rebalance-500-u1

Every case runs without a time limit (``time_limit=None``), where only step budgets and patience
end a search, and the engine's fallback limits (60 s for the search, 5 s for cutting pairs anew
in a rebalance) are moved far out of the way, so that the plans do not depend on how loaded the
machine is. The cases: the bundled Georgia and North Carolina counties (read through QGIS once by
bench/run.py and cached), synthetic instances of 500 to 3,000 units (one to three measures, with
and without contiguity, rep homes, unequal targets, per-measure tolerances, locks), the failure
shapes of issue 8 (heavy metro units, conflicting measures, oversized units), rebalances after a
workload shift (with a cap, with unassigned units and locks, and out of tolerance, where the
merge-and-resplit searches run), and the two merge-and-resplit searches called on their own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from common import make_importable, problem_for  # noqa: E402
from instances import shape_instance, synthetic_instance  # noqa: E402

#: Seconds that no case here reaches: the engine's time-based stops never decide anything.
FAR = 1e9
SHIFT = 1.4  # a rebalance case's western half grows by 40 %


def fingerprint(labels) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(labels, dtype=np.int64)).tobytes()).hexdigest()[:16]


def no_clock_limits() -> None:
    """Move the engine's time-based stops out of the way (names as they are in the code measured)."""
    make_importable()
    from territory_planner.core import engine

    for module, name in ((engine, "DEFAULT_TIME_LIMIT"), (engine, "RESPLIT_SECONDS"), (engine, "RECUT_SECONDS")):
        if hasattr(module, name):
            setattr(module, name, FAR)


def real(name: str, territories: int):
    from run import ensure_instance

    return replace(ensure_instance(name, 0, 10, 0, need_gpkg=False), territories=territories)


def west_shift(instance) -> np.ndarray:
    west = instance.positions[:, 0] < np.median(instance.positions[:, 0])
    shifted = np.asarray(instance.workloads, dtype=float).copy()
    shifted[west] *= SHIFT
    return shifted


def one_measure(instance, column: int = 2):
    return replace(instance, workloads=np.asarray(instance.workloads)[:, [column]],
                   measures=[instance.measures[column]])


def two_measures(instance):
    return replace(instance, workloads=np.asarray(instance.workloads)[:, :2], measures=instance.measures[:2])


def some_units(n: int, count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(n, count, replace=False)


# ----- the cases: name -> a function returning (labels, extra figures) -------------------------

def build_case(problem):
    from territory_planner.core.engine import build_territories

    plan = build_territories(problem)
    return plan.labels, {"codes": sorted(plan.diagnostic_codes())}


def rebalance(instance, seed=0, cap=None, unassigned=None, locks=None, contiguous=True):
    base = problem_for(instance, random_seed=seed)
    base = replace(base, contiguous=contiguous, locked=locks)
    shifted = replace(base, workloads=west_shift(instance))

    def run():
        from territory_planner.core.engine import build_territories, rebalance_territories

        before = build_territories(base)
        initial = np.asarray(before.labels, dtype=np.int64).copy()
        if unassigned is not None:
            initial[unassigned] = -1
        plan = rebalance_territories(replace(shifted, initial=initial), max_changed_units=cap)
        return plan.labels, {"codes": sorted(plan.diagnostic_codes()), "changed": int(plan.changed_units),
                             "before": fingerprint(before.labels)}

    return run


def build(instance, seed=0, **changes):
    def run():
        return build_case(replace(problem_for(instance, random_seed=seed), **changes))

    return run


def resplit_alone(instance, seed, triples):
    """core's multi-tree merge-and-resplit on its own, from a plan of horizontal strips, at 1 %."""

    def run():
        from territory_planner.core.solve.contiguity import repair_contiguity
        from territory_planner.core.solve.model import build_model
        from territory_planner.core.solve.resplit import Resplit

        problem = replace(problem_for(instance, random_seed=seed), tolerance=0.01)
        model = build_model(problem)
        strips = _strips(model)
        strips, _ = repair_contiguity(model, strips)
        search = Resplit(model, strips, np.random.default_rng(seed), triples=triples)
        labels = search.run(FAR + time.monotonic(), temperature=4.0, max_steps=300)
        return labels, {"steps": int(search.steps), "accepted": int(search.accepted)}

    return run


def recombination_alone(instance, seed):
    """core's one-tree recombination on its own, from a plan of horizontal strips, at 1 % (patience
    ends it)."""

    def run():
        from territory_planner.core.solve.contiguity import repair_contiguity
        from territory_planner.core.solve.model import build_model
        from territory_planner.core.solve.recom import Recombination

        problem = replace(problem_for(instance, random_seed=seed), tolerance=0.01)
        model = build_model(problem)
        strips, _ = repair_contiguity(model, _strips(model))
        search = Recombination(model, strips, np.random.default_rng(seed))
        labels = search.run(FAR + time.monotonic(), patience=300, temperature=0.02)
        return labels, {"steps": int(search.steps), "accepted": int(search.accepted)}

    return run


def _strips(model) -> np.ndarray:
    """Territories as horizontal strips of equal unit count: far from balance on weighted measures."""
    order = np.argsort(model.xy[:, 1], kind="stable")
    labels = np.empty(model.n, dtype=np.int64)
    labels[order] = np.arange(model.n) * model.p // model.n
    return labels


def cases() -> dict:
    u1 = synthetic_instance(500, 10, 1)
    u2 = synthetic_instance(500, 10, 2)
    u3 = synthetic_instance(500, 10, 3)
    c4 = synthetic_instance(500, 10, 4)
    big = synthetic_instance(2000, 50, 5)
    seeds_xy = u3.positions[some_units(u3.size, 10, 3)]
    locks = np.full(u1.size, -1, dtype=np.int64)
    locked_units = some_units(u1.size, 12, 1)
    locks[locked_units] = np.arange(12) % 10
    out = {
        "500-u1": build(u1),
        "500-u1@7": build(u1, seed=7),
        "500-u1-locks": build(u1, locked=locks),
        "500-u2-one-measure-not-contiguous": build(one_measure(u2), contiguous=False),
        "500-u3-rep-homes": build(u3, seeds=seeds_xy),
        "500-u3-unequal-targets": build(u3, seed_targets=np.r_[np.full(5, 1.0), np.full(5, 0.5)]),
        "500-c4-tolerances": build(c4, tolerances=[0.03, 0.08, 0.05]),
        "500-c4-tight": build(two_measures(c4), tolerance=0.01),
        "2000-c5-two-measures": build(two_measures(big)),
        "metro-1000": build(shape_instance("metro-1000")),
        "conflict-1000": build(shape_instance("conflict-1000")),
        "oversized-3000": build(shape_instance("oversized-3000")),
        "rebalance-500-u1": rebalance(u1),
        "rebalance-500-u1-cap": rebalance(u1, cap=15),
        "rebalance-500-u2-unassigned-locks": rebalance(u2, unassigned=some_units(u2.size, 40, 2), locks=locks),
        "rebalance-500-c4-not-contiguous": rebalance(one_measure(c4), contiguous=False),
        "rebalance-metro-1000": rebalance(shape_instance("metro-1000")),
        "rebalance-conflict-1000": rebalance(shape_instance("conflict-1000")),
        "resplit-500-c4": resplit_alone(two_measures(c4), 3, 0.0),
        "resplit-500-c4-triples": resplit_alone(two_measures(c4), 4, 0.3),
        "recombination-500-u2": recombination_alone(two_measures(u2), 5),
    }
    for name, territories in (("georgia", 8), ("georgia", 10), ("nc", 10)):
        def lazy(name=name, territories=territories):
            return build(real(name, territories))()

        out[f"{name}-{territories}"] = lazy

    def georgia_rebalance():
        return rebalance(real("georgia", 8))()

    out["rebalance-georgia-8"] = georgia_rebalance
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--save", type=Path, help="write the fingerprints to this JSON file")
    parser.add_argument("--check", type=Path, help="compare with the fingerprints in this JSON file")
    args = parser.parse_args(argv)
    no_clock_limits()
    only = [s for s in args.only.split(",") if s]
    expected = json.loads(args.check.read_text()) if args.check else {}
    found = {}
    differ = []
    for name, run in cases().items():
        if only and name not in only:
            continue
        start = time.perf_counter()
        labels, extra = run()
        record = {"labels": fingerprint(labels), **extra}
        found[name] = record
        mark = ""
        if name in expected:
            same = expected[name] == record
            mark = "same" if same else f"DIFFERENT (was {expected[name]})"
            if not same:
                differ.append(name)
        print(f"{name:<40} {json.dumps(record)}  {time.perf_counter() - start:6.1f} s  {mark}", flush=True)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        kept = json.loads(args.save.read_text()) if args.save.exists() and only else {}
        kept.update(found)
        args.save.write_text(json.dumps(kept, indent=1, sort_keys=True))
    if differ:
        print(f"{len(differ)} case(s) differ: {', '.join(differ)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
