"""A proposed change to the plan (from Build, Rebalance or a suggestion), shown before it is applied.

:class:`Preview` holds the proposal and its figures (pure numpy), :func:`applied_message` says what
applying it did; ``ui/map_view.py`` outlines the units it would move on the map.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from qgis.core import Qgis

from ..core.metrics import relative_deviation
from ..i18n import tr


@dataclass
class Preview:
    """What applying would do. ``units``/``names``: unit indexes and the territory each would get;
    ``territory_list``: the territory list after applying (None: unchanged)."""

    title: str
    action: str
    units: np.ndarray
    names: list
    territory_list: list | None
    revision: int
    measures: list[str]
    territories: list[str] = field(default_factory=list)
    moved: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    moved_workload: np.ndarray = field(default_factory=lambda: np.zeros(0))
    total_workload: np.ndarray = field(default_factory=lambda: np.zeros(0))
    before: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # deviation (p, m) as fractions
    after: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    #: a fraction, or one per measure (TOLERANCES)
    tolerance: float | np.ndarray = 0.05
    notes: list[str] = field(default_factory=list)

    @property
    def worst_before(self) -> float:
        return float(np.abs(self.before).max()) if self.before.size else 0.0

    @property
    def worst_after(self) -> float:
        return float(np.abs(self.after).max()) if self.after.size else 0.0

    def out_of_tolerance_after(self) -> list[str]:
        """Territories that would still be outside the tolerance on some measure."""
        if not self.after.size:
            return []
        bad = (np.abs(self.after) > np.asarray(self.tolerance, dtype=float) + 1e-9).any(axis=1)
        return [name for name, flag in zip(self.territories, bad) if flag]


def territory_deviation(labels: np.ndarray, workloads: np.ndarray, count: int) -> np.ndarray:
    """Relative deviation (p, m) of each territory's sum from an equal share (``core.metrics``' one
    formula); labels −1 count nowhere."""
    sums = np.zeros((count, workloads.shape[1]))
    inside = labels >= 0
    np.add.at(sums, labels[inside], workloads[inside])
    return relative_deviation(sums, workloads.sum(axis=0) / max(count, 1))


def make_preview(title: str, action: str, current: np.ndarray, current_names: list[str], units: np.ndarray,
                 names: list, territory_list: list | None, workloads: np.ndarray, measures: list[str],
                 tolerance, revision: int, locked: np.ndarray) -> Preview:
    """The preview of giving unit ``units[i]`` territory ``names[i]`` (locked units never move).

    ``current``: every unit's position in ``current_names`` (−1: unassigned); ``workloads`` (n, m)
    the balanced measures (a column of ones when the unit count is balanced).
    """
    after_names = list(territory_list) if territory_list is not None else list(current_names)
    position = {name: k for k, name in enumerate(after_names)}
    remap = np.array([position.get(name, -1) for name in current_names] + [-1], dtype=np.int64)
    before_labels = remap[np.where(current >= 0, current, len(current_names))]
    after_labels = before_labels.copy()
    units = np.asarray(units, dtype=np.int64)
    target = np.array([position.get(name, -1) if name is not None else -1 for name in names], dtype=np.int64)
    free = ~locked[units]
    after_labels[units[free]] = target[free]
    moved = np.flatnonzero(after_labels != before_labels)
    preview = Preview(title=title, action=action, units=units[free], names=[n for n, f in zip(names, free) if f],
                      territory_list=territory_list, revision=revision, measures=list(measures))
    preview.territories = after_names
    preview.moved = moved
    preview.moved_workload = workloads[moved].sum(axis=0)
    preview.total_workload = workloads.sum(axis=0)
    preview.before = territory_deviation(before_labels, workloads, len(after_names))
    preview.after = territory_deviation(after_labels, workloads, len(after_names))
    preview.tolerance = tolerance
    return preview


def applied_message(title: str, changed: int, worst: float, outside: list[str], tolerance: str) -> tuple:
    """What the message bar says once a proposal is applied: (text, Qgis.MessageLevel); ``worst`` is
    the worst deviation now (a fraction), ``outside`` the territories still outside ``tolerance``."""
    text = tr("{}: {} unit(s) changed territory; worst deviation {:.1f} %.").format(title, changed, 100.0 * worst)
    if outside:
        return text + " " + tr("Still outside the tolerance ({}): {}.").format(tolerance, ", ".join(outside)), \
            Qgis.MessageLevel.Warning
    return text + " " + tr("Every territory is within tolerance."), Qgis.MessageLevel.Success
