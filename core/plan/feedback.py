"""Field feedback on an alignment: the requests reps send back from their feedback pages, and the
review that accepts, rejects or flags each one. Pure Python and numpy/scipy, no QGIS.

The plan fingerprint (``plan_id``) hashes the alignment only: one line per unit, the unit's id and
its territory code (empty when it has none), sorted, through SHA-256 (first 16 hex digits). It
changes when any unit changes territory, or a unit is added or removed; names, reps, colours and
workloads are not part of it.

The review takes the requests in one stated order: earliest ``submitted_at`` first (the pages
write ISO 8601 UTC times, so text order is time order; a missing time sorts last), then territory
code, unit id, action, file and line. Checks come first, per request: a value outside the
vocabulary or an unknown territory or unit id is *invalid*, a page made from another alignment
or a unit that is no longer where the page showed it is *stale*, the same request twice is
*invalid* (the later copy), and units asked for by two or more territories are a *conflict* for
every one of those requests. The rest are evaluated one after the other on the alignment as the
accepted ones before them left it, so accepted requests build on each other.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..metrics import relative_deviation

#: the header of a feedback file, in order
FEEDBACK_COLUMNS = ("territory", "unit", "unit_name", "kind", "action", "reason", "submitted_by",
                    "submitted_at", "plan_id")
KINDS = ("unit", "account")
ACTIONS = ("add", "drop")

ACCEPTED = "accepted"
REJECTED = "rejected"
NEEDS_REVIEW = "needs review"
CONFLICT = "conflict"
STALE = "stale"
INVALID = "invalid"
STATUSES = (ACCEPTED, REJECTED, NEEDS_REVIEW, CONFLICT, STALE, INVALID)

#: a request's effect on balance is judged with this slack (floating point sums)
_SLACK = 1e-12


def plan_fingerprint(unit_ids, territory_codes) -> str:
    """The alignment's fingerprint: 16 hex digits of SHA-256 over the sorted lines
    ``["<unit id>", "<territory code>"]`` (JSON, so no id can fake a line break), one per unit;
    a unit without a territory has the code ""."""
    lines = sorted(json.dumps([str(unit), "" if code is None else str(code)], ensure_ascii=False)
                   for unit, code in zip(unit_ids, territory_codes))
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


@dataclass
class Request:
    """One row of a feedback file. ``source`` and ``line`` say where it came from."""

    territory: str
    unit: str
    action: str
    kind: str = "unit"
    unit_name: str = ""
    reason: str = ""
    submitted_by: str = ""
    submitted_at: str = ""
    plan_id: str = ""
    source: str = ""
    line: int = 0

    @property
    def key(self) -> tuple:
        """What names this request for a decision: its file and line."""
        return (self.source, self.line)

    def order_key(self) -> tuple:
        """The review's order (see the module's docstring)."""
        return (self.submitted_at == "", self.submitted_at, self.territory, self.unit, self.action,
                self.source, self.line)


@dataclass
class Impact:
    """What moving one unit from one territory to another does. Territories are indices (−1: none);
    ``before``/``after`` are (2, m) relative deviations of [from, to] (NaN for a missing side);
    ``further`` and ``split`` list the territories that would end further outside their tolerance,
    and that would be split in more pieces."""

    unit: int
    from_territory: int
    to_territory: int
    before: np.ndarray
    after: np.ndarray
    balance_ok: bool
    within: bool
    contiguous: bool
    empties_territory: bool
    further: list = field(default_factory=list)
    split: list = field(default_factory=list)


@dataclass
class Verdict:
    """The review's answer to one request: ``status`` (one of STATUSES), ``why`` (a code the caller
    puts in words with ``details``) and the impact when the request was evaluated."""

    request: Request
    status: str
    why: str
    details: dict = field(default_factory=dict)
    unit: int = -1
    impact: Impact | None = None


@dataclass
class Alignment:
    """The alignment under review.

    codes       territory codes; a label is an index into them
    labels      (n,) territory of each unit (−1: none)
    unit_ids    (n,) the units' ids as the pages show them
    workloads   (n, m) balanced measures (a column of ones when there is no balance field)
    targets     (p, m) targets
    tolerances  (m,) tolerance of each measure (fraction)
    adjacency   (n, n) neighbours (symmetric; islands already joined as the engine joins them)
    contiguous  whether a request may not split a territory
    """

    codes: list
    labels: np.ndarray
    unit_ids: list
    workloads: np.ndarray
    targets: np.ndarray
    tolerances: np.ndarray
    adjacency: sp.csr_matrix
    contiguous: bool = True

    @property
    def plan_id(self) -> str:
        return plan_fingerprint(self.unit_ids, [self.codes[k] if k >= 0 else None for k in self.labels])


class RequestEvaluator:
    """The alignment as requests change it: labels and sums kept in step, impacts of single moves."""

    def __init__(self, alignment: Alignment):
        self.alignment = alignment
        self.labels = np.asarray(alignment.labels, dtype=np.int64).copy()
        self.workloads = np.asarray(alignment.workloads, dtype=float)
        self.targets = np.asarray(alignment.targets, dtype=float)
        self.tolerances = np.asarray(alignment.tolerances, dtype=float).reshape(-1)
        self.adjacency = sp.csr_matrix(alignment.adjacency)
        count = len(alignment.codes)
        assigned = self.labels >= 0
        self.sums = np.zeros((count, self.workloads.shape[1]))
        np.add.at(self.sums, self.labels[assigned], self.workloads[assigned])

    def deviation(self, territory: int) -> np.ndarray:
        return relative_deviation(self.sums[territory], self.targets[territory])

    def excess(self, deviation: np.ndarray) -> float:
        """How far a territory is beyond its tolerance: the largest |deviation| − tolerance (≥ 0)."""
        return float(np.max(np.maximum(np.abs(deviation) - self.tolerances, 0.0), initial=0.0))

    def neighbour_territories(self, unit: int) -> list[int]:
        """Territories of the unit's neighbours other than its own, in index order."""
        row = self.adjacency.indices[self.adjacency.indptr[unit]:self.adjacency.indptr[unit + 1]]
        found = set(int(k) for k in self.labels[row]) - {int(self.labels[unit]), -1}
        return sorted(found)

    def parts(self, members: np.ndarray) -> int:
        """Connected pieces of the units ``members`` (indices) on the adjacency."""
        if members.size == 0:
            return 0
        sub = self.adjacency[members][:, members]
        return int(connected_components(sub, directed=False)[0])

    def impact(self, unit: int, to_territory: int) -> Impact:
        """Moving ``unit`` from its territory to ``to_territory`` (−1: out of every territory)."""
        source = int(self.labels[unit])
        measures = self.workloads.shape[1]
        before = np.full((2, measures), np.nan)
        after = np.full((2, measures), np.nan)
        balance_ok, within, contiguous, empties = True, True, True, False
        further, split = [], []
        weight = self.workloads[unit]
        for side, territory, sign in ((0, source, -1.0), (1, to_territory, 1.0)):
            if territory < 0:
                continue
            old = self.deviation(territory)
            new = relative_deviation(self.sums[territory] + sign * weight, self.targets[territory])
            before[side], after[side] = old, new
            if self.excess(new) > self.excess(old) + _SLACK:
                balance_ok = False
                further.append(territory)
            if self.excess(new) > _SLACK:
                within = False
            members = np.flatnonzero(self.labels == territory)
            moved = members[members != unit] if sign < 0 else np.append(members, unit)
            if sign < 0 and moved.size == 0:
                empties = True
            if self.parts(moved) > max(self.parts(members), 1):
                contiguous = False
                split.append(territory)
        return Impact(unit, source, to_territory, before, after, balance_ok, within, contiguous, empties,
                      further, split)

    def apply(self, unit: int, to_territory: int) -> None:
        source = int(self.labels[unit])
        if source >= 0:
            self.sums[source] -= self.workloads[unit]
        if to_territory >= 0:
            self.sums[to_territory] += self.workloads[unit]
        self.labels[unit] = to_territory

    def acceptable(self, impact: Impact) -> bool:
        """The acceptance rule: both territories end within tolerance or no further from it than
        before, neither is emptied, and (when contiguity is asked for) neither is split."""
        return (impact.balance_ok and not impact.empties_territory
                and (impact.contiguous or not self.alignment.contiguous))

    def best_destination(self, unit: int) -> Impact | None:
        """For a drop: the neighbouring territory that takes the unit best (acceptable first, then the
        smaller excess of the two territories after, then the smaller worst |deviation|, then index)."""
        impacts = [self.impact(unit, territory) for territory in self.neighbour_territories(unit)]
        if not impacts:
            return None

        def rank(impact: Impact) -> tuple:
            worst = np.abs(np.nan_to_num(impact.after, nan=0.0))
            excess = max(self.excess(row) for row in np.nan_to_num(impact.after, nan=0.0))
            return (not self.acceptable(impact), excess, float(worst.max(initial=0.0)), impact.to_territory)

        return min(impacts, key=rank)


@dataclass
class Review:
    verdicts: list[Verdict]
    labels: np.ndarray

    @property
    def accepted(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == ACCEPTED]


def review_requests(alignment: Alignment, requests: list[Request], accept: bool = True,
                    decisions: dict | None = None) -> Review:
    """Check and evaluate ``requests`` in the review's order (module docstring); with ``accept``
    the acceptable ones are applied and later ones build on them, without it every evaluable
    request *needs review* and nothing changes. ``decisions`` (``Request.key`` → ACCEPTED or
    REJECTED) are a manager's: they override the rule and settle conflicts (a request that cannot be
    evaluated stays as it is). Returns the verdicts in evaluation order and the labels with the
    accepted requests applied."""
    decisions = decisions or {}
    ordered = sorted(requests, key=Request.order_key)
    position = {str(unit): i for i, unit in enumerate(alignment.unit_ids)}
    territory_of = {str(code): k for k, code in enumerate(alignment.codes)}
    plan_id = alignment.plan_id
    labels = np.asarray(alignment.labels, dtype=np.int64)
    verdicts: list[Verdict | None] = [None] * len(ordered)
    first_of: dict[tuple, Request] = {}
    asked_by: dict[int, set] = {}
    for n, request in enumerate(ordered):
        verdict = _check(request, position, territory_of, labels, plan_id, first_of)
        if verdict is not None:
            verdicts[n] = verdict
        else:
            unit = position[request.unit]
            asked_by.setdefault(unit, set()).add(request.territory)

    evaluator = RequestEvaluator(alignment)
    for n, request in enumerate(ordered):
        if verdicts[n] is not None:
            continue
        unit = position[request.unit]
        territory = territory_of[request.territory]
        impact = evaluator.best_destination(unit) if request.action == "drop" else evaluator.impact(unit, territory)
        decision = decisions.get(request.key)
        if impact is None:
            # no territory to give the unit to: a manager may still turn the request down
            status, why = (REJECTED, "manager") if decision == REJECTED else (NEEDS_REVIEW, "no_destination")
            verdicts[n] = Verdict(request, status, why, unit=unit, impact=evaluator.impact(unit, -1))
            continue
        if decision == ACCEPTED:
            evaluator.apply(unit, impact.to_territory)
            verdicts[n] = Verdict(request, ACCEPTED, "manager", {}, unit, impact)
            continue
        if decision == REJECTED:
            verdicts[n] = Verdict(request, REJECTED, "manager", {}, unit, impact)
            continue
        others = sorted(asked_by[unit] - {request.territory})
        if others:
            verdicts[n] = Verdict(request, CONFLICT, "conflict", {"territories": others}, unit, impact)
            continue
        acceptable = evaluator.acceptable(impact)
        if not accept:
            verdicts[n] = Verdict(request, NEEDS_REVIEW, "evaluate_only", {"acceptable": acceptable}, unit, impact)
        elif acceptable:
            evaluator.apply(unit, impact.to_territory)
            verdicts[n] = Verdict(request, ACCEPTED, "within" if impact.within else "closer", {}, unit, impact)
        else:
            verdicts[n] = Verdict(request, REJECTED, _rejection(impact, alignment.contiguous), {}, unit, impact)
    return Review([v for v in verdicts if v is not None], evaluator.labels)


def _check(request: Request, position: dict, territory_of: dict, labels: np.ndarray, plan_id: str,
           first_of: dict) -> Verdict | None:
    """The verdict of a request that cannot be evaluated (invalid, stale, account, repeated), else None."""
    if request.kind not in KINDS:
        return Verdict(request, INVALID, "bad_kind")
    if request.action not in ACTIONS:
        return Verdict(request, INVALID, "bad_action")
    if request.territory not in territory_of:
        return Verdict(request, INVALID, "unknown_territory")
    if request.kind == "account":
        # accounts come with the accounts issue: until then a person decides
        return Verdict(request, NEEDS_REVIEW, "account")
    if request.unit not in position:
        return Verdict(request, INVALID, "unknown_unit")
    key = (request.territory, request.unit, request.action, request.kind)
    if key in first_of:
        earlier = first_of[key]
        return Verdict(request, INVALID, "repeated", {"source": earlier.source, "line": earlier.line},
                       position[request.unit])
    first_of[key] = request
    unit = position[request.unit]
    if request.plan_id != plan_id:
        return Verdict(request, STALE, "other_plan", {"plan_id": request.plan_id, "current": plan_id}, unit)
    territory = territory_of[request.territory]
    if request.action == "drop" and labels[unit] != territory:
        return Verdict(request, STALE, "not_in_territory", unit=unit)
    if request.action == "add" and labels[unit] == territory:
        return Verdict(request, STALE, "already_in_territory", unit=unit)
    return None


def _rejection(impact: Impact, contiguous: bool) -> str:
    if impact.empties_territory:
        return "empties"
    split = contiguous and not impact.contiguous
    if split and not impact.balance_ok:
        return "balance_and_contiguity"
    return "contiguity" if split else "balance"
