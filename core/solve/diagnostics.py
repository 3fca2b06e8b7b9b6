"""Diagnostics: why a plan is not balanced or not contiguous, in words a GIS user understands."""

from __future__ import annotations

import numpy as np

from ..metrics import balance_matrix, territory_targets
from ..problem import Diagnostic, PlanFigures, Problem
from .model import Model

GRANULARITY_NOTE = 0.25  # a unit this large a share of a target makes balance coarse
MAX_LISTED_UNITS = 200


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f} %"


def measure_labels(problem: Problem) -> list[str]:
    return problem.names() if problem.measure_count else ["unit count"]


def granularity(problem: Problem) -> tuple:
    """(granularity, lower bound on max |deviation|) per balanced measure.

    granularity  = largest unit / smallest territory target;
    lower bound  = how far the largest unit alone overshoots the largest target (0 if it fits).
    """
    w = balance_matrix(problem.workload_matrix())
    targets = territory_targets(problem.workload_matrix(), problem.territory_count, problem.seed_targets)
    big = w.max(axis=0) if w.shape[0] else np.zeros(w.shape[1])
    tmin = targets.min(axis=0)
    tmax = targets.max(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gran = np.where(tmin > 0, big / np.where(tmin > 0, tmin, 1.0), 0.0)
        bound = np.where(tmax > 0, np.maximum(big / np.where(tmax > 0, tmax, 1.0) - 1.0, 0.0), 0.0)
    return gran, bound


def _tolerances(problem: Problem, m: int) -> np.ndarray:
    """(m,) tolerance per balanced measure."""
    tolerances = problem.tolerance_vector()
    return tolerances[:m] if tolerances.size >= m else np.full(m, float(tolerances.min()))


def input_diagnostics(problem: Problem, model: Model) -> list:
    """Diagnostics that follow from the data alone (islands, oversized units, coarse measures)."""
    out = []
    if problem.adjacency is None:
        out.append(
            Diagnostic(
                "adjacency_assumed",
                "No neighbour information was given, so every unit's six nearest units were taken "
                "as its neighbours for contiguity.",
                severity="info",
            )
        )
    g = model.graph
    if g.detached_groups > 0:
        units = g.detached_units.tolist()
        sparse = len(units) > 0.5 * model.n
        hint = (
            " Most units touch nothing: the layer seems to have no usable neighbours (points or "
            "gaps between polygons), so territories can only follow a thin chain of joins; build "
            "the adjacency from Voronoi/Delaunay neighbours or with a snapping tolerance."
            if sparse
            else ""
        )
        out.append(
            Diagnostic(
                "island_joined",
                f"{g.detached_groups} group(s) of units ({len(units)} units) touch no other unit "
                "(islands or gaps in the layer); each was joined to its nearest unit so that a "
                f"territory can include them.{hint}",
                units=units,
                severity="warning" if sparse else "info",
            )
        )
    w = balance_matrix(problem.workload_matrix())
    targets = territory_targets(problem.workload_matrix(), problem.territory_count, problem.seed_targets)
    names = measure_labels(problem)
    tolerances = _tolerances(problem, w.shape[1])
    for a in range(w.shape[1]):
        tol = float(tolerances[a])
        tmax = targets[:, a].max()
        tmin = targets[:, a].min()
        if tmax <= 0:
            continue
        column = w[:, a]
        too_big = np.flatnonzero(column > (1.0 + tol) * tmax)
        if too_big.size:
            order = too_big[np.argsort(-column[too_big], kind="stable")]
            code, severity = "unit_exceeds_target", "warning"
            message = (f"{too_big.size} unit(s) each carry more '{names[a]}' than a whole territory's "
                       f"target plus the {_pct(tol)} tolerance (the largest is {_pct(column[order[0]] / tmax)} "
                       "of a target); the territories holding them cannot be balanced. Split these units, "
                       "raise the tolerance or use fewer territories.")
        else:
            coarse = np.flatnonzero(column >= GRANULARITY_NOTE * tmin)
            if not coarse.size:
                continue
            order = coarse[np.argsort(-column[coarse], kind="stable")]
            code, severity = "granularity", "info"
            message = (f"{coarse.size} unit(s) each carry at least {_pct(GRANULARITY_NOTE)} of a territory's "
                       f"'{names[a]}' target (the largest {_pct(column[order[0]] / tmin)}), so balance on this "
                       "measure moves in coarse steps.")
        out.append(Diagnostic(code, message, units=order[:MAX_LISTED_UNITS].tolist(), severity=severity))
    out.extend(_locked_load(problem, model, w, targets, names, tolerances))
    return out


def _locked_load(problem, model, w, targets, names, tolerances) -> list:
    out = []
    locked = model.locked
    if not np.any(locked >= 0):
        return out
    p = model.p
    lk = np.flatnonzero(locked >= 0)
    for a in range(w.shape[1]):
        load = np.bincount(locked[lk], w[lk, a], minlength=p)
        over = np.flatnonzero((targets[:, a] > 0) & (load > (1.0 + tolerances[a]) * targets[:, a]))
        if over.size:
            units = lk[np.isin(locked[lk], over)]
            out.append(
                Diagnostic(
                    "locked_conflict",
                    f"The units locked to {over.size} territory(ies) already carry more '{names[a]}' "
                    "than the target plus tolerance; unlock some of them or raise the tolerance.",
                    units=units[:MAX_LISTED_UNITS].tolist(),
                    territories=over.tolist(),
                )
            )
    return out


def plan_diagnostics(
    problem: Problem,
    model: Model,
    labels: np.ndarray,
    figures: PlanFigures,
    stuck_locked: list,
    already_split: list = (),
    capped: bool = False,
) -> list:
    """Diagnostics about the finished plan (tolerance missed, pieces, locked conflicts, cap)."""
    out = []
    names = measure_labels(problem)
    tolerances = _tolerances(problem, figures.deviation.shape[1])
    if stuck_locked:
        units = np.flatnonzero(np.isin(model.locked, stuck_locked))
        out.append(
            Diagnostic(
                "locked_conflict",
                f"The locked units of {len(stuck_locked)} territory(ies) are cut apart by units locked "
                "to other territories, so these territories cannot be one piece; review the locks.",
                units=units[:MAX_LISTED_UNITS].tolist(),
                territories=list(stuck_locked),
            )
        )
    if problem.contiguous and figures.noncontiguous > 0:
        split = np.flatnonzero(figures.parts > 1)
        reason = ""
        if already_split:
            reason = " They were already in pieces in the existing plan."
        elif stuck_locked:
            reason = " Their locked units cannot be joined."
        out.append(
            Diagnostic(
                "noncontiguous",
                f"{split.size} territory(ies) are in more than one piece.{reason}",
                territories=split.tolist(),
            )
        )
    dev = figures.deviation
    bad = np.abs(dev) > tolerances[None, :] + 1e-9
    if np.any(bad):
        terr = np.flatnonzero(bad.any(axis=1))
        k, a = np.unravel_index(int(np.argmax(np.abs(dev))), dev.shape)
        w = balance_matrix(problem.workload_matrix())
        targets = figures.targets
        # the units that explain it: in an off-target territory, alone larger than the tolerance band
        reason_units = []
        for t in terr.tolist():
            for b in np.flatnonzero(bad[t]).tolist():
                if targets[t, b] <= 0:
                    continue
                members = np.flatnonzero(labels == t)
                big = members[w[members, b] > tolerances[b] * targets[t, b]]
                reason_units.extend(big[np.argsort(-w[big, b], kind="stable")].tolist())
        reason_units = list(dict.fromkeys(reason_units))[:MAX_LISTED_UNITS]
        if capped:
            out.append(
                Diagnostic(
                    "cap_reached",
                    f"The limit on changed units was reached before every territory was within the "
                    f"{_pct(tolerances[a])} tolerance; {terr.size} territory(ies) are still off target (worst "
                    f"{dev[k, a] * 100:+.1f} % on '{names[a]}'). Allow more changes to balance further.",
                    territories=terr.tolist(),
                )
            )
        else:
            why = (
                " Units that are large compared with the target are the reason (see the listed units)."
                if reason_units
                else " No single unit explains it; a larger tolerance or fewer locks may help."
            )
            out.append(
                Diagnostic(
                    "tolerance_unreachable",
                    f"{terr.size} territory(ies) could not be brought within the {_pct(tolerances[a])} tolerance "
                    f"(worst {dev[k, a] * 100:+.1f} % on '{names[a]}').{why}",
                    units=reason_units,
                    territories=terr.tolist(),
                )
            )
    return out
