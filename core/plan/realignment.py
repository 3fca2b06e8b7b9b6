"""What changes hands between two alignments of the same units: flows of units and workload from
each territory before to each territory after, and per territory what it had, has, gains and loses.

Pure numpy. Territories are rows (an index per territory, one row may stand for "unassigned").
"""

from __future__ import annotations

import numpy as np


def flows(before: np.ndarray, after: np.ndarray, weights: np.ndarray, rows: int) -> np.ndarray:
    """(rows, rows, 1 + m): units and workload moving from row r (before) to row s (after)."""
    values = np.concatenate([np.ones((len(before), 1)), weights.reshape(len(before), -1)], axis=1)
    out = np.zeros((rows, rows, values.shape[1]))
    np.add.at(out, (before, after), values)
    return out


def territory_changes(before: np.ndarray, after: np.ndarray, weights: np.ndarray, rows: int) -> np.ndarray:
    """(rows, 1 + m, 5): per territory, for the unit count then every measure: before, after,
    gained, lost, net."""
    moved = flows(before, after, weights, rows)
    stay = np.stack([moved[r, r] for r in range(rows)]) if rows else np.zeros((0, moved.shape[2]))
    before_total = moved.sum(axis=1)
    after_total = moved.sum(axis=0)
    gained = after_total - stay
    lost = before_total - stay
    return np.stack([before_total, after_total, gained, lost, gained - lost], axis=2)
