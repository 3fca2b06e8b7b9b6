"""The performance section of the Territory statistics report: sales against potential
(penetration) and against goal (attainment) per territory, ranked; potential against sales; the
territories below the threshold; the units with the most untapped potential; and the two maps
(over/under target, untapped potential). Building blocks in ``report``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from qgis.PyQt.QtGui import QColor

from ..core.plan.performance import Performance, below_threshold
from ..i18n import tr
from . import report


@dataclass
class Opportunity:
    """A unit with untapped potential, as the report lists it."""

    unit: str
    territory: str
    rep: str | None
    potential: float
    sales: float
    untapped: float


def performance_section(performance: Performance, labels: Sequence[str], colours: Sequence[QColor],
                        threshold: float, opportunities: Sequence[Opportunity], over_under_image=None,
                        opportunity_image=None, over_under_title: str = "") -> str:
    """The section's HTML: key figures, the ranked chart, potential against sales, the territories
    below ``threshold`` (percent of goal, or of the overall penetration without goals), the
    table, the opportunities and the maps given (QImages; None leaves a map out)."""
    esc, fmt = report.esc, report.fmt
    goals = performance.has_goals
    below = below_threshold(performance, threshold)
    body = [f"<h2>{esc(tr('Performance'))}</h2>"]
    total_sales, total_potential = float(performance.sales.sum()), float(performance.potential.sum())
    cards = [
        (fmt(total_sales, 0), tr("sales"), ""),
        (fmt(total_potential, 0), tr("potential"), ""),
        (f"{fmt(performance.overall_penetration)} %", tr("penetration (sales / potential)"), ""),
    ]
    if goals:
        total_goal = float(np.nansum(performance.goal))
        attained = 100.0 * total_sales / total_goal if total_goal > 0 else math.nan
        cards += [(fmt(total_goal, 0), tr("goal"), ""),
                  (f"{fmt(attained)} %", tr("attainment (sales / goal)"), "ok" if attained >= 100 else "warn")]
    cards.append((str(int(below.sum())), tr("below the threshold"), "ok" if not below.any() else "bad"))
    body.append(report.cards(cards))

    if goals:
        body.append(ranked_chart(tr("Attainment, % of goal"), labels, performance.attainment, colours, threshold,
                                 reference=100.0, reference_label=tr("goal")))
    body.append(ranked_chart(tr("Penetration, % of potential"), labels, performance.penetration, colours,
                             None if goals else threshold / 100.0 * performance.overall_penetration,
                             reference=performance.overall_penetration, reference_label=tr("overall")))
    body.append(potential_sales_chart(tr("Potential against sales"), labels, performance.potential,
                                      performance.sales, colours, performance.overall_penetration))

    body.append(f"<h3>{esc(tr('Territories below the threshold'))}</h3>")
    if below.any():
        what = (tr("attainment under {} % of goal") if goals else tr("penetration under {} % of the overall"))
        order = sorted(np.flatnonzero(below), key=lambda k: performance.attainment[k] if goals
                       else performance.penetration[k])
        items = "".join(
            f'<li class="bad">{esc(labels[k])}: '
            + (f"{fmt(performance.attainment[k])} % {esc(tr('of goal'))}" if goals
               else f"{fmt(performance.penetration[k])} % {esc(tr('penetration'))}")
            + "</li>" for k in order)
        body.append(f'<p>{esc(what.format(fmt(threshold, 0)))}</p><ul class="issues">{items}</ul>')
    else:
        body.append(f'<p class="ok">{esc(tr("Every territory is at or above the threshold."))}</p>')

    headers = [tr("Territory"), tr("Sales"), tr("Potential"), tr("Penetration %"), tr("Rank")]
    if goals:
        headers += [tr("Goal"), tr("Attainment %"), tr("Rank")]
    rows = []
    ranked = np.argsort(-np.nan_to_num(performance.attainment if goals else performance.penetration, nan=-1.0),
                        kind="stable")
    for k in ranked:
        row = [report.swatch(colours[k]) + esc(labels[k]), fmt(performance.sales[k], 0),
               fmt(performance.potential[k], 0), fmt(performance.penetration[k]),
               _rank(performance.penetration_rank[k])]
        if goals:
            row += [fmt(performance.goal[k], 0), fmt(performance.attainment[k]), _rank(performance.attainment_rank[k])]
        rows.append(row)
    body.append(report.table(headers, rows, [False] + [True] * (len(headers) - 1), [bool(below[k]) for k in ranked]))

    if over_under_image is not None:
        body.append(f"<h3>{esc(over_under_title or tr('Over and under target'))}</h3>")
        body.append(report.image_tag(over_under_image, over_under_title or tr("Over and under target")))

    body.append(f"<h3>{esc(tr('Where the untapped potential lies'))}</h3>")
    explained = tr("Untapped potential: a unit’s potential minus the sales its territory’s penetration predicts "
                   "for it (potential × (1 − penetration)). The units with the most:")
    body.append(f'<p class="meta">{esc(explained)}</p>')
    if opportunities:
        body.append(report.table(
            [tr("Unit"), tr("Territory"), tr("Rep"), tr("Potential"), tr("Sales"), tr("Untapped")],
            [[esc(o.unit), esc(o.territory), esc(o.rep or "–"), fmt(o.potential, 0), fmt(o.sales, 0),
              fmt(o.untapped, 0)] for o in opportunities],
            [False, False, False, True, True, True]))
    else:
        body.append(f'<p>{esc(tr("No unit has untapped potential."))}</p>')
    if opportunity_image is not None:
        body.append(report.image_tag(opportunity_image, tr("Map of the untapped potential")))
    return "\n".join(body)


def _rank(rank) -> str:
    return str(int(rank)) if int(rank) > 0 else "–"


def ranked_chart(title: str, labels: Sequence[str], values, colours: Sequence[QColor], threshold: float | None,
                 reference: float | None = None, reference_label: str = "") -> str:
    """An inline SVG of horizontal bars, best first, in the territories' colours; the threshold
    as a red dashed line (bars under it outlined red), ``reference`` (100 % of goal, the overall
    penetration) as a dark line."""
    esc, fmt = report.esc, report.fmt
    values = np.asarray(values, dtype=float)
    order = [int(k) for k in np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")]
    n = len(order)
    row = 20 if n <= 40 else max(8, 800 // max(n, 1))
    left, top, right, bottom = 170, 30, 60, 30
    plot_w = 560
    width = left + plot_w + right
    height = top + n * row + bottom
    finite = values[np.isfinite(values)]
    high = report.nice_ceiling(max([1.0, *finite.tolist(), threshold or 0.0, reference or 0.0]))

    def x(v: float) -> float:
        return left + plot_w * max(float(v), 0.0) / high

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">',
             f'<text x="{left}" y="18" font-size="14" font-weight="600">{esc(title)}</text>']
    for step in range(6):
        v = high * step / 5
        parts.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{top}" y2="{top + n * row}" stroke="#eee"/>'
                     f'<text x="{x(v):.1f}" y="{top + n * row + 14}" font-size="11" text-anchor="middle">'
                     f"{esc(fmt(v, 0))}</text>")
    for position, k in enumerate(order):
        y = top + position * row
        value = float(values[k])
        shown = math.isfinite(value)
        outside = shown and threshold is not None and value < threshold
        stroke = ' stroke="#b42318" stroke-width="2"' if outside else ' stroke="#444" stroke-width="0.5"'
        parts.append(f'<text x="{left - 6}" y="{y + row * 0.7:.1f}" font-size="11" text-anchor="end">'
                     f"{esc(report.short_text(labels[k], 26))}</text>")
        if shown:
            parts.append(f'<rect x="{left}" y="{y + row * 0.15:.1f}" width="{x(value) - left:.1f}" '
                         f'height="{row * 0.7:.1f}" fill="{colours[k].name()}"{stroke}>'
                         f"<title>{esc(labels[k])}: {esc(fmt(value))} %</title></rect>"
                         f'<text x="{x(value) + 4:.1f}" y="{y + row * 0.7:.1f}" font-size="10">'
                         f"{esc(fmt(value))}</text>")
        else:
            parts.append(f'<text x="{left + 4}" y="{y + row * 0.7:.1f}" font-size="10" fill="#888">–</text>')
    if reference is not None and math.isfinite(reference):
        parts.append(f'<line x1="{x(reference):.1f}" x2="{x(reference):.1f}" y1="{top - 4}" y2="{top + n * row}" '
                     f'stroke="#1f3a5f" stroke-width="2"/><text x="{x(reference) + 3:.1f}" y="{top - 6}" '
                     f'font-size="10">{esc(reference_label)}</text>')
    if threshold is not None and math.isfinite(threshold):
        parts.append(f'<line x1="{x(threshold):.1f}" x2="{x(threshold):.1f}" y1="{top - 4}" y2="{top + n * row}" '
                     f'stroke="#b42318" stroke-width="1.5" stroke-dasharray="5,3"/>'
                     f'<text x="{x(threshold) - 3:.1f}" y="{top - 6}" font-size="10" fill="#b42318" '
                     f'text-anchor="end">{esc(tr("threshold"))}</text>')
    parts.append("</svg>")
    return "<div>" + "\n".join(parts) + "</div>"


def potential_sales_chart(title: str, labels: Sequence[str], potential, sales, colours: Sequence[QColor],
                          overall_penetration: float) -> str:
    """An inline SVG scatter: each territory's potential (across) against its sales (up), a dot in
    its colour; the line is the overall penetration, so territories under it sell less of their
    potential than the average."""
    esc, fmt = report.esc, report.fmt
    potential = np.asarray(potential, dtype=float)
    sales = np.asarray(sales, dtype=float)
    left, top, right, bottom = 80, 30, 30, 50
    size = 420
    width, height = left + size + right, top + size + bottom
    high_x = report.nice_ceiling(float(potential.max()) if potential.size else 1.0)
    high_y = report.nice_ceiling(float(sales.max()) if sales.size else 1.0)

    def px(v: float) -> float:
        return left + size * float(v) / high_x

    def py(v: float) -> float:
        return top + size - size * float(v) / high_y

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">',
             f'<text x="{left}" y="18" font-size="14" font-weight="600">{esc(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#ccc"/>']
    for step in range(1, 5):
        vx, vy = high_x * step / 4, high_y * step / 4
        parts.append(f'<text x="{px(vx):.1f}" y="{top + size + 14}" font-size="10" text-anchor="middle">'
                     f'{esc(fmt(vx, 0))}</text><text x="{left - 4}" y="{py(vy) + 3:.1f}" font-size="10" '
                     f'text-anchor="end">{esc(fmt(vy, 0))}</text>')
    parts.append(f'<text x="{left + size / 2}" y="{height - 12}" font-size="11" text-anchor="middle">'
                 f'{esc(tr("potential"))}</text><text x="16" y="{top + size / 2}" font-size="11" '
                 f'transform="rotate(-90 16 {top + size / 2})" text-anchor="middle">{esc(tr("sales"))}</text>')
    if math.isfinite(overall_penetration) and overall_penetration > 0:
        rate = overall_penetration / 100.0
        end_x = min(high_x, high_y / rate)
        parts.append(f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(end_x):.1f}" y2="{py(rate * end_x):.1f}" '
                     f'stroke="#1f3a5f" stroke-width="1.5" stroke-dasharray="6,3"/>'
                     f'<text x="{px(0.35 * end_x):.1f}" y="{py(0.35 * rate * end_x) - 8:.1f}" font-size="10" '
                     f'text-anchor="end" fill="#1f3a5f">'
                     f'{esc(tr("overall penetration {} %").format(fmt(overall_penetration)))}</text>')
    for k in range(len(labels)):
        parts.append(f'<circle cx="{px(potential[k]):.1f}" cy="{py(sales[k]):.1f}" r="6" fill="{colours[k].name()}" '
                     f'stroke="#333" stroke-width="0.8"><title>{esc(labels[k])}: {esc(tr("potential"))} '
                     f'{esc(fmt(potential[k], 0))}, {esc(tr("sales"))} {esc(fmt(sales[k], 0))}</title></circle>')
        if len(labels) <= 25:
            parts.append(f'<text x="{px(potential[k]) + 8:.1f}" y="{py(sales[k]) + 4:.1f}" font-size="10">'
                         f'{esc(report.short_text(labels[k], 18))}</text>')
    parts.append("</svg>")
    return "<div>" + "\n".join(parts) + "</div>"
