"""The panel's review of rep feedback: the requests of a folder of feedback files judged against the
bound plan as it was when they were loaded (the alignment the pages were made from), the manager's
accept and reject decisions, a preview of one request, and the accepted ones written as one edit.

The rules are the toolbox's (``core.plan.feedback``, worded by ``layers.feedback_files``): the
panel and Review rep feedback never disagree about a request.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from qgis.core import QgsFeatureRequest

from ..core.plan.feedback import ACCEPTED, Alignment, Request, Review, review_requests
from ..i18n import tr
from ..layers.feedback_files import read_feedback_folder, why_text
from ..layers.values import is_empty_value

#: what the change log calls a unit moved by an accepted request
ACTION = "feedback"


def unit_ids_matching(layer, fids: np.ndarray, wanted: set[str]) -> list[str]:
    """The units' ids (in ``fids`` order) as the feedback files most likely name them: the values of
    the layer's field holding most of ``wanted``, else the feature ids."""
    best, best_hits = [str(int(fid)) for fid in fids], len(wanted & {str(int(fid)) for fid in fids})
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry)
    values: dict[int, list] = {int(f.id()): f.attributes() for f in layer.getFeatures(request)}
    for index in range(layer.fields().count()):
        ids = []
        for fid in fids:
            value = values[int(fid)][index]
            if is_empty_value(value):
                ids.append("")
            else:
                ids.append(str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip())
        hits = len(wanted & set(ids))
        if hits > best_hits and len(set(ids)) == len(ids):
            best, best_hits = ids, hits
    return best


class FeedbackReview:
    """The loaded requests of one plan, the manager's decisions, and what they make of the plan."""

    def __init__(self, service):
        self.service = service
        self.requests: list[Request] = []
        self.decisions: dict[tuple, str] = {}
        self.alignment: Alignment | None = None
        self.review: Review | None = None
        self.folder = ""

    def load(self, folder: str) -> int:
        """Read every feedback_*.csv of ``folder`` and judge the requests against the plan as it is now.
        Raises QgsProcessingException (missing folder, no file, not a feedback file). Returns the count."""
        service = self.service
        requests = read_feedback_folder(folder)
        ledger = service.ledger
        names = list(service.territories.names)
        workloads = ledger.workloads if service.measures else np.ones((len(service.fids), 1))
        adjacency = service.adjacency
        contiguous = adjacency is not None
        if adjacency is None:  # neighbours not read yet: balance only
            adjacency = sp.csr_matrix((len(service.fids), len(service.fids)))
        targets = np.tile(workloads.sum(axis=0) / max(len(names), 1), (max(len(names), 1), 1))
        ids = unit_ids_matching(service.layer, service.fids, {r.unit for r in requests})
        self.alignment = Alignment(codes=names, labels=ledger.plan_labels().copy(), unit_ids=ids,
                                   workloads=np.asarray(workloads, dtype=float), targets=targets,
                                   tolerances=service.plan.tolerance_fractions(), adjacency=adjacency,
                                   contiguous=contiguous)
        self.requests, self.decisions, self.folder = requests, {}, folder
        self.evaluate()
        return len(requests)

    def evaluate(self) -> None:
        """Judge every request again with the decisions taken so far (nothing is accepted by the rule)."""
        self.review = review_requests(self.alignment, self.requests, accept=False, decisions=self.decisions)

    @property
    def verdicts(self) -> list:
        return self.review.verdicts if self.review is not None else []

    def why(self, verdict) -> str:
        names = {code: row.label for code, row in self.service.table_rows.items()}
        return why_text(verdict, self.alignment.codes, names)

    def decide(self, row: int, decision: str | None) -> None:
        """Accept (ACCEPTED), reject (REJECTED) or undecide (None) the request in ``row``."""
        key = self.verdicts[row].request.key
        if decision is None:
            self.decisions.pop(key, None)
        else:
            self.decisions[key] = decision
        self.evaluate()

    def impact_text(self, verdict) -> str:
        """Before → after of both territories, per measure."""
        impact = verdict.impact
        if impact is None:
            return ""
        parts = []
        for side, territory in ((0, impact.from_territory), (1, impact.to_territory)):
            if territory < 0:
                continue
            changes = ", ".join(f"{measure} {100 * impact.before[side, a]:+.1f} → {100 * impact.after[side, a]:+.1f} %"
                                for a, measure in enumerate(self.service.measure_names))
            parts.append(f"{self.alignment.codes[territory]}: {changes}")
        return "; ".join(parts)

    def propose(self, row: int):
        """Preview the request in ``row`` (the panel's preview: units outlined, before → after)."""
        verdict = self.verdicts[row]
        impact = verdict.impact
        if impact is None or impact.to_territory < 0:
            self.service.warn(tr("This request cannot be previewed: {}").format(self.why(verdict)))
            return None
        names = self.alignment.codes
        request = verdict.request
        title = tr("Request of {}: {} unit {} ({} → {})").format(
            request.territory, tr("add") if request.action == "add" else tr("drop"), request.unit_name or request.unit,
            names[impact.from_territory] if impact.from_territory >= 0 else tr("no territory"),
            names[impact.to_territory])
        return self.service.propose(np.array([impact.unit]), [names[impact.to_territory]], title, action=ACTION)

    def accepted(self) -> list:
        return [v for v in self.verdicts if v.status == ACCEPTED]

    def apply(self) -> int:
        """Write the accepted requests as ONE edit (one undo step); the change log notes each unit's rep
        and reason. Returns how many units changed territory."""
        accepted = self.accepted()
        if not accepted:
            self.service.warn(tr("No request is accepted yet: accept some first."))
            return 0
        names = self.alignment.codes
        target = self.review.labels
        changes, notes = [], {}
        for verdict in accepted:
            unit = verdict.unit
            changes.append((unit, names[target[unit]] if target[unit] >= 0 else None))
            request = verdict.request
            notes[unit] = tr("{} ({}): {}").format(request.submitted_by or tr("a rep"), request.territory,
                                                   request.reason)
        text = tr("Accept {} feedback request(s)").format(len(accepted))
        if not self.service.edit(text, changes, action=ACTION, notes=notes):
            return 0
        return len(changes)

    def applied(self, verdict) -> bool:
        """Whether the layer holds the request's outcome now (after Apply, until undone)."""
        impact = verdict.impact
        if verdict.status != ACCEPTED or impact is None:
            return False
        labels = self.service.ledger.plan_labels()
        return bool(labels[impact.unit] == self.review.labels[impact.unit])

