"""The plan ledger: per-territory bookkeeping of a plan being edited by hand, kept in step one change
at a time.

- :class:`TerritoryLedger`: which territory each unit is in and which units are locked, the
  territory list, and each territory's unit count, workload sums, reps, deviation from its target,
  whether it is within its tolerance, and its pieces; :meth:`TerritoryLedger.settle` says what a
  change touched;
- :class:`TerritoryPieces`: the connected pieces of every territory and the units outside each
  territory's largest piece, recounted only for the territories a change touched;
- :func:`prepare_units`: neighbours and positions put into the plan's numbering (the heavy part,
  which the panel does on a worker thread), with every territory's pieces counted at once.

The panel's assignment service feeds it the layer's changes; the figures it shows come from here.
Territories are numbered by a registry that only grows: 0 is "no territory", names keep their
number while the plan is bound, so undo and redo never renumber anything.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from ..graph import components, join_islands, undirected
from ..metrics import relative_deviation

UNASSIGNED = 0


@dataclass(frozen=True)
class TerritoryList:
    """The plan's territories in order (their order gives their colours), and which of them are locked."""

    names: tuple
    locked: frozenset


@dataclass
class Settled:
    """What the changes since the last :meth:`TerritoryLedger.settle` touched."""

    list_changed: bool = False  # the territory list (so every row)
    totals_changed: bool = False  # a workload, so every territory's target
    territories: list = field(default_factory=list)  # names whose figures changed (None: unassigned)


class TerritoryLedger:
    """The plan being edited, by unit index: fids (n,) feature ids, labels (n,) registry numbers,
    workloads (n, m), unit locks; per registry entry counts (r,), sums (r, m), reps (r,) and pieces;
    and the territory list.

    ``names`` are the units' territories (None: unassigned); ``fids`` their feature ids (default
    0…n−1); ``registry`` names territories to number first (the plan's order); ``territories`` is the
    plan's list (default: every name, unlocked); ``field_locks`` and ``listed_locks`` lock units by a
    lock field and by the plan's list of locked units.
    """

    def __init__(self, names: list, workloads: np.ndarray, registry: Optional[list] = None,
                 rep_values: Optional[list] = None, territories: Optional[TerritoryList] = None,
                 field_locks: Optional[np.ndarray] = None, listed_locks: Optional[np.ndarray] = None,
                 fids: Optional[np.ndarray] = None):
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
        self.fids = np.arange(n, dtype=np.int64) if fids is None else np.asarray(fids, dtype=np.int64)
        self.index_of_fid: dict = dict(zip(self.fids.tolist(), range(n)))
        self.workloads = workloads.copy()
        self.rep_values: list = list(rep_values) if rep_values is not None else [None] * n
        #: whether any unit has a rep (a million units without reps need no per-unit walk)
        self._has_reps = rep_values is not None and any(rep is not None for rep in self.rep_values)
        self.field_locks = np.zeros(n, dtype=bool) if field_locks is None else np.asarray(field_locks, dtype=bool)
        self.listed_locks = np.zeros(n, dtype=bool) if listed_locks is None else np.asarray(listed_locks, dtype=bool)
        self.territories = territories if territories is not None else \
            TerritoryList(tuple(self.registry[1:]), frozenset())
        for name in self.territories.names:
            self.add_name(name, grow=False)
        #: every territory's pieces (−1 until :meth:`count_pieces` is given the neighbours)
        self.pieces = TerritoryPieces(len(self.registry))
        #: workload a territory carries whatever its units (accounts overridden to it), by registry number
        self.fixed = np.zeros((len(self.registry), workloads.shape[1]))
        self._dirty: set[int] = set()
        self._list_changed = False
        self._totals_changed = False
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
            self.fixed = np.vstack([self.fixed, np.zeros((1, self.fixed.shape[1]))])
            self.reps.append(Counter())
            self.pieces.grow_to(len(self.registry))
        return k

    # -- the territory list -------------------------------------------------------------------------
    def set_list(self, territories: TerritoryList) -> None:
        """Make ``territories`` the plan's territory list."""
        for name in territories.names:
            self.add_name(name)
        self.territories = territories
        self._list_changed = True

    def listed(self) -> list:
        """The registry numbers of the listed territories, in the list's order."""
        return [self.registry_index[name] for name in self.territories.names]

    def plan_labels(self) -> np.ndarray:
        """Every unit's position in the territory list (the engine's labels); −1 for the others."""
        return self.positions(self.territories.names)

    def is_locked(self, name) -> bool:
        return name is not None and name in self.territories.locked

    # -- locks of units -----------------------------------------------------------------------------
    def locked_mask(self, indexes: Optional[np.ndarray] = None) -> np.ndarray:
        """Units nothing may move: locked units and every unit of a locked territory (of the units
        ``indexes`` only, when given: a click need not look at a million units)."""
        locked_territories = np.zeros(len(self.registry), dtype=bool)
        for name in self.territories.locked:
            k = self.registry_index.get(name)
            if k is not None:
                locked_territories[k] = True
        if indexes is not None:
            return (self.field_locks[indexes] | self.listed_locks[indexes]
                    | locked_territories[self.labels[indexes]])
        return self.field_locks | self.listed_locks | locked_territories[self.labels]

    def lock_units(self, indexes, locked: bool) -> int:
        """Put units on (or off) the plan's list of locked units; how many changed. Units locked by the
        lock field stay locked."""
        before = int(self.listed_locks.sum())
        self.listed_locks[list(indexes)] = locked
        return abs(int(self.listed_locks.sum()) - before)

    def set_field_lock(self, i: int, locked: bool) -> None:
        """Unit ``i``'s lock field now says ``locked``."""
        self.field_locks[i] = locked
        self._dirty.add(int(self.labels[i]))

    # -- figures ------------------------------------------------------------------------------------
    def recount(self) -> None:
        """Every sum again from the labels (after a reload), fixed loads included."""
        size = len(self.registry)
        if self.fixed.shape[0] < size:
            self.fixed = np.vstack([self.fixed, np.zeros((size - self.fixed.shape[0], self.fixed.shape[1]))])
        self.totals = self.workloads.sum(axis=0) + self.fixed.sum(axis=0)
        self.counts = np.bincount(self.labels, minlength=size).astype(np.int64)
        self.sums = self.fixed.copy()
        for a in range(self.workloads.shape[1]):
            self.sums[:, a] += np.bincount(self.labels, weights=self.workloads[:, a], minlength=size)
        self.reps = [Counter() for _ in range(size)]
        if not self._has_reps:
            return
        for k, rep in zip(self.labels.tolist(), self.rep_values):
            if rep is not None:
                self.reps[k][rep] += 1

    def count_pieces(self, adjacency: sparse.csr_matrix, prepared: Optional[PreparedUnits] = None) -> None:
        """Every territory's pieces on ``adjacency`` (islands joined), or as ``prepared`` counted them."""
        self.pieces.count_all(adjacency, self.labels, len(self.registry), prepared)

    def positions(self, names) -> np.ndarray:
        """Every unit's position in ``names`` (the plan's territory list); −1 for the others."""
        position = np.full(len(self.registry), -1, dtype=np.int64)
        for k, name in enumerate(names):
            position[self.registry_index[name]] = k
        return position[self.labels]

    def members(self, name) -> np.ndarray:
        """The unit indexes of territory ``name`` (None: the unassigned units)."""
        k = self.registry_index.get(name)
        return np.zeros(0, dtype=np.int64) if k is None else np.flatnonzero(self.labels == k)

    def fids_of(self, name) -> list:
        """The feature ids of territory ``name``'s units."""
        return self.fids[self.members(name)].tolist()

    def territory_of_fid(self, fid: int):
        """The territory of feature ``fid`` (None: unassigned, or not a unit of the plan)."""
        i = self.index_of_fid.get(int(fid))
        return None if i is None else self.registry[self.labels[i]]

    def is_unit_locked(self, fid: int) -> bool:
        i = self.index_of_fid.get(int(fid))
        return i is not None and bool(self.locked_mask(np.array([i]))[0])

    def target(self, count: int) -> np.ndarray:
        """(m,) each territory's target: an equal share of the total among ``count`` territories."""
        return self.totals / max(count, 1)

    def deviation(self, k: int, count: int) -> np.ndarray:
        """(m,) relative deviation of registry entry ``k`` from an equal share of ``count`` territories."""
        return relative_deviation(self.sums[k], self.target(count))

    def figures_of(self, name) -> dict:
        """Unit count, sums, targets, deviations (fractions; NaN for the unassigned), pieces (−1 for
        the unassigned and while neighbours are unknown) and lock of territory ``name``; {} if unknown."""
        k = self.registry_index.get(name)
        if k is None:
            return {}
        count = len(self.territories.names)
        deviation = self.deviation(k, count)
        return {
            "units": int(self.counts[k]),
            "sums": self.sums[k].copy(),
            "targets": self.target(count),
            "deviation": deviation if name is not None else np.full_like(deviation, np.nan),
            "parts": int(self.pieces.parts[k]) if name is not None else -1,
            "locked": self.is_locked(name),
        }

    def rep_counts(self, name) -> list:
        """The reps of territory ``name``'s units with their unit counts, most units first."""
        k = self.registry_index.get(name)
        return self.reps[k].most_common() if k is not None else []

    def out_of_tolerance(self, name, tolerances) -> bool:
        """Whether some measure of territory ``name`` deviates more than its tolerance (fractions, one
        per measure) from its target."""
        k = self.registry_index.get(name)
        if name is None or k is None:
            return False
        deviation = self.deviation(k, len(self.territories.names))
        if not len(deviation):
            return False
        return bool((np.abs(deviation) > np.asarray(tolerances, dtype=float)[:len(deviation)] + 1e-9).any())

    def max_deviation(self) -> float:
        """The largest |deviation| over the listed territories and every measure."""
        listed = self.listed()
        if not listed:
            return 0.0
        deviation = relative_deviation(self.sums[listed], self.target(len(listed)))
        return float(np.abs(deviation).max()) if deviation.size else 0.0

    def stray_fids(self) -> list:
        """Feature ids of the listed territories' units outside their territory's largest piece."""
        return self.fids[self.pieces.stray_units(self.listed())].tolist()

    def noncontiguous(self) -> int:
        """Listed territories in more than one piece (0 while neighbours are unknown)."""
        return self.pieces.noncontiguous(self.listed())

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
        self._dirty.update((old, k))
        self.pieces.note_move(i, old, k)
        return old, k

    def set_workload(self, i: int, a: int, value: float) -> int:
        """Unit ``i``'s workload on measure ``a`` is now ``value``; returns its registry number."""
        k = int(self.labels[i])
        delta = float(value) - self.workloads[i, a]
        self.workloads[i, a] = float(value)
        return self._counted(k, delta, a)

    def set_account_loads(self, columns: list[int], unit_loads: np.ndarray, fixed: dict) -> None:
        """Accounts counted where they are aligned: ``unit_loads`` (n, len(columns)) becomes the units'
        workload on measures ``columns`` (the accounts aligned by their unit), ``fixed`` ({territory
        name: (m,) workload}) every territory's fixed load (its overridden accounts); all counted again."""
        if columns:
            self.workloads[:, columns] = np.asarray(unit_loads, dtype=float).reshape(len(self.labels), len(columns))
        self.fixed[:] = 0.0
        for name, load in fixed.items():
            self.fixed[self.add_name(name)] += np.asarray(load, dtype=float)
        self.recount()
        self._totals_changed = True

    def add_to_unit(self, i: int, delta: np.ndarray) -> int:
        """Unit ``i``'s workload changes by ``delta`` (m,) (an account joins or leaves it); returns its
        registry number."""
        k = int(self.labels[i])
        delta = np.asarray(delta, dtype=float)
        self.workloads[i] += delta
        return self._counted(k, delta)

    def add_fixed(self, name, delta: np.ndarray) -> int:
        """Territory ``name``'s fixed load changes by ``delta`` (m,) (an account overridden to it or
        no longer); returns its registry number."""
        k = self.add_name(name)
        delta = np.asarray(delta, dtype=float)
        self.fixed[k] += delta
        return self._counted(k, delta)

    def _counted(self, k: int, delta, measure: int | None = None) -> int:
        """A change of ``delta`` to territory ``k``'s workload (on ``measure`` only, when given) reaches
        its sum and the totals, and marks it for recounting; returns ``k``."""
        measures = slice(None) if measure is None else measure
        self.sums[k, measures] += delta
        self.totals[measures] += delta
        self._dirty.add(k)
        self._totals_changed = True
        return k

    def rescale(self, a: int, factor: float) -> None:
        """Measure ``a`` times ``factor`` for every unit, sum and total (the workload index keeps
        the average territory at 1,000 when the number of territories changes)."""
        self.workloads[:, a] *= factor
        self.sums[:, a] *= factor
        self.totals[a] *= factor

    def set_rep(self, i: int, rep) -> int:
        k = int(self.labels[i])
        old = self.rep_values[i]
        if old is not None:
            self._drop_rep(k, old)
        self.rep_values[i] = rep
        if rep is not None:
            self.reps[k][rep] += 1
            self._has_reps = True
        self._dirty.add(k)
        return k

    def _drop_rep(self, k: int, rep) -> None:
        self.reps[k][rep] -= 1
        if self.reps[k][rep] <= 0:
            del self.reps[k][rep]

    def settle(self, name_order=None) -> Settled:
        """Bring the changes since the last call in: territories that gained units without being
        listed join the list (sorted by ``name_order``, a sort key), the pieces of the territories
        touched are counted again; returns what changed."""
        listed = set(self.territories.names)
        joining = [name for k, name in enumerate(self.registry)
                   if name is not None and name not in listed and self.counts[k] > 0]
        if joining:
            self.set_list(TerritoryList(self.territories.names + tuple(sorted(joining, key=name_order)),
                                        self.territories.locked))
        dirty, self._dirty = sorted(self._dirty), set()
        self.pieces.count(dirty, self.labels)
        settled = Settled(list_changed=self._list_changed, totals_changed=self._totals_changed and not
                          self._list_changed, territories=[self.registry[k] for k in dirty])
        self._list_changed = self._totals_changed = False
        return settled


# -- contiguity ----------------------------------------------------------------------------------------
def pieces_and_strays(adjacency: sparse.csr_matrix, labels: np.ndarray, size: int,
                      order: Optional[np.ndarray] = None) -> tuple[np.ndarray, dict]:
    """The pieces of every territory at once: the components of the graph of neighbours in the same
    territory, counted per territory (one pass over the neighbours, not one per territory); and the
    units outside each territory's largest piece (the first of equal ones, as a territory's own count
    numbers them), by territory. ``labels`` are registry numbers below ``size``. ``order`` (e.g. the
    units sorted along x) lets the search go block by block (:func:`core.graph.components`), so that
    a worker thread counting a million units never holds the interpreter long."""
    graph = adjacency.tocoo()
    same = labels[graph.row] == labels[graph.col]
    n = len(labels)
    inside = sparse.csr_matrix((np.ones(int(same.sum())), (graph.row[same], graph.col[same])), shape=(n, n))
    count, component = components(inside, order)
    owner = np.zeros(count, dtype=np.int64)
    owner[component] = labels
    parts = np.bincount(owner, minlength=size)[:size]
    sizes = np.bincount(component, minlength=count)
    order = np.lexsort((np.arange(count), -sizes, owner))
    first = np.ones(count, dtype=bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    main = np.full(max(size, int(owner.max(initial=0)) + 1), -1, dtype=np.int64)
    main[owner[order][first]] = order[first]
    stray = np.flatnonzero((labels != UNASSIGNED) & (component != main[labels]))
    by_territory = np.argsort(labels[stray], kind="stable")
    stray = stray[by_territory]
    keys, starts = np.unique(labels[stray], return_index=True)
    groups = np.split(stray, starts[1:]) if len(stray) else []
    return parts, {int(k): np.sort(g) for k, g in zip(keys.tolist(), groups)}


@dataclass
class PreparedUnits:
    """Neighbours and positions of a plan's units in the plan's numbering (see :func:`prepare_units`)."""

    units: object  # what layers.units.read_units returned
    fids: np.ndarray  # the plan's feature ids they were prepared for
    positions: np.ndarray
    raw_adjacency: sparse.csr_matrix
    adjacency: sparse.csr_matrix  # islands joined to their nearest unit
    #: the territory (registry number) of each unit when the read started, and the pieces counted on it
    labels: Optional[np.ndarray] = None
    parts: Optional[np.ndarray] = None
    strays: dict = field(default_factory=dict)


def prepare_units(units, fids: np.ndarray, labels: Optional[np.ndarray] = None) -> Optional[PreparedUnits]:
    """Put the units read by ``layers.units.read_units`` (``fids``, ``adjacency``, ``positions``) into
    the order of ``fids`` (the plan's units) and join islands, as figures and the engine count them;
    with ``labels``, count every territory's pieces on them too. Pure numpy: a task runs it on its
    worker thread. None when the units are not exactly ``fids``."""
    n = len(fids)
    if units is None or len(units.fids) != n:
        return None
    read = np.asarray(units.fids, dtype=np.int64)
    sorter = np.argsort(fids, kind="stable")
    at = np.minimum(np.searchsorted(fids, read, sorter=sorter), max(n - 1, 0)) if n else np.zeros(0, dtype=np.int64)
    order = sorter[at] if n else at
    if not np.array_equal(fids[order], read) or len(np.unique(order)) != n:
        return None
    coo = sparse.coo_matrix(units.adjacency)
    adjacency = sparse.csr_matrix((np.ones(len(coo.row)), (order[coo.row], order[coo.col])), shape=(n, n))
    positions = np.zeros((n, 2))
    positions[order] = units.positions
    raw = undirected(adjacency, n)
    joined = join_islands(raw, positions, in_blocks=True).adjacency
    prepared = PreparedUnits(units=units, fids=fids, positions=positions, raw_adjacency=raw, adjacency=joined)
    if labels is not None and len(labels) == n:
        prepared.labels = labels
        prepared.parts, prepared.strays = pieces_and_strays(joined, labels, int(labels.max(initial=0)) + 1,
                                                            np.argsort(positions[:, 0], kind="stable"))
    return prepared


class TerritoryPieces:
    """The connected pieces of every territory (registry numbers) of a plan being edited: ``parts[k]``
    is territory k's count (−1 while the neighbours are unknown, 0 for an empty territory), and the
    units outside each territory's largest piece. After a change only the territories it touched are
    counted again, from the sorted member lists of territories counted lately, which are kept in step
    with the moves (a million-unit layer is not scanned per click)."""

    def __init__(self, size: int = 1):
        self.adjacency: Optional[sparse.csr_matrix] = None
        self.forget(size)

    def forget(self, size: int) -> None:
        """Neighbours unknown: every count −1."""
        self.adjacency = None
        self.parts = np.full(size, -1, dtype=np.int64)
        self._strays: dict[int, np.ndarray] = {}
        self._members: dict[int, np.ndarray] = {}
        self._moved: list[int] = []
        self._touched: set[int] = set()

    def grow_to(self, size: int) -> None:
        """Room for territories named since (counted when their units change)."""
        if len(self.parts) < size:
            fill = 0 if self.adjacency is not None else -1
            self.parts = np.append(self.parts, np.full(size - len(self.parts), fill, dtype=np.int64))

    def note_move(self, unit: int, old: int, new: int) -> None:
        """Unit ``unit`` went from territory ``old`` to ``new`` (the member lists follow it)."""
        if self._members:
            self._moved.append(unit)
            self._touched.update((old, new))

    def count_all(self, adjacency: sparse.csr_matrix, labels: np.ndarray, size: int,
                  prepared: Optional[PreparedUnits] = None) -> None:
        """Every territory's pieces on ``adjacency``; with ``prepared``, those it counted on its worker
        thread, counted again only where units moved since."""
        self.adjacency = adjacency
        if prepared is not None and prepared.labels is not None and len(prepared.labels) == len(labels):
            parts, self._strays = prepared.parts, dict(prepared.strays)
            moved = np.flatnonzero(prepared.labels != labels)
            redo = set(np.unique(prepared.labels[moved]).tolist()) | set(np.unique(labels[moved]).tolist())
        else:
            parts, self._strays = pieces_and_strays(adjacency, labels, size)
            redo = set()
        self.parts = np.asarray(self.parts, dtype=np.int64).copy()
        self.grow_to(size)
        count = min(len(parts), size)
        self.parts[1:count] = parts[1:count]
        redo.update(range(count, size))  # territories named after the snapshot
        self._members, self._moved, self._touched = {}, [], set()
        self.count(sorted(k for k in redo if k != UNASSIGNED), labels)

    def count(self, territories, labels: np.ndarray) -> None:
        """Count the pieces of ``territories`` (registry numbers) again (nothing while neighbours are unknown)."""
        if self.adjacency is None:
            return
        adjacency = self.adjacency
        for k in territories:
            if k == UNASSIGNED or k >= len(self.parts):
                continue
            members = self._members_of(k, labels)
            if len(members) == 0:
                self.parts[k] = 0
                self._strays.pop(k, None)
                continue
            # the neighbours among the territory's own units: its rows, columns looked up in members
            rows = adjacency[members]
            at = np.searchsorted(members, rows.indices)
            inside = members[np.minimum(at, len(members) - 1)] == rows.indices
            row_of = np.repeat(np.arange(len(members)), np.diff(rows.indptr))
            sub = sparse.csr_matrix((np.ones(int(inside.sum())), (row_of[inside], at[inside])),
                                    shape=(len(members), len(members)))
            pieces, piece = connected_components(sub, directed=False)
            self.parts[k] = int(pieces)
            if pieces > 1:
                self._strays[k] = members[piece != np.bincount(piece).argmax()]
            else:
                self._strays.pop(k, None)

    def _members_of(self, k: int, labels: np.ndarray) -> np.ndarray:
        """The sorted unit indexes of territory ``k``."""
        if self._moved:
            # bring the remembered territories up to date with the units moved since
            moved = np.unique(np.asarray(self._moved, dtype=np.int64))
            touched, self._moved, self._touched = self._touched, [], set()
            now = labels[moved]
            for t in touched & self._members.keys():  # only the territories units left or joined
                members = self._members[t]
                kept = members[~np.isin(members, moved, assume_unique=True)]
                self._members[t] = np.union1d(kept, moved[now == t])
        members = self._members.get(k)
        if members is None:
            if len(self._members) > 64:
                self._members.clear()
            members = self._members[k] = np.flatnonzero(labels == k)
        return members

    def stray_units(self, listed) -> np.ndarray:
        """Units of the territories ``listed`` (registry numbers) in pieces that lie outside their
        territory's largest piece (kept per territory as pieces are counted: no walk over all units)."""
        if self.adjacency is None:
            return np.zeros(0, dtype=np.int64)
        found = [self._strays[k] for k in listed if k in self._strays and self.parts[k] > 1]
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def noncontiguous(self, listed) -> int:
        """How many of the territories ``listed`` are in more than one piece (0 while neighbours are unknown)."""
        listed = list(listed)
        return int((self.parts[listed] > 1).sum()) if listed else 0
