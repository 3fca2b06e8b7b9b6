"""Side-by-side figures of several alignments (scenarios) of the same units.

Each scenario is a set of territory names per unit (None: unassigned). Figures come from
:func:`core.metrics.plan_figures`, so the comparison agrees with the panel and the toolbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..metrics import balance_matrix, plan_figures


@dataclass
class ScenarioFigures:
    """One row of the comparison.

    worst_deviation  (m',) largest |deviation| per measure (fractions)
    out_of_tolerance territories outside the tolerance on some measure
    noncontiguous    territories in more than one piece (-1 when adjacency is unknown)
    inertia_km2      workload-weighted moment of inertia summed over territories (km² × weight)
    changed_units    units whose territory differs from the baseline's
    changed_workload (m',) share of each measure's total that changed territory vs the baseline
    """

    name: str
    territories: int
    unassigned: int
    worst_deviation: np.ndarray
    out_of_tolerance: int
    noncontiguous: int
    inertia_km2: float
    changed_units: int
    changed_workload: np.ndarray


def encode(names: Sequence) -> tuple[np.ndarray, list]:
    """Territory names per unit → labels 0..p-1 (−1 for None/empty) and the sorted distinct names."""
    distinct = sorted({str(v) for v in names if v is not None and str(v).strip() != ""})
    index = {name: k for k, name in enumerate(distinct)}
    labels = np.fromiter((index.get(str(v), -1) if v is not None else -1 for v in names), dtype=np.int64,
                         count=len(names))
    return labels, distinct


def compare_scenarios(scenarios: dict, workloads, baseline: Optional[str] = None, adjacency=None,
                      positions=None, tolerance: float = 0.05) -> list:
    """Figures of every scenario (``{name: territory name per unit}``), in the given order.

    Units and workload changed are counted against ``baseline`` (the first scenario when None);
    a unit counts as changed when its territory name differs (an unassigned unit that gets a
    territory counts too).
    """
    if not scenarios:
        return []
    names = list(scenarios)
    base = baseline if baseline in scenarios else names[0]
    w = balance_matrix(workloads)
    totals = w.sum(axis=0)
    base_names = [None if v is None or str(v).strip() == "" else str(v) for v in scenarios[base]]
    if len(base_names) != w.shape[0]:
        raise ValueError(f"scenario {base!r} has {len(base_names)} units; the layer has {w.shape[0]}")
    rows = []
    for name in names:
        values = [None if v is None or str(v).strip() == "" else str(v) for v in scenarios[name]]
        if len(values) != w.shape[0]:
            raise ValueError(f"scenario {name!r} has {len(values)} units; the layer has {w.shape[0]}")
        labels, distinct = encode(values)
        p = len(distinct)
        changed = np.fromiter((a != b for a, b in zip(values, base_names)), dtype=bool, count=len(values))
        moved = w[changed].sum(axis=0)
        if p:
            figures = plan_figures(labels, workloads, adjacency, positions, territory_count=p, tolerance=tolerance)
            worst = np.abs(figures.deviation).max(axis=0)
            outside = int((~figures.within_tolerance).sum()) if figures.within_tolerance is not None else 0
            noncontiguous = int(figures.noncontiguous) if adjacency is not None else -1
            inertia = float(np.nansum(figures.inertia)) / 1e6 if positions is not None else float("nan")
        else:
            worst = np.zeros(w.shape[1])
            outside, noncontiguous, inertia = 0, 0, 0.0
        rows.append(ScenarioFigures(
            name=name, territories=p, unassigned=int((labels < 0).sum()), worst_deviation=worst,
            out_of_tolerance=outside, noncontiguous=noncontiguous, inertia_km2=inertia,
            changed_units=int(changed.sum()),
            changed_workload=np.where(totals > 0, moved / np.where(totals > 0, totals, 1.0), 0.0)))
    return rows
