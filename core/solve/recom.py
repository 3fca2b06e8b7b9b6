"""Merge two neighbouring territories and split them again at balance (recombination).

Single boundary moves cannot fix a plan whose territories are off in opposite directions on two
measures (metro territories over on population and under on elderly, rural ones the reverse):
that takes dozens of units moving at once. A recombination step takes two adjacent territories,
draws a random spanning tree over their units and cuts the one tree edge that leaves the two
sides best balanced (then most compact). Both sides of a tree cut are connected, so contiguity
holds by construction; cuts that would leave two units too heavy to share a territory together,
or put a locked unit in the wrong territory, are never taken.

Steps are accepted like an annealing on the total excess beyond tolerance (a step that raises
it is taken with a probability that falls with the rise and with the steps taken); the best plan
seen (worst deviation first, then total excess) is returned, so the result never ranks below the
start. The search stops as soon as every territory is within tolerance, when it reaches a proven
lower bound, or when its time is up.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, depth_first_order, minimum_spanning_tree

from ..clock import CLOCK
from ..progress import Progress
from .heavy_pairs import heavy_pairs
from .model import Model
from .quality import EPS, PlanKey, better, plan_key, tolerance_vector

#: A new best plan whose worst deviation is below this many tolerances is finished with single
#: moves (at most once per POLISH_EVERY steps): they often close the last small gap.
POLISH_BELOW = 1.5
POLISH_EVERY = 150
#: The annealing's temperature falls linearly to 0 over this many steps (then plain descent);
#: after REHEAT_AFTER more steps without a better plan it starts again, warm, from the best plan.
COOLING_STEPS = 1500
REHEAT_AFTER = 1000
#: The search judges balance against this fraction of the tolerance: territories it has brought
#: just inside the band keep room to take load from their neighbours later.
BAND = 0.8


class Recombination:
    """Merge-and-resplit search over a complete, contiguous labelling."""

    def __init__(self, model: Model, labels: np.ndarray, rng: np.random.Generator, tolerance=None,
                 initial: Optional[np.ndarray] = None, disruption: float = 0.0):
        self.model = model
        self.p = model.p
        self.labels = np.asarray(labels, dtype=np.int64).copy()
        self.rng = rng
        if tolerance is None:
            tolerance = model.tolerance if model.tolerances is None else model.tolerances
        self.tol = tolerance_vector(tolerance, model.m) * BAND
        self.act = np.asarray(model.active, dtype=bool)
        self.scale = 1.0 / np.maximum(self.tol, 1e-6)
        self.frac = model.frac
        self.share = model.share
        self.weight = model.weight
        self.xy = model.xy
        self.adj = sp.csr_matrix(model.adjacency)
        self.locked = model.locked
        self.pairs = heavy_pairs(model)
        self.initial = initial
        self.disruption = float(disruption)
        self.R = model.ratios(self.labels)
        self.steps = 0
        self.accepted = 0
        eu, ev = model.edges
        self.eu, self.ev = eu, ev

    # ----- figures -----------------------------------------------------------------------------
    def key(self) -> PlanKey:
        return plan_key(self.R, self.act, self.tol)

    def _terr_worst(self, r: np.ndarray) -> np.ndarray:
        """Worst |ratio - 1| / tolerance of each row of r (active measures)."""
        return (np.abs(r - 1.0) * self.scale * self.act).max(axis=-1)

    def _terr_excess(self, r: np.ndarray) -> np.ndarray:
        return (np.maximum(np.abs(r - 1.0) - self.tol, 0.0) * self.act).sum(axis=-1)

    def territory_pairs(self) -> np.ndarray:
        """(q, 2) adjacent territory pairs (a < b), sorted."""
        la, lb = self.labels[self.eu], self.labels[self.ev]
        keep = la < lb
        key = np.unique(la[keep] * self.p + lb[keep])
        return np.column_stack([key // self.p, key % self.p])

    # ----- one step ----------------------------------------------------------------------------
    def propose(self, a: int, b: int, worst_cap: float):
        """Best tree cut of territories a and b; None when no valid cut exists.

        Returns (units, side_a mask, new ratio rows (2, m), pair worst, pair excess).
        """
        units = np.flatnonzero((self.labels == a) | (self.labels == b))
        if units.size < 2:
            return None
        sub = self.adj[units][:, units].tocoo()
        if sub.nnz == 0:
            return None
        # random weights, symmetric, so the minimum spanning tree is a random tree of the union
        w = self.rng.random(sub.nnz) + 1e-3
        rnd = sp.csr_matrix((w, (sub.row, sub.col)), shape=(units.size, units.size))
        rnd = rnd.maximum(rnd.T)
        comps, _ = connected_components(rnd, directed=False)
        if comps > 1:
            return None
        tree = minimum_spanning_tree(rnd)
        tree = tree + tree.T
        root = int(self.rng.integers(units.size))
        order, pred = depth_first_order(tree, root, directed=False, return_predecessors=True)
        nloc = units.size
        pos = np.empty(nloc, dtype=np.int64)
        pos[order] = np.arange(nloc)
        size = np.ones(nloc, dtype=np.int64)
        pred_l = pred.tolist()
        size_l = size.tolist()
        for v in order[::-1].tolist():
            par = pred_l[v]
            if par >= 0:
                size_l[par] += size_l[v]
        size = np.asarray(size_l, dtype=np.int64)
        g = units[order]
        f = self.frac[g]
        wt = self.weight[g]
        xy = self.xy[g]
        cols = np.column_stack([f, wt, wt * xy[:, 0], wt * xy[:, 1], wt * (xy**2).sum(axis=1)])
        cum = np.vstack([np.zeros((1, cols.shape[1])), np.cumsum(cols, axis=0)])
        cand = np.flatnonzero(pred >= 0)  # cut the edge above each non-root node
        lo = pos[cand]
        hi = lo + size[cand]
        inside = cum[hi] - cum[lo]
        total = cum[-1]
        outside = total[None, :] - inside
        m = f.shape[1]
        # both orientations: subtree -> a (rest -> b), or subtree -> b
        ra1 = inside[:, :m] / self.share[a]
        rb1 = outside[:, :m] / self.share[b]
        ra2 = outside[:, :m] / self.share[a]
        rb2 = inside[:, :m] / self.share[b]
        worst1 = np.maximum(self._terr_worst(ra1), self._terr_worst(rb1))
        worst2 = np.maximum(self._terr_worst(ra2), self._terr_worst(rb2))
        exc1 = self._terr_excess(ra1) + self._terr_excess(rb1)
        exc2 = self._terr_excess(ra2) + self._terr_excess(rb2)
        inert = moment_inertia(inside[:, m:]) + moment_inertia(outside[:, m:])
        ok1 = np.ones(cand.size, dtype=bool)
        ok2 = np.ones(cand.size, dtype=bool)
        # locks: units locked to a must end on a's side, those locked to b on b's side
        lk = self.locked[g]
        if np.any(lk >= 0):
            ca = np.r_[0, np.cumsum(lk == a)]
            cb = np.r_[0, np.cumsum(lk == b)]
            in_a = ca[hi] - ca[lo]
            in_b = cb[hi] - cb[lo]
            tot_a, tot_b = ca[-1], cb[-1]
            ok1 &= (in_b == 0) & (in_a == tot_a)
            ok2 &= (in_a == 0) & (in_b == tot_b)
        # heavy pairs inside the union must end on different sides
        if self.pairs:
            local = {int(u): i for i, u in enumerate(units[np.isin(units, self.pairs.units)].tolist())}
            if local:
                where = {int(units[i]): i for i in range(nloc)}
                for u in list(local):
                    for v in self.pairs.partners[u].tolist():
                        if v <= u or v not in where:
                            continue
                        pu, pv = pos[where[u]], pos[where[v]]
                        sep = ((lo <= pu) & (pu < hi)) != ((lo <= pv) & (pv < hi))
                        ok1 &= sep
                        ok2 &= sep
        worst = np.concatenate([np.where(ok1, worst1, np.inf), np.where(ok2, worst2, np.inf)])
        if not np.any(np.isfinite(worst)):
            return None
        exc = np.concatenate([exc1, exc2])
        comp = np.concatenate([inert, inert])
        # within tolerance all cuts are equally balanced: then the most compact wins
        floor = np.maximum(worst, 1.0)
        if self.initial is not None and self.disruption > 0:
            # rebalancing: among equally balanced cuts the one moving the least workload from
            # its initial territory wins (then the most compact)
            init = self.initial[g]
            moved_a = np.r_[0.0, np.cumsum(wt * ((init >= 0) & (init != a)))]
            moved_b = np.r_[0.0, np.cumsum(wt * ((init >= 0) & (init != b)))]
            in_a, in_b = moved_a[hi] - moved_a[lo], moved_b[hi] - moved_b[lo]
            moved1 = in_a + (moved_b[-1] - in_b)
            moved2 = in_b + (moved_a[-1] - in_a)
            comp = comp + self.disruption * np.concatenate([moved1, moved2])
        choice = np.lexsort((comp, exc, floor))[0]
        if not np.isfinite(worst[choice]) or worst[choice] > worst_cap + EPS:
            return None
        c = cand[choice % cand.size]
        sub_nodes = order[pos[c]: pos[c] + size[c]]
        in_sub = np.zeros(nloc, dtype=bool)
        in_sub[sub_nodes] = True
        side_a = in_sub if choice < cand.size else ~in_sub
        rows = np.vstack([ra1[choice], rb1[choice]]) if choice < cand.size else np.vstack(
            [ra2[choice - cand.size], rb2[choice - cand.size]])
        return units, side_a, rows, float(worst[choice]), float(exc[choice])

    def run(self, deadline: float, progress: Optional[Progress] = None, floor: float = 0.0,
            patience: Optional[int] = None, temperature: float = 0.0, polish=None) -> np.ndarray:
        """Search until within tolerance, at ``floor`` (a proven bound, as worst/tolerance), out of
        time (``deadline``, core.clock.CLOCK), or ``patience`` steps without a better plan.

        ``polish(labels) -> labels`` (optional) finishes a new best plan that is close to the
        tolerance with single moves; when that reaches the tolerance the search stops there."""
        best = self.labels.copy()
        best_key = self.key()
        since = 0
        start = CLOCK()
        last_report = start
        last_polish = -POLISH_EVERY
        heated = 0
        while True:
            key = self.key()
            if key.worst <= 1.0 / BAND + EPS or key.worst <= floor / BAND + 1e-7:
                break
            now = CLOCK()
            if now >= deadline or (patience is not None and since >= patience):
                break
            if progress is not None and now - last_report > 0.25:
                last_report = now
                span = max(deadline - start, 1e-9)
                progress.step((now - start) / span,
                              f"Searching: worst deviation {100 * best_key.worst_deviation:.2f} %")
            self.steps += 1
            since += 1
            if self.steps - heated > COOLING_STEPS and since > REHEAT_AFTER:
                # cooled down and stuck: start again from the best plan, warm
                heated = self.steps
                self.labels = best.copy()
                self.R = self.model.ratios(self.labels)
                since = 0
            pairs = self.territory_pairs()
            if pairs.shape[0] == 0:
                break
            tw = self._terr_worst(self.R)
            # mostly pairs that hold the worst territory; sometimes any pair, to move load around
            u = self.rng.random()
            if u < 0.5:
                k = int(np.argmax(tw))
            elif u < 0.8:
                off = np.flatnonzero(tw > 1.0 + EPS)
                k = int(off[self.rng.integers(off.size)]) if off.size else int(np.argmax(tw))
            else:
                k = -1
            if k >= 0:
                rows = np.flatnonzero((pairs[:, 0] == k) | (pairs[:, 1] == k))
                if rows.size == 0:
                    continue
                a, b = pairs[rows[self.rng.integers(rows.size)]].tolist()
            else:
                a, b = pairs[self.rng.integers(pairs.shape[0])].tolist()
            old_exc = float(self._terr_excess(self.R[[a, b]]).sum())
            prop = self.propose(a, b, worst_cap=np.inf)
            if prop is None:
                continue
            units, side_a, rows_new, new_worst, new_exc = prop
            delta = new_exc - old_exc
            # the schedule counts steps, not seconds: the same seed takes the same path on any machine
            temp = temperature * max(0.0, 1.0 - (self.steps - heated) / COOLING_STEPS)
            if delta > EPS and not (temp > 0 and self.rng.random() < np.exp(-delta / temp)):
                continue
            self.labels[units[side_a]] = a
            self.labels[units[~side_a]] = b
            self.R[a] = rows_new[0]
            self.R[b] = rows_new[1]
            self.accepted += 1
            new_key = self.key()
            if better(new_key, best_key):
                best, best_key = self.labels.copy(), new_key
                since = 0
                if polish is not None and new_key.worst < POLISH_BELOW and self.steps - last_polish >= POLISH_EVERY:
                    last_polish = self.steps
                    done = np.asarray(polish(best), dtype=np.int64)
                    done_key = plan_key(self.model.ratios(done), self.act, self.tol)
                    if better(done_key, best_key):
                        best, best_key = done.copy(), done_key
                        self.labels = done.copy()
                        self.R = self.model.ratios(self.labels)
        self.labels = best
        self.R = self.model.ratios(best)
        return best


def moment_inertia(mom: np.ndarray) -> np.ndarray:
    """Weighted inertia from (w, wx, wy, wq) sums (0 for a weightless side)."""
    w = mom[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        val = mom[:, 3] - (mom[:, 1] ** 2 + mom[:, 2] ** 2) / np.where(w > 1e-300, w, 1.0)
    return np.where(w > 1e-300, val, 0.0)
