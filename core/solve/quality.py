"""How the engine ranks plans: worst deviation first, then the total excess beyond tolerance.

A plan is better than another when its worst relative deviation (over every territory and every
balanced measure, each measure judged against its own tolerance) is lower; on a tie, when the
total excess beyond the tolerance band is lower. Ranking by the total alone lets one territory
sit far off while many others are slightly better; ranking by the worst alone gives the search
no slope once the worst territory is stuck. Rebalancing never returns a plan that ranks below
its input under this order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Two plans whose figures differ by less than this are equally good (float noise).
EPS = 1e-9


class PlanKey(NamedTuple):
    """Rank of a plan; smaller is better (compare with :func:`better`)."""

    worst: float  # max |ratio - 1| / tolerance over territories and active measures (1 = at the edge)
    excess: float  # sum of (|ratio - 1| - tolerance)+ over territories and active measures
    worst_deviation: float  # max |ratio - 1| (plain fraction, for messages)


def tolerance_vector(tolerance, m: int) -> np.ndarray:
    """Per-measure tolerances as an (m,) array (a scalar applies to every measure)."""
    tol = np.asarray(tolerance, dtype=float).reshape(-1)
    if tol.size == 1:
        return np.full(m, float(tol[0]))
    return tol[:m].copy()


def plan_key(ratios: np.ndarray, active: np.ndarray, tolerance) -> PlanKey:
    """Key of a plan from its (p, m) ratios (load / target; 1 = on target)."""
    r = np.asarray(ratios, dtype=float)
    active = np.asarray(active, dtype=bool)
    if r.size == 0 or not np.any(active):
        return PlanKey(0.0, 0.0, 0.0)
    tol = tolerance_vector(tolerance, r.shape[1])
    dev = np.abs(r[:, active] - 1.0)
    t = tol[active]
    rel = dev / np.maximum(t, 1e-6)[None, :]
    # a fixed summation order (rows then columns) keeps the sum identical on every platform
    over = np.maximum(dev - t[None, :], 0.0)
    excess = float(sum(float(v) for v in over.sum(axis=1).tolist()))
    return PlanKey(float(rel.max()), excess, float(dev.max()))


def better(a: PlanKey, b: PlanKey) -> bool:
    """a ranks strictly above b (worst first, then total excess), ignoring float noise."""
    if a.worst < b.worst - EPS:
        return True
    if a.worst > b.worst + EPS:
        return False
    return a.excess < b.excess - EPS


def not_worse(a: PlanKey, b: PlanKey) -> bool:
    """a ranks at least as well as b."""
    return not better(b, a)


def within(key: PlanKey) -> bool:
    """Every territory within tolerance on every measure."""
    return key.worst <= 1.0 + EPS
