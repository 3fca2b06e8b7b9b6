"""Territory goals (quotas) set top-down from a total: each territory's share of a basis (a
potential field or the workload index), optionally blended with its share of last period's sales,
held between a floor and a cap, and rounded so the goals add up to the total exactly.

Pure numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..problem import ProblemError

#: relative slack when comparing money amounts (a goal "at" its cap, a total that "is" a multiple)
_SLACK = 1e-9


class GoalError(ProblemError):
    """The goals cannot be set as asked; the message names the input and the fix."""


@dataclass
class Goals:
    """Goals per territory (in the order of the basis given).

    goals       the goals: multiples of ``round_to`` that add up to the total exactly
    shares      each territory's blended share of the total before floor and cap (sums to 1)
    unrounded   the goals after floor and cap, before rounding
    at_floor    territories held up by the floor
    at_cap      territories held down by the cap
    """

    goals: np.ndarray
    shares: np.ndarray
    unrounded: np.ndarray
    at_floor: np.ndarray
    at_cap: np.ndarray


def blended_shares(basis, history=None, history_weight: float = 0.0, basis_name: str = "basis",
                   history_name: str = "history", names: Sequence[str] | None = None) -> np.ndarray:
    """Each territory's share: (1 − w) × its share of ``basis`` + w × its share of ``history``.

    Raises :class:`GoalError` for missing or negative values, a weight outside 0…1, a basis that
    is 0 for every territory, or a history that is 0 everywhere while it has weight.
    """
    basis = _checked(basis, basis_name, names)
    if not basis.sum() > 0:
        raise GoalError(
            f"The goal basis “{basis_name}” is 0 for every territory, so no territory has a share of the total "
            f"goal. Choose a basis that holds the potential (or the index), or check that the field is filled.")
    weight = float(history_weight)
    if not (0.0 <= weight <= 1.0) or not math.isfinite(weight):
        raise GoalError(
            f"The history weight is {history_weight}; it is the share of last period's sales in the blend, from 0 "
            f"(basis only) to 1 (history only), e.g. 0.4.")
    shares = basis / basis.sum()
    if history is None or weight == 0.0:
        return shares
    history = _checked(history, history_name, names)
    if not history.sum() > 0:
        raise GoalError(
            f"The history field “{history_name}” is 0 for every territory, so last period's shares cannot be "
            f"blended in. Check the field, or set the history weight to 0.")
    return (1.0 - weight) * shares + weight * history / history.sum()


def set_goals(basis, total_goal: float, history=None, history_weight: float = 0.0, floor: float | None = None,
              cap: float | None = None, round_to: float = 1.0, basis_name: str = "basis",
              history_name: str = "history", names: Sequence[str] | None = None) -> Goals:
    """Goals for territories from ``total_goal`` split by :func:`blended_shares`.

    ``floor`` and ``cap`` are percentages of the average goal (total / territories): no goal goes
    below floor % or above cap % of it (None: no bound). Goals are the shares clipped to the bounds
    with one common scale, so territories between the bounds keep the proportions of their shares
    and the rest of the total is spread over them. ``round_to`` (> 0) is the step of the goals; the
    total must be a multiple of it; the rounded goals add up to the total exactly (largest
    remainder) and stay within the bounds wherever the step allows.
    """
    total = _checked_total(total_goal)
    step = _checked_step(round_to, total)
    shares = blended_shares(basis, history, history_weight, basis_name, history_name, names)
    p = len(shares)
    low, high = _bounds(floor, cap, total, p)
    unrounded = _clip_proportionally(shares, total, low, high)
    goals = _round_exactly(unrounded, total, step, low, high)
    slack = _SLACK * max(total, 1.0)
    return Goals(goals=goals, shares=shares, unrounded=unrounded,
                 at_floor=(unrounded <= low + slack) & (low > 0), at_cap=unrounded >= high - slack)


# --- checks -----------------------------------------------------------------------------------


def _checked(values, name: str, names: Sequence[str] | None) -> np.ndarray:
    values = np.asarray(values, dtype=float).reshape(-1)
    if values.size == 0:
        raise GoalError("There are no territories to set goals for; give a layer with a territory code.")
    for bad, what, fix in ((~np.isfinite(values), "has no value (NULL)", "fill it in (0 where there is nothing)"),
                           (values < 0, "is negative", "goal bases and sales are zero or more")):
        where = np.flatnonzero(bad)
        if where.size:
            listed = ", ".join(str(names[k]) if names is not None else str(k) for k in where[:10])
            raise GoalError(f"“{name}” {what} for territories {listed}; {fix}.")
    return values


def _positive_number(value, what: str, fix: str) -> float:
    """``value`` as a finite number above 0; else a GoalError naming ``what`` it is and how to ``fix`` it."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GoalError(f"{what} must be a number, got {value!r}.") from None
    if not math.isfinite(number) or number <= 0:
        raise GoalError(f"{what} is {value}; {fix}.")
    return number


def _checked_total(total_goal) -> float:
    return _positive_number(total_goal, "The total goal", "give the amount to split, above 0 (e.g. 12000000)")


def _checked_step(round_to, total: float) -> float:
    step = _positive_number(round_to, "Round to", "give the step of the goals above 0 (1 for whole numbers, 1000 …)")
    steps = total / step
    if abs(steps - round(steps)) > max(1e-6, 1e-12 * steps):
        lower, upper = math.floor(steps) * step, math.ceil(steps) * step
        raise GoalError(
            f"The total goal {total:,.10g} is not a multiple of the rounding step {step:,.10g}, so rounded goals "
            f"cannot add up to it exactly. Make the total {lower:,.10g} or {upper:,.10g}, or round to a smaller step.")
    return step


def _bounds(floor, cap, total: float, p: int) -> tuple[float, float]:
    average = total / p
    low = 0.0 if floor is None else float(floor)
    high = math.inf if cap is None else float(cap)
    if not math.isfinite(low) or low < 0:
        raise GoalError(f"The floor is {floor}; give a percentage of the average goal of 0 or more (e.g. 80).")
    if low > 100.0 + _SLACK:
        raise GoalError(
            f"A floor of {low:g} % of the average goal for every territory adds up to more than the total goal. "
            f"Give a floor of at most 100 %.")
    if math.isnan(high) or high < 100.0 - _SLACK:
        raise GoalError(
            f"A cap of {cap} % of the average goal for every territory adds up to less than the total goal. Give a "
            f"cap of at least 100 %, or none.")
    return low / 100.0 * average, high / 100.0 * average


# --- floor and cap ------------------------------------------------------------------------------


def _clip_proportionally(shares: np.ndarray, total: float, low: float, high: float) -> np.ndarray:
    """clip(scale × share, low, high) with the scale that makes the goals add up to ``total``.

    The sum grows with the scale, so bisection finds it; the territories left between the bounds
    then share what the clamped ones leave, exactly in proportion to their shares. Territories
    without a share get the floor; if the capped ones and the floor cannot reach the total, the
    territories without a share take the rest equally.
    """
    positive = shares > 0
    goals = np.where(positive, 0.0, low)

    def spread(scale: float) -> np.ndarray:
        return np.clip(scale * shares, low, high)

    top = float(np.max(np.where(positive, high / np.where(positive, shares, 1.0), 0.0)))
    if not math.isfinite(top):
        top = total / float(shares[positive].min())
    if spread(top)[positive].sum() + goals[~positive].sum() < total * (1 - _SLACK):
        goals[positive] = high
        goals[~positive] = _equal_fill(total - high * positive.sum(), int((~positive).sum()), low, high)
        return goals
    below, above = 0.0, top
    for _ in range(200):
        middle = 0.5 * (below + above)
        if np.where(positive, spread(middle), low).sum() < total:
            below = middle
        else:
            above = middle
    goals = np.where(positive, spread(above), low)
    # exact last step: the territories between the bounds share the rest in proportion
    slack = _SLACK * max(total, 1.0)
    free = positive & (goals > low + slack) & (goals < high - slack)
    if free.any():
        rest = total - goals[~free].sum()
        goals[free] = rest * shares[free] / shares[free].sum()
    return goals


def _equal_fill(rest: float, count: int, low: float, high: float) -> np.ndarray:
    return np.full(count, min(max(rest / max(count, 1), low), high))


# --- rounding -----------------------------------------------------------------------------------


def _round_exactly(goals: np.ndarray, total: float, step: float, low: float, high: float) -> np.ndarray:
    """Goals in whole steps adding up to ``total``: each rounded down, then the steps still
    missing go to the largest remainders (or, when rounding down overshoots because of the floor,
    are taken from the smallest); steps stay within [low, high] when the step allows it."""
    target = int(round(total / step))
    units = goals / step
    low_steps = math.ceil(low / step - 1e-9)
    high_steps = math.floor(high / step + 1e-9) if math.isfinite(high) else target
    if low_steps * len(goals) > target or high_steps * len(goals) < target:
        low_steps, high_steps = 0, target  # the step is too coarse for the bounds: keep the total exact
    counts = np.clip(np.floor(units + 1e-9).astype(np.int64), low_steps, high_steps)
    remainder = units - counts
    missing = target - int(counts.sum())
    # the largest remainder first, then the larger goal, then the earlier territory: no ties left
    order = np.lexsort((np.arange(len(goals)), -units, -remainder))
    while missing > 0:
        raised = [k for k in order if counts[k] < high_steps][:missing]
        if not raised:
            break
        counts[raised] += 1
        missing -= len(raised)
    order = np.lexsort((np.arange(len(goals)), units, remainder))
    while missing < 0:
        lowered = [k for k in order if counts[k] > low_steps][:-missing]
        if not lowered:
            break
        counts[lowered] -= 1
        missing += len(lowered)
    decimals = max(0, -math.floor(math.log10(step))) + 2 if step < 1 else 0
    return np.round(counts * step, decimals)
