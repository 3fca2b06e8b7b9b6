"""Saving the bound plan's layer: the save guard (units someone else changed, failed saves) and the
change log (who moved which unit where), set up together for one layer and let go together."""

from __future__ import annotations

from collections.abc import Callable

from qgis.core import Qgis, QgsVectorLayer
from qgis.PyQt.QtCore import QObject, pyqtSignal

from ..i18n import tr
from ..layers.change_log import ChangeRecorder
from ..layers.held_edits import HeldEdits
from ..layers.save_guard import SaveGuard
from ..layers.signal_links import SignalLinks


class PlanSaving(QObject):
    """The :class:`SaveGuard` of ``layer``'s territory field, and once the plan is read
    (:meth:`log_changes`) its :class:`ChangeRecorder`. ``choose(conflicts, can_cancel)`` answers
    the guard when a save would overwrite units someone else changed."""

    #: a message for the user: text, Qgis.MessageLevel
    message = pyqtSignal(str, object)

    def __init__(self, layer: QgsVectorLayer, territory_field: str, unit_name_field: str,
                 choose: Callable[[list, bool], str], parent: QObject | None = None):
        super().__init__(parent)
        self.layer = layer
        self.territory_field = territory_field
        self.unit_name_field = unit_name_field
        # first of the layer's save listeners: the change log must see the buffer as it resolves conflicts
        self.guard = SaveGuard(layer, territory_field, unit_name_field, None, self)
        self.guard.chooser = choose
        self.recorder: ChangeRecorder | None = None
        self._links = SignalLinks([(self.guard.message, self.message)])

    def log_changes(self, measures: list[str]) -> None:
        """Start the change log (its rows carry the workloads of ``measures``)."""
        # told before the log's own after-save step, which may retry what an earlier save left
        self._links.link([(self.layer.afterCommitChanges, self._after_commit)])
        self.recorder = ChangeRecorder(self.layer, self.territory_field, measures, self.unit_name_field, self)
        self.guard.store = self.recorder.store
        self.recorder.refuse = self._refuse

    def _refuse(self, reason: str) -> bool:
        """The change log cannot be written: hold this save back, the edits kept in the buffer."""
        if not self.guard.can_hold_back():
            return False
        self.guard.hold_back()
        self._tell_refused(reason)
        return True

    def refuse_for(self, layer: QgsVectorLayer) -> Callable[[str], bool]:
        """A :class:`ChangeRecorder`'s ``refuse`` for another layer whose changes go to this log (the
        accounts' overrides): its save is held back as the units' is."""
        held = HeldEdits(layer)

        def refuse(reason: str) -> bool:
            if not held.possible():
                return False
            held.hold_back()
            self._tell_refused(reason)
            return True

        return refuse

    def _tell_refused(self, reason: str) -> None:
        self.message.emit(tr("Nothing was saved: {}. Your edits are kept; make the change log writable (or wait "
                             "for its database to be back) and save again.").format(reason.rstrip(".")),
                          Qgis.MessageLevel.Critical)

    def remember(self, fids, values) -> None:
        """The territories as this session read them (what a save checks others' changes against)."""
        self.guard.remember(fids, values)

    def note(self, moves: dict, action: str, notes: dict[int, str] | None = None) -> None:
        """The panel moved units by ``action`` (paint, build…, as the log will call it): ``moves``
        {fid: (from, to)}, the edit command that just ended; ``notes`` (fid → text) go in the log's
        note column."""
        if self.recorder is not None:
            self.recorder.note(moves, action, notes)

    def rows(self, territory: str | None = None) -> list[dict]:
        """The saved change log (rows into or out of ``territory`` when given)."""
        if self.recorder is None or self.recorder.store is None:
            return []
        return self.recorder.store.rows(territory)

    def where(self) -> str:
        """Where the change log is kept ("" when the layer has no place for one)."""
        store = self.recorder.store if self.recorder is not None else None
        return store.description if store is not None else ""

    def _after_commit(self) -> None:
        if self.recorder is not None and self.recorder.error:
            # checked before the save, the log failed after it (its database went away in between)
            self.message.emit(tr("The edits were saved, but the change log could not be written: {} Its rows are "
                                 "kept and written with your next save.").format(self.recorder.error),
                              Qgis.MessageLevel.Warning)

    def detach(self) -> None:
        self._links.cut()
        if self.recorder is not None:
            self.recorder.detach()
        self.guard.detach()
        self.guard.deleteLater()
