"""The multi-tree merge-and-resplit (core.solve.resplit): whole territories, locks and heavy pairs kept."""

from __future__ import annotations

import time

import numpy as np
import pytest
from territory_planner.core.graph import count_parts
from territory_planner.core.problem import Problem
from territory_planner.core.solve.model import build_model
from territory_planner.core.solve.quality import not_worse, plan_key
from territory_planner.core.solve.resplit import Resplit


def conflicting(random_instance, n=200, p=6, seed=3, locked=None):
    points, _, adjacency = random_instance(n, seed=seed, measures=0)
    rng = np.random.default_rng(seed + 1)
    people = rng.lognormal(0.0, 1.2, n)
    elderly = people ** 0.5 * rng.lognormal(0.0, 0.5, n)  # anti-correlated with density
    problem = Problem(points, np.column_stack([people, elderly]), adjacency, p, tolerance=0.02, locked=locked)
    start = (points[:, 0] // (100_000 / p)).astype(np.int64).clip(0, p - 1)  # vertical strips
    return problem, start


@pytest.mark.parametrize("seed", [0, 1])
def test_resplit_improves_keeps_territories_whole_and_never_ranks_below_its_start(random_instance, seed):
    problem, start = conflicting(random_instance)
    model = build_model(problem)
    key0 = plan_key(model.ratios(start), model.active, model.tolerance)
    rs = Resplit(model, start, np.random.default_rng(seed), power=2.0)
    labels = rs.run(time.monotonic() + 30.0, temperature=4.0, patience=1500)
    key = plan_key(model.ratios(labels), model.active, model.tolerance)
    assert not_worse(key, key0)
    assert key.worst < 0.5 * key0.worst  # strips are far off on both measures; resplitting fixes most
    assert np.all(count_parts(labels, model.adjacency, 6) == 1)
    assert np.all(np.bincount(labels, minlength=6) > 0)
    assert np.allclose(rs.ratios, model.ratios(labels))  # the running figures match the plan


def test_every_proposal_keeps_locks_heavy_pairs_apart_and_both_sides_connected(random_instance):
    problem, start = conflicting(random_instance, p=4)
    w = problem.workload_matrix().copy()
    # two neighbouring units in strip 0, each 0.6 of a target on population: never together
    model0 = build_model(problem)
    strip = np.flatnonzero(start == 0)
    u = int(strip[0])
    v = next(x for x in model0.neighbours.lists[u] if start[x] == 0)
    w[[u, v], 0] = 0.6 * (w[:, 0].sum() - w[[u, v], 0].sum()) / (4 - 1.2)
    locked = np.full(len(start), -1)
    locked[strip[5]] = 0  # a unit of strip 0 locked to territory 0
    other = np.flatnonzero(start == 1)[3]
    locked[other] = 1
    start = start.copy()
    start[v] = 1 if any(start[x] == 1 for x in model0.neighbours.lists[v]) else start[v]
    start[u] = 0
    problem = Problem(problem.positions, w, problem.adjacency, 4, tolerance=0.02, locked=locked)
    model = build_model(problem)
    assert model.locked[strip[5]] == 0 and model.locked[other] == 1
    from territory_planner.core.solve.contiguity import repair_contiguity

    start, _ = repair_contiguity(model, start)
    rs = Resplit(model, start, np.random.default_rng(5), power=2.0)
    assert rs.pairs.partners[u].tolist() == [v]
    checked = triples = both_inside = 0
    for step in range(200):
        pairs = rs.territory_pairs()
        a, b = pairs[step % pairs.shape[0]].tolist()
        labels = rs.labels.copy()
        touching_b = [int(x) for x in pairs[(pairs == b).any(axis=1)].ravel() if x not in (a, b)]
        if step % 2 and touching_b:  # merge three, split in three
            c = touching_b[0]
            prop = rs.propose_triple(a, b, c)
            if prop is None:
                continue
            units, new, rows, _ = prop
            labels[units] = new
            touched = [a, b, c]
            triples += 1
        else:
            prop = rs.propose(a, b)
            if prop is None:
                continue
            units, side_a, rows, _ = prop
            labels[units[side_a]] = a
            labels[units[~side_a]] = b
            touched = [a, b]
        assert np.all(count_parts(labels, model.adjacency, 4) == 1)
        assert np.all(np.bincount(labels, minlength=4) > 0)
        both_inside += int(rs.labels[u] in touched and rs.labels[v] in touched)
        assert labels[strip[5]] == 0 and labels[other] == 1
        assert labels[u] != labels[v]
        assert np.allclose(rows, model.ratios(labels)[touched])
        rs.labels = labels
        rs.ratios = model.ratios(labels)
        checked += 1
    assert checked > 100 and triples > 30
    assert both_inside > 30  # the heavy pair was inside the merged territories many times


def test_portfolio_result_ranks_no_lower_than_any_start_it_was_given(random_instance):
    """improve() runs the merge-and-resplit from every start it is given (the portfolio): with
    no time to repair a bad first plan, a good other start still carries the result, and every
    constraint holds in it."""
    from dataclasses import replace

    from territory_planner.core import engine

    problem, strips = conflicting(random_instance, p=4)
    locked = np.full(len(strips), -1)
    locked[np.flatnonzero(strips == 2)[4]] = 2
    problem = replace(problem, locked=locked, time_limit=1e-3, tolerance=0.003)
    model = build_model(problem)
    from territory_planner.core.solve.contiguity import repair_contiguity

    strips, _ = repair_contiguity(model, strips)
    good = engine.build_territories(replace(problem, time_limit=20.0)).labels
    tol = model.tolerance_vector
    key_strips = plan_key(model.ratios(strips), model.active, tol)
    key_good = plan_key(model.ratios(good), model.active, tol)
    assert key_good.worst < 0.5 * key_strips.worst  # a much better start than the strips
    from territory_planner.core.progress import ensure_progress

    out = engine.improve(problem, model, strips, engine.CLOCK(), ensure_progress(None), starts=[strips, good])
    key = plan_key(model.ratios(out), model.active, tol)
    assert not_worse(key, key_good), (key, key_good, key_strips)
    assert np.all(count_parts(out, model.adjacency, 4) == 1)
    assert out[locked >= 0].tolist() == [2]


def test_a_step_budget_stops_the_search_at_the_same_plan_whatever_the_clock(random_instance):
    """``max_steps`` ends a run after that many steps, so a slow and a fast machine agree."""
    from dataclasses import replace

    problem, start = conflicting(random_instance)
    model = build_model(replace(problem, tolerance=0.001))  # out of reach in 150 steps
    runs = []
    for _ in range(2):
        rs = Resplit(model, start, np.random.default_rng(11), power=2.0)
        runs.append(rs.run(time.monotonic() + 60.0, temperature=4.0, max_steps=150))
        assert rs.steps == 150
    assert np.array_equal(runs[0], runs[1])


@pytest.mark.parametrize("gain, gives_up", [(0.05, False), (0.999, True)])
def test_a_search_that_gains_too_little_in_its_first_steps_gives_up(random_instance, gain, gives_up):
    """give_up = (steps, worst, gain), the goal out of reach: vertical strips are far off and the
    resplit gains far more than 5 % in 200 steps, so it goes on to its budget; it cannot gain 99.9 %,
    so it stops after 200."""
    problem, start = conflicting(random_instance)
    model = build_model(problem)
    rs = Resplit(model, start, np.random.default_rng(0), power=2.0)
    rs.run(time.monotonic() + 60.0, goal=0.01, temperature=4.0, max_steps=400, give_up=(200, 1e9, gain))
    assert rs.gave_up is gives_up
    assert rs.steps == (200 if gives_up else 400)


def test_the_steps_that_judge_the_instance_are_cut_by_the_whole_runs_deadline_not_by_a_slice(random_instance):
    """A loaded machine must not cut the judging steps short (the portfolio's slice has passed), else the
    search never judges; the whole run's deadline (the progress's) still ends them."""
    from territory_planner.core.clock import CLOCK
    from territory_planner.core.progress import Progress

    problem, start = conflicting(random_instance)
    model = build_model(problem)
    sliced = Resplit(model, start, np.random.default_rng(0), power=2.0)
    sliced.run(CLOCK() - 1.0, Progress(deadline=CLOCK() + 60.0), goal=0.01, temperature=4.0, max_steps=400,
               give_up=(200, 1e9, 0.999))
    assert sliced.steps == 200 and sliced.gave_up
    over = Resplit(model, start, np.random.default_rng(0), power=2.0)
    over.run(CLOCK() - 1.0, Progress(deadline=CLOCK() - 1.0), goal=0.01, temperature=4.0, max_steps=400,
             give_up=(200, 1e9, 0.999))
    assert over.steps == 0 and not over.gave_up
