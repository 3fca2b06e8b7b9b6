"""Saving a plan safely: two analysts on one units table, and a database that goes away.

A :class:`SaveGuard` watches one layer's saves (``beforeCommitChanges``, so the panel, QGIS's own
*Save Layer Edits*, the attribute table and scripts are all covered) and does two things:

**Conflicts.** It keeps the territory of every unit as this session loaded it (the *baseline*).
Just before a save it reads, through a fresh request to the data provider, the database's
current territory of every unit whose territory is in the edit buffer. A unit whose value in
the database differs from the baseline and from the value about to be written was changed by
someone else since it was loaded: saving would overwrite their change. This works whether or not
the other session used the panel; the ``territory_changes`` log, when it has a matching row,
says who and when. The guard then asks its ``chooser`` (a dialog in the panel, a function in
tests) to keep this session's values, take theirs, or cancel the save. Without a chooser the
save is cancelled: never a silent overwrite.

*Cancel* holds the save back (:mod:`.held_edits`): nothing is written, nothing is lost; only the
undo history collapses into one step.

**Failures.** When the data source refuses the save (a PostgreSQL server that stopped, a full
disk), QGIS keeps every edit in the buffer and the layer's ``commitErrors``; the guard adds a
message naming the problem and what to do. Saving again once the server is back works: the
PostgreSQL provider reconnects by itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
from qgis.core import Qgis, QgsApplication, QgsFeatureRequest, QgsMessageLog, QgsVectorLayer
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QObject, QTimer, pyqtSignal

from ..i18n import tr
from .change_log import ChangeLogStore, read_saved_values
from .held_edits import LOG_TAG, HeldEdits
from .signal_links import SignalLinks
from .values import text_or_none

KEEP_MINE = "mine"
TAKE_THEIRS = "theirs"
CANCEL = "cancel"
CHOICES = (KEEP_MINE, TAKE_THEIRS, CANCEL)

#: words in a provider's error that mean the connection to the server was lost
_CONNECTION_WORDS = ("connection", "server", "connect", "terminat", "socket", "network")




def provider_reason(message: str) -> str:
    """The reason in a data provider's log line, without the SQL it ran (which holds user values):
    PostgreSQL's error for a failed query, else the message's first two lines."""
    found = re.search(r"returned \d+ \[(.*)\]\s*$", message, re.DOTALL)
    text = found.group(1) if found else message
    if not found:
        statement = re.search(r"\b(update|insert|select|delete|begin|commit|declare|fetch)\b", text, re.IGNORECASE)
        if statement:
            text = text[:statement.start()].rstrip(" :")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:2])


@dataclass
class Conflict:
    """A unit someone else changed since this session loaded it, and that this save would overwrite."""

    fid: int
    unit: str
    loaded: str | None  # its territory when this session loaded it
    theirs: str | None  # in the database now
    mine: str | None  # in this session's edit buffer
    deleted: bool = False  # the unit is no longer in the database
    who: str | None = None  # from the change log, when it has a matching row
    when: str | None = None


class Baseline:
    """Each unit's territory as this session loaded it: compact arrays (a million units fit in
    about 12 MB), plus the values learnt since (saves, lazily read units)."""

    def __init__(self):
        self.fids = np.zeros(0, dtype=np.int64)
        self.codes = np.zeros(0, dtype=np.int32)
        self.names: list[str | None] = []
        self.extra: dict[int, str | None] = {}

    def reset(self, fids, values) -> None:
        fids = np.asarray(fids, dtype=np.int64)
        lookup: dict = {}
        codes = np.fromiter((lookup.setdefault(text_or_none(v), len(lookup)) for v in values), dtype=np.int32,
                            count=len(fids))
        order = np.argsort(fids, kind="stable")
        self.fids = fids[order]
        self.codes = codes[order]
        self.names = list(lookup)
        self.extra = {}

    def get(self, fid: int) -> tuple[bool, str | None]:
        if fid in self.extra:
            return True, self.extra[fid]
        pos = int(np.searchsorted(self.fids, fid))
        if pos < len(self.fids) and self.fids[pos] == fid:
            return True, self.names[int(self.codes[pos])]
        return False, None

    def set(self, fid: int, value) -> None:
        self.extra[int(fid)] = text_or_none(value)


class SaveGuard(QObject):
    """Checks every save of ``layer`` for units changed elsewhere, and reports failed saves.

    ``chooser(conflicts, can_cancel)`` returns :data:`KEEP_MINE`, :data:`TAKE_THEIRS` or
    :data:`CANCEL`. Connect the guard before anything else that listens to the layer's
    ``beforeCommitChanges`` (the change log), so that they see the resolved edit buffer.
    """

    #: a message for the user: text, Qgis.MessageLevel
    message = pyqtSignal(str, object)
    #: the conflicts of a save and the choice made (one of CHOICES)
    conflictsResolved = pyqtSignal(list, str)  # noqa: N815 - Qt's naming

    def __init__(self, layer: QgsVectorLayer, territory_field: str, unit_name_field: str = "",
                 store: ChangeLogStore | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.layer = layer
        self.territory_field = territory_field
        self.unit_name_field = unit_name_field
        self.store = store
        self.chooser: Callable[[list, bool], str] | None = None
        self.baseline = Baseline()
        self.last_conflicts: list[Conflict] = []
        self._attempt = False
        self._errors_before = 0
        self._held = HeldEdits(layer)
        self._provider_log: list[str] = []
        self._log_links = SignalLinks()
        self._links = SignalLinks([
            (layer.beforeCommitChanges, self._before_commit),
            (layer.afterCommitChanges, self._after_commit),
            (layer.committedAttributeValuesChanges, self._committed),
            (layer.attributeValueChanged, self._on_value_changed),
        ])

    def detach(self) -> None:
        self._stop_listening()
        self._links.cut()

    # -- the baseline ------------------------------------------------------------------------------
    def _index(self) -> int:
        return self.layer.fields().lookupField(self.territory_field)

    def _buffered(self) -> dict[int, object]:
        """Units whose territory is in the edit buffer (saved units only), with the buffered value."""
        buffer = self.layer.editBuffer()
        index = self._index()
        if buffer is None or index < 0:
            return {}
        deleted = set(buffer.deletedFeatureIds())
        return {int(fid): values[index] for fid, values in buffer.changedAttributeValues().items()
                if index in values and int(fid) >= 0 and fid not in deleted}

    def _database_values(self, fids) -> dict[int, object]:
        """The territory of ``fids`` in the data source now (a fresh provider request, no edit buffer)."""
        provider = self.layer.dataProvider()
        index = provider.fields().lookupField(self.territory_field)
        fids = [int(f) for f in fids if int(f) >= 0]
        if index < 0 or not fids:
            return {}
        return read_saved_values(provider, fids, index)

    def remember(self, fids, values) -> None:
        """The territories as the session reads them now (``values`` may include buffered edits:
        for those units the value they had before the edit is kept)."""
        buffered = self._buffered()
        held = {}
        for fid in buffered:
            known, value = self.baseline.get(fid)
            if known:
                held[fid] = value
        self.baseline.reset(fids, values)
        unknown = [fid for fid in buffered if fid not in held]
        held.update({fid: text_or_none(v) for fid, v in self._database_values(unknown).items()})
        self.baseline.extra.update(held)

    def _on_value_changed(self, fid, index, _value) -> None:
        # a unit the session never read (outside a scenario's filter): its value before this edit
        # is still the saved one
        fid = int(fid)
        if index != self._index() or fid < 0 or self.baseline.get(fid)[0]:
            return
        values = self._database_values([fid])
        if fid in values:
            self.baseline.set(fid, values[fid])

    def _committed(self, layer_id: str, changes) -> None:
        if layer_id != self.layer.id():
            return
        index = self._index()
        for fid, values in changes.items():
            if index in values:
                self.baseline.set(int(fid), values[index])

    # -- conflicts ---------------------------------------------------------------------------------
    def find_conflicts(self) -> list[Conflict]:
        """Units this save would write whose database value changed since the session loaded them."""
        mine = self._buffered()
        if not mine:
            return []
        theirs = self._database_values(list(mine))
        if not theirs:
            return []  # nothing readable (server down: the save fails anyway) or all deleted: nothing overwritten
        conflicts = []
        for fid, value in mine.items():
            known, loaded = self.baseline.get(fid)
            if not known:
                continue
            deleted = fid not in theirs
            their_text = None if deleted else text_or_none(theirs[fid])
            mine_text = text_or_none(value)
            if deleted or (their_text != loaded and their_text != mine_text):
                conflicts.append(Conflict(fid, str(fid), loaded, their_text, mine_text, deleted))
        if conflicts:
            self._describe(conflicts)
        return conflicts

    def _describe(self, conflicts: list[Conflict]) -> None:
        """Unit names (the unit-name field), and who changed them when (the change log)."""
        by_fid = {c.fid: c for c in conflicts}
        if self.unit_name_field and self.layer.fields().lookupField(self.unit_name_field) >= 0:
            request = QgsFeatureRequest().setFilterFids(list(by_fid)).setFlags(QgsFeatureRequest.Flag.NoGeometry)
            request.setSubsetOfAttributes([self.unit_name_field], self.layer.fields())
            for feature in self.layer.getFeatures(request):
                name = text_or_none(feature[self.unit_name_field])
                if name:
                    by_fid[int(feature.id())].unit = name
        if self.store is None:
            return
        try:
            rows = self.store.rows()
        except Exception as error:  # noqa: BLE001 - the log is a help here, never a reason to fail a save
            QgsMessageLog.logMessage(f"The change log could not be read: {error}", LOG_TAG, Qgis.MessageLevel.Warning)
            return
        latest = {}
        for row in rows:  # oldest first: the last match wins
            if row.get("scenario") == self.territory_field:
                latest[(str(row.get("unit")), row.get("to_territory"))] = row
        for conflict in conflicts:
            row = latest.get((conflict.unit, conflict.theirs))
            if row is not None:
                conflict.who = row.get("user_name")
                conflict.when = row.get("changed_at")

    def can_hold_back(self) -> bool:
        """Whether this save's edits can be held back (fields added or deleted in the buffer cannot)."""
        return self._held.possible()

    # -- the save ----------------------------------------------------------------------------------
    def _before_commit(self, *_args) -> None:
        self._errors_before = len(self.layer.dataProvider().errors())
        if self._held.pending:  # saved again before a cancelled save's edits were back: put them back first
            self._held.restore()
        try:
            if self.layer.providerType() != "memory":  # no other session can reach a memory layer
                self._resolve_conflicts()
        finally:
            # looked at once the save is over; scheduled only now, since the conflict dialog runs an
            # event loop of its own while the save has not started yet
            self._attempt = True
            self._listen()
            QTimer.singleShot(0, self._check_attempt)

    def _resolve_conflicts(self) -> None:
        try:
            conflicts = self.find_conflicts()
        except Exception as error:  # noqa: BLE001 - reported; the save goes on as QGIS started it
            QgsMessageLog.logMessage(f"The conflict check failed: {error}", LOG_TAG, Qgis.MessageLevel.Warning)
            self.message.emit(tr("Units changed by someone else could not be checked before saving: {}").format(
                error), Qgis.MessageLevel.Warning)
            return
        self.last_conflicts = conflicts
        if not conflicts:
            return
        can_cancel = self.can_hold_back()
        choice = CANCEL
        if self.chooser is not None:
            choice = self.chooser(conflicts, can_cancel)
        if choice not in CHOICES:
            choice = CANCEL
        if choice == CANCEL and not can_cancel:
            choice = TAKE_THEIRS  # fields added or deleted in the buffer cannot be held back; overwrite nothing
        if choice == TAKE_THEIRS:
            self._take_theirs(conflicts)
        elif choice == CANCEL:
            self.hold_back()
        self.conflictsResolved.emit(conflicts, choice)
        self.message.emit(self._summary(conflicts, choice),
                          Qgis.MessageLevel.Warning if choice == CANCEL else Qgis.MessageLevel.Info)

    def _summary(self, conflicts: list[Conflict], choice: str) -> str:
        shown = ", ".join(f"{c.unit} ({c.who or tr('someone')})" for c in conflicts[:5])
        more = tr(" and {} more").format(len(conflicts) - 5) if len(conflicts) > 5 else ""
        text = tr("{} unit(s) were changed by someone else since you loaded them: {}{}.").format(
            len(conflicts), shown, more)
        if choice == KEEP_MINE:
            return text + " " + tr("Your territories were saved over theirs.")
        if choice == TAKE_THEIRS:
            return text + " " + tr("Their territories were kept for these units; the rest of your edits were saved.")
        return text + " " + tr("The save was cancelled: nothing was written and your edits are kept; "
                               "save again to decide.")

    def _take_theirs(self, conflicts: list[Conflict]) -> None:
        index = self._index()
        theirs = self._database_values([c.fid for c in conflicts if not c.deleted])
        self.layer.beginEditCommand(tr("Take their territories"))
        for conflict in conflicts:
            if conflict.fid in theirs:
                self.layer.changeAttributeValue(conflict.fid, index, theirs[conflict.fid])
                self.baseline.set(conflict.fid, theirs[conflict.fid])
        self.layer.endEditCommand()

    def hold_back(self) -> None:
        """Empty the edit buffer for this save (it then writes nothing) and refill it right after."""
        self._held.hold_back()

    def _after_commit(self) -> None:
        self._attempt = False
        self._stop_listening()

    def _listen(self) -> None:
        """Collect what the data provider logs during the save (PostgreSQL's own error text)."""
        self._provider_log = []
        if not len(self._log_links):
            self._log_links.link([(QgsApplication.messageLog().messageReceived, self._on_log)])

    def _stop_listening(self) -> None:
        self._log_links.cut()

    def _on_log(self, message: str, tag: str, _level) -> None:
        if tag and tag not in (LOG_TAG, "") and len(self._provider_log) < 5:
            reason = provider_reason(message)
            if reason and reason not in self._provider_log:
                self._provider_log.append(reason)

    def _check_attempt(self) -> None:
        self._stop_listening()
        if not self._attempt or sip.isdeleted(self.layer):
            return
        self._attempt = False
        if not self.layer.isEditable():
            return
        errors = [e for e in self.layer.commitErrors() if e.strip()]
        provider_errors = [e.strip() for e in self.layer.dataProvider().errors()[self._errors_before:]]
        reasons = list(dict.fromkeys(e.rstrip(".") for e in provider_errors[-2:] + self._provider_log[:2]))
        detail = "; ".join(e.rstrip(".") for e in errors) or tr("no reason given")
        if reasons:
            detail += " (" + "; ".join(reasons) + ")"
        detail += "."
        lost_connection = not reasons or any(word in " ".join(reasons).lower() for word in _CONNECTION_WORDS)
        if self.layer.providerType() == "postgres" and lost_connection:
            advice = tr("Your edits are kept; save again when the server is back.")
        else:
            advice = tr("Your edits are kept; fix the problem and save again.")
        self.message.emit(tr("The database did not accept the changes: {} {}").format(detail, advice),
                          Qgis.MessageLevel.Critical)
