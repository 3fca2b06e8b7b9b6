"""Quality certificates for benchmarks: an LP lower bound on compactness and the matching plan cost.

The model bounded is balanced location–allocation with centres at units:
    min  sum_ij weight_i d_ij^2 x_ij
    s.t. sum_j x_ij = 1,  x_ij <= y_j,  sum_j y_j = p,
         (1 - tol) * Tmin_a * y_j <= sum_i w_ia x_ij <= (1 + tol) * Tmax_a * y_j   for every measure a,
with weight = combined_weight (as in the plan figures) and Tmin/Tmax the smallest/largest territory
target (equal targets unless seed_targets differ). Contiguity is left out, so the bound holds for
every plan within tolerance. :func:`plan_cost_best_unit_centres` is the matching objective of a plan.
Intended for small instances (n up to ~500; the LP has n^2 assignment variables).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.spatial import cKDTree

from .metrics import balance_matrix, combined_weight, territory_targets
from .problem import Problem


def lp_lower_bound(problem: Problem, time_limit: Optional[float] = None) -> float:
    """LP relaxation value (m^2 x weight) of the model above; NaN if HiGHS did not prove optimality."""
    problem.validate()
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

    d2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(axis=2)
    cost_x = (weight[:, None] * d2).ravel()  # x_ij at column i * n + j
    scale = float(cost_x.max()) or 1.0
    nx = n * n
    ny = n
    c = np.concatenate([cost_x / scale, np.zeros(ny)])

    ii, jj = np.divmod(np.arange(nx), n)
    # sum_j x_ij = 1
    a_assign = sp.csr_matrix((np.ones(nx), (ii, np.arange(nx))), shape=(n, nx + ny))
    # sum_j y_j = p
    a_count = sp.csr_matrix((np.ones(ny), (np.zeros(ny, dtype=int), nx + np.arange(ny))), shape=(1, nx + ny))
    a_eq = sp.vstack([a_assign, a_count]).tocsr()
    b_eq = np.concatenate([np.ones(n), [float(p)]])

    # x_ij - y_j <= 0
    rows = np.concatenate([np.arange(nx), np.arange(nx)])
    cols = np.concatenate([np.arange(nx), nx + jj])
    vals = np.concatenate([np.ones(nx), -np.ones(nx)])
    blocks = [sp.csr_matrix((vals, (rows, cols)), shape=(nx, nx + ny))]
    b_ub = [np.zeros(nx)]
    for a in range(bal.shape[1]):
        tmin = targets[:, a].min()
        tmax = targets[:, a].max()
        norm = tmax  # keep coefficients near 1
        wa = bal[ii, a] / norm
        # sum_i w_ia x_ij - (1 + tol) Tmax y_j <= 0
        blocks.append(
            sp.csr_matrix(
                (
                    np.concatenate([wa, np.full(ny, -(1.0 + tol) * tmax / norm)]),
                    (np.concatenate([jj, np.arange(ny)]), np.concatenate([np.arange(nx), nx + np.arange(ny)])),
                ),
                shape=(ny, nx + ny),
            )
        )
        b_ub.append(np.zeros(ny))
        # (1 - tol) Tmin y_j - sum_i w_ia x_ij <= 0
        blocks.append(
            sp.csr_matrix(
                (
                    np.concatenate([-wa, np.full(ny, (1.0 - tol) * tmin / norm)]),
                    (np.concatenate([jj, np.arange(ny)]), np.concatenate([np.arange(nx), nx + np.arange(ny)])),
                ),
                shape=(ny, nx + ny),
            )
        )
        b_ub.append(np.zeros(ny))
    a_ub = sp.vstack(blocks).tocsr()
    options = {}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)
    res = linprog(
        c,
        A_ub=a_ub,
        b_ub=np.concatenate(b_ub),
        A_eq=a_eq,
        b_eq=b_eq,
        bounds=(0.0, 1.0),
        method="highs",
        options=options,
    )
    if res.status != 0:
        return float("nan")
    return float(res.fun) * scale


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
