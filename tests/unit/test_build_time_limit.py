"""Build honours its time limit over the whole run (every phase stops at the deadline with the best
plan so far) and sees Cancel within a round. Counted on a swapped engine clock (core/clock.py) that
jumps past the deadline at a chosen moment, so nothing here is timed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from territory_planner.core import engine
from territory_planner.core.clock import CLOCK
from territory_planner.core.graph import count_parts
from territory_planner.core.problem import Problem
from territory_planner.core.progress import Cancelled, Progress
from territory_planner.core.solve.border_anneal import BorderAnneal
from territory_planner.core.solve.resplit import Resplit
from territory_planner.core.solve.search import LocalSearch

TIME_LIMIT = 30.0


class JumpClock:
    """Stands still until :meth:`jump`, then reads far past any deadline."""

    def __init__(self):
        self.now = 100.0
        self.jumped = False

    def __call__(self) -> float:
        return self.now

    def jump(self) -> None:
        self.now += 1e6
        self.jumped = True


class Work:
    """What the searches did after the clock jumped: starts begun, local-search rounds per run,
    merge-and-resplit steps, border-move proposals."""

    def __init__(self):
        self.starts = 0
        self.rounds: list = []
        self.resplit_steps = 0
        self.border_proposals = 0


def pulling_apart(random_instance, tolerance=0.005):
    """Population in a metro, accounts spread evenly: out of tolerance after the starts, so every
    phase of Build runs (starts, allocation, local search, border moves, merge-and-resplit)."""
    points, _, adjacency = random_instance(300, seed=5, measures=0)
    rng = np.random.default_rng(6)
    d2 = ((points - np.array([40_000.0, 50_000.0])) ** 2).sum(axis=1)
    population = 20.0 + 3000.0 * np.exp(-d2 / (2 * 10_000.0**2)) * rng.uniform(0.5, 1.5, len(points))
    accounts = rng.uniform(15, 25, len(points))
    return Problem(points, np.column_stack([population, accounts]), adjacency, 6, tolerance=tolerance,
                   time_limit=TIME_LIMIT, random_seed=1)


@pytest.fixture
def watched(monkeypatch):
    """(clock, work, jump_at): the engine's clock swapped for a JumpClock, the searches wrapped to
    count the work done after the jump; ``jump_at(phase)`` picks when it jumps: "allocation" (after
    the first start's allocation), "border" or "resplit" (as the first such search begins)."""
    clock = JumpClock()
    monkeypatch.setattr(CLOCK, "source", clock)
    work = Work()
    where = {"phase": None}

    def jump_at(phase):
        where["phase"] = phase

    allocate = engine.location_allocation

    def location_allocation(*args, **kwargs):
        if clock.jumped:
            work.starts += 1
        labels = allocate(*args, **kwargs)
        if where["phase"] == "allocation" and not clock.jumped:
            clock.jump()
        return labels

    monkeypatch.setattr(engine, "location_allocation", location_allocation)

    search_run = LocalSearch.run

    def run_search(self, *args, **kwargs):
        after = clock.jumped
        out = search_run(self, *args, **kwargs)
        if after:
            work.rounds.append(self.rounds)
        return out

    monkeypatch.setattr(LocalSearch, "run", run_search)

    def count_after_the_jump(search, counter: str, phase: str, work_field: str):
        """Wrap ``search.run``: jump as the first run of ``phase`` begins; add what its ``counter``
        grew by after the jump to ``work_field``."""
        original = search.run

        def run(self, *args, **kwargs):
            if where["phase"] == phase and not clock.jumped:
                clock.jump()
            before = getattr(self, counter)
            try:
                return original(self, *args, **kwargs)
            finally:
                if clock.jumped:
                    setattr(work, work_field, getattr(work, work_field) + getattr(self, counter) - before)

        monkeypatch.setattr(search, "run", run)

    count_after_the_jump(Resplit, "steps", "resplit", "resplit_steps")
    count_after_the_jump(BorderAnneal, "proposals", "border", "border_proposals")
    return clock, work, jump_at


@pytest.mark.parametrize("phase", ["allocation", "border", "resplit"])
def test_build_stops_every_phase_at_its_time_limit(random_instance, watched, phase):
    clock, work, jump_at = watched
    problem = pulling_apart(random_instance)
    jump_at(phase)
    plan = engine.build_territories(problem)
    assert clock.jumped  # the phase ran, and the deadline passed as it did
    # no new start, no step of any search after the deadline; a single-move search ends in its first round
    assert work.starts == 0
    assert work.resplit_steps == 0
    assert work.border_proposals == 0
    assert all(rounds <= 1 for rounds in work.rounds)
    # still a complete plan in contiguous territories: the best found so far
    assert np.all((plan.labels >= 0) & (plan.labels < problem.territory_count))
    assert np.all(count_parts(plan.labels, plan_adjacency(problem), problem.territory_count) == 1)


def test_build_sees_cancel_within_a_round(random_instance, watched):
    clock, work, jump_at = watched
    problem = pulling_apart(random_instance)
    jump_at("border")
    # Cancel pressed as the border moves begin (the clock moves on, so the progress is reported)
    with pytest.raises(Cancelled):
        engine.build_territories(problem, Progress(is_cancelled=lambda: clock.jumped))
    assert work.resplit_steps == 0
    assert work.border_proposals == 0


def test_without_a_time_limit_the_clock_decides_nothing(random_instance, monkeypatch):
    """TIME_LIMIT None keeps its step budgets: the same plan whatever the clock reads."""
    problem = replace(pulling_apart(random_instance, tolerance=0.05), time_limit=None)
    monkeypatch.setattr(engine, "DEFAULT_TIME_LIMIT", 1e9)
    first = engine.build_territories(problem)
    clock = JumpClock()
    monkeypatch.setattr(CLOCK, "source", clock)
    assert np.array_equal(first.labels, engine.build_territories(problem).labels)


def plan_adjacency(problem):
    from territory_planner.core.solve.model import build_model

    return build_model(problem).adjacency
