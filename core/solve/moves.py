"""The local search's candidate moves: boundary moves, exchanges and chains, kept between rounds.

A round scores every boundary move (a unit joins a neighbouring territory), every exchange of two
boundary units between two territories and every chain of two moves through a middle territory.
Rebuilding them all every round would cost a pass over every edge of a layer of a million units;
instead each kind is kept from the last round and rebuilt or re-scored only where something
changed: the units that moved and their neighbours, and the territories whose figures differ in
any bit. The kept result equals a computation from scratch exactly, in the same order (the
``full_*`` methods are that reference, and tests/unit/test_search_incremental.py holds them equal).
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def _member_of(keys: np.ndarray, wanted: np.ndarray, size: int) -> np.ndarray:
    """``np.isin(keys, wanted)`` for keys in [0, size): a table lookup when the table is small
    (no sort of the keys, which a round repeats over hundreds of thousands of moves)."""
    if size > 1 << 24:
        return np.isin(keys, wanted)
    table = np.zeros(size, dtype=bool)
    table[wanted] = True
    return table[keys]


def _rows_of(adjacency, rows: np.ndarray) -> tuple:
    """(row, column) of every stored entry in the given rows of a CSR matrix."""
    indptr = adjacency.indptr
    starts = indptr[rows].astype(np.int64)
    counts = indptr[rows + 1].astype(np.int64) - starts
    total = int(counts.sum())
    pos = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(starts, counts)
    return np.repeat(rows, counts), adjacency.indices[pos].astype(np.int64)


def _changed_territories(now: tuple, before: tuple, p: int) -> np.ndarray:
    """(p,) territories whose figures differ in any bit between two snapshots."""
    changed = np.zeros(p, dtype=bool)
    for current, kept in zip(now, before):
        differ = current != kept
        changed |= differ.any(axis=1) if differ.ndim > 1 else differ
    return changed


def _compare_moves(kept: dict, key: np.ndarray, delta: np.ndarray) -> tuple:
    """(same (moves,), gone (kept moves,)): the moves listed and scored as last time, and the kept
    moves no longer listed. ``key`` and the kept keys are sorted (unit * p + receiver)."""
    old_key, old_delta = kept["key"], kept["delta"]
    at = np.minimum(np.searchsorted(old_key, key), max(old_key.size - 1, 0))
    same = (old_key[at] == key) & (old_delta[at] == delta) if old_key.size else np.zeros(key.size, bool)
    back = np.minimum(np.searchsorted(key, old_key), max(key.size - 1, 0))
    gone = ~(key[back] == old_key) if key.size else np.ones(old_key.size, bool)
    return same, gone


class CandidateMoves:
    """The candidate moves of a LocalSearch (its labels, figures, merit and failed checks are read
    at every call)."""

    def __init__(self, search):
        self.search = search
        self.kept_moves = None
        self.kept_chains = None
        self.kept_exchanges = None

    def _figures(self) -> tuple:
        search = self.search
        return search.ratios, search.mass, search.moment, search.second_moment, search.count

    def _score(self, key: np.ndarray) -> np.ndarray:
        p = self.search.territory_count
        unit = key // p
        return self.search.merit.moves(unit, self.search.labels[unit], key % p)

    # ----- single moves ------------------------------------------------------------------------
    def moves(self):
        """All boundary moves (unit, donor, receiver, merit change); see LocalSearch.candidates."""
        key, base = self._boundary_moves()
        return self._filter(key, base)

    def full_moves(self):
        """:meth:`moves` computed from scratch over every edge (the reference it must equal)."""
        key = self._all_boundary_keys()
        return self._filter(key, self._score(key))

    def _filter(self, key, base):
        """Filters that change every round (failed checks, emptying, heavy pairs) on kept moves."""
        search = self.search
        p = search.territory_count
        labels = search.labels
        unit = key // p
        dst = key % p
        src = labels[unit]
        keep = search.failed_at[unit] != search.version[src]
        unit, src, dst = unit[keep], src[keep], dst[keep]
        if unit.size == 0:
            return unit, src, dst, np.zeros(0)
        delta = base[keep]
        delta[search.count[src] <= 1] = np.inf  # a territory never empties
        if search.pairs:
            # never put two units that are too heavy to share a territory together
            rows = search.pair_row[unit]
            heavy = np.flatnonzero(rows >= 0)
            if heavy.size:
                blocked = search.pairs.blocked_matrix(labels, p)
                hit = heavy[blocked[rows[heavy], dst[heavy]]]
                delta[hit] = np.inf
        return unit, src, dst, delta

    def _all_boundary_keys(self) -> np.ndarray:
        """Sorted keys unit * p + receiver of every boundary move of a movable unit."""
        search = self.search
        p = search.territory_count
        labels = search.labels
        edge_from, edge_to = search.model.edges
        receiver = labels[edge_to]
        across = labels[edge_from] != receiver
        key = np.unique(edge_from[across] * p + receiver[across])
        return key[search.movable[key // p]]

    def _boundary_moves(self) -> tuple:
        """(keys, scores) of every boundary move, updated from the previous call's."""
        search = self.search
        labels = search.labels
        p = search.territory_count
        signature = search.merit.signature()
        kept = self.kept_moves
        if kept is None or kept["labels"].shape != labels.shape:
            key = self._all_boundary_keys()
            base = self._score(key)
        else:
            key, base = kept["key"], kept["base"]
            moved = np.flatnonzero(labels != kept["labels"])
            # territories whose figures differ in any bit: their moves are scored again
            changed = _changed_territories(self._figures(), kept["figures"], p)
            if moved.size:
                adjacency = search.model.adjacency
                around = np.unique(np.concatenate([moved, _rows_of(adjacency, moved)[1]]))
                around = around[search.movable[around]]
                hit = np.zeros(labels.shape[0], dtype=bool)
                hit[around] = True
                stay = ~hit[key // p]
                rows, cols = _rows_of(adjacency, around)
                receiver = labels[cols]
                across = labels[rows] != receiver
                fresh = np.unique(rows[across] * p + receiver[across])
                old_key, old_base = key[stay], base[stay]
            else:
                fresh = np.zeros(0, dtype=np.int64)
                old_key, old_base = key, base
            if signature != kept["signature"]:
                old_base = self._score(old_key)
            else:
                again = np.flatnonzero(changed[labels[old_key // p]] | changed[old_key % p])
                if again.size:
                    old_base = old_base.copy()
                    old_base[again] = self._score(old_key[again])
            key = np.concatenate([old_key, fresh])
            base = np.concatenate([old_base, self._score(fresh)])
            if fresh.size:
                order = np.argsort(key, kind="stable")
                key, base = key[order], base[order]
        self.kept_moves = {"key": key, "base": base, "labels": labels.copy(), "signature": signature,
                           "figures": tuple(a.copy() for a in self._figures())}
        return key, base

    def _compare_kept(self, kept: Optional[dict], unit, src, dst, delta, per_side: int) -> tuple:
        """(record, comparison) for chains or exchanges built from these moves: the record to keep
        for the next call (None when the moves are not in key order), and None when ``kept`` (the
        last call's record) cannot be used, else (territories whose figures changed, moves listed
        and scored as last time and not touching them, kept moves no longer listed)."""
        p = self.search.territory_count
        key = unit * p + dst
        signature = (self.search.merit.signature(), per_side)
        figures = tuple(a.copy() for a in self._figures())
        ordered = key.size < 2 or bool(np.all(key[1:] > key[:-1]))
        record = {"signature": signature, "figures": figures, "key": key, "delta": delta, "src": src.copy()}
        if kept is None or kept["signature"] != signature or not ordered:
            return (record if ordered else None), None
        changed = _changed_territories(figures, kept["figures"], p)
        same, gone = _compare_moves(kept, key, delta)
        same &= ~(changed[src] | changed[dst])
        return record, (changed, same, gone)

    # ----- chains: u from A to B, then v from B to C -------------------------------------------
    def chains(self, unit, src, dst, delta, per_side: int = 3):
        """See LocalSearch.chain_candidates."""
        p = self.search.territory_count
        kept = self.kept_chains
        record, comparison = self._compare_kept(kept, unit, src, dst, delta.copy(), per_side)
        if comparison is None:
            out = self._chains(unit, src, dst, delta, per_side)
        else:
            changed, same, gone = comparison
            stale = np.zeros(p, dtype=bool)
            stale[src[~same]] = True
            stale[dst[~same]] = True
            stale[kept["src"][gone]] = True
            stale[kept["key"][gone] % p] = True
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
        self.kept_chains = None if record is None else {**record, "out": out}
        return out

    def full_chains(self, unit, src, dst, delta, per_side: int = 3):
        """:meth:`chains` computed from scratch (the reference it must equal)."""
        return self._chains(unit, src, dst, delta, per_side, prefilter=False)

    def _chains(self, unit, src, dst, delta, per_side: int, prefilter: bool = True):
        search = self.search
        p = search.territory_count
        # C == A is an exchange (scored by the exchanges); chains must start or end at a
        # territory outside the goal band, which is what they are for
        off = ((np.abs(search.ratios - 1.0) - search.goal > 1e-12) & (search.merit.active[None, :] > 0)).any(axis=1)
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
        group_key = src[order] * p + dst[order]
        start = np.r_[True, group_key[1:] != group_key[:-1]]
        group = np.cumsum(start) - 1
        rank = np.arange(group_key.size) - np.flatnonzero(start)[group]
        chosen = order[rank < per_side]
        into = chosen[np.argsort(dst[chosen], kind="stable")]
        out_of = chosen[np.argsort(src[chosen], kind="stable")]
        count_in = np.bincount(dst[into], minlength=p)
        count_out = np.bincount(src[out_of], minlength=p)
        total = count_in * count_out
        if total.sum() == 0:
            return None
        middle = np.repeat(np.arange(p), total)
        within = np.arange(total.sum()) - np.repeat(np.cumsum(total) - total, total)
        first = into[(np.cumsum(count_in) - count_in)[middle] + within // count_out[middle]]
        second = out_of[(np.cumsum(count_out) - count_out)[middle] + within % count_out[middle]]
        keep = (dst[second] != src[first]) & (off[src[first]] | off[dst[second]])
        first, second = first[keep], second[keep]
        if first.size == 0:
            return None
        u, v = unit[first], unit[second]
        a, b, c = src[first], dst[first], dst[second]
        return u, v, a, b, c, delta[first] + search.merit.chained(u, v, b, c)

    # ----- exchanges: u from A to B while v goes from B to A -----------------------------------
    def exchanges(self, unit, src, dst, delta, per_side: int = 6):
        """See LocalSearch.swap_candidates."""
        p = self.search.territory_count
        delta = np.where(np.isfinite(delta), delta, 0.0)  # exchanges keep unit counts
        kept = self.kept_exchanges
        record, comparison = self._compare_kept(kept, unit, src, dst, delta, per_side)
        if comparison is None:
            out = self._exchange_pairs(unit, src, dst, delta, per_side)
        else:
            _, same, gone = comparison
            src_gone = kept["src"][gone]
            dst_gone = kept["key"][gone] % p
            stale = np.unique(np.concatenate([
                np.minimum(src[~same], dst[~same]) * p + np.maximum(src[~same], dst[~same]),
                np.minimum(src_gone, dst_gone) * p + np.maximum(src_gone, dst_gone),
            ]))
            pair = np.minimum(src, dst) * p + np.maximum(src, dst)
            redo = _member_of(pair, stale, p * p)
            fresh = self._exchange_pairs(unit[redo], src[redo], dst[redo], delta[redo], per_side)
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
        self.kept_exchanges = None if record is None else {**record, "out": out}
        return out

    def full_exchanges(self, unit, src, dst, delta, per_side: int = 6):
        """:meth:`exchanges` computed from scratch (the reference it must equal)."""
        return self._exchange_pairs(unit, src, dst, np.where(np.isfinite(delta), delta, 0.0), per_side)

    def _exchange_pairs(self, unit, src, dst, delta, per_side: int):
        p = self.search.territory_count
        if unit.size == 0:
            return None
        key = src * p + dst
        order = np.lexsort((delta, key))
        sorted_key = key[order]
        start = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
        group = np.cumsum(start) - 1
        rank = np.arange(sorted_key.size) - np.flatnonzero(start)[group]
        chosen = order[rank < per_side]
        chosen_key = key[chosen]
        start = np.r_[True, chosen_key[1:] != chosen_key[:-1]]
        group_start = np.flatnonzero(start)
        group_key = chosen_key[group_start]
        group_size = np.diff(np.r_[group_start, chosen_key.size])
        a_territory = group_key // p
        b_territory = group_key % p
        reverse = np.minimum(np.searchsorted(group_key, b_territory * p + a_territory), group_key.size - 1)
        valid = (group_key[reverse] == b_territory * p + a_territory) & (a_territory < b_territory)
        forward = np.flatnonzero(valid)
        if forward.size == 0:
            return None
        backward = reverse[forward]
        size_forward, size_backward = group_size[forward], group_size[backward]
        total = size_forward * size_backward
        pair = np.repeat(np.arange(forward.size), total)
        within = np.arange(total.sum()) - np.repeat(np.cumsum(total) - total, total)
        first = chosen[group_start[forward][pair] + within // size_backward[pair]]
        second = chosen[group_start[backward][pair] + within % size_backward[pair]]
        u, v = unit[first], unit[second]
        a, b = src[first], dst[first]
        return u, v, a, b, self.search.merit.exchanges(u, v, a, b)
