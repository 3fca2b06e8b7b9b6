"""Territory identity across plans: which new territory continues which old one.

Pure numpy/scipy. A new plan's territories take the codes (and with them names, reps and colours)
of the old territories they overlap most, found as one optimal matching over all territories at
once, so two new territories never claim the same old code and positions in a list never matter.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def overlap(old_labels: np.ndarray, new_labels: np.ndarray, weights: np.ndarray | None,
            old_count: int, new_count: int) -> np.ndarray:
    """``result[o, k]``: the weight of units in old territory o and new territory k (labels < 0 skipped)."""
    old_labels = np.asarray(old_labels, dtype=np.int64)
    new_labels = np.asarray(new_labels, dtype=np.int64)
    w = np.ones(len(old_labels)) if weights is None else np.asarray(weights, dtype=float)
    keep = (old_labels >= 0) & (new_labels >= 0)
    table = np.zeros((old_count, new_count))
    np.add.at(table, (old_labels[keep], new_labels[keep]), w[keep])
    return table


def match_by_overlap(old_labels: np.ndarray, new_labels: np.ndarray, old_count: int, new_count: int,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """For each new territory k, the old territory it continues (−1: none, a new territory).

    Maximises the total overlap (by ``weights``, unit count when None; ties broken by unit count)
    over one-to-one matchings. A new territory that shares nothing with its match gets −1.
    """
    result = np.full(new_count, -1, dtype=np.int64)
    if old_count == 0 or new_count == 0:
        return result
    by_weight = overlap(old_labels, new_labels, weights, old_count, new_count)
    by_count = overlap(old_labels, new_labels, None, old_count, new_count)
    total = by_weight.sum()
    scale = by_weight / total if total > 0 else by_weight
    score = scale + 1e-6 * by_count / max(by_count.sum(), 1.0)
    rows, cols = linear_sum_assignment(score, maximize=True)
    for o, k in zip(rows, cols):
        if by_count[o, k] > 0:
            result[k] = o
    return result
