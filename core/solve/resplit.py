"""Merge two neighbouring territories and split them again, choosing among many spanning trees.

The recombination (recom.py, which the rebalance runs) draws one random spanning tree of the merged pair and cuts
its best edge. On two conflicting measures (population sits in the metros, the elderly in rural
counties) one tree rarely holds a cut that balances both, so the search wanders. Here each step
draws ``trees`` random spanning trees of the union at once (one block-diagonal graph, one
minimum-spanning-tree call) and scores every cut of every tree, both ways round.

A split is scored by a smooth energy of the two halves: the sum over active measures of
(|ratio - 1| / tolerance) ** POWER. Minimising it pair after pair spreads imbalance out like
diffusion (a high power makes the energy follow the worst deviation), so load travels through
territories that are already in band until the whole plan is balanced. A small compactness
term (the halves' moment of inertia relative to the pair's current one) breaks near-ties.
Steps are accepted like an annealing on that energy (annealing.py); the best plan seen (worst
deviation first, then total excess beyond tolerance) is kept, so the result never ranks below
the start. The build runs it while its plan is out of tolerance (core.engine.improve).

Both sides of a tree cut are connected, so contiguity holds by construction. Cuts that leave a
locked unit on the wrong side, or two units too heavy to share a territory on the same side,
are never taken.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import scipy.sparse as sp

from ..progress import Progress
from .annealing import AnnealingSearch, Schedule, Step
from .heavy_pairs import heavy_pairs
from .merit import moment_inertia
from .model import Model
from .quality import PlanKey
from .tree_cut import TreeCuts, walk_tree

#: Exponent of the energy: high enough that the worst territory dominates, low enough to slope.
POWER = 4.0
#: Weight of the compactness term (relative change of the pair's inertia) against the energy.
COMPACTNESS = 0.05
#: Spanning trees drawn per step.
TREES = 8
#: A fall of the worst deviation (in tolerances) that counts as progress for ``patience``.
PROGRESS = 1e-3


class Resplit(AnnealingSearch):
    """Multi-tree merge-and-resplit annealing over a complete labelling (contiguous territories)."""

    def __init__(self, model: Model, labels: np.ndarray, rng: np.random.Generator, tolerance=None,
                 trees: int = TREES, power: float = POWER, compactness: float = COMPACTNESS,
                 triples: float = 0.0):
        super().__init__(model, labels, rng, tolerance)
        self.trees = int(max(1, trees))
        self.power = float(power)
        self.compactness = float(compactness)
        self.triples = float(triples)  # share of steps that merge three territories, not two
        xy = model.xy
        weight = model.weight
        # per unit: balance fractions, then the moments compactness needs (w, wx, wy, w|x|^2)
        self.per_unit = np.column_stack([model.frac, weight, weight * xy[:, 0], weight * xy[:, 1],
                                         weight * (xy**2).sum(axis=1)])
        self.adjacency = sp.csr_matrix(model.adjacency)
        self.locked = np.asarray(model.locked, dtype=np.int64)
        self.pairs = heavy_pairs(model)

    # ----- figures -----------------------------------------------------------------------------
    def energy(self, ratios: np.ndarray) -> np.ndarray:
        """Energy of ratio rows (..., m): sum of (|ratio - 1| / tol) ** POWER over active measures."""
        return ((np.abs(ratios - 1.0) * self.scale) ** self.power).sum(axis=-1)

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
        side_a, rows, score, reference = out
        current = self.labels[units] == a
        old = float(self.energy(self.ratios[a]) + self.energy(self.ratios[b])) + self.compactness * (
            self._inertia_of(units[current]) + self._inertia_of(units[~current])) / reference
        return units, side_a, rows, score - old

    def propose_triple(self, a: int, b: int, c: int):
        """Merge three territories (b touching a and c) and split them in three: one tree cut
        gives a its part, then the rest is split between b and c like a pair.

        Returns (units, new labels of units, new ratio rows (3, m) of a, b, c, change of score)."""
        units = np.flatnonzero((self.labels == a) | (self.labels == b) | (self.labels == c))
        first = self._split(units, a, (b, c))
        if first is None:
            return None
        side_a, rows_a, _, reference = first
        rest = units[~side_a]
        second = self._split(rest, b, (c,))
        if second is None:
            return None
        side_b, rows_bc, _, _ = second
        new = np.full(units.size, a, dtype=np.int64)
        new[~side_a] = np.where(side_b, b, c)
        rows = np.vstack([rows_a[0], rows_bc[0], rows_bc[1]])
        score = float(self.energy(rows).sum()) + self.compactness * (
            self._inertia_of(units[side_a]) + self._inertia_of(rest[side_b])
            + self._inertia_of(rest[~side_b])) / reference
        old = float(self.energy(self.ratios[[a, b, c]]).sum()) + self.compactness * sum(
            self._inertia_of(np.flatnonzero(self.labels == k)) for k in (a, b, c)) / reference
        return units, new, rows, score - old

    def _inertia_of(self, members: np.ndarray) -> float:
        m = self.model.m
        return float(moment_inertia(self.per_unit[members][:, m:].sum(axis=0)[None, :])[0])

    def _split(self, units: np.ndarray, a: int, rest: tuple):
        """Best tree cut of ``units`` into a part for territory a and a part for ``rest`` (one
        territory, or two to be split later: then that part is scored as if split evenly).

        Returns (side_a mask, ratio rows (2, m) of a and of the rest, score, inertia reference)."""
        size = units.size
        if size < 2:
            return None
        sub = self.adjacency[units][:, units].tocoo()
        upper = sub.row < sub.col
        first, second = sub.row[upper].astype(np.int64), sub.col[upper].astype(np.int64)
        if first.size == 0:
            return None
        # ``trees`` copies of the union's graph with random weights, each joined to one super
        # root by one random unit: one minimum spanning tree call draws every tree at once
        trees = self.trees
        offset = (np.arange(trees, dtype=np.int64) * size)[:, None]
        super_root = trees * size
        roots = self.rng.integers(size, size=trees) + offset[:, 0]
        rows = np.concatenate([(first[None, :] + offset).ravel(), roots])
        cols = np.concatenate([(second[None, :] + offset).ravel(), np.full(trees, super_root)])
        weights = np.concatenate([self.rng.random(trees * first.size) + 1e-3, np.full(trees, 1e-6)])
        graph = sp.csr_matrix((weights, (rows, cols)), shape=(super_root + 1, super_root + 1))
        order, predecessors = walk_tree(graph, super_root, both_ways=False)
        if order.size != super_root + 1:
            return None  # the union is not connected
        cuts = TreeCuts(order, predecessors, size, super_root=super_root)
        inside, _ = cuts.sums_below(self.per_unit[units])
        total = self.per_unit[units].sum(axis=0)
        outside = total[None, :] - inside
        m = self.model.m
        share_a = self.model.share[a]
        share_rest = float(sum(self.model.share[k] for k in rest))
        ratios_a = np.concatenate([inside[:, :m] / share_a, outside[:, :m] / share_a])
        ratios_rest = np.concatenate([outside[:, :m] / share_rest, inside[:, :m] / share_rest])
        to_a, to_rest = cuts.keeps_locks(self.locked[units], a, rest)
        if self.pairs:
            for first_below, second_below in cuts.heavy_pairs_below(self.pairs, units):
                if len(rest) == 1:
                    to_a &= first_below != second_below
                    to_rest &= first_below != second_below
                else:  # only a's part must not hold both; the rest is split again
                    to_a &= ~(first_below & second_below)
                    to_rest &= first_below | second_below
        allowed = np.concatenate([to_a, to_rest])
        if not np.any(allowed):
            return None
        inertia = moment_inertia(inside[:, m:]) + moment_inertia(outside[:, m:])
        reference = max(sum(self._inertia_of(units[self.labels[units] == k]) for k in (a, *rest)), 1e-12)
        score = self.energy(ratios_a) + len(rest) * self.energy(ratios_rest) + self.compactness * (
            np.concatenate([inertia, inertia]) / reference)
        score = np.where(allowed, score, np.inf)
        choice = int(np.argmin(score))
        return cuts.side(choice), np.vstack([ratios_a[choice], ratios_rest[choice]]), float(score[choice]), reference

    # ----- the search --------------------------------------------------------------------------
    def propose_step(self, pairs: np.ndarray) -> Optional[Step]:
        """Mostly a pair holding the worst territory, else any pair; with ``triples`` sometimes a
        third territory touching the pair's second; scored by the change of the energy."""
        if self.rng.random() < 0.4:
            pair = self.pair_with(pairs, int(np.argmax(self.territory_worst(self.ratios))))
            if pair is None:
                return None
            a, b = pair
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
                pair_c = pairs[rows[self.rng.integers(rows.size)]]
                third = int(pair_c[0] if pair_c[1] == b else pair_c[1])
        if third >= 0:
            proposal = self.propose_triple(a, b, third)
            if proposal is None:
                return None
            units, new_labels, rows_new, change = proposal
            return Step(units, new_labels, [a, b, third], rows_new, change)
        proposal = self.propose(a, b)
        if proposal is None:
            return None
        units, side_a, rows_new, change = proposal
        return Step(units, np.where(side_a, a, b), [a, b], rows_new, change)

    def finished(self, best_key: PlanKey) -> bool:
        return best_key.worst <= self.stop + 1e-9

    def run(self, deadline: float, progress: Optional[Progress] = None, goal: float = 1.0,
            floor: float = 0.0, temperature: float = 0.0, cooling: int = 2000,
            polish: Optional[Callable] = None, patience: Optional[int] = None,
            polish_below: float = 1.5, polish_every: int = 100, max_steps: Optional[int] = None,
            give_up: Optional[tuple] = None) -> np.ndarray:
        """Search until the worst deviation is at most ``goal`` tolerances (or ``floor``, a
        proven bound in tolerances), or the engine's clock (core.clock.CLOCK) reaches ``deadline``.

        The annealing temperature falls linearly from ``temperature`` to 0 over ``cooling``
        steps; when it reaches 0 and the plan stalls, the search restarts warm from the best plan.
        ``polish(labels) -> labels`` finishes a new best plan with single moves when it is close.
        With ``patience`` the search also stops after that many steps in which the worst deviation
        fell by less than PROGRESS tolerances; with ``max_steps`` after that many steps of this
        call (a budget in steps, not seconds, gives the same plan on a fast or a slow machine);
        ``give_up``: see AnnealingSearch.anneal.
        """
        self.stop = max(goal, floor)
        schedule = Schedule(temperature=temperature, cooling=cooling, reheat_after=cooling // 2,
                            hot_restart=False, polish_below=polish_below, polish_every=polish_every,
                            progress=PROGRESS)
        return self.anneal(deadline, schedule, progress, polish=polish, patience=patience, max_steps=max_steps,
                           give_up=give_up)
