"""Territories in one piece: detached pieces handed over, locked pieces joined, cut pieces rejoined.

After the location–allocation (which ignores contiguity) or after units are filled in or locked,
a territory may lie in several pieces. :func:`repair_contiguity` keeps each territory's main
piece and gives every other piece to the neighbouring territory whose balance it suits best;
locked units of one territory lying in different pieces are joined along the shortest path of
units not locked elsewhere. The rebalance first tries to join pieces the filling-in cut along
filled-in units (:func:`rejoin_through_filled`), which counts as no change.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import connected_components

from ..graph import count_parts, path_between, territory_pieces
from .model import Model


def repair_contiguity(model: Model, labels: np.ndarray, max_passes: int = 200) -> tuple:
    """Give every detached piece of a territory to a neighbouring territory.

    The piece of a territory that holds its locked units (or else its heaviest piece) stays; every
    other piece joins the adjacent territory whose balance it suits best. Locked units of one
    territory lying in different pieces are joined by the shortest path through units that are
    not locked elsewhere. Returns (labels, territories whose locked units cannot be joined).
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    p = model.p
    adjacency = model.adjacency
    indptr, indices = adjacency.indptr, adjacency.indices
    locked = model.locked
    weight = model.weight
    stuck_territories: set = set()
    tolerance = model.tolerance_vector
    for _ in range(max_passes):
        piece = territory_pieces(labels, adjacency)
        npieces = int(piece.max()) + 1
        piece_label = np.full(npieces, -1, dtype=np.int64)
        piece_label[piece] = labels
        per_terr = np.bincount(piece_label, minlength=p)
        if np.all(per_terr <= 1):
            break
        pweight = np.bincount(piece, weight, minlength=npieces)
        plocked = np.bincount(piece, (locked >= 0).astype(float), minlength=npieces)
        psize = np.bincount(piece, minlength=npieces)
        # main piece per territory: most locked units, then heaviest, then largest, then lowest id
        order = np.lexsort((np.arange(npieces), -psize, -pweight, -plocked, piece_label))
        first = np.r_[True, piece_label[order][1:] != piece_label[order][:-1]]
        is_main = np.zeros(npieces, dtype=bool)
        is_main[order[first]] = True
        ratios = model.ratios(labels)
        moved_any = False
        main_unit = is_main[piece]
        # fragments adjacent to some other territory's main piece
        coo_u = np.repeat(np.arange(model.n), np.diff(indptr))
        coo_v = indices
        frag_edge = (~main_unit[coo_u]) & main_unit[coo_v] & (labels[coo_u] != labels[coo_v])
        frag_of_edge = piece[coo_u[frag_edge]]
        dst_of_edge = labels[coo_v[frag_edge]]
        wsum = np.maximum(np.bincount(labels, weight, minlength=p), 1e-300)
        centre = np.column_stack(
            [np.bincount(labels, weight * model.xy[:, d], minlength=p) / wsum for d in range(2)]
        )
        for frag in np.unique(frag_of_edge).tolist():
            members = np.flatnonzero(piece == frag)
            own = int(piece_label[frag])
            if plocked[frag] > 0:
                if _join_locked_piece(model, labels, members, own, piece, is_main):
                    moved_any = True
                else:
                    stuck_territories.add(own)
                continue
            options = np.unique(dst_of_edge[frag_of_edge == frag])
            load = model.frac[members].sum(axis=0)
            best, best_score = -1, None
            cen = (weight[members][:, None] * model.xy[members]).sum(axis=0) / max(weight[members].sum(), 1e-300)
            for b in options.tolist():
                r_new = ratios[b] + load / model.share[b]
                r_own = ratios[own] - load / model.share[own]
                over = (np.maximum(np.abs(r_new - 1.0) - tolerance, 0) * model.active).sum()
                over += (np.maximum(np.abs(r_own - 1.0) - tolerance, 0) * model.active).sum()
                spread = (((r_new - 1.0) ** 2) * model.active).sum()
                near = float(((centre[b] - cen) ** 2).sum())
                score = (over, spread + 1e-3 * near)
                if best_score is None or score < best_score:
                    best, best_score = b, score
            labels[members] = best
            ratios[best] += load / model.share[best]
            ratios[own] -= load / model.share[own]
            moved_any = True
        if not moved_any:
            break
    return labels, sorted(stuck_territories)


def _join_locked_piece(model: Model, labels: np.ndarray, members: np.ndarray, own: int, piece: np.ndarray,
                       is_main: np.ndarray) -> bool:
    """Claim the shortest path of units (not locked elsewhere) from a locked piece to the main one."""
    target = is_main[piece] & (labels == own)
    if not np.any(target):
        return False
    locked = model.locked
    passable = (locked < 0) | (locked == own)
    path = path_between(model.neighbours.lists, members.tolist(), passable, target)
    if path is None:
        return False
    labels[path] = own
    return True


def rejoin_through_filled(model: Model, labels: np.ndarray, initial: np.ndarray, user_split,
                          passes: int = 4) -> np.ndarray:
    """Join the pieces of territories the filling-in cut, along shortest paths of filled-in
    units (initial label -1, not locked), which take the territory's label."""
    labels = labels.copy()
    lists = model.neighbours.lists
    free = (initial < 0) & (model.locked < 0)
    for _ in range(passes):
        parts = count_parts(labels, model.adjacency, model.p)
        todo = [k for k in range(model.p) if parts[k] > 1 and k not in user_split]
        if not todo:
            break
        for k in todo:
            members = np.flatnonzero(labels == k)
            ncomp, comp = connected_components(model.adjacency[members][:, members], directed=False)
            if ncomp <= 1:
                continue
            size = np.bincount(comp, model.weight[members], minlength=ncomp)
            main = int(np.argmax(size))
            target = np.zeros(model.n, dtype=bool)
            target[members[comp == main]] = True
            for c in range(ncomp):
                if c == main:
                    continue
                path = path_between(lists, members[comp == c].tolist(), free | (labels == k), target)
                if path is None:
                    continue
                labels[path] = k
                target[members[comp == c]] = True
    return labels


def split_by_user(model: Model, initial: np.ndarray) -> list:
    """Territories whose assigned units the input already has in several pieces (counting
    unassigned units as bridges: filling them in could join the pieces)."""
    out = []
    for k in range(model.p):
        own = np.flatnonzero(initial == k)
        if own.size <= 1:
            continue
        members = np.flatnonzero((initial == k) | (initial < 0))
        _, comp = connected_components(model.adjacency[members][:, members], directed=False)
        comp_of = np.full(model.n, -1, dtype=np.int64)
        comp_of[members] = comp
        if np.unique(comp_of[own]).size > 1:
            out.append(k)
    return out
