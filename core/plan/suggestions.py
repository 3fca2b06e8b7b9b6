"""Suggested single-unit moves that improve the balance around one territory.

For the active territory k, the candidates are its boundary units moving out to a neighbouring
territory and the neighbours' boundary units moving into k. Each move is scored by how much it
lowers the balance score Σ_territories Σ_measures ((sum − target) / target)², which only changes
for the two territories involved, so all candidates are scored at once with array arithmetic.
Moves that would split the territory giving the unit away are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass
class Suggestion:
    """Move ``unit`` (an index into the labels) from territory ``source`` to ``target``.

    ``deviation_before`` and ``deviation_after`` are (2, measures) arrays of relative deviations
    (0.05 = 5 % over target): row 0 the source territory, row 1 the target territory.
    ``improvement`` is the decrease of the balance score (always > 0).
    """

    unit: int
    source: int
    target: int
    improvement: float
    deviation_before: np.ndarray
    deviation_after: np.ndarray


def suggest_moves(labels: np.ndarray, workloads: np.ndarray, targets: np.ndarray,
                  adjacency: sparse.spmatrix, territory: int, count: int = 5,
                  movable: np.ndarray | None = None, frozen_territories=(),
                  keep_contiguous: bool = True, max_checked: int = 60,
                  sums: np.ndarray | None = None) -> list[Suggestion]:
    """The ``count`` best moves of one unit into or out of ``territory``.

    ``labels`` (n,) holds territory indexes, −1 for unassigned units (never moved).
    ``workloads`` (n, m) and ``targets`` (p, m) are in the same units. ``movable`` (n,) bool
    excludes locked units; territories in ``frozen_territories`` neither give nor receive units.
    With ``keep_contiguous`` a move is skipped when it would add a piece to the giving territory.
    ``sums`` (p, m), the territories' current sums, saves recounting them when the caller has them.
    Returns the moves with the largest improvement first; fewer (or none) when no move helps.
    """
    labels = np.asarray(labels, dtype=np.int64)
    workloads = np.asarray(workloads, dtype=float).reshape(len(labels), -1)
    targets = np.asarray(targets, dtype=float).reshape(-1, workloads.shape[1])
    p = targets.shape[0]
    if not 0 <= territory < p or count <= 0 or len(labels) == 0:
        return []
    frozen = np.zeros(p, dtype=bool)
    for k in frozen_territories:
        if 0 <= int(k) < p:
            frozen[int(k)] = True
    if frozen[territory]:
        return []
    if movable is None:
        movable = np.ones(len(labels), dtype=bool)

    csr = sparse.csr_matrix(adjacency)
    # only the edges leaving the territory matter: candidates cost O(territory size), not O(n)
    members = np.flatnonzero(labels == territory)
    rows = csr[members].tocoo()
    inside, outside = members[rows.row].astype(np.int64), rows.col.astype(np.int64)
    other = labels[outside]
    keep = (other >= 0) & (other != territory)
    inside, outside, other = inside[keep], outside[keep], other[keep]
    # out: a unit of the territory moves to its neighbour's territory; in: the neighbour moves in
    units = np.concatenate([inside, outside])
    dests = np.concatenate([other, np.full(len(outside), territory, dtype=np.int64)])
    sources = labels[units]
    keep = movable[units] & ~frozen[sources] & ~frozen[dests]
    units, dests = units[keep], dests[keep]
    if len(units) == 0:
        return []
    pairs = np.unique(np.stack([units, dests], axis=1), axis=0)
    units, dests = pairs[:, 0], pairs[:, 1]
    sources = labels[units]

    if sums is None:
        sums = np.zeros_like(targets)
        assigned = labels >= 0
        np.add.at(sums, labels[assigned], workloads[assigned])
    sums = np.asarray(sums, dtype=float).reshape(targets.shape)
    scale = np.where(targets > 0, targets, 1.0)
    deviation = (sums - targets) / scale
    w = workloads[units]
    src_before, dst_before = deviation[sources], deviation[dests]
    src_after = src_before - w / scale[sources]
    dst_after = dst_before + w / scale[dests]
    delta = ((src_before ** 2 + dst_before ** 2) - (src_after ** 2 + dst_after ** 2)).sum(axis=1)
    order = np.argsort(-delta, kind="stable")
    order = order[delta[order] > 1e-12]

    chosen: list[Suggestion] = []
    for rank, c in enumerate(order):
        if len(chosen) >= count or rank >= max_checked:
            break
        unit, source, dest = int(units[c]), int(sources[c]), int(dests[c])
        if keep_contiguous and not _keeps_connected(csr, labels, unit):
            continue
        chosen.append(Suggestion(
            unit=unit, source=source, target=dest, improvement=float(delta[c]),
            deviation_before=np.stack([src_before[c], dst_before[c]]),
            deviation_after=np.stack([src_after[c], dst_after[c]])))
    return chosen


def _keeps_connected(csr: sparse.csr_matrix, labels: np.ndarray, unit: int) -> bool:
    """Does the unit's own piece of its territory stay in one piece without it?

    A search from one of its same-territory neighbours, through that territory only, until the
    other such neighbours are all found (usually a few steps around the unit).
    """
    indptr, indices = csr.indptr, csr.indices
    own = labels[unit]
    around = [int(v) for v in indices[indptr[unit]:indptr[unit + 1]] if labels[v] == own and v != unit]
    if len(around) <= 1:
        return True
    missing = set(around[1:])
    seen = {unit, around[0]}
    stack = [around[0]]
    while stack:
        v = stack.pop()
        for w in indices[indptr[v]:indptr[v + 1]].tolist():
            if w not in seen and labels[w] == own:
                seen.add(w)
                missing.discard(w)
                if not missing:
                    return True
                stack.append(w)
    return not missing
