"""The one definition of balance, contiguity and compactness of a plan.

The toolbox and the engine take a plan's figures from :func:`plan_figures`. The panel keeps its
per-territory sums in step with every edit (core.plan.ledger), words their deviation with the same
:func:`relative_deviation`, and asks :func:`plan_figures` for what needs the whole plan (its
pieces), so the panel and the toolbox never disagree.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .graph import count_parts, join_islands, nearest_neighbour_graph, undirected
from .problem import PlanFigures, Problem


def balance_matrix(workloads) -> np.ndarray:
    """The measures that are balanced, as (n, m'): the workloads, or a column of ones if m == 0."""
    w = np.asarray(workloads, dtype=float)
    if w.ndim == 1:
        w = w.reshape(-1, 1)
    if w.shape[1] == 0:
        return np.ones((w.shape[0], 1))
    return w


def combined_weight(workloads) -> np.ndarray:
    """Weight of every unit for compactness: the mean over measures of workload / mean workload.

    Measures whose total is 0 are ignored; with no measure (m == 0) or only empty ones every
    unit weighs 1. The mean weight over units is 1 (when some measure is non-empty).
    """
    w = np.asarray(workloads, dtype=float)
    if w.ndim == 1:
        w = w.reshape(-1, 1)
    n = w.shape[0]
    if w.shape[1] == 0:
        return np.ones(n)
    totals = w.sum(axis=0)
    use = totals > 0
    if not np.any(use):
        return np.ones(n)
    return (w[:, use] / (totals[use] / n)).mean(axis=1)


def relative_deviation(sums, targets) -> np.ndarray:
    """(sum − target) / target, elementwise; 0 where the target is 0 (nothing to balance).

    The one deviation formula of the plugin: the engine, the panel, the previews and the reports
    all call this one (multiply by 100 for percent).
    """
    sums = np.asarray(sums, dtype=float)
    targets = np.asarray(targets, dtype=float)
    return np.where(targets > 0, (sums - targets) / np.where(targets > 0, targets, 1.0), 0.0)


def territory_targets(workloads, territory_count: int, target_shares=None, fixed_loads=None) -> np.ndarray:
    """(p, m') target of every territory on every balanced measure: total x share. ``fixed_loads``
    (p, m), when given, are part of the total (accounts overridden to a territory still count)."""
    b = balance_matrix(workloads)
    shares = _shares(territory_count, target_shares)
    totals = b.sum(axis=0)
    fixed = _fixed_loads(fixed_loads, territory_count, workloads)
    if fixed is not None:
        totals = totals + fixed.sum(axis=0)
    return shares[:, None] * totals[None, :]


def _shares(territory_count: int, target_shares) -> np.ndarray:
    p = int(territory_count)
    if target_shares is None:
        return np.full(p, 1.0 / p)
    s = np.asarray(target_shares, dtype=float).reshape(-1)
    return s / s.sum()


def plan_figures(
    labels,
    workloads,
    adjacency=None,
    positions=None,
    territory_count: Optional[int] = None,
    target_shares=None,
    tolerance=0.05,
    join_islands_first: bool = True,
    fixed_loads=None,
) -> PlanFigures:
    """Figures of a plan: workload sums, targets, deviations, pieces, centres, inertia.

    Call either ``plan_figures(labels, problem)`` or with arrays:
    ``plan_figures(labels, workloads, adjacency, positions, territory_count, target_shares, tolerance)``.

    labels          (n,) territory index per unit; values outside 0..p-1 (e.g. -1) are unassigned
                    and counted nowhere.
    workloads       (n, m); with m == 0 the unit count is the balanced measure.
    adjacency       (n, n) sparse; pieces are counted after joining islands to their nearest unit
                    (the engine's rule) unless ``join_islands_first`` is False. None: parts not
                    computed (reported as 1 for non-empty territories).
    positions       (n, 2) projected coordinates; None gives NaN centres and inertia.
    target_shares   (p,) relative targets (normalised to sum 1); default equal.
    fixed_loads     (p, m) workload each territory carries whatever its units (overridden accounts):
                    added to its sums and to the totals the targets share out.
    """
    if isinstance(workloads, Problem):
        problem = workloads
        adjacency = problem.adjacency
        if adjacency is None:  # the engine's rule: the six nearest units are neighbours
            adjacency = nearest_neighbour_graph(np.asarray(problem.positions, dtype=float))
        return plan_figures(
            labels,
            problem.workload_matrix(),
            adjacency,
            problem.positions,
            problem.territory_count,
            problem.seed_targets,
            problem.tolerance,
            join_islands_first,
            problem.fixed_load_matrix(),
        )
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    w = balance_matrix(workloads)
    n = w.shape[0]
    if labels.shape[0] != n:
        raise ValueError(f"labels has {labels.shape[0]} entries for {n} units")
    if territory_count is None:
        territory_count = int(labels.max()) + 1 if n else 0
    p = int(territory_count)
    ok = (labels >= 0) & (labels < p)
    lab = np.where(ok, labels, 0)
    sums = np.zeros((p, w.shape[1]))
    for a in range(w.shape[1]):
        sums[:, a] = np.bincount(lab[ok], w[ok, a], minlength=p)[:p]
    fixed = _fixed_loads(fixed_loads, p, workloads)
    if fixed is not None:
        sums += fixed
    targets = territory_targets(workloads, p, target_shares, fixed_loads)
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = relative_deviation(sums, targets)
    unit_count = np.bincount(lab[ok], minlength=p)[:p].astype(np.int64)

    if adjacency is not None:
        adj = undirected(adjacency, n)
        if join_islands_first and positions is not None:
            adj = join_islands(adj, np.asarray(positions, dtype=float)).adjacency
        labels_ok = np.where(ok, labels, -1)
        parts = count_parts(labels_ok, adj, p)
    else:
        parts = (unit_count > 0).astype(np.int64)

    cw = combined_weight(workloads)
    centres = np.full((p, 2), np.nan)
    inertia = np.full(p, np.nan)
    if positions is not None:
        pos = np.asarray(positions, dtype=float)
        centres, inertia = _centres_and_inertia(lab[ok], pos[ok], cw[ok], p)

    tol = np.asarray(tolerance, dtype=float)
    if tol.ndim and tol.size != deviation.shape[1]:
        tol = np.full(deviation.shape[1], float(tol.min()) if tol.size else 0.05)
    within = np.all(np.abs(deviation) <= tol + 1e-9, axis=1)
    return PlanFigures(
        sums=sums,
        targets=targets,
        deviation=deviation,
        unit_count=unit_count,
        parts=parts,
        contiguous=parts <= 1,
        centres=centres,
        inertia=inertia,
        max_deviation=float(np.abs(deviation).max()) if deviation.size else 0.0,
        noncontiguous=int(np.sum(parts > 1)),
        tolerance=float(tol) if tol.ndim == 0 else tol,
        within_tolerance=within,
    )


def _fixed_loads(fixed_loads, territory_count: int, workloads) -> Optional[np.ndarray]:
    """The fixed loads as (p, m), or None when there are none or no measure is balanced."""
    shape = np.shape(workloads)
    measures = shape[1] if len(shape) == 2 else (1 if np.size(workloads) else 0)
    if fixed_loads is None or measures == 0:
        return None
    return np.asarray(fixed_loads, dtype=float).reshape(int(territory_count), measures)


def _centres_and_inertia(labels: np.ndarray, pos: np.ndarray, weight: np.ndarray, p: int):
    """Weighted centre (plain mean when a territory's weight is 0) and weighted inertia."""
    wsum = np.bincount(labels, weight, minlength=p)[:p]
    count = np.bincount(labels, minlength=p)[:p]
    centres = np.full((p, 2), np.nan)
    for d in range(2):
        wx = np.bincount(labels, weight * pos[:, d], minlength=p)[:p]
        mx = np.bincount(labels, pos[:, d], minlength=p)[:p]
        with np.errstate(divide="ignore", invalid="ignore"):
            centres[:, d] = np.where(wsum > 0, wx / np.where(wsum > 0, wsum, 1), mx / np.maximum(count, 1))
    centres[count == 0] = np.nan
    if labels.size:
        d2 = ((pos - centres[labels]) ** 2).sum(axis=1)
        inertia = np.bincount(labels, weight * d2, minlength=p)[:p]
    else:
        inertia = np.zeros(p)
    return centres, inertia
