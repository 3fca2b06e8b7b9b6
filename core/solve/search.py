"""The local search that finishes balance and compactness with single moves.

Moves send one boundary unit to a neighbouring territory; when they stall, exchanges of two
units and chains of two moves through a middle territory are tried too. Every round has all
candidates scored at once (moves.py; merit.py holds the merit formula), then applies the best
improving ones, best first: the first move touching a territory uses its precomputed score (exact:
nothing changed yet), later moves touching an already changed territory are re-scored in the
current state and made only if they still improve, so every applied move lowers the merit.
A donor territory stays connected: the unit that leaves it must not be one of its cut units
(checked locally, then by the territory's cut units, kept until it changes). While the tolerance
is violated the pressure on balance is raised level by level.
"""

from __future__ import annotations

import hashlib
from typing import Optional

import numpy as np
from scipy.spatial import cKDTree

from ..progress import Progress
from .heavy_pairs import heavy_pairs
from .merit import BIG, Merit
from .model import Model
from .moves import CandidateMoves

#: Least inertia reference, as a fraction of the plan's total weight (positions are scaled so that
#: one territory holding everything has an inertia of about that total).
INERTIA_FLOOR = 1e-6

__all__ = ["BIG", "INERTIA_FLOOR", "LocalSearch"]


class LocalSearch:
    """Boundary-move local search over a complete labelling.

    The territories' figures are kept up to date with every move: ``ratios`` (p, m') load over
    target, ``count`` units, ``mass`` compactness weight, ``moment`` (p, 2) weight times position
    and ``second_moment`` weight times squared distance from the origin.
    """

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
        self.territory_count = model.p
        self.labels = np.asarray(labels, dtype=np.int64).copy()
        self.goal = np.asarray(goal, dtype=float) if np.ndim(goal) else float(goal)
        self.tolerance = model.tolerances if model.tolerances is not None else model.tolerance
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
        self.version = np.zeros(self.territory_count, dtype=np.int64)
        self.failed_at = np.full(model.n, -1, dtype=np.int64)
        self.pairs = heavy_pairs(model)
        self.pair_row = self.pairs.row_of() if self.pairs else None
        self.merit = Merit(self)
        self.candidate_moves = CandidateMoves(self)
        self.cuts = None  # the territories' cut units, made at the first connectivity check
        self._recompute()
        # inertia is measured against the start's (floored: with one unit per territory it is 0, and
        # float noise divided by it would outweigh every balance term and make moves cycle)
        self.inertia_ref = max(self.inertia_total(), INERTIA_FLOOR * float(self.weight.sum()))
        self.changed = self.changed_count()

    # ----- state -------------------------------------------------------------------------------
    def _recompute(self) -> None:
        p, labels, weight = self.territory_count, self.labels, self.weight
        self.ratios = self.model.ratios(labels)
        self.count = np.bincount(labels, minlength=p).astype(np.int64)
        self.mass = np.bincount(labels, weight, minlength=p)
        self.moment = np.column_stack([np.bincount(labels, weight * self.xy[:, 0], minlength=p),
                                       np.bincount(labels, weight * self.xy[:, 1], minlength=p)])
        self.second_moment = np.bincount(labels, weight * (self.xy**2).sum(axis=1), minlength=p)

    def _territory_inertia(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.second_moment - (self.moment**2).sum(axis=1) / np.where(self.mass > 0, self.mass, 1.0)

    def inertia_total(self) -> float:
        if self.fixed_centres is not None:
            squared = ((self.xy - self.fixed_centres[self.labels]) ** 2).sum(axis=1)
            return float((self.weight * squared).sum())
        return float(np.maximum(self._territory_inertia(), 0.0).sum())

    def centre_unit_cost(self) -> float:
        """Cost about each territory's best centre unit (the unit nearest its weighted centre)."""
        if self.model.seeds_xy is not None:
            return self.inertia_total()
        centres = self.moment / np.maximum(self.mass, 1e-300)[:, None]
        distance, _ = cKDTree(self.xy).query(centres)
        return float(np.maximum(self._territory_inertia(), 0.0).sum() + (self.mass * np.asarray(distance) ** 2).sum())

    def changed_count(self) -> int:
        if self.initial is None:
            return 0
        valid = self.initial >= 0
        return int(np.sum(self.labels[valid] != self.initial[valid]))

    def excess(self, band: Optional[float] = None) -> float:
        band = self.goal if band is None else band
        return float((np.maximum(np.abs(self.ratios - 1.0) - band, 0.0) * self.merit.active).sum())

    def worst_deviation(self) -> float:
        """The largest |sum / target − 1| over the territories and balanced measures (a fraction)."""
        return float((np.abs(self.ratios - 1.0) * self.merit.active).max(initial=0.0))

    def violated(self) -> bool:
        """Some territory is outside the user's tolerance on some measure."""
        return self.excess(self.tolerance) > 1e-12

    # ----- candidates (moves.py) ---------------------------------------------------------------
    def candidates(self):
        """All boundary moves (unit, donor, receiver) with their merit change.

        The boundary moves and their scores are kept between calls: only units that moved since
        the last call and their neighbours get their moves listed again, and only moves from or
        to a territory whose state changed are scored again (all of them when the merit's weights
        changed). The result equals ``full_candidates()`` exactly, in the same order.
        """
        return self.candidate_moves.moves()

    def full_candidates(self):
        """``candidates()`` computed from scratch over every edge (the reference it must equal)."""
        return self.candidate_moves.full_moves()

    def chain_candidates(self, unit, src, dst, delta, per_side: int = 3):
        """Two moves through a middle territory: u from A to B, then v from B to C (C != A).

        Such chains carry load across a territory that is itself in band, where neither move
        alone improves the merit. Scored exactly as the two moves in sequence. Kept between
        calls like the moves; the result equals ``full_chain_candidates`` in the same order.
        """
        return self.candidate_moves.chains(unit, src, dst, delta, per_side)

    def full_chain_candidates(self, unit, src, dst, delta, per_side: int = 3):
        """``chain_candidates`` computed from scratch (the reference it must equal)."""
        return self.candidate_moves.full_chains(unit, src, dst, delta, per_side)

    def swap_candidates(self, unit, src, dst, delta, per_side: int = 6):
        """Exchanges of a boundary unit of A (to B) with one of B (to A), best single moves first.

        Kept between calls like the moves; the result equals ``full_swap_candidates`` in the
        same order.
        """
        return self.candidate_moves.exchanges(unit, src, dst, delta, per_side)

    def full_swap_candidates(self, unit, src, dst, delta, per_side: int = 6):
        """``swap_candidates`` computed from scratch (the reference it must equal)."""
        return self.candidate_moves.full_exchanges(unit, src, dst, delta, per_side)

    # ----- moves -------------------------------------------------------------------------------
    def apply(self, unit: int, src: int, dst: int) -> None:
        w = self.weight[unit]
        f = self.model.frac[unit]
        share = self.model.share
        self.labels[unit] = dst
        self.ratios[src] -= f / share[src]
        self.ratios[dst] += f / share[dst]
        self.count[src] -= 1
        self.count[dst] += 1
        self.version[src] += 1
        self.version[dst] += 1
        self.mass[src] -= w
        self.mass[dst] += w
        xw = w * self.xy[unit]
        self.moment[src] -= xw
        self.moment[dst] += xw
        q = w * float(self.xy[unit] @ self.xy[unit])
        self.second_moment[src] -= q
        self.second_moment[dst] += q
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
            off = (np.abs(self.ratios - 1.0) - self.tolerance > 1e-12).any(axis=1)
            improving &= off[a_all] | off[b_all] | off[c_all]
        good = np.flatnonzero(improving)
        if good.size == 0:
            return 0
        order = good[np.argsort(d_all[good], kind="stable")]
        touched = np.zeros(self.territory_count, dtype=np.int64)
        lists = self.model.neighbours.lists
        labels = self.labels
        cap = self.cap
        made = 0
        limit = self.max_moves_per_round
        if limit is not None and limit <= 0:
            limit = max(1, int(np.sum((np.abs(self.ratios - 1.0) - self.tolerance > 1e-12).any(axis=1))))
        per_territory = self.moves_per_territory
        pairs = self.pairs
        rescored = 0
        rescore_budget = 3 * self.territory_count + 100
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
                elif self.merit.rescore(u, v, a, b, kind == 1) >= -1e-10:
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
        first = self.merit.rescore(u, u, a, b, False)
        if not np.isfinite(first):
            return first
        self.apply(u, a, b)
        try:
            second = self.merit.rescore(v, v, b, c, False)
        finally:
            self.apply(u, b, a)
        return first + second

    def _keeps_connected(self, u: int) -> bool:
        """Exact: ``u`` can leave its territory without splitting it (ring test, then the
        territory's cut units, recomputed only when the territory changed since)."""
        if self.cuts is None:
            self.cuts = self.model.neighbours.cuts(self.territory_count)
        return self.cuts.keeps_connected(u, self.labels, int(self.version[self.labels[u]]))

    def _swap_keeps_connected(self, u: int, v: int, a: int, b: int) -> bool:
        labels = self.labels
        lists = self.model.neighbours.lists
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
            levels += [(c / self.territory_count, 0.0) for c in (1.0, 4.0, 16.0, 64.0, 256.0)
                       if c / self.territory_count < BIG]
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
        if self.territory_count < 1 << 15:
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
            centres = self.moment / np.maximum(self.mass, 1e-300)[:, None]
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
