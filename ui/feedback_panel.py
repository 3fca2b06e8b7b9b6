"""The panel's feedback view: load a folder of rep feedback files, see each request with its status
and what it does to both territories, preview one (the panel's preview), accept or reject it, and
apply the accepted ones as one undo step."""

from __future__ import annotations

import os

from qgis.core import Qgis, QgsProcessingException
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.plan.feedback import ACCEPTED, REJECTED
from ..i18n import tr
from .feedback_review import FeedbackReview
from .table_dialog import read_only_table


class FeedbackPanel(QWidget):
    """A view of one :class:`FeedbackReview`: the requests, and Load, Accept, Reject, Apply."""

    def __init__(self, service, parent=None, accounts=None):
        super().__init__(parent)
        self.setObjectName("territoryFeedback")
        self.service = service
        self.review = FeedbackReview(service, accounts)
        #: asks for the folder to load; tests replace it
        self.choose_folder = lambda: QFileDialog.getExistingDirectory(self, tr("Folder of feedback files"))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        self.load_button = self._button(tr("Load feedback…"), "territoryLoadFeedback", self._load_chosen)
        self.accept_button = self._button(tr("Accept"), "territoryAcceptRequest", lambda: self.decide(ACCEPTED))
        self.reject_button = self._button(tr("Reject"), "territoryRejectRequest", lambda: self.decide(REJECTED))
        self.apply_button = self._button(tr("Apply accepted"), "territoryApplyFeedback", self.apply)
        for button in (self.load_button, self.accept_button, self.reject_button, self.apply_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.table = read_only_table(self, "territoryFeedbackRequests", [
            tr("#"), tr("Territory"), tr("Unit"), tr("Status"), tr("Request"), tr("Why"), tr("Before → after")], [])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(150)  # a few requests stay readable however the panel is split
        self.table.itemSelectionChanged.connect(self._on_selection)
        layout.addWidget(self.table, 1)
        self._refresh_buttons()

    def _button(self, text: str, name: str, slot) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.clicked.connect(slot)
        return button

    # -- actions ---------------------------------------------------------------------------------
    def _load_chosen(self) -> None:
        folder = self.choose_folder()
        if folder:
            self.load(folder)

    def load(self, folder: str) -> int:
        """Load the feedback files of ``folder``; a problem is said in the message bar. Returns the count."""
        if not self.service.is_bound:
            self.service.warn(tr("Choose a layer and a territory field first."))
            return 0
        try:
            count = self.review.load(folder)
        except QgsProcessingException as error:
            self.service.warn(str(error))
            return 0
        self.refresh()
        return count

    def selected_row(self) -> int:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return rows[0].row() if rows else -1

    def select(self, row: int) -> None:
        """Select (and so preview) the request in ``row``."""
        self.table.selectRow(row)

    def decide(self, decision: str) -> None:
        row = self.selected_row()
        if row < 0:
            return
        current = self.review.verdicts[row]
        undo = current.status == decision and current.why == "manager"
        self.review.decide(row, None if undo else decision)
        self.refresh(keep=row)

    def apply(self) -> int:
        changed = self.review.apply()
        if changed:
            self.service.message.emit(tr("{} accepted request(s) applied as one edit; undo reverts them.")
                                      .format(len(self.review.accepted())), Qgis.MessageLevel.Success)
        self.refresh(keep=self.selected_row())
        return changed

    # -- view ------------------------------------------------------------------------------------
    def refresh(self, keep: int = -1) -> None:
        verdicts = self.review.verdicts
        self.table.blockSignals(True)
        self.table.setRowCount(len(verdicts))
        for row, verdict in enumerate(verdicts):
            request = verdict.request
            status = verdict.status + (tr(" (applied)") if self.review.applied(verdict) else "")
            values = [str(row + 1), request.territory, request.unit_name or request.unit, status,
                      f"{request.action}: {request.reason}", self.review.why(verdict),
                      self.review.impact_text(verdict)]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                self.table.setItem(row, column, item)
        self.table.blockSignals(False)
        self.table.resizeColumnsToContents()
        counts: dict[str, int] = {}
        for verdict in verdicts:
            counts[verdict.status] = counts.get(verdict.status, 0) + 1
        folder = os.path.basename(os.path.normpath(self.review.folder))
        figures = ", ".join(f"{n} {s}" for s, n in counts.items())
        self.summary.setText(tr("{} request(s) from {}: {}").format(len(verdicts), folder, figures) if verdicts else "")
        if 0 <= keep < len(verdicts):
            self.table.selectRow(keep)
        self._refresh_buttons()

    def rows(self) -> list[list[str]]:
        """The table's text, row by row (for tests)."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    def _on_selection(self) -> None:
        row = self.selected_row()
        self._refresh_buttons()
        if row >= 0:
            self.review.propose(row)

    def _refresh_buttons(self) -> None:
        chosen = self.selected_row() >= 0
        self.accept_button.setEnabled(chosen)
        self.reject_button.setEnabled(chosen)
        self.apply_button.setEnabled(bool(self.review.accepted()))

    def unload(self) -> None:
        self.table.itemSelectionChanged.disconnect(self._on_selection)
