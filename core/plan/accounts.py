"""Accounts over geography: which territory each account is aligned to, and the per-territory
figures of a plan that holds accounts beside its units.

An account (a customer, a hospital, a store) stands in a *home unit* (the ZIP code or county it
lies in). It belongs to the territory of its home unit unless it carries an *override*: a territory
chosen on purpose (a key account kept by the rep who built the relationship). An overridden account
stays with its override territory whatever happens to its unit, so for balancing it is a fixed load
of that territory, and the units carry only the accounts aligned by geography.

Territories are indices ``0..p-1`` (the caller keeps the codes); ``-1`` means none: an account
outside every unit, a unit without a territory, an account without an override.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: where an account's territory comes from (the ``source`` column of the account list)
SOURCE_UNIT, SOURCE_OVERRIDE, SOURCE_NONE = 0, 1, 2
SOURCE_NAMES = ("unit", "override", "none")


@dataclass
class AccountBook:
    """The accounts of a plan as arrays.

    home        (a,) index of the unit each account stands in, -1 outside every unit
    override    (a,) territory index of each account's override, -1 for none
    workloads   (a, m) the accounts' workloads (m may be 0)
    """

    home: np.ndarray
    override: np.ndarray
    workloads: np.ndarray

    def __post_init__(self) -> None:
        self.home = np.asarray(self.home, dtype=np.int64).reshape(-1)
        self.override = np.asarray(self.override, dtype=np.int64).reshape(-1)
        workloads = np.asarray(self.workloads, dtype=float)
        if workloads.ndim == 1:
            workloads = workloads.reshape(-1, 1) if workloads.size else np.zeros((self.home.size, 0))
        self.workloads = workloads
        if self.override.size != self.home.size or self.workloads.shape[0] != self.home.size:
            raise ValueError(f"{self.home.size} home units, {self.override.size} overrides and "
                             f"{self.workloads.shape[0]} workload rows: give one per account")

    @property
    def count(self) -> int:
        return int(self.home.size)

    @property
    def measure_count(self) -> int:
        return int(self.workloads.shape[1])

    @property
    def overridden(self) -> np.ndarray:
        """(a,) bool: the account carries an override."""
        return self.override >= 0

    def home_territories(self, unit_labels) -> np.ndarray:
        """(a,) the territory of each account's home unit (-1: outside every unit, or the unit has none)."""
        labels = np.asarray(unit_labels, dtype=np.int64).reshape(-1)
        inside = self.home >= 0
        out = np.full(self.count, -1, dtype=np.int64)
        out[inside] = labels[self.home[inside]]
        return np.where(out >= 0, out, -1)

    def territories(self, unit_labels) -> np.ndarray:
        """(a,) each account's territory: its override when set, else its home unit's territory."""
        return np.where(self.overridden, self.override, self.home_territories(unit_labels))

    def sources(self, unit_labels) -> np.ndarray:
        """(a,) SOURCE_OVERRIDE, SOURCE_UNIT, or SOURCE_NONE when the account has no territory."""
        home = self.home_territories(unit_labels)
        return np.where(self.overridden, SOURCE_OVERRIDE, np.where(home >= 0, SOURCE_UNIT, SOURCE_NONE))

    def moved_away(self, unit_labels) -> np.ndarray:
        """(a,) bool: overridden to a territory other than its home unit's (an override that counts in
        the gains and losses; an override naming the home territory only pins the account)."""
        return self.overridden & (self.override != self.home_territories(unit_labels))

    # -- loads for balancing ----------------------------------------------------------------------
    def unit_workloads(self, unit_count: int) -> np.ndarray:
        """(n, m) workload of the accounts aligned by geography, summed per home unit (overridden
        accounts and accounts outside every unit count nowhere here)."""
        keep = (~self.overridden) & (self.home >= 0)
        return _sum_by(self.home[keep], self.workloads[keep], unit_count)

    def fixed_loads(self, territory_count: int) -> np.ndarray:
        """(p, m) workload of the overridden accounts, per override territory: the load each territory
        carries whatever its units are."""
        keep = self.overridden & (self.override < territory_count)
        return _sum_by(self.override[keep], self.workloads[keep], territory_count)

    # -- per-territory figures --------------------------------------------------------------------
    def territory_sums(self, unit_labels, territory_count: int) -> np.ndarray:
        """(p, m) workload of the accounts aligned to each territory."""
        territory = self.territories(unit_labels)
        keep = (territory >= 0) & (territory < territory_count)
        return _sum_by(territory[keep], self.workloads[keep], territory_count)

    def account_counts(self, unit_labels, territory_count: int) -> np.ndarray:
        """(p,) accounts aligned to each territory."""
        return _count_by(self.territories(unit_labels), territory_count)

    def overrides_in(self, unit_labels, territory_count: int) -> np.ndarray:
        """(p,) accounts each territory keeps from outside its own units ("accounts outside your area
        that you keep")."""
        return _count_by(np.where(self.moved_away(unit_labels), self.override, -1), territory_count)

    def overrides_out(self, unit_labels, territory_count: int) -> np.ndarray:
        """(p,) accounts standing in each territory's units that another territory serves."""
        home = self.home_territories(unit_labels)
        return _count_by(np.where(self.moved_away(unit_labels), home, -1), territory_count)

    def override_workloads(self, unit_labels, territory_count: int) -> tuple[np.ndarray, np.ndarray]:
        """((p, m) workload gained by overrides, (p, m) workload lost by overrides) per territory."""
        away = self.moved_away(unit_labels)
        home = self.home_territories(unit_labels)
        gained_to = self.override[away]
        lost_from = home[away]
        lost = lost_from >= 0
        return (_sum_by(gained_to, self.workloads[away], territory_count),
                _sum_by(lost_from[lost], self.workloads[away][lost], territory_count))


@dataclass
class OverrideLists:
    """The overrides of one territory both ways, each an array of account indices.

    kept     accounts standing outside the territory's units that it serves ("accounts outside your
             area that you keep"), with ``kept_from`` the territory each stands in (-1: none)
    served   accounts standing in its units that another territory serves ("accounts in your area
             served by another rep"), with ``served_by`` that territory
    """

    kept: np.ndarray
    kept_from: np.ndarray
    served: np.ndarray
    served_by: np.ndarray


def override_lists(book: AccountBook, unit_labels, territory_count: int) -> list[OverrideLists]:
    """Per territory, its overrides both ways (see :class:`OverrideLists`), accounts in index order."""
    away = np.flatnonzero(book.moved_away(unit_labels))
    home = book.home_territories(unit_labels)[away]
    to = book.override[away]
    out = []
    for k in range(int(territory_count)):
        kept, served = to == k, home == k
        out.append(OverrideLists(away[kept], home[kept], away[served], to[served]))
    return out


def changed_accounts(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Indices of the accounts whose territory differs between two plans (-1 = none counts as a
    territory of its own: an account that gains or loses its territory has changed)."""
    before = np.asarray(before, dtype=np.int64).reshape(-1)
    after = np.asarray(after, dtype=np.int64).reshape(-1)
    return np.flatnonzero(before != after)


def _sum_by(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    index = np.asarray(index, dtype=np.int64)
    values = np.asarray(values, dtype=float).reshape(index.size, -1)
    out = np.zeros((int(size), values.shape[1]))
    for column in range(values.shape[1]):
        out[:, column] = np.bincount(index, values[:, column], minlength=size)[:size]
    return out


def _count_by(index: np.ndarray, size: int) -> np.ndarray:
    index = np.asarray(index, dtype=np.int64)
    keep = (index >= 0) & (index < size)
    return np.bincount(index[keep], minlength=size)[:size].astype(np.int64)
