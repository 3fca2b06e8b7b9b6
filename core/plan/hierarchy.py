"""Territories as units of a coarser problem: regions are balanced, contiguous groups of whole
territories, built by the same engine that builds territories from units.

Pure numpy/scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .matching import unit_weights


@dataclass
class SuperUnits:
    """One super-unit per territory.

    ``positions`` are workload-weighted centres (each measure normalised by its total, so every
    measure counts equally; a territory without workload uses its units' plain mean).
    ``workloads`` are the territories' summed workloads; a problem without measures balances
    unit counts, so its super-units carry their unit count as the one measure (``counted_units``
    is then True). ``adjacency`` links two territories when any unit of one touches any unit
    of the other. ``unit_count`` is the number of units per territory.
    """

    positions: np.ndarray
    workloads: np.ndarray
    adjacency: sparse.csr_matrix
    unit_count: np.ndarray
    counted_units: bool


def coarsen(labels: np.ndarray, positions: np.ndarray, workloads: np.ndarray,
            adjacency: sparse.spmatrix, territory_count: int | None = None) -> SuperUnits:
    """Turn units labelled with territories (0 … p − 1, every unit labelled) into super-units.

    Raises ValueError when a unit has no territory or a territory has no units.
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    positions = np.asarray(positions, dtype=float).reshape(-1, 2)
    workloads = np.asarray(workloads, dtype=float)
    n = len(labels)
    if workloads.ndim != 2 or workloads.shape[0] != n:
        workloads = workloads.reshape(n, -1)
    if len(positions) != n:
        raise ValueError("positions and labels must have one entry per unit")
    if n and labels.min() < 0:
        raise ValueError(f"{int((labels < 0).sum())} units have no territory")
    p = int(territory_count if territory_count is not None else (labels.max() + 1 if n else 0))
    if n and labels.max() >= p:
        raise ValueError("a unit's territory index is outside 0 … territory_count − 1")
    membership = sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(p, n))
    unit_count = np.asarray(membership.sum(axis=1)).reshape(-1)
    empty = np.flatnonzero(unit_count == 0)
    if len(empty):
        raise ValueError(f"territories {empty.tolist()} have no units")

    weights = unit_weights(workloads)
    weight_sums = np.asarray(membership @ weights).reshape(-1)
    weighted = np.asarray(membership @ (positions * weights[:, None]))
    plain = np.asarray(membership @ positions) / unit_count[:, None]
    has_weight = weight_sums > 0
    centres = plain.copy()
    centres[has_weight] = weighted[has_weight] / weight_sums[has_weight, None]

    if workloads.shape[1] == 0:
        super_workloads = unit_count.reshape(p, 1).astype(float)
        counted = True
    else:
        super_workloads = np.asarray(membership @ workloads).reshape(p, workloads.shape[1])
        counted = False

    links = (membership @ sparse.csr_matrix(adjacency, shape=(n, n)) @ membership.T).tocoo()
    off_diagonal = (links.row != links.col) & (links.data != 0)
    super_adjacency = sparse.csr_matrix(
        (np.ones(int(off_diagonal.sum()), dtype=np.int8), (links.row[off_diagonal], links.col[off_diagonal])),
        shape=(p, p))
    super_adjacency = ((super_adjacency + super_adjacency.T) > 0).astype(np.int8).tocsr()
    return SuperUnits(positions=centres, workloads=super_workloads, adjacency=super_adjacency,
                      unit_count=unit_count.astype(np.int64), counted_units=counted)


def region_problem(super_units: SuperUnits, region_count: int, measure_names: list[str], tolerance: float,
                   random_seed: int = 0, contiguous: bool = True):
    """The engine's Problem whose units are the territories and whose territories are regions."""
    from ..problem import Problem

    names = ["units"] if super_units.counted_units else list(measure_names)
    return Problem(positions=super_units.positions, workloads=super_units.workloads,
                   adjacency=super_units.adjacency, territory_count=region_count, measure_names=names,
                   tolerance=tolerance, contiguous=contiguous, random_seed=random_seed)


def units_in_regions(labels: np.ndarray, region_of_territory: np.ndarray) -> np.ndarray:
    """Each unit's region, from its territory's region."""
    return np.asarray(region_of_territory, dtype=np.int64)[np.asarray(labels, dtype=np.int64)]
