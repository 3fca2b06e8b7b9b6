"""The saved change log of a plan, filtered to one territory."""

from __future__ import annotations

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..i18n import tr
from ..layers.change_log import COLUMNS


class ChangeLogDialog(QDialog):
    """Rows of the ``territory_changes`` table: when, who, what, which unit, from and to, workload."""

    def __init__(self, rows: list[dict], measures: list[str], territory: str | None, where: str, parent=None):
        super().__init__(parent)
        self.setObjectName("territoryChangeLogDialog")
        self.setWindowTitle(tr("Change log") + (f" — {territory}" if territory else ""))
        layout = QVBoxLayout(self)
        if rows:
            text = tr("{} saved change(s){}, stored in {}.").format(
                len(rows), tr(" into or out of {}").format(territory) if territory else "", where)
        else:
            text = tr("No saved change{} yet. Changes are recorded when the layer's edits are saved{}.").format(
                tr(" of {}").format(territory) if territory else "",
                "" if where else tr(" (layers kept only in memory have no change log)"))
        layout.addWidget(QLabel(text, self))
        headers = [tr("When"), tr("Who"), tr("Scenario"), tr("Action"), tr("Unit"), tr("From"), tr("To")] + measures
        keys = list(COLUMNS) + measures
        self.table = QTableWidget(len(rows), len(headers), self)
        self.table.setObjectName("territoryChangeLogTable")
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        for r, row in enumerate(reversed(rows)):  # newest first
            for c, key in enumerate(keys):
                value = row.get(key)
                item = QTableWidgetItem("" if value is None else
                                        (f"{value:,.0f}" if isinstance(value, float) else str(value)))
                if isinstance(value, float):
                    item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(820, 360)
