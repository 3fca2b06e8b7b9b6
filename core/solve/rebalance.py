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

import time
from typing import Optional

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment, linprog
from scipy.sparse.csgraph import connected_components, depth_first_order, minimum_spanning_tree

from .heavy_pairs import heavy_pairs
from .model import Model
from .quality import better, plan_key, within

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


def _scalar_load(model: Model) -> np.ndarray:
    """(n,) the load the flows count: the mean share of the total over the active measures."""
    act = model.active.astype(float)
    return (model.frac * act[None, :]).sum(axis=1) / max(float(act.sum()), 1.0)


def excess_load(model: Model, ratios: np.ndarray, tolerance: np.ndarray) -> float:
    """Load beyond the bands (share of the total, mean over the active measures)."""
    act = np.flatnonzero(model.active)
    if act.size == 0:
        return 0.0
    dev = np.abs(np.asarray(ratios)[:, act] - 1.0)
    over = np.maximum(dev - np.asarray(tolerance)[act][None, :], 0.0) * model.share[:, None]
    # a fixed summation order keeps the sum identical on every platform
    return float(sum(float(v) for v in over.sum(axis=1).tolist())) / act.size


def moved_load(model: Model, labels: np.ndarray, initial: np.ndarray) -> float:
    """Workload (share of the total, mean over the active measures) away from its initial territory."""
    changed = np.flatnonzero((initial >= 0) & (labels != initial))
    return float(sum(float(v) for v in _scalar_load(model)[changed].tolist()))


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
    receiver (C,), x (C,)); loads in units of ``_scalar_load``.
    """
    n, p = model.n, model.p
    load = _scalar_load(model)
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

    act = np.flatnonzero(model.active)
    ratios = model.ratios(labels)
    dev = np.abs(ratios - 1.0)
    off = np.any(dev[:, act] > tolerance[act][None, :] + 1e-12, axis=1)
    band = np.where(off[:, None], band_fraction * tolerance[None, :], tolerance[None, :])
    na = act.size
    rows, cols, vals = [], [], []
    # rows 0 .. n-1: every unit moves at most once
    rows.append(unit)
    cols.append(np.arange(c_n))
    vals.append(np.ones(c_n))
    rhs = [np.where(np.bincount(unit, minlength=n) > 0, 1.0, 0.0)]
    base = n
    # per territory and active measure: upper then lower band, with a slack column each
    for j, i in enumerate(act.tolist()):
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
    for j, i in enumerate(act.tolist()):
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
    load = _scalar_load(model)
    lists = model.neighbours.lists
    movable = model.locked < 0
    pairs_h = heavy_pairs(model)
    nb = model.neighbours
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
            cand = sorted(front - refused)
            if not cand:
                break
            cu = np.asarray(cand, dtype=np.int64)
            g = load[cu]
            fit = (((model.xy[cu] - centre[b]) ** 2).sum(axis=1) - ((model.xy[cu] - centre[a]) ** 2).sum(axis=1))
            want = np.zeros(cu.size) if preference is None else -np.asarray(
                [preference.get((u, b), 0.0) for u in cand])
            want = np.round(want, 6)  # LP values: ties within float noise rank by fit
            light = g <= left * (1.0 + 1e-9)
            if np.any(light):
                pool = np.flatnonzero(light)
                pick = pool[np.lexsort((cu[pool], fit[pool], want[pool]))]
            else:
                pool = np.flatnonzero(g - left < left)
                if pool.size == 0:
                    break
                pick = pool[np.lexsort((cu[pool], g[pool], want[pool]))]
            moved = False
            for i in pick.tolist():
                u = int(cu[i])
                bundle = [u]
                if model.contiguous and not nb.removal_keeps_connected(u, labels):
                    # a cut unit goes together with the part of the donor it cuts off
                    bundle = _cut_off(model, labels, u, a)
                    g_b = float(load[bundle].sum()) if bundle else 0.0
                    if not bundle or not (g_b <= left * (1.0 + 1e-9) or g_b - left < left):
                        refused.add(u)
                        continue
                if len(bundle) >= count[a] or (pairs_h and any(pairs_h.blocked(v, labels, b) for v in bundle)):
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
    for s0 in lists[u]:
        if labels[s0] != a or s0 in seen:
            continue
        piece = [s0]
        seen.add(s0)
        stack = [s0]
        while stack:
            v = stack.pop()
            for t in lists[v]:
                if t not in seen and labels[t] == a:
                    seen.add(t)
                    piece.append(t)
                    stack.append(t)
        pieces.append(piece)
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
    nb = model.neighbours
    pairs_h = heavy_pairs(model)
    load = _scalar_load(model)
    act = model.active
    ratios = model.ratios(labels)
    count = np.bincount(labels, minlength=model.p)

    def key_of(r):
        return plan_key(r, act, tolerance)

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
            if pairs_h and pairs_h.blocked(u, labels, b):
                continue
            if model.contiguous and not nb.removal_keeps_connected(u, labels):
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


def match_identities(model: Model, labels: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Rename territories so that each keeps as much of its initial workload as possible.

    A merge-and-resplit may give a territory's old area the neighbour's name. The renaming is a
    maximum-weight matching of new to initial territories (load held in common); territories
    with locked units or seeds keep their names, and names only swap between equal targets.
    """
    p = model.p
    labels = np.asarray(labels, dtype=np.int64)
    valid = (initial >= 0) & (initial < p)
    load = _scalar_load(model) + 1e-9
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


def _pair_state(ratios: np.ndarray, act: np.ndarray, tol: np.ndarray) -> tuple:
    """(worst |deviation| / tolerance, total excess) over the rows of ``ratios``."""
    dev = np.abs(ratios[..., act] - 1.0)
    t = tol[act]
    worst = (dev / np.maximum(t, 1e-6)).max(axis=-1)
    excess = np.maximum(dev - t, 0.0).sum(axis=-1)
    return worst, excess


def resplit_pair(model: Model, labels: np.ndarray, initial: np.ndarray, a: int, b: int,
                 rng: np.random.Generator, tol: np.ndarray, balance: bool = False) -> Optional[tuple]:
    """The cut of territories a and b (together) along a spanning tree that moves the least
    workload away from its initial territory, among cuts no worse for balance than now.

    The tree prefers edges inside one initial territory (random weights below 1) to edges
    across (above 1), so it tends to cross the initial border once and its cuts run near it.
    Both sides of a tree cut are connected; locks and heavy pairs are respected. With
    ``balance`` the cut that balances the pair best wins instead (worst deviation beyond the
    tolerance, then excess, then workload moved), taken only when it ranks above the pair now.
    Returns (units, new labels of the units, moved workload before, after) or None.
    """
    units = np.flatnonzero((labels == a) | (labels == b))
    if units.size < 2:
        return None
    sub = model.adjacency[units][:, units].tocoo()
    if sub.nnz == 0:
        return None
    init = initial[units]
    cross = (init[sub.row] != init[sub.col]).astype(float)
    w = rng.random(sub.nnz) * 0.9 + 0.05 + 2.0 * cross
    keep = sub.row < sub.col
    graph = sp.csr_matrix((w[keep], (sub.row[keep], sub.col[keep])), shape=(units.size, units.size))
    if connected_components(graph, directed=False)[0] > 1:
        return None
    tree = minimum_spanning_tree(graph)
    tree = (tree + tree.T).tocsr()
    order, pred = depth_first_order(tree, 0, directed=False, return_predecessors=True)
    nloc = units.size
    pos = np.empty(nloc, dtype=np.int64)
    pos[order] = np.arange(nloc)
    size = np.ones(nloc, dtype=np.int64)
    pred_l = pred.tolist()
    size_l = size.tolist()
    for v in order[::-1].tolist():
        if pred_l[v] >= 0:
            size_l[pred_l[v]] += size_l[v]
    size = np.asarray(size_l, dtype=np.int64)
    g = units[order]
    load = _scalar_load(model)
    has = initial[g] >= 0
    cols = np.column_stack([model.frac[g], load[g] * (has & (initial[g] != a)), load[g] * (has & (initial[g] != b)),
                            (model.locked[g] == a).astype(float), (model.locked[g] == b).astype(float)])
    cum = np.vstack([np.zeros((1, cols.shape[1])), np.cumsum(cols, axis=0)])
    cand = np.flatnonzero(pred >= 0)
    lo = pos[cand]
    hi = lo + size[cand]
    inside = cum[hi] - cum[lo]
    outside = cum[-1][None, :] - inside
    m = model.m
    act = np.asarray(model.active, dtype=bool)
    sa, sb = model.share[a], model.share[b]
    # orientation 1: the subtree goes to a; orientation 2: to b
    ra = np.vstack([inside[:, :m] / sa, outside[:, :m] / sa])
    rb = np.vstack([outside[:, :m] / sb, inside[:, :m] / sb])
    moved = np.concatenate([inside[:, m] + outside[:, m + 1], outside[:, m] + inside[:, m + 1]])
    wa, ea = _pair_state(ra, act, tol)
    wb, eb = _pair_state(rb, act, tol)
    worst = np.maximum(wa, wb)
    excess = ea + eb
    lock_ok = np.concatenate([(inside[:, m + 3] == 0) & (outside[:, m + 2] == 0),
                              (outside[:, m + 3] == 0) & (inside[:, m + 2] == 0)])
    cur = model.ratios(labels)[[a, b]]
    cw, ce = _pair_state(cur, act, tol)
    now_worst, now_excess = float(cw.max()), float(ce.sum())
    ok = lock_ok & (np.maximum(worst, 1.0) <= max(now_worst, 1.0) + 1e-9) & (excess <= now_excess + 1e-12)
    pairs_h = heavy_pairs(model)
    if pairs_h and np.any(pairs_h.mask[units]):
        where = {int(u): i for i, u in enumerate(units.tolist())}
        for u in units[pairs_h.mask[units]].tolist():
            for v in pairs_h.partners[u].tolist():
                if v > u and v in where:
                    pu, pv = pos[where[u]], pos[where[v]]
                    sep = ((lo <= pu) & (pu < hi)) != ((lo <= pv) & (pv < hi))
                    ok &= np.concatenate([sep, sep])
    if not np.any(ok):
        return None
    now_moved = float((load[units] * ((initial[units] >= 0) & (initial[units] != labels[units]))).sum())
    idx = np.flatnonzero(ok)
    if balance:
        floor = np.round(np.maximum(worst, 1.0), 9)
        best = idx[np.lexsort((idx, moved[idx], np.round(excess[idx], 12), floor[idx]))[0]]
        now = (round(max(now_worst, 1.0), 9), round(now_excess, 12), now_moved - 1e-12)
        if (floor[best], round(float(excess[best]), 12), moved[best]) >= now:
            return None
    else:
        best = idx[np.lexsort((idx, excess[idx], moved[idx]))[0]]
        if moved[best] >= now_moved - 1e-12:
            return None
    c = cand[best % cand.size]
    in_sub = np.zeros(nloc, dtype=bool)
    in_sub[order[pos[c]: pos[c] + size[c]]] = True
    side_a = in_sub if best < cand.size else ~in_sub
    new = np.where(side_a, a, b).astype(np.int64)
    return units, new, now_moved, float(moved[best])


def reduce_by_resplits(model: Model, labels: np.ndarray, initial: np.ndarray, tol: np.ndarray,
                       rng: np.random.Generator, deadline: Optional[float] = None, tries: Optional[int] = None,
                       cap: Optional[int] = None, check=None) -> np.ndarray:
    """Cut pairs of neighbouring territories anew nearer their initial border while balance
    stays as good: the plan's rank never drops and the workload moved falls with every step.
    Pairs holding the most moved workload are tried first; stops after ``tries`` attempts in a
    row without a gain, or at ``deadline`` (time.monotonic()). ``check()`` is called every step
    (it raises to cancel)."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    initial = np.asarray(initial, dtype=np.int64)
    p = model.p
    load = _scalar_load(model)
    eu, ev = model.edges
    tries = int(tries if tries is not None else 4 * p + 20)
    fails = 0
    steps = 0
    valid = initial >= 0
    while fails < tries and steps < 10 * tries:
        steps += 1
        if deadline is not None and time.monotonic() > deadline:
            break
        if check is not None:
            check()  # raises when the user cancels
        la, lb = labels[eu], labels[ev]
        keep = la < lb
        key = np.unique(la[keep] * p + lb[keep])
        if key.size == 0:
            break
        pa, pb = key // p, key % p
        moved_t = np.bincount(labels, load * (valid & (labels != initial)), minlength=p)
        weight = moved_t[pa] + moved_t[pb]
        if not np.any(weight > 0):
            break
        # mostly the pairs with the most moved workload, sometimes any pair with some
        top = np.flatnonzero(weight > 0)
        if rng.random() < 0.7:
            top = top[np.argsort(-weight[top], kind="stable")[: max(3, top.size // 4)]]
        e = int(top[rng.integers(top.size)])
        out = resplit_pair(model, labels, initial, int(pa[e]), int(pb[e]), rng, tol)
        if out is None:
            fails += 1
            continue
        units, new, _before, _after = out
        trial = labels.copy()
        trial[units] = new
        if np.bincount(trial, minlength=p).min() == 0:
            fails += 1
            continue
        if cap is not None and int(np.sum(valid & (trial != initial))) > cap:
            fails += 1
            continue
        labels = trial
        fails = 0
    return labels



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
