"""Rebalancing by flows: move only the load the excess requires, across the territory graph.

After a shift of workload some territories sit above their band and others below. The least
disruptive fix moves load from the first to the second along the territory graph (territories
that share a border), through territories in between when they are not neighbours. This module
first solves that as a small linear program over the territory graph (a transportation problem:
how much load crosses each border, every territory ending inside its band, as little load moved
as possible), then realises every border flow by handing over boundary units of the donor that
keep it connected, nearest the receiver first, until the flow is carried. Locks, heavy pairs that
may never share a territory and the cap on changed units are kept. The caller polishes the result
with the disruption-charged local search and keeps whichever plan ranks best.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment, linprog

from ..graph import territory_walk
from .heavy_pairs import heavy_pairs
from .model import Model
from .quality import plan_key

#: The flows aim a little inside the tolerance for territories now outside it, so that handing
#: over whole units does not leave them just beyond the edge.
BAND_FRACTION = 0.95
#: Weight of a unit of excess left beyond the band against a unit of load moved (the LP stays
#: feasible whatever the locks and borders allow and moves load only where it removes excess).
SLACK_COST = 50.0
#: Flows smaller than this share of the total are not realised.
MIN_FLOW = 1e-9
#: Units may join territories up to this many steps away (chains of hand-overs go further).
HOPS = 1
#: A cut unit may take at most this many units with it.
BUNDLE_LIMIT = 40
#: Out of tolerance, moving load must pay for itself: a plan that moves more of the workload
#: (share of the total) ranks higher only when it removes at least MOVE_RATE times as much load
#: beyond the band, or lowers the worst deviation by 1 / WORST_WEIGHT of what it moves more
#: (a point of worst deviation is worth WORST_WEIGHT / MOVE_RATE = 10 points of workload moved).
MOVE_RATE = 0.25
WORST_WEIGHT = 2.5
#: Out of tolerance, the result keeps a changed unit only where taking it back would add at least
#: KEEP_RATE times its workload to the load beyond the bands (the worst deviation never rises).
#: Stricter than MOVE_RATE, which the searches use so that they can pass through plans that move
#: more on their way to the band: at a plan's proven floor, a hand move undone plus one more unit
#: that buys little beyond the band is no better for the user than the undo alone.
KEEP_RATE = 0.5


def unit_load(model: Model) -> np.ndarray:
    """(n,) the load the flows count: the mean share of the total over the active measures."""
    active = model.active.astype(float)
    return (model.frac * active[None, :]).sum(axis=1) / max(float(active.sum()), 1.0)


def excess_load(model: Model, ratios: np.ndarray, tolerance: np.ndarray) -> float:
    """Load beyond the bands (share of the total, mean over the active measures)."""
    active = np.flatnonzero(model.active)
    if active.size == 0:
        return 0.0
    dev = np.abs(np.asarray(ratios)[:, active] - 1.0)
    over = np.maximum(dev - np.asarray(tolerance)[active][None, :], 0.0) * model.share[:, None]
    # a fixed summation order keeps the sum identical on every platform
    return float(sum(float(v) for v in over.sum(axis=1).tolist())) / active.size


def moved_load(model: Model, labels: np.ndarray, initial: np.ndarray) -> float:
    """Workload (share of the total, mean over the active measures) away from its initial territory."""
    changed = np.flatnonzero((initial >= 0) & (labels != initial))
    return float(sum(float(v) for v in unit_load(model)[changed].tolist()))


def out_of_band_cost(model: Model, labels: np.ndarray, initial: np.ndarray, tolerance: np.ndarray) -> float:
    """How a plan out of tolerance ranks against others (smaller is better): its worst deviation,
    the load beyond the bands and the workload it moves, weighed by WORST_WEIGHT and MOVE_RATE."""
    ratios = model.ratios(labels)
    key = plan_key(ratios, model.active, tolerance)
    return (WORST_WEIGHT * key.worst_deviation + excess_load(model, ratios, tolerance)
            + MOVE_RATE * moved_load(model, labels, initial))


def unit_flows(model: Model, labels: np.ndarray, tolerance: np.ndarray, hops: int = HOPS,
               band_fraction: float = BAND_FRACTION) -> tuple:
    """Which units should change territory: the LP relaxation of least-workload rebalancing.

    Every movable unit may join any territory within ``hops`` steps of it (x[u, b] in [0, 1],
    at most 1 in all). The program minimises the load moved (plus a little for units far from
    the receiver) plus SLACK_COST times the excess left beyond each territory's band
    (tolerance × ``band_fraction`` for territories now outside their tolerance, the tolerance for
    the others), with the exact measures of every unit, so it picks units whose mix of measures
    helps. Returns (pairs (E, 2) donor -> receiver, flow (E,) load to carry across, unit (C,),
    receiver (C,), x (C,)); loads in units of ``unit_load``.
    """
    n, p = model.n, model.p
    load = unit_load(model)
    movable = model.locked < 0
    onehot = sp.csr_matrix((np.ones(n), (np.arange(n), labels)), shape=(n, p))
    step = (model.adjacency + sp.identity(n, format="csr")).tocsr()
    reach = onehot
    for _ in range(hops):
        reach = (step @ reach).tocsr()
        reach.data[:] = 1.0
    coo = reach.tocoo()
    keep = (coo.col != labels[coo.row]) & movable[coo.row]
    unit, recv = coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64)
    order = np.lexsort((recv, unit))
    unit, recv = unit[order], recv[order]
    empty = (np.zeros((0, 2), dtype=np.int64), np.zeros(0), unit, recv, np.zeros(unit.size))
    c_n = unit.size
    if c_n == 0:
        return empty
    donor = labels[unit]
    # cost: the load moved, a little more far from the receiver's centre, never quite zero
    w = model.weight
    wsum = np.maximum(np.bincount(labels, w, minlength=p), 1e-300)
    centre = np.column_stack([np.bincount(labels, w * model.xy[:, d], minlength=p) / wsum for d in range(2)])
    d_own = ((model.xy[unit] - centre[donor]) ** 2).sum(axis=1)
    d_new = ((model.xy[unit] - centre[recv]) ** 2).sum(axis=1)
    r2 = float(np.average(((model.xy - centre[labels]) ** 2).sum(axis=1), weights=w)) or 1.0
    extra = np.maximum(d_new - d_own, 0.0) / r2
    floor = 1e-4 / n
    cost_x = (load[unit] + floor) * (1.0 + 0.1 * extra)

    active = np.flatnonzero(model.active)
    ratios = model.ratios(labels)
    dev = np.abs(ratios - 1.0)
    off = np.any(dev[:, active] > tolerance[active][None, :] + 1e-12, axis=1)
    band = np.where(off[:, None], band_fraction * tolerance[None, :], tolerance[None, :])
    na = active.size
    rows, cols, vals = [], [], []
    # rows 0 .. n-1: every unit moves at most once
    rows.append(unit)
    cols.append(np.arange(c_n))
    vals.append(np.ones(c_n))
    rhs = [np.where(np.bincount(unit, minlength=n) > 0, 1.0, 0.0)]
    base = n
    # per territory and active measure: upper then lower band, with a slack column each
    for j, i in enumerate(active.tolist()):
        gain = model.frac[unit, i] / model.share[recv]
        loss = model.frac[unit, i] / model.share[donor]
        up = base + 2 * (np.arange(p) * na + j)
        # load_k = ratio + sum(gain into k) - sum(loss out of k) <= 1 + band + s_up
        rows += [up[recv], up[donor], up]
        cols += [np.arange(c_n), np.arange(c_n), c_n + 2 * (np.arange(p) * na + j)]
        vals += [gain, -loss, -np.ones(p)]
        rows += [up[recv] + 1, up[donor] + 1, up + 1]
        cols += [np.arange(c_n), np.arange(c_n), c_n + 2 * (np.arange(p) * na + j) + 1]
        vals += [-gain, loss, -np.ones(p)]
    up_rhs = np.zeros(2 * p * na)
    for j, i in enumerate(active.tolist()):
        idx = 2 * (np.arange(p) * na + j)
        up_rhs[idx] = 1.0 + band[:, i] - ratios[:, i]
        up_rhs[idx + 1] = ratios[:, i] - (1.0 - band[:, i])
    rhs.append(up_rhs)
    nrow = base + 2 * p * na
    nvar = c_n + 2 * p * na
    a_ub = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nrow, nvar))
    slack_cost = np.repeat(SLACK_COST * model.share, 2 * na)
    cost = np.concatenate([cost_x, slack_cost])
    bounds = np.column_stack([np.zeros(nvar), np.full(nvar, np.inf)])
    bounds[:c_n, 1] = 1.0
    res = linprog(cost, A_ub=a_ub, b_ub=np.concatenate(rhs), bounds=bounds, method="highs")
    if res.status != 0 or res.x is None:
        return empty
    x = np.clip(res.x[:c_n], 0.0, 1.0)
    x[x < 1e-7] = 0.0
    key = donor * p + recv
    moving = x > 0
    pk, inv = np.unique(key[moving], return_inverse=True)
    flow = np.bincount(inv, x[moving] * load[unit[moving]], minlength=pk.size)
    pairs = np.column_stack([pk // p, pk % p]).astype(np.int64)
    return pairs, flow, unit, recv, x


def realise_flows(model: Model, labels: np.ndarray, pairs: np.ndarray, flow: np.ndarray,
                  initial: Optional[np.ndarray] = None, cap: Optional[int] = None,
                  preference: Optional[dict] = None) -> np.ndarray:
    """Hand over boundary units along every border until its flow is carried.

    Per border (largest flow first): units of the donor next to the receiver, movable, whose
    departure keeps the donor connected (when contiguity is asked) and does not put a heavy pair
    together, the unit fitting the receiver best (nearest its centre relative to the donor's)
    among those no heavier than what is left to carry; a heavier unit only when it overshoots by
    less than what is left. ``preference`` ({(unit, receiver): x}) ranks units the LP chose first.
    Never empties a territory; stops at the cap on changed units.
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    load = unit_load(model)
    lists = model.neighbours.lists
    movable = model.locked < 0
    heavy = heavy_pairs(model)
    neighbours = model.neighbours
    count = np.bincount(labels, minlength=model.p)
    w = model.weight
    wsum = np.maximum(np.bincount(labels, w, minlength=model.p), 1e-300)
    centre = np.column_stack([np.bincount(labels, w * model.xy[:, d], minlength=model.p) / wsum for d in range(2)])
    valid = None if initial is None else np.asarray(initial) >= 0
    changed = 0 if initial is None else int(np.sum(valid & (labels != initial)))
    order = np.argsort(-flow, kind="stable")
    for e in order.tolist():
        left = float(flow[e])
        if left <= MIN_FLOW:
            break
        a, b = int(pairs[e, 0]), int(pairs[e, 1])
        front = {u for u in np.flatnonzero(labels == a).tolist()
                 if movable[u] and any(labels[v] == b for v in lists[u])}
        refused: set = set()
        while left > MIN_FLOW and count[a] > 1:
            candidates = sorted(front - refused)
            if not candidates:
                break
            candidate_units = np.asarray(candidates, dtype=np.int64)
            g = load[candidate_units]
            xy = model.xy[candidate_units]
            fit = ((xy - centre[b]) ** 2).sum(axis=1) - ((xy - centre[a]) ** 2).sum(axis=1)
            want = np.zeros(candidate_units.size) if preference is None else -np.asarray(
                [preference.get((u, b), 0.0) for u in candidates])
            want = np.round(want, 6)  # LP values: ties within float noise rank by fit
            light = g <= left * (1.0 + 1e-9)
            if np.any(light):
                pool = np.flatnonzero(light)
                pick = pool[np.lexsort((candidate_units[pool], fit[pool], want[pool]))]
            else:
                pool = np.flatnonzero(g - left < left)
                if pool.size == 0:
                    break
                pick = pool[np.lexsort((candidate_units[pool], g[pool], want[pool]))]
            moved = False
            for i in pick.tolist():
                u = int(candidate_units[i])
                bundle = [u]
                if model.contiguous and not neighbours.removal_keeps_connected(u, labels):
                    # a cut unit goes together with the part of the donor it cuts off
                    bundle = _cut_off(model, labels, u, a)
                    g_b = float(load[bundle].sum()) if bundle else 0.0
                    if not bundle or not (g_b <= left * (1.0 + 1e-9) or g_b - left < left):
                        refused.add(u)
                        continue
                if len(bundle) >= count[a] or (heavy and any(heavy.blocked(v, labels, b) for v in bundle)):
                    refused.add(u)
                    continue
                step = 0
                if valid is not None:
                    for v in bundle:
                        if valid[v]:
                            step += int(b != initial[v]) - int(a != initial[v])
                if cap is not None and changed + step > cap:
                    refused.add(u)
                    continue
                for v in bundle:
                    labels[v] = b
                    left -= float(load[v])
                    front.discard(v)
                changed += step
                count[a] -= len(bundle)
                count[b] += len(bundle)
                for v in bundle:
                    for t in lists[v]:
                        if labels[t] == a and movable[t]:
                            front.add(t)
                # a unit that was a cut unit may not be one any more
                refused.clear()
                moved = True
                break
            if not moved:
                break
    return labels


def _cut_off(model: Model, labels: np.ndarray, u: int, a: int, limit: int = BUNDLE_LIMIT) -> list:
    """``u`` and the units of territory ``a`` that would be cut off from its main part without it
    (the main part: the piece with locked units, else the one with the most load). Empty when
    that part has locked units or more than ``limit`` units."""
    lists = model.neighbours.lists
    locked = model.locked
    load = model.weight
    pieces = []
    seen = {u}
    for first in lists[u]:
        if labels[first] != a or first in seen:
            continue
        seen.add(first)
        pieces.append([first, *territory_walk(lists, labels, first, seen)])
    if len(pieces) <= 1:
        return [u]

    def rank(piece):
        return (any(locked[v] >= 0 for v in piece), float(load[piece].sum()), len(piece), -min(piece))

    main = max(range(len(pieces)), key=lambda i: rank(pieces[i]))
    bundle = [u]
    for i, piece in enumerate(pieces):
        if i == main:
            continue
        if any(locked[v] >= 0 for v in piece):
            return []
        bundle += piece
        if len(bundle) > limit:
            return []
    return sorted(bundle)


def flow_rebalance(model: Model, labels: np.ndarray, tolerance: np.ndarray, initial: Optional[np.ndarray] = None,
                   cap: Optional[int] = None, rounds: int = 8, check=None) -> np.ndarray:
    """Border flows from the LP, realised with boundary units; repeated while it still helps
    (the realised mix of measures differs a little from the LP's border averages). ``check()`` is
    called before every round (it raises when the user cancels)."""
    current = np.asarray(labels, dtype=np.int64).copy()
    for _ in range(rounds):
        if check is not None:
            check()
        pairs, flow, unit, recv, x = unit_flows(model, current, tolerance)
        if flow.size == 0 or not np.any(flow > 0):
            break
        chosen = np.flatnonzero(x > 0)
        preference = {(int(unit[c]), int(recv[c])): float(x[c]) for c in chosen.tolist()}
        nxt = realise_flows(model, current, pairs, flow, initial, cap, preference)
        if np.array_equal(nxt, current):
            break
        current = nxt
    return current


def match_identities(model: Model, labels: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Rename territories so that each keeps as much of its initial workload as possible.

    A merge-and-resplit may give a territory's old area the neighbour's name. The renaming is a
    maximum-weight matching of new to initial territories (load held in common); territories
    with locked units or seeds keep their names, and names only swap between equal targets.
    """
    p = model.p
    labels = np.asarray(labels, dtype=np.int64)
    valid = (initial >= 0) & (initial < p)
    load = unit_load(model) + 1e-9
    common = np.zeros((p, p))
    np.add.at(common, (labels[valid], initial[valid]), load[valid])
    fixed = np.zeros(p, dtype=bool)
    fixed[model.locked[model.locked >= 0]] = True
    cost = -common
    big = 1e6
    same_share = np.isclose(model.share[:, None], model.share[None, :], rtol=1e-9, atol=0.0)
    cost = np.where(same_share, cost, big)
    cost[fixed, :] = big
    cost[:, fixed] = big
    cost[fixed, fixed] = -common[fixed, fixed] - big  # a fixed territory keeps its own name
    rows, cols = linear_sum_assignment(cost)
    rename = np.arange(p)
    rename[rows] = cols
    if np.any(rename[fixed] != np.flatnonzero(fixed)) or np.any(cost[rows, cols] >= big / 2):
        return labels.copy()
    return rename[labels]


def least_flow(load: np.ndarray, target: np.ndarray, tolerance: float, pairs: np.ndarray) -> float:
    """The least load that must cross borders to bring every territory into its band, fractional.

    ``load`` and ``target`` (p,) are one measure's territory sums and targets, ``pairs`` (E, 2)
    the territories that share a border. A min-cost flow on the territory graph: every territory
    ends within [(1 - tolerance), (1 + tolerance)] × target, load crosses only shared borders and
    counts once per border it crosses (load passing through a territory is moved twice). A
    fractional bound for plans that hand load over border by border: whole units, contiguity and
    other measures only add to it. NaN when the graph cannot bring every territory into its band.
    """
    load = np.asarray(load, dtype=float)
    target = np.asarray(target, dtype=float)
    p = load.size
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    lo, hi = (1.0 - tolerance) * target, (1.0 + tolerance) * target
    if np.all((load >= lo - 1e-12) & (load <= hi + 1e-12)):
        return 0.0
    if pairs.size == 0:
        return float("nan")
    key = np.unique(np.minimum(pairs[:, 0], pairs[:, 1]) * p + np.maximum(pairs[:, 0], pairs[:, 1]))
    a, b = key // p, key % p
    src = np.concatenate([a, b])  # one variable per direction
    dst = np.concatenate([b, a])
    e = src.size
    # net inflow of territory k: sum over arcs into k minus arcs out of k
    net = sp.csr_matrix((np.concatenate([np.ones(e), -np.ones(e)]),
                         (np.concatenate([dst, src]), np.concatenate([np.arange(e), np.arange(e)]))), shape=(p, e))
    # lo - load <= net <= hi - load
    a_ub = sp.vstack([net, -net]).tocsr()
    b_ub = np.concatenate([hi - load, load - lo])
    res = linprog(np.ones(e), A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs")
    if res.status != 0 or res.x is None:
        return float("nan")
    return float(res.x.sum())
