"""Feedback pages for reps: one self-contained HTML page per territory where its rep requests to add
or drop units, with a reason, and saves the requests as a CSV file for the manager (see
Review rep feedback)."""

from __future__ import annotations

import os

import numpy as np
from qgis.core import (
    QgsProcessingOutputString,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
)

from ..core.metrics import plan_figures
from ..core.plan.feedback import plan_fingerprint
from ..i18n import tr
from ..layers.feedback_files import read_unit_ids
from ..layers.svg_map import svg_map
from ..layers.values import natural_key
from . import parameters as shared
from .account_run import AccountRun
from .base import TerritoryAlgorithm, removes_partial_outputs
from .engine_run import check_cancelled
from .feedback_html import (
    FeedbackPage,
    PageAccount,
    PageMeasure,
    PageUnit,
    file_code,
    index_html,
    page_html,
    write_all,
)
from .parameters import DUE_DATE, OUTPUT_FOLDER, PAGES, UNIT_ID_FIELD, UNIT_NAME_FIELD
from .plan_inputs import PlanInputs

#: bordering units of no territory yet are drawn in this grey
UNASSIGNED_COLOUR = "#bdbdbd"

HELP = (
    "Writes one web page per territory for its rep, and index.html listing them. A page is a single "
    "file that opens from disk in any browser (no network, no server): it shows the territory and "
    "its bordering units on a map, the workload against the target on every balance field, and the "
    "units by name. The rep clicks a unit, types a reason and requests to drop it (a unit of the "
    "territory) or to add it (a bordering unit); the page shows what the requests do to the workload, "
    "and Save feedback downloads feedback_<code>.csv to send back. Review rep feedback reads those "
    "files.\n\n"
    "<b>Units layer</b> and <b>territory field</b>: the alignment the reps answer (the field holds "
    "territory codes).\n"
    "<b>Territory table</b>: optional, names, reps and colours by code.\n"
    "<b>Balance fields</b> and <b>tolerance</b>: the workloads shown against their targets.\n"
    "<b>Unit id field</b>: the units' business ids (ZIP, FIPS) as the feedback files name them; "
    "feature ids when empty. Use the same field when reviewing.\n"
    "<b>Unit name field</b>: how units are named on the page.\n"
    "<b>Due date</b>: optional text shown on every page.\n"
    "<b>Accounts</b> (optional, the parameters of the accounts below): each page also shows the territory's "
    "accounts and those standing in its bordering units, on the map and by name; the rep requests to add or "
    "drop accounts as units (kind “account”), and the workload on the page counts each account where it is "
    "aligned: an override for its territory, the rest with their unit.\n"
    "<b>Output folder</b>: receives feedback_<code>.html per territory and index.html.\n\n"
    "Every page carries the alignment's fingerprint (plan id): a feedback file made from another "
    "alignment is marked stale in the review. Result PAGES: the pages written."
)


class FeedbackPagesAlgorithm(TerritoryAlgorithm):
    """Feedback pages for reps: a page per territory to request units added or dropped."""

    algorithm_id = "feedbackpages"
    display_name = "Feedback pages for reps"
    help_text = (HELP, shared.ACCOUNTS_HELP)

    def initAlgorithm(self, config=None):
        shared.add_alignment_inputs(self)
        shared.add_unit_field(self, UNIT_ID_FIELD, self.tr("Unit id field (feature ids when empty)"), optional=True)
        shared.add_unit_field(self, UNIT_NAME_FIELD, self.tr("Unit name field"), optional=True)
        shared.add_accounts(self, with_name=True)
        self.addParameter(QgsProcessingParameterString(DUE_DATE, self.tr("Due date (shown on the pages)"),
                                                       optional=True))
        self.addParameter(QgsProcessingParameterFolderDestination(OUTPUT_FOLDER, self.tr("Output folder")))
        self.addOutput(QgsProcessingOutputString(PAGES, self.tr("Feedback pages written")))

    @removes_partial_outputs
    def processAlgorithm(self, parameters, context, feedback):
        inputs = PlanInputs.read(self, parameters, context, feedback)
        tolerance = shared.tolerance(self, parameters, context)
        due_date = (self.parameterAsString(parameters, DUE_DATE, context) or "").strip()
        folder = self.parameterAsString(parameters, OUTPUT_FOLDER, context)
        os.makedirs(folder, exist_ok=True)

        inputs.read_units(self.tr("Reading units…"), 25.0, accounts_until=30.0)
        inputs.read_alignment(self.tr("No unit has a territory in “{}”. Choose the field that holds the plan, or build "
                                    "territories first."))
        codes, labels = inputs.codes, inputs.labels
        units = inputs.count_accounts()
        unit_ids = read_unit_ids(inputs.source, self.parameterAsString(parameters, UNIT_ID_FIELD, context), units)
        unit_names = inputs.unit_names() or [self.tr("Unit {}").format(unit_id) for unit_id in unit_ids]
        plan_id = plan_fingerprint(unit_ids, [codes[k] if k >= 0 else None for k in labels])
        rows = inputs.rows()
        figures = plan_figures(labels, units.workloads, territory_count=len(codes),
                               fixed_loads=inputs.fixed_loads(len(codes)))
        measures = inputs.measures
        weights = units.workloads if units.measure_names else np.ones((units.count, 1))
        accounts = _PageAccounts(inputs.account_run, inputs.book, labels, unit_ids, codes, rows, weights.shape[1]) \
            if inputs.book is not None else None

        feedback.setProgressText(self.tr("Writing {} feedback pages…").format(len(codes)))
        adjacency = units.adjacency.tocsr()
        taken: set[str] = {"index"}
        texts, listed = [], []
        for k, code in enumerate(codes):
            check_cancelled(feedback)
            feedback.setProgress(30 + 65 * k / len(codes))
            own = np.flatnonzero(labels == k)
            near = np.unique(adjacency[own].indices) if own.size else np.zeros(0, dtype=np.int64)
            bordering = near[labels[near] != k]
            shown = np.concatenate([own, bordering])
            drawing = svg_map([units.geometries[i] for i in shown])
            page_units = []
            for slot, i in enumerate(shown):
                other = int(labels[i])
                page_units.append(PageUnit(
                    id=unit_ids[i], name=unit_names[i], own=other == k,
                    territory=codes[other] if other >= 0 else "",
                    territory_label=rows[other].label if other >= 0 else self.tr("no territory"),
                    colour=rows[other].colour if other >= 0 else UNASSIGNED_COLOUR,
                    workloads=[float(v) for v in weights[i]], shape=drawing.shapes[slot],
                    point=drawing.points[slot]))
            page_units.sort(key=lambda u: (not u.own, natural_key(u.name), natural_key(u.id)))
            page_accounts = accounts.of(k, shown, drawing) if accounts is not None else []
            page = FeedbackPage(
                territory=code, file_code=file_code(code, taken), name=rows[k].label, rep=rows[k].rep,
                colour=rows[k].colour, plan_id=plan_id, due_date=due_date, width=drawing.width,
                height=drawing.height, units=page_units, accounts=page_accounts,
                measures=[PageMeasure(measures[a], float(figures.sums[k, a]), float(figures.targets[k, a]), tolerance)
                          for a in range(len(measures))])
            file = f"feedback_{page.file_code}.html"
            texts.append((os.path.join(folder, file), page_html(page)))
            listed.append((code, rows[k].label, rows[k].rep, file))
        texts.append((os.path.join(folder, "index.html"),
                      index_html(self.tr("Feedback pages"), listed, plan_id, due_date)))
        write_all(texts)
        pages = [path for path, _text in texts[:-1]]
        sizes = [os.path.getsize(path) for path in pages]
        feedback.pushInfo(self.tr("{} feedback pages and index.html written to {} (alignment {}; largest page "
                                  "{:.0f} KB).").format(len(pages), folder, plan_id, max(sizes) / 1024))
        feedback.setProgress(100)
        return {PAGES: pages, OUTPUT_FOLDER: folder}


class _PageAccounts:
    """The accounts as the pages show them: each page gets its territory's accounts and those standing in
    the units it shows (its own and the bordering ones), each with its territory and its workload in
    the page's measures; accounts standing in a shown unit are drawn where they stand."""

    def __init__(self, account_run: AccountRun, book, labels, unit_ids, codes, rows, width: int):
        accounts = account_run.accounts
        self.accounts, self.unit_ids, self.codes, self.rows = accounts, unit_ids, codes, rows
        self.home = book.home
        self.territory = book.territories(labels)
        self.overridden = book.overridden
        # the accounts' workloads in the page's measures (none of the units' own; a count of 0 without measures)
        self.workloads = account_run.in_measures(accounts.workloads, width) if account_run.account_fields else \
            np.zeros((accounts.count, width))
        order = np.argsort(self.home, kind="stable")
        self.by_home, self.home_sorted = order, self.home[order]

    def of(self, territory: int, shown: np.ndarray, drawing) -> list[PageAccount]:
        """The accounts of page ``territory`` whose map shows the units ``shown`` (``drawing``)."""
        shown = np.asarray(shown, dtype=np.int64)
        start = np.searchsorted(self.home_sorted, shown, side="left")
        end = np.searchsorted(self.home_sorted, shown, side="right")
        standing = np.concatenate([self.by_home[a:b] for a, b in zip(start.tolist(), end.tolist())] or
                                  [np.zeros(0, dtype=np.int64)])
        chosen = np.union1d(standing, np.flatnonzero(self.territory == territory))
        on_map = np.isin(chosen, standing)
        out = []
        for a, drawn in zip(chosen.tolist(), on_map.tolist()):
            k = int(self.territory[a])
            x, y = self.accounts.positions[a]
            home = int(self.home[a])
            out.append(PageAccount(
                id=self.accounts.ids[a], name=self.accounts.names[a], own=k == territory,
                territory=self.codes[k] if k >= 0 else "",
                territory_label=self.rows[k].label if k >= 0 else tr("no territory"),
                colour=self.rows[k].colour if k >= 0 else UNASSIGNED_COLOUR,
                workloads=[float(v) for v in self.workloads[a]], unit=self.unit_ids[home] if home >= 0 else "",
                override=bool(self.overridden[a]),
                point=drawing.at(x, y) if drawn and np.isfinite(x) else None))
        out.sort(key=lambda account: (not account.own, natural_key(account.name), natural_key(account.id)))
        return out
