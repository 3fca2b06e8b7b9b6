"""Build and rebalance territories: the engine's two entry points."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Optional

import numpy as np
from scipy.sparse.csgraph import connected_components

from .graph import count_parts
from .metrics import balance_matrix, plan_figures, territory_targets
from .problem import Diagnostic, Plan, Problem, ProblemError
from .progress import Progress, ensure_progress
from .solve.allocation import location_allocation, reassign_with_least_disruption
from .solve.border_anneal import BorderAnneal
from .solve.bounds import deviation_lower_bounds
from .solve.diagnostics import granularity, input_diagnostics, plan_diagnostics
from .solve.model import Model, build_model
from .solve.quality import better, not_worse, plan_key, within
from .solve.rebalance import (
    MOVE_RATE,
    flow_rebalance,
    match_identities,
    moved_load,
    out_of_band_cost,
    reduce_by_resplits,
    undo_moves,
)
from .solve.recom import Recombination
from .solve.resplit import Resplit
from .solve.search import BIG, LocalSearch, repair_contiguity

# Build aims a little inside the tolerance so that rounding and small edits do not tip it over.
GOAL_FRACTION = 0.99
POLISH_CENTRE_UNITS = True
MIN_STARTS = 4  # independent starts always tried (when the size allows that many)
PATIENCE = 3  # when balance is out of reach: stop after this many starts in a row without progress
START_SHARE = 0.25  # out of tolerance, no new start after this share of the time limit


def _effort(n: int, p: int) -> tuple:
    """(independent starts, centre relocation trials per start): more search for small layers."""
    starts = int(min(12, max(1, round(6000 / max(n, 1)))))
    if p > 20:
        starts = min(starts, 2 if n < 1500 else 1)  # with many territories local optima differ little
    trials = 2 if n <= 1000 else 1
    return starts, trials


def build_territories(problem: Problem, progress: Optional[Progress] = None) -> Plan:
    """Partition the units into ``problem.territory_count`` balanced, contiguous, compact territories.

    Always returns a complete plan (every unit assigned); when the data make the tolerance or
    contiguity unreachable, the plan's diagnostics name the units and territories that are the
    reason. Raises ProblemError for invalid input and Cancelled when the progress says so.
    """
    progress = ensure_progress(progress)
    problem.validate()
    clock = CLOCK()
    progress.step(0.0, "Preparing units")
    model = build_model(problem)
    progress.step(0.03, "Preparing units")
    starts, trials = _effort(model.n, model.p)
    if np.any(granularity(problem)[1] > _tol(model)):
        starts = 1  # some unit alone overshoots every target: restarts cannot fix that
    best = None
    best_key = None
    stuck: list = []
    since_better = 0
    pool: list = []  # every start's plan, in start order: the merge-and-resplit's portfolio
    apart = _heavy_units_apart(problem)
    if apart is not None:
        starts = max(starts, 2)
    for s in range(starts):
        if s >= MIN_STARTS and since_better >= PATIENCE and best_key[0] > 0:
            # tolerance out of reach and the last starts found nothing better: stop early
            break
        if s >= 1 and best_key[0] > 0 and CLOCK() - clock > START_SHARE * _time_limit(problem):
            # out of tolerance and the starts have had their share of the time: leave the rest
            # to the merge-and-resplit, which fixes far more than another start
            break
        span = progress.sub(0.03 + 0.57 * s / starts, 0.03 + 0.57 * (s + 1) / starts)
        rng = np.random.default_rng([int(problem.random_seed) & 0xFFFFFFFF, s])
        start = "bisection" if s % 2 == 0 else "kmeans"
        start_model = apart if (apart is not None and s % 2 == 1) else model
        labels, stuck_s, ls = _solve_once(start_model, rng, span, trials, start)
        compact = ls.centre_unit_cost() if POLISH_CENTRE_UNITS else ls.inertia_total()
        key = (round(ls.excess(_tol(model)), 12), compact)
        since_better += 1
        if not stuck_s:
            pool.append(labels)
        if best_key is None or key < best_key:
            best, best_key, stuck = labels, key, stuck_s
            since_better = 0
            # the progress text shows the current worst deviation (the panel's task and the toolbox)
            worst = plan_key(model.ratios(best), model.active, _tol(model)).worst_deviation
            span.step(1.0, f"Start {s + 1} of {starts}: worst deviation {100 * worst:.2f} %")
    if model.contiguous and not stuck:
        best = improve(problem, model, best, clock, progress.sub(0.6, 0.99), starts=pool)
    progress.step(0.99, "Summarising")
    plan = _finish(problem, model, best, stuck)
    progress.step(1.0, "Done")
    return plan


#: The clock TIME_LIMIT is counted on (wall-clock seconds). The benchmark may swap in
#: time.process_time to measure what the search needs on a core of its own.
CLOCK = time.monotonic
#: Seconds the search may take when the caller sets no time limit (it then also stops when it
#: stops improving).
DEFAULT_TIME_LIMIT = 60.0
#: Pressure levels of the single-move finish inside the merge-and-resplit: balance dominant, then
#: the spread term that lets load pass through territories already in band.
POLISH_LEVELS = [(BIG, b) for b in (0.0, 1.0, 10.0, 100.0)]
#: Start temperature of the rebalance's recombination annealing, as a fraction of the tolerance.
REBALANCE_TEMPERATURE = 1.0
#: The multi-tree merge-and-resplit (core.resplit): energy exponent, start temperature (in units
#: of the energy, (deviation / tolerance) ** power) and the steps over which it cools to 0.
RESPLIT_POWER = 2.0
RESPLIT_TEMPERATURE = 8.0
RESPLIT_COOLING = 2000
#: Portfolio: out of tolerance, the merge-and-resplit first runs from up to this many of the
#: independent starts (in start order), each for an equal slice of PORTFOLIO_SHARE of the time
#: left, then spends the rest on the best plan they found. Which start leads to a good plan is
#: a lottery (Georgia k = 10: the best-ranked start often ends at 10.6 %, another at 7.8 %);
#: short runs from several starts find the good basin far more often than one long run.
PORTFOLIO = 6
PORTFOLIO_SHARE = 0.5
#: Steps of each portfolio run (fewer when its time slice ends first): a budget in steps gives
#: the same plan on fast and slow machines whenever the time slice is long enough.
PORTFOLIO_STEPS = 3 * RESPLIT_COOLING
#: Out of tolerance on two or more measures, the border-move annealing (core.solve.border_anneal)
#: first has one cooling, at most this share of the time, and this share of the progress bar.
BORDER_SHARE = 0.4
BORDER_PROGRESS = 0.2


def _tol(model: Model) -> np.ndarray:
    """(m',) per-measure tolerance of the model."""
    return model.tolerances if model.tolerances is not None else np.full(model.m, model.tolerance)


def _figures_tolerance(problem: Problem):
    """The tolerance plan figures are judged against: a scalar, or one per measure when they differ."""
    if problem.tolerances is None or problem.measure_count == 0:
        return float(problem.tolerance)
    return problem.tolerance_vector()


def _time_limit(problem: Problem) -> float:
    return DEFAULT_TIME_LIMIT if problem.time_limit is None else float(problem.time_limit)


def _patience(problem: Problem, model: Model) -> Optional[int]:
    """Recombination steps without a better plan before giving up (None: use all the time)."""
    if problem.time_limit is not None:
        return None
    return int(max(2 * RESPLIT_COOLING, 100 * model.p))


def improve(problem: Problem, model: Model, labels: np.ndarray, clock: float, progress: Progress,
            initial: Optional[np.ndarray] = None, starts: Optional[list] = None) -> np.ndarray:
    """Leave the traps single moves cannot: merge-and-resplit while some territory is off.

    Runs only while the plan is out of tolerance and until the time limit (counted from
    ``clock``); the result never ranks below ``labels`` (worst deviation, then total excess).
    The search is core.resplit's annealing: neighbouring territories merged and split again at
    the best cut of many random spanning trees, on an energy that spreads imbalance out.
    ``starts``: other complete, contiguous plans (the independent starts, in start order); with
    two or more, short runs from each come first (the portfolio) and the rest of the time goes
    to the best plan they found.
    """
    tol = _tol(model)
    key0 = plan_key(model.ratios(labels), model.active, tol)
    if within(key0):
        return labels
    floor = float(np.max(proven_floor(problem) / np.maximum(tol, 1e-6)))
    if key0.worst <= floor + 1e-7:
        return labels
    deadline = clock + _time_limit(problem)
    stop = max(GOAL_FRACTION, floor)

    def polish(labels):
        quick = LocalSearch(model, labels, goal=GOAL_FRACTION * tol)
        quick.run(None, levels=POLISH_LEVELS)
        return quick.labels

    def anneal(start, stream, until, span, patience, max_steps=None):
        rng = np.random.default_rng([int(problem.random_seed) & 0xFFFFFFFF, 7919] + stream)
        rs = Resplit(model, start, rng, tolerance=tol, power=RESPLIT_POWER)
        return rs.run(until, span, goal=GOAL_FRACTION, floor=floor,
                      temperature=RESPLIT_TEMPERATURE, cooling=RESPLIT_COOLING, polish=polish,
                      patience=patience, clock=CLOCK, max_steps=max_steps)

    members = [labels] + [np.asarray(s, dtype=np.int64) for s in (starts or [])
                          if not np.array_equal(s, labels)]
    members = members[:PORTFOLIO]
    found, found_key = labels, key0
    lead = first = 0.0
    final_stream: list = []  # the first run draws the random stream a single run always drew
    border = border_plan = None
    cooled = False
    if int(np.count_nonzero(model.active)) >= 2:
        # measures that may pull apart: single border moves, annealed, reshape territories
        # far beyond a pair (metro territories reaching out into rural units); one cooling first
        first = BORDER_PROGRESS
        border = BorderAnneal(model, labels, np.random.default_rng(
            [int(problem.random_seed) & 0xFFFFFFFF, 7919, 3]), tolerance=tol)
        until = min(deadline, CLOCK() + BORDER_SHARE * max(deadline - CLOCK(), 0.0))
        got = border.run(until if problem.time_limit is not None else deadline, progress.sub(0.0, first),
                         goal=stop, max_proposals=border.sweep(), clock=CLOCK, polish=polish)
        cooled = border.proposals >= border.sweep()  # not cut short by the clock
        got_key = plan_key(model.ratios(got), model.active, tol)
        if better(got_key, found_key):
            found, found_key, border_plan = got, got_key, got
        if found_key.worst <= stop + 1e-9:
            members = []
    if len(members) >= 2:
        # the portfolio: PORTFOLIO_STEPS steps (at most an equal slice of time) for each start,
        # in order; stop at the goal
        lead = (0.9 - first) * PORTFOLIO_SHARE
        left = max(deadline - CLOCK(), 0.0)
        final_stream = [2]
        for i, start in enumerate(members):
            until = min(deadline, CLOCK() + PORTFOLIO_SHARE * left / len(members))
            budget = PORTFOLIO_STEPS
            if problem.time_limit is None:
                # no limit set: a smaller step budget alone ends each run (never the clock, so a
                # loaded machine gives the same plan)
                until, budget = deadline, RESPLIT_COOLING
            span = progress.sub(first + lead * i / len(members), first + lead * (i + 1) / len(members))
            got = anneal(start, [] if i == 0 else [1, i], until, span, _patience(problem, model),
                         max_steps=budget)
            got_key = plan_key(model.ratios(got), model.active, tol)
            if (i == 0 and border is None) or better(got_key, found_key):
                found, found_key = got, got_key
            if found_key.worst <= stop + 1e-9:
                break
            if found is border_plan and cooled:
                # a full cooling of border moves beat the merge-and-resplit from the same start:
                # they get the rest of the time, unless a start not tried yet ranks higher as it is
                for other in members[i + 1:]:
                    other_key = plan_key(model.ratios(other), model.active, tol)
                    if better(other_key, found_key):
                        found, found_key = other, other_key
                break
    if found_key.worst > stop + 1e-9:
        span = progress.sub(first + lead, 0.9)
        if found is border_plan:
            # the border moves did best: more coolings from their plan for half the time left,
            # then the merge-and-resplit finishes from the best plan they found
            until = min(deadline, CLOCK() + 0.5 * max(deadline - CLOCK(), 0.0))
            found = border.run(until if problem.time_limit is not None else deadline, span.sub(0.0, 0.5),
                               goal=stop, clock=CLOCK, polish=polish, sweep=2 * border.sweep(),
                               max_proposals=None if problem.time_limit is not None else 2 * border.sweep())
            span = span.sub(0.5, 1.0)
        found_key = plan_key(model.ratios(found), model.active, tol)
        if found_key.worst > stop + 1e-9:
            found = anneal(found, final_stream, deadline, span, _patience(problem, model))
    # smooth the cut lines: single moves under a dominant balance weight, never worse
    ls = LocalSearch(model, found, goal=GOAL_FRACTION * tol)
    ls.run(progress.sub(0.9, 1.0), levels=[(BIG, 0.0)])
    polished = ls.labels.copy()
    key_f = plan_key(model.ratios(found), model.active, tol)
    key_p = plan_key(model.ratios(polished), model.active, tol)
    out = polished if not_worse(key_p, key_f) or (within(key_p) and within(key_f)) else found
    key_o = plan_key(model.ratios(out), model.active, tol)
    return out if not_worse(key_o, key0) else labels


def proven_floor(problem: Problem) -> np.ndarray:
    """(m',) no plan can have a smaller worst |deviation| on that measure (see core.bounds)."""
    return deviation_lower_bounds(problem)[0]


def _heavy_units_apart(problem: Problem) -> Optional[Model]:
    """A model in which units too heavy to share a territory start in different territories.

    Two units whose joint workload exceeds a territory's upper bound can never share a balanced
    territory, yet every start that groups units by distance puts neighbouring metro units
    together, and moving one unit at a time cannot pull them apart again. Every other start then
    begins from such a model (the heavy units locked in distinct territories). None when no pair
    conflicts, or when seeds fix the territories' places.
    """
    if problem.seeds is not None:
        return None
    w = balance_matrix(problem.workload_matrix())
    targets = territory_targets(problem.workload_matrix(), problem.territory_count, problem.seed_targets)
    upper = targets.min(axis=0) * (1.0 + problem.tolerance_vector())
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(upper > 0, w / np.where(upper > 0, upper, 1.0), 0.0)
    weight = share.max(axis=1)
    order = np.argsort(-weight, kind="stable")
    user = np.full(len(w), -1, dtype=np.int64) if problem.locked is None else np.asarray(problem.locked).copy()
    candidates = [int(i) for i in order[: problem.territory_count] if weight[i] > 0.2 and user[i] < 0]
    heavy = [i for i in candidates if any(j != i and np.any(share[i] + share[j] > 1.0) for j in candidates)]
    if not heavy:
        return None
    free = [k for k in range(problem.territory_count) if k not in set(user[user >= 0].tolist())]
    for unit, k in zip(heavy, free):
        user[unit] = k
    return build_model(replace(problem, locked=user))


def _solve_once(model: Model, rng: np.random.Generator, progress: Progress, trials: int = 0, start="bisection"):
    labels = location_allocation(model, rng, progress.sub(0.0, 0.6), trials=trials, start=start)
    labels = ensure_nonempty(model, labels)
    stuck: list = []
    if model.contiguous:
        progress.step(0.6, "Making territories contiguous")
        labels, stuck = repair_contiguity(model, labels)
        # joining a territory's locked pieces can claim every unit of another territory
        labels = ensure_nonempty(model, labels)
    progress.step(0.65, "Balancing and compacting")
    ls = LocalSearch(model, labels, goal=GOAL_FRACTION * _tol(model))
    ls.run(progress.sub(0.65, 0.85))
    if POLISH_CENTRE_UNITS:
        ls.polish_about_centre_units(progress.sub(0.85, 1.0))
    return ls.labels.copy(), stuck, ls


def ensure_nonempty(model: Model, labels: np.ndarray, prefer: Optional[np.ndarray] = None) -> np.ndarray:
    """Give every empty territory one unit, taken from the territory with the most units.

    ``prefer`` (n,) bool: units to take first (rebalance: filled-in units, whose move is no change).
    """
    labels = labels.copy()
    p = model.p
    count = np.bincount(labels, minlength=p)
    for k in np.flatnonzero(count == 0).tolist():
        donors = np.argsort(-count, kind="stable")
        for d in donors.tolist():
            if count[d] <= 1:
                break
            members = np.flatnonzero((labels == d) & (model.locked < 0))
            if members.size == 0:
                continue
            cen = model.xy[members].mean(axis=0)
            d2 = ((model.xy[members] - cen) ** 2).sum(axis=1)
            if prefer is None:
                far = members[np.argsort(-d2, kind="stable")]
            else:
                far = members[np.lexsort((-d2, ~prefer[members]))]
            pick = far[0]
            for u in far[: min(far.size, 50)].tolist():
                if model.neighbours.removal_keeps_connected(u, labels):
                    pick = u
                    break
            labels[pick] = k
            count[d] -= 1
            count[k] += 1
            break
    return labels


def _finish(problem: Problem, model: Model, labels: np.ndarray, stuck: list, **extra) -> Plan:
    figures = plan_figures(
        labels,
        problem.workload_matrix(),
        model.adjacency,
        problem.positions,
        model.p,
        problem.seed_targets,
        _figures_tolerance(problem),
        join_islands_first=False,
    )
    diags = input_diagnostics(problem, model)
    diags += plan_diagnostics(
        problem,
        model,
        labels,
        figures,
        stuck,
        already_split=extra.pop("already_split", ()),
        capped=extra.pop("capped", False),
    )
    gran, _ = granularity(problem)
    bound, bound_units, reasons = deviation_lower_bounds(problem)
    diags += _bound_notes(problem, bound, bound_units, reasons)
    m_bal = figures.sums.shape[1]
    return Plan(
        labels=labels.astype(np.int64),
        figures=figures,
        diagnostics=diags,
        changed_units=int(extra.pop("changed_units", 0)),
        moved_workload=extra.pop("moved_workload", np.zeros(m_bal)),
        lower_bounds=bound,
        granularity=gran,
    )


def _bound_notes(problem: Problem, bound: np.ndarray, units: list, reasons: list) -> list:
    """The proven lower bound in words, naming the units that prove it."""
    out = []
    names = problem.names() if problem.measure_count else ["unit count"]
    p = int(problem.territory_count)
    for a in np.argsort(-bound, kind="stable").tolist():
        if bound[a] <= 0:
            continue
        if reasons[a] == "single":
            why = (f"{len(units[a])} unit(s) each carry more than a whole territory's target"
                   if len(units[a]) > 1 else "this unit alone carries more than a whole territory's target")
        else:
            why = (f"of these {p + 1} largest units two must share one of the {p} territories, and any two "
                   "of them exceed a territory's target")
        out.append(Diagnostic(
            "lower_bound",
            f"No plan can be better than {100 * bound[a]:.2f} % on '{names[a]}': {why}.",
            units=list(units[a]),
            severity="info",
        ))
    return out


def rebalance_territories(
    problem: Problem, max_changed_units: Optional[int] = None, progress: Optional[Progress] = None
) -> Plan:
    """Bring an existing plan (``problem.initial``) within tolerance, moving as little as possible.

    Units with initial label -1 are filled in from their neighbours; locked units take their
    locked territory; then boundary units move, cheapest disruption first, until every territory
    is within tolerance. With ``max_changed_units`` the plan changes at most that many units (of
    those with a valid initial label) and reports "cap_reached" if that stops short of balance.
    """
    progress = ensure_progress(progress)
    problem.validate()
    if problem.initial is None:
        raise ProblemError("Rebalancing needs an existing plan: set the initial territory of every unit.")
    if max_changed_units is not None and int(max_changed_units) < 0:
        raise ProblemError("The limit on changed units must be zero or more.")
    initial = np.asarray(problem.initial, dtype=np.int64)
    if not np.any(initial >= 0):
        plan = build_territories(problem, progress)
        return plan
    clock = time.monotonic()
    progress.step(0.0, "Preparing units")
    model = build_model(problem)
    labels = initial.copy()
    lk = model.locked >= 0
    labels[lk] = model.locked[lk]
    labels = fill_unassigned(model, labels)
    already_split = []
    if model.contiguous:
        parts = count_parts(labels, model.adjacency, model.p)
        user_split = set(_split_by_user(model, initial))
        if any(parts[k] > 1 and k not in user_split for k in range(model.p)):
            # filling in units cut a territory the user had in one piece: join its pieces again
            # through filled-in units (they count as no change)
            labels = _rejoin_through_filled(model, labels, initial, user_split)
            parts = count_parts(labels, model.adjacency, model.p)
        cap_now = None if max_changed_units is None else int(max_changed_units)
        if any(parts[k] > 1 and k not in user_split for k in range(model.p)):
            # locks cut it, or no filled-in path exists: hand over the detached pieces
            repaired, _ = repair_contiguity(model, labels)
            valid = initial >= 0
            forced = valid & (model.locked >= 0) & (model.locked != initial)
            if cap_now is None or int(np.sum(valid & ~forced & (repaired != initial))) <= cap_now:
                labels = repaired
            parts = count_parts(labels, model.adjacency, model.p)
        already_split = np.flatnonzero(parts > 1).tolist()
    labels = ensure_nonempty(model, labels, prefer=initial < 0)
    incumbent = labels.copy()  # the input as a complete plan: the result never ranks below it
    incumbent_key = plan_key(model.ratios(incumbent), model.active, _tol(model))
    cap = None if max_changed_units is None else int(max_changed_units)
    progress.step(0.05, "Rebalancing")
    candidates = [incumbent]
    if not within(incumbent_key):
        # first the load the excess requires, along the territory graph; then single moves
        flowed = flow_rebalance(model, labels, _tol(model), initial, cap)
        progress.step(0.2, "Rebalancing")
        ls = _rebalance_search(model, flowed, initial, cap)
        ls.run(progress.sub(0.2, 0.4), stop_when_balanced=True, levels=_REBALANCE_LEVELS)
        candidates.append(ls.labels.copy())
        if ls.violated():
            candidates += _rebalance_by_moves(model, labels, initial, cap, progress.sub(0.4, 0.6))
        candidates = [candidates[0]] + [_reduce_disruption(model, c, initial, cap, progress) for c in candidates[1:]]
        best = _pick_rebalanced(model, candidates, initial)
        if not within(plan_key(model.ratios(best), model.active, _tol(model))) and model.contiguous:
            # load has to be laid out anew: merge-and-resplit while time is left, then undo what
            # balance does not need
            # from the flows' plan (least moved) and from the best plan, half the time each
            starts = [flowed] if np.array_equal(flowed, best) else [flowed, best]
            total = _time_limit(problem) - (time.monotonic() - clock)
            for i, start in enumerate(starts):
                until = clock + (_time_limit(problem) - total) + max(total, 0.0) * (i + 1) / len(starts)
                span = progress.sub(0.6 + 0.38 * i / len(starts), 0.6 + 0.38 * (i + 1) / len(starts))
                found = _rebalance_recombine(problem, model, start, initial, cap, until, span)
                if found is not None:
                    candidates.append(found)
    labels = _pick_rebalanced(model, candidates, initial)
    chose_whole = False
    if already_split:
        # the input was already in pieces: a plan in one piece per territory that ranks no
        # lower than the input is preferred to it
        joined = _joined_candidates(model, incumbent, initial, cap, progress)
        whole = [c for c in candidates + joined
                 if np.all(count_parts(c, model.adjacency, model.p) <= 1)
                 and not_worse(plan_key(model.ratios(c), model.active, _tol(model)), incumbent_key)]
        if whole:
            labels = _pick_rebalanced(model, whole, initial)
            already_split = []
            chose_whole = True
    key = plan_key(model.ratios(labels), model.active, _tol(model))
    capped = False
    if cap is not None and not within(key):
        capped = int(np.sum((initial >= 0) & (labels != initial))) >= cap
    unchanged = None
    if not better(key, incumbent_key) and not chose_whole:
        # nothing found ranks above the input (worst deviation, then total excess): keep it
        labels = incumbent
        unchanged = _unchanged_note(problem, incumbent_key)
    valid = initial >= 0
    changed = valid & (labels != initial)
    moved = balance_matrix(problem.workload_matrix())[changed].sum(axis=0)
    plan = _finish(
        problem,
        model,
        labels,
        [],
        already_split=already_split,
        capped=capped,
        changed_units=int(changed.sum()),
        moved_workload=moved,
    )
    if unchanged is not None:
        plan.diagnostics.append(unchanged)
    progress.step(1.0, "Done")
    return plan


def _unchanged_note(problem: Problem, key) -> Diagnostic:
    if within(key):
        return Diagnostic(
            "no_improvement",
            f"The plan is already within tolerance (worst deviation {100 * key.worst_deviation:.2f} %); "
            "nothing was changed.",
            severity="info",
        )
    return Diagnostic(
        "no_improvement",
        f"Rebalancing found no plan better than the existing one (worst deviation "
        f"{100 * key.worst_deviation:.2f} %), so the plan is returned unchanged apart from units filled in "
        "and locks applied. A longer time limit, a larger tolerance or fewer locks may help.",
    )


_REBALANCE_LEVELS = [(BIG, b) for b in (0.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7)]


def _rebalance_by_moves(model: Model, labels: np.ndarray, initial: np.ndarray, cap, progress: Progress) -> list:
    """The move-based path: disruption-charged local search, then the least-disruption LP."""
    out = []
    ls = _rebalance_search(model, labels, initial, cap)
    ls.run(progress.sub(0.0, 0.4), stop_when_balanced=True, levels=_REBALANCE_LEVELS)
    out.append(ls.labels.copy())
    if ls.violated() and (cap is None or ls.changed < cap):
        # load has to travel through several territories: solve the least-disruption LP
        moved = reassign_with_least_disruption(model, ls.labels, 0.6 * model.tolerance, progress=progress)
        if model.contiguous:
            moved, _ = repair_contiguity(model, moved)
        moved = ensure_nonempty(model, moved)
        valid = initial >= 0
        if cap is None or int(np.sum(moved[valid] != initial[valid])) <= cap:
            ls = _rebalance_search(model, moved, initial, cap)
            ls.run(progress.sub(0.5, 1.0), stop_when_balanced=True, levels=_REBALANCE_LEVELS)
            out.append(ls.labels.copy())
    return out


#: Seconds the rebalance spends at most on cutting pairs anew nearer their initial border, per plan.
RESPLIT_SECONDS = 5.0
#: Without a time limit, the rebalance's merge-and-resplit gives up after this many steps
#: without a better plan.
REBALANCE_PATIENCE = 150


def _rebalance_recombine(problem: Problem, model: Model, labels: np.ndarray, initial: np.ndarray, cap,
                         deadline: float, progress: Progress) -> Optional[np.ndarray]:
    """Merge-and-resplit from a rebalanced plan until within tolerance or ``deadline``
    (time.monotonic()), then changed units go back where balance allows. None when it finds
    nothing or breaks the cap."""
    if problem.time_limit is not None and float(problem.time_limit) <= 0:
        return None
    floor = float(np.max(proven_floor(problem) / np.maximum(_tol(model), 1e-6)))
    key0 = plan_key(model.ratios(labels), model.active, _tol(model))
    if key0.worst <= floor + 1e-7:
        return None
    patience = None if problem.time_limit is not None else REBALANCE_PATIENCE
    rng = np.random.default_rng([int(problem.random_seed) & 0xFFFFFFFF, 104729])
    # cuts judged on balance first, then on the workload they move from its initial territory
    # (a disruption far above the compactness term, which is scaled to about 1 per territory)
    rc = Recombination(model, match_identities(model, labels, initial), rng, tolerance=_tol(model),
                       initial=initial, disruption=1e3 * model.p / float(model.weight.sum()))

    def polish(lab):
        ls = _rebalance_search(model, lab, initial, None)
        ls.run(None, stop_when_balanced=True, levels=_REBALANCE_LEVELS)
        return ls.labels

    found = rc.run(deadline, progress.sub(0.0, 0.9), floor=floor, patience=patience,
                   temperature=REBALANCE_TEMPERATURE * float(np.min(model.tolerance)), polish=polish)
    found = polish(match_identities(model, found, initial))
    found = _reduce_disruption(model, found, initial, cap, progress)
    progress.step(1.0, "Rebalancing")
    valid = initial >= 0
    if cap is not None and int(np.sum(found[valid] != initial[valid])) > cap:
        return None
    return found


def _reduce_disruption(model: Model, labels: np.ndarray, initial: np.ndarray, cap,
                       progress: Optional[Progress] = None) -> np.ndarray:
    """Changed units go back to their initial territory where balance allows: single returns,
    then the disruption-charged search to its end (exchanges and chains of returns), then
    single returns again. The plan's rank (worst deviation, total excess) never drops, and a
    plan within tolerance stays within."""
    key0 = plan_key(model.ratios(labels), model.active, _tol(model))
    out = undo_moves(model, labels, initial, _tol(model), rate=MOVE_RATE)
    ls = _rebalance_search(model, out, initial, cap)
    ls.max_moves_per_round = None
    ls.run(None, max_rounds=200, levels=[(BIG, 0.0)])
    key1 = plan_key(model.ratios(ls.labels), model.active, _tol(model))
    if (within(key1) if within(key0) else not_worse(key1, key0)):
        out = undo_moves(model, ls.labels, initial, _tol(model), rate=MOVE_RATE)
    if model.contiguous:
        # pairs of territories cut anew nearer their initial border
        rng = np.random.default_rng([model.random_seed & 0xFFFFFFFF, 15485863])
        out = reduce_by_resplits(model, out, initial, _tol(model), rng, cap=cap,
                                 deadline=time.monotonic() + RESPLIT_SECONDS,
                                 check=None if progress is None else progress.check)
        out = undo_moves(model, out, initial, _tol(model), rate=MOVE_RATE)
    return out


def _joined_candidates(model: Model, labels: np.ndarray, initial: np.ndarray, cap, progress: Progress) -> list:
    """Plans from the input with its detached pieces handed over, then rebalanced (flows and the
    disruption-charged search); empty when the hand-over breaks the cap."""
    joined, _ = repair_contiguity(model, labels)
    joined = ensure_nonempty(model, joined)
    valid = initial >= 0
    forced = valid & (model.locked >= 0) & (model.locked != initial)
    if cap is not None and int(np.sum(valid & ~forced & (joined != initial))) > cap:
        return []
    flowed = flow_rebalance(model, joined, _tol(model), initial, cap)
    ls = _rebalance_search(model, flowed, initial, cap)
    ls.run(progress.sub(0.98, 0.99), stop_when_balanced=True, levels=_REBALANCE_LEVELS)
    return [joined, _reduce_disruption(model, ls.labels.copy(), initial, cap, progress)]


def _pick_rebalanced(model: Model, candidates: list, initial: np.ndarray) -> np.ndarray:
    """The best candidate among those that rank no lower than the first (the input): plans within
    tolerance rank first and among them the least workload moved wins; out of tolerance, the
    smallest ``out_of_band_cost`` (worst deviation, load beyond the bands and workload moved, so
    that moving much for a small gain loses). Ties: the earliest."""
    tol = _tol(model)
    keys = [plan_key(model.ratios(c), model.active, tol) for c in candidates]

    def rank(i):
        if within(keys[i]):
            return (0, round(moved_load(model, candidates[i], initial), 12), i)
        return (1, round(out_of_band_cost(model, candidates[i], initial, tol), 12), i)

    ok = [i for i in range(len(candidates)) if i == 0 or not_worse(keys[i], keys[0])]
    return candidates[min(ok, key=rank)]


def _rejoin_through_filled(model: Model, labels: np.ndarray, initial: np.ndarray, user_split,
                           passes: int = 4) -> np.ndarray:
    """Join the pieces of territories the filling-in cut, along shortest paths of filled-in
    units (initial label -1, not locked), which take the territory's label."""
    labels = labels.copy()
    lists = model.neighbours.lists
    free = (initial < 0) & (model.locked < 0)
    for _ in range(passes):
        parts = count_parts(labels, model.adjacency, model.p)
        todo = [k for k in range(model.p) if parts[k] > 1 and k not in user_split]
        if not todo:
            break
        for k in todo:
            members = np.flatnonzero(labels == k)
            sub = model.adjacency[members][:, members]
            ncomp, comp = connected_components(sub, directed=False)
            if ncomp <= 1:
                continue
            size = np.bincount(comp, model.weight[members], minlength=ncomp)
            main = int(np.argmax(size))
            target = set(members[comp == main].tolist())
            for c in range(ncomp):
                if c == main:
                    continue
                start = members[comp == c].tolist()
                prev = {u: -1 for u in start}
                frontier = list(start)
                found = -1
                while frontier and found < 0:
                    nxt = []
                    for u in frontier:
                        for v in lists[u]:
                            if v in prev:
                                continue
                            if v in target:
                                prev[v] = u
                                found = v
                                break
                            if free[v] or labels[v] == k:
                                prev[v] = u
                                nxt.append(v)
                        if found >= 0:
                            break
                    frontier = nxt
                if found < 0:
                    continue
                u = prev[found]
                while u >= 0 and prev[u] >= 0:
                    labels[u] = k
                    u = prev[u]
                target.update(members[comp == c].tolist())
    return labels


def _split_by_user(model: Model, initial: np.ndarray) -> list:
    """Territories whose assigned units the input already has in several pieces (counting
    unassigned units as bridges: filling them in could join the pieces)."""
    out = []
    adj = model.adjacency
    for k in range(model.p):
        own = np.flatnonzero(initial == k)
        if own.size <= 1:
            continue
        members = np.flatnonzero((initial == k) | (initial < 0))
        sub = adj[members][:, members]
        _, comp = connected_components(sub, directed=False)
        comp_of = np.full(model.n, -1, dtype=np.int64)
        comp_of[members] = comp
        if np.unique(comp_of[own]).size > 1:
            out.append(k)
    return out


def _rebalance_search(model: Model, labels: np.ndarray, initial: np.ndarray, cap) -> LocalSearch:
    """Local search whose merit charges for every unit moved away from its initial territory."""
    disruption = 0.1 * BIG * model.p / model.n
    ls = LocalSearch(model, labels, goal=_tol(model), initial=initial, disruption=disruption, cap=cap)
    ls.max_moves_per_round = 0  # one move per territory off target per round: no needless moves
    ls.focus_violated = True
    return ls


def fill_unassigned(model: Model, labels: np.ndarray) -> np.ndarray:
    """Assign units with label -1 to a neighbouring territory, lightest territory first."""
    labels = labels.copy()
    p = model.p
    eu, ev = model.edges
    while np.any(labels < 0):
        ratios = _ratios_assigned(model, labels)
        load = (ratios * model.active).sum(axis=1)
        front = (labels[eu] < 0) & (labels[ev] >= 0)
        if not np.any(front):
            break
        u = eu[front]
        terr = labels[ev[front]]
        # per unassigned unit: the neighbouring territory with the least load (ties: lowest index)
        order = np.lexsort((terr, load[terr], u))
        u, terr = u[order], terr[order]
        first = np.r_[True, u[1:] != u[:-1]]
        labels[u[first]] = terr[first]
    if np.any(labels < 0):
        # no assigned unit reaches them (cannot happen once islands are joined); nearest territory
        rest = np.flatnonzero(labels < 0)
        labels[rest] = 0 if p else -1
    return labels


def _ratios_assigned(model: Model, labels: np.ndarray) -> np.ndarray:
    ok = labels >= 0
    out = np.zeros((model.p, model.m))
    for a in range(model.m):
        out[:, a] = np.bincount(labels[ok], model.frac[ok, a], minlength=model.p)
    return out / model.share[:, None]
