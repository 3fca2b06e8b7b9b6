"""How the algorithms name things in the log: lists of values, units by name or feature id, the
engine's diagnostics and its proven lower bound."""

from __future__ import annotations

from ..i18n import tr
from ..layers.units import Units


def listed(values, limit: int = 20) -> str:
    """Values for a message: "a, b, c", with "… (n in all)" after the first ``limit``."""
    values = list(values)
    text = ", ".join(str(v) for v in values[:limit])
    return text + (f", … ({len(values)} in all)" if len(values) > limit else "")


def unit_list(indices, units: Units, unit_names: list[str] | None, limit: int = 20) -> str:
    """Units for a message: by name when names are known ("Fulton, DeKalb"), else
    "feature ids 60, 44"."""
    indices = [int(i) for i in indices]
    if unit_names is not None:
        return listed([unit_names[i] for i in indices], limit)
    return tr("feature ids {}").format(
        listed([int(units.fids[i]) for i in indices], limit))


def push_diagnostics(plan, units: Units, names: list[str], feedback, unit_names: list[str] | None = None) -> None:
    """Show every engine diagnostic, naming the units (by ``unit_names`` when given, else by
    feature id) and territories it concerns."""
    for diagnostic in plan.diagnostics:
        text = diagnostic.message
        if diagnostic.units:
            if unit_names is not None:
                text += " " + tr("Units: {}.").format(
                    unit_list(diagnostic.units, units, unit_names))
            else:
                fids = [int(units.fids[i]) for i in diagnostic.units]
                text += " " + tr("Feature ids: {}.").format(listed(fids))
        if diagnostic.territories:
            text += " " + tr("Territories: {}.").format(
                ", ".join(names[k] for k in diagnostic.territories[:20]))
        if diagnostic.severity == "info":
            feedback.pushInfo(text)
        else:
            feedback.pushWarning(text)


def report_lower_bound(plan, max_deviation: float, feedback) -> float:
    """LOWER_BOUND (percent): the engine's proven lower bound on the worst deviation, logged."""
    bounds = getattr(plan, "lower_bounds", None)
    value = round(100.0 * float(max(bounds)) if bounds is not None and len(bounds) else 0.0, 3)
    if value > 0:
        gap = max(max_deviation - value, 0.0)
        feedback.pushInfo(tr("Proven lower bound on the worst deviation: {:.2f} % (no plan can do better); this "
                             "plan is {:.2f} points above it.").format(value, gap))
    else:
        feedback.pushInfo(tr("No lower bound on the worst deviation could be proven (LOWER_BOUND = 0)."))
    return value
