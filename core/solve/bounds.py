"""Proven bounds: how good any plan can be.

:func:`deviation_lower_bounds` bounds the worst deviation of every plan from the units' sizes
alone; every Build and Rebalance reports it (``Plan.lower_bounds``, the ``lower_bound``
diagnostic) and stops searching once a plan reaches it. For the benchmark's quality
certificates, :func:`lp_lower_bound` bounds compactness through the LP relaxation of balanced
location–allocation with centres at units:
    min  sum_ij weight_i d_ij^2 x_ij
    s.t. sum_j x_ij = 1,  x_ij <= y_j,  sum_j y_j = p,
         (1 - tol) * Tmin_a * y_j <= sum_i w_ia x_ij <= (1 + tol) * Tmax_a * y_j   for every measure a,
with weight = combined_weight (as in the plan figures) and Tmin/Tmax the smallest/largest territory
target (equal targets unless seed_targets differ). Contiguity is left out, so the bound holds for
every plan within tolerance. :func:`plan_cost_best_unit_centres` is the matching objective of a plan.
The LP bound is meant for small instances (n up to ~500; the LP has n^2 assignment variables).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.optimize import minimize
from scipy.spatial import cKDTree

from ..clock import CLOCK
from ..metrics import balance_matrix, combined_weight, territory_targets
from ..problem import Problem


def lp_lower_bound(problem: Problem, time_limit: Optional[float] = None) -> float:
    """A proven lower bound (m^2 x weight) on the LP relaxation of the model above.

    Computed through the Lagrangian dual (assignment and balance rows relaxed): any multipliers
    give a valid bound, and the best one equals the LP optimum. The multipliers are optimised on an
    entropy-smoothed dual with L-BFGS-B and the bound is then evaluated exactly, so the value is
    always a true lower bound and in practice within a fraction of a percent of the LP optimum.
    (SciPy 1.15 rewrote L-BFGS-B: the multipliers, and so the bound's last digits, differ between
    releases, but every release's value is proven. No plan depends on it.)
    Returns NaN when the balance band cannot be met even with fractional assignments. ``time_limit`` (seconds) caps the
    optimisation; the best bound found so far is returned.
    """
    problem.validate()
    start = CLOCK()
    data = _bound_data(problem)
    n, m = data["n"], data["m"]
    cost = data["cost"]
    best = -np.inf
    x = np.zeros(n + 2 * n * m)
    x[:n] = np.sort(cost, axis=1)[:, 1]  # a unit pays about its second-nearest cost
    for eps in (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5):
        if time_limit is not None and CLOCK() - start > time_limit:
            break
        res = minimize(
            _smoothed_dual,
            x,
            args=(data, eps),
            jac=True,
            method="L-BFGS-B",
            bounds=[(None, None)] * n + [(0.0, None)] * (2 * n * m),
            options={"maxiter": 400, "ftol": 1e-13, "gtol": 1e-10},
        )
        x = np.asarray(res.x)
        best = max(best, _exact_dual(x, data))
    # costs are scaled to at most 1 per unit, so a feasible LP is worth at most n: beyond that the
    # dual is running off to infinity (the band cannot be met even fractionally)
    if not np.isfinite(best) or best > n:
        return float("nan")
    return float(best) * data["scale"]


def _bound_data(problem: Problem) -> dict:
    pos = np.asarray(problem.positions, dtype=float)
    pos = pos - pos.mean(axis=0)
    n = pos.shape[0]
    p = int(problem.territory_count)
    w = problem.workload_matrix()
    bal = balance_matrix(w)
    targets = territory_targets(w, p, problem.seed_targets)
    use = bal.sum(axis=0) > 0
    bal, targets = bal[:, use], targets[:, use]
    tol = float(problem.tolerance)
    weight = combined_weight(w)
    norm = targets.max(axis=0)
    cost = weight[:, None] * ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(axis=2)
    scale = float(cost.max()) or 1.0
    return {
        "n": n,
        "p": p,
        "m": bal.shape[1],
        "cost": cost / scale,  # [i, j]: unit i served by centre j
        "wa": bal / norm,
        "upper": (1.0 + tol) * targets.max(axis=0) / norm,
        "lower": (1.0 - tol) * targets.min(axis=0) / norm,
        "scale": scale,
    }


def _split(x, n, m):
    u = x[:n]
    alpha = x[n:n + n * m].reshape(n, m)  # upper band multipliers per centre
    gamma = x[n + n * m:].reshape(n, m)  # lower band multipliers per centre
    return u, alpha, gamma


def _exact_dual(x, data) -> float:
    """Lagrangian value: sum u + the p smallest centre values (a valid LP lower bound)."""
    n, m, p = data["n"], data["m"], data["p"]
    u, alpha, gamma = _split(x, n, m)
    wa = data["wa"]
    red = data["cost"] - u[:, None] + wa @ (alpha - gamma).T
    rho = np.minimum(red, 0.0).sum(axis=0) + gamma @ data["lower"] - alpha @ data["upper"]
    return float(u.sum() + np.sort(rho)[:p].sum())


def _smoothed_dual(x, data, eps):
    """Negated entropy-smoothed Lagrangian and its gradient (for minimisation)."""
    n, m, p = data["n"], data["m"], data["p"]
    u, alpha, gamma = _split(x, n, m)
    wa = data["wa"]
    red = data["cost"] - u[:, None] + wa @ (alpha - gamma).T
    # smooth min(0, r) = -eps * log(1 + exp(-r / eps)); derivative s = sigmoid(-r / eps)
    z = -red / eps
    soft = -eps * np.logaddexp(0.0, z)
    s = 0.5 * (1.0 + np.tanh(0.5 * z))
    rho = soft.sum(axis=0) + gamma @ data["lower"] - alpha @ data["upper"]
    # smooth choice of p centres: y_j = sigmoid((theta - rho_j) / eps), sum y = p
    y, value_sel = _smooth_select(rho, p, eps)
    value = u.sum() + value_sel
    sy = s * y[None, :]
    g_u = 1.0 - sy.sum(axis=1)
    load = sy.T @ wa  # (centres, m)
    g_alpha = load - y[:, None] * data["upper"][None, :]
    g_gamma = -load + y[:, None] * data["lower"][None, :]
    grad = np.concatenate([g_u, g_alpha.ravel(), g_gamma.ravel()])
    return -value, -grad


def _smooth_select(rho, p, eps):
    """min over 0<=y<=1, sum y = p of y.rho + eps * binary entropy; returns (y, value)."""
    lo = float(rho.min()) - 50 * eps
    hi = float(rho.max()) + 50 * eps
    for _ in range(100):
        theta = 0.5 * (lo + hi)
        y = 0.5 * (1.0 + np.tanh(0.5 * (theta - rho) / eps))
        if y.sum() > p:
            hi = theta
        else:
            lo = theta
    theta = 0.5 * (lo + hi)
    t = (theta - rho) / eps
    y = 0.5 * (1.0 + np.tanh(0.5 * t))
    # value = sum y rho + eps * sum [y log y + (1-y) log(1-y)] = theta * p - eps * sum log(1 + exp(t))
    value = theta * p - eps * np.logaddexp(0.0, t).sum()
    return y, float(value)


def plan_cost_best_unit_centres(labels, problem: Problem) -> float:
    """Sum over territories of weight x squared distance to the territory's best centre unit.

    The best centre unit of a territory is the unit closest to its weighted centre (any unit may
    serve, as in the bounded model); the cost is its inertia plus weight x that offset squared.
    """
    labels = np.asarray(labels, dtype=np.int64)
    pos = np.asarray(problem.positions, dtype=float)
    pos = pos - pos.mean(axis=0)
    p = int(problem.territory_count)
    weight = combined_weight(problem.workload_matrix())
    ok = (labels >= 0) & (labels < p)
    lab, xy, wt = labels[ok], pos[ok], weight[ok]
    wsum = np.bincount(lab, wt, minlength=p)
    total = 0.0
    tree = cKDTree(pos)
    for k in np.flatnonzero(wsum > 0).tolist():
        mask = lab == k
        centre = (wt[mask, None] * xy[mask]).sum(axis=0) / wsum[k]
        inertia = float((wt[mask] * ((xy[mask] - centre) ** 2).sum(axis=1)).sum())
        dist, _ = tree.query(centre)
        total += inertia + float(wsum[k]) * float(dist) ** 2
    return total


def deviation_lower_bounds(problem: Problem) -> tuple:
    """Proven lower bounds on the worst |deviation| of any plan, per balanced measure.

    Returns (bounds (m',), units: list of unit-index lists, reasons: list of str) where ``units[a]``
    are the units that prove ``bounds[a]`` and ``reasons[a]`` says how ("single" or "pair"):
    - single: a unit alone overshoots the largest territory target (the territory holding it is
      off by at least that much);
    - pair: of the p + 1 largest units two must share a territory (p territories), so the two
      smallest of them together overshoot the largest target at least that much.
    Contiguity and locks are not used, so the bounds hold for every plan. 0 = nothing proven.
    """
    w = balance_matrix(problem.workload_matrix())
    p = int(problem.territory_count)
    targets = territory_targets(problem.workload_matrix(), p, problem.seed_targets)
    m = w.shape[1]
    bounds = np.zeros(m)
    units: list = [[] for _ in range(m)]
    reasons = [""] * m
    for a in range(m):
        tmax = float(targets[:, a].max()) if targets.size else 0.0
        if tmax <= 0 or w.shape[0] == 0:
            continue
        order = np.argsort(-w[:, a], kind="stable")
        single = float(w[order[0], a]) / tmax - 1.0
        over = order[w[order, a] > tmax]
        best, who, why = 0.0, [], ""
        if single > 0:
            best, who, why = single, over.tolist(), "single"
        if w.shape[0] > p:
            pair = float(w[order[p - 1], a] + w[order[p], a]) / tmax - 1.0
            if pair > best + 1e-12:
                best, who, why = pair, order[: p + 1].tolist(), "pair"
        bounds[a], units[a], reasons[a] = max(best, 0.0), who, why
    return bounds, units, reasons
