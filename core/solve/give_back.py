"""Giving back what balance does not need: a rebalanced plan moved fewer units if it could.

A search that brings a plan within tolerance moves some units it did not have to. Two ways take
them back without making the plan rank lower (worst deviation, then total excess; a plan within
tolerance stays within): changed units return to their initial territory one by one
(:func:`undo_moves`), and pairs of neighbouring territories are cut anew along a spanning tree
that follows their initial border, taking the cut that moves the least workload
(:func:`recut_pair`, repeated by :func:`reduce_by_recuts`). Locks, heavy pairs, contiguity and
the cap on changed units hold throughout.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .heavy_pairs import heavy_pairs
from .model import Model
from .quality import better, plan_key, within
from .rebalance import excess_load, unit_load
from .restarts import until_stale
from .tree_cut import TreeCuts, walk_tree


def undo_moves(model: Model, labels: np.ndarray, initial: np.ndarray, tolerance: np.ndarray,
               passes: int = 4, rate: float = 0.0) -> np.ndarray:
    """Send changed units back to their initial territory where the plan allows it.

    Heaviest first, a unit returns when its initial territory borders it, its current territory
    stays connected (when contiguity is asked) and non-empty, no heavy pair meets, and the plan
    stays within tolerance (or, when it is not, its rank does not drop: worst deviation, then
    total excess). Cuts the workload a search moved beyond what balance needs. With ``rate``,
    a plan out of tolerance also takes back a unit whose move removed less load beyond the bands
    than ``rate`` times its own load (the worst deviation still never rises): moves that buy
    little are undone.
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    initial = np.asarray(initial, dtype=np.int64)
    lists = model.neighbours.lists
    neighbours = model.neighbours
    heavy = heavy_pairs(model)
    load = unit_load(model)
    active = model.active
    ratios = model.ratios(labels)
    count = np.bincount(labels, minlength=model.p)

    def key_of(r):
        return plan_key(r, active, tolerance)

    current = key_of(ratios)
    for _ in range(passes):
        moved_any = False
        changed = np.flatnonzero((initial >= 0) & (labels != initial) & (model.locked < 0))
        for u in changed[np.lexsort((changed, -load[changed]))].tolist():
            a, b = int(labels[u]), int(initial[u])
            if b >= model.p or count[a] <= 1 or not any(labels[v] == b for v in lists[u]):
                continue
            f = model.frac[u]
            r = ratios.copy()
            r[a] -= f / model.share[a]
            r[b] += f / model.share[b]
            new = key_of(r)
            if within(current):
                if not within(new):
                    continue
            elif better(current, new):
                if rate <= 0 or new.worst > current.worst + 1e-9:
                    continue
                if excess_load(model, r, tolerance) - excess_load(model, ratios, tolerance) >= rate * load[u]:
                    continue
            if heavy and heavy.blocked(u, labels, b):
                continue
            if model.contiguous and not neighbours.removal_keeps_connected(u, labels):
                continue
            labels[u] = b
            ratios = r
            current = new
            count[a] -= 1
            count[b] += 1
            moved_any = True
        if not moved_any:
            break
    return labels


def _pair_state(ratios: np.ndarray, active: np.ndarray, tolerance: np.ndarray) -> tuple:
    """(worst |deviation| / tolerance, total excess) over the rows of ``ratios``."""
    deviation = np.abs(ratios[..., active] - 1.0)
    band = tolerance[active]
    worst = (deviation / np.maximum(band, 1e-6)).max(axis=-1)
    excess = np.maximum(deviation - band, 0.0).sum(axis=-1)
    return worst, excess


def recut_pair(model: Model, labels: np.ndarray, initial: np.ndarray, a: int, b: int,
               rng: np.random.Generator, tolerance: np.ndarray) -> Optional[tuple]:
    """The cut of territories a and b (together) along a spanning tree that moves the least
    workload away from its initial territory, among cuts no worse for balance than now.

    The tree prefers edges inside one initial territory (random weights below 1) to edges
    across (above 1), so it tends to cross the initial border once and its cuts run near it.
    Both sides of a tree cut are connected; locks and heavy pairs are respected.
    Returns (units, new labels of the units, moved workload before, after) or None.
    """
    units = np.flatnonzero((labels == a) | (labels == b))
    if units.size < 2:
        return None
    sub = model.adjacency[units][:, units].tocoo()
    if sub.nnz == 0:
        return None
    initial_here = initial[units]
    across = (initial_here[sub.row] != initial_here[sub.col]).astype(float)
    weights = rng.random(sub.nnz) * 0.9 + 0.05 + 2.0 * across
    upper = sub.row < sub.col
    graph = sp.csr_matrix((weights[upper], (sub.row[upper], sub.col[upper])), shape=(units.size, units.size))
    if connected_components(graph, directed=False)[0] > 1:
        return None
    cuts = TreeCuts(*walk_tree(graph, 0), units.size)
    load = unit_load(model)[units]
    assigned = initial_here >= 0
    # workload away from its initial territory when on a's side, on b's side
    away = np.column_stack([load * (assigned & (initial_here != a)), load * (assigned & (initial_here != b))])
    m = model.m
    inside, total = cuts.sums_below(np.column_stack([model.frac[units], away]))
    outside = total[None, :] - inside
    # orientation 1: the subtree goes to a; orientation 2: to b
    ratios_a = np.vstack([inside[:, :m], outside[:, :m]]) / model.share[a]
    ratios_b = np.vstack([outside[:, :m], inside[:, :m]]) / model.share[b]
    moved = np.concatenate([inside[:, m] + outside[:, m + 1], outside[:, m] + inside[:, m + 1]])
    worst_a, excess_a = _pair_state(ratios_a, model.active, tolerance)
    worst_b, excess_b = _pair_state(ratios_b, model.active, tolerance)
    worst = np.maximum(worst_a, worst_b)
    excess = excess_a + excess_b
    worst_now, excess_now = _pair_state(model.ratios(labels)[[a, b]], model.active, tolerance)
    worst_now, excess_now = float(worst_now.max()), float(excess_now.sum())
    allowed = (np.concatenate(cuts.keeps_locks(model.locked[units], a, (b,)))
               & (np.maximum(worst, 1.0) <= max(worst_now, 1.0) + 1e-9) & (excess <= excess_now + 1e-12))
    pairs = heavy_pairs(model)
    if pairs:
        for first, second in cuts.heavy_pairs_below(pairs, units):
            allowed &= np.tile(first != second, 2)
    if not np.any(allowed):
        return None
    moved_now = float((load * (assigned & (initial_here != labels[units]))).sum())
    candidates = np.flatnonzero(allowed)
    best = candidates[np.lexsort((candidates, excess[candidates], moved[candidates]))[0]]
    if moved[best] >= moved_now - 1e-12:
        return None
    return units, np.where(cuts.side(best), a, b).astype(np.int64), moved_now, float(moved[best])


def reduce_by_recuts(model: Model, labels: np.ndarray, initial: np.ndarray, tolerance: np.ndarray,
                     rng: np.random.Generator, deadline: Optional[float] = None, tries: Optional[int] = None,
                     cap: Optional[int] = None, check=None) -> np.ndarray:
    """Cut pairs of neighbouring territories anew nearer their initial border while balance
    stays as good: the plan's rank never drops and the workload moved falls with every step.
    Pairs holding the most moved workload are tried first; stops after ``tries`` attempts in a
    row without a gain, or at ``deadline`` (core.clock.CLOCK) (restarts.until_stale). ``check()``
    is called every step (it raises to cancel)."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    initial = np.asarray(initial, dtype=np.int64)
    p = model.p
    load = unit_load(model)
    assigned = initial >= 0

    def attempt() -> Optional[bool]:
        nonlocal labels
        pairs = model.territory_pairs(labels)
        if pairs.shape[0] == 0:
            return None
        moved = np.bincount(labels, load * (assigned & (labels != initial)), minlength=p)
        weight = moved[pairs[:, 0]] + moved[pairs[:, 1]]
        if not np.any(weight > 0):
            return None
        # mostly the pairs with the most moved workload, sometimes any pair with some
        top = np.flatnonzero(weight > 0)
        if rng.random() < 0.7:
            top = top[np.argsort(-weight[top], kind="stable")[: max(3, top.size // 4)]]
        pick = int(top[rng.integers(top.size)])
        out = recut_pair(model, labels, initial, int(pairs[pick, 0]), int(pairs[pick, 1]), rng, tolerance)
        if out is None:
            return False
        units, new, _before, _after = out
        trial = labels.copy()
        trial[units] = new
        if np.bincount(trial, minlength=p).min() == 0:
            return False
        if cap is not None and int(np.sum(assigned & (trial != initial))) > cap:
            return False
        labels = trial
        return True

    until_stale(attempt, int(tries if tries is not None else 4 * p + 20), deadline, check)
    return labels
