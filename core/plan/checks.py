"""What a report checks an alignment for: spread of the workloads, enclaves, territories out of
tolerance, names that differ only in case or spaces, and how far a territory reaches from its
rep's home.

Pure numpy/scipy; the messages are written by the caller.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


def coefficient_of_variation(values) -> float | None:
    """Standard deviation over mean of the territory sums, in percent (3 decimals); None when the
    mean is not positive (nothing to compare against)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if len(values) else 0.0
    if mean <= 0:
        return None
    return round(100.0 * float(values.std()) / mean, 3)


def surrounding_territories(labels, adjacency, territory_count: int) -> dict[int, int]:
    """Territories whose units' neighbours outside the territory all belong to one other territory:
    {territory: the territory around it}. Unassigned neighbours (label −1) count as outside, so a
    territory next to an unassigned unit is not surrounded. Whether it also stays clear of the
    layer's outer edge (an enclave) is for :func:`enclaves` to say."""
    labels = np.asarray(labels, dtype=np.int64)
    rows = sparse.csr_matrix(adjacency)
    around: dict[int, int] = {}
    for k in range(territory_count):
        members = np.flatnonzero(labels == k)
        if len(members) == 0:
            continue
        neighbours = np.unique(rows[members].indices)
        owners = np.unique(labels[neighbours[labels[neighbours] != k]])
        if len(owners) == 1 and owners[0] >= 0:
            around[k] = int(owners[0])
    return around


def enclaves(labels, surrounding: dict[int, int], on_edge) -> dict[int, int]:
    """The surrounded territories (from :func:`surrounding_territories`) with no unit on the outer
    edge of the layer (``on_edge[i]``): {enclave: the territory around it}."""
    labels = np.asarray(labels, dtype=np.int64)
    on_edge = np.asarray(on_edge, dtype=bool)
    return {k: owner for k, owner in surrounding.items() if not on_edge[labels == k].any()}


def tolerance_breaches(deviation, tolerance: float, unit_count) -> list[tuple[int, int, float]]:
    """(territory, measure, deviation) for every measure of a non-empty territory whose deviation
    (a fraction of the target, signed) lies outside ± ``tolerance``, territory by territory."""
    deviation = np.asarray(deviation, dtype=float)
    out = []
    for k in range(deviation.shape[0]):
        if unit_count[k] == 0:
            continue
        for a in range(deviation.shape[1]):
            value = float(deviation[k, a])
            if value > tolerance + 1e-9 or value < -tolerance - 1e-9:
                out.append((k, a, value))
    return out


def names_alike(names) -> list[list[str]]:
    """Groups of names that differ only in case or in the spaces between words."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(" ".join(name.split()).casefold(), []).append(name)
    return [similar for similar in groups.values() if len(similar) > 1]


def distances_km(positions, home) -> np.ndarray:
    """Straight-line distance in km from ``home`` to each position (both in metres)."""
    return np.hypot(*(np.asarray(positions, dtype=float) - np.asarray(home, dtype=float)).T) / 1000.0


def reach(values, weights) -> tuple[float, float, float] | None:
    """Mean, workload-weighted mean and largest of a territory's distances or travel times from
    its rep's home (one value per unit; units not reached, ``inf`` or NaN, are left out). The
    weighted mean is the plain mean when the weights sum to 0. None when no unit is reached."""
    values = np.asarray(values, dtype=float)
    reached = np.isfinite(values)
    if not reached.any():
        return None
    values = values[reached]
    weights = np.asarray(weights, dtype=float)[reached]
    mean = float(values.mean())
    weighted = float((weights * values).sum() / weights.sum()) if weights.sum() > 0 else mean
    return mean, weighted, float(values.max())
