"""The problems Territory statistics lists (in its report and its log): empty territories,
territories out of tolerance, in pieces or enclosed, unassigned units, names that differ only in
case or spaces, and reps who are missing, doubled, without a home or living elsewhere."""

from __future__ import annotations

import numpy as np

from ..core.plan.checks import names_alike, tolerance_breaches
from ..i18n import tr
from ..layers.reps import Rep, home_outside_km, no_home_warning
from ..layers.shapes import units_at
from ..layers.units import Units
from .messages import unit_list
from .statistics_figures import TerritoryFigures


def alignment_issues(figures: TerritoryFigures, units: Units, unassigned, tolerance: float, territory_field: str,
                     unit_names: list[str] | None) -> list[tuple[str, str]]:
    """(severity, text) for every problem of the territories themselves."""
    issues = []
    names = figures.names
    for k, name in enumerate(names):
        if figures.unit_count[k] == 0:
            issues.append(("error", tr("Territory “{}” is empty: it has no units.").format(name)))
    for k, a, deviation in tolerance_breaches(figures.deviation, tolerance, figures.unit_count):
        if deviation > 0:
            text = tr("Territory “{}” is over tolerance on {}: {:+.1f} % of its target.")
        else:
            text = tr("Territory “{}” is under tolerance on {}: {:+.1f} % of its target.")
        issues.append(("warning", text.format(names[k], figures.measures[a], 100 * deviation)))
    for k, name in enumerate(names):
        if figures.unit_count[k] > 0 and not figures.contiguous[k]:
            issues.append(("warning", tr("Territory “{}” is not contiguous: it is in {} parts.").format(
                name, int(figures.parts[k]))))
    for k, name in enumerate(names):
        if figures.enclave_of[k] is not None:
            issues.append(("warning", tr("Territory “{}” is an enclave: it is entirely surrounded by territory "
                                         "“{}”.").format(name, figures.enclave_of[k])))
    if len(unassigned):
        issues.append(("warning", tr("{} units have no territory (empty “{}”): {}.").format(
            len(unassigned), territory_field, unit_list(unassigned, units, unit_names))))
    for similar in names_alike(names):
        issues.append(("warning", tr("Territory names differ only in case or spaces: {}. They are counted as "
                                     "different territories.").format(", ".join(f"“{n}”" for n in similar))))
    return issues


def rep_issues(figures: TerritoryFigures, units: Units, labels, reps: list[Rep]) -> list[tuple[str, str]]:
    """(severity, text) for every problem of the reps: without a home, sharing a name, without a
    territory, several for one territory, territories without a rep, homes outside the territory."""
    if not reps:
        return []
    issues = [("warning", no_home_warning(rep)) for rep in reps if not rep.has_home]
    names = figures.names
    seen: dict[str, int] = {}
    for rep in reps:
        seen[rep.name] = seen.get(rep.name, 0) + 1
    for name, count in seen.items():
        if count > 1:
            issues.append(("warning", tr("{} reps are named “{}”.").format(count, name)))
    by_territory: dict[str, list[str]] = {}
    for rep in reps:
        if rep.territory is None:
            issues.append(("warning", tr("Rep “{}” (feature {}) has no territory.").format(rep.name, rep.fid)))
            continue
        by_territory.setdefault(rep.territory, []).append(rep.name)
    for territory, rep_names in by_territory.items():
        if len(rep_names) > 1:
            issues.append(("warning", tr("Territory “{}” has {} reps ({}); distances are measured from “{}”.").format(
                territory, len(rep_names), ", ".join(rep_names), rep_names[0])))
    for name in names:
        if name not in by_territory:
            issues.append(("info", tr("Territory “{}” has no rep.").format(name)))
    placed = [rep for rep in reps if rep.has_home and rep.territory is not None]
    homes = units_at(units, np.array([rep.position for rep in placed]))
    for rep, i in zip(placed, homes):
        if i < 0:
            issues.append(("warning", tr("Rep “{}” lives outside every unit of the layer.").format(rep.name)))
        elif labels[i] < 0 or names[labels[i]] != rep.territory:
            where = names[labels[i]] if labels[i] >= 0 else tr("an unassigned unit")
            text = tr("Rep “{}” lives outside their territory “{}” (in {}).").format(rep.name, rep.territory, where)
            km = home_outside_km(rep.position, names.index(rep.territory), labels, units.positions,
                                 units.is_polygon, lambda j: units.geometries[j]) \
                if rep.territory in names else None
            if km is not None:
                text += " " + tr("Their home is {:.1f} km from it.").format(km)
            issues.append(("warning", text))
    return issues


def stray_rep_issues(stray: list[Rep], with_table: bool) -> list[tuple[str, str]]:
    """A warning for every rep whose territory matches no territory code (nor name, ``with_table``)."""
    return [("warning", tr("Rep “{}” (feature {}) is given the territory “{}”, which matches no territory code{}. "
                           "Check the rep territory field.").format(
        rep.name, rep.fid, rep.territory, tr(" or name") if with_table else "")) for rep in stray]


def account_issues(accounts, book, labels) -> list[tuple[str, str]]:
    """(severity, text) for the accounts with no territory: standing in no unit, holding a unit id no
    unit has, or standing in a unit without a territory (and not overridden)."""
    if accounts is None:
        return []
    issues = []
    unknown = set(accounts.unknown_unit.tolist())
    outside = [i for i in accounts.outside().tolist() if i not in unknown]
    if outside:
        issues.append(("warning", tr("{} accounts stand in no unit: {}.").format(len(outside),
                                                                               accounts.listing(outside))))
    if unknown:
        issues.append(("warning", tr("{} accounts hold a unit id that no unit has: {}.").format(
            len(unknown), accounts.listing(sorted(unknown)))))
    loose = np.flatnonzero((book.territories(labels) < 0) & (accounts.home >= 0))
    if loose.size:
        issues.append(("warning", tr("{} accounts stand in units without a territory: {}.").format(
            loose.size, accounts.listing(loose))))
    return issues
