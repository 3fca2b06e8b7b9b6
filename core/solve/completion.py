"""Complete plans: every unit assigned and no territory empty, before and after the searches."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .model import Model


def ensure_nonempty(model: Model, labels: np.ndarray, prefer: Optional[np.ndarray] = None) -> np.ndarray:
    """Give every empty territory one unit, taken from the territory with the most units.

    ``prefer`` (n,) bool: units to take first (rebalance: filled-in units, whose move is no change).
    """
    labels = labels.copy()
    p = model.p
    count = np.bincount(labels, minlength=p)
    for empty in np.flatnonzero(count == 0).tolist():
        for donor in np.argsort(-count, kind="stable").tolist():
            if count[donor] <= 1:
                break
            members = np.flatnonzero((labels == donor) & (model.locked < 0))
            if members.size == 0:
                continue
            centre = model.xy[members].mean(axis=0)
            squared = ((model.xy[members] - centre) ** 2).sum(axis=1)
            if prefer is None:
                farthest = members[np.argsort(-squared, kind="stable")]
            else:
                farthest = members[np.lexsort((-squared, ~prefer[members]))]
            pick = farthest[0]
            for unit in farthest[: min(farthest.size, 50)].tolist():
                if model.neighbours.removal_keeps_connected(unit, labels):
                    pick = unit
                    break
            labels[pick] = empty
            count[donor] -= 1
            count[empty] += 1
            break
    return labels


def fill_unassigned(model: Model, labels: np.ndarray) -> np.ndarray:
    """Assign units with label -1 to a neighbouring territory, lightest territory first."""
    labels = labels.copy()
    p = model.p
    edge_from, edge_to = model.edges
    while np.any(labels < 0):
        load = (_ratios_assigned(model, labels) * model.active).sum(axis=1)
        front = (labels[edge_from] < 0) & (labels[edge_to] >= 0)
        if not np.any(front):
            break
        unit = edge_from[front]
        territory = labels[edge_to[front]]
        # per unassigned unit: the neighbouring territory with the least load (ties: lowest index)
        order = np.lexsort((territory, load[territory], unit))
        unit, territory = unit[order], territory[order]
        first = np.r_[True, unit[1:] != unit[:-1]]
        labels[unit[first]] = territory[first]
    if np.any(labels < 0):
        # no assigned unit reaches them (cannot happen once islands are joined); nearest territory
        rest = np.flatnonzero(labels < 0)
        labels[rest] = 0 if p else -1
    return labels


def _ratios_assigned(model: Model, labels: np.ndarray) -> np.ndarray:
    ok = labels >= 0
    out = np.zeros((model.p, model.m))
    for a in range(model.m):
        out[:, a] = np.bincount(labels[ok], model.frac[ok, a], minlength=model.p)
    return out / model.share[:, None]
