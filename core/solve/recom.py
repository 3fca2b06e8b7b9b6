"""Merge two neighbouring territories and split them again at balance (recombination).

Single boundary moves cannot fix a plan whose territories are off in opposite directions on two
measures (metro territories over on population and under on elderly, rural ones the reverse):
that takes dozens of units moving at once. A recombination step takes two adjacent territories,
draws a random spanning tree over their units and cuts the one tree edge that leaves the two
sides best balanced (then most compact; in a rebalance, then moving the least workload from its
initial territory). Both sides of a tree cut are connected, so contiguity holds by construction;
cuts that would leave two units too heavy to share a territory together, or put a locked unit
in the wrong territory, are never taken.

Steps are accepted like an annealing on the total excess beyond tolerance (annealing.py); the
best plan seen (worst deviation first, then total excess) is returned, so the result never ranks
below the start. The search stops as soon as every territory is within tolerance, when it
reaches a proven lower bound, or when its time is up. The rebalance runs it when flows and
single moves leave a plan out of tolerance; the build uses the multi-tree resplit (resplit.py).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..progress import Progress
from .annealing import AnnealingSearch, Schedule, Step
from .heavy_pairs import heavy_pairs
from .merit import moment_inertia
from .model import Model
from .quality import EPS, PlanKey
from .tree_cut import TreeCuts, walk_tree

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


class Recombination(AnnealingSearch):
    """One-tree merge-and-resplit search over a complete, contiguous labelling."""

    def __init__(self, model: Model, labels: np.ndarray, rng: np.random.Generator, tolerance=None,
                 initial: Optional[np.ndarray] = None, disruption: float = 0.0):
        super().__init__(model, labels, rng, tolerance, band=BAND)
        self.adjacency = sp.csr_matrix(model.adjacency)
        self.pairs = heavy_pairs(model)
        self.initial = initial
        self.disruption = float(disruption)
        self.floor = 0.0

    # ----- figures -----------------------------------------------------------------------------
    def territory_excess(self, ratios: np.ndarray) -> np.ndarray:
        """Load beyond the band of each row of ``ratios`` (active measures)."""
        return (np.maximum(np.abs(ratios - 1.0) - self.tolerance, 0.0) * self.active).sum(axis=-1)

    # ----- one step ----------------------------------------------------------------------------
    def propose(self, a: int, b: int, worst_cap: float):
        """Best tree cut of territories a and b; None when no valid cut exists.

        Returns (units, side_a mask, new ratio rows (2, m), pair worst, pair excess).
        """
        units = np.flatnonzero((self.labels == a) | (self.labels == b))
        if units.size < 2:
            return None
        sub = self.adjacency[units][:, units].tocoo()
        if sub.nnz == 0:
            return None
        # random weights, symmetric, so the minimum spanning tree is a random tree of the union
        weights = self.rng.random(sub.nnz) + 1e-3
        graph = sp.csr_matrix((weights, (sub.row, sub.col)), shape=(units.size, units.size))
        graph = graph.maximum(graph.T)
        if connected_components(graph, directed=False)[0] > 1:
            return None
        root = int(self.rng.integers(units.size))
        cuts = TreeCuts(*walk_tree(graph, root), units.size)
        model = self.model
        weight = model.weight[units]
        xy = model.xy[units]
        columns = [model.frac[units], weight, weight * xy[:, 0], weight * xy[:, 1], weight * (xy**2).sum(axis=1)]
        charged = self.initial is not None and self.disruption > 0
        if charged:
            # workload that ends away from its initial territory on a's side, on b's side
            initial = self.initial[units]
            columns += [weight * ((initial >= 0) & (initial != a)), weight * ((initial >= 0) & (initial != b))]
        inside, total = cuts.sums_below(np.column_stack(columns))
        outside = total[None, :] - inside
        m = model.m
        # both orientations, stacked: subtree -> a (rest -> b), then subtree -> b
        ratios_a = np.concatenate([inside[:, :m], outside[:, :m]]) / model.share[a]
        ratios_b = np.concatenate([outside[:, :m], inside[:, :m]]) / model.share[b]
        worst = np.maximum(self.territory_worst(ratios_a), self.territory_worst(ratios_b))
        allowed = np.concatenate(cuts.keeps_locks(model.locked[units], a, (b,)))
        if self.pairs:
            # heavy pairs inside the union must end on different sides
            for first, second in cuts.heavy_pairs_below(self.pairs, units):
                allowed &= np.tile(first != second, 2)
        worst = np.where(allowed, worst, np.inf)
        if not np.any(np.isfinite(worst)):
            return None
        excess = self.territory_excess(ratios_a) + self.territory_excess(ratios_b)
        inertia = moment_inertia(inside[:, m:m + 4]) + moment_inertia(outside[:, m:m + 4])
        secondary = np.concatenate([inertia, inertia])
        # within tolerance all cuts are equally balanced: then the most compact wins
        floor = np.maximum(worst, 1.0)
        if charged:
            # rebalancing: among equally balanced cuts the one moving the least workload from
            # its initial territory wins (then the most compact)
            away_a, away_b = inside[:, m + 4], inside[:, m + 5]
            moved = np.concatenate([away_a + (total[m + 5] - away_b), away_b + (total[m + 4] - away_a)])
            secondary = secondary + self.disruption * moved
        choice = np.lexsort((secondary, excess, floor))[0]
        if not np.isfinite(worst[choice]) or worst[choice] > worst_cap + EPS:
            return None
        rows = np.vstack([ratios_a[choice], ratios_b[choice]])
        return units, cuts.side(choice), rows, float(worst[choice]), float(excess[choice])

    def propose_step(self, pairs: np.ndarray) -> Optional[Step]:
        """Mostly a pair that holds the worst territory, sometimes one holding a territory off
        tolerance, sometimes any pair, to move load around; scored by the change of the excess."""
        worst = self.territory_worst(self.ratios)
        draw = self.rng.random()
        if draw < 0.5:
            territory = int(np.argmax(worst))
        elif draw < 0.8:
            off = np.flatnonzero(worst > 1.0 + EPS)
            territory = int(off[self.rng.integers(off.size)]) if off.size else int(np.argmax(worst))
        else:
            territory = -1
        if territory >= 0:
            pair = self.pair_with(pairs, territory)
            if pair is None:
                return None
            a, b = pair
        else:
            a, b = pairs[self.rng.integers(pairs.shape[0])].tolist()
        old_excess = float(self.territory_excess(self.ratios[[a, b]]).sum())
        proposal = self.propose(a, b, worst_cap=np.inf)
        if proposal is None:
            return None
        units, side_a, rows, _, new_excess = proposal
        return Step(units, np.where(side_a, a, b), [a, b], rows, new_excess - old_excess)

    def finished(self, best_key: PlanKey) -> bool:
        worst = self.key().worst
        return worst <= 1.0 / BAND + EPS or worst <= self.floor / BAND + 1e-7

    def run(self, deadline: float, progress: Optional[Progress] = None, floor: float = 0.0,
            patience: Optional[int] = None, temperature: float = 0.0, polish=None) -> np.ndarray:
        """Search until within tolerance, at ``floor`` (a proven bound, as worst/tolerance), out of
        time (``deadline`` on core.clock.CLOCK), or ``patience`` steps without a better plan.

        ``polish(labels) -> labels`` (optional) finishes a new best plan that is close to the
        tolerance with single moves; when that reaches the tolerance the search stops there."""
        self.floor = floor
        schedule = Schedule(temperature=temperature, cooling=COOLING_STEPS, reheat_after=REHEAT_AFTER,
                            hot_restart=True, polish_below=POLISH_BELOW, polish_every=POLISH_EVERY)
        return self.anneal(deadline, schedule, progress, polish=polish, patience=patience)
