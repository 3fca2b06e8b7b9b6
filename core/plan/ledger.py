"""Per-territory bookkeeping of a plan being edited by hand: which territory each unit is in, and each
territory's unit count, workload sums and reps, kept in step one change at a time.

The panel's assignment service feeds it the layer's changes; the figures it shows come from here
(and from :func:`core.metrics.plan_figures` for what needs the whole plan, such as pieces).
Territories are numbered by a registry that only grows: 0 is "no territory", names keep their
number while the plan is bound, so undo and redo never renumber anything.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

import numpy as np

from ..metrics import relative_deviation

UNASSIGNED = 0


class TerritoryLedger:
    """labels (n,) registry numbers; workloads (n, m); counts (r,), sums (r, m), reps (r,) per registry entry."""

    def __init__(self, names: list, workloads: np.ndarray, registry: Optional[list] = None,
                 rep_values: Optional[list] = None):
        workloads = np.asarray(workloads, dtype=float)
        if workloads.ndim == 1:
            workloads = workloads.reshape(-1, 1)
        n = len(names)
        if workloads.shape[0] != n:
            raise ValueError(f"{n} units but {workloads.shape[0]} workload rows")
        self.registry: list = [None] + [name for name in (registry or []) if name is not None]
        self.registry_index: dict = {name: k for k, name in enumerate(self.registry)}
        for name in dict.fromkeys(names):  # each distinct name once, in order of appearance
            if name is not None and name not in self.registry_index:
                self.add_name(name, grow=False)
        self.labels = np.fromiter(map(self.registry_index.__getitem__, names), dtype=np.int64, count=n)
        self.workloads = workloads.copy()
        self.rep_values: list = list(rep_values) if rep_values is not None else [None] * n
        #: whether any unit has a rep (a million units without reps need no per-unit walk)
        self._has_reps = rep_values is not None and any(rep is not None for rep in self.rep_values)
        self.recount()

    # -- registry -----------------------------------------------------------------------------------
    def add_name(self, name, grow: bool = True) -> int:
        """The registry number of ``name``, adding it (with empty figures) when new."""
        k = self.registry_index.get(name)
        if k is not None:
            return k
        k = len(self.registry)
        self.registry.append(name)
        self.registry_index[name] = k
        if grow:
            self.counts = np.append(self.counts, 0)
            self.sums = np.vstack([self.sums, np.zeros((1, self.sums.shape[1]))])
            self.reps.append(Counter())
        return k

    # -- figures ------------------------------------------------------------------------------------
    def recount(self) -> None:
        """Every figure again from the labels (after a reload)."""
        size = len(self.registry)
        self.totals = self.workloads.sum(axis=0)
        self.counts = np.bincount(self.labels, minlength=size).astype(np.int64)
        self.sums = np.zeros((size, self.workloads.shape[1]))
        for a in range(self.workloads.shape[1]):
            self.sums[:, a] = np.bincount(self.labels, weights=self.workloads[:, a], minlength=size)
        self.reps = [Counter() for _ in range(size)]
        if not self._has_reps:
            return
        for k, rep in zip(self.labels.tolist(), self.rep_values):
            if rep is not None:
                self.reps[k][rep] += 1

    def positions(self, names) -> np.ndarray:
        """Every unit's position in ``names`` (the plan's territory list); −1 for the others."""
        position = np.full(len(self.registry), -1, dtype=np.int64)
        for k, name in enumerate(names):
            position[self.registry_index[name]] = k
        return position[self.labels]

    def deviation(self, k: int, count: int) -> np.ndarray:
        """(m,) relative deviation of registry entry ``k`` from an equal share of ``count`` territories."""
        target = self.totals / max(count, 1)
        return relative_deviation(self.sums[k], target)

    # -- changes ------------------------------------------------------------------------------------
    def move(self, i: int, name) -> Optional[tuple]:
        """Unit ``i`` now belongs to ``name``; returns (old, new) registry numbers, None if unchanged."""
        k = self.add_name(name)
        old = int(self.labels[i])
        if old == k:
            return None
        w = self.workloads[i]
        self.sums[old] -= w
        self.sums[k] += w
        self.counts[old] -= 1
        self.counts[k] += 1
        rep = self.rep_values[i]
        if rep is not None:
            self._drop_rep(old, rep)
            self.reps[k][rep] += 1
        self.labels[i] = k
        return old, k

    def set_workload(self, i: int, a: int, value: float) -> int:
        """Unit ``i``'s workload on measure ``a`` is now ``value``; returns its registry number."""
        k = int(self.labels[i])
        delta = float(value) - self.workloads[i, a]
        self.sums[k, a] += delta
        self.totals[a] += delta
        self.workloads[i, a] = float(value)
        return k

    def set_rep(self, i: int, rep) -> int:
        k = int(self.labels[i])
        old = self.rep_values[i]
        if old is not None:
            self._drop_rep(k, old)
        self.rep_values[i] = rep
        if rep is not None:
            self.reps[k][rep] += 1
            self._has_reps = True
        return k

    def _drop_rep(self, k: int, rep) -> None:
        self.reps[k][rep] -= 1
        if self.reps[k][rep] <= 0:
            del self.reps[k][rep]
