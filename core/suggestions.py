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
from scipy.sparse.csgraph import connected_components


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
                  keep_contiguous: bool = True, max_checked: int = 60) -> list[Suggestion]:
    """The ``count`` best moves of one unit into or out of ``territory``.

    ``labels`` (n,) holds territory indexes, −1 for unassigned units (never moved).
    ``workloads`` (n, m) and ``targets`` (p, m) are in the same units. ``movable`` (n,) bool
    excludes locked units; territories in ``frozen_territories`` neither give nor receive units.
    With ``keep_contiguous`` a move is skipped when it would add a piece to the giving territory.
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

    coo = sparse.coo_matrix(adjacency)
    i, j = coo.row.astype(np.int64), coo.col.astype(np.int64)
    li, lj = labels[i], labels[j]
    neighbour_ok = (lj >= 0) & (li >= 0) & (li != lj)
    # out: i in territory moves to j's territory; in: i in a neighbour moves into territory
    out = neighbour_ok & (li == territory)
    into = neighbour_ok & (lj == territory)
    units = np.concatenate([i[out], i[into]])
    sources = np.concatenate([li[out], li[into]])
    dests = np.concatenate([lj[out], lj[into]])
    keep = movable[units] & ~frozen[sources] & ~frozen[dests]
    units, sources, dests = units[keep], sources[keep], dests[keep]
    if len(units) == 0:
        return []
    pairs = np.unique(np.stack([units, dests], axis=1), axis=0)
    units, dests = pairs[:, 0], pairs[:, 1]
    sources = labels[units]

    sums = np.zeros_like(targets)
    assigned = labels >= 0
    np.add.at(sums, labels[assigned], workloads[assigned])
    scale = np.where(targets > 0, targets, 1.0)
    deviation = (sums - targets) / scale
    w = workloads[units]
    src_before, dst_before = deviation[sources], deviation[dests]
    src_after = src_before - w / scale[sources]
    dst_after = dst_before + w / scale[dests]
    delta = ((src_before ** 2 + dst_before ** 2) - (src_after ** 2 + dst_after ** 2)).sum(axis=1)
    order = np.argsort(-delta, kind="stable")
    order = order[delta[order] > 1e-12]

    csr = sparse.csr_matrix(adjacency)
    pieces: dict[int, int] = {}
    chosen: list[Suggestion] = []
    for rank, c in enumerate(order):
        if len(chosen) >= count or rank >= max_checked:
            break
        unit, source, dest = int(units[c]), int(sources[c]), int(dests[c])
        if keep_contiguous and _splits(csr, labels, unit, source, pieces):
            continue
        chosen.append(Suggestion(
            unit=unit, source=source, target=dest, improvement=float(delta[c]),
            deviation_before=np.stack([src_before[c], dst_before[c]]),
            deviation_after=np.stack([src_after[c], dst_after[c]])))
    return chosen


def _splits(csr: sparse.csr_matrix, labels: np.ndarray, unit: int, source: int, pieces: dict[int, int]) -> bool:
    """Would taking ``unit`` out of ``source`` leave it in more pieces than it has now?"""
    members = np.flatnonzero(labels == source)
    if source not in pieces:
        pieces[source] = _piece_count(csr, members)
    rest = members[members != unit]
    if len(rest) == 0:
        return False
    return _piece_count(csr, rest) > pieces[source]


def _piece_count(csr: sparse.csr_matrix, members: np.ndarray) -> int:
    if len(members) == 0:
        return 0
    sub = csr[members][:, members]
    return int(connected_components(sub, directed=False)[0])
