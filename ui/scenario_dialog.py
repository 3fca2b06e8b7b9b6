"""The side-by-side table of all scenarios of a plan."""

from __future__ import annotations

import math

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


class ScenarioDialog(QDialog):
    """Rows: scenarios (baseline first). Columns: worst deviation per measure, territories out of
    tolerance, territories in pieces, compactness, units and workload changed against the baseline."""

    def __init__(self, rows: list, measures: list[str], baseline: str, tolerance: float, parent=None):
        super().__init__(parent)
        self.setObjectName("territoryScenarioDialog")
        self.setWindowTitle(tr("Compare scenarios"))
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(tr("Changes are counted against the baseline “{}”; tolerance {:g} %.")
                                .format(baseline, tolerance), self))
        self.table = QTableWidget(self)
        self.table.setObjectName("territoryScenarioTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        headers = [tr("Scenario"), tr("Territories")]
        headers += [tr("Worst {} dev. %").format(m) for m in measures]
        headers += [tr("Out of tolerance"), tr("In pieces"), tr("Inertia (km²)"), tr("Units changed")]
        headers += [tr("{} changed %").format(m) for m in measures]
        self.headers = headers
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            name = row.name + (" " + tr("(baseline)") if row.name == baseline else "")
            cells = [name, str(row.territories)]
            cells += [f"{100 * d:.1f}" for d in row.worst_deviation]
            cells += [str(row.out_of_tolerance), "–" if row.noncontiguous < 0 else str(row.noncontiguous),
                      "–" if math.isnan(row.inertia_km2) else f"{row.inertia_km2:,.0f}", str(row.changed_units)]
            cells += [f"{100 * c:.1f}" for c in row.changed_workload]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c > 0:
                    item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(760, 300)

    def cells(self) -> dict:
        """{scenario row label: {header: text}} as shown."""
        return {self.table.item(r, 0).text(): {self.headers[c]: self.table.item(r, c).text()
                                               for c in range(1, self.table.columnCount())}
                for r in range(self.table.rowCount())}
