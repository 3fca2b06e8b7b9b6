"""Rebalancing when measures pull apart: border moves annealed, paying for the workload they move.

After a regional shift a plan balanced on two conflicting measures (accounts spread over small
towns, population in the metros) can rarely be repaired by handing load over border by border:
the flows move a mix of the two measures the receivers do not need, and the merge-and-resplit
cuts pairs anew without reaching the far side. The Build's border-move annealing
(core.solve.border_anneal) does reach the band, but it lays the plan out anew (on conflict-1000
it moved 47-60 % of the workload). Here every move away from a unit's initial territory costs
energy and every return earns it back; the charge starts high and falls stage by stage, so the
first stage that reaches the band is the one that moved least to get there (a continuation).
Between stages changed units go back where balance allows. Once the plan is within the band, a
last annealing lowers the workload moved without leaving it.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..clock import CLOCK
from ..progress import Progress
from .border_anneal import BorderAnneal
from .model import Model
from .quality import plan_key

#: Charge for moving the whole workload at the first stage, in tolerances of the annealing's
#: energy (about the worst deviation in tolerances), and its factor from stage to stage. At 28
#: moving a tenth of the workload costs 2.8 tolerances: the first stage only makes moves that pay
#: for themselves many times over.
FIRST_CHARGE = 28.0
CHARGE_FACTOR = 0.7
#: Stages at most (the charge falls to 28 × 0.7 ** 9 ≈ 1.1).
STAGES = 10
#: A chain ends after this many stages in a row that change nothing.
IDLE_STAGES = 2
#: Chains (each from the input) at most.
CHAINS = 64
#: Proposals of one stage per unit (a Build cooling has core.solve.border_anneal.SWEEP_PER_UNIT).
STAGE_PER_UNIT = 1000
#: The last annealing inside the band: proposals per unit, start and end temperature (in units of
#: the mean unit's workload).
SETTLE_PER_UNIT = 600
SETTLE_TEMPERATURE = 1.0
SETTLE_FINAL = 0.02


def border_rebalance(model: Model, labels: np.ndarray, initial: np.ndarray, rng: np.random.Generator,
                     deadline: float, progress: Progress, reduce: Callable, pick: Callable, goal: float = 0.99,
                     polish: Optional[Callable] = None) -> np.ndarray:
    """A plan from ``labels`` within ``goal`` tolerances that moves little workload away from
    ``initial``, or the best-balanced plan the stages reach by ``deadline`` (core.clock.CLOCK).

    The stages run from ``labels`` with a falling charge until one reaches the band or two in a
    row find nothing better; then, while time is left, again from ``labels`` (the search is
    random: a second chain often ends elsewhere).

    ``reduce(labels) -> labels`` (after every stage and at the end of a chain) takes changed units
    back where balance allows, never ranking lower: sending them back and cutting pairs anew
    between stages lets the next stage start nearer the initial plan (georgia-8 after the 40 %
    shift reached the band only so). ``pick(plans) -> plan`` chooses among the chains' results;
    ``polish`` is handed to the annealing (core.solve.border_anneal.BorderAnneal.run)."""
    start = np.asarray(labels, dtype=np.int64).copy()
    found = []
    while CLOCK() < deadline and len(found) < CHAINS:
        span = progress.sub(len(found) / CHAINS, (len(found) + 1) / CHAINS)
        plan = _chain(model, start, initial, rng, deadline, span, reduce, goal, polish)
        found.append(plan)
        if _reached(model, plan, goal):
            break
    return pick(found) if found else start


def _chain(model: Model, start: np.ndarray, initial: np.ndarray, rng: np.random.Generator, deadline: float,
           progress: Progress, reduce: Callable, goal: float, polish: Optional[Callable]) -> np.ndarray:
    tolerance = model.tolerance_vector
    plan = start
    charge = FIRST_CHARGE
    proposals = int(STAGE_PER_UNIT * model.n)
    idle = 0
    for stage in range(STAGES):
        if CLOCK() >= deadline or idle >= IDLE_STAGES:
            break
        progress.check()
        moves = BorderAnneal(model, plan, rng, tolerance=tolerance, initial=initial, disruption=charge)
        span = progress.sub(stage / STAGES, (stage + 1) / STAGES)
        found = reduce(moves.run(deadline, span, goal=goal, sweep=proposals, max_proposals=proposals, fit=True,
                                 afford=0.0, polish=polish))
        idle = idle + 1 if np.array_equal(found, plan) else 0
        plan = found
        if _reached(model, plan, goal):
            break
        charge *= CHARGE_FACTOR
    if CLOCK() < deadline:
        moves = BorderAnneal(model, plan, rng, tolerance=tolerance, initial=initial, disruption=1.0)
        plan = moves.settle(deadline, goal=goal, temperature=SETTLE_TEMPERATURE, final_temperature=SETTLE_FINAL,
                            proposals=int(SETTLE_PER_UNIT * model.n), check=progress.check)
    return reduce(plan)


def _reached(model: Model, plan: np.ndarray, goal: float) -> bool:
    """Every territory within the band (or within ``goal`` tolerances, the proven floor, when that is
    higher). The annealing aims at ``goal`` (a little inside the band); taking changed units back may
    then leave the plan between ``goal`` and the band, which ends the chain too: a further stage would
    only move more (conflict-1000: 33.1 % of the workload instead of 42.3 %)."""
    return plan_key(model.ratios(plan), model.active, model.tolerance_vector).worst <= max(goal, 1.0) + 1e-9
