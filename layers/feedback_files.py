"""The files of the feedback loop, shared by the toolbox and the panel: the units' ids as pages show
them, reading the reps' feedback files (``feedback_*.csv``), and the review's answers in words."""

from __future__ import annotations

import csv
import glob
import os

from qgis.core import QgsFeatureRequest, QgsProcessingException

from ..core.plan.feedback import FEEDBACK_COLUMNS, Request, Verdict
from ..i18n import tr
from .values import is_empty_value

#: a reason or name longer than this is cut (a page allows 1,000 characters; a hand-edited file may hold anything)
MAX_TEXT = 2000
#: characters a spreadsheet would read as the start of a formula; the page writes them after a '
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def read_unit_ids(source, field_name: str | None, units) -> list[str]:
    """Each unit's id (engine order): the value of ``field_name`` as text, or the feature id when no
    field is given. Raises when the field is missing, an id is empty or two units share one."""
    if not field_name:
        return [str(int(fid)) for fid in units.fids]
    index = source.fields().lookupField(field_name)
    if index < 0:
        raise QgsProcessingException(tr(
            "The unit id field “{}” is not in the layer. Pick the field that holds each unit's business id "
            "(ZIP code, county FIPS), or leave it empty to use feature ids.").format(field_name))
    ids: list[str | None] = [None] * units.count
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([index])
    for feature in source.getFeatures(request):
        i = units.index_of_fid.get(feature.id())
        if i is None:
            continue
        value = feature.attribute(index)
        if is_empty_value(value):
            raise QgsProcessingException(tr(
                "Feature {} has no value in the unit id field “{}”. Give every unit an id, or leave the field "
                "empty to use feature ids.").format(feature.id(), field_name))
        ids[i] = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()
    seen: dict[str, int] = {}
    for i, unit_id in enumerate(ids):
        if unit_id in seen:
            raise QgsProcessingException(tr(
                "The unit id “{}” is used by features {} and {} in “{}”. Unit ids must be unique: choose "
                "another field, or leave it empty to use feature ids.").format(
                unit_id, int(units.fids[seen[unit_id]]), int(units.fids[i]), field_name))
        seen[unit_id] = i
    return ids


def _clean(text: str) -> str:
    """A cell as the rep typed it: the ' the page put before a formula-like start removed, cut to MAX_TEXT."""
    text = (text or "").strip()
    if len(text) > 1 and text[0] == "'" and text[1] in _FORMULA_START:
        text = text[1:]
    return text[:MAX_TEXT]


def read_feedback_file(path: str) -> list[Request]:
    """The requests of one feedback file. Raises QgsProcessingException naming the file and what is
    wrong: not readable as UTF-8 CSV, or missing columns of the feedback header."""
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            # a spreadsheet set to a European locale saves the file again with semicolons
            first = handle.readline()
            handle.seek(0)
            reader = csv.reader(handle, delimiter=";" if first.count(";") > first.count(",") else ",")
            header = [h.strip().lower() for h in next(reader, [])]
            missing = [c for c in FEEDBACK_COLUMNS if c not in header]
            if missing:
                raise QgsProcessingException(tr(
                    "“{}” is not a feedback file: it lacks the column(s) {}. A feedback file is the CSV a rep "
                    "saves from a feedback page, with the header {}.").format(
                    name, ", ".join(missing), ",".join(FEEDBACK_COLUMNS)))
            column = {c: header.index(c) for c in FEEDBACK_COLUMNS}
            requests = []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                cells = {c: _clean(row[k]) if k < len(row) else "" for c, k in column.items()}
                requests.append(Request(
                    territory=cells["territory"], unit=cells["unit"], unit_name=cells["unit_name"],
                    kind=cells["kind"].lower() or "unit", action=cells["action"].lower(), reason=cells["reason"],
                    submitted_by=cells["submitted_by"], submitted_at=cells["submitted_at"],
                    plan_id=cells["plan_id"], source=name, line=reader.line_num))
            return requests
    except UnicodeDecodeError as error:
        raise QgsProcessingException(tr(
            "“{}” is not a feedback file: it is not UTF-8 text. Use the file the feedback page saved.").format(
            name)) from error
    except csv.Error as error:
        raise QgsProcessingException(tr("“{}” is not a readable CSV file: {}.").format(name, error)) from error
    except OSError as error:
        raise QgsProcessingException(tr("Could not read “{}”: {}.").format(path, error.strerror or error)) from error


def read_feedback_folder(folder: str) -> list[Request]:
    """Every request of every ``feedback_*.csv`` in ``folder`` (files in name order). Raises when the
    folder is missing, holds no feedback file, or a file is not a feedback file."""
    if not folder or not os.path.isdir(folder):
        raise QgsProcessingException(tr(
            "The feedback folder “{}” does not exist. Choose the folder where the reps' feedback_*.csv files "
            "were saved.").format(folder))
    paths = sorted(glob.glob(os.path.join(glob.escape(folder), "feedback_*.csv")))
    if not paths:
        raise QgsProcessingException(tr(
            "The folder “{}” holds no feedback file (feedback_*.csv). Put the files the reps saved from their "
            "feedback pages there.").format(folder))
    requests: list[Request] = []
    for path in paths:
        requests += read_feedback_file(path)
    return requests


def why_text(verdict: Verdict, codes: list[str], labels: dict[str, str] | None = None) -> str:
    """The review's answer to a request in words (for the requests table, the replies and the panel)."""
    labels = labels or {}
    request = verdict.request

    def named(index: int) -> str:
        return labels.get(codes[index], codes[index]) if index >= 0 else tr("no territory")

    impact = verdict.impact
    why = verdict.why
    if why == "bad_kind":
        return tr("“{}” is not a kind of request (unit or account).").format(request.kind)
    if why == "bad_action":
        return tr("“{}” is not an action (add or drop).").format(request.action)
    if why == "unknown_territory":
        return tr("The territory “{}” is not in the alignment (renamed or removed since the page was made).") \
            .format(request.territory)
    if why == "unknown_unit":
        return tr("No unit has the id “{}” in the layer.").format(request.unit)
    if why == "account":
        return tr("Account requests are not evaluated yet: decide by hand.")
    if why == "repeated":
        return tr("The same request as line {} of {}; counted once.").format(
            verdict.details["line"], verdict.details["source"])
    if why == "other_plan":
        return tr("The page was made from another alignment ({}; now {}): make new pages and ask again.").format(
            verdict.details["plan_id"] or tr("none"), verdict.details["current"])
    if why == "not_in_territory":
        return tr("The unit is no longer in territory {}.").format(request.territory)
    if why == "already_in_territory":
        return tr("The unit is already in territory {}.").format(request.territory)
    if why == "no_destination":
        return tr("The unit borders no other territory: choose by hand where it should go.")
    if why == "conflict":
        return tr("Also asked for by {}: decide between them.").format(
            ", ".join(verdict.details["territories"]))
    move = tr("{} → {}").format(named(impact.from_territory), named(impact.to_territory)) if impact else ""
    if why == "manager":
        if verdict.status == "accepted":
            return tr("Accepted by the manager ({}).").format(move)
        return tr("Rejected by the manager.")
    if why == "evaluate_only":
        if verdict.details.get("acceptable"):
            return tr("Evaluated only ({}): the rule would accept it.").format(move)
        return tr("Evaluated only ({}): the rule would reject it.").format(move)
    if why == "within":
        return tr("Accepted ({}): both territories stay within tolerance.").format(move)
    if why == "closer":
        return tr("Accepted ({}): neither territory ends further from its tolerance than before.").format(move)
    if why == "empties":
        return tr("Rejected: territory {} would have no unit left.").format(named(impact.from_territory))
    further = ", ".join(named(k) for k in impact.further) if impact else ""
    split = ", ".join(named(k) for k in impact.split) if impact else ""
    if why == "balance":
        return tr("Rejected ({}): {} would end further outside tolerance.").format(move, further)
    if why == "contiguity":
        return tr("Rejected ({}): {} would be split in pieces.").format(move, split)
    if why == "balance_and_contiguity":
        return tr("Rejected ({}): {} would end further outside tolerance; {} would be split in pieces.").format(
            move, further, split)
    return why
