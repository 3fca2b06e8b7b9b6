"""The HTML report of Territory statistics (building blocks in ``report``)."""

from __future__ import annotations

from ..core.plan.index import INDEX_NAME
from ..i18n import tr
from . import report
from .statistics_figures import TerritoryFigures


def statistics_report(figures: TerritoryFigures, summary: dict, image, with_reps: bool, sections: str = "",
                      with_performance: bool = False) -> str:
    """The Territory statistics report: key figures, the map, a balance chart per measure, the
    table of territories, ``sections`` (HTML: the over/under map, the performance section when
    sales were given), the problems found and how to read it all."""
    esc, fmt = report.esc, report.fmt
    names = figures.names
    colours = report.colours_of(figures.rows)
    labels = [row.label for row in figures.rows]
    tolerance = summary["tolerance"]
    body = [
        f'<p class="meta">{esc(tr("Layer"))}: <b>{esc(summary["layer"])}</b> · '
        f"{esc(tr('territory field'))}: <b>{esc(summary['field'])}</b> · "
        f"{esc(tr('measures'))}: <b>{esc(', '.join(figures.measures))}</b> · "
        f"{esc(tr('tolerance'))}: <b>±{fmt(100 * tolerance)} %</b> · "
        f"{esc(tr('units'))}: <b>{summary['units']}</b></p>"
    ]
    p = len(names)
    key_figures = [
        (str(p), tr("territories"), ""),
        (f"{summary['within']} / {p}", tr("within tolerance"), "ok" if summary["within"] == p else "bad"),
        (
            f"{fmt(summary['max_deviation'])} %",
            tr("worst deviation"),
            "ok" if report.within_tolerance(summary["max_deviation"] / 100, tolerance) else "bad",
        ),
        (str(summary["unassigned"]), tr("unassigned units"), "ok" if not summary["unassigned"] else "bad"),
        (str(len(figures.issues)), tr("problems listed"), "ok" if not figures.issues else "warn"),
    ]
    for measure, cv in summary["cv"].items():
        key_figures.append(
            (f"{fmt(cv)} %" if cv is not None else "–", tr("coefficient of variation, {}").format(measure), "")
        )
    body.append(report.cards(key_figures))

    body.append(f"<h2>{esc(tr('Map'))}</h2>")
    body.append(report.image_tag(image, tr("Map of the territories")))

    body.append(f"<h2>{esc(tr('Balance'))}</h2>")
    for a, measure in enumerate(figures.measures):
        body.append(
            "<div>"
            + report.bar_chart(measure, labels, figures.sums[:, a], figures.targets[:, a], tolerance, colours)
            + "</div>"
        )

    body.append(f"<h2>{esc(tr('Territories'))}</h2>")
    headers = [tr("Territory"), tr("Units")]
    for measure in figures.measures:
        if measure != "units":
            headers.append(measure)
        headers += [tr("{} target").format(measure), tr("{} deviation %").format(measure)]
    headers += [
        tr("Area km²"),
        tr("Perimeter km"),
        tr("Polsby-Popper"),
        tr("Parts"),
        tr("Contiguous"),
        tr("Enclave of"),
    ]
    if with_reps:
        headers += [tr("Rep"), tr("Rep mean km"), tr("Rep max km")]
        if figures.rep_travel is not None:
            headers += [tr("Rep mean min"), tr("Rep weighted min"), tr("Rep max min")]
    if figures.accounts is not None:
        headers += [tr("Accounts"), tr("Overrides in"), tr("Overrides out")]
    rows, flagged = [], []
    for k in range(len(names)):
        row = [report.swatch(colours[k]) + esc(report.display_name(figures.rows[k])),
               str(int(figures.unit_count[k]))]
        for a, measure in enumerate(figures.measures):
            if measure != "units":
                row.append(fmt(figures.sums[k, a]))
            row.append(fmt(figures.targets[k, a]))
            deviation = 100 * float(figures.deviation[k, a])
            css = "ok" if report.within_tolerance(figures.deviation[k, a], tolerance) else "bad"
            row.append(f'<span class="{css}">{deviation:+.1f}</span>')
        row += [
            fmt(figures.shapes.area_km2[k]),
            fmt(figures.shapes.perimeter_km[k]),
            fmt(figures.shapes.polsby_popper[k], 3),
            str(int(figures.parts[k])),
            tr("yes") if figures.contiguous[k] else f'<span class="bad">{esc(tr("no"))}</span>',
            esc(figures.enclave_of[k]),
        ]
        if with_reps:
            row += [esc(figures.rep[k]), fmt(figures.rep_mean_km[k]), fmt(figures.rep_max_km[k])]
            if figures.rep_travel is not None:
                row += [fmt(figures.rep_travel[key][k]) for key in ("mean", "weighted", "max")]
        if figures.accounts is not None:
            row += [str(int(figures.accounts[key][k])) for key in ("accounts", "overrides_in", "overrides_out")]
        rows.append(row)
        flagged.append(
            not figures.within[k]
            or not figures.contiguous[k]
            or figures.enclave_of[k] is not None
            or figures.unit_count[k] == 0
        )
    numeric = [False] + [True] * (len(headers) - 1)
    numeric[headers.index(tr("Contiguous"))] = False
    numeric[headers.index(tr("Enclave of"))] = False
    if with_reps:
        numeric[headers.index(tr("Rep"))] = False
    body.append(report.table(headers, rows, numeric, flagged))

    if sections:
        body.append(sections)
    body.append(f"<h2>{esc(tr('Validation'))}</h2>")
    if figures.issues:
        css = {"error": "bad", "warning": "warn", "info": ""}
        body.append(
            '<ul class="issues">'
            + "".join(f'<li class="{css.get(severity, "")}">{esc(text)}</li>' for severity, text in figures.issues)
            + "</ul>"
        )
    else:
        body.append(f'<p class="ok">{esc(tr("No problems found."))}</p>')
    body.append(f"<h2>{esc(tr('How to read this report'))}</h2>")
    body.append(
        "<ul>"
        + "".join(
            f"<li>{esc(text)}</li>"
            for text in (
                tr(
                    "Target: each territory's equal share of the layer's total, unassigned units included. "
                    "Deviation: (sum − target) / target."
                ),
                tr(
                    "Coefficient of variation: the standard deviation of the territory sums divided by their mean; "
                    "0 % is perfect balance."
                ),
                tr("Polsby-Popper: 4π × area / perimeter²; 1 for a circle, near 0 for long thin shapes."),
                tr(
                    "Parts: pieces of the territory that do not touch each other; a contiguous territory has 1."
                ),
                tr("Enclave: a territory entirely surrounded by one other territory."),
                tr("Rep distances: straight lines from the rep to each unit's centre, mean and maximum."),
                tr(
                    "Accounts: those aligned to the territory (by their unit, or by an override). Overrides in: "
                    "accounts outside the territory's units that it keeps; overrides out: accounts in its units "
                    "that another territory serves. An overridden account's workload counts for its override "
                    "territory."
                ),
            )
        )
        + "".join(f"<li>{esc(text)}</li>" for text in _reading_analytics(figures.measures, with_performance))
        + "</ul>"
    )
    return report.document(tr("Territory report"), "\n".join(body))


def _reading_analytics(measures, with_performance: bool) -> list[str]:
    """How to read the index and the performance figures, when the report has them."""
    lines = []
    if INDEX_NAME in measures:
        lines.append(tr("Index: each index field as its share of the layer's total, weighted, times 1,000 × the "
                        "number of territories, so the average territory scores 1,000."))
    if with_performance:
        lines.append(tr("Penetration: sales / potential. Attainment: sales / goal. Rank 1 is the highest."))
    return lines
