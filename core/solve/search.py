"""Contiguity repair and the local search that finishes balance and compactness.

Merit of a plan (lower is better):
    BIG * excess  +  beta * spread  +  inertia / inertia_ref  +  disruption * moved_weight
excess  = sum over territories and measures of how far |ratio - 1| lies beyond the goal band;
spread  = sum of (ratio - 1)^2, switched on (beta > 0) only when plain moves stall while the
          tolerance is still violated, so that load can travel through territories already in band;
inertia = workload-weighted moment of inertia about each territory's weighted centre (or about
          its fixed seed).
Moves send one boundary unit to a neighbouring territory. Every round has all boundary moves
scored (numpy; kept from the last round and re-scored only where a territory changed), then
applies the best improving ones such that no territory takes part in two moves of the same round:
the scores stay exact and a donor that loses only one unit stays connected when that unit is not
an articulation point of it (checked locally, then by search).
"""

from __future__ import annotations

import hashlib
from typing import Optional

import numpy as np
from scipy.spatial import cKDTree

from ..graph import territory_pieces
from ..progress import Progress
from .heavy_pairs import heavy_pairs
from .model import Model

BIG = 1000.0
#: Least inertia reference, as a fraction of the plan's total weight (positions are scaled so that
#: one territory holding everything has an inertia of about that total).
INERTIA_FLOOR = 1e-6


def _member_of(keys: np.ndarray, wanted: np.ndarray, size: int) -> np.ndarray:
    """``np.isin(keys, wanted)`` for keys in [0, size): a table lookup when the table is small
    (no sort of the keys, which a round repeats over hundreds of thousands of moves)."""
    if size > 1 << 24:
        return np.isin(keys, wanted)
    table = np.zeros(size, dtype=bool)
    table[wanted] = True
    return table[keys]


class LocalSearch:
    """Boundary-move local search over a complete labelling."""

    def __init__(
        self,
        model: Model,
        labels: np.ndarray,
        goal: float,
        initial: Optional[np.ndarray] = None,
        disruption: float = 0.0,
        cap: Optional[int] = None,
        inertia_weight: float = 1.0,
    ):
        self.model = model
        self.p = model.p
        self.labels = np.asarray(labels, dtype=np.int64).copy()
        self.goal = np.asarray(goal, dtype=float) if np.ndim(goal) else float(goal)
        self.tolerance = model.tolerances if model.tolerances is not None else model.tolerance
        self.act = model.active.astype(float)
        self.frac = model.frac
        self.share = model.share
        self.weight = model.weight
        self.xy = model.xy
        self.movable = model.locked < 0
        self.fixed_centres = model.seeds_xy
        self.initial = None if initial is None else np.asarray(initial, dtype=np.int64)
        self.disruption = float(disruption)
        self.cap = cap
        self.inertia_weight = float(inertia_weight)
        self.beta = 0.0
        self.big = BIG
        # None: as many territory-disjoint moves per round as improve; 0: one per violated territory
        self.max_moves_per_round: Optional[int] = None
        self.focus_violated = False
        # how many moves may touch one territory in a round (re-scored after the first)
        self.moves_per_territory = int(max(4, model.n / model.p / 20))
        # connectivity checks that failed stay failed while the donor territory is unchanged
        self.version = np.zeros(self.p, dtype=np.int64)
        self.failed_at = np.full(model.n, -1, dtype=np.int64)
        self.pairs = heavy_pairs(model)
        self.pair_row = self.pairs.row_of() if self.pairs else None
        self._recompute()
        # inertia is measured against the start's (floored: with one unit per territory it is 0, and
        # float noise divided by it would outweigh every balance term and make moves cycle)
        self.inertia_ref = max(self.inertia_total(), INERTIA_FLOOR * float(self.weight.sum()))
        self.changed = self.changed_count()

    # ----- state -------------------------------------------------------------------------------
    def _recompute(self) -> None:
        p, lab, w = self.p, self.labels, self.weight
        self.R = self.model.ratios(lab)
        self.count = np.bincount(lab, minlength=p).astype(np.int64)
        self.W = np.bincount(lab, w, minlength=p)
        self.M = np.column_stack(
            [np.bincount(lab, w * self.xy[:, 0], minlength=p), np.bincount(lab, w * self.xy[:, 1], minlength=p)]
        )
        self.Q = np.bincount(lab, w * (self.xy**2).sum(axis=1), minlength=p)

    def inertia_total(self) -> float:
        if self.fixed_centres is not None:
            d2 = ((self.xy - self.fixed_centres[self.labels]) ** 2).sum(axis=1)
            return float((self.weight * d2).sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            ik = self.Q - (self.M**2).sum(axis=1) / np.where(self.W > 0, self.W, 1.0)
        return float(np.maximum(ik, 0.0).sum())

    def centre_unit_cost(self) -> float:
        """Cost about each territory's best centre unit (the unit nearest its weighted centre)."""
        if self.model.seeds_xy is not None:
            return self.inertia_total()
        centres = self.M / np.maximum(self.W, 1e-300)[:, None]
        d, _ = cKDTree(self.xy).query(centres)
        with np.errstate(divide="ignore", invalid="ignore"):
            ik = self.Q - (self.M**2).sum(axis=1) / np.where(self.W > 0, self.W, 1.0)
        return float(np.maximum(ik, 0.0).sum() + (self.W * np.asarray(d) ** 2).sum())

    def changed_count(self) -> int:
        if self.initial is None:
            return 0
        valid = self.initial >= 0
        return int(np.sum(self.labels[valid] != self.initial[valid]))

    def excess(self, band: Optional[float] = None) -> float:
        band = self.goal if band is None else band
        return float((np.maximum(np.abs(self.R - 1.0) - band, 0.0) * self.act).sum())

    def worst_deviation(self) -> float:
        """The largest |sum / target − 1| over the territories and balanced measures (a fraction)."""
        return float((np.abs(self.R - 1.0) * self.act).max(initial=0.0))

    def violated(self) -> bool:
        """Some territory is outside the user's tolerance on some measure."""
        return self.excess(self.tolerance) > 1e-12

    # ----- scoring -----------------------------------------------------------------------------
    def candidates(self):
        """All boundary moves (unit, donor, receiver) with their merit change.

        The boundary moves and their scores are kept between calls: only units that moved since
        the last call and their neighbours get their moves listed again, and only moves from or
        to a territory whose state changed are scored again (all of them when the merit's weights
        changed). The result equals ``full_candidates()`` exactly, in the same order.
        """
        key, base = self._boundary_moves()
        return self._finish_candidates(key, base)

    def full_candidates(self):
        """``candidates()`` computed from scratch over every edge (the reference it must equal)."""
        key = self._boundary_keys_all()
        return self._finish_candidates(key, self._base_delta(key))

    def _finish_candidates(self, key, base):
        """Filters that change every round (failed checks, emptying, heavy pairs) on kept moves."""
        p = self.p
        lab = self.labels
        unit = key // p
        dst = key % p
        src = lab[unit]
        keep = self.failed_at[unit] != self.version[src]
        unit, src, dst = unit[keep], src[keep], dst[keep]
        if unit.size == 0:
            return unit, src, dst, np.zeros(0)
        delta = base[keep]
        delta[self.count[src] <= 1] = np.inf  # a territory never empties
        if self.pairs:
            # never put two units that are too heavy to share a territory together
            rows = self.pair_row[unit]
            heavy = np.flatnonzero(rows >= 0)
            if heavy.size:
                blocked = self.pairs.blocked_matrix(lab, p)
                hit = heavy[blocked[rows[heavy], dst[heavy]]]
                delta[hit] = np.inf
        return unit, src, dst, delta

    def _boundary_keys_all(self) -> np.ndarray:
        """Sorted keys unit * p + receiver of every boundary move of a movable unit."""
        p = self.p
        lab = self.labels
        eu, ev = self.model.edges
        lv = lab[ev]
        bnd = lab[eu] != lv
        key = np.unique(eu[bnd] * p + lv[bnd])
        return key[self.movable[key // p]]

    def _base_delta(self, key: np.ndarray) -> np.ndarray:
        """Merit change of the moves ``key`` before the per-round filters (see _finish_candidates)."""
        p = self.p
        unit = key // p
        dst = key % p
        src = self.labels[unit]
        if unit.size == 0:
            return np.zeros(0)
        f = self.frac[unit]
        w = self.weight[unit]
        wx = w[:, None] * self.xy[unit]
        q = w * (self.xy[unit] ** 2).sum(axis=1)
        delta = self.transfer_delta(src, dst, f, w, wx, q)
        delta += self._disruption(unit, src, dst)
        if self.fixed_centres is not None:
            delta += self.inertia_weight * self._fixed_delta(unit, src, dst) / self.inertia_ref
        return delta

    def _merit_signature(self) -> tuple:
        """Everything besides the territories' state that a move's score depends on."""
        goal = np.asarray(self.goal, dtype=float)
        fixed = None if self.fixed_centres is None else np.asarray(self.fixed_centres, dtype=float).tobytes()
        return (float(self.big), float(self.beta), goal.tobytes(), float(self.inertia_weight),
                float(self.inertia_ref), float(self.disruption), id(self.initial), fixed)

    def _state_arrays(self) -> tuple:
        return self.R, self.W, self.M, self.Q, self.count

    def _boundary_moves(self) -> tuple:
        """(keys, scores) of every boundary move, updated from the previous call's."""
        lab = self.labels
        p = self.p
        signature = self._merit_signature()
        kept = getattr(self, "_kept", None)
        if kept is None or kept["labels"].shape != lab.shape:
            key = self._boundary_keys_all()
            base = self._base_delta(key)
        else:
            key, base = kept["key"], kept["base"]
            moved = np.flatnonzero(lab != kept["labels"])
            # territories whose figures differ in any bit: their moves are scored again
            changed = np.zeros(p, dtype=bool)
            for now, before in zip(self._state_arrays(), kept["state"]):
                diff = now != before
                changed |= diff.any(axis=1) if diff.ndim > 1 else diff
            if moved.size:
                adjacency = self.model.adjacency
                around = np.unique(np.concatenate([moved, _rows_of(adjacency, moved)[1]]))
                around = around[self.movable[around]]
                hit = np.zeros(lab.shape[0], dtype=bool)
                hit[around] = True
                stay = ~hit[key // p]
                rows, cols = _rows_of(adjacency, around)
                lv = lab[cols]
                bnd = lab[rows] != lv
                fresh = np.unique(rows[bnd] * p + lv[bnd])
                old_key, old_base = key[stay], base[stay]
            else:
                fresh = np.zeros(0, dtype=np.int64)
                old_key, old_base = key, base
            if signature != kept["signature"]:
                old_base = self._base_delta(old_key)
            else:
                again = np.flatnonzero(changed[lab[old_key // p]] | changed[old_key % p])
                if again.size:
                    old_base = old_base.copy()
                    old_base[again] = self._base_delta(old_key[again])
            key = np.concatenate([old_key, fresh])
            base = np.concatenate([old_base, self._base_delta(fresh)])
            if fresh.size:
                order = np.argsort(key, kind="stable")
                key, base = key[order], base[order]
        self._kept = {"key": key, "base": base, "labels": lab.copy(), "signature": signature,
                      "state": tuple(a.copy() for a in self._state_arrays())}
        return key, base

    def _disruption(self, unit, src, dst) -> np.ndarray:
        if self.disruption <= 0 or self.initial is None:
            return np.zeros(unit.shape[0])
        init = self.initial[unit]
        has = init >= 0
        moved = has & (dst != init)
        was = has & (src != init)
        return self.disruption * self.weight[unit] * (moved.astype(float) - was.astype(float))

    def _fixed_delta(self, unit, src, dst) -> np.ndarray:
        c = self.fixed_centres
        x = self.xy[unit]
        return self.weight[unit] * (((x - c[dst]) ** 2).sum(axis=1) - ((x - c[src]) ** 2).sum(axis=1))

    def transfer_delta(self, src, dst, f, w, wx, q) -> np.ndarray:
        """Merit change when load (f, w, wx, q) passes from territory src to dst (no disruption)."""
        return self._transfer_delta_state(
            self.R[src], self.R[dst], self.W[src], self.M[src], self.Q[src], self.W[dst], self.M[dst],
            self.Q[dst], self.share[src], self.share[dst], f, w, wx, q,
        )

    def _transfer_delta_state(self, r_src, r_dst, w_src, m_src, q_src, w_dst, m_dst, q_dst, s_src, s_dst,
                              f, w, wx, q) -> np.ndarray:
        """transfer_delta with the two territories' state given explicitly (for chained moves)."""
        new_src = r_src - f / s_src[:, None]
        new_dst = r_dst + f / s_dst[:, None]
        g = self.goal
        act = self.act[None, :]

        def exc(r):
            return np.maximum(np.abs(r - 1.0) - g, 0.0) * act

        delta = self.big * (exc(new_src) + exc(new_dst) - exc(r_src) - exc(r_dst)).sum(axis=1)
        if self.beta > 0:
            d_spread = (
                ((new_src - 1.0) ** 2 + (new_dst - 1.0) ** 2 - (r_src - 1.0) ** 2 - (r_dst - 1.0) ** 2) * act
            ).sum(axis=1)
            delta += self.beta * d_spread
        if self.inertia_weight > 0 and self.fixed_centres is None:
            d_in = (
                _inertia(w_src - w, m_src - wx, q_src - q)
                + _inertia(w_dst + w, m_dst + wx, q_dst + q)
                - _inertia(w_src, m_src, q_src)
                - _inertia(w_dst, m_dst, q_dst)
            )
            delta += self.inertia_weight * d_in / self.inertia_ref
        return delta

    def chain_candidates(self, unit, src, dst, delta, per_side: int = 3):
        """Two moves through a middle territory: u from A to B, then v from B to C (C != A).

        Such chains carry load across a territory that is itself in band, where neither move
        alone improves the merit. Scored exactly as the two moves in sequence.
        Kept between calls: only chains through a middle territory whose moves in or out (or
        whose neighbours' figures) changed are built again; the result equals
        ``full_chain_candidates`` in the same order.
        """
        p = self.p
        key = unit * p + dst
        signature = (self._merit_signature(), per_side)
        state = tuple(a.copy() for a in self._state_arrays())
        kept = getattr(self, "_kept_chains", None)
        ordered = key.size < 2 or bool(np.all(key[1:] > key[:-1]))
        if kept is None or kept["signature"] != signature or not ordered:
            out = self._chains(unit, src, dst, delta, per_side)
        else:
            changed = np.zeros(p, dtype=bool)
            for now, before in zip(state, kept["state"]):
                diff = now != before
                changed |= diff.any(axis=1) if diff.ndim > 1 else diff
            old_key, old_delta = kept["key"], kept["delta"]
            at = np.minimum(np.searchsorted(old_key, key), max(old_key.size - 1, 0))
            same = (old_key[at] == key) & (old_delta[at] == delta) if old_key.size else np.zeros(key.size, bool)
            same &= ~(changed[src] | changed[dst])
            back = np.minimum(np.searchsorted(key, old_key), max(key.size - 1, 0))
            gone = ~(key[back] == old_key) if key.size else np.ones(old_key.size, bool)
            stale = np.zeros(p, dtype=bool)
            stale[src[~same]] = True
            stale[dst[~same]] = True
            stale[kept["src"][gone]] = True
            stale[old_key[gone] % p] = True
            stale |= changed
            redo = stale[src] | stale[dst]
            fresh = self._chains(unit[redo], src[redo], dst[redo], delta[redo], per_side)
            if fresh is not None:
                mine = stale[fresh[3]]  # chains through other middles saw only part of their moves
                fresh = tuple(x[mine] for x in fresh)
            prev = kept["out"]
            if prev is not None:
                prev = tuple(x[~stale[prev[3]]] for x in prev)
            parts = [x for x in (prev, fresh) if x is not None and x[0].size]
            if not parts:
                out = None
            else:
                out = tuple(np.concatenate([x[k] for x in parts]) for k in range(6))
                order = np.argsort(out[3], kind="stable")
                out = tuple(x[order] for x in out)
        self._kept_chains = {"signature": signature, "state": state, "key": key, "delta": delta.copy(),
                             "src": src.copy(), "out": out} if ordered else None
        return out

    def full_chain_candidates(self, unit, src, dst, delta, per_side: int = 3):
        """``chain_candidates`` computed from scratch (the reference it must equal)."""
        return self._chains(unit, src, dst, delta, per_side, prefilter=False)

    def _chains(self, unit, src, dst, delta, per_side: int, prefilter: bool = True):
        p = self.p
        # C == A is an exchange (scored by swap_candidates); chains must start or end at a
        # territory outside the goal band, which is what they are for
        off = ((np.abs(self.R - 1.0) - self.goal > 1e-12) & (self.act[None, :] > 0)).any(axis=1)
        finite = np.isfinite(delta)
        if prefilter:
            # whole groups of moves (A -> B) that no kept chain can use: not from an off territory
            # into a middle with no move out to one, and not into an off territory from a middle
            # with no move in from one (the chains that remain and their order are unchanged)
            to_off = np.zeros(p, dtype=bool)
            to_off[src[finite & off[dst]]] = True
            from_off = np.zeros(p, dtype=bool)
            from_off[dst[finite & off[src]]] = True
            finite &= off[src] | to_off[dst] | off[dst] | from_off[src]
        ok = np.flatnonzero(finite)
        if ok.size == 0:
            return None
        key = src[ok] * p + dst[ok]
        order = ok[np.lexsort((delta[ok], key))]
        ks = src[order] * p + dst[order]
        start = np.r_[True, ks[1:] != ks[:-1]]
        gid = np.cumsum(start) - 1
        rank = np.arange(ks.size) - np.flatnonzero(start)[gid]
        sel = order[rank < per_side]
        inc = sel[np.argsort(dst[sel], kind="stable")]
        out = sel[np.argsort(src[sel], kind="stable")]
        cin = np.bincount(dst[inc], minlength=p)
        cout = np.bincount(src[out], minlength=p)
        tot = cin * cout
        if tot.sum() == 0:
            return None
        mid = np.repeat(np.arange(p), tot)
        within = np.arange(tot.sum()) - np.repeat(np.cumsum(tot) - tot, tot)
        i_pos = inc[(np.cumsum(cin) - cin)[mid] + within // cout[mid]]
        j_pos = out[(np.cumsum(cout) - cout)[mid] + within % cout[mid]]
        keep = (dst[j_pos] != src[i_pos]) & (off[src[i_pos]] | off[dst[j_pos]])
        i_pos, j_pos = i_pos[keep], j_pos[keep]
        if i_pos.size == 0:
            return None
        u, v = unit[i_pos], unit[j_pos]
        a, b, c = src[i_pos], dst[i_pos], dst[j_pos]
        wu = self.weight[u]
        wxu = wu[:, None] * self.xy[u]
        qu = wu * (self.xy[u] ** 2).sum(axis=1)
        fu = self.frac[u]
        wv = self.weight[v]
        wxv = wv[:, None] * self.xy[v]
        qv = wv * (self.xy[v] ** 2).sum(axis=1)
        # the second move sees the middle territory after it received u
        d2 = self._transfer_delta_state(
            self.R[b] + fu / self.share[b][:, None], self.R[c],
            self.W[b] + wu, self.M[b] + wxu, self.Q[b] + qu,
            self.W[c], self.M[c], self.Q[c], self.share[b], self.share[c],
            self.frac[v], wv, wxv, qv,
        )
        d2 += self._disruption(v, b, c)
        if self.fixed_centres is not None:
            d2 += self.inertia_weight * self._fixed_delta(v, b, c) / self.inertia_ref
        return u, v, a, b, c, delta[i_pos] + d2

    def swap_candidates(self, unit, src, dst, delta, per_side: int = 6):
        """Exchanges of a boundary unit of A (to B) with one of B (to A), best single moves first.

        Kept between calls: only pairs of territories whose moves (or figures) changed since the
        last call are paired again; the result equals ``full_swap_candidates`` in the same order.
        """
        p = self.p
        delta = np.where(np.isfinite(delta), delta, 0.0)  # swaps keep unit counts
        key = unit * p + dst
        signature = (self._merit_signature(), per_side)
        state = tuple(a.copy() for a in self._state_arrays())
        kept = getattr(self, "_kept_swaps", None)
        ordered = key.size < 2 or bool(np.all(key[1:] > key[:-1]))
        if kept is None or kept["signature"] != signature or not ordered:
            out = self._swap_pairs(unit, src, dst, delta, per_side)
        else:
            changed = np.zeros(p, dtype=bool)
            for now, before in zip(state, kept["state"]):
                diff = now != before
                changed |= diff.any(axis=1) if diff.ndim > 1 else diff
            old_key, old_delta = kept["key"], kept["delta"]
            # moves that are new or scored differently, and moves that are gone
            at = np.minimum(np.searchsorted(old_key, key), max(old_key.size - 1, 0))
            same = (old_key[at] == key) & (old_delta[at] == delta) if old_key.size else np.zeros(key.size, bool)
            same &= ~(changed[src] | changed[dst])
            back = np.minimum(np.searchsorted(key, old_key), max(key.size - 1, 0))
            gone = ~(key[back] == old_key) if key.size else np.ones(old_key.size, bool)
            a_old = kept["src"][gone]
            b_old = old_key[gone] % p
            stale = np.unique(np.concatenate([
                np.minimum(src[~same], dst[~same]) * p + np.maximum(src[~same], dst[~same]),
                np.minimum(a_old, b_old) * p + np.maximum(a_old, b_old),
            ]))
            pair = np.minimum(src, dst) * p + np.maximum(src, dst)
            redo = _member_of(pair, stale, p * p)
            fresh = self._swap_pairs(unit[redo], src[redo], dst[redo], delta[redo], per_side)
            prev = kept["out"]
            if prev is not None:
                stay = ~_member_of(prev[2] * p + prev[3], stale, p * p)
                prev = tuple(x[stay] for x in prev)
            parts = [x for x in (prev, fresh) if x is not None]
            if not parts:
                out = None
            else:
                out = tuple(np.concatenate([x[k] for x in parts]) for k in range(5))
                order = np.argsort(out[2] * p + out[3], kind="stable")
                out = tuple(x[order] for x in out)
                if out[0].size == 0:
                    out = None
        self._kept_swaps = {"signature": signature, "state": state, "key": key, "delta": delta,
                            "src": src.copy(), "out": out} if ordered else None
        return out

    def full_swap_candidates(self, unit, src, dst, delta, per_side: int = 6):
        """``swap_candidates`` computed from scratch (the reference it must equal)."""
        return self._swap_pairs(unit, src, dst, np.where(np.isfinite(delta), delta, 0.0), per_side)

    def _swap_pairs(self, unit, src, dst, delta, per_side: int):
        p = self.p
        if unit.size == 0:
            return None
        key = src * p + dst
        order = np.lexsort((delta, key))
        ks = key[order]
        start = np.r_[True, ks[1:] != ks[:-1]]
        gstart_all = np.flatnonzero(start)
        gid = np.cumsum(start) - 1
        rank = np.arange(ks.size) - gstart_all[gid]
        sel = order[rank < per_side]
        ks = key[sel]
        start = np.r_[True, ks[1:] != ks[:-1]]
        gstart = np.flatnonzero(start)
        gkey = ks[gstart]
        gsize = np.diff(np.r_[gstart, ks.size])
        a_terr = gkey // p
        b_terr = gkey % p
        rev = np.searchsorted(gkey, b_terr * p + a_terr)
        rev = np.minimum(rev, gkey.size - 1)
        valid = (gkey[rev] == b_terr * p + a_terr) & (a_terr < b_terr)
        g = np.flatnonzero(valid)
        if g.size == 0:
            return None
        h = rev[g]
        s1, s2 = gsize[g], gsize[h]
        tot = s1 * s2
        pair = np.repeat(np.arange(g.size), tot)
        within = np.arange(tot.sum()) - np.repeat(np.cumsum(tot) - tot, tot)
        i_pos = sel[gstart[g][pair] + within // s2[pair]]
        j_pos = sel[gstart[h][pair] + within % s2[pair]]
        ui, uj = unit[i_pos], unit[j_pos]
        a, b = src[i_pos], dst[i_pos]
        wi, wj = self.weight[ui], self.weight[uj]
        f = self.frac[ui] - self.frac[uj]
        wx = wi[:, None] * self.xy[ui] - wj[:, None] * self.xy[uj]
        q = wi * (self.xy[ui] ** 2).sum(axis=1) - wj * (self.xy[uj] ** 2).sum(axis=1)
        if self.fixed_centres is None:
            d = self.transfer_delta(a, b, f, wi - wj, wx, q)
        else:
            d = self.transfer_delta(a, b, f, wi - wj, wx, q)
            d += self.inertia_weight * (self._fixed_delta(ui, a, b) + self._fixed_delta(uj, b, a)) / self.inertia_ref
        d += self._disruption(ui, a, b) + self._disruption(uj, b, a)
        return ui, uj, a, b, d

    # ----- moves -------------------------------------------------------------------------------
    def apply(self, unit: int, src: int, dst: int) -> None:
        w = self.weight[unit]
        f = self.frac[unit]
        self.labels[unit] = dst
        self.R[src] -= f / self.share[src]
        self.R[dst] += f / self.share[dst]
        self.count[src] -= 1
        self.count[dst] += 1
        self.version[src] += 1
        self.version[dst] += 1
        self.W[src] -= w
        self.W[dst] += w
        xw = w * self.xy[unit]
        self.M[src] -= xw
        self.M[dst] += xw
        q = w * float(self.xy[unit] @ self.xy[unit])
        self.Q[src] -= q
        self.Q[dst] += q
        if self.initial is not None:
            init = self.initial[unit]
            if init >= 0:
                self.changed += int(dst != init) - int(src != init)

    def _cap_step(self, u: int, a: int, b: int) -> int:
        init = self.initial[u] if self.initial is not None else -1
        if init < 0:
            return 0
        return int(b != init) - int(a != init)

    def round(self, check_connected: bool, swaps: bool = False) -> int:
        """One round of improving moves; returns the number made.

        Candidates are scored together, then applied best first. The first move touching a
        territory uses its precomputed score (exact: nothing changed yet); later moves touching
        an already changed territory are re-scored against the current state and made only if
        they still improve, so every applied move lowers the merit.
        """
        unit, src, dst, delta = self.candidates()
        # kind 0 = move, 1 = exchange (u: A->B, v: B->A), 2 = chain (u: A->B, v: B->C)
        kinds = [(unit, unit, src, dst, dst, delta, 0)]
        if swaps and unit.size:
            sw = self.swap_candidates(unit, src, dst, delta)
            if sw is not None:
                kinds.append((sw[0], sw[1], sw[2], sw[3], sw[2], sw[4], 1))
            ch = self.chain_candidates(unit, src, dst, delta) if self.violated() else None
            if ch is not None:
                kinds.append((ch[0], ch[1], ch[2], ch[3], ch[4], ch[5], 2))
        ui = np.concatenate([k[0] for k in kinds])
        uj = np.concatenate([k[1] for k in kinds])
        a_all = np.concatenate([k[2] for k in kinds])
        b_all = np.concatenate([k[3] for k in kinds])
        c_all = np.concatenate([k[4] for k in kinds])
        d_all = np.concatenate([k[5] for k in kinds])
        kind_all = np.concatenate([np.full(k[0].shape[0], k[6], dtype=np.int8) for k in kinds])
        improving = d_all < -1e-10
        if self.focus_violated and self.beta > 0:
            # rebalance: only moves that touch a territory outside tolerance, so the search
            # pushes load along chains from where it is needed instead of polishing everywhere
            off = (np.abs(self.R - 1.0) - self.tolerance > 1e-12).any(axis=1)
            improving &= off[a_all] | off[b_all] | off[c_all]
        good = np.flatnonzero(improving)
        if good.size == 0:
            return 0
        order = good[np.argsort(d_all[good], kind="stable")]
        touched = np.zeros(self.p, dtype=np.int64)
        nb = self.model.neighbours
        lists = nb.lists
        labels = self.labels
        cap = self.cap
        made = 0
        limit = self.max_moves_per_round
        if limit is not None and limit <= 0:
            limit = max(1, int(np.sum((np.abs(self.R - 1.0) - self.tolerance > 1e-12).any(axis=1))))
        per_territory = self.moves_per_territory
        pairs = self.pairs
        rescored = 0
        rescore_budget = 3 * self.p + 100
        # Python lists: the loop may visit 100,000 moves of which few are made
        touched = touched.tolist()
        for a, b, c, u, v, kind in zip(a_all[order].tolist(), b_all[order].tolist(), c_all[order].tolist(),
                                       ui[order].tolist(), uj[order].tolist(), kind_all[order].tolist()):
            if labels[u] != a or (kind and labels[v] != b):
                continue  # moved earlier in this round
            if touched[a] or touched[b] or touched[c]:
                if max(touched[a], touched[b], touched[c]) >= per_territory or rescored >= rescore_budget:
                    continue
                rescored += 1
                # still bordering the receiving territory, and still improving?
                if not any(labels[w] == b and w != v for w in lists[u]):
                    continue
                if kind == 1 and not any(labels[w] == a and w != u for w in lists[v]):
                    continue
                if kind == 2:
                    if not any(labels[w] == c for w in lists[v]):
                        continue
                    if self._rescore_chain(u, v, a, b, c) >= -1e-10:
                        continue
                elif self._rescore(u, v, a, b, kind == 1) >= -1e-10:
                    continue
            if pairs and self._pairs_blocked(pairs, u, v, a, b, c, kind):
                continue
            if cap is not None:
                step = self._cap_step(u, a, b) + (self._cap_step(v, b, c) if kind else 0)
                if self.changed + step > cap:
                    continue
            if kind == 0:
                if check_connected and not self._keeps_connected(u):
                    self.failed_at[u] = self.version[a]
                    continue
                self.apply(u, a, b)
            elif kind == 1:
                if check_connected and not self._swap_keeps_connected(u, v, a, b):
                    continue
                self.apply(u, a, b)
                self.apply(v, b, a)
            else:
                if check_connected and not self._keeps_connected(u):
                    self.failed_at[u] = self.version[a]
                    continue
                self.apply(u, a, b)
                if check_connected and not self._keeps_connected(v):
                    self.apply(u, b, a)  # undo the first half
                    continue
                self.apply(v, b, c)
            touched[a] += 1
            touched[b] += 1
            touched[c] += 1
            made += 1
            if limit is not None and made >= limit:
                break
        return made

    def _pairs_blocked(self, pairs, u: int, v: int, a: int, b: int, c: int, kind: int) -> bool:
        """The move would put a unit beside one it may never share a territory with."""
        labels = self.labels
        if kind == 0:
            return pairs.blocked(u, labels, b)
        if kind == 1:
            return pairs.blocked(u, labels, b, ignore=v) or pairs.blocked(v, labels, a, ignore=u)
        return pairs.blocked(u, labels, b, ignore=v) or pairs.blocked(v, labels, c)

    def _rescore_chain(self, u: int, v: int, a: int, b: int, c: int) -> float:
        """Exact merit change of u: a -> b followed by v: b -> c, in the current state."""
        first = self._rescore(u, u, a, b, False)
        if not np.isfinite(first):
            return first
        self.apply(u, a, b)
        try:
            second = self._rescore(v, v, b, c, False)
        finally:
            self.apply(u, b, a)
        return first + second

    def _rescore(self, u: int, v: int, a: int, b: int, swap: bool) -> float:
        """Exact merit change of one move (or swap) in the current state (scalar arithmetic)."""
        if not swap and self.count[a] <= 1:
            return float("inf")
        f = self.frac[u].tolist()
        w = float(self.weight[u])
        x, y = self.xy[u].tolist()
        wx, wy, q = w * x, w * y, w * (x * x + y * y)
        if swap:
            fv = self.frac[v].tolist()
            f = [fi - fj for fi, fj in zip(f, fv)]
            wv = float(self.weight[v])
            xv, yv = self.xy[v].tolist()
            w -= wv
            wx -= wv * xv
            wy -= wv * yv
            q -= wv * (xv * xv + yv * yv)
        sa = float(self.share[a])
        sb = float(self.share[b])
        ra = self.R[a].tolist()
        rb = self.R[b].tolist()
        goal = self.goal
        gk = goal.tolist() if np.ndim(goal) else [float(goal)] * len(ra)
        big = self.big
        beta = self.beta
        delta = 0.0
        for k, active in enumerate(self.act.tolist()):
            if not active:
                continue
            g = gk[k]
            oa, ob = ra[k], rb[k]
            na, nb = oa - f[k] / sa, ob + f[k] / sb
            delta += big * (
                max(abs(na - 1.0) - g, 0.0) + max(abs(nb - 1.0) - g, 0.0)
                - max(abs(oa - 1.0) - g, 0.0) - max(abs(ob - 1.0) - g, 0.0)
            )
            if beta > 0:
                delta += beta * ((na - 1.0) ** 2 + (nb - 1.0) ** 2 - (oa - 1.0) ** 2 - (ob - 1.0) ** 2)
        if self.inertia_weight > 0:
            if self.fixed_centres is not None:
                d_in = self._fixed_scalar(u, a, b) + (self._fixed_scalar(v, b, a) if swap else 0.0)
            else:
                wa, wb = float(self.W[a]), float(self.W[b])
                ma, mb = self.M[a].tolist(), self.M[b].tolist()
                qa, qb = float(self.Q[a]), float(self.Q[b])
                d_in = (
                    _inertia_scalar(wa - w, ma[0] - wx, ma[1] - wy, qa - q)
                    + _inertia_scalar(wb + w, mb[0] + wx, mb[1] + wy, qb + q)
                    - _inertia_scalar(wa, ma[0], ma[1], qa)
                    - _inertia_scalar(wb, mb[0], mb[1], qb)
                )
            delta += self.inertia_weight * d_in / self.inertia_ref
        if self.disruption > 0 and self.initial is not None:
            delta += self.disruption * self._disruption_scalar(u, a, b)
            if swap:
                delta += self.disruption * self._disruption_scalar(v, b, a)
        return delta

    def _fixed_scalar(self, u: int, a: int, b: int) -> float:
        x, y = self.xy[u].tolist()
        ca = self.fixed_centres[a].tolist()
        cb = self.fixed_centres[b].tolist()
        return float(self.weight[u]) * (
            (x - cb[0]) ** 2 + (y - cb[1]) ** 2 - (x - ca[0]) ** 2 - (y - ca[1]) ** 2
        )

    def _disruption_scalar(self, u: int, a: int, b: int) -> float:
        init = int(self.initial[u])
        if init < 0:
            return 0.0
        return float(self.weight[u]) * (float(b != init) - float(a != init))

    def _keeps_connected(self, u: int) -> bool:
        """Exact: ``u`` can leave its territory without splitting it (ring test, then the
        territory's cut units, recomputed only when the territory changed since)."""
        cuts = getattr(self, "_cuts", None)
        if cuts is None:
            cuts = self._cuts = self.model.neighbours.cuts(self.p)
        return cuts.keeps_connected(u, self.labels, int(self.version[self.labels[u]]))

    def _swap_keeps_connected(self, u: int, v: int, a: int, b: int) -> bool:
        nb = self.model.neighbours
        labels = self.labels
        lists = nb.lists
        if not any(labels[w] == a and w != u for w in lists[v]):
            return False
        if not any(labels[w] == b and w != v for w in lists[u]):
            return False
        if not self._keeps_connected(u):
            self.failed_at[u] = self.version[a]
            return False
        if not self._keeps_connected(v):
            self.failed_at[v] = self.version[b]
            return False
        return True

    def pressure_levels(self, gentle: bool = True) -> list:
        """(balance weight, spread weight) steps, raised one by one while the tolerance is violated.

        The gentle start weighs one unit's worth of excess about like moving a unit by one
        territory radius, so cheap fixes are found first; the weight then rises until balance
        dominates, and finally the spread term lets load travel through territories in band.
        """
        levels = []
        if gentle:
            levels += [(c / self.p, 0.0) for c in (1.0, 4.0, 16.0, 64.0, 256.0) if c / self.p < BIG]
        levels += [(BIG, 0.0)] + [(BIG, b) for b in (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)]
        return levels

    def run(self, progress: Optional[Progress] = None, max_rounds: int = 100000, stop_when_balanced=False,
            levels=None) -> np.ndarray:
        """Improve until no move helps, or until ``progress`` is out of time (its deadline).

        When single moves stall, exchanges of two units are tried too; while the tolerance is
        still violated the pressure on balance is raised level by level (see pressure_levels).
        ``progress`` is checked for cancellation every round.
        """
        check = self.model.contiguous
        if levels is None:
            levels = self.pressure_levels()
        level = 0
        self.big, self.beta = levels[0]
        swaps = False
        rounds = 0
        # Every applied move lowers the merit, so a plan seen before at the same pressure means
        # the moves only traded float noise (e.g. exchanging two one-unit territories): that is a
        # stall, not progress. Plans are remembered by a digest, per pressure level.
        seen = {self._digest()}
        while rounds < max_rounds:
            rounds += 1
            if progress is not None:
                progress.check()
                if progress.out_of_time():
                    break
                if rounds % 5 == 0:
                    # the pressure level is the best available measure of how far the search is
                    progress.step(min(level, len(levels) - 1) / len(levels),
                                  f"Balancing and compacting: worst deviation {100 * self.worst_deviation():.2f} %")
            if stop_when_balanced and not self.violated():
                break
            made = self.round(check, swaps)
            if made:
                digest = self._digest()
                if digest not in seen:
                    seen.add(digest)
                    continue
            if not swaps:
                swaps = True
                continue
            seen = {self._digest()}
            if self.violated() and level + 1 < len(levels):
                level += 1
                self.big, self.beta = levels[level]
                continue
            if self.beta > 0 and not self.violated():
                # balance reached with the spread term on: polish compactness without it
                self.beta = 0.0
                level = len(levels)
                continue
            break
        self.rounds = rounds
        return self.labels

    def _digest(self) -> bytes:
        # a digest of the plan per round: of 16-bit labels when they fit (a quarter of the bytes
        # to hash at a million units); the digests are only compared with each other
        labels = self.labels
        if self.p < 1 << 15:
            labels = labels.astype(np.int16)
        return hashlib.blake2b(np.ascontiguousarray(labels), digest_size=16).digest()

    def polish_about_centre_units(self, progress: Optional[Progress] = None, passes: int = 4) -> np.ndarray:
        """Compact about a centre unit per territory (the unit nearest its weighted centre).

        Classical territory design measures compactness to a centre unit (a rep's base town); a
        territory whose weighted centre falls between units pays for the offset. Each pass fixes
        the centre units, improves the plan about them, then re-picks them; the cost about the
        best centre units never rises. Seeded problems already have fixed centres and skip this.
        """
        if self.model.seeds_xy is not None:
            return self.labels
        tree = cKDTree(self.xy)
        chosen = None
        for _ in range(passes):
            centres = self.M / np.maximum(self.W, 1e-300)[:, None]
            _, units = tree.query(centres)
            units = np.asarray(units)
            if chosen is not None and np.array_equal(units, chosen):
                break
            chosen = units
            self.fixed_centres = self.xy[chosen]
            self.inertia_ref = max(self.inertia_total(), INERTIA_FLOOR * float(self.weight.sum()))
            self.run(progress, levels=self.pressure_levels(gentle=False))
        self.fixed_centres = None
        return self.labels


def _rows_of(adjacency, rows: np.ndarray) -> tuple:
    """(row, column) of every stored entry in the given rows of a CSR matrix."""
    indptr = adjacency.indptr
    starts = indptr[rows].astype(np.int64)
    counts = indptr[rows + 1].astype(np.int64) - starts
    total = int(counts.sum())
    pos = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(starts, counts)
    return np.repeat(rows, counts), adjacency.indices[pos].astype(np.int64)


def _inertia_scalar(w: float, mx: float, my: float, q: float) -> float:
    return q - (mx * mx + my * my) / w if w > 1e-300 else 0.0


def _inertia(w, m, q) -> np.ndarray:
    """Weighted inertia about the weighted centre from moments (0 for a weightless territory)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        val = q - (m**2).sum(axis=1) / np.where(w > 1e-300, w, 1.0)
    return np.where(w > 1e-300, val, 0.0)


def repair_contiguity(model: Model, labels: np.ndarray, max_passes: int = 200) -> tuple:
    """Give every detached piece of a territory to a neighbouring territory.

    The piece of a territory that holds its locked units (or else its heaviest piece) stays; every
    other piece joins the adjacent territory whose balance it suits best. Locked units of one
    territory lying in different pieces are joined by the shortest path through units that are
    not locked elsewhere. Returns (labels, territories whose locked units cannot be joined).
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    p = model.p
    adj = model.adjacency
    indptr, indices = adj.indptr, adj.indices
    locked = model.locked
    weight = model.weight
    stuck_territories: set = set()
    tol = model.tolerances if model.tolerances is not None else model.tolerance
    for _ in range(max_passes):
        piece = territory_pieces(labels, adj)
        npieces = int(piece.max()) + 1
        piece_label = np.full(npieces, -1, dtype=np.int64)
        piece_label[piece] = labels
        per_terr = np.bincount(piece_label, minlength=p)
        if np.all(per_terr <= 1):
            break
        pweight = np.bincount(piece, weight, minlength=npieces)
        plocked = np.bincount(piece, (locked >= 0).astype(float), minlength=npieces)
        psize = np.bincount(piece, minlength=npieces)
        # main piece per territory: most locked units, then heaviest, then largest, then lowest id
        order = np.lexsort((np.arange(npieces), -psize, -pweight, -plocked, piece_label))
        first = np.r_[True, piece_label[order][1:] != piece_label[order][:-1]]
        is_main = np.zeros(npieces, dtype=bool)
        is_main[order[first]] = True
        ratios = model.ratios(labels)
        moved_any = False
        main_unit = is_main[piece]
        # fragments adjacent to some other territory's main piece
        coo_u = np.repeat(np.arange(model.n), np.diff(indptr))
        coo_v = indices
        frag_edge = (~main_unit[coo_u]) & main_unit[coo_v] & (labels[coo_u] != labels[coo_v])
        frag_of_edge = piece[coo_u[frag_edge]]
        dst_of_edge = labels[coo_v[frag_edge]]
        wsum = np.maximum(np.bincount(labels, weight, minlength=p), 1e-300)
        centre = np.column_stack(
            [np.bincount(labels, weight * model.xy[:, d], minlength=p) / wsum for d in range(2)]
        )
        for frag in np.unique(frag_of_edge).tolist():
            members = np.flatnonzero(piece == frag)
            own = int(piece_label[frag])
            if plocked[frag] > 0:
                if _join_locked_piece(model, labels, members, own, piece, is_main):
                    moved_any = True
                else:
                    stuck_territories.add(own)
                continue
            options = np.unique(dst_of_edge[frag_of_edge == frag])
            load = model.frac[members].sum(axis=0)
            best, best_score = -1, None
            cen = (weight[members][:, None] * model.xy[members]).sum(axis=0) / max(weight[members].sum(), 1e-300)
            for b in options.tolist():
                r_new = ratios[b] + load / model.share[b]
                r_own = ratios[own] - load / model.share[own]
                over = (np.maximum(np.abs(r_new - 1.0) - tol, 0) * model.active).sum()
                over += (np.maximum(np.abs(r_own - 1.0) - tol, 0) * model.active).sum()
                spread = (((r_new - 1.0) ** 2) * model.active).sum()
                near = float(((centre[b] - cen) ** 2).sum())
                score = (over, spread + 1e-3 * near)
                if best_score is None or score < best_score:
                    best, best_score = b, score
            labels[members] = best
            ratios[best] += load / model.share[best]
            ratios[own] -= load / model.share[own]
            moved_any = True
        if not moved_any:
            break
    return labels, sorted(stuck_territories)


def _join_locked_piece(model, labels, members, own, piece, is_main) -> bool:
    """Claim the shortest path of units (not locked elsewhere) from a locked piece to the main one."""
    target = is_main[piece] & (labels == own)
    if not np.any(target):
        return False
    lists = model.neighbours.lists
    locked = model.locked
    prev = {int(u): -1 for u in members.tolist()}
    frontier = list(prev)
    found = -1
    while frontier and found < 0:
        nxt = []
        for u in frontier:
            for v in lists[u]:
                if v in prev:
                    continue
                if locked[v] >= 0 and locked[v] != own:
                    continue
                prev[v] = u
                if target[v]:
                    found = v
                    break
                nxt.append(v)
            if found >= 0:
                break
        frontier = nxt
    if found < 0:
        return False
    u = prev[found]
    while u >= 0 and prev[u] >= 0:
        labels[u] = own
        u = prev[u]
    return True
