"""Merge two neighbouring territories and split them again, choosing among many spanning trees.

The first recombination (core.recom) draws one random spanning tree of the merged pair and cuts
its best edge. On two conflicting measures (population sits in the metros, the elderly in rural
counties) one tree rarely holds a cut that balances both, so the search wanders. Here each step
draws ``trees`` random spanning trees of the union at once (one block-diagonal graph, one
minimum-spanning-tree call) and scores every cut of every tree, both ways round.

A split is scored by a smooth energy of the two halves: the sum over active measures of
(|ratio - 1| / tolerance) ** POWER. Minimising it pair after pair spreads imbalance out like
diffusion (a high power makes the energy follow the worst deviation), so load travels through
territories that are already in band until the whole plan is balanced. A small compactness
term (the halves' moment of inertia relative to the pair's current one) breaks near-ties.
Steps are accepted like an annealing on that energy; the best plan seen (worst deviation
first, then total excess beyond tolerance) is kept, so the result never ranks below the start.

Both sides of a tree cut are connected, so contiguity holds by construction. Cuts that leave a
locked unit on the wrong side, or two units too heavy to share a territory on the same side,
are never taken.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import depth_first_order, minimum_spanning_tree

from ..clock import CLOCK
from ..progress import Progress
from .heavy_pairs import heavy_pairs
from .model import Model
from .quality import EPS, better, plan_key, tolerance_vector
from .recom import moment_inertia

#: Exponent of the energy: high enough that the worst territory dominates, low enough to slope.
POWER = 4.0
#: Weight of the compactness term (relative change of the pair's inertia) against the energy.
COMPACTNESS = 0.05
#: Spanning trees drawn per step.
TREES = 8
#: A fall of the worst deviation (in tolerances) that counts as progress for ``patience``.
PROGRESS = 1e-3


class Resplit:
    """Multi-tree merge-and-resplit annealing over a complete labelling (contiguous territories)."""

    def __init__(self, model: Model, labels: np.ndarray, rng: np.random.Generator, tolerance=None,
                 trees: int = TREES, power: float = POWER, compactness: float = COMPACTNESS,
                 triples: float = 0.0):
        self.model = model
        self.p = model.p
        self.labels = np.asarray(labels, dtype=np.int64).copy()
        self.rng = rng
        if tolerance is None:
            tolerance = model.tolerance if model.tolerances is None else model.tolerances
        self.tol = tolerance_vector(tolerance, model.m)
        self.act = np.asarray(model.active, dtype=bool)
        self.scale = np.where(self.act, 1.0 / np.maximum(self.tol, 1e-6), 0.0)
        self.trees = int(max(1, trees))
        self.power = float(power)
        self.compactness = float(compactness)
        self.triples = float(triples)  # share of steps that merge three territories, not two
        self.frac = model.frac
        self.share = model.share
        xy = model.xy
        w = model.weight
        # per unit: balance fractions, then the moments compactness needs (w, wx, wy, w|x|^2)
        self.cols = np.column_stack([model.frac, w, w * xy[:, 0], w * xy[:, 1], w * (xy**2).sum(axis=1)])
        adj = sp.csr_matrix(model.adjacency)
        self.adj = adj
        self.locked = np.asarray(model.locked, dtype=np.int64)
        self.pairs = heavy_pairs(model)
        self.eu, self.ev = model.edges
        self.R = model.ratios(self.labels)
        self.steps = 0
        self.accepted = 0

    # ----- figures -----------------------------------------------------------------------------
    def key(self):
        return plan_key(self.R, self.act, self.tol)

    def energy(self, r: np.ndarray) -> np.ndarray:
        """Energy of ratio rows r (..., m): sum of (|r - 1| / tol) ** POWER over active measures."""
        return ((np.abs(r - 1.0) * self.scale) ** self.power).sum(axis=-1)

    def rel_worst(self, r: np.ndarray) -> np.ndarray:
        return (np.abs(r - 1.0) * self.scale).max(axis=-1)

    def territory_pairs(self) -> np.ndarray:
        """(q, 2) adjacent territory pairs (a < b), sorted."""
        la, lb = self.labels[self.eu], self.labels[self.ev]
        keep = la < lb
        key = np.unique(la[keep] * self.p + lb[keep])
        return np.column_stack([key // self.p, key % self.p])

    # ----- one split ---------------------------------------------------------------------------
    def propose(self, a: int, b: int):
        """Best cut of territories a and b over ``trees`` random spanning trees of their union.

        Returns (units, side_a mask, new ratio rows (2, m), change of the pair's score) or None
        when no valid cut exists (the union is not connected, or every cut breaks a lock or a
        heavy pair)."""
        units = np.flatnonzero((self.labels == a) | (self.labels == b))
        out = self._split(units, a, (b,))
        if out is None:
            return None
        side_a, rows, score, ref = out
        cur = self.labels[units] == a
        old = float(self.energy(self.R[a]) + self.energy(self.R[b])) + self.compactness * (
            self._inertia_of(units[cur]) + self._inertia_of(units[~cur])) / ref
        return units, side_a, rows, score - old

    def propose_triple(self, a: int, b: int, c: int):
        """Merge three territories (b touching a and c) and split them in three: one tree cut
        gives a its part, then the rest is split between b and c like a pair.

        Returns (units, new labels of units, new ratio rows (3, m) of a, b, c, change of score)."""
        units = np.flatnonzero((self.labels == a) | (self.labels == b) | (self.labels == c))
        first = self._split(units, a, (b, c))
        if first is None:
            return None
        side_a, rows1, _, ref = first
        rest = units[~side_a]
        second = self._split(rest, b, (c,))
        if second is None:
            return None
        side_b, rows2, _, _ = second
        new = np.full(units.size, a, dtype=np.int64)
        lab_rest = np.where(side_b, b, c)
        new[~side_a] = lab_rest
        rows = np.vstack([rows1[0], rows2[0], rows2[1]])
        score = float(self.energy(rows).sum()) + self.compactness * (
            self._inertia_of(units[side_a]) + self._inertia_of(rest[side_b]) + self._inertia_of(rest[~side_b])) / ref
        old = float(self.energy(self.R[[a, b, c]]).sum()) + self.compactness * sum(
            self._inertia_of(np.flatnonzero(self.labels == k)) for k in (a, b, c)) / ref
        return units, new, rows, score - old

    def _inertia_of(self, members: np.ndarray) -> float:
        m = self.frac.shape[1]
        return float(moment_inertia(self.cols[members][:, m:].sum(axis=0)[None, :])[0])

    def _split(self, units: np.ndarray, a: int, rest: tuple):
        """Best tree cut of ``units`` into a part for territory a and a part for ``rest`` (one
        territory, or two to be split later: then that part is scored as if split evenly).

        Returns (side_a mask, ratio rows (2, m) of a and of the rest, score, inertia reference)."""
        nloc = units.size
        if nloc < 2:
            return None
        sub = self.adj[units][:, units].tocoo()
        up = sub.row < sub.col
        r0, c0 = sub.row[up].astype(np.int64), sub.col[up].astype(np.int64)
        if r0.size == 0:
            return None
        nt = self.trees
        rng = self.rng
        base = (np.arange(nt, dtype=np.int64) * nloc)[:, None]
        top = nt * nloc  # a super root joined to one random root per copy
        roots = rng.integers(nloc, size=nt) + base[:, 0]
        rows = np.concatenate([(r0[None, :] + base).ravel(), roots])
        cols = np.concatenate([(c0[None, :] + base).ravel(), np.full(nt, top)])
        w = np.concatenate([rng.random(nt * r0.size) + 1e-3, np.full(nt, 1e-6)])
        graph = sp.csr_matrix((w, (rows, cols)), shape=(top + 1, top + 1))
        tree = minimum_spanning_tree(graph)
        order, pred = depth_first_order(tree, top, directed=False, return_predecessors=True)
        if order.size != top + 1:
            return None  # the union is not connected
        pos = np.empty(top + 1, dtype=np.int64)
        pos[order] = np.arange(top + 1)
        size_l = [1] * (top + 1)
        pred_l = pred.tolist()
        for v in order[::-1].tolist():
            par = pred_l[v]
            if par >= 0:
                size_l[par] += size_l[v]
        size = np.asarray(size_l, dtype=np.int64)
        node_unit = np.concatenate([np.tile(np.arange(nloc), nt), [-1]])  # local index of each node
        ordered = node_unit[order[1:]]
        vals = self.cols[units[ordered]]
        cum = np.vstack([np.zeros((2, vals.shape[1])), np.cumsum(vals, axis=0)])  # pos 0 = super root
        cand = np.flatnonzero((pred >= 0) & (pred != top))  # cut the edge above each non-root node
        lo = pos[cand]
        hi = lo + size[cand]
        inside = cum[hi] - cum[lo]
        total = self.cols[units].sum(axis=0)
        outside = total[None, :] - inside
        m = self.frac.shape[1]
        sa, sb = self.share[a], float(sum(self.share[k] for k in rest))
        ra = np.concatenate([inside[:, :m] / sa, outside[:, :m] / sa])
        rb = np.concatenate([outside[:, :m] / sb, inside[:, :m] / sb])
        ok = np.ones(cand.size, dtype=bool)
        ok1, ok2 = ok.copy(), ok.copy()
        lk = self.locked[units]
        if np.any(lk >= 0):
            la = np.r_[0, 0, np.cumsum(lk[ordered] == a)]
            lb = np.r_[0, 0, np.cumsum(np.isin(lk[ordered], rest))]
            in_a, in_b = la[hi] - la[lo], lb[hi] - lb[lo]
            tot_a, tot_b = int(np.sum(lk == a)), int(np.sum(np.isin(lk, rest)))
            ok1 &= (in_b == 0) & (in_a == tot_a)
            ok2 &= (in_a == 0) & (in_b == tot_b)
        if self.pairs:
            heavy = np.flatnonzero(self.pairs.mask[units])
            if heavy.size:
                local = {int(units[i]): int(i) for i in heavy.tolist()}
                copy = (cand - 0) // nloc  # the copy each candidate node lies in
                for u, iu in local.items():
                    for v in self.pairs.partners[u].tolist():
                        if v <= u or v not in local:
                            continue
                        pu = pos[copy * nloc + iu]
                        pv = pos[copy * nloc + local[v]]
                        in_u = (lo <= pu) & (pu < hi)
                        in_v = (lo <= pv) & (pv < hi)
                        if len(rest) == 1:
                            ok1 &= in_u != in_v
                            ok2 &= in_u != in_v
                        else:  # only a's part must not hold both; the rest is split again
                            ok1 &= ~(in_u & in_v)
                            ok2 &= in_u | in_v
        valid = np.concatenate([ok1, ok2])
        if not np.any(valid):
            return None
        inert = moment_inertia(inside[:, m:]) + moment_inertia(outside[:, m:])
        ref = max(sum(self._inertia_of(units[self.labels[units] == k]) for k in (a, *rest)), 1e-12)
        score = self.energy(ra) + len(rest) * self.energy(rb) + self.compactness * (
            np.concatenate([inert, inert]) / ref)
        score = np.where(valid, score, np.inf)
        choice = int(np.argmin(score))
        c = cand[choice % cand.size]
        members = order[pos[c]: pos[c] + size[c]] % nloc
        in_sub = np.zeros(nloc, dtype=bool)
        in_sub[members] = True
        side_a = in_sub if choice < cand.size else ~in_sub
        return side_a, np.vstack([ra[choice], rb[choice]]), float(score[choice]), ref

    # ----- the search --------------------------------------------------------------------------
    def run(self, deadline: float, progress: Optional[Progress] = None, goal: float = 1.0,
            floor: float = 0.0, temperature: float = 0.0, cooling: int = 2000,
            polish: Optional[Callable] = None, patience: Optional[int] = None,
            polish_below: float = 1.5, polish_every: int = 100,
            max_steps: Optional[int] = None) -> np.ndarray:
        """Search until the worst deviation is at most ``goal`` tolerances (or ``floor``, a
        proven bound in tolerances), or the engine's clock (core.clock.CLOCK) reaches ``deadline``.

        The annealing temperature falls linearly from ``temperature`` to 0 over ``cooling``
        steps; when it reaches 0 and the plan stalls, the search restarts warm from the best plan.
        ``polish(labels) -> labels`` finishes a new best plan with single moves when it is close.
        With ``patience`` the search also stops after that many steps in which the worst deviation
        fell by less than PROGRESS tolerances; with ``max_steps`` after that many steps of this
        call (a budget in steps, not seconds, gives the same plan on a fast or a slow machine).
        """
        best = self.labels.copy()
        best_key = self.key()
        start = CLOCK()
        last_report = start
        heated = 0
        since = 0
        last_polish = -10**9
        stop = max(goal, floor)
        stale = 0
        first_step = self.steps
        while best_key.worst > stop + 1e-9:
            if patience is not None and stale >= patience:
                break
            if max_steps is not None and self.steps - first_step >= max_steps:
                break
            now = CLOCK()
            if now >= deadline:
                break
            if progress is not None and now - last_report > 0.25:
                last_report = now
                span = max(deadline - start, 1e-9)
                progress.step(min((now - start) / span, 1.0),
                              f"Searching: worst deviation {100 * best_key.worst_deviation:.2f} %")
            self.steps += 1
            since += 1
            stale += 1
            cool = self.steps - heated
            if cool > cooling and since > cooling // 2:
                heated = self.steps
                since = 0
                self.labels = best.copy()
                self.R = self.model.ratios(self.labels)
            pairs = self.territory_pairs()
            if pairs.shape[0] == 0:
                break
            u = self.rng.random()
            if u < 0.4:
                tw = self.rel_worst(self.R)
                k = int(np.argmax(tw))
                rows = np.flatnonzero((pairs[:, 0] == k) | (pairs[:, 1] == k))
                if rows.size == 0:
                    continue
                a, b = pairs[rows[self.rng.integers(rows.size)]].tolist()
            else:
                a, b = pairs[self.rng.integers(pairs.shape[0])].tolist()
            third = -1
            if self.triples > 0 and self.rng.random() < self.triples:
                # b in the middle: a third territory touching b, not a
                if self.rng.random() < 0.5:
                    a, b = b, a
                rows = np.flatnonzero(((pairs[:, 0] == b) | (pairs[:, 1] == b))
                                      & (pairs[:, 0] != a) & (pairs[:, 1] != a))
                if rows.size:
                    pc = pairs[rows[self.rng.integers(rows.size)]]
                    third = int(pc[0] if pc[1] == b else pc[1])
            if third >= 0:
                prop = self.propose_triple(a, b, third)
                if prop is None:
                    continue
                units, new_labels, rows_new, delta = prop
                touched = [a, b, third]
            else:
                prop = self.propose(a, b)
                if prop is None:
                    continue
                units, side_a, rows_new, delta = prop
                new_labels = np.where(side_a, a, b)
                touched = [a, b]
            temp = temperature * max(0.0, 1.0 - cool / cooling)
            if delta > EPS and not (temp > 0 and self.rng.random() < np.exp(-delta / temp)):
                continue
            self.labels[units] = new_labels
            self.R[touched] = rows_new
            self.accepted += 1
            new_key = self.key()
            if better(new_key, best_key):
                if new_key.worst < best_key.worst - PROGRESS:
                    stale = 0
                best, best_key = self.labels.copy(), new_key
                since = 0
                if (polish is not None and new_key.worst < polish_below
                        and self.steps - last_polish >= polish_every):
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

