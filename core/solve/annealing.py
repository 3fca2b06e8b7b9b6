"""The annealing loop that the merge-and-resplit searches share.

Both searches (the recombination in recom.py, the multi-tree resplit in resplit.py) keep a
complete labelling and its territories' ratios, and step by step merge neighbouring territories
and split them again. What differs is how a step is chosen and scored (``propose_step``) and
when the search has reached its goal (``finished``); the loop around them is one: a step that
worsens the score is taken with a probability that falls with the rise and with the steps taken
(the temperature falls linearly to 0, counted in steps so that the same seed takes the same path
on any machine), a cold search that stalls starts again, warm, from the best plan, a new best
plan close to the tolerance is finished with single moves, and the best plan seen (worst
deviation first, then total excess) is returned, so the result never ranks below the start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import numpy as np

from ..clock import CLOCK
from ..progress import Progress
from .model import Model
from .quality import EPS, PlanKey, better, plan_key, tolerance_vector


@dataclass(frozen=True)
class Schedule:
    """How a search cools, restarts and polishes.

    ``temperature`` at the start (in the units of a step's score change), falling linearly to 0
    over ``cooling`` steps; once cold, after more than ``reheat_after`` steps without a better
    plan the search starts again from the best plan. ``hot_restart``: that restart step is
    itself scored at the start temperature (else it still counts as cold). A new best plan whose
    worst deviation is below ``polish_below`` tolerances is finished with single moves, at most
    once per ``polish_every`` steps. ``patience`` counts steps without a better plan or a
    restart, or with ``progress`` set, steps in which the worst deviation fell by less than
    ``progress`` tolerances.
    """

    temperature: float
    cooling: int
    reheat_after: int
    hot_restart: bool
    polish_below: float = 1.5
    polish_every: int = 100
    progress: Optional[float] = None


class Step(NamedTuple):
    """A proposed step: the units of the merged territories and their new labels, the territories
    touched and their new ratio rows, and the change of the search's score."""

    units: np.ndarray
    labels: np.ndarray
    territories: list
    ratios: np.ndarray
    change: float


class AnnealingSearch:
    """A merge-and-resplit search over a complete labelling (contiguous territories)."""

    model: Model
    rng: np.random.Generator

    def __init__(self, model: Model, labels: np.ndarray, rng: np.random.Generator, tolerance=None,
                 band: float = 1.0):
        """``tolerance``: a scalar or one per measure (None: the model's); the search judges
        balance against ``band`` times it."""
        self.model = model
        self.territory_count = model.p
        self.labels = np.asarray(labels, dtype=np.int64).copy()
        self.rng = rng
        self.tolerance = tolerance_vector(model.tolerance_vector if tolerance is None else tolerance, model.m) * band
        self.active = np.asarray(model.active, dtype=bool)
        # 1 / tolerance per active measure, 0 for the others
        self.scale = np.where(self.active, 1.0 / np.maximum(self.tolerance, 1e-6), 0.0)
        self.ratios = model.ratios(self.labels)
        self.steps = 0
        self.accepted = 0
        self.gave_up = False  # the last anneal stopped on its ``give_up`` rule

    def key(self) -> PlanKey:
        return plan_key(self.ratios, self.active, self.tolerance)

    def territory_pairs(self) -> np.ndarray:
        """(q, 2) adjacent territory pairs (a < b), sorted."""
        return self.model.territory_pairs(self.labels)

    def territory_worst(self, ratios: np.ndarray) -> np.ndarray:
        """Worst |ratio - 1| / tolerance of each row of ``ratios`` (active measures)."""
        return (np.abs(ratios - 1.0) * self.scale).max(axis=-1)

    def pair_with(self, pairs: np.ndarray, territory: int) -> Optional[list]:
        """A random pair of ``pairs`` that holds ``territory``; None when it has no neighbour."""
        rows = np.flatnonzero((pairs[:, 0] == territory) | (pairs[:, 1] == territory))
        if rows.size == 0:
            return None
        return pairs[rows[self.rng.integers(rows.size)]].tolist()

    # ----- what a search defines ---------------------------------------------------------------
    def propose_step(self, pairs: np.ndarray) -> Optional[Step]:
        raise NotImplementedError

    def finished(self, best_key: PlanKey) -> bool:
        raise NotImplementedError

    # ----- the loop ----------------------------------------------------------------------------
    def anneal(self, deadline: float, schedule: Schedule, progress: Optional[Progress] = None,
               polish: Optional[Callable] = None, patience: Optional[int] = None,
               max_steps: Optional[int] = None, give_up: Optional[tuple] = None) -> np.ndarray:
        """Search until ``finished``, the engine's clock reaches ``deadline``, ``patience`` runs
        out or this call has taken ``max_steps`` steps; returns the best plan seen.

        ``give_up`` = (steps, worst, gain): stop once this call has taken that many steps while the
        best plan's worst deviation is still above ``worst`` tolerances, or has fallen by less than
        ``gain`` (a fraction of where it began) while still out of tolerance: a search that leaves the
        plan that far off, or gains next to nothing in that many steps, is on the wrong instance; until
        then, and when it is nearer and gaining, its path is unchanged. ``deadline`` does not cut those
        first steps short (``progress``'s deadline, the whole run's, does).

        ``polish(labels) -> labels`` finishes a new best plan close to the tolerance with single
        moves; a better polished plan becomes the current one.
        """
        best = self.labels.copy()
        best_key = self.key()
        began = best_key.worst  # where this call began, in tolerances (``give_up``'s gain)
        self.gave_up = False
        start = CLOCK()
        last_report = start
        heated = 0
        since_better = 0  # steps since a better plan or a restart
        since_progress = 0  # steps since the worst deviation fell by schedule.progress
        last_polish = None
        first_step = self.steps

        def judging() -> bool:
            # the steps ``give_up`` judges the instance by are not cut short by ``deadline`` (a slice of
            # the time: a loaded machine would cut them before they judge); only the whole run's deadline
            # (``progress``'s) cuts them
            return give_up is not None and self.steps - first_step < give_up[0]

        while not self.finished(best_key):
            waited = since_better if schedule.progress is None else since_progress
            if patience is not None and waited >= patience:
                break
            if (give_up is not None and self.steps - first_step >= give_up[0]
                    and (best_key.worst > give_up[1] + 1e-9
                         or best_key.worst > (1.0 - give_up[2]) * began + 1e-9)):
                self.gave_up = True
                break
            if max_steps is not None and self.steps - first_step >= max_steps:
                break
            now = CLOCK()
            if now >= deadline and (progress is None or progress.out_of_time() or not judging()):
                break
            if progress is not None and now - last_report > 0.25:
                last_report = now
                span = max(deadline - start, 1e-9)
                progress.step(min((now - start) / span, 1.0),
                              f"Searching: worst deviation {100 * best_key.worst_deviation:.2f} %")
            self.steps += 1
            since_better += 1
            since_progress += 1
            cool = self.steps - heated
            if cool > schedule.cooling and since_better > schedule.reheat_after:
                # cooled down and stuck: start again from the best plan, warm
                heated = self.steps
                since_better = 0
                self.labels = best.copy()
                self.ratios = self.model.ratios(self.labels)
                if schedule.hot_restart:
                    cool = 0
            pairs = self.territory_pairs()
            if pairs.shape[0] == 0:
                break
            step = self.propose_step(pairs)
            if step is None:
                continue
            temperature = schedule.temperature * max(0.0, 1.0 - cool / schedule.cooling)
            if step.change > EPS and not (temperature > 0
                                          and self.rng.random() < np.exp(-step.change / temperature)):
                continue
            self.labels[step.units] = step.labels
            self.ratios[step.territories] = step.ratios
            self.accepted += 1
            new_key = self.key()
            if not better(new_key, best_key):
                continue
            if schedule.progress is not None and new_key.worst < best_key.worst - schedule.progress:
                since_progress = 0
            best, best_key = self.labels.copy(), new_key
            since_better = 0
            if (polish is not None and new_key.worst < schedule.polish_below
                    and (last_polish is None or self.steps - last_polish >= schedule.polish_every)):
                last_polish = self.steps
                done = np.asarray(polish(best), dtype=np.int64)
                done_key = plan_key(self.model.ratios(done), self.active, self.tolerance)
                if better(done_key, best_key):
                    best, best_key = done.copy(), done_key
                    self.labels = done.copy()
                    self.ratios = self.model.ratios(self.labels)
        self.labels = best
        self.ratios = self.model.ratios(best)
        return best
