"""The border-move annealing (core.solve.border_anneal): measures that pull apart, balanced by
single moves that keep territories whole, locks and heavy pairs kept, never worse than its start."""

from __future__ import annotations

import time

import numpy as np
from territory_planner.core.graph import count_parts
from territory_planner.core.problem import Problem
from territory_planner.core.solve.border_anneal import BorderAnneal
from territory_planner.core.solve.contiguity import repair_contiguity
from territory_planner.core.solve.heavy_pairs import heavy_pairs
from territory_planner.core.solve.model import build_model
from territory_planner.core.solve.quality import not_worse, plan_key


def metro_and_towns(random_instance, n=300, p=6, seed=5, locked=None):
    """Population in two dense metros, accounts spread evenly; vertical strips as the start."""
    points, _, adjacency = random_instance(n, seed=seed, measures=0)
    rng = np.random.default_rng(seed + 1)
    metros = np.array([[30_000.0, 40_000.0], [70_000.0, 65_000.0]])
    d2 = np.min(((points[:, None, :] - metros[None, :, :]) ** 2).sum(axis=2), axis=1)
    population = 20.0 + 3000.0 * np.exp(-d2 / (2 * 8_000.0**2)) * rng.uniform(0.5, 1.5, n)
    accounts = rng.uniform(15, 25, n)
    problem = Problem(points, np.column_stack([population, accounts]), adjacency, p, tolerance=0.05, locked=locked)
    strips = (points[:, 0] // (100_000 / p)).astype(np.int64).clip(0, p - 1)
    return problem, strips


def test_annealing_balances_measures_that_pull_apart_and_keeps_every_territory_whole(random_instance):
    problem, strips = metro_and_towns(random_instance)
    model = build_model(problem)
    strips, _ = repair_contiguity(model, strips)
    key0 = plan_key(model.ratios(strips), model.active, model.tolerances)
    search = BorderAnneal(model, strips, np.random.default_rng(0))
    labels = search.run(time.monotonic() + 60.0, goal=0.99, max_proposals=search.sweep())
    key = plan_key(model.ratios(labels), model.active, model.tolerances)
    assert not_worse(key, key0)
    assert key.worst < 0.25 * key0.worst  # strips cut metros anyhow: far off on both measures
    assert np.all(count_parts(labels, model.adjacency, model.p) == 1)
    assert np.all(np.bincount(labels, minlength=model.p) > 0)
    # the running figures match the plan it returns
    ratios = model.ratios(labels)
    deviation = (ratios - 1.0) / model.tolerances[None, :]
    assert np.allclose(search.dev, deviation)


def test_locked_units_stay_and_heavy_pairs_never_meet(random_instance):
    problem, strips = metro_and_towns(random_instance, p=4)
    w = problem.workload_matrix().copy()
    model0 = build_model(problem)
    # two neighbouring units across the border of strips 0 and 1, each 0.6 of a target on
    # population: they may never share a territory
    u, v = next((int(a), int(b)) for a in np.flatnonzero(strips == 0) for b in model0.neighbours.lists[a]
                if strips[b] == 1)
    w[[u, v], 0] = 0.6 * (w[:, 0].sum() - w[[u, v], 0].sum()) / (4 - 1.2)
    strip = np.flatnonzero(strips == 0)
    locked = np.full(len(strips), -1)
    locked[strip[5]] = 0
    other = int(np.flatnonzero(strips == 1)[3])
    locked[other] = 1
    problem = Problem(problem.positions, w, problem.adjacency, 4, tolerance=0.05, locked=locked)
    model = build_model(problem)
    start, _ = repair_contiguity(model, strips)
    pairs = heavy_pairs(model)
    assert pairs and not pairs.together(start) and start[u] != start[v]
    search = BorderAnneal(model, start, np.random.default_rng(1))
    labels = search.run(time.monotonic() + 60.0, goal=0.99, max_proposals=200_000)
    assert search.accepted > 1000
    assert labels[strip[5]] == 0 and labels[other] == 1
    assert not pairs.together(labels)
    assert np.all(count_parts(labels, model.adjacency, 4) == 1)


def test_same_seed_and_budget_give_the_same_plan(random_instance):
    problem, strips = metro_and_towns(random_instance, n=200, p=5)
    model = build_model(problem)
    strips, _ = repair_contiguity(model, strips)
    plans = []
    for _ in range(2):
        search = BorderAnneal(model, strips, np.random.default_rng([7, 3]))
        plans.append(search.run(time.monotonic() + 600.0, goal=0.0, max_proposals=50_000))
    assert np.array_equal(plans[0], plans[1])


def test_polish_runs_on_a_plan_close_to_tolerance_and_a_better_polished_plan_is_kept(random_instance):
    problem, strips = metro_and_towns(random_instance, n=200, p=4)
    model = build_model(problem)
    strips, _ = repair_contiguity(model, strips)
    calls = []

    def polish(labels):
        calls.append(labels.copy())
        return labels

    search = BorderAnneal(model, strips, np.random.default_rng(2))
    search.run(time.monotonic() + 60.0, goal=0.0, max_proposals=3 * search.sweep(), polish=polish,
               polish_below=1e9)
    assert calls  # once per cooling at least
    assert all(np.all(count_parts(c, model.adjacency, 4) == 1) for c in calls)


def test_with_a_time_limit_the_cooling_is_fitted_to_the_time_left(random_instance, monkeypatch):
    """``fit``: a cooling the clock would cut while still hot is shortened to end by the deadline
    (counted on a swapped clock that moves one second per reading: nothing here is timed)."""
    from territory_planner.core.clock import CLOCK
    from territory_planner.core.solve import border_anneal

    ticks = iter(range(10**9))
    monkeypatch.setattr(CLOCK, "source", lambda: float(next(ticks)))
    monkeypatch.setattr(border_anneal, "AFFORD", 0.0)  # however little fits (see the next test)
    problem, strips = metro_and_towns(random_instance)
    model = build_model(problem)
    strips, _ = repair_contiguity(model, strips)
    search = BorderAnneal(model, strips, np.random.default_rng(0))
    sweep = 100 * search.sweep()
    search.run(CLOCK() + 60.0, goal=0.0, sweep=sweep, max_proposals=sweep, fit=True)
    assert search.cooled  # a whole (shorter) cooling ran before the deadline
    assert search.proposals < sweep
    unfitted = BorderAnneal(model, strips, np.random.default_rng(0))
    unfitted.run(CLOCK() + 60.0, goal=0.0, sweep=sweep, max_proposals=sweep)
    assert not unfitted.cooled  # cut by the clock while still hot


def test_with_a_time_limit_a_cooling_that_hardly_fits_is_not_started(random_instance, monkeypatch):
    """Less than AFFORD of a cooling fits in the time left: the run stops after measuring its rate
    (the merge-and-resplit does better with the time), and says so."""
    from territory_planner.core.clock import CLOCK
    from territory_planner.core.solve.border_anneal import BATCH, FIT_AFTER

    ticks = iter(range(10**9))
    monkeypatch.setattr(CLOCK, "source", lambda: float(next(ticks)))
    problem, strips = metro_and_towns(random_instance)
    model = build_model(problem)
    strips, _ = repair_contiguity(model, strips)
    key0 = plan_key(model.ratios(strips), model.active, model.tolerances)
    search = BorderAnneal(model, strips, np.random.default_rng(0))
    sweep = 100 * search.sweep()
    labels = search.run(CLOCK() + 60.0, goal=0.0, sweep=sweep, max_proposals=sweep, fit=True)
    assert search.unaffordable and not search.cooled
    assert search.proposals <= FIT_AFTER * BATCH
    assert not_worse(plan_key(model.ratios(labels), model.active, model.tolerances), key0)
