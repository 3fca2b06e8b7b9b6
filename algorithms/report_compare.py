"""The HTML report of Compare alignments (building blocks in ``report``)."""

from __future__ import annotations

import numpy as np
from qgis.PyQt.QtGui import QColor

from ..i18n import tr
from ..layers.values import natural_key
from . import report

#: how many changed accounts the report lists (the rest are counted)
LISTED_ACCOUNTS = 500


def compare_report(rows, measures, summary, flows, info, image, table, moves, accounts=None) -> str:
    """The realignment report: key figures, the map of the changes, a gain/loss chart per
    measure, the summary table and, per territory, what it gains from and loses to whom; with
    ``accounts`` (see :func:`account_moves`), the accounts that change territory."""
    esc, fmt = report.esc, report.fmt
    unassigned = tr("Unassigned")
    labels = [report.display_name(table[r]) if name is not None else unassigned for r, name in enumerate(rows)]
    table_colours = report.colours_of(table)
    colours = [table_colours[r] if name is not None else QColor(200, 200, 200) for r, name in enumerate(rows)]
    blocks = ["units"] + [m for m in measures if m != "units"]
    after_text = (
        f"{esc(info['after'])} ({esc(tr('layer'))} {esc(info['after_layer'])}, "
        f"{esc(tr('joined on'))} {esc(info['id'])})"
        if info["after_layer"]
        else esc(info["after"])
    )
    body = [
        f'<p class="meta">{esc(tr("Layer"))}: <b>{esc(info["layer"])}</b> · '
        f"{esc(tr('before'))}: <b>{esc(info['before'])}</b> · {esc(tr('after'))}: <b>{after_text}</b>"
        f" · {esc(tr('measures'))}: <b>{esc(', '.join(measures))}</b></p>"
    ]
    body.append(
        report.cards(
            [
                (f"{info['changed_units']} / {info['units']}", tr("units change territory"), ""),
                (
                    f"{fmt(info['changed_workload'], 2)} %",
                    tr("of {} changes territory").format(measures[0]),
                    "",
                ),
                (str(info["territories_changed"]), tr("territories gain or lose units"), ""),
                *([(str(info["changed_accounts"]), tr("accounts change territory"), "")]
                  if accounts is not None else []),
            ]
        )
    )
    body.append(f"<h2>{esc(tr('Map of the changes'))}</h2>")
    legend = tr("Units in their new territory colour; units that change territory are outlined in red.")
    body.append(f'<p class="meta">{esc(legend)}</p>')
    body.append(report.image_tag(image, tr("Map of the units that change territory")))

    body.append(f"<h2>{esc(tr('Gains and losses'))}</h2>")
    for m, block in enumerate(blocks):
        body.append(
            "<div>" + report.gain_loss_chart(block, labels, summary[:, m, 2], summary[:, m, 3], colours) + "</div>"
        )

    body.append(f"<h2>{esc(tr('Summary'))}</h2>")
    headers = [tr("Territory")]
    for block in blocks:
        headers += [
            tr("{} before").format(block),
            tr("{} after").format(block),
            tr("{} gained").format(block),
            tr("{} lost").format(block),
            tr("{} net").format(block),
        ]
    table_rows = []
    for r in range(len(rows)):
        row = [report.swatch(colours[r]) + esc(labels[r])]
        for m in range(len(blocks)):
            before, after, gained, lost, net = summary[r, m]
            row += [fmt(before), fmt(after), fmt(gained), fmt(lost), f"{'+' if net > 0 else ''}{fmt(net)}"]
        table_rows.append(row)
    body.append(report.table(headers, table_rows, [False] + [True] * (len(headers) - 1)))

    body.append(f"<h2>{esc(tr('Per territory'))}</h2>")
    for r in range(len(rows)):
        gains = [s for s in range(len(rows)) if s != r and flows[s, r, 0] > 0]
        losses = [s for s in range(len(rows)) if s != r and flows[r, s, 0] > 0]
        body.append(f"<h3>{report.swatch(colours[r])}{esc(labels[r])}</h3>")
        if not gains and not losses:
            body.append(f"<p>{esc(tr('No change.'))}</p>")
            continue
        items = []
        for s in gains:
            items.append(esc(tr("gains from {}: {}").format(labels[s], _amounts(flows[s, r], blocks))))
        for s in losses:
            items.append(esc(tr("loses to {}: {}").format(labels[s], _amounts(flows[r, s], blocks))))
        net = ", ".join(
            f"{'+' if summary[r, m, 4] > 0 else ''}{fmt(summary[r, m, 4])} {block}"
            for m, block in enumerate(blocks)
        )
        items.append(f"<b>{esc(tr('net'))}</b>: {esc(net)}")
        body.append("<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>")
        for title, listed in ((tr("Units gained"), moves[r][0]), (tr("Units lost"), moves[r][1])):
            if not listed:
                continue
            cells = [[esc(name), esc(labels[other])] + [fmt(v) for v in values] for name, other, values in listed]
            headers = [title, tr("from") if listed is moves[r][0] else tr("to")]
            headers += [m for m in measures if m != "units"]
            body.append(report.table(headers, cells, [False, False] + [True] * (len(headers) - 2)))
    if accounts is not None:
        account_measures, accounts = accounts
        body.append(f"<h2>{esc(tr('Accounts that change territory'))}</h2>")
        if not accounts:
            body.append(f"<p>{esc(tr('No account changes territory.'))}</p>")
        else:
            shown = accounts[:LISTED_ACCOUNTS]
            account_labels = labels + [unassigned]
            cells = [[esc(name), esc(account_labels[before]), esc(account_labels[after])] + [fmt(v) for v in values]
                     for name, before, after, values in shown]
            headers = [tr("Account"), tr("from"), tr("to")] + list(account_measures)
            body.append(report.table(headers, cells, [False, False, False] + [True] * (len(headers) - 3)))
            if len(accounts) > len(shown):
                body.append(f"<p>{esc(tr('… and {} more.').format(len(accounts) - len(shown)))}</p>")
    return report.document(tr("Realignment report"), "\n".join(body))


def account_moves(accounts, changes: dict) -> tuple[list[str], list[tuple]]:
    """The accounts' measures, and the accounts that change territory as (name, row before, row
    after, workloads), by name; a row past the territories' is "no territory"."""
    out = []
    measures = accounts.workloads.shape[1]
    for i in np.flatnonzero(changes["changed"]).tolist():
        values = [float(v) for v in accounts.workloads[i]] if measures else []
        out.append((accounts.label(i), int(changes["rows_before"][i]), int(changes["rows_after"][i]), values))
    out.sort(key=lambda item: natural_key(item[0]))
    return list(accounts.measure_names), out


def _amounts(flow, blocks) -> str:
    return ", ".join(
        f"{report.fmt(flow[m])} {'unit' if block == 'units' and flow[m] == 1 else block}"
        for m, block in enumerate(blocks)
    )


def unit_moves(before: np.ndarray, after: np.ndarray, changed: np.ndarray, weights: np.ndarray,
               unit_names: list[str] | None, units, rows: int) -> list[tuple[list, list]]:
    """Per territory row: (units gained, units lost), each a list of (unit name, the other
    territory's row, workloads), by name (feature id when no unit name field is given)."""
    out: list[tuple[list, list]] = [([], []) for _ in range(rows)]
    for i in np.flatnonzero(changed):
        name = unit_names[i] if unit_names is not None else tr("feature {}").format(int(units.fids[i]))
        values = [float(v) for v in weights[i]]
        out[int(after[i])][0].append((name, int(before[i]), values))
        out[int(before[i])][1].append((name, int(after[i]), values))
    for gained, lost in out:
        gained.sort(key=lambda item: natural_key(item[0]))
        lost.sort(key=lambda item: natural_key(item[0]))
    return out
