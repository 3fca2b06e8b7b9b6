"""The territory problem as arrays, and the plan the engine returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import scipy.sparse as sp


class ProblemError(ValueError):
    """The inputs cannot be solved as given; the message names the problem and the fix."""


@dataclass
class Problem:
    """Everything the engine needs, as plain arrays.

    positions       (n, 2) float, projected coordinates in metres (one representative point per unit).
    workloads       (n, m) float >= 0, one column per measure; m may be 0 (then the unit count is
                    balanced). A 1-D array is read as one measure.
    adjacency       (n, n) sparse, nonzero = the two units are neighbours. Read as undirected; the
                    diagonal is ignored; it may be disconnected (islands are joined to their nearest
                    unit for the solve). None: every unit's 6 nearest units are its neighbours.
    territory_count p, the number of territories.
    measure_names   m names, used in diagnostic messages.
    seeds           (p, 2) fixed centres (rep homes) in the same coordinates as positions; territory k
                    is built around seed k and keeps the unit nearest to it.
    seed_targets    (p,) relative targets (1 = full-time rep, 0.5 = half-time); default all 1.
    locked          (n,) int, -1 = free, else the territory index the unit must stay in.
    initial         (n,) int, an existing plan (-1 = unassigned), used by rebalancing.
    tolerance       allowed deviation from each territory's target, as a fraction (0.05 = +-5 %).
    contiguous      keep every territory one connected piece of the adjacency graph.
    random_seed     the same seed gives the same plan.
    tolerances      optional per-measure tolerances (fractions, one per workload column); they replace
                    ``tolerance`` for those measures.
    time_limit      seconds the whole Build or Rebalance may take (every phase stops at the deadline
                    with the best plan so far; the search stops sooner once every territory is within
                    tolerance). None: the search's default cap, and it also stops when it stops
                    improving (step budgets, so the plan does not depend on the machine's speed).
    fixed_loads     optional (p, m) workload every territory carries whatever its units are (accounts
                    overridden to it); added to the territory's sums, and to the totals the targets
                    are shares of.
    """

    positions: np.ndarray
    workloads: np.ndarray
    adjacency: sp.csr_matrix
    territory_count: int
    measure_names: Sequence[str] = ()
    seeds: Optional[np.ndarray] = None
    seed_targets: Optional[np.ndarray] = None
    locked: Optional[np.ndarray] = None
    initial: Optional[np.ndarray] = None
    tolerance: float = 0.05
    contiguous: bool = True
    random_seed: int = 0
    time_limit: Optional[float] = None
    tolerances: Optional[Sequence[float]] = None
    fixed_loads: Optional[np.ndarray] = None

    @property
    def unit_count(self) -> int:
        return int(np.shape(self.positions)[0]) if np.ndim(self.positions) >= 1 else 0

    @property
    def measure_count(self) -> int:
        w = np.asarray(self.workloads)
        if w.ndim == 1:
            return 1 if w.size else 0
        return int(w.shape[1]) if w.ndim == 2 else 0

    def workload_matrix(self) -> np.ndarray:
        """Workloads as an (n, m) float array (a 1-D input becomes one column)."""
        w = np.asarray(self.workloads, dtype=float)
        if w.ndim == 1:
            w = w.reshape(-1, 1) if w.size else np.zeros((self.unit_count, 0))
        return w

    def tolerance_vector(self) -> np.ndarray:
        """(m',) tolerance of every balanced measure (``tolerances`` if given, else ``tolerance``)."""
        m = max(self.measure_count, 1)
        if self.tolerances is None:
            return np.full(m, float(self.tolerance))
        return np.asarray(self.tolerances, dtype=float).reshape(-1)[:m].copy()

    def fixed_load_matrix(self) -> Optional[np.ndarray]:
        """The fixed loads as a (p, m) float array, or None when there are none."""
        if self.fixed_loads is None:
            return None
        return np.asarray(self.fixed_loads, dtype=float).reshape(int(self.territory_count), -1)

    def target_shares(self) -> np.ndarray:
        """Share of every measure's total that each territory should carry; sums to 1."""
        p = int(self.territory_count)
        if self.seed_targets is None:
            return np.full(p, 1.0 / p)
        t = np.asarray(self.seed_targets, dtype=float).reshape(-1)
        return t / t.sum()

    def names(self) -> list[str]:
        """A display name per measure ('measure 1', ... when none were given)."""
        m = self.measure_count
        given = list(self.measure_names or ())
        return [str(given[a]) if a < len(given) else f"measure {a + 1}" for a in range(m)]

    def validate(self) -> None:
        """Check shapes and values; raise ProblemError naming the problem and the fix."""
        _validate(self)


def _bad_units(mask: np.ndarray, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    text = ", ".join(str(int(i)) for i in idx[:limit])
    return text + (f" and {idx.size - limit} more" if idx.size > limit else "")


def _validate(problem: Problem) -> None:
    p = problem.territory_count
    if isinstance(p, bool) or not isinstance(p, (int, np.integer, float, np.floating)) or float(p) != int(p):
        raise ProblemError(f"The number of territories must be a whole number, got {p!r}.")
    p = int(p)
    if p < 1:
        raise ProblemError(f"The number of territories must be at least 1, got {p}.")

    pos = np.asarray(problem.positions)
    if pos.ndim != 2 or pos.shape[1] != 2:
        raise ProblemError(
            f"Unit positions must be an (n, 2) array of x, y coordinates, got shape {pos.shape}."
        )
    n = pos.shape[0]
    if n == 0:
        raise ProblemError("There are no units to assign; choose a layer with features.")
    if not np.issubdtype(pos.dtype, np.number) or not np.all(np.isfinite(pos)):
        bad = ~np.all(np.isfinite(pos.astype(float)), axis=1)
        raise ProblemError(
            f"Units {_bad_units(bad)} have no valid position (NaN or infinite coordinates); "
            "fix or remove their geometries."
        )
    if n < p:
        raise ProblemError(
            f"There are fewer units ({n}) than territories ({p}); use at most {n} territories."
        )

    w = np.asarray(problem.workloads)
    if w.ndim == 1 and w.size:
        w = w.reshape(-1, 1)
    if w.size == 0 and w.ndim != 2:
        w = np.zeros((n, 0))
    if w.ndim != 2 or w.shape[0] != n:
        raise ProblemError(
            f"Workloads must have one row per unit ({n} units), got shape {w.shape}."
        )
    if w.size and not np.issubdtype(w.dtype, np.number):
        raise ProblemError("Workloads must be numbers; check the workload fields' types.")
    if w.size:
        w = w.astype(float)
        names = problem.names()
        for a in range(w.shape[1]):
            col = w[:, a]
            if not np.all(np.isfinite(col)):
                raise ProblemError(
                    f"Workload '{names[a]}' is missing (NULL/NaN) or infinite for units "
                    f"{_bad_units(~np.isfinite(col))}; fill these values (for example with 0)."
                )
            if np.any(col < 0):
                raise ProblemError(
                    f"Workload '{names[a]}' is negative for units {_bad_units(col < 0)}; "
                    "workloads must be zero or more."
                )
    given_names = list(problem.measure_names or ())
    if given_names and len(given_names) != w.shape[1]:
        raise ProblemError(
            f"There are {len(given_names)} measure names for {w.shape[1]} workload columns; "
            "give one name per measure."
        )

    adj = problem.adjacency
    if adj is None:
        adj = sp.csr_matrix((n, n))
    if not sp.issparse(adj):
        try:
            adj = sp.csr_matrix(np.asarray(adj))
        except Exception as exc:  # noqa: BLE001 - any conversion failure is a user input error
            raise ProblemError(f"The adjacency must be a sparse (n, n) matrix: {exc}") from exc
    if adj.shape != (n, n):
        raise ProblemError(
            f"The adjacency must be a square matrix with one row per unit ({n}), got {adj.shape}."
        )

    if problem.seeds is not None:
        seeds = np.asarray(problem.seeds, dtype=float)
        if seeds.ndim != 2 or seeds.shape[1] != 2:
            raise ProblemError(f"Seeds must be a (p, 2) array of x, y coordinates, got {seeds.shape}.")
        if seeds.shape[0] != p:
            raise ProblemError(
                f"There are {seeds.shape[0]} seeds (rep homes) for {p} territories; "
                "give one seed per territory or set the number of territories to the number of seeds."
            )
        if not np.all(np.isfinite(seeds)):
            raise ProblemError("Some seeds have no valid position (NaN or infinite coordinates).")

    if problem.seed_targets is not None:
        st = np.asarray(problem.seed_targets, dtype=float).reshape(-1)
        if st.shape[0] != p:
            raise ProblemError(
                f"There are {st.shape[0]} territory targets for {p} territories; give one per territory."
            )
        if not np.all(np.isfinite(st)) or np.any(st <= 0):
            raise ProblemError(
                "Territory targets must be positive numbers (1 = full share, 0.5 = half share); "
                f"territories {_bad_units(~(np.isfinite(st) & (st > 0)))} are not."
            )

    for name, arr in (("locked", problem.locked), ("initial", problem.initial)):
        if arr is None:
            continue
        a = np.asarray(arr)
        what = "Locked territories" if name == "locked" else "The existing plan"
        if a.shape != (n,):
            raise ProblemError(f"{what} must give one value per unit ({n}), got shape {a.shape}.")
        if a.size and not np.issubdtype(a.dtype, np.integer):
            af = a.astype(float)
            if not np.all(np.isfinite(af)) or np.any(af != np.round(af)):
                raise ProblemError(f"{what} must be whole territory numbers (-1 for none).")
        ai = a.astype(np.int64)
        bad = (ai < -1) | (ai >= p)
        if np.any(bad):
            raise ProblemError(
                f"{what} refers to territories outside 0..{p - 1} for units {_bad_units(bad)}; "
                "use -1 for none or raise the number of territories."
            )

    if problem.fixed_loads is not None:
        _validate_fixed_loads(problem.fixed_loads, p, w.shape[1], problem.names())

    if problem.time_limit is not None:
        try:
            limit = float(problem.time_limit)
        except (TypeError, ValueError) as exc:
            raise ProblemError(f"The time limit must be a number of seconds, got {problem.time_limit!r}.") from exc
        if not np.isfinite(limit) or limit < 0:
            raise ProblemError(f"The time limit must be zero or more seconds, got {limit}.")

    if problem.tolerances is not None:
        try:
            tols = np.asarray(problem.tolerances, dtype=float).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise ProblemError(f"The tolerances must be numbers, got {problem.tolerances!r}.") from exc
        m = max(problem.measure_count, 1)
        if tols.size != m:
            raise ProblemError(
                f"There are {tols.size} tolerances for {m} balance measure(s); give one tolerance per "
                "balance field, in the same order."
            )
        if not np.all(np.isfinite(tols)) or np.any(tols < 0) or np.any(tols >= 1):
            raise ProblemError(
                "Each tolerance is a fraction of the target between 0 and 1 (0.05 = 5 %), got "
                f"{', '.join(f'{t:g}' for t in tols)}."
            )

    tol = problem.tolerance
    try:
        tol = float(tol)
    except (TypeError, ValueError) as exc:
        raise ProblemError(f"The tolerance must be a number, got {problem.tolerance!r}.") from exc
    if not np.isfinite(tol) or tol < 0 or tol > 1:
        raise ProblemError(
            f"The tolerance is a fraction of the target from 0 to 1 (0.05 = 5 %), got {tol}."
        )


def _validate_fixed_loads(fixed_loads, territory_count: int, measure_count: int, names: list) -> None:
    fixed = np.asarray(fixed_loads)
    if fixed.shape != (territory_count, measure_count):
        raise ProblemError(
            f"Fixed loads must have one row per territory ({territory_count}) and one column per measure "
            f"({measure_count}), got shape {fixed.shape}."
        )
    if fixed.size and not np.issubdtype(fixed.dtype, np.number):
        raise ProblemError("Fixed loads must be numbers.")
    fixed = fixed.astype(float)
    for a in range(measure_count):
        bad = ~np.isfinite(fixed[:, a]) | (fixed[:, a] < 0)
        if np.any(bad):
            raise ProblemError(
                f"The fixed load of '{names[a]}' is missing, infinite or negative for territories "
                f"{_bad_units(bad)}; fixed loads are workloads, zero or more."
            )


@dataclass
class Diagnostic:
    """Something the user should know about a plan.

    code        e.g. "island_joined", "unit_exceeds_target", "tolerance_unreachable", "granularity",
                "noncontiguous", "locked_conflict", "cap_reached".
    message     one sentence for a GIS user; units and territories are named only through
                ``units`` and ``territories`` (indices), so the caller can show their own ids.
    """

    code: str
    message: str
    units: list = field(default_factory=list)
    territories: list = field(default_factory=list)
    severity: str = "warning"


@dataclass
class PlanFigures:
    """Per-territory figures of a plan; built by :func:`core.metrics.plan_figures`.

    sums        (p, m') workload per territory per measure (m' = m, or 1 = unit count when m == 0)
    targets     (p, m')
    deviation   (p, m') (sum - target) / target; 0 where the target is 0
    unit_count  (p,)
    parts       (p,) connected pieces in the adjacency graph, islands joined (0 = empty territory)
    contiguous  (p,) bool, parts <= 1
    centres     (p, 2) workload-weighted centre (NaN for an empty territory)
    inertia     (p,) workload-weighted sum of squared distances to the centre (m^2 x weight)
    max_deviation  max |deviation| over territories and measures
    noncontiguous  number of territories in more than one piece
    tolerance      the tolerance the figures were judged against (a float, or (m',) per measure)
    within_tolerance (p,) bool, every measure of the territory within tolerance
    """

    sums: np.ndarray
    targets: np.ndarray
    deviation: np.ndarray
    unit_count: np.ndarray
    parts: np.ndarray
    contiguous: np.ndarray
    centres: np.ndarray
    inertia: np.ndarray
    max_deviation: float
    noncontiguous: int
    tolerance: float = 0.05
    within_tolerance: Optional[np.ndarray] = None

    @property
    def balanced(self) -> bool:
        """Every territory within tolerance on every measure (each against its own tolerance)."""
        if self.within_tolerance is not None:
            return bool(np.all(self.within_tolerance))
        return bool(self.max_deviation <= float(np.min(self.tolerance)) + 1e-9)


@dataclass
class Plan:
    """The engine's answer.

    labels          (n,) territory index 0..p-1 of every unit
    figures         per-territory figures (see PlanFigures)
    diagnostics     what the user should know (reasons when tolerance or contiguity was not reached)
    changed_units   units whose territory differs from a valid ``problem.initial`` label (rebalance)
    moved_workload  (m',) workload that changed territory, per measure (rebalance; zeros otherwise)
    lower_bounds    (m',) no plan can have a smaller maximum |deviation| on that measure than this
                    (from the largest units); 0 when granularity does not limit balance
    granularity     (m',) largest unit / smallest territory target, per measure
    """

    labels: np.ndarray
    figures: PlanFigures
    diagnostics: list = field(default_factory=list)
    changed_units: int = 0
    moved_workload: Optional[np.ndarray] = None
    lower_bounds: Optional[np.ndarray] = None
    granularity: Optional[np.ndarray] = None

    def diagnostic_codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]
