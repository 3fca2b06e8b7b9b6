"""How the engine runs its searches again from other starting points: every restart rule in one place.

- **Independent starts** (Build, :func:`best_of_starts`): :func:`start_count` of them (more for small
  layers, fewer with many territories, one when a unit alone overshoots every target), each on its
  own random stream, alternating weighted-bisection and k-means++ centres (odd starts begin with
  units too heavy to share a territory apart, when there are such). The best by (excess,
  compactness) is kept. Out of tolerance, no new start after PATIENCE starts in a row without a
  better one (once MIN_STARTS have run), nor after START_SHARE of the time limit: the rest of the
  time goes to the merge-and-resplit, which fixes far more than another start.
- **The portfolio** (Build out of tolerance, :func:`run_portfolio`): the merge-and-resplit runs
  from up to PORTFOLIO of the starts, in start order, each for PORTFOLIO_COOLINGS cooling cycles
  of steps or an equal slice of PORTFOLIO_SHARE of the time left (without a time limit, one
  cycle and no clock, so a loaded machine gives the same plan); then the rest of the time from
  the best plan they found. Which start leads to a good plan is a lottery: short runs from
  several starts find the good basin far more often than one long run.
- **Border moves when far off** (Build out of tolerance on two or more measures, :func:`run_portfolio`):
  the merge-and-resplit's first cooling from the best start judges the instance. Within FAR_OFF
  times its goal, and gaining at least LEAST_GAIN, it goes on as above, step for step (it reaches the
  band where it can: the plans stay those of the engine before border moves). Further off, or gaining
  next to nothing, measures pull apart across the map and
  territories must be reshaped far beyond a pair: one cooling of the border-move annealing from the
  best start, in at most BORDER_SHARE of the time; after a whole cooling that beats the
  merge-and-resplit, the rest of the portfolio is skipped and the border moves go on for half the
  time left, then the merge-and-resplit finishes (:func:`_pulling_apart`).
- **Time slices** (Rebalance, :func:`in_time_slices`): the merge-and-resplit from each of its
  plans, in order, each until the end of its equal slice of the time left.
- **Tries in a row** (giving back, :func:`until_stale`): attempts until a number of them in a row
  bring nothing (or ten times that many in all, or a deadline).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..clock import CLOCK
from ..progress import Progress
from .quality import better

MIN_STARTS = 4  # independent starts always tried (when the size allows that many)
PATIENCE = 3  # when balance is out of reach: stop after this many starts in a row without progress
START_SHARE = 0.25  # out of tolerance, no new start after this share of the time limit
#: Portfolio: at most this many starts, each for an equal slice of PORTFOLIO_SHARE of the time
#: left, and at most PORTFOLIO_COOLINGS cooling cycles of steps (a budget in steps gives the
#: same plan on fast and slow machines whenever the time slice is long enough).
PORTFOLIO = 6
PORTFOLIO_SHARE = 0.5
PORTFOLIO_COOLINGS = 3
#: Share of a progress span the portfolio reports over (the rest: the final run, then the caller's).
PORTFOLIO_PROGRESS = 0.9
#: Out of tolerance on two or more measures, a first cooling of the merge-and-resplit that leaves the
#: plan more than FAR_OFF times its goal off (15 % at a 5 % tolerance) hands over to the border-move annealing
#: (core.solve.border_anneal): one cooling, in at most BORDER_SHARE of the time left, over
#: BORDER_PROGRESS of the progress. Nearer the band the merge-and-resplit reaches it where it can
#: (North Carolina, Georgia), and every step stays its own.
FAR_OFF = 3.0
#: ... or that cooling brings the worst deviation down by less than this fraction (a search that gains
#: next to nothing in a whole cooling is on the wrong instance too: the Ohio Valley layer, 1.58
#: tolerances off, gains nothing in its first 2,000 steps).
LEAST_GAIN = 0.05
BORDER_SHARE = 0.4
BORDER_PROGRESS = 0.2


def start_count(n: int, p: int, one_unit_overshoots: bool, heavy_apart: bool) -> tuple:
    """(independent starts, centre relocation trials per start): more search for small layers."""
    starts = int(min(12, max(1, round(6000 / max(n, 1)))))
    if p > 20:
        starts = min(starts, 2 if n < 1500 else 1)  # with many territories local optima differ little
    trials = 2 if n <= 1000 else 1
    if one_unit_overshoots:
        starts = 1  # some unit alone overshoots every target: restarts cannot fix that
    if heavy_apart:
        starts = max(starts, 2)  # the second start begins with the heavy units apart
    return starts, trials


def start_plan(random_seed: int, index: int) -> tuple:
    """(random generator, first centres: "bisection" or "kmeans", heavy units apart) of a start."""
    rng = np.random.default_rng([int(random_seed) & 0xFFFFFFFF, index])
    return rng, "bisection" if index % 2 == 0 else "kmeans", index % 2 == 1


def best_of_starts(count: int, run_start: Callable, started: float, time_limit: float,
                   progress: Progress, describe: Callable) -> tuple:
    """Run independent starts 0, 1, ... in order and keep the best.

    ``run_start(index, progress)`` returns (labels, stuck territories, key); the smaller key wins,
    and ``key[0] > 0`` means out of tolerance. ``describe(labels)`` words a new best plan for the
    progress text. Returns (best labels, its stuck territories, the plans of every start with no
    stuck territory, in start order: the portfolio).
    """
    best, best_key, stuck = None, None, []
    since_better = 0
    pool: list = []
    for index in range(count):
        if index >= MIN_STARTS and since_better >= PATIENCE and best_key[0] > 0:
            break  # tolerance out of reach and the last starts found nothing better
        if index >= 1 and best_key[0] > 0 and CLOCK() - started > START_SHARE * time_limit:
            break  # out of tolerance, and the starts have had their share of the time
        if index >= 1 and progress.out_of_time():
            break  # the caller's time limit binds the whole run
        span = progress.sub(index / count, (index + 1) / count)
        labels, stuck_here, key = run_start(index, span)
        since_better += 1
        if not stuck_here:
            pool.append(labels)
        if best_key is None or key < best_key:
            best, best_key, stuck = labels, key, stuck_here
            since_better = 0
            # the progress text shows the current worst deviation (the panel's task and the toolbox)
            span.step(1.0, f"Start {index + 1} of {count}: {describe(best)}")
    return best, stuck, pool


def run_portfolio(members: list, anneal: Callable, key_of: Callable, deadline: float, stop: float,
                  cooling: int, clock_decides: bool, progress: Progress,
                  border: Optional[Callable] = None) -> np.ndarray:
    """The merge-and-resplit from the first plan of ``members``, or with two or more, first from
    each of up to PORTFOLIO of them and then from the best it found; see the module's words.

    ``anneal(start, stream, until, progress, max_steps, give_up)`` runs one search (``stream``: the
    extra words of its random stream; the first run draws the stream a single run always drew;
    ``give_up``: None or (steps, worst), see AnnealingSearch.anneal) and returns (its plan, whether
    it gave up); ``key_of(labels)`` ranks plans. The search stops at ``stop`` (worst deviation in
    tolerances) or ``deadline``; ``clock_decides``: the caller set a time limit.

    ``border(until, progress, first, stalled)`` (measures that may pull apart): the border-move
    annealing from the first plan, returning (plan, whether a whole cooling ran); ``stalled``: the
    first cooling gained too little rather than being far off (the border moves then run even when
    squeezed). It runs only when the first cooling of the merge-and-resplit leaves the plan more than
    FAR_OFF times ``stop`` off or gains less than LEAST_GAIN (then :func:`_pulling_apart` takes
    over); nearer, every step is the merge-and-resplit's as before.
    """
    members = members[:PORTFOLIO]
    found, found_key = members[0], key_of(members[0])
    give_up = None if border is None else (cooling, FAR_OFF * stop, LEAST_GAIN)
    lead = 0.0
    final_stream: list = []
    if len(members) >= 2:
        lead = PORTFOLIO_PROGRESS * PORTFOLIO_SHARE
        left = max(deadline - CLOCK(), 0.0)
        final_stream = [2]
        for index, start in enumerate(members):
            until = min(deadline, CLOCK() + PORTFOLIO_SHARE * left / len(members))
            budget = PORTFOLIO_COOLINGS * cooling
            if not clock_decides:
                # no limit set: a smaller step budget alone ends each run (never the clock)
                until, budget = deadline, cooling
            span = progress.sub(lead * index / len(members), lead * (index + 1) / len(members))
            got, gave_up = anneal(start, [] if index == 0 else [1, index], until, span, budget,
                                  give_up if index == 0 else None)
            got_key = key_of(got)
            if index == 0 or better(got_key, found_key):
                found, found_key = got, got_key
            if found_key.worst <= stop + 1e-9:
                break
            if gave_up:
                rest = progress.sub(lead / len(members), PORTFOLIO_PROGRESS)
                return _pulling_apart(members, found, anneal, key_of, deadline, stop, cooling, clock_decides,
                                      rest, border)
    if found_key.worst > stop + 1e-9:
        span = progress.sub(lead, PORTFOLIO_PROGRESS)
        alone = len(members) < 2
        got, gave_up = anneal(found, final_stream, deadline, span, None, give_up if alone else None)
        if gave_up:
            return _pulling_apart(members, got, anneal, key_of, deadline, stop, cooling, clock_decides, span, border)
        found = got
    return found


def _pulling_apart(members: list, found: np.ndarray, anneal: Callable, key_of: Callable, deadline: float,
                   stop: float, cooling: int, clock_decides: bool, progress: Progress,
                   border: Callable) -> np.ndarray:
    """Build out of tolerance where the merge-and-resplit's first cooling from the best start left
    the plan (``found``) more than FAR_OFF times its goal off, or gained less than LEAST_GAIN: measures
    that pull apart across the map.

    One cooling of the border moves from the best start, in at most BORDER_SHARE of the time left.
    When their plan is the best after a whole cooling, they go on for half the time left and the
    merge-and-resplit finishes from the best plan they found; otherwise the portfolio's other
    starts run as before, then the merge-and-resplit from the best plan.
    """
    found_key = key_of(found)
    # near the band but gaining nothing (not far off): the merge-and-resplit has nothing to offer, so
    # the border moves go on even when less than AFFORD of a cooling fits in their time
    stalled = found_key.worst <= FAR_OFF * stop + 1e-9
    until = min(deadline, CLOCK() + BORDER_SHARE * max(deadline - CLOCK(), 0.0))
    got, cooled = border(until if clock_decides else deadline, progress.sub(0.0, BORDER_PROGRESS), True, stalled)
    border_plan = None
    if better(key_of(got), found_key):
        found, found_key, border_plan = got, key_of(got), got
    if found_key.worst <= stop + 1e-9:
        return found
    progress = progress.sub(BORDER_PROGRESS, 1.0)
    others = members[1:]
    if border_plan is not None and cooled:
        # a whole cooling of border moves beat the merge-and-resplit from the same start: they go on,
        # unless a start not tried yet ranks higher as it is
        for other in others:
            if better(key_of(other), found_key):
                found, found_key = other, key_of(other)
        if found is border_plan:
            until = min(deadline, CLOCK() + 0.5 * max(deadline - CLOCK(), 0.0))
            found, _ = border(until if clock_decides else deadline, progress.sub(0.0, 0.5), False, stalled)
            found_key = key_of(found)
        others = []
    lead = PORTFOLIO_SHARE * 0.5 if others else 0.5
    left = max(deadline - CLOCK(), 0.0)
    for index, start in enumerate(others):
        if found_key.worst <= stop + 1e-9:
            return found
        until = min(deadline, CLOCK() + PORTFOLIO_SHARE * left / len(members))
        budget = PORTFOLIO_COOLINGS * cooling
        if not clock_decides:
            until, budget = deadline, cooling
        span = progress.sub(lead * index / len(others), lead * (index + 1) / len(others))
        got, _ = anneal(start, [1, index + 1], until, span, budget, None)
        if better(key_of(got), found_key):
            found, found_key = got, key_of(got)
    if found_key.worst > stop + 1e-9:
        found, _ = anneal(found, [2], deadline, progress.sub(lead, 1.0), None, None)
    return found


def in_time_slices(plans: list, run: Callable, started: float, time_limit: float, progress: Progress,
                   shares: Optional[list] = None) -> list:
    """``run(plan, until, progress)`` for each plan in order, each until the end of its slice of
    the time left (counted from ``started`` on the engine's clock): equal slices, or in proportion
    to ``shares``; the results that are not None, in order."""
    out = []
    total = time_limit - (CLOCK() - started)
    weights = [1.0] * len(plans) if shares is None else [float(s) for s in shares]
    whole = sum(weights) or 1.0
    before = 0.0
    for index, plan in enumerate(plans):
        after = before + weights[index]
        until = started + (time_limit - total) + max(total, 0.0) * after / whole
        span = progress.sub(before / whole, after / whole)
        found = run(plan, until, span)
        if found is not None:
            out.append(found)
        before = after
    return out


def until_stale(attempt: Callable, tries: int, deadline: Optional[float] = None,
                check: Optional[Callable] = None) -> None:
    """Call ``attempt()`` until ``tries`` calls in a row bring nothing (it returns False), it has
    nothing left to try (None), 10 * ``tries`` calls in all, or the engine's clock passes
    ``deadline``. ``check()`` runs before every attempt (it raises to cancel)."""
    fails = 0
    steps = 0
    while fails < tries and steps < 10 * tries:
        steps += 1
        if deadline is not None and CLOCK() > deadline:
            break
        if check is not None:
            check()
        gained = attempt()
        if gained is None:
            break
        fails = 0 if gained else fails + 1
