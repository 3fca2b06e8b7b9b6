"""Build and rebalance territories: the engine's two entry points.

Each is a pipeline of the solve/ rooms (see core/README.md): which step runs when, with which
settings, and the plan's summary at the end. The restart rules are in solve/restarts.py, the
clock that time limits are counted on in clock.py (``CLOCK`` here is the same object).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np

from .clock import CLOCK
from .fixed_loads import Ghosts
from .graph import count_parts
from .metrics import balance_matrix, plan_figures, territory_targets
from .problem import Diagnostic, Plan, Problem, ProblemError
from .progress import Progress, ensure_progress
from .solve import restarts
from .solve.allocation import location_allocation, reassign_with_least_disruption
from .solve.border_anneal import BorderAnneal
from .solve.border_rebalance import border_rebalance
from .solve.bounds import deviation_lower_bounds
from .solve.completion import ensure_nonempty, fill_unassigned
from .solve.contiguity import rejoin_through_filled, repair_contiguity, split_by_user
from .solve.diagnostics import granularity, input_diagnostics, plan_diagnostics
from .solve.give_back import reduce_by_recuts, undo_moves
from .solve.hand_back import hand_back_units
from .solve.merit import BIG
from .solve.model import Model, build_model
from .solve.quality import better, not_worse, plan_key, within
from .solve.rebalance import KEEP_RATE, MOVE_RATE, flow_rebalance, match_identities, moved_load, out_of_band_cost
from .solve.recom import Recombination
from .solve.resplit import Resplit
from .solve.search import LocalSearch

# Build aims a little inside the tolerance so that rounding and small edits do not tip it over.
GOAL_FRACTION = 0.99
POLISH_CENTRE_UNITS = True


def build_territories(problem: Problem, progress: Optional[Progress] = None) -> Plan:
    """Partition the units into ``problem.territory_count`` balanced, contiguous, compact territories.

    Always returns a complete plan (every unit assigned); when the data make the tolerance or
    contiguity unreachable, the plan's diagnostics name the units and territories that are the
    reason. Raises ProblemError for invalid input and Cancelled when the progress says so.
    """
    progress = ensure_progress(progress)
    ghosts = Ghosts.of(problem)
    if ghosts is not None:  # fixed loads ride on ghost units (core/fixed_loads.py)
        return ghosts.strip(build_territories(ghosts.problem, progress))
    problem.validate()
    clock = CLOCK()
    if problem.time_limit is not None:
        # the limit binds the whole run: every phase stops at this deadline with the best plan so far
        progress = progress.until(clock + float(problem.time_limit))
    progress.step(0.0, "Preparing units")
    model = build_model(problem)
    progress.step(0.03, "Preparing units")
    tolerance = model.tolerance_vector
    apart = _heavy_units_apart(problem)
    starts, trials = restarts.start_count(model.n, model.p, bool(np.any(granularity(problem)[1] > tolerance)),
                                          apart is not None)

    far_off = None
    if problem.time_limit is not None and int(np.count_nonzero(model.active)) >= 2:
        # measures that may pull apart: a start this far off goes to the border moves, which reshape
        # its territories anyway; compacting it about centre units gets no more than the starts'
        # share of the time limit (on 3,085 counties it took 40 s of a 60 s limit)
        floor = float(np.max(proven_floor(problem) / np.maximum(tolerance, 1e-6)))
        far_off = (restarts.FAR_OFF * max(GOAL_FRACTION, floor), clock + restarts.START_SHARE * _time_limit(problem))

    def run_start(index: int, span: Progress) -> tuple:
        rng, centres, heavy_apart = restarts.start_plan(problem.random_seed, index)
        start_model = apart if (apart is not None and heavy_apart) else model
        labels, stuck, search = _solve_once(start_model, rng, span, trials, centres, far_off)
        compact = search.centre_unit_cost() if POLISH_CENTRE_UNITS else search.inertia_total()
        return labels, stuck, (round(search.excess(tolerance), 12), compact)

    def describe(labels: np.ndarray) -> str:
        worst = plan_key(model.ratios(labels), model.active, tolerance).worst_deviation
        return f"worst deviation {100 * worst:.2f} %"

    best, stuck, pool = restarts.best_of_starts(starts, run_start, clock, _time_limit(problem),
                                                progress.sub(0.03, 0.6), describe)
    if model.contiguous and not stuck:
        best = improve(problem, model, best, clock, progress.sub(0.6, 0.99), starts=pool)
    progress.step(0.99, "Summarising")
    plan = _finish(problem, model, best, stuck)
    progress.step(1.0, "Done")
    return plan


#: Seconds the search may take when the caller sets no time limit (it then also stops when it
#: stops improving).
DEFAULT_TIME_LIMIT = 60.0
#: Pressure levels of the single-move finish inside the merge-and-resplit: balance dominant, then
#: the spread term that lets load pass through territories already in band.
POLISH_LEVELS = [(BIG, b) for b in (0.0, 1.0, 10.0, 100.0)]
#: Start temperature of the rebalance's recombination annealing, as a fraction of the tolerance.
REBALANCE_TEMPERATURE = 1.0
#: The multi-tree merge-and-resplit (core.solve.resplit): energy exponent, start temperature (in units
#: of the energy, (deviation / tolerance) ** power) and the steps over which it cools to 0.
RESPLIT_POWER = 2.0
RESPLIT_TEMPERATURE = 8.0
RESPLIT_COOLING = 2000


def _figures_tolerance(problem: Problem):
    """The tolerance plan figures are judged against: a scalar, or one per measure when they differ."""
    if problem.tolerances is None or problem.measure_count == 0:
        return float(problem.tolerance)
    return problem.tolerance_vector()


def _time_limit(problem: Problem) -> float:
    return DEFAULT_TIME_LIMIT if problem.time_limit is None else float(problem.time_limit)


def _patience(problem: Problem, model: Model) -> Optional[int]:
    """Steps of the build's resplit without progress before it gives up (None: use all the time)."""
    if problem.time_limit is not None:
        return None
    return int(max(2 * RESPLIT_COOLING, 100 * model.p))


def improve(problem: Problem, model: Model, labels: np.ndarray, clock: float, progress: Progress,
            starts: Optional[list] = None) -> np.ndarray:
    """Leave the traps single moves cannot: merge-and-resplit while some territory is off.

    Runs only while the plan is out of tolerance and until the time limit (counted from
    ``clock``); the result never ranks below ``labels`` (worst deviation, then total excess).
    The search is core.solve.resplit's annealing: neighbouring territories merged and split again at
    the best cut of many random spanning trees, on an energy that spreads imbalance out.
    ``starts``: other complete, contiguous plans (the independent starts, in start order); with
    two or more, short runs from each come first (the portfolio) and the rest of the time goes
    to the best plan they found.
    """
    tolerance = model.tolerance_vector
    key0 = plan_key(model.ratios(labels), model.active, tolerance)
    if within(key0):
        return labels
    floor = float(np.max(proven_floor(problem) / np.maximum(tolerance, 1e-6)))
    if key0.worst <= floor + 1e-7:
        return labels
    deadline = clock + _time_limit(problem)
    progress = progress.until(deadline)  # the whole search's deadline: no step of it runs past this
    stop = max(GOAL_FRACTION, floor)

    def polish(labels):
        quick = LocalSearch(model, labels, goal=GOAL_FRACTION * tolerance)
        quick.run(progress.quiet(), levels=POLISH_LEVELS)
        return quick.labels

    def anneal(start, stream, until, span, max_steps, give_up):
        rng = np.random.default_rng([int(problem.random_seed) & 0xFFFFFFFF, 7919] + stream)
        search = Resplit(model, start, rng, tolerance=tolerance, power=RESPLIT_POWER)
        plan = search.run(until, span, goal=GOAL_FRACTION, floor=floor, temperature=RESPLIT_TEMPERATURE,
                          cooling=RESPLIT_COOLING, polish=polish, patience=_patience(problem, model),
                          max_steps=max_steps, give_up=give_up)
        return plan, search.gave_up

    members = [labels] + [np.asarray(s, dtype=np.int64) for s in (starts or [])
                          if not np.array_equal(s, labels)]

    def key_of(plan):
        return plan_key(model.ratios(plan), model.active, tolerance)

    clock_decides = problem.time_limit is not None
    border = None
    if int(np.count_nonzero(model.active)) >= 2:
        # measures that may pull apart: single border moves, annealed, reshape territories far
        # beyond a pair (metro territories reaching out into rural units)
        moves = BorderAnneal(model, labels, np.random.default_rng([int(problem.random_seed) & 0xFFFFFFFF, 7919, 3]),
                             tolerance=tolerance)

        def border(until, span, first, stalled):
            sweep = moves.sweep() if first else 2 * moves.sweep()
            before = moves.proposals
            plan = moves.run(until, span, goal=stop, sweep=sweep, polish=polish,
                             max_proposals=sweep if first or not clock_decides else None, fit=clock_decides,
                             afford=0.0 if stalled else None)
            return plan, moves.proposals - before >= sweep or moves.cooled

    found = restarts.run_portfolio(members, anneal, key_of, deadline, stop, RESPLIT_COOLING,
                                   clock_decides, progress, border=border)
    # smooth the cut lines: single moves under a dominant balance weight, never worse
    search = LocalSearch(model, found, goal=GOAL_FRACTION * tolerance)
    search.run(progress.sub(0.9, 1.0), levels=[(BIG, 0.0)])
    polished = search.labels.copy()
    key_f = plan_key(model.ratios(found), model.active, tolerance)
    key_p = plan_key(model.ratios(polished), model.active, tolerance)
    out = polished if not_worse(key_p, key_f) or (within(key_p) and within(key_f)) else found
    key_o = plan_key(model.ratios(out), model.active, tolerance)
    return out if not_worse(key_o, key0) else labels


def proven_floor(problem: Problem) -> np.ndarray:
    """(m',) no plan can have a smaller worst |deviation| on that measure (see core.solve.bounds)."""
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


def _solve_once(model: Model, rng: np.random.Generator, progress: Progress, trials: int = 0, start="bisection",
                far_off: Optional[tuple] = None):
    """One independent start: allocation, contiguity, single moves, then the polish about centre
    units; ``far_off`` = (tolerances, deadline): a plan more than that far off is polished only
    until the deadline (a reading of the engine's clock)."""
    labels = location_allocation(model, rng, progress.sub(0.0, 0.6), trials=trials, start=start)
    labels = ensure_nonempty(model, labels)
    stuck: list = []
    if model.contiguous:
        progress.step(0.6, "Making territories contiguous")
        labels, stuck = repair_contiguity(model, labels)
        # joining a territory's locked pieces can claim every unit of another territory
        labels = ensure_nonempty(model, labels)
    progress.step(0.65, "Balancing and compacting")
    search = LocalSearch(model, labels, goal=GOAL_FRACTION * model.tolerance_vector)
    search.run(progress.sub(0.65, 0.85))
    if POLISH_CENTRE_UNITS and not progress.out_of_time():
        polishing = progress.sub(0.85, 1.0)
        if far_off is not None and plan_key(model.ratios(search.labels), model.active,
                                            model.tolerance_vector).worst > far_off[0] + 1e-9:
            polishing = polishing.until(far_off[1])
        search.polish_about_centre_units(polishing)
    return search.labels.copy(), stuck, search


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
    diagnostics = input_diagnostics(problem, model)
    diagnostics += plan_diagnostics(
        problem,
        model,
        labels,
        figures,
        stuck,
        already_split=extra.pop("already_split", ()),
        capped=extra.pop("capped", False),
    )
    unit_granularity, _ = granularity(problem)
    bound, bound_units, reasons = deviation_lower_bounds(problem)
    diagnostics += _bound_notes(problem, bound, bound_units, reasons)
    measures = figures.sums.shape[1]
    return Plan(
        labels=labels.astype(np.int64),
        figures=figures,
        diagnostics=diagnostics,
        changed_units=int(extra.pop("changed_units", 0)),
        moved_workload=extra.pop("moved_workload", np.zeros(measures)),
        lower_bounds=bound,
        granularity=unit_granularity,
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
    With a time limit every search stops when it is up (the best plan found so far is kept, and the
    steps that follow are skipped or cut short); without one, each runs until no move helps (and the
    border moves for two or more measures, bounded by time only, do not run).
    """
    progress = ensure_progress(progress)
    problem.validate()
    if problem.initial is None:
        raise ProblemError("Rebalancing needs an existing plan: set the initial territory of every unit.")
    ghosts = Ghosts.of(problem)
    if ghosts is not None:  # fixed loads ride on ghost units (core/fixed_loads.py)
        return ghosts.strip(rebalance_territories(ghosts.problem, max_changed_units, progress))
    if max_changed_units is not None and int(max_changed_units) < 0:
        raise ProblemError("The limit on changed units must be zero or more.")
    initial = np.asarray(problem.initial, dtype=np.int64)
    if not np.any(initial >= 0):
        plan = build_territories(problem, progress)
        return plan
    clock = CLOCK()
    if problem.time_limit is not None:
        progress = progress.until(clock + float(problem.time_limit))
    progress.step(0.0, "Preparing units")
    model = build_model(problem)
    labels = initial.copy()
    is_locked = model.locked >= 0
    labels[is_locked] = model.locked[is_locked]
    labels = fill_unassigned(model, labels)
    already_split = []
    if model.contiguous:
        parts = count_parts(labels, model.adjacency, model.p)
        user_split = set(split_by_user(model, initial))
        if any(parts[k] > 1 and k not in user_split for k in range(model.p)):
            # filling in units cut a territory the user had in one piece: join its pieces again
            # through filled-in units (they count as no change)
            labels = rejoin_through_filled(model, labels, initial, user_split)
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
    with_empty_territories = labels  # handing back may seed an empty territory better than the fill
    labels = ensure_nonempty(model, labels, prefer=initial < 0)
    incumbent = labels.copy()  # the input as a complete plan: the result never ranks below it
    incumbent_key = plan_key(model.ratios(incumbent), model.active, model.tolerance_vector)
    cap = None if max_changed_units is None else int(max_changed_units)
    progress.step(0.05, "Rebalancing")
    candidates = [incumbent]
    if not within(incumbent_key):
        # single units handed on to the neighbour that needs them (the fix after a few hand
        # moves), then the load the excess requires along the territory graph, then single moves
        handed = hand_back_units(model, with_empty_territories, initial, model.tolerance_vector, cap,
                                 check=progress.check)
        handed = ensure_nonempty(model, handed, prefer=initial < 0)
        flowed = flow_rebalance(model, labels, model.tolerance_vector, initial, cap, check=progress.check)
        progress.step(0.2, "Rebalancing")
        search = _rebalance_search(model, flowed, initial, cap)
        search.run(progress.sub(0.2, 0.4), stop_when_balanced=True, levels=_REBALANCE_LEVELS)
        candidates.append(search.labels.copy())
        if search.violated() and not progress.out_of_time():
            candidates += _rebalance_by_moves(model, labels, initial, cap, progress.sub(0.4, 0.6))
        candidates = [candidates[0]] + [_reduce_disruption(model, c, initial, cap, progress) for c in candidates[1:]]
        handed = _reduce_disruption(model, handed, initial, cap, progress)
        best = _pick_rebalanced(model, candidates, initial)
        balanced = any(within(plan_key(model.ratios(c), model.active, model.tolerance_vector)) for c in (best, handed))
        if not balanced and model.contiguous:
            # load has to be laid out anew: merge-and-resplit while time is left, then undo what
            # balance does not need
            # from the flows' plan (least moved) and from the best plan, half the time each; not
            # from the hand-back, which stops after a few units (a poor start for laying load out
            # anew), so that where the hand-back does not win nothing changes
            plans = [flowed] if np.array_equal(flowed, best) else [flowed, best]

            recombined = []

            def recombine(plan, until, span):
                found = _rebalance_recombine(problem, model, plan, initial, cap, until, span)
                recombined.extend([] if found is None else [found])
                return found

            def border(plan, until, span):
                if any(_at_floor(problem, model, c) for c in recombined):
                    return None
                return _rebalance_by_border_moves(problem, model, plan, initial, cap, until, span)

            runs = [(recombine, plan) for plan in plans]
            shares = [1.0] * len(runs)
            if int(np.count_nonzero(model.active)) >= 2 and problem.time_limit is not None:
                # measures that may pull apart: border moves that pay for the workload they move,
                # from the input, with twice the time of the merge-and-resplits together (and what
                # they leave: they stop at the proven floor, and then so does this). A search
                # bounded by its time only: without a time limit (the API's default; the toolbox
                # and the panel always set one) the rebalance stays on its patience-bound steps
                runs, shares = runs + [(border, labels)], shares + [2.0 * len(runs)]
            candidates += restarts.in_time_slices(runs, lambda run, until, span: run[0](run[1], until, span),
                                                  clock, _time_limit(problem), progress.sub(0.6, 0.98),
                                                  shares=shares)
        # last, so that a tie goes to the candidates above
        candidates.append(handed)
    labels = _pick_rebalanced(model, candidates, initial)
    chose_whole = False
    if already_split:
        # the input was already in pieces: a plan in one piece per territory that ranks no
        # lower than the input is preferred to it
        joined = _joined_candidates(model, incumbent, initial, cap, progress)
        whole = [c for c in candidates + joined
                 if np.all(count_parts(c, model.adjacency, model.p) <= 1)
                 and not_worse(plan_key(model.ratios(c), model.active, model.tolerance_vector), incumbent_key)]
        if whole:
            labels = _pick_rebalanced(model, whole, initial)
            already_split = []
            chose_whole = True
    key = plan_key(model.ratios(labels), model.active, model.tolerance_vector)
    if not within(key):
        # out of tolerance, changed units that buy too little beyond the bands go back
        labels = undo_moves(model, labels, initial, model.tolerance_vector, rate=KEEP_RATE)
        key = plan_key(model.ratios(labels), model.active, model.tolerance_vector)
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
    search = _rebalance_search(model, labels, initial, cap)
    search.run(progress.sub(0.0, 0.4), stop_when_balanced=True, levels=_REBALANCE_LEVELS)
    out.append(search.labels.copy())
    if search.violated() and (cap is None or search.changed < cap) and not progress.out_of_time():
        # load has to travel through several territories: solve the least-disruption LP
        moved = reassign_with_least_disruption(model, search.labels, 0.6 * model.tolerance, progress=progress)
        if model.contiguous:
            moved, _ = repair_contiguity(model, moved)
        moved = ensure_nonempty(model, moved)
        valid = initial >= 0
        if cap is None or int(np.sum(moved[valid] != initial[valid])) <= cap:
            search = _rebalance_search(model, moved, initial, cap)
            search.run(progress.sub(0.5, 1.0), stop_when_balanced=True, levels=_REBALANCE_LEVELS)
            out.append(search.labels.copy())
    return out


def _floor(problem: Problem, model: Model) -> float:
    """The proven floor of the worst deviation, in tolerances."""
    return float(np.max(proven_floor(problem) / np.maximum(model.tolerance_vector, 1e-6)))


def _at_floor(problem: Problem, model: Model, labels: np.ndarray) -> bool:
    """The plan's worst deviation is at the proven floor: no search can lower it."""
    return plan_key(model.ratios(labels), model.active, model.tolerance_vector).worst <= _floor(problem, model) + 1e-7


def _rebalance_by_border_moves(problem: Problem, model: Model, labels: np.ndarray, initial: np.ndarray, cap,
                               deadline: float, progress: Progress) -> Optional[np.ndarray]:
    """core.solve.border_rebalance from ``labels`` until within tolerance or ``deadline``; None when
    the plan is at its proven floor already or the result breaks the cap."""
    if problem.time_limit is not None and float(problem.time_limit) <= 0:
        return None
    if _at_floor(problem, model, labels):
        return None
    rng = np.random.default_rng([int(problem.random_seed) & 0xFFFFFFFF, 104729, 2])

    def reduce(plan):
        return _reduce_disruption(model, plan, initial, cap, progress)

    polish = _rebalance_polish(model, initial, progress)

    def pick(plans):
        return _pick_rebalanced(model, [labels] + plans, initial)

    found = border_rebalance(model, labels, initial, rng, deadline, progress, reduce, pick,
                             goal=max(0.99, _floor(problem, model) + 1e-7), polish=polish)
    valid = initial >= 0
    if cap is not None and int(np.sum(found[valid] != initial[valid])) > cap:
        return None
    return found


#: Seconds the rebalance spends at most on cutting pairs anew nearer their initial border, per plan.
RECUT_SECONDS = 5.0
#: Without a time limit, the rebalance's merge-and-resplit gives up after this many steps
#: without a better plan.
REBALANCE_PATIENCE = 150


def _rebalance_recombine(problem: Problem, model: Model, labels: np.ndarray, initial: np.ndarray, cap,
                         deadline: float, progress: Progress) -> Optional[np.ndarray]:
    """Merge-and-resplit from a rebalanced plan until within tolerance or ``deadline``
    (core.clock.CLOCK), then changed units go back where balance allows. None when it finds
    nothing or breaks the cap."""
    if problem.time_limit is not None and float(problem.time_limit) <= 0:
        return None
    floor = _floor(problem, model)
    if _at_floor(problem, model, labels):
        return None
    patience = None if problem.time_limit is not None else REBALANCE_PATIENCE
    rng = np.random.default_rng([int(problem.random_seed) & 0xFFFFFFFF, 104729])
    # cuts judged on balance first, then on the workload they move from its initial territory
    # (a disruption far above the compactness term, which is scaled to about 1 per territory)
    recombination = Recombination(model, match_identities(model, labels, initial), rng,
                                  tolerance=model.tolerance_vector, initial=initial,
                                  disruption=1e3 * model.p / float(model.weight.sum()))

    polish = _rebalance_polish(model, initial, progress)

    found = recombination.run(deadline, progress.sub(0.0, 0.9), floor=floor, patience=patience,
                              temperature=REBALANCE_TEMPERATURE * float(np.min(model.tolerance)), polish=polish)
    found = polish(match_identities(model, found, initial))
    found = _reduce_disruption(model, found, initial, cap, progress)
    progress.step(1.0, "Rebalancing")
    valid = initial >= 0
    if cap is not None and int(np.sum(found[valid] != initial[valid])) > cap:
        return None
    return found


def _rebalance_polish(model: Model, initial: np.ndarray, progress: Progress):
    """polish(labels) -> labels: the disruption-charged search until within tolerance (no cap)."""

    def polish(plan):
        search = _rebalance_search(model, plan, initial, None)
        search.run(progress.quiet(), stop_when_balanced=True, levels=_REBALANCE_LEVELS)
        return search.labels

    return polish


def _reduce_disruption(model: Model, labels: np.ndarray, initial: np.ndarray, cap,
                       progress: Optional[Progress] = None) -> np.ndarray:
    """Changed units go back to their initial territory where balance allows: single returns,
    then the disruption-charged search to its end (exchanges and chains of returns), then
    single returns again. The plan's rank (worst deviation, total excess) never drops, and a
    plan within tolerance stays within."""
    key0 = plan_key(model.ratios(labels), model.active, model.tolerance_vector)
    out = undo_moves(model, labels, initial, model.tolerance_vector, rate=MOVE_RATE)
    search = _rebalance_search(model, out, initial, cap)
    search.max_moves_per_round = None
    search.run(None if progress is None else progress.quiet(), max_rounds=200, levels=[(BIG, 0.0)])
    key1 = plan_key(model.ratios(search.labels), model.active, model.tolerance_vector)
    if (within(key1) if within(key0) else not_worse(key1, key0)):
        out = undo_moves(model, search.labels, initial, model.tolerance_vector, rate=MOVE_RATE)
    if model.contiguous:
        # pairs of territories cut anew nearer their initial border
        rng = np.random.default_rng([model.random_seed & 0xFFFFFFFF, 15485863])
        deadline = CLOCK() + RECUT_SECONDS
        if progress is not None and progress.deadline is not None:
            deadline = min(deadline, progress.deadline)
        out = reduce_by_recuts(model, out, initial, model.tolerance_vector, rng, cap=cap, deadline=deadline,
                               check=None if progress is None else progress.check)
        out = undo_moves(model, out, initial, model.tolerance_vector, rate=MOVE_RATE)
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
    if progress.out_of_time():
        return [joined]
    flowed = flow_rebalance(model, joined, model.tolerance_vector, initial, cap, check=progress.check)
    search = _rebalance_search(model, flowed, initial, cap)
    search.run(progress.sub(0.98, 0.99), stop_when_balanced=True, levels=_REBALANCE_LEVELS)
    return [joined, _reduce_disruption(model, search.labels.copy(), initial, cap, progress)]


def _pick_rebalanced(model: Model, candidates: list, initial: np.ndarray) -> np.ndarray:
    """The best candidate among those that rank no lower than the first (the input): plans within
    tolerance rank first and among them the least workload moved wins; out of tolerance, the
    smallest ``out_of_band_cost`` (worst deviation, load beyond the bands and workload moved, so
    that moving much for a small gain loses). Ties: the earliest."""
    tolerance = model.tolerance_vector
    keys = [plan_key(model.ratios(c), model.active, tolerance) for c in candidates]

    def rank(i):
        if within(keys[i]):
            return (0, round(moved_load(model, candidates[i], initial), 12), i)
        return (1, round(out_of_band_cost(model, candidates[i], initial, tolerance), 12), i)

    ok = [i for i in range(len(candidates)) if i == 0 or not_worse(keys[i], keys[0])]
    return candidates[min(ok, key=rank)]


def _rebalance_search(model: Model, labels: np.ndarray, initial: np.ndarray, cap) -> LocalSearch:
    """Local search whose merit charges for every unit moved away from its initial territory."""
    disruption = 0.1 * BIG * model.p / model.n
    search = LocalSearch(model, labels, goal=model.tolerance_vector, initial=initial, disruption=disruption, cap=cap)
    search.max_moves_per_round = 0  # one move per territory off target per round: no needless moves
    search.focus_violated = True
    return search
