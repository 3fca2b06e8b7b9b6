"""The HTML of the feedback loop: a rep's feedback page, the index of the pages, and the replies.

A feedback page is one self-contained file a rep opens from disk in any browser: the style, the
script and the map (inline SVG) are inside it, and its Content-Security-Policy forbids every
network request, so nothing leaves the rep's machine except the CSV the rep saves. Every text from
the data is escaped here, and the script puts the rep's own text in the page as text only.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..i18n import tr
from .report import document, esc, fmt, table, write_document

FEEDBACK_RESOURCES = Path(__file__).resolve().parent.parent / "resources" / "feedback"


@dataclass
class PageItem:
    """What a rep may ask for on a page: its id and name, whether it is the rep's (``own``), the
    territory it is in (code, label, colour) and its workload on every measure of the page."""

    id: str
    name: str
    own: bool
    territory: str
    territory_label: str
    colour: str
    workloads: list[float]


@dataclass
class PageUnit(PageItem):
    """A unit on a rep's page: ``own`` (in the rep's territory) or bordering it."""

    shape: str | None = None
    point: tuple[float, float] | None = None


@dataclass
class PageAccount(PageItem):
    """An account on a rep's page: ``own`` (aligned to the rep's territory: by its unit, or kept by
    ``override``) or standing in a unit the page shows; ``unit`` is its unit's id (the page's ids; ""
    in none), ``point`` where the map draws it (None: not on the map)."""

    unit: str = ""
    override: bool = False
    point: tuple[float, float] | None = None


@dataclass
class PageMeasure:
    name: str
    sum: float
    target: float
    tolerance: float


@dataclass
class FeedbackPage:
    territory: str
    file_code: str
    name: str
    rep: str | None
    colour: str
    plan_id: str
    measures: list[PageMeasure]
    units: list[PageUnit]
    width: float
    height: float
    due_date: str = ""
    accounts: list[PageAccount] = field(default_factory=list)


def file_code(code: str, taken: set[str]) -> str:
    """A territory code as a safe piece of a file name (letters, digits, ``. _ -``), unique in ``taken``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", code).strip("._") or "territory"
    candidate, number = safe[:60], 2
    while candidate.lower() in taken:
        candidate = f"{safe[:56]}_{number}"
        number += 1
    taken.add(candidate.lower())
    return candidate


def script_json(value) -> str:
    """JSON that can sit inside a <script> element: no ``<``, ``>``, ``&`` or line separators as such."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _words() -> dict:
    return {
        "yours": tr("in your territory"),
        "bordering": tr("bordering, in {}"),
        # what a unit is called when the units have no name field (the id already says it all)
        "unnamed_unit": tr("Unit {}"),
        "account_yours": tr("an account of your territory"),
        "account_other": tr("an account served by {}"),
        "select_first": tr("Select a unit on the map or in a list first."),
        "reason_first": tr("Type the reason for the request first."),
        "name_first": tr("Type your name first (Submitted by)."),
        "added": tr("Request added. Save the feedback when you are done."),
        "saved": tr("Saved as {}: send this file to your manager."),
        "add": tr("add"),
        "drop": tr("drop"),
        "remove": tr("Remove"),
    }


def _legend() -> str:
    return tr("Solid: your units. Pale: bordering units of other territories. Click a unit to select it.")


def _percent(value: float) -> str:
    return f"{100.0 * value:+.1f} %"


def page_html(page: FeedbackPage) -> str:
    """The whole page, ready to write."""
    script = (FEEDBACK_RESOURCES / "page.js").read_text(encoding="utf-8")
    style = (FEEDBACK_RESOURCES / "page.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    # nothing may be fetched: only this page's own style and its one script (by hash) are allowed
    policy = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
              "img-src data:; form-action 'none'; base-uri 'none'")
    data = {
        "territory": page.territory, "file_code": page.file_code, "plan_id": page.plan_id,
        "measures": [{"name": m.name, "sum": m.sum, "target": m.target, "tolerance": m.tolerance}
                     for m in page.measures],
        "units": [{"id": u.id, "name": u.name, "own": u.own, "territory": u.territory,
                   "territory_label": u.territory_label, "workloads": u.workloads} for u in page.units],
        "accounts": [{"id": a.id, "name": a.name, "own": a.own, "territory": a.territory,
                      "territory_label": a.territory_label, "workloads": a.workloads, "unit": a.unit,
                      "override": a.override} for a in page.accounts],
        "words": _words(),
    }
    title = tr("Feedback on {}").format(page.name)
    own = [u for u in page.units if u.own]
    bordering = [u for u in page.units if not u.own]
    meta = [tr("Territory code {}").format(page.territory)]
    if page.rep:
        meta.append(tr("Rep: {}").format(page.rep))
    if page.due_date:
        meta.append(tr("Please answer by {}").format(page.due_date))
    meta.append(tr("Alignment {}").format(page.plan_id))
    made = datetime.date.today().isoformat()
    return "".join([
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(policy)}">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{esc(title)}</title>\n<style>\n{style}</style>\n</head>\n<body>\n",
        f'<h1><span class="swatch" style="background:{esc(page.colour)}"></span>{esc(title)}</h1>\n',
        f'<p class="meta">{" · ".join(esc(m) for m in meta)} · {esc(tr("made"))} {made}</p>\n',
        '<div class="layout">\n<div>\n', _map_svg(page),
        f'<p class="legend">{esc(_legend())}{esc(_account_legend()) if page.accounts else ""}</p>\n',
        "</div>\n<div>\n", _request_panel(), _workload_table(page), "</div>\n</div>\n",
        f"<h2>{esc(tr('Your units'))} ({len(own)})</h2>\n", _unit_table(own, page, False),
        f"<h2>{esc(tr('Bordering units'))} ({len(bordering)})</h2>\n", _unit_table(bordering, page, True),
        _account_tables(page) if page.accounts else "",
        f'<script type="application/json" id="page-data">{script_json(data)}</script>\n',
        f"<script>{script}</script>\n</body>\n</html>\n",
    ])


def _map_svg(page: FeedbackPage) -> str:
    out = [f'<svg id="map" viewBox="0 0 {page.width:g} {page.height:g}" xmlns="http://www.w3.org/2000/svg" '
           f'role="img" aria-label="{esc(tr("Map of the territory and its bordering units"))}">\n']
    # bordering units first, so the territory's own outlines are drawn on top
    for unit in sorted(page.units, key=lambda u: u.own):
        kind = "own" if unit.own else "border"
        tip = f"<title>{esc(unit.name)} ({esc(unit.territory_label)})</title>"
        if unit.shape is not None:
            out.append(f'<path class="{kind}" data-unit="{esc(unit.id)}" fill="{esc(unit.colour)}" '
                       f'd="{unit.shape}">{tip}</path>\n')
        elif unit.point is not None:
            out.append(f'<circle class="{kind}" data-unit="{esc(unit.id)}" fill="{esc(unit.colour)}" '
                       f'cx="{unit.point[0]:g}" cy="{unit.point[1]:g}" r="5">{tip}</circle>\n')
    # accounts on top of every unit, each in its territory's colour (kept ones ringed)
    for account in page.accounts:
        if account.point is None:
            continue
        kind = "account " + ("own" if account.own else "border") + (" kept" if account.override else "")
        tip = f"<title>{esc(account.name)} ({esc(account.territory_label)})</title>"
        out.append(f'<circle class="{kind}" data-account="{esc(account.id)}" fill="{esc(account.colour)}" '
                   f'cx="{account.point[0]:g}" cy="{account.point[1]:g}" r="7">{tip}</circle>\n')
    out.append("</svg>\n")
    return "".join(out)


def _request_panel() -> str:
    return (
        '<div class="panel">\n'
        f'<h2>{esc(tr("Your requests"))}</h2>\n'
        f'<div>{esc(tr("Selected:"))} <span id="selected">{esc(tr("nothing yet"))}</span></div>\n'
        f'<label for="request-reason">{esc(tr("Reason"))}</label>\n'
        '<textarea id="request-reason" rows="3" maxlength="1000"></textarea>\n'
        f'<button type="button" id="request-drop" disabled>{esc(tr("Request to drop"))}</button>'
        f'<button type="button" id="request-add" disabled>{esc(tr("Request to add"))}</button>\n'
        '<div id="message" class="message" role="status"></div>\n'
        f'<table id="requests"><thead><tr><th>{esc(tr("Unit"))}</th><th>{esc(tr("Request"))}</th>'
        f'<th>{esc(tr("Reason"))}</th><th></th></tr></thead><tbody></tbody></table>\n'
        f'<p id="no-requests" class="meta">{esc(tr("No request yet."))}</p>\n'
        f'<label for="submitted-by">{esc(tr("Submitted by"))}</label>\n'
        '<input type="text" id="submitted-by" maxlength="200" autocomplete="name">\n'
        f'<button type="button" id="save-feedback" disabled>{esc(tr("Save feedback"))}</button>\n'
        '</div>\n')


def _workload_table(page: FeedbackPage) -> str:
    rows = []
    for a, measure in enumerate(page.measures):
        deviation = (measure.sum - measure.target) / measure.target if measure.target > 0 else 0.0
        flag = "ok" if abs(deviation) <= measure.tolerance + 1e-9 else "bad"
        rows.append(
            f'<tr id="measure-{a}"><td>{esc(measure.name)}</td><td class="num">{fmt(measure.sum)}</td>'
            f'<td class="num">{fmt(measure.target)} ± {fmt(100 * measure.tolerance)} %</td>'
            f'<td class="num {flag}">{_percent(deviation)}</td>'
            f'<td class="num after">{fmt(measure.sum)}</td>'
            f'<td class="num after-dev {flag}">{_percent(deviation)}</td></tr>')
    return (f'<h2>{esc(tr("Workload against target"))}</h2>\n<div class="scroll"><table id="workload"><thead><tr>'
            f'<th>{esc(tr("Measure"))}</th><th class="num">{esc(tr("Now"))}</th>'
            f'<th class="num">{esc(tr("Target"))}</th>'
            f'<th class="num">{esc(tr("Deviation"))}</th><th class="num">{esc(tr("With your requests"))}</th>'
            f'<th class="num">{esc(tr("Deviation"))}</th></tr></thead>\n<tbody>{"".join(rows)}</tbody></table></div>\n')


def _unit_table(units: list[PageUnit], page: FeedbackPage, with_territory: bool) -> str:
    head = [esc(tr("Name")), esc(tr("Id"))] + ([esc(tr("Territory"))] if with_territory else [])
    head += [esc(m.name) for m in page.measures]
    rows = []
    for unit in units:
        cells = [esc(unit.name), esc(unit.id)] + ([esc(unit.territory_label)] if with_territory else [])
        cells += [fmt(value) for value in unit.workloads]
        body = "".join(f"<td>{c}</td>" if k < len(head) - len(page.measures) else f'<td class="num">{c}</td>'
                       for k, c in enumerate(cells))
        rows.append(f'<tr data-row-unit="{esc(unit.id)}" tabindex="0">{body}</tr>')
    header = "".join(f"<th>{h}</th>" for h in head)
    return (f'<div class="scroll"><table><thead><tr>{header}</tr></thead>\n'
            f"<tbody>{''.join(rows)}</tbody></table></div>\n")


def _account_legend() -> str:
    return " " + tr("Dots: accounts, in the colour of the territory that serves them; ringed: kept by a territory "
                    "other than their unit's.")


def _account_tables(page: FeedbackPage) -> str:
    """The page's accounts by name: the rep's own, then the others standing in the units it shows."""
    units = {unit.id: unit.name for unit in page.units}
    own = [a for a in page.accounts if a.own]
    others = [a for a in page.accounts if not a.own]
    parts = []
    for title, accounts, with_territory in ((tr("Your accounts"), own, False),
                                            (tr("Accounts of other territories in these units"), others, True)):
        head = [tr("Name"), tr("Id"), tr("Unit")] + ([tr("Served by")] if with_territory else [tr("Kept")])
        head += [m.name for m in page.measures]
        rows = []
        for account in accounts:
            cells = [esc(account.name), esc(account.id), esc(units.get(account.unit, account.unit)),
                     esc(account.territory_label) if with_territory else (esc(tr("yes")) if account.override else "")]
            cells = [f"<td>{c}</td>" for c in cells] + [f'<td class="num">{fmt(v)}</td>' for v in account.workloads]
            rows.append(f'<tr data-row-account="{esc(account.id)}" tabindex="0">{"".join(cells)}</tr>')
        header = "".join(f"<th>{esc(h)}</th>" for h in head)
        parts.append(f"<h2>{esc(title)} ({len(accounts)})</h2>\n<div class=\"scroll\"><table><thead><tr>{header}</tr>"
                     f"</thead>\n<tbody>{''.join(rows)}</tbody></table></div>\n")
    return "".join(parts)


def index_html(title: str, pages: list[tuple[str, str, str | None, str]], plan_id: str, due_date: str) -> str:
    """The list of pages: (territory code, name, rep, file name) each."""
    rows = "".join(
        f'<tr><td>{esc(code)}</td><td>{esc(name)}</td><td>{esc(rep or "")}</td>'
        f'<td><a href="{html.escape(file, quote=True)}">{esc(file)}</a></td></tr>'
        for code, name, rep, file in pages)
    due = f"<p>{esc(tr('Answers are due by {}.').format(due_date))}</p>" if due_date else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
        f"<title>{esc(title)}</title>\n<style>body{{font-family:sans-serif;margin:24px}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}</style>\n"
        f"</head>\n<body>\n<h1>{esc(title)}</h1>\n"
        f"<p>{esc(tr('One page per territory; send each rep their page. Alignment {}.').format(plan_id))}</p>\n"
        f"{due}<table><thead><tr><th>{esc(tr('Code'))}</th><th>{esc(tr('Territory'))}</th><th>{esc(tr('Rep'))}</th>"
        f"<th>{esc(tr('Page'))}</th></tr></thead>\n<tbody>{rows}</tbody></table>\n</body>\n</html>\n")


def reply_html(code: str, name: str, verdicts, why: list[str], codes: list[str], measures: list[str]) -> str:
    """The answer to one rep: each request, its status and why, and the rep's territory before → after."""
    rows, flagged = [], []
    for verdict, text in zip(verdicts, why):
        request, impact = verdict.request, verdict.impact
        change = []
        if impact is not None:
            side = 1 if impact.to_territory >= 0 and codes[impact.to_territory] == code else 0
            for a, measure in enumerate(measures):
                before, after = impact.before[side, a], impact.after[side, a]
                if before == before and after == after:  # not NaN
                    change.append(f"{esc(measure)}: {_percent(before)} → {_percent(after)}")
        rows.append([esc(request.unit_name or request.unit), esc(request.unit),
                     esc(tr("add") if request.action == "add" else tr("drop") if request.action == "drop"
                         else request.action),
                     f'<span class="reason">{esc(request.reason)}</span>', f"<b>{esc(verdict.status)}</b>", esc(text),
                     "<br>".join(change)])
        flagged.append(verdict.status != "accepted")
    intro = tr("Your manager reviewed the {} request(s) you sent for {}.").format(len(rows), name)
    headers = [tr("Unit"), tr("Id"), tr("Request"), tr("Your reason"), tr("Status"), tr("Why"),
               tr("Your territory's deviation (before → after)")]
    body = f"<p>{esc(intro)}</p>\n" + table(headers, rows, flagged=flagged)
    text = document(tr("Answer to your feedback on {}").format(name), body)
    policy = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
    return text.replace('<meta charset="utf-8">\n', '<meta charset="utf-8">\n' + policy, 1).replace(
        "</style>", ".reason{white-space:pre-wrap;overflow-wrap:anywhere}</style>", 1)


def write_replies(folder: str, file_codes: dict[str, str], review, why: list[str], codes: list[str],
                  names: dict[str, str], measures: list[str]) -> list[str]:
    """reply_<code>.html for every territory that sent requests, in ``folder``; the paths written."""
    os.makedirs(folder, exist_ok=True)
    texts = []
    for code, safe in file_codes.items():
        mine = [(v, w) for v, w in zip(review.verdicts, why) if v.request.territory == code]
        texts.append((os.path.join(folder, f"reply_{safe}.html"),
                      reply_html(code, names.get(code, code), [v for v, _ in mine], [w for _, w in mine], codes,
                                 measures)))
    write_all(texts)
    return [path for path, _text in texts]


def write_all(texts: list[tuple[str, str]]) -> None:
    """Write every (path, text), or none: a failure removes the files this call created."""
    created = []
    try:
        for path, text in texts:
            existed = os.path.exists(path)
            write_document(path, text)
            if not existed:
                created.append(path)
    except BaseException:
        for path in created:
            try:
                os.remove(path)
            except OSError:
                pass
        raise
