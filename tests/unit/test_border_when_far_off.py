"""Build out of tolerance on two measures (core.solve.restarts.run_portfolio): the merge-and-resplit's
first cooling judges the instance. Near the band its path is the one it always took, so plans it
brought within tolerance stay the same (make demo: North Carolina 4.771 %); far off, the border
moves take over."""

from __future__ import annotations

import numpy as np
from territory_planner.core.progress import Progress
from territory_planner.core.solve import restarts
from territory_planner.core.solve.quality import PlanKey

COOLING = 100
STOP = 0.99


class Calls:
    """Fake searches: a plan is a one-element array holding its worst deviation in tolerances."""

    def __init__(self, after_first_cooling: float, border_reaches: float):
        self.after_first_cooling = after_first_cooling
        self.border_reaches = border_reaches
        self.anneals: list = []
        self.borders = 0

    def anneal(self, start, stream, until, progress, max_steps, give_up):
        self.anneals.append((float(start[0]), list(stream), max_steps, give_up))
        after = min(float(start[0]), self.after_first_cooling)
        if give_up is not None and (after > give_up[1] or after > (1.0 - give_up[2]) * float(start[0])):
            return np.array([after]), True
        return np.array([min(float(start[0]), self.after_first_cooling)]), False

    def border(self, until, progress, first, stalled):
        self.borders += 1
        self.stalled = stalled
        return np.array([self.border_reaches]), True


def key_of(plan) -> PlanKey:
    worst = float(plan[0])
    return PlanKey(worst, max(worst - 1.0, 0.0), worst * 0.05)


def run(calls: Calls, members: list, border=True) -> float:
    found = restarts.run_portfolio([np.array([m]) for m in members], calls.anneal, key_of, 1e9, STOP, COOLING,
                                   False, Progress(), border=calls.border if border else None)
    return float(found[0])


def test_near_the_band_the_merge_and_resplit_runs_as_it_did_and_no_border_move_is_made():
    near = Calls(after_first_cooling=2.0, border_reaches=0.5)
    alone = Calls(after_first_cooling=2.0, border_reaches=0.5)
    assert run(near, [4.0, 5.0, 6.0]) == run(alone, [4.0, 5.0, 6.0], border=False)
    assert near.borders == 0
    # the same runs, with the same streams and budgets; only the first could have given up
    assert [a[:3] for a in near.anneals] == [a[:3] for a in alone.anneals]
    assert near.anneals[0][3] == (COOLING, restarts.FAR_OFF * STOP, restarts.LEAST_GAIN)
    assert all(a[3] is None for a in near.anneals[1:])


def test_within_tolerance_after_the_first_cooling_the_plan_is_the_merge_and_resplits():
    calls = Calls(after_first_cooling=0.9, border_reaches=0.5)
    assert run(calls, [4.0, 5.0]) == 0.9
    assert calls.borders == 0 and len(calls.anneals) == 1


def test_far_off_the_border_moves_take_over():
    calls = Calls(after_first_cooling=10.0, border_reaches=0.8)
    assert run(calls, [12.0, 13.0]) == 0.8
    assert calls.borders == 1 and len(calls.anneals) == 1
    assert not calls.stalled


def test_far_off_with_one_start_the_first_cooling_of_the_final_run_judges():
    calls = Calls(after_first_cooling=10.0, border_reaches=0.8)
    assert run(calls, [12.0]) == 0.8
    assert calls.anneals[0][2] is None
    assert calls.anneals[0][3] == (COOLING, restarts.FAR_OFF * STOP, restarts.LEAST_GAIN)
    assert calls.borders == 1


def test_near_the_band_but_gaining_nothing_in_the_first_cooling_the_border_moves_take_over():
    # the Ohio Valley layer: 1.58 tolerances off, no better plan in the first 2,000 steps
    calls = Calls(after_first_cooling=2.0, border_reaches=0.8)
    assert run(calls, [2.0, 3.0]) == 0.8
    assert calls.borders == 1 and len(calls.anneals) == 1
    assert calls.stalled  # the merge-and-resplit has nothing to offer: the border moves run even squeezed


def test_far_off_when_the_border_moves_do_worse_the_portfolio_goes_on_and_keeps_the_best():
    calls = Calls(after_first_cooling=10.0, border_reaches=11.0)
    assert run(calls, [12.0, 13.0, 14.0]) == 10.0
    # the other starts with the streams they always had, then the final run
    assert [a[1] for a in calls.anneals] == [[], [1, 1], [1, 2], [2]]
