"""Asks what to do when a save would overwrite units someone else changed (see layers/save_guard.py)."""

from __future__ import annotations

from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..i18n import tr
from ..layers.save_guard import CANCEL, KEEP_MINE, TAKE_THEIRS, Conflict


class SaveConflictDialog(QDialog):
    """The conflicting units (name, their value, your value, who, when) and three answers:
    *Keep mine*, *Take theirs*, *Cancel save*. :attr:`choice` holds the answer."""

    def __init__(self, conflicts: list[Conflict], can_cancel: bool = True, parent=None):
        super().__init__(parent)
        self.setObjectName("territoryConflictDialog")
        self.setWindowTitle(tr("Someone else changed these units"))
        self.choice = CANCEL if can_cancel else TAKE_THEIRS
        layout = QVBoxLayout(self)
        text = tr("{} unit(s) you are saving were changed by someone else since you loaded them. Saving your "
                  "values overwrites theirs.").format(len(conflicts))
        label = QLabel(text, self)
        label.setWordWrap(True)
        layout.addWidget(label)
        headers = [tr("Unit"), tr("Their territory"), tr("Your territory"), tr("Changed by"), tr("When")]
        self.table = QTableWidget(len(conflicts), len(headers), self)
        self.table.setObjectName("territoryConflictTable")
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        unknown = tr("not recorded")
        for row, conflict in enumerate(conflicts):
            theirs = tr("(deleted)") if conflict.deleted else (conflict.theirs or tr("(none)"))
            cells = [conflict.unit, theirs, conflict.mine or tr("(none)"), conflict.who or unknown,
                     conflict.when or unknown]
            for column, value in enumerate(cells):
                # QTableWidgetItem shows text as text: names like <b> or '; DROP TABLE stay what they are
                self.table.setItem(row, column, QTableWidgetItem(str(value)))
        self.table.resizeColumnsToContents()
        layout.addWidget(self.table)
        buttons = QHBoxLayout()
        self.keep_button = QPushButton(tr("Keep mine"), self)
        self.keep_button.setObjectName("territoryConflictKeepMine")
        self.keep_button.setToolTip(tr("Save your territories for these units over theirs"))
        self.take_button = QPushButton(tr("Take theirs"), self)
        self.take_button.setObjectName("territoryConflictTakeTheirs")
        self.take_button.setToolTip(tr("Keep their territories for these units; the rest of your edits are saved"))
        self.cancel_button = QPushButton(tr("Cancel save"), self)
        self.cancel_button.setObjectName("territoryConflictCancel")
        self.cancel_button.setToolTip(tr("Write nothing; your edits stay in the layer's edit buffer"))
        self.cancel_button.setVisible(can_cancel)
        for button, choice in ((self.keep_button, KEEP_MINE), (self.take_button, TAKE_THEIRS),
                               (self.cancel_button, CANCEL)):
            button.clicked.connect(lambda _checked=False, c=choice: self._answer(c))
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.cancel_button.setDefault(can_cancel)
        self.resize(640, 320)

    def _answer(self, choice: str) -> None:
        self.choice = choice
        self.accept()


class SaveConflictChooser:
    """The service's ``conflict_chooser`` in QGIS: asks with a :class:`SaveConflictDialog`."""

    def __init__(self, parent=None):
        self.parent = parent

    def __call__(self, conflicts: list[Conflict], can_cancel: bool) -> str:
        dialog = SaveConflictDialog(conflicts, can_cancel, self.parent)
        dialog.exec()
        choice = dialog.choice
        dialog.deleteLater()
        return choice
