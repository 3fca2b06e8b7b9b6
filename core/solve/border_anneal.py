"""Annealing of single border moves on the worst deviation over every measure.

When measures pull apart (accounts spread over small towns, population in the metros) a
balanced plan has metro territories reaching far out into rural units to pick up their share of
the spread measure, and rural territories taking a slice of a metro. Merging and splitting pairs
of territories does not find such plans: no single pair can fix a metro territory that needs
dozens of rural units from three territories away. What does find them is the plain move: one
unit crosses a border, both territories stay connected, and steps that make the plan worse are
taken now and then while a temperature falls.

The score of a plan is an energy that follows the worst deviation: per territory and measure
(|ratio - 1| / tolerance) ** power, summed, so the territories furthest off dominate and every
move that brings one of them nearer its target counts. A small compactness term (the moment of
inertia relative to the start's) keeps territories round where balance lets them.

Moves are drawn uniformly over the border edges and scored in plain Python (two territories,
a handful of measures): with thousands of units this is far cheaper per move than any array
operation. The donor stays connected (a unit that is a cut unit of its territory never moves),
locked units stay, and a move that would put two units too heavy to share a territory together
is never made. The best plan seen (worst deviation first, then total excess) is returned, so the
result never ranks below the start.

For the rebalance (core.solve.border_rebalance) a move away from a unit's initial territory can be
charged for the workload it moves, and :meth:`BorderAnneal.settle` lowers the workload moved with
moves that never leave the band.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from ..clock import CLOCK
from ..progress import Progress
from .heavy_pairs import heavy_pairs
from .model import Model
from .quality import PlanKey, plan_key, tolerance_vector

#: Exponent of the energy, the (sum of (|deviation| / tolerance) ** POWER) ** (1 / POWER) over
#: territories and measures: high enough that it follows the worst deviation, low enough that
#: every territory off target still counts.
POWER = 8.0
#: Weight of the compactness term (total inertia relative to the start's), in tolerances: small,
#: so that compactness gives way wherever balance needs long territories.
COMPACTNESS = 0.02
#: Temperatures (in tolerances of the energy) at the start and at the end of one cooling. Hot
#: enough that territories already in band pass load on: colder runs stall far out of tolerance.
TEMPERATURE = 0.2
FINAL_TEMPERATURE = 0.02
#: Proposals of one cooling per unit (counted, not timed: the same seed takes the same path on any
#: machine), and at most this many in all.
SWEEP_PER_UNIT = 2000
MAX_SWEEP = 3_000_000
#: Every FOCUS-th batch of proposals only moves units of the territories within 70 % of the worst
#: deviation: the other batches let load diffuse through territories in band, these take it
#: where it is needed (on conflict-1000 every seed then reached the tolerance, two of three without).
FOCUS = 2
#: Random numbers drawn per batch (a call into NumPy per move would cost more than the move).
BATCH = 4096
#: With ``fit`` (a time limit set), after this many batches the cooling is shortened so that it ends
#: by the deadline at the rate of proposals measured so far: a cooling cut by the clock while still
#: hot returns a plan far worse than a shorter whole one (NAT counties, 3,085 units).
FIT_AFTER = 8
#: With ``fit``, when less than this share of a cooling fits in the time left, the run stops there
#: (``self.unaffordable``): a cooling squeezed that much does no better than the merge-and-resplit in
#: the same time (NAT counties, 3,085 units, 60 s: 36.5-47.8 % with it, 36.0-38.4 % without).
AFFORD = 0.5


class BorderAnneal:
    """Single-unit border moves, annealed, over a complete contiguous labelling."""

    def __init__(self, model: Model, labels: np.ndarray, rng: np.random.Generator, tolerance=None,
                 power: float = POWER, compactness: float = COMPACTNESS, initial: Optional[np.ndarray] = None,
                 disruption: float = 0.0):
        self.model = model
        self.p = model.p
        self.rng = rng
        if tolerance is None:
            tolerance = model.tolerance if model.tolerances is None else model.tolerances
        self.tol = tolerance_vector(tolerance, model.m)
        self.act = np.asarray(model.active, dtype=bool)
        self.power = float(power)
        self.compactness = float(compactness)
        self.labels = np.asarray(labels, dtype=np.int64).copy()
        measures = np.flatnonzero(self.act)
        self.measures = measures
        tol = np.maximum(self.tol[measures], 1e-6)
        # per unit: its load on each active measure in tolerances of a unit share (divided by the
        # territory's share when it moves); per territory: 1 / share
        self.unit_load = [tuple(row) for row in (model.frac[:, measures] / tol[None, :]).tolist()]
        self.inv_share = (1.0 / model.share).tolist()
        self.inv_tol = (1.0 / tol).tolist()
        w = model.weight
        xy = model.xy
        self.unit_moment = list(zip(w.tolist(), (w * xy[:, 0]).tolist(), (w * xy[:, 1]).tolist(),
                                    (w * (xy**2).sum(axis=1)).tolist()))
        self.lists = model.neighbours.lists
        self.movable = (np.asarray(model.locked) < 0).tolist()
        self.pairs = heavy_pairs(model)
        self.partners = {int(u): v.tolist() for u, v in self.pairs.partners.items()} if self.pairs else {}
        eu, ev = model.edges
        self.edge_from = eu.tolist()
        self.edge_to = ev.tolist()
        # disruption: moving a unit away from its ``initial`` territory costs ``disruption`` tolerances
        # of the energy per whole workload (mean share over the active measures); coming back earns it
        self.disruption = float(disruption) if initial is not None else 0.0
        home = np.asarray(initial, dtype=np.int64) if initial is not None else np.full(model.n, -1)
        self.home = home.tolist()
        share = model.frac[:, measures].mean(axis=1) if measures.size else np.zeros(model.n)
        self.move_cost = (self.disruption * share * (home >= 0)).tolist()
        self._load_state(self.labels)
        self.inertia_ref = max(sum(self.inertia), 1e-12)
        self.proposals = 0
        self.cooled = False  # the last run cooled down to its final temperature at least once
        self.unaffordable = False  # the last run stopped because too little of a cooling fitted (``fit``)
        self.accepted = 0
        # each cooling restarts from the best plan at reheat × the last start temperature
        self.reheat = 1.0
        # every focus-th batch of proposals moves only the territories furthest off (0: never)
        self.focus = FOCUS

    def sweep(self) -> int:
        """Proposals of one cooling: SWEEP_PER_UNIT per unit, at most MAX_SWEEP."""
        return int(min(SWEEP_PER_UNIT * self.model.n, MAX_SWEEP))

    # ----- state -------------------------------------------------------------------------------
    def _load_state(self, labels: np.ndarray) -> None:
        p = self.p
        self.lab = np.asarray(labels, dtype=np.int64).tolist()
        ratios = self.model.ratios(np.asarray(labels, dtype=np.int64))[:, self.measures]
        # deviation of each territory and measure, in tolerances (0 = on target, ±1 = at the edge)
        self.dev = ((ratios - 1.0) * np.asarray(self.inv_tol)[None, :]).tolist()
        self.energy = [self._energy(row) for row in self.dev]
        moments = np.zeros((p, 4))
        arr = np.asarray(self.unit_moment)
        for c in range(4):
            moments[:, c] = np.bincount(labels, arr[:, c], minlength=p)
        self.moment = moments.tolist()
        self.inertia = [self._inertia(row) for row in self.moment]
        self.count = np.bincount(labels, minlength=p).tolist()

    def _energy(self, row) -> float:
        power = self.power
        return sum(abs(d) ** power for d in row)

    @staticmethod
    def _inertia(mom) -> float:
        w, mx, my, q = mom
        return max(q - (mx * mx + my * my) / w, 0.0) if w > 0 else 0.0

    def key(self) -> PlanKey:
        return plan_key(self.model.ratios(np.asarray(self.lab, dtype=np.int64)), self.act, self.tol)

    def _worst_excess(self) -> tuple:
        """(worst |deviation| in tolerances, total excess beyond tolerance in tolerances)."""
        worst = 0.0
        excess = 0.0
        for row in self.dev:
            for d in row:
                d = abs(d)
                if d > worst:
                    worst = d
                if d > 1.0:
                    excess += d - 1.0
        return worst, excess

    def _polished(self, best: list, worst: float, excess: float, polish: Callable) -> tuple:
        """(plan, worst, excess): ``best`` finished by ``polish`` when that ranks higher."""
        done = np.asarray(polish(np.asarray(best, dtype=np.int64)), dtype=np.int64)
        self._load_state(done)
        got_worst, got_excess = self._worst_excess()
        if got_worst < worst - 1e-12 or (got_worst <= worst + 1e-12 and got_excess < excess - 1e-12):
            return self.lab[:], got_worst, got_excess
        self._load_state(np.asarray(best, dtype=np.int64))
        return best, worst, excess

    # ----- moves -------------------------------------------------------------------------------
    def _keeps_connected(self, unit: int) -> bool:
        """Taking ``unit`` out leaves its territory in one piece (exact)."""
        nb = self.model.neighbours
        lab = self.lab
        if nb.ring_keeps_connected(unit, lab):
            return True
        quick = nb.bounded_keeps_connected(unit, lab)
        if quick is not None:
            return quick
        return nb.removal_keeps_connected(unit, lab, limit=self.model.n)

    def _allowed(self, unit: int, territory: int) -> bool:
        """``unit`` may join ``territory``: no heavy partner there, and its own stays connected."""
        return not (self.partners and self._blocked(unit, territory)) and self._keeps_connected(unit)

    def _blocked(self, unit: int, territory: int) -> bool:
        mates = self.partners.get(unit)
        if not mates:
            return False
        lab = self.lab
        return any(lab[v] == territory for v in mates)

    def run(self, deadline: float, progress: Optional[Progress] = None, goal: float = 1.0,
            temperature: float = TEMPERATURE, final_temperature: float = FINAL_TEMPERATURE,
            sweep: Optional[int] = None,
            max_proposals: Optional[int] = None, patience: Optional[int] = None,
            polish: Optional[Callable] = None,
            polish_below: float = 1.5, fit: bool = False, afford: Optional[float] = None) -> np.ndarray:
        """Anneal until the worst deviation is at most ``goal`` tolerances, the engine's clock reaches
        ``deadline`` or ``max_proposals`` moves have been proposed; returns the best plan seen.

        The temperature (in units of the energy) falls geometrically from ``temperature`` to
        ``final_temperature`` over ``sweep`` proposals; then the search starts again from the best
        plan at the start temperature. ``patience``: stop after that many proposals without a
        better plan. ``polish(labels) -> labels`` finishes the best plan with the engine's single
        moves when it is within ``polish_below`` tolerances, once per cooling: when that plan is
        better, the search goes on from it. ``fit``: shorten the cooling to end by ``deadline`` (see
        FIT_AFTER), and stop when less than ``afford`` of it fits (None: AFFORD; 0: never stop for that);
        ``self.cooled`` says afterwards whether a whole cooling ran.
        """
        self.cooled = False
        self.unaffordable = False
        if self.p < 2:
            return self.labels.copy()
        if sweep is None:
            sweep = self.sweep()
        lab = self.lab
        dev = self.dev
        energy = self.energy
        moment = self.moment
        inertia = self.inertia
        count = self.count
        unit_load = self.unit_load
        unit_moment = self.unit_moment
        inv_share = self.inv_share
        movable = self.movable
        edge_from, edge_to = self.edge_from, self.edge_to
        n_edges = len(edge_from)
        power = self.power
        weight = self.compactness / self.inertia_ref
        m = len(self.measures)
        disrupt = self.disruption > 0
        home = self.home
        move_cost = self.move_cost
        best = list(lab)
        best_worst, best_excess = self._worst_excess()
        inv_power = 1.0 / power
        total = sum(energy)
        norm = total ** inv_power
        first = self.proposals
        since_best = 0
        cooling = (final_temperature / temperature) ** (1.0 / max(sweep, 1))
        temp = temperature
        edges: list = []
        draws: list = []
        at = BATCH
        batches = 0
        focus = False
        hot: list = []
        start = CLOCK()
        last_report = start
        while best_worst > goal + 1e-9:
            if at >= BATCH:
                edges = self.rng.integers(n_edges, size=BATCH).tolist()
                draws = self.rng.random(BATCH).tolist()
                at = 0
                batches += 1
                focus = self.focus > 0 and batches % self.focus == 0
                if focus:
                    worst_now = max(max(abs(d) for d in row) for row in dev)
                    hot = [max(abs(d) for d in row) >= 0.7 * worst_now for row in dev]
                now = CLOCK()
                if now >= deadline:
                    break
                if fit and batches == FIT_AFTER + 1 and now > start and temp > final_temperature:
                    # proposals that fit in the time left at the rate so far: cool over those
                    done = self.proposals - first
                    left = done / (now - start) * (deadline - now)
                    if left < (AFFORD if afford is None else afford) * (sweep - done):
                        self.unaffordable = True
                        break
                    if left < sweep - done:
                        cooling = (final_temperature / temp) ** (1.0 / max(left, 1.0))
                if max_proposals is not None and self.proposals - first >= max_proposals:
                    break
                if patience is not None and since_best >= patience:
                    break
                if progress is not None and now - last_report > 0.25:
                    last_report = now
                    progress.step(min((now - start) / max(deadline - start, 1e-9), 1.0),
                                  f"Searching: worst deviation {100 * best_worst * float(np.min(self.tol)):.2f} %")
            e = edges[at]
            draw = draws[at]
            at += 1
            u = edge_from[e]
            a = lab[u]
            b = lab[edge_to[e]]
            if a == b or not movable[u] or count[a] <= 1:
                continue
            if focus and not (hot[a] or hot[b]):
                continue
            self.proposals += 1
            since_best += 1
            temp *= cooling
            if temp < final_temperature:
                # cold: start again from the best plan, warm
                self.cooled = True
                temperature = max(temperature * self.reheat, 10 * final_temperature)
                temp = temperature
                if polish is not None and best_worst < polish_below:
                    best, best_worst, best_excess = self._polished(best, best_worst, best_excess, polish)
                if self.lab != best:
                    self._load_state(np.asarray(best, dtype=np.int64))
                if lab is not self.lab:
                    lab, dev, energy, moment, inertia, count = (self.lab, self.dev, self.energy, self.moment,
                                                                self.inertia, self.count)
                    total = sum(energy)
                    norm = total ** inv_power
                continue
            load = unit_load[u]
            sa, sb = inv_share[a], inv_share[b]
            row_a, row_b = dev[a], dev[b]
            new_a = [row_a[i] - load[i] * sa for i in range(m)]
            new_b = [row_b[i] + load[i] * sb for i in range(m)]
            ea = sum(abs(d) ** power for d in new_a)
            eb = sum(abs(d) ** power for d in new_b)
            w_u, x_u, y_u, q_u = unit_moment[u]
            ma, mb = moment[a], moment[b]
            mom_a = [ma[0] - w_u, ma[1] - x_u, ma[2] - y_u, ma[3] - q_u]
            mom_b = [mb[0] + w_u, mb[1] + x_u, mb[2] + y_u, mb[3] + q_u]
            ia = self._inertia(mom_a)
            ib = self._inertia(mom_b)
            new_total = total + ea + eb - energy[a] - energy[b]
            new_norm = new_total ** inv_power if new_total > 0 else 0.0
            delta = new_norm - norm + weight * (ia + ib - inertia[a] - inertia[b])
            if disrupt:
                h = home[u]
                delta += move_cost[u] * ((b != h) - (a != h))
            if delta > 0 and draw >= math.exp(-delta / temp):
                continue
            if not self._allowed(u, b):
                continue
            lab[u] = b
            dev[a], dev[b] = new_a, new_b
            energy[a], energy[b] = ea, eb
            total, norm = new_total, new_norm
            moment[a], moment[b] = mom_a, mom_b
            inertia[a], inertia[b] = ia, ib
            count[a] -= 1
            count[b] += 1
            self.accepted += 1
            if delta < 0:
                worst, excess = self._worst_excess()
                if worst < best_worst - 1e-12 or (worst <= best_worst + 1e-12 and excess < best_excess - 1e-12):
                    best, best_worst, best_excess = list(lab), worst, excess
                    since_best = 0
        if polish is not None and best_worst < polish_below and best_worst > goal + 1e-9:
            best, best_worst, best_excess = self._polished(best, best_worst, best_excess, polish)
        out = np.asarray(best, dtype=np.int64)
        self._load_state(out)
        self.labels = out
        return out

    def settle(self, deadline: float, goal: float = 1.0, temperature: float = 1.0,
               final_temperature: float = 0.02, proposals: Optional[int] = None,
               check: Optional[Callable] = None) -> np.ndarray:
        """Anneal the workload moved away from ``initial`` down, never leaving the band: a move is
        made only when both territories stay within ``goal`` tolerances on every measure (or, for
        one already beyond, get no further off). The energy is the workload moved in mean unit
        shares; temperatures are in those units. Returns the plan that moves least (the start when
        nothing moves less). Needs ``initial``."""
        if self.p < 2 or not any(c > 0 for c in self.move_cost):
            return np.asarray(self.lab, dtype=np.int64)
        lab, dev, count = self.lab, self.dev, self.count
        home = self.home
        scale = self.model.n / max(sum(self.move_cost), 1e-300)  # energy in mean unit shares
        cost = [c * scale for c in self.move_cost]
        moved = sum(cost[u] for u in range(len(lab)) if home[u] >= 0 and lab[u] != home[u])
        best, best_moved = list(lab), moved
        if proposals is None:
            proposals = self.sweep()
        cooling = (final_temperature / temperature) ** (1.0 / max(proposals, 1))
        temp = temperature
        done = 0
        for u, a, b, draw in self._border_draws(deadline, check):
            if done >= proposals:
                break
            done += 1
            temp *= cooling
            h = home[u]
            delta = cost[u] * ((b != h) - (a != h)) if h >= 0 else 0.0
            if delta > 0 and draw >= math.exp(-delta / temp):
                continue
            new_a, new_b = self._rows_after(u, a, b)
            if any(abs(x) > max(goal, abs(y)) for x, y in zip(new_a + new_b, dev[a] + dev[b])):
                continue
            if not self._allowed(u, b):
                continue
            lab[u] = b
            dev[a], dev[b] = new_a, new_b
            count[a] -= 1
            count[b] += 1
            moved += delta
            if moved < best_moved - 1e-9:
                best, best_moved = list(lab), moved
        out = np.asarray(best, dtype=np.int64)
        self._load_state(out)
        self.labels = out
        return out

    def _border_draws(self, deadline: float, check: Optional[Callable]):
        """(unit, its territory, the other territory, a uniform draw) for border edges drawn at
        random, skipping moves that cannot be made (locked unit, last unit), until ``deadline``;
        reads the current plan at every draw."""
        lab, movable, count = self.lab, self.movable, self.count
        edge_from, edge_to = self.edge_from, self.edge_to
        while CLOCK() < deadline:
            if check is not None:
                check()
            edges = self.rng.integers(len(edge_from), size=BATCH).tolist()
            for e, draw in zip(edges, self.rng.random(BATCH).tolist()):
                u = edge_from[e]
                a = lab[u]
                b = lab[edge_to[e]]
                if a != b and movable[u] and count[a] > 1:
                    yield u, a, b, draw

    def _rows_after(self, u: int, a: int, b: int) -> tuple:
        """The deviation rows of territories ``a`` and ``b`` once ``u`` has gone from ``a`` to ``b``."""
        load = self.unit_load[u]
        sa, sb = self.inv_share[a], self.inv_share[b]
        row_a, row_b = self.dev[a], self.dev[b]
        return ([d - x * sa for d, x in zip(row_a, load)], [d + x * sb for d, x in zip(row_b, load)])
