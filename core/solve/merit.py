"""The merit of a plan for the local search, and the compactness figures it is made of."""

from __future__ import annotations

import numpy as np


def inertia(weight, moment, second_moment) -> np.ndarray:
    """Weighted inertia about the weighted centre, from the sums of w, w·xy (k, 2) and w·|xy|²
    of k groups of units (0 for a weightless group)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = second_moment - (moment**2).sum(axis=1) / np.where(weight > 1e-300, weight, 1.0)
    return np.where(weight > 1e-300, value, 0.0)


def moment_inertia(moments: np.ndarray) -> np.ndarray:
    """:func:`inertia` from (k, 4) rows of sums (w, wx, wy, w|xy|²)."""
    return inertia(moments[:, 0], moments[:, 1:3], moments[:, 3])
