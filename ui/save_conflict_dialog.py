"""Asks what to do when a save would overwrite units someone else changed (see layers/save_guard.py)."""

from __future__ import annotations

from qgis.PyQt.QtWidgets import QDialog, QHBoxLayout, QLabel, QVBoxLayout

from ..i18n import tr
from ..layers.save_guard import CANCEL, KEEP_MINE, TAKE_THEIRS, Conflict
from .table_dialog import push_button, read_only_table


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
        unknown = tr("not recorded")
        rows = [[str(value) for value in (conflict.unit,
                                          tr("(deleted)") if conflict.deleted else (conflict.theirs or tr("(none)")),
                                          conflict.mine or tr("(none)"), conflict.who or unknown,
                                          conflict.when or unknown)]
                for conflict in conflicts]
        self.table = read_only_table(self, "territoryConflictTable", headers, rows)
        layout.addWidget(self.table)
        buttons = QHBoxLayout()
        self.keep_button = push_button(self, tr("Keep mine"), "territoryConflictKeepMine",
                                       tr("Save your territories for these units over theirs"))
        self.take_button = push_button(self, tr("Take theirs"), "territoryConflictTakeTheirs",
                                       tr("Keep their territories for these units; the rest of your edits are saved"))
        self.cancel_button = push_button(self, tr("Cancel save"), "territoryConflictCancel",
                                         tr("Write nothing; your edits stay in the layer's edit buffer"))
        self.cancel_button.setVisible(can_cancel)
        for button, choice in ((self.keep_button, KEEP_MINE), (self.take_button, TAKE_THEIRS),
                               (self.cancel_button, CANCEL)):
            button.clicked.connect(lambda _checked=False, answer=choice: self._answer(answer))
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
